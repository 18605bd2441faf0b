//! HTTP/1.1 on our own core (RFC 9112), the bottom layer: it imports nothing from above.
//!
//! Sans-IO parts: [`syntax`] (the field grammar), [`path`] (percent-decoding and
//! normalization), [`head`] (request heads), [`decode`] (request bodies), [`framer`] and
//! [`encode`] (response framing), [`date`], [`status`], [`exchange`] (one request/response
//! as a state machine). The IO shell: [`conn`] drives one connection for a [`service`],
//! talking to the handler side through a [`channel`] ([`cmd_queue`] carries the response).

pub(crate) mod channel;
pub(crate) mod cmd_queue;
pub(crate) mod conn;
pub(crate) mod date;
pub mod decode;
pub(crate) mod encode;
pub(crate) mod exchange;
pub(crate) mod framer;
pub mod head;
pub(crate) mod outbuf;
pub(crate) mod path;
pub(crate) mod service;
pub(crate) mod status;
pub(crate) mod syntax;
pub(crate) mod transport;
