//! Native plugins (SPEC §6.2), the ISAPI analog: shared libraries loaded at start-up through
//! the C ABI of `include/cgigate_plugin.h` ([`cgigate_plugin::abi`]). The loader
//! ([`loader`]) checks the descriptor's version and size and runs `init`; each request runs
//! the plugin's `handle` on the blocking pool with a request object whose functions
//! ([`call`]) talk to this async handler over a bounded channel, so writes apply
//! back-pressure and everything goes through the same response writer as other handlers.
//!
//! This module is the only place in the crate with `unsafe` code.
#![allow(unsafe_code)]

pub mod call;
pub mod loader;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::response::Response;
use call::{CallContext, PluginCmd};
pub use loader::{LoadError, Plugin};

/// Commands queued from a plugin's thread before its `write` blocks (back-pressure).
const CMD_QUEUE: usize = 8;

/// A route served by a plugin.
pub struct PluginHandler {
    plugin: Arc<Plugin>,
}

impl PluginHandler {
    /// Serve a route with a loaded plugin.
    pub fn new(plugin: Arc<Plugin>) -> PluginHandler {
        PluginHandler { plugin }
    }
}

impl Handler for PluginHandler {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.serve(req, res))
    }
}

impl PluginHandler {
    async fn serve(&self, req: &mut Request, res: &mut Response) -> Result<(), HandlerError> {
        let vars = req.server_vars();
        let (tx, mut rx) = mpsc::channel(CMD_QUEUE);
        let ctx = CallContext::new(tx, vars, res.connection());
        let plugin = self.plugin.clone();
        let done = tokio::task::spawn_blocking(move || call::run(&plugin, ctx));
        // Until the plugin returns (its context, holding the sender, is dropped then).
        while let Some(cmd) = rx.recv().await {
            match cmd {
                PluginCmd::Head { status, headers } => {
                    res.status(status);
                    for (name, value) in headers {
                        res.header(&name, value);
                    }
                    res.send_head().await?;
                }
                PluginCmd::Mode(mode) => {
                    res.set_mode(mode);
                }
                PluginCmd::Data(data) => res.write(data).await?,
                PluginCmd::Flush => res.flush().await?,
                PluginCmd::ReadBody(reply) => {
                    let _ = reply.send(req.body.read().await);
                }
            }
        }
        let status = done
            .await
            .map_err(|e| HandlerError::Other(format!("plugin thread: {e}")))?;
        if status == cgigate_plugin::abi::OK {
            Ok(())
        } else {
            tracing::debug!(plugin = self.plugin.name(), status, "plugin handle failed");
            Err(HandlerError::Status(500))
        }
    }
}
