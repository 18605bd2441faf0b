//! The plugin ABI, version 1: the `#[repr(C)]` mirror of `include/cgigate_plugin.h`.
//!
//! A plugin is a shared library exporting one function, [`DESCRIPTOR_SYMBOL`], that returns
//! a pointer to a static [`PluginDescriptor`]. Both tables are size-prefixed and carry spare
//! fields so later versions can grow them; a loader refuses a version or size it does not
//! know (the nginx `ngx_module_t` / hyper `ffi` pattern). A test compiles a C program
//! against the header and checks every size and offset against these definitions.

use std::ffi::{c_char, c_void};

/// The ABI version this crate and `include/cgigate_plugin.h` describe.
pub const ABI_VERSION: u32 = 1;

/// Name of the one symbol a plugin exports: `const cgigate_plugin *cgigate_plugin_descriptor(void)`.
pub const DESCRIPTOR_SYMBOL: &[u8] = b"cgigate_plugin_descriptor\0";

/// Success.
pub const OK: i32 = 0;
/// A failure of the plugin's own (init or handle).
pub const ERROR: i32 = -1;
/// The client is gone: nothing more can be written.
pub const E_DISCONNECTED: i32 = -2;
/// Not allowed now (e.g. `send_headers` twice, `set_mode` after the headers).
pub const E_STATE: i32 = -3;
/// An argument is invalid (NULL pointer, bad header block, unknown mode).
pub const E_INVALID: i32 = -4;
/// The buffer is too small; the needed size was stored.
pub const E_TOO_SMALL: i32 = -5;
/// No such server variable.
pub const E_NOT_FOUND: i32 = -6;

/// Output mode: hold the body; Content-Length if it fits (`set_mode`).
pub const MODE_BUFFER: u32 = 0;
/// Output mode: every write goes out at once as a chunk.
pub const MODE_STREAM: u32 = 1;
/// Output mode: buffer, stream once the plugin is silent for `flush_after`.
pub const MODE_AUTO: u32 = 2;
/// Output mode: the body is exactly `len` bytes (Content-Length).
pub const MODE_SIZED: u32 = 3;

/// `get_var(server, name, buf, len)`: copy the value of server variable `name` (a
/// NUL-terminated string owned by the caller) into `buf` followed by a NUL byte. `*len` is
/// the capacity of `buf` on entry and the value's length (without the NUL) on return.
/// Returns OK, E_NOT_FOUND, or E_TOO_SMALL with `*len` set to the value's length — the
/// buffer must then be `*len + 1` bytes. A NULL `buf` is a length query (E_TOO_SMALL). Besides the SPEC §5.2 variables, `ALL_HTTP` gives every HTTP_* as
/// `HTTP_NAME:value\n` lines.
pub type GetVarFn = unsafe extern "C" fn(
    server: *mut c_void,
    name: *const c_char,
    buf: *mut c_char,
    len: *mut usize,
) -> i32;
/// `read_body(server, buf, len)`: read up to `len` bytes of the (de-chunked) request body
/// into `buf`, owned by the caller. Returns the count, 0 at the end of the body (or when
/// `len` is 0), E_DISCONNECTED, or ERROR when the body itself failed (malformed chunking,
/// too large, stalled). Blocks until data arrives. The first call sends `100 Continue` if
/// the client asked for it.
pub type ReadBodyFn =
    unsafe extern "C" fn(server: *mut c_void, buf: *mut c_void, len: usize) -> i64;
/// `send_headers(server, status, headers, len)`: set the status (200–999, else E_INVALID)
/// and the header fields, `headers` being `len` bytes of `Name: value\r\n` lines (LF alone
/// is accepted; may be NULL when `len` is 0), owned by the caller and copied. A malformed
/// line → E_INVALID and nothing is sent. Fields the server owns (Connection,
/// Transfer-Encoding, Date, …) are dropped; `Content-Length` switches to sized mode. The
/// head is committed: in stream and sized mode it goes out now, in buffer and auto mode it
/// is held until the length is known. E_STATE if the head was already committed.
pub type SendHeadersFn = unsafe extern "C" fn(
    server: *mut c_void,
    status: u32,
    headers: *const c_char,
    len: usize,
) -> i32;
/// `write(server, data, len)`: write body bytes (copied); commits the head first if needed
/// (status 200, no fields, unless `send_headers` came first). A zero length does nothing.
/// Blocks while the client is slow (back-pressure). E_DISCONNECTED once the client is gone.
pub type WriteFn =
    unsafe extern "C" fn(server: *mut c_void, data: *const c_void, len: usize) -> i32;
/// `flush(server)`: deliver what was written now (auto mode switches to streaming; a no-op
/// in buffer mode, redundant in stream mode). Commits the head like `write`.
pub type FlushFn = unsafe extern "C" fn(server: *mut c_void) -> i32;
/// `set_mode(server, mode, len)`: choose the output mode before the head is sent; `len` is
/// used by MODE_SIZED only.
pub type SetModeFn = unsafe extern "C" fn(server: *mut c_void, mode: u32, len: u64) -> i32;
/// `is_connected(server)`: 1 while the client is there, 0 once it is gone.
pub type IsConnectedFn = unsafe extern "C" fn(server: *mut c_void) -> i32;

/// The request object handed to `handle` (the analog of ISAPI's EXTENSION_CONTROL_BLOCK).
/// Owned by the server; valid only during the `handle` call, on the calling thread. The
/// server fills every function pointer (never NULL).
#[repr(C)]
pub struct RequestAbi {
    /// `size_of::<RequestAbi>()` as the server built it.
    pub size: u32,
    /// The server's ABI version.
    pub abi_version: u32,
    /// Opaque: pass it back as the first argument of every function below.
    pub server: *mut c_void,
    /// See [`GetVarFn`].
    pub get_var: GetVarFn,
    /// See [`ReadBodyFn`].
    pub read_body: ReadBodyFn,
    /// See [`SendHeadersFn`].
    pub send_headers: SendHeadersFn,
    /// See [`WriteFn`].
    pub write: WriteFn,
    /// See [`FlushFn`].
    pub flush: FlushFn,
    /// See [`SetModeFn`].
    pub set_mode: SetModeFn,
    /// See [`IsConnectedFn`].
    pub is_connected: IsConnectedFn,
    /// Spare room for later versions; NULL.
    pub reserved: [*mut c_void; 8],
}

/// `init(config, len, err, err_len)`: called once at start-up with the route's
/// `plugin_config` (`len` bytes, not NUL-terminated, owned by the server; `len` may be 0). Return OK, or
/// ERROR with a NUL-terminated message written into `err` (capacity `err_len`), which stops
/// the server's start-up and is shown to the user.
pub type InitFn = unsafe extern "C" fn(
    config: *const c_char,
    len: usize,
    err: *mut c_char,
    err_len: usize,
) -> i32;
/// `handle(request)`: answer one request; runs on a worker thread and may block, and several
/// calls run at once for different requests (plugin state must be thread-safe). Return OK,
/// or ERROR (a 500 if no head was sent yet, else the connection is closed).
pub type HandleFn = unsafe extern "C" fn(request: *mut RequestAbi) -> i32;
/// `terminate()`: called once at shutdown, after every `handle` call has returned (if calls
/// are still running after `kill_grace`, it is not called). The library is never unloaded.
pub type TerminateFn = unsafe extern "C" fn();

/// What a plugin exports (through [`DESCRIPTOR_SYMBOL`]).
#[repr(C)]
pub struct PluginDescriptor {
    /// `size_of::<PluginDescriptor>()` as the plugin was built.
    pub size: u32,
    /// [`ABI_VERSION`] as the plugin was built.
    pub abi_version: u32,
    /// The plugin's name, NUL-terminated, static.
    pub name: *const c_char,
    /// See [`InitFn`]; may be NULL.
    pub init: Option<InitFn>,
    /// See [`HandleFn`]; required (the loader refuses a NULL one).
    pub handle: Option<HandleFn>,
    /// See [`TerminateFn`]; may be NULL.
    pub terminate: Option<TerminateFn>,
    /// Spare room for later versions; NULL.
    pub reserved: [*mut c_void; 4],
}

/// The type of the exported descriptor function.
pub type DescriptorFn = unsafe extern "C" fn() -> *const PluginDescriptor;

// SAFETY: a descriptor is immutable static data once built (its pointers are only read,
// never written), so sharing a reference to it between threads is sound.
unsafe impl Sync for PluginDescriptor {}
