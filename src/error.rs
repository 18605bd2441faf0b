//! Why a handler could not finish ([`HandlerError`]), and what went wrong with the program
//! behind a route ([`GatewayError`]: a CGI script or a native plugin). Each error maps to
//! one status in one place ([`HandlerError::status`]) and is logged in one place, with one
//! line ([`HandlerError::log`]); the client only ever sees the status and its reason.

use std::time::Duration;

use tracing::{debug, warn};

use crate::http::decode::BodyError;
use crate::http::status;

/// Why a handler could not finish. An error before the head went out becomes a response
/// with [`HandlerError::status`]; after, the connection closes with the body incomplete.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The client is gone; nothing more can be sent.
    #[error("client disconnected")]
    Disconnected,
    /// The request body was malformed, too large or stalled.
    #[error("request body: {0}")]
    Body(#[from] BodyError),
    /// An I/O error inside the handler (a file, a pipe).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The program behind the route failed (`program`: its name, for the log).
    #[error("{}{error}", program.as_deref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Gateway {
        /// What went wrong.
        error: GatewayError,
        /// The script's URL path or the plugin's name, once known.
        program: Option<String>,
        /// The limits the script ran under (`cpu=30s memory=…`), when it had some: the
        /// likely cause of a failure the kernel does not name.
        limits: Option<String>,
    },
    /// Anything else, with a message for the log (never sent to the client).
    #[error("{0}")]
    Other(String),
}

impl HandlerError {
    /// The status a client gets for this error when nothing was sent yet.
    pub fn status(&self) -> u16 {
        match self {
            HandlerError::Body(e) => e.status(),
            HandlerError::Gateway { error, .. } => error.status(),
            HandlerError::Disconnected | HandlerError::Io(_) | HandlerError::Other(_) => {
                status::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The one log line for this error.
    pub(crate) fn log(&self) {
        match self {
            HandlerError::Disconnected => debug!("handler stopped: client disconnected"),
            HandlerError::Body(e) => debug!(error = %e, "handler stopped: request body"),
            HandlerError::Io(e) => warn!(error = %e, "handler failed"),
            HandlerError::Gateway {
                error,
                program,
                limits,
            } => error.log(program.as_deref().unwrap_or("-"), limits.as_deref()),
            HandlerError::Other(message) => warn!(error = %message, "handler failed"),
        }
    }
}

impl HandlerError {
    /// This error, naming the program it came from if it is a gateway failure (and the
    /// limits it ran under, if any).
    pub(crate) fn of_program(self, name: &str, limits: &str) -> HandlerError {
        match self {
            HandlerError::Gateway {
                error,
                program: None,
                limits: None,
            } => HandlerError::Gateway {
                error,
                program: Some(name.to_string()),
                limits: (!limits.is_empty()).then(|| limits.to_string()),
            },
            other => other,
        }
    }

    /// A short name of what went wrong, for the access log (`bad_output`, `cpu_limit` …).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            HandlerError::Disconnected => "client_gone",
            HandlerError::Body(_) => "request_body",
            HandlerError::Io(_) => "io_error",
            HandlerError::Gateway { error, .. } => error.code(),
            HandlerError::Other(_) => "handler_error",
        }
    }
}

impl From<GatewayError> for HandlerError {
    fn from(error: GatewayError) -> HandlerError {
        HandlerError::Gateway {
            error,
            program: None,
            limits: None,
        }
    }
}

/// What went wrong with the program behind a route.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Every CGI slot (`max_children`) stayed taken for `queue_timeout`.
    #[error("no free CGI slot within {0:?}")]
    NoSlot(Duration),
    /// The client already has `max_children_per_client` scripts running or waiting.
    #[error("this client already has max_children_per_client scripts running or waiting")]
    ClientBusy,
    /// The system has no process to spare (EAGAIN from the spawn).
    #[error("cannot start the script: out of processes")]
    Busy,
    /// The program could not be started.
    #[error("cannot start the script: {0}")]
    Spawn(#[source] std::io::Error),
    /// Scripts are to be started from the spawn helper, and there is none.
    #[error("the CGI spawn helper is not running")]
    NoHelper,
    /// The script's header block is malformed (the reason, for the log only).
    #[error("malformed script output: {0}")]
    BadOutput(&'static str),
    /// Reading the script's output failed.
    #[error("reading script output failed: {0}")]
    ReadOutput(#[source] std::io::Error),
    /// The script said nothing for `idle_timeout` before its header block.
    #[error("script silent for idle_timeout before its header block")]
    IdleBeforeHead,
    /// The script said nothing for `idle_timeout` after its header block.
    #[error("script silent for idle_timeout")]
    Idle,
    /// The script ran longer than `timeout`.
    #[error("script ran longer than its timeout")]
    Timeout,
    /// The script ended without a complete response (its output closed early).
    #[error("script output ended without a response")]
    NoResponse,
    /// More local redirects than allowed (`Location: /local` chains).
    #[error("more than {0} local redirects")]
    TooManyRedirects(u8),
    /// A local redirect to a target that is not a valid request target.
    #[error("local redirect to an invalid target")]
    BadRedirect,
    /// The router was gone when a local redirect was to be followed.
    #[error("local redirect cannot be routed")]
    Unroutable,
    /// A plugin's `handle` returned an error status.
    #[error("plugin handle returned {0}")]
    PluginFailed(i32),
    /// The thread a plugin's `handle` ran on failed.
    #[error("plugin thread: {0}")]
    PluginThread(String),
    /// The script may not run as the user its route says (suEXEC's checks: owned by
    /// another, writable by others, an owner below `min_uid`); the reason is for the log.
    #[error("refused to run the script: {0}")]
    Refused(String),
    /// The helper of the script's route could not be started.
    #[error("no spawn helper for this route: {0}")]
    HelperUnavailable(String),
    /// The script used up its CPU time (SIGXCPU).
    #[error("script ended by its cpu limit (SIGXCPU)")]
    CpuLimit,
    /// The script wrote past its file-size limit (SIGXFSZ).
    #[error("script ended by its file_size limit (SIGXFSZ)")]
    FileSizeLimit,
    /// The script failed (`cause`), exiting with `status`, on a route with limits the
    /// kernel ends no script for by a signal of their own (memory, processes, open files):
    /// the likely cause, which the log line names; the client gets `cause`'s status.
    #[error("{cause} (script {status})")]
    UnderLimits {
        /// What the response saw.
        cause: Box<GatewayError>,
        /// How the script ended.
        status: std::process::ExitStatus,
    },
}

impl GatewayError {
    /// Fail with this error of the program called `name`.
    pub(crate) fn fail<T>(self, name: &str) -> Result<T, HandlerError> {
        Err(HandlerError::from(self).of_program(name, ""))
    }

    /// SPEC §5.4, §5.6: the status a client gets for this failure.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::NoSlot(_) | GatewayError::ClientBusy | GatewayError::Busy => {
                status::SERVICE_UNAVAILABLE
            }
            GatewayError::BadOutput(_)
            | GatewayError::ReadOutput(_)
            | GatewayError::NoResponse
            | GatewayError::BadRedirect => status::BAD_GATEWAY,
            GatewayError::IdleBeforeHead
            | GatewayError::Idle
            | GatewayError::Timeout
            | GatewayError::CpuLimit => status::GATEWAY_TIMEOUT,
            GatewayError::FileSizeLimit => status::BAD_GATEWAY,
            GatewayError::Refused(_) => status::FORBIDDEN,
            GatewayError::Spawn(_)
            | GatewayError::HelperUnavailable(_)
            | GatewayError::NoHelper
            | GatewayError::TooManyRedirects(_)
            | GatewayError::Unroutable
            | GatewayError::PluginFailed(_)
            | GatewayError::PluginThread(_) => status::INTERNAL_SERVER_ERROR,
            GatewayError::UnderLimits { cause, .. } => cause.status(),
        }
    }

    /// The one log line for this failure: queueing is the server's normal back-pressure
    /// (debug); everything else is an operator's business (warn).
    fn log(&self, script: &str, limits: Option<&str>) {
        let limits = limits.unwrap_or("none");
        match self {
            GatewayError::NoSlot(_) | GatewayError::ClientBusy => {
                debug!(script, error = %self, "request refused");
            }
            GatewayError::Timeout | GatewayError::Idle | GatewayError::IdleBeforeHead => {
                warn!(script, error = %self, "script stopped; process group killed");
            }
            GatewayError::CpuLimit | GatewayError::FileSizeLimit => {
                warn!(script, error = %self, limits, "script ended by a limit");
            }
            GatewayError::Refused(_) => warn!(script, error = %self, "script refused"),
            GatewayError::UnderLimits { .. } => {
                warn!(script, error = %self, limits, "script failed under limits");
            }
            _ => warn!(script, error = %self, limits, "gateway failure"),
        }
    }

    /// A short name of the failure, for the access log.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            GatewayError::NoSlot(_) => "no_slot",
            GatewayError::ClientBusy => "client_limit",
            GatewayError::Busy => "busy",
            GatewayError::Spawn(_) => "spawn_failed",
            GatewayError::NoHelper | GatewayError::HelperUnavailable(_) => "no_helper",
            GatewayError::BadOutput(_) => "bad_output",
            GatewayError::ReadOutput(_) => "read_failed",
            GatewayError::IdleBeforeHead | GatewayError::Idle => "idle_timeout",
            GatewayError::Timeout => "timeout",
            GatewayError::NoResponse => "no_response",
            GatewayError::TooManyRedirects(_) => "redirect_loop",
            GatewayError::BadRedirect | GatewayError::Unroutable => "bad_redirect",
            GatewayError::PluginFailed(_) | GatewayError::PluginThread(_) => "plugin_failed",
            GatewayError::Refused(_) => "refused",
            GatewayError::CpuLimit => "cpu_limit",
            GatewayError::FileSizeLimit => "file_size_limit",
            GatewayError::UnderLimits { .. } => "failed_under_limits",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_status() {
        let cases: Vec<(GatewayError, u16)> = vec![
            (GatewayError::NoSlot(Duration::from_secs(5)), 503),
            (GatewayError::Busy, 503),
            (GatewayError::ClientBusy, 503),
            (GatewayError::Spawn(std::io::Error::other("x")), 500),
            (GatewayError::NoHelper, 500),
            (GatewayError::BadOutput("no blank line"), 502),
            (GatewayError::ReadOutput(std::io::Error::other("x")), 502),
            (GatewayError::IdleBeforeHead, 504),
            (GatewayError::Idle, 504),
            (GatewayError::Timeout, 504),
            (GatewayError::NoResponse, 502),
            (GatewayError::TooManyRedirects(10), 500),
            (GatewayError::BadRedirect, 502),
            (GatewayError::Unroutable, 500),
            (GatewayError::PluginFailed(-1), 500),
            (GatewayError::PluginThread("panicked".into()), 500),
            (GatewayError::Refused("writable by others".into()), 403),
            (GatewayError::HelperUnavailable("gone".into()), 500),
            (GatewayError::CpuLimit, 504),
            (GatewayError::FileSizeLimit, 502),
            (
                GatewayError::UnderLimits {
                    cause: Box::new(GatewayError::NoResponse),
                    status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
                },
                502,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error}");
            assert_eq!(HandlerError::from(error).status(), status);
        }
        assert_eq!(HandlerError::Disconnected.status(), 500);
        assert_eq!(HandlerError::from(BodyError::TooLarge).status(), 413);
    }
}
