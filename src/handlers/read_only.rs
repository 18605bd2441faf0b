//! What the read-only handlers (the landing page, static files) share: they take GET and
//! HEAD, and refuse the rest alike.

use crate::handler::{HandlerError, Request};
use crate::http::status;
use crate::response::Response;

/// Whether the request is a GET or a HEAD: all that read-only handlers answer.
pub(crate) fn is_get_or_head(req: &Request) -> bool {
    matches!(req.head.method_str(), "GET" | "HEAD")
}

/// 405 for a read-only handler, naming the methods it takes (RFC 9110 §15.5.6).
pub(crate) async fn get_or_head_only(res: &mut Response) -> Result<(), HandlerError> {
    res.set_header("Allow", "GET, HEAD");
    res.plain(status::METHOD_NOT_ALLOWED, "Method Not Allowed")
        .await
}
