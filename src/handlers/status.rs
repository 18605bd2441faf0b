//! `handler = "status"`: uptime, open connections, requests served and responses by
//! framing, as text or, with `?format=json`, as JSON.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::response::Response;
use crate::stats::Stats;

/// The status page.
pub(crate) struct Status {
    stats: Arc<Stats>,
}

impl Status {
    /// A status page over the server's counters.
    pub(crate) fn new(stats: Arc<Stats>) -> Status {
        Status { stats }
    }
}

impl Handler for Status {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let snap = self.stats.snapshot();
            let json = req.head.query().split('&').any(|kv| kv == "format=json");
            let body = if json {
                let mut s = serde_json::to_string_pretty(&snap)
                    .map_err(|e| HandlerError::Other(e.to_string()))?;
                s.push('\n');
                res.set_header("Content-Type", "application/json");
                s
            } else {
                res.set_header("Content-Type", "text/plain; charset=utf-8");
                let mut s = String::new();
                let value =
                    serde_json::to_value(snap).map_err(|e| HandlerError::Other(e.to_string()))?;
                if let serde_json::Value::Object(map) = value {
                    for (k, v) in map {
                        let _ = writeln!(s, "{k}: {v}");
                    }
                }
                s
            };
            res.set_header("Cache-Control", "no-store");
            res.write(body).await
        })
    }
}
