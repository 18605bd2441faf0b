//! HTTP/1.1 on our own core (RFC 9112): sans-IO parsers and framers, and the connection
//! loop that drives them.

pub(crate) mod cmd_queue;
pub mod conn;
pub mod decode;
pub mod encode;
pub mod framer;
pub mod head;
pub mod outbuf;
