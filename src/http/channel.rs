//! The channel between one exchange's handler side and its connection: whether the client
//! is still there, the handler's first demand for the body (which sends `100 Continue`), the
//! response commands ([`CmdQueue`]) and the request body's pieces.
//!
//! The connection opens it ([`open`]) and keeps the [`Channel`] and the body's sender; the
//! [`HandlerEnds`] go to whatever answers the request, which builds its request body reader
//! and response writer on them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use super::cmd_queue::CmdQueue;
use super::decode::BodyError;
use super::head::BodyFraming;

/// Body pieces queued for the handler before reading from the client pauses.
const BODY_QUEUE: usize = 4;

/// A message from the connection to the body reader: a piece of data or the failure.
pub(crate) type BodyMsg = Result<Bytes, BodyError>;

/// What one exchange's two sides share.
#[derive(Debug)]
pub(crate) struct Channel {
    connected: AtomicBool,
    /// Wakes the connection the first time the handler asks for the body (100-continue).
    body_wanted: Notify,
    /// The response, from the handler's writer to the connection.
    pub(crate) cmds: CmdQueue,
}

impl Channel {
    /// A channel for a connected client.
    pub(crate) fn new() -> Arc<Channel> {
        Arc::new(Channel {
            connected: AtomicBool::new(true),
            body_wanted: Notify::new(),
            cmds: CmdQueue::default(),
        })
    }

    /// False once the client is gone.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The client went away.
    pub(crate) fn set_disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    /// The handler asks for the body for the first time.
    pub(crate) fn want_body(&self) {
        self.body_wanted.notify_one();
    }

    /// Resolves once the handler has asked for the body.
    pub(crate) async fn body_wanted(&self) {
        self.body_wanted.notified().await;
    }
}

/// The handler's side of one exchange.
#[derive(Debug)]
pub(crate) struct HandlerEnds {
    /// The shared state.
    pub(crate) channel: Arc<Channel>,
    /// The body's pieces; `None` when the request has no body.
    pub(crate) body: Option<mpsc::Receiver<BodyMsg>>,
    /// How the body is framed on the wire.
    pub(crate) framing: BodyFraming,
}

/// Open the channel for a request whose body is framed as `framing` (`has_body`: whether
/// any body bytes are to come). The connection keeps the channel and the sender.
pub(crate) fn open(
    framing: BodyFraming,
    has_body: bool,
) -> (Arc<Channel>, Option<mpsc::Sender<BodyMsg>>, HandlerEnds) {
    let channel = Channel::new();
    let (tx, rx) = if has_body {
        let (tx, rx) = mpsc::channel(BODY_QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let ends = HandlerEnds {
        channel: channel.clone(),
        body: rx,
        framing,
    };
    (channel, tx, ends)
}
