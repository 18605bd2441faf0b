//! One `handle` call: the request object the plugin gets, and the functions behind it. They
//! run on the plugin's worker thread and talk to the async side ([`super::PluginHandler`])
//! through a bounded channel: a full channel blocks `write`, which is the back-pressure.
//! Every function checks its pointers and catches panics, so nothing unwinds into C.

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use bytes::Bytes;
use cgigate_plugin::abi::{self, RequestAbi};
use tokio::sync::{mpsc, oneshot};

use crate::http::decode::BodyError;
use crate::response::{Connection, HeaderBlock, Mode};

use super::loader::Plugin;

/// What the plugin's thread asks of the async side.
pub(crate) enum PluginCmd {
    /// Set the status and the header fields, and send the head. The block was checked on
    /// the plugin's thread: the call does not wait for the async side (a round trip of two
    /// thread wake-ups per request).
    Head {
        /// Status code.
        status: u16,
        /// The plugin's header fields, checked.
        block: HeaderBlock,
    },
    /// Output mode for the response.
    Mode(Mode),
    /// Body bytes.
    Data(Bytes),
    /// Deliver what was written.
    Flush,
    /// Read the next piece of the request body.
    ReadBody(oneshot::Sender<Result<Option<Bytes>, BodyError>>),
}

/// The state behind a request object (`server` in the ABI).
pub(crate) struct CallContext {
    tx: mpsc::Sender<PluginCmd>,
    vars: Vec<(String, Vec<u8>)>,
    all_http: Vec<u8>,
    connection: Connection,
    head_sent: bool,
    pending: Bytes,
    body_done: bool,
}

impl CallContext {
    /// Context for one call: `vars` are the request's server variables (sorted by name);
    /// `body_present`: whether the request has a body at all (without one, `read_body`
    /// answers end of body on the plugin's thread, with no round trip to the async side).
    pub(crate) fn new(
        tx: mpsc::Sender<PluginCmd>,
        vars: Vec<(String, Vec<u8>)>,
        connection: Connection,
        body_present: bool,
    ) -> CallContext {
        // ISAPI's ALL_HTTP: every HTTP_* variable as "HTTP_NAME:value\n".
        let mut all_http = Vec::new();
        for (name, value) in vars.iter().filter(|(n, _)| n.starts_with("HTTP_")) {
            all_http.extend_from_slice(name.as_bytes());
            all_http.push(b':');
            all_http.extend_from_slice(value);
            all_http.push(b'\n');
        }
        CallContext {
            tx,
            vars,
            all_http,
            connection,
            head_sent: false,
            pending: Bytes::new(),
            body_done: !body_present,
        }
    }

    fn var(&self, name: &str) -> Option<&[u8]> {
        if name == "ALL_HTTP" {
            return Some(&self.all_http);
        }
        self.vars
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .and_then(|i| self.vars.get(i))
            .map(|(_, v)| v.as_slice())
    }

    fn send(&self, cmd: PluginCmd) -> i32 {
        match self.tx.blocking_send(cmd) {
            Ok(()) => abi::OK,
            Err(_) => abi::E_DISCONNECTED,
        }
    }

    fn read_body(&mut self, out: &mut [u8]) -> i64 {
        while self.pending.is_empty() && !self.body_done {
            let (reply, answer) = oneshot::channel();
            if self.send(PluginCmd::ReadBody(reply)) != abi::OK {
                return i64::from(abi::E_DISCONNECTED);
            }
            match answer.blocking_recv() {
                Ok(Ok(Some(piece))) => self.pending = piece,
                Ok(Ok(None)) => self.body_done = true,
                Ok(Err(_)) => return i64::from(abi::ERROR),
                Err(_) => return i64::from(abi::E_DISCONNECTED),
            }
        }
        let n = out.len().min(self.pending.len());
        let piece = self.pending.split_to(n);
        out[..n].copy_from_slice(&piece);
        n as i64
    }

    fn send_headers(&mut self, status: u32, block: &[u8]) -> i32 {
        if self.head_sent {
            return abi::E_STATE;
        }
        let Ok(status) = u16::try_from(status) else {
            return abi::E_INVALID;
        };
        if !(200..=999).contains(&status) {
            return abi::E_INVALID;
        }
        let Some(block) = HeaderBlock::parse(block) else {
            return abi::E_INVALID;
        };
        match self.send(PluginCmd::Head { status, block }) {
            abi::OK => {
                self.head_sent = true;
                abi::OK
            }
            other => other,
        }
    }

    fn set_mode(&mut self, mode: u32, len: u64) -> i32 {
        if self.head_sent {
            return abi::E_STATE;
        }
        let mode = match mode {
            abi::MODE_BUFFER => Mode::Buffer,
            abi::MODE_STREAM => Mode::Stream,
            abi::MODE_AUTO => Mode::Auto,
            abi::MODE_SIZED => Mode::Sized(len),
            _ => return abi::E_INVALID,
        };
        self.send(PluginCmd::Mode(mode))
    }

    fn write(&mut self, data: &[u8]) -> i32 {
        // The header: "len 0 does nothing" — not even send the default head.
        if data.is_empty() {
            return abi::OK;
        }
        self.head_sent = true;
        self.send(PluginCmd::Data(Bytes::copy_from_slice(data)))
    }

    fn flush(&mut self) -> i32 {
        self.head_sent = true;
        self.send(PluginCmd::Flush)
    }

    fn is_connected(&self) -> bool {
        self.connection.is_connected() && !self.tx.is_closed()
    }
}

/// Run the plugin's `handle` for one request (on a worker thread); returns its status.
pub(crate) fn run(plugin: &Plugin, mut ctx: CallContext) -> i32 {
    let mut request = RequestAbi {
        size: std::mem::size_of::<RequestAbi>() as u32,
        abi_version: abi::ABI_VERSION,
        server: ptr::addr_of_mut!(ctx).cast::<c_void>(),
        get_var,
        read_body,
        send_headers,
        write,
        flush,
        set_mode,
        is_connected,
        reserved: [ptr::null_mut(); 8],
    };
    let status = plugin.handle(&mut request);
    drop(ctx);
    status
}

/// Run `f` on the context behind `server`, turning a NULL pointer into E_INVALID and a panic
/// into ERROR.
fn with_ctx<R: From<i32>>(server: *mut c_void, f: impl FnOnce(&mut CallContext) -> R) -> R {
    if server.is_null() {
        return R::from(abi::E_INVALID);
    }
    // SAFETY: `server` is the pointer `run` put in the request object: it points to the
    // CallContext that `run` owns for the whole `handle` call, and the ABI allows the
    // functions to be called only during that call, on that thread, so no other reference
    // to it is live.
    let ctx = unsafe { &mut *server.cast::<CallContext>() };
    catch_unwind(AssertUnwindSafe(|| f(ctx))).unwrap_or_else(|_| R::from(abi::ERROR))
}

/// A byte slice from the plugin; None for NULL with a non-zero length.
///
/// # Safety
/// `data` must be valid for `len` bytes for the duration of the borrow, as the ABI requires.
unsafe fn bytes_from<'a>(data: *const c_void, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes.
    Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

unsafe extern "C" fn get_var(
    server: *mut c_void,
    name: *const c_char,
    buf: *mut c_char,
    len: *mut usize,
) -> i32 {
    with_ctx(server, |ctx| {
        if name.is_null() || len.is_null() {
            return abi::E_INVALID;
        }
        // SAFETY: non-null; the ABI says `name` is a NUL-terminated string owned by the caller.
        let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else {
            return abi::E_NOT_FOUND;
        };
        let Some(value) = ctx.var(name) else {
            return abi::E_NOT_FOUND;
        };
        // SAFETY: non-null; `len` points to the caller's size_t for the duration of the call.
        let capacity = unsafe { *len };
        // SAFETY: as above.
        unsafe { *len = value.len() };
        if buf.is_null() || capacity < value.len() + 1 {
            return abi::E_TOO_SMALL;
        }
        // SAFETY: `buf` is non-null and the caller said it holds `capacity` bytes, which is
        // at least the value plus its NUL; the regions cannot overlap (ours is a Vec).
        unsafe {
            ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), value.len());
            *buf.add(value.len()) = 0;
        }
        abi::OK
    })
}

unsafe extern "C" fn read_body(server: *mut c_void, buf: *mut c_void, len: usize) -> i64 {
    with_ctx(server, |ctx| {
        if len == 0 {
            return 0;
        }
        if buf.is_null() {
            return i64::from(abi::E_INVALID);
        }
        // SAFETY: non-null; the caller owns `len` writable bytes at `buf` for this call.
        let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        ctx.read_body(out)
    })
}

unsafe extern "C" fn send_headers(
    server: *mut c_void,
    status: u32,
    headers: *const c_char,
    len: usize,
) -> i32 {
    with_ctx(server, |ctx| {
        // SAFETY: the ABI says `headers` holds `len` bytes owned by the caller for this call.
        match unsafe { bytes_from(headers.cast::<c_void>(), len) } {
            Some(block) => ctx.send_headers(status, block),
            None => abi::E_INVALID,
        }
    })
}

unsafe extern "C" fn write(server: *mut c_void, data: *const c_void, len: usize) -> i32 {
    with_ctx(server, |ctx| {
        // SAFETY: the ABI says `data` holds `len` bytes owned by the caller for this call.
        match unsafe { bytes_from(data, len) } {
            Some(data) => ctx.write(data),
            None => abi::E_INVALID,
        }
    })
}

unsafe extern "C" fn flush(server: *mut c_void) -> i32 {
    with_ctx(server, CallContext::flush)
}

unsafe extern "C" fn set_mode(server: *mut c_void, mode: u32, len: u64) -> i32 {
    with_ctx(server, |ctx| ctx.set_mode(mode, len))
}

unsafe extern "C" fn is_connected(server: *mut c_void) -> i32 {
    with_ctx(server, |ctx| i32::from(ctx.is_connected()))
}
