//! The config file exactly as written (SPEC §2): every key optional and spanned, so defaults
//! are applied and values checked afterwards with their positions still known.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::model::{LogFormat, OutputMode, RequestBody, SpawnMode};
use super::units::{
    CidrValue, DurationValue, EnvName, EnvValue, Extension, ListenAddr, Program, SizeValue,
};
use crate::proxy::{ForwardedHeaders, ProxyProtocol};

/// A key that may be absent, with the position of its value when present.
pub(crate) type Field<T> = Option<Spanned<T>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    #[serde(default)]
    pub(crate) log: RawLog,
    #[serde(default)]
    pub(crate) output: RawOutput,
    #[serde(default)]
    pub(crate) cgi: RawCgi,
    #[serde(default)]
    pub(crate) route: Vec<Spanned<RawRoute>>,
    pub(crate) tls: Option<Spanned<RawTls>>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) listen: Field<Vec<Spanned<ListenAddr>>>,
    pub(crate) max_connections: Field<usize>,
    pub(crate) max_requests_per_connection: Field<u64>,
    pub(crate) header_timeout: Field<DurationValue>,
    pub(crate) body_timeout: Field<DurationValue>,
    pub(crate) keep_alive_timeout: Field<DurationValue>,
    pub(crate) write_timeout: Field<DurationValue>,
    pub(crate) max_head_bytes: Field<SizeValue>,
    pub(crate) max_headers: Field<usize>,
    pub(crate) max_body_bytes: Field<SizeValue>,
    pub(crate) shutdown_timeout: Field<DurationValue>,
    pub(crate) half_close: Field<bool>,
    pub(crate) user: Field<String>,
    pub(crate) group: Field<String>,
    pub(crate) reuse_port: Field<bool>,
    pub(crate) proxy_protocol: Field<ProxyProtocol>,
    pub(crate) trusted_proxies: Field<Vec<Spanned<CidrValue>>>,
    pub(crate) forwarded: Field<ForwardedHeaders>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub(crate) level: Field<String>,
    pub(crate) access: Field<String>,
    pub(crate) format: Field<LogFormat>,
}

/// `[output]`, and the same three settings taken from a route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutput {
    pub(crate) mode: Field<OutputMode>,
    pub(crate) buffer_limit: Field<SizeValue>,
    pub(crate) flush_after: Field<DurationValue>,
}

/// `[cgi]`, and the CGI settings taken from a route (where `max_children` and `spawn` stay
/// `None`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCgi {
    pub(crate) max_children: Field<usize>,
    pub(crate) max_children_per_client: Field<usize>,
    pub(crate) queue_timeout: Field<DurationValue>,
    pub(crate) timeout: Field<DurationValue>,
    pub(crate) idle_timeout: Field<DurationValue>,
    pub(crate) kill_grace: Field<DurationValue>,
    pub(crate) request_body: Field<RequestBody>,
    pub(crate) spawn: Field<SpawnMode>,
    pub(crate) spool_memory: Field<SizeValue>,
    pub(crate) pass_auth: Field<bool>,
    pub(crate) nph: Field<bool>,
    pub(crate) pass_env: Field<Vec<EnvName>>,
    pub(crate) env: Field<BTreeMap<EnvName, EnvValue>>,
    pub(crate) interpreters: Field<BTreeMap<Extension, Program>>,
    pub(crate) user: Field<String>,
    pub(crate) group: Field<String>,
    pub(crate) run_as_owner: Field<bool>,
    pub(crate) min_uid: Field<u32>,
    pub(crate) min_gid: Field<u32>,
    pub(crate) limits: Field<RawLimits>,
    pub(crate) nice: Field<i32>,
    pub(crate) pass_headers: Field<Vec<Spanned<String>>>,
    pub(crate) sandbox: Field<RawSandbox>,
    pub(crate) capture_failures: Field<String>,
    pub(crate) capture_max: Field<usize>,
    pub(crate) capture_secrets: Field<bool>,
}

/// `limits = { … }` (SPEC §9).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) cpu: Field<DurationValue>,
    pub(crate) memory: Field<SizeValue>,
    pub(crate) processes: Field<u64>,
    pub(crate) open_files: Field<u64>,
    pub(crate) file_size: Field<SizeValue>,
    pub(crate) core: Field<SizeValue>,
}

/// `[cgi.sandbox]`, or `sandbox = { … }` on a route (SPEC §9).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSandbox {
    pub(crate) enabled: Field<bool>,
    pub(crate) read: Field<Vec<Spanned<String>>>,
    pub(crate) write: Field<Vec<Spanned<String>>>,
    pub(crate) tcp_connect: Field<bool>,
    pub(crate) tcp_bind: Field<bool>,
    pub(crate) best_effort: Field<bool>,
}

/// One `[[route]]`. `flatten` cannot be combined with `deny_unknown_fields`, so the output and
/// CGI keys are repeated here and split off by [`RawRoute::split`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) prefix: Field<String>,
    pub(crate) handler: Field<String>,
    pub(crate) static_dir: Field<String>,
    pub(crate) cgi_dir: Field<String>,
    pub(crate) cgi_script: Field<String>,
    pub(crate) plugin: Field<String>,
    pub(crate) plugin_config: Field<String>,
    pub(crate) output: Field<OutputMode>,
    pub(crate) buffer_limit: Field<SizeValue>,
    pub(crate) flush_after: Field<DurationValue>,
    /// Accepted only to be refused with a precise message.
    pub(crate) max_children: Field<IgnoredAny>,
    pub(crate) queue_timeout: Field<DurationValue>,
    pub(crate) timeout: Field<DurationValue>,
    pub(crate) idle_timeout: Field<DurationValue>,
    pub(crate) kill_grace: Field<DurationValue>,
    pub(crate) request_body: Field<RequestBody>,
    pub(crate) spool_memory: Field<SizeValue>,
    pub(crate) pass_auth: Field<bool>,
    pub(crate) nph: Field<bool>,
    pub(crate) pass_env: Field<Vec<EnvName>>,
    pub(crate) env: Field<BTreeMap<EnvName, EnvValue>>,
    pub(crate) interpreters: Field<BTreeMap<Extension, Program>>,
    pub(crate) user: Field<String>,
    pub(crate) group: Field<String>,
    pub(crate) run_as_owner: Field<bool>,
    pub(crate) min_uid: Field<u32>,
    pub(crate) min_gid: Field<u32>,
    pub(crate) limits: Field<RawLimits>,
    pub(crate) nice: Field<i32>,
    pub(crate) pass_headers: Field<Vec<Spanned<String>>>,
    pub(crate) sandbox: Field<RawSandbox>,
    pub(crate) capture_failures: Field<String>,
    pub(crate) capture_max: Field<usize>,
    pub(crate) capture_secrets: Field<bool>,
}

/// The part of a route that says what it is, once its output and CGI settings are split off.
#[derive(Debug)]
pub(crate) struct RawRouteHead {
    pub(crate) prefix: Field<String>,
    pub(crate) handler: Field<String>,
    pub(crate) static_dir: Field<String>,
    pub(crate) cgi_dir: Field<String>,
    pub(crate) cgi_script: Field<String>,
    pub(crate) plugin: Field<String>,
    pub(crate) plugin_config: Field<String>,
    pub(crate) max_children: Field<IgnoredAny>,
}

impl RawRoute {
    /// Separates what the route is from the settings it overrides.
    pub(crate) fn split(self) -> (RawRouteHead, RawOutput, RawCgi) {
        let head = RawRouteHead {
            prefix: self.prefix,
            handler: self.handler,
            static_dir: self.static_dir,
            cgi_dir: self.cgi_dir,
            cgi_script: self.cgi_script,
            plugin: self.plugin,
            plugin_config: self.plugin_config,
            max_children: self.max_children,
        };
        let output = RawOutput {
            mode: self.output,
            buffer_limit: self.buffer_limit,
            flush_after: self.flush_after,
        };
        let cgi = RawCgi {
            max_children: None,
            max_children_per_client: None,
            queue_timeout: self.queue_timeout,
            timeout: self.timeout,
            idle_timeout: self.idle_timeout,
            kill_grace: self.kill_grace,
            request_body: self.request_body,
            spawn: None,
            spool_memory: self.spool_memory,
            pass_auth: self.pass_auth,
            nph: self.nph,
            pass_env: self.pass_env,
            env: self.env,
            interpreters: self.interpreters,
            user: self.user,
            group: self.group,
            run_as_owner: self.run_as_owner,
            min_uid: self.min_uid,
            min_gid: self.min_gid,
            limits: self.limits,
            nice: self.nice,
            pass_headers: self.pass_headers,
            sandbox: self.sandbox,
            capture_failures: self.capture_failures,
            capture_max: self.capture_max,
            capture_secrets: self.capture_secrets,
        };
        (head, output, cgi)
    }
}

/// `[tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) listen: Field<Vec<Spanned<ListenAddr>>>,
    pub(crate) cert: Field<String>,
    pub(crate) key: Field<String>,
    pub(crate) session_cache: Field<usize>,
    pub(crate) handshake_timeout: Field<DurationValue>,
    pub(crate) proxy_protocol: Field<ProxyProtocol>,
    pub(crate) ticket_keys: Field<String>,
}
