//! [`Error`]: the ABI's status codes as an enum, plus a plugin's own failures.

use std::fmt;
use std::io;

use crate::abi;

/// Why a call to the server, or a plugin's `handle`, failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The client is gone: nothing more can be written ([`abi::E_DISCONNECTED`]).
    Disconnected,
    /// Not allowed now, e.g. headers sent twice or the mode set after them ([`abi::E_STATE`]).
    State,
    /// An argument is invalid, e.g. a CR or LF in a header ([`abi::E_INVALID`]).
    Invalid,
    /// A buffer, or the limit given to [`Request::read_body_to_end`](crate::Request::read_body_to_end),
    /// is too small ([`abi::E_TOO_SMALL`]).
    TooSmall,
    /// No such server variable ([`abi::E_NOT_FOUND`]).
    NotFound,
    /// The plugin's own failure; `handle` returns [`abi::ERROR`] for it.
    Plugin(String),
    /// Any other status the server returned.
    Status(i32),
}

impl Error {
    /// The ABI status for this error.
    pub fn status(&self) -> i32 {
        match self {
            Error::Disconnected => abi::E_DISCONNECTED,
            Error::State => abi::E_STATE,
            Error::Invalid => abi::E_INVALID,
            Error::TooSmall => abi::E_TOO_SMALL,
            Error::NotFound => abi::E_NOT_FOUND,
            Error::Plugin(_) => abi::ERROR,
            Error::Status(status) => *status,
        }
    }

    /// `Ok` for [`abi::OK`], the matching error for any other status.
    pub(crate) fn check(status: i32) -> Result<(), Error> {
        match status {
            abi::OK => Ok(()),
            other => Err(Error::from(other)),
        }
    }
}

impl From<i32> for Error {
    fn from(status: i32) -> Error {
        match status {
            abi::E_DISCONNECTED => Error::Disconnected,
            abi::E_STATE => Error::State,
            abi::E_INVALID => Error::Invalid,
            abi::E_TOO_SMALL => Error::TooSmall,
            abi::E_NOT_FOUND => Error::NotFound,
            other => Error::Status(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Disconnected => f.write_str("the client disconnected"),
            Error::State => f.write_str("not allowed in the response's current state"),
            Error::Invalid => f.write_str("invalid argument"),
            Error::TooSmall => f.write_str("buffer or limit too small"),
            Error::NotFound => f.write_str("no such server variable"),
            Error::Plugin(message) => f.write_str(message),
            Error::Status(status) => write!(f, "the server returned status {status}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::Plugin(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::Plugin(message.to_owned())
    }
}

/// So that `write!(req, …)?` works in `handle`: an error that came from the server comes
/// back as itself, any other I/O error becomes [`Error::Plugin`].
impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            Some(inner) => inner.clone(),
            None => Error::Plugin(error.to_string()),
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        let kind = match error {
            Error::Disconnected => io::ErrorKind::BrokenPipe,
            Error::Invalid => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_both_ways() {
        for status in [
            abi::E_DISCONNECTED,
            abi::E_STATE,
            abi::E_INVALID,
            abi::E_TOO_SMALL,
            abi::E_NOT_FOUND,
            -42,
        ] {
            assert_eq!(Error::from(status).status(), status);
        }
        assert_eq!(Error::from(abi::E_STATE), Error::State);
        assert_eq!(Error::from(-42), Error::Status(-42));
        assert_eq!(Error::Plugin("x".into()).status(), abi::ERROR);
        assert_eq!(Error::check(abi::OK), Ok(()));
        assert_eq!(Error::check(abi::E_INVALID), Err(Error::Invalid));
    }

    #[test]
    fn io_errors_round_trip() {
        let io = io::Error::from(Error::Disconnected);
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(Error::from(io), Error::Disconnected);
        let other = io::Error::new(io::ErrorKind::NotFound, "no file");
        assert_eq!(Error::from(other), Error::Plugin("no file".into()));
    }

    #[test]
    fn messages_read_well() {
        assert_eq!(
            Error::Plugin("asked to fail".into()).to_string(),
            "asked to fail"
        );
        assert_eq!(
            Error::Status(-9).to_string(),
            "the server returned status -9"
        );
    }
}
