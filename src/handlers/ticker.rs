//! `handler = "ticker"`: writes `tick N` lines with a pause between them — an in-process producer for comparing buffered, streamed and auto output without
//! a CGI. Query: `count` (default 5, at most 1000), `interval_ms` (default 200, at most 10000).

use std::time::Duration;

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::response::Response;

/// The ticker.
pub(crate) struct Ticker;

fn param(query: &str, name: &str, default: u64, max: u64) -> u64 {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
        .min(max)
}

impl Handler for Ticker {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let query = req.head.query();
            let count = param(query, "count", 5, 1000);
            let interval = Duration::from_millis(param(query, "interval_ms", 200, 10_000));
            res.set_header("Content-Type", "text/plain; charset=utf-8");
            for i in 1..=count {
                if i > 1 {
                    tokio::time::sleep(interval).await;
                }
                // No flush: like a CGI writing to stdout, the route's output mode decides.
                res.write(format!("tick {i}\n")).await?;
            }
            Ok(())
        })
    }
}
