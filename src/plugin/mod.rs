//! Native plugins (SPEC §6.2), the ISAPI analog: shared libraries loaded at start-up through
//! the C ABI of `include/cgigate_plugin.h` ([`cgigate_plugin::abi`]). The loader
//! ([`loader`]) checks the descriptor's version and size and runs `init`; each request runs
//! the plugin's `handle` on the blocking pool with a request object whose functions
//! ([`call`]) talk to this async handler over a bounded channel, so writes apply
//! back-pressure and everything goes through the same response writer as other handlers.
//!
//! This module is the only place in the crate with `unsafe` code.
#![allow(unsafe_code)]

mod call;
mod loader;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::cgi::env::server_vars;
use crate::handler::{BoxFuture, GatewayError, Handler, HandlerError, Request};
use crate::http::status;
use crate::response::Response;
use call::{CallContext, PluginCmd};
pub(crate) use loader::Plugin;

/// Commands queued from a plugin's thread before its `write` blocks (back-pressure).
const CMD_QUEUE: usize = 8;

/// A route served by a plugin.
pub(crate) struct PluginHandler {
    plugin: Arc<Plugin>,
}

impl PluginHandler {
    /// Serve a route with a loaded plugin.
    pub(crate) fn new(plugin: Arc<Plugin>) -> PluginHandler {
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
        // SPEC §5.1, as on a CGI route: a path whose PATH_INFO cannot be decoded is 404.
        let Some(vars) = server_vars(req) else {
            return res.plain(status::NOT_FOUND, "Not Found").await;
        };
        let (tx, mut rx) = mpsc::channel(CMD_QUEUE);
        let ctx = CallContext::new(tx, vars, res.connection(), req.body.is_present());
        let plugin = self.plugin.clone();
        let done = tokio::task::spawn_blocking(move || call::run(&plugin, ctx));
        // Until the plugin returns (its context, holding the sender, is dropped then).
        while let Some(cmd) = rx.recv().await {
            match cmd {
                PluginCmd::Head { status, block } => {
                    res.add_block(block);
                    res.status(status);
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
        let returned = match done.await {
            Ok(returned) => returned,
            Err(e) => GatewayError::PluginThread(e.to_string()).fail(self.plugin.name())?,
        };
        if returned == cgigate_plugin::abi::OK {
            Ok(())
        } else {
            GatewayError::PluginFailed(returned).fail(self.plugin.name())
        }
    }
}
