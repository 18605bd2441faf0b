//! Raw sections → validated config: defaults applied, ranges checked, paths resolved. The same
//! output and CGI builders serve the server-wide sections and each route's overrides.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::error::{join_key, ConfigError, Source};
use super::isolation::group_gid;
use super::model::{
    AccessLog, CgiConfig, ForwardedHeaders, Identity, Limits, LogConfig, OutputConfig,
    ProxyProtocol, RunAs, Sandbox, ServerConfig, TlsConfig, Trusted, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_SESSION_CACHE, MAX_MAX_HEADERS, MAX_MAX_HEAD_BYTES, MIN_MAX_HEAD_BYTES,
};
use super::raw::{Field, RawCgi, RawLimits, RawLog, RawOutput, RawSandbox, RawServer, RawTls};
use super::units::{DurationValue, ListenAddr, SizeValue};

/// A check on a value; the error is the message after the key.
type Check<'c, T> = &'c dyn Fn(&T) -> Result<(), String>;

/// `out.field = table.pick(raw.field, out.field, "field", check)?`: the key in messages is the
/// field's own name, so the two cannot drift apart.
macro_rules! set {
    ($table:expr, $out:ident . $field:ident, $raw:ident, $check:expr) => {
        $out.$field = $table.pick($raw.$field, $out.$field, stringify!($field), $check)?
    };
}

/// What building needs: the text for positions and the folder for paths.
pub(crate) struct Builder<'a> {
    pub(crate) src: Source<'a>,
    pub(crate) base_dir: PathBuf,
}

/// One table of the file, so keys in messages get their full path (`route[2].timeout`).
struct Table<'b> {
    ctx: &'b Builder<'b>,
    path: &'b str,
}

impl Table<'_> {
    /// The value of `raw` converted to `T` and checked, or `default` when the key is absent.
    fn pick<W, T>(
        &self,
        raw: Field<W>,
        default: T,
        name: &str,
        check: Check<'_, T>,
    ) -> Result<T, ConfigError>
    where
        W: TryInto<T>,
    {
        let Some(raw) = raw else {
            return Ok(default);
        };
        let span = raw.span();
        let key = join_key(self.path, name);
        let value: T = raw.into_inner().try_into().map_err(|_| {
            self.ctx
                .src
                .invalid(span.clone(), &key, "value is too large")
        })?;
        check(&value).map_err(|message| self.ctx.src.invalid(span, key, message))?;
        Ok(value)
    }
}

impl Builder<'_> {
    fn table<'b>(&'b self, path: &'b str) -> Table<'b> {
        Table { ctx: self, path }
    }

    pub(crate) fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
        let mut c = ServerConfig::default();
        let t = self.table("server");
        c.listen = self.listen(raw.listen, c.listen, "server.listen", &[])?;
        set!(t, c.max_connections, raw, &at_least(1));
        set!(t, c.max_requests_per_connection, raw, &at_least(1));
        set!(t, c.header_timeout, raw, &positive);
        set!(t, c.body_timeout, raw, &positive);
        set!(t, c.keep_alive_timeout, raw, &positive);
        set!(t, c.write_timeout, raw, &positive);
        let head_range = between(MIN_MAX_HEAD_BYTES, MAX_MAX_HEAD_BYTES);
        set!(t, c.max_head_bytes, raw, &head_range);
        set!(t, c.max_headers, raw, &between(1, MAX_MAX_HEADERS));
        set!(t, c.max_body_bytes, raw, &any);
        set!(t, c.shutdown_timeout, raw, &any);
        set!(t, c.half_close, raw, &any);
        c.user = self.server_user(raw.user, raw.group)?;
        set!(t, c.reuse_port, raw, &any);
        if let Some(list) = raw.trusted_proxies {
            let cidrs = list.into_inner().into_iter().map(|c| c.into_inner().0);
            c.trusted_proxies = Trusted(cidrs.collect());
        }
        let trusted = &c.trusted_proxies;
        let key = "server.proxy_protocol";
        if let Some(m) = self.trusting(raw.proxy_protocol, ProxyProtocol::Off, trusted, key)? {
            c.proxy_protocol = m;
        }
        let key = "server.forwarded";
        if let Some(m) = self.trusting(raw.forwarded, ForwardedHeaders::Off, trusted, key)? {
            c.forwarded = m;
        }
        Ok(c)
    }

    /// A mode that believes `trusted_proxies` (`proxy_protocol`, `forwarded`): anything
    /// but `off` needs some.
    fn trusting<T: PartialEq>(
        &self,
        raw: Field<T>,
        off: T,
        trusted: &Trusted,
        key: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(mode) = raw else {
            return Ok(None);
        };
        if trusted.0.is_empty() && *mode.get_ref() != off {
            let message = "needs server.trusted_proxies: the sources to believe";
            return Err(self.src.invalid(mode.span(), key, message));
        }
        Ok(Some(mode.into_inner()))
    }

    /// `[server] user` and `group`: who the server becomes once it has bound its listeners.
    fn server_user(
        &self,
        user: Field<String>,
        group: Field<String>,
    ) -> Result<Option<Identity>, ConfigError> {
        let gid = self.group(group.as_ref(), "server.group")?;
        let Some(user) = user else {
            return match group {
                Some(g) => Err(self
                    .src
                    .invalid(g.span(), "server.group", "needs server.user")),
                None => Ok(None),
            };
        };
        let identity = Identity::of_user(user.get_ref(), gid)
            .map_err(|m| self.src.invalid(user.span(), "server.user", m))?;
        Ok(Some(identity))
    }

    /// The gid of a `group` key, if present.
    fn group(
        &self,
        group: Option<&Spanned<String>>,
        key: &str,
    ) -> Result<Option<u32>, ConfigError> {
        group
            .map(|g| group_gid(g.get_ref()).map_err(|m| self.src.invalid(g.span(), key, m)))
            .transpose()
    }

    pub(crate) fn log(&self, raw: RawLog) -> Result<LogConfig, ConfigError> {
        let mut c = LogConfig::default();
        let t = self.table("log");
        set!(t, c.level, raw, &|level: &String| {
            if level.trim().is_empty() {
                Err("must not be empty (e.g. \"info\" or \"cgigate=debug\")".to_owned())
            } else {
                Ok(())
            }
        });
        if let Some(access) = raw.access {
            let span = access.span();
            c.access = self
                .access_log(&access.into_inner())
                .map_err(|message| self.src.invalid(span, "log.access", message))?;
        }
        set!(t, c.format, raw, &any);
        Ok(c)
    }

    fn access_log(&self, text: &str) -> Result<AccessLog, String> {
        Ok(match text {
            "stdout" => AccessLog::Stdout,
            "stderr" => AccessLog::Stderr,
            "off" => AccessLog::Off,
            "" => return Err("must be stdout, stderr, off or a file path".to_owned()),
            path => AccessLog::File(self.base_dir.join(path)),
        })
    }

    /// `base` with the keys present in `raw` applied. `table` is the key path for messages;
    /// `mode_key` is `mode` in `[output]` and `output` in a route.
    pub(crate) fn output(
        &self,
        mut c: OutputConfig,
        raw: RawOutput,
        table: &str,
        mode_key: &str,
    ) -> Result<OutputConfig, ConfigError> {
        let t = self.table(table);
        c.mode = t.pick(raw.mode, c.mode, mode_key, &any)?;
        set!(t, c.buffer_limit, raw, &any);
        set!(t, c.flush_after, raw, &any);
        Ok(c)
    }

    /// `base` with the keys present in `raw` applied; `table` is the key path for messages.
    /// A table-valued key (`env`, `interpreters`) replaces the base one as a whole.
    pub(crate) fn cgi(
        &self,
        mut c: CgiConfig,
        raw: RawCgi,
        table: &str,
    ) -> Result<CgiConfig, ConfigError> {
        let t = self.table(table);
        set!(t, c.max_children, raw, &at_least(1));
        set!(t, c.max_children_per_client, raw, &any);
        set!(t, c.queue_timeout, raw, &any);
        set!(t, c.timeout, raw, &positive);
        set!(t, c.idle_timeout, raw, &positive);
        set!(t, c.kill_grace, raw, &any);
        set!(t, c.request_body, raw, &any);
        set!(t, c.spawn, raw, &any);
        set!(t, c.spool_memory, raw, &any);
        set!(t, c.pass_auth, raw, &any);
        set!(t, c.nph, raw, &any);
        set!(t, c.capture_max, raw, &at_least(1));
        set!(t, c.capture_secrets, raw, &any);
        if let Some(folder) = raw.capture_failures {
            c.capture_failures = Some(self.path(folder, &join_key(table, "capture_failures"))?);
        }
        if let Some(names) = raw.pass_env {
            c.pass_env = names.into_inner().into_iter().map(|n| n.0).collect();
        }
        if let Some(env) = raw.env {
            c.env = env
                .into_inner()
                .into_iter()
                .map(|(k, v)| (k.0, v.0))
                .collect();
        }
        if let Some(map) = raw.interpreters {
            c.interpreters = map
                .into_inner()
                .into_iter()
                .map(|(ext, program)| (ext.0, self.program(program.0)))
                .collect();
        }
        let min_span = raw.min_uid.as_ref().map(Spanned::span);
        let min_span = min_span.or(raw.min_gid.as_ref().map(Spanned::span));
        set!(t, c.min_uid, raw, &any);
        set!(t, c.min_gid, raw, &any);
        set!(t, c.nice, raw, &between(0, 19));
        if let Some(limits) = raw.limits {
            c.limits = self.limits(c.limits, limits.into_inner(), &join_key(table, "limits"))?;
        }
        if let Some(sandbox) = raw.sandbox {
            let key = join_key(table, "sandbox");
            c.sandbox = self.sandbox(c.sandbox, sandbox.into_inner(), &key)?;
        }
        if let Some(names) = raw.pass_headers {
            c.pass_headers = self.header_names(names.into_inner(), table)?;
        }
        let set_here = raw.user.is_some() || raw.group.is_some() || raw.run_as_owner.is_some();
        self.run_as(&mut c, raw.user, raw.group, raw.run_as_owner, table)?;
        if let (false, Some(span), RunAs::User(identity)) = (set_here, min_span, &c.run_as) {
            // An inherited user must clear this table's own minimum too.
            if let Some((k, message)) = below_minimum(identity, &c) {
                return Err(self.src.invalid(span, join_key(table, k), message));
            }
        }
        Ok(c)
    }

    /// `user`, `group` and `run_as_owner` (each inherited key by key), resolved into whom
    /// scripts run as; a target below `min_uid` or `min_gid` is refused here.
    fn run_as(
        &self,
        c: &mut CgiConfig,
        user: Field<String>,
        group: Field<String>,
        owner: Field<bool>,
        table: &str,
    ) -> Result<(), ConfigError> {
        let key = |k: &str| join_key(table, k);
        let owner_span = owner.as_ref().map(Spanned::span);
        if let Some(owner) = owner {
            c.run_as = if *owner.get_ref() {
                RunAs::Owner
            } else {
                RunAs::Server
            };
        }
        let user_span = user.as_ref().map(Spanned::span);
        if let Some(user) = user {
            c.user = Some(user.into_inner());
            if owner_span.is_none() {
                c.run_as = RunAs::Server;
            }
        }
        let group_span = group.as_ref().map(Spanned::span);
        if let Some(group) = group {
            c.group = Some(group.into_inner());
        }
        let span = user_span
            .clone()
            .or(group_span.clone())
            .or(owner_span.clone());
        let Some(span) = span else {
            return Ok(()); // nothing set here: the base stands
        };
        if c.run_as == RunAs::Owner {
            if user_span.is_some() || group_span.is_some() {
                let message = "user and group cannot be combined with run_as_owner = true";
                return Err(self.src.invalid(span, key("run_as_owner"), message));
            }
            // This table's run_as_owner replaces an inherited user.
            c.user = None;
            c.group = None;
            return Ok(());
        }
        let Some(name) = c.user.clone() else {
            return match group_span {
                Some(g) => Err(self.src.invalid(g, key("group"), "needs user")),
                None => {
                    c.run_as = RunAs::Server;
                    Ok(())
                }
            };
        };
        let gid = match &c.group {
            Some(g) => Some(group_gid(g).map_err(|m| {
                self.src
                    .invalid(group_span.clone().unwrap_or(span.clone()), key("group"), m)
            })?),
            None => None,
        };
        let identity = Identity::of_user(&name, gid).map_err(|m| {
            self.src
                .invalid(user_span.clone().unwrap_or(span.clone()), key("user"), m)
        })?;
        if let Some((k, message)) = below_minimum(&identity, c) {
            let at = if k == "min_uid" {
                user_span.unwrap_or(span)
            } else {
                group_span.or(user_span).unwrap_or(span)
            };
            let k = if k == "min_uid" { "user" } else { "group" };
            return Err(self.src.invalid(at, key(k), message));
        }
        c.run_as = RunAs::User(identity);
        Ok(())
    }

    /// `limits = { … }` over `l`, key by key.
    fn limits(&self, mut l: Limits, raw: RawLimits, table: &str) -> Result<Limits, ConfigError> {
        let t = self.table(table);
        if let Some(v) = raw.cpu {
            l.cpu = Some(t.pick(Some(v), Duration::ZERO, "cpu", &at_least_a_second)?);
        }
        if let Some(v) = raw.memory {
            l.memory = Some(t.pick(Some(v), 0u64, "memory", &at_least(1 << 20))?);
        }
        if let Some(v) = raw.processes {
            l.processes = Some(t.pick(Some(v), 0u64, "processes", &at_least(1))?);
        }
        if let Some(v) = raw.open_files {
            l.open_files = Some(t.pick(Some(v), 0u64, "open_files", &at_least(4))?);
        }
        if let Some(v) = raw.file_size {
            l.file_size = Some(t.pick(Some(v), 0u64, "file_size", &any)?);
        }
        if let Some(v) = raw.core {
            l.core = Some(t.pick(Some(v), 0u64, "core", &any)?);
        }
        Ok(l)
    }

    /// `sandbox = { … }` over `s`, key by key (a list replaces the inherited one).
    fn sandbox(
        &self,
        mut s: Sandbox,
        raw: RawSandbox,
        table: &str,
    ) -> Result<Sandbox, ConfigError> {
        let t = self.table(table);
        set!(t, s.enabled, raw, &any);
        set!(t, s.tcp_connect, raw, &any);
        set!(t, s.tcp_bind, raw, &any);
        set!(t, s.best_effort, raw, &any);
        if let Some(read) = raw.read {
            s.read = self.paths(read.into_inner(), &join_key(table, "read"))?;
        }
        if let Some(write) = raw.write {
            s.write = self.paths(write.into_inner(), &join_key(table, "write"))?;
        }
        Ok(s)
    }

    fn paths(&self, raw: Vec<Spanned<String>>, key: &str) -> Result<Vec<PathBuf>, ConfigError> {
        raw.into_iter().map(|p| self.path(p, key)).collect()
    }

    /// `pass_headers`: field names (tokens), kept in lower case.
    fn header_names(
        &self,
        raw: Vec<Spanned<String>>,
        table: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let key = join_key(table, "pass_headers");
        raw.into_iter()
            .map(|name| {
                let text = name.get_ref();
                let is_token = !text.is_empty()
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if is_token {
                    Ok(text.to_ascii_lowercase())
                } else {
                    let message = format!("{text:?} is not a header name (letters, digits and -)");
                    Err(self.src.invalid(name.span(), key.clone(), message))
                }
            })
            .collect()
    }

    /// A bare program name is left for `PATH` lookup, as a shell would; anything with a slash
    /// is a path and so relative to the config's folder.
    fn program(&self, program: String) -> PathBuf {
        if program.contains('/') {
            self.base_dir.join(program)
        } else {
            PathBuf::from(program)
        }
    }

    /// `[tls]`; `plain` are the plain-HTTP addresses, which TLS cannot also bind.
    pub(crate) fn tls(
        &self,
        raw: Spanned<RawTls>,
        plain: &[SocketAddr],
        trusted: &Trusted,
    ) -> Result<TlsConfig, ConfigError> {
        let span = raw.span();
        let raw = raw.into_inner();
        let required = |key: &str| {
            let message = "required when [tls] is present";
            self.src.invalid(span.clone(), key, message)
        };
        if raw.listen.is_none() {
            return Err(required("tls.listen"));
        }
        let cert = raw.cert.ok_or_else(|| required("tls.cert"))?;
        let key = raw.key.ok_or_else(|| required("tls.key"))?;
        let mut c = TlsConfig {
            listen: self.listen(raw.listen, Vec::new(), "tls.listen", plain)?,
            cert: self.path(cert, "tls.cert")?,
            key: self.path(key, "tls.key")?,
            session_cache: DEFAULT_SESSION_CACHE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            proxy_protocol: ProxyProtocol::Off,
            ticket_keys: raw
                .ticket_keys
                .map(|k| self.path(k, "tls.ticket_keys"))
                .transpose()?,
        };
        let t = self.table("tls");
        set!(t, c.session_cache, raw, &any);
        set!(t, c.handshake_timeout, raw, &positive);
        let key = "tls.proxy_protocol";
        if let Some(m) = self.trusting(raw.proxy_protocol, ProxyProtocol::Off, trusted, key)? {
            c.proxy_protocol = m;
        }
        Ok(c)
    }

    /// A non-empty path string, resolved against the config's folder.
    pub(crate) fn path(&self, raw: Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let span = raw.span();
        let text = raw.into_inner();
        if text.is_empty() {
            return Err(self.src.invalid(span, key, "path must not be empty"));
        }
        Ok(self.base_dir.join(text))
    }

    /// A non-empty address list. A fixed port listed twice, here or in `taken`, is refused
    /// now: at bind time it would fail without a line number.
    fn listen(
        &self,
        raw: Field<Vec<Spanned<ListenAddr>>>,
        default: Vec<SocketAddr>,
        key: &str,
        taken: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(default);
        };
        let span = raw.span();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for (i, entry) in raw.into_inner().into_iter().enumerate() {
            let span = entry.span();
            let addr = entry.into_inner().0;
            if addr.port() != 0 && (taken.contains(&addr) || addrs.contains(&addr)) {
                let key = format!("{key}[{}]", i + 1);
                return Err(self
                    .src
                    .invalid(span, key, format!("{addr} is listed twice")));
            }
            addrs.push(addr);
        }
        if addrs.is_empty() {
            return Err(self
                .src
                .invalid(span, key, "at least one address is required"));
        }
        Ok(addrs)
    }
}

/// Which minimum (`min_uid` or `min_gid`) `identity` falls below, and the message.
fn below_minimum(identity: &Identity, c: &CgiConfig) -> Option<(&'static str, String)> {
    if identity.uid < c.min_uid {
        return Some((
            "min_uid",
            format!(
                "user {:?} has uid {}, below min_uid {} (set min_uid to allow it)",
                identity.user, identity.uid, c.min_uid
            ),
        ));
    }
    if identity.gid < c.min_gid {
        return Some((
            "min_gid",
            format!(
                "scripts would run with gid {}, below min_gid {} (set min_gid to allow it)",
                identity.gid, c.min_gid
            ),
        ));
    }
    None
}

fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

fn at_least_a_second(d: &Duration) -> Result<(), String> {
    if *d < Duration::from_secs(1) {
        Err("must be at least 1s (RLIMIT_CPU counts whole seconds)".to_owned())
    } else {
        Ok(())
    }
}

fn positive(d: &Duration) -> Result<(), String> {
    if d.is_zero() {
        Err("must be greater than 0".to_owned())
    } else {
        Ok(())
    }
}

fn at_least<T: PartialOrd + Display + Copy>(min: T) -> impl Fn(&T) -> Result<(), String> {
    move |v| {
        if *v < min {
            Err(format!("must be at least {min} (got {v})"))
        } else {
            Ok(())
        }
    }
}

fn between<T: PartialOrd + Display + Copy>(min: T, max: T) -> impl Fn(&T) -> Result<(), String> {
    move |v| {
        if *v < min || *v > max {
            Err(format!("must be between {min} and {max} (got {v})"))
        } else {
            Ok(())
        }
    }
}

impl From<DurationValue> for Duration {
    fn from(value: DurationValue) -> Self {
        value.0
    }
}

impl From<SizeValue> for u64 {
    fn from(value: SizeValue) -> Self {
        value.0
    }
}

impl TryFrom<SizeValue> for usize {
    type Error = std::num::TryFromIntError;

    fn try_from(value: SizeValue) -> Result<Self, Self::Error> {
        usize::try_from(value.0)
    }
}
