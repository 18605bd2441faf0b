//! Write cgigate native handler plugins (SPEC §6.2) in safe Rust.
//!
//! A plugin is a `cdylib` that exports the descriptor of [`abi`]. Implement [`Plugin`] and
//! name the type in [`export_plugin!`]; the SDK supplies the `extern "C"` functions the
//! server calls. They check every pointer the server passes and catch every panic, so none
//! crosses into the server (as hyper's `ffi` does): a panic in `handle` answers that one
//! request with a 500, a panic in `init` stops the start-up with its message.
//!
//! ```
//! use cgigate_plugin::{export_plugin, Error, Plugin, Request};
//!
//! struct Greeter { greeting: String }
//!
//! impl Plugin for Greeter {
//!     fn init(config: &str) -> Result<Self, String> {
//!         Ok(Greeter { greeting: config.to_owned() })
//!     }
//!     fn handle(&self, req: &mut Request<'_>) -> Result<(), Error> {
//!         let who = req.var_str("QUERY_STRING").unwrap_or_default();
//!         req.send_headers(200, &[("Content-Type", "text/plain")])?;
//!         req.write(format!("{} {who}\n", self.greeting).as_bytes())
//!     }
//! }
//!
//! export_plugin!(Greeter, "greeter");
//! ```
//! with `crate-type = ["cdylib"]` under `[lib]` in the plugin's `Cargo.toml`. Keep the
//! default `panic = "unwind"`: with `panic = "abort"` a panic cannot be caught and takes the
//! whole server down.
//!
//! The crate:
//! - [`Plugin`] (here): what a plugin implements, and [`export_plugin!`];
//! - [`Request`], [`Mode`] (`request.rs`): one request — variables, body, response;
//! - [`Error`] (`error.rs`): the ABI's status codes as an enum;
//! - `export.rs`: the descriptor and the trampolines behind [`export_plugin!`];
//! - [`abi`]: the C ABI, version 1, as `#[repr(C)]` types.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

pub mod abi;
mod error;
mod export;
#[cfg(test)]
mod fake_server;
mod request;

pub use error::Error;
pub use request::{Mode, Request};

#[doc(hidden)]
pub use export::{__handle, __init, __terminate, descriptor as __descriptor, Export as __Export};

/// A native handler plugin. One instance serves every request of the routes that name the
/// library; `handle` may run on several worker threads at once, hence `Send + Sync`.
pub trait Plugin: Send + Sync + 'static {
    /// Called once at start-up with the route's `plugin_config` (invalid UTF-8 replaced by
    /// U+FFFD). `Err(message)` stops the server's start-up with that message.
    fn init(config: &str) -> Result<Self, String>
    where
        Self: Sized;

    /// Answers one request. Runs on a worker thread and may block; may run concurrently for
    /// different requests. An `Err` (or a panic) becomes a 500 if nothing was sent yet, and
    /// closes the connection otherwise; the error is printed to the server's stderr.
    fn handle(&self, req: &mut Request<'_>) -> Result<(), Error>;

    /// Called once at shutdown, after the last request.
    fn terminate(&self) {}
}

/// Exports a [`Plugin`] type as this library's plugin, under `name`:
/// `export_plugin!(MyPlugin, "my-plugin");`, once per library.
///
/// It defines the `cgigate_plugin_descriptor` function the server looks up, a static
/// descriptor (ABI version 1, its size, the name) and the static holding the instance.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty, $name:literal $(,)?) => {
        const _: () = {
            enum __CgigateExport {}
            impl $crate::__Export for __CgigateExport {
                type Plugin = $plugin;
                const NAME: &'static str = $name;
                fn instance() -> &'static ::std::sync::OnceLock<$plugin> {
                    static INSTANCE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();
                    &INSTANCE
                }
            }
            static DESCRIPTOR: $crate::abi::PluginDescriptor =
                $crate::__descriptor::<__CgigateExport>(::core::concat!($name, "\0"));
            #[unsafe(no_mangle)]
            extern "C" fn cgigate_plugin_descriptor() -> *const $crate::abi::PluginDescriptor {
                &DESCRIPTOR
            }
        };
    };
}
