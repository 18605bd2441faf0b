//! Status codes (RFC 9110 §15): the ones the server itself sends, by name, and the reason
//! phrase of every registered code.

/// 200 OK.
pub(crate) const OK: u16 = 200;
/// 204 No Content: never a body (RFC 9110 §15.3.5).
pub(crate) const NO_CONTENT: u16 = 204;
/// 301 Moved Permanently.
pub(crate) const MOVED_PERMANENTLY: u16 = 301;
/// 302 Found.
pub(crate) const FOUND: u16 = 302;
/// 304 Not Modified: never a body (RFC 9110 §15.4.5).
pub(crate) const NOT_MODIFIED: u16 = 304;
/// 400 Bad Request.
pub(crate) const BAD_REQUEST: u16 = 400;
/// 403 Forbidden.
pub(crate) const FORBIDDEN: u16 = 403;
/// 404 Not Found.
pub(crate) const NOT_FOUND: u16 = 404;
/// 405 Method Not Allowed.
pub(crate) const METHOD_NOT_ALLOWED: u16 = 405;
/// 408 Request Timeout.
pub(crate) const REQUEST_TIMEOUT: u16 = 408;
/// 413 Content Too Large.
pub(crate) const CONTENT_TOO_LARGE: u16 = 413;
/// 414 URI Too Long.
pub(crate) const URI_TOO_LONG: u16 = 414;
/// 417 Expectation Failed.
pub(crate) const EXPECTATION_FAILED: u16 = 417;
/// 431 Request Header Fields Too Large.
pub(crate) const HEADER_FIELDS_TOO_LARGE: u16 = 431;
/// 500 Internal Server Error.
pub(crate) const INTERNAL_SERVER_ERROR: u16 = 500;
/// 501 Not Implemented.
pub(crate) const NOT_IMPLEMENTED: u16 = 501;
/// 502 Bad Gateway.
pub(crate) const BAD_GATEWAY: u16 = 502;
/// 503 Service Unavailable.
pub(crate) const SERVICE_UNAVAILABLE: u16 = 503;
/// 504 Gateway Timeout.
pub(crate) const GATEWAY_TIMEOUT: u16 = 504;
/// 505 HTTP Version Not Supported.
pub(crate) const HTTP_VERSION_NOT_SUPPORTED: u16 = 505;

/// Whether a response with this status never has content (RFC 9110 §6.4.1: 1xx, 204, 304).
pub(crate) fn has_no_content(status: u16) -> bool {
    status < OK || status == NO_CONTENT || status == NOT_MODIFIED
}

/// Reason phrase for a status code (IANA HTTP Status Code Registry, RFC 9110 §15); "" for
/// codes the registry does not assign.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100..=199 => reason_1xx(status),
        200..=299 => reason_2xx(status),
        300..=399 => reason_3xx(status),
        400..=499 => reason_4xx(status),
        500..=599 => reason_5xx(status),
        _ => "",
    }
}

fn reason_1xx(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        _ => "",
    }
}

fn reason_2xx(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        _ => "",
    }
}

fn reason_3xx(status: u16) -> &'static str {
    match status {
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        _ => "",
    }
}

fn reason_4xx(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        // RFC 9110 §15.5.14 renamed "Payload Too Large".
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        // RFC 9110 §15.5.21 renamed "Unprocessable Entity".
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        _ => "",
    }
}

fn reason_5xx(status: u16) -> &'static str {
    match status {
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_phrases() {
        let cases = [
            (100, "Continue"),
            (200, "OK"),
            (204, "No Content"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (404, "Not Found"),
            (408, "Request Timeout"),
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
            (505, "HTTP Version Not Supported"),
        ];
        for (status, phrase) in cases {
            assert_eq!(reason(status), phrase, "{status}");
        }
        for unknown in [0, 99, 199, 299, 306, 418, 499, 599, 600, 999, u16::MAX] {
            assert_eq!(reason(unknown), "", "{unknown}");
        }
    }

    #[test]
    fn no_content_statuses() {
        assert!(has_no_content(100) && has_no_content(204) && has_no_content(304));
        assert!(!has_no_content(200) && !has_no_content(404));
    }
}
