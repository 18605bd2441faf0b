//! `handler = "hello"`: answers `hello` — the smallest possible in-process handler, the
//! counterpart of nginx's `return 200 "hello\n"` in the benchmarks.

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::response::Response;

/// The hello handler.
pub(crate) struct Hello;

impl Handler for Hello {
    fn call<'a>(
        &'a self,
        _req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            res.header("Content-Type", "text/plain");
            res.write(bytes::Bytes::from_static(b"hello\n")).await
        })
    }
}
