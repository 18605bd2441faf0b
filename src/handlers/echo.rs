//! `handler = "echo"`: describes the request back — method, target, version, headers and
//! the length of the body (which it reads to the end, de-chunked).

use std::fmt::Write as _;

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::response::Response;

/// The echo handler.
pub(crate) struct Echo;

impl Handler for Echo {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let mut body_len = 0u64;
            while let Some(piece) = req.body.read().await? {
                body_len += piece.len() as u64;
            }
            let h = &req.head;
            let mut s = String::new();
            let _ = writeln!(s, "method: {}", h.method_str());
            let _ = writeln!(s, "target: {}", h.target_str());
            let _ = writeln!(s, "version: {}", h.version.as_str());
            for field in &h.headers {
                let _ = writeln!(
                    s,
                    "header: {}: {}",
                    field.name_str(),
                    String::from_utf8_lossy(&field.value)
                );
            }
            let _ = writeln!(s, "body-length: {body_len}");
            res.set_header("Content-Type", "text/plain; charset=utf-8");
            res.write(s).await
        })
    }
}
