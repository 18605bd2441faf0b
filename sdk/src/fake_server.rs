//! A fake server behind a [`RequestAbi`], for the unit tests: variables from a map, a body
//! handed out in pieces, and a record of what the plugin sent. Its functions follow the ABI's
//! documented behaviour (E_TOO_SMALL, E_STATE, E_DISCONNECTED) and never panic, since a
//! panic in an `extern "C"` function would abort the test binary.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::{ptr, slice};

use crate::abi::{self, RequestAbi};

/// What a plugin saw and did during one request.
#[derive(Debug)]
pub(crate) struct FakeServer {
    pub vars: HashMap<String, Vec<u8>>,
    pub body: Vec<u8>,
    /// Most bytes one `read_body` hands out.
    pub max_read: usize,
    pub body_read: usize,
    pub connected: bool,
    /// `*len` on entry of each `get_var` call.
    pub get_var_capacities: Vec<usize>,
    /// Calls of every other function.
    pub calls: usize,
    pub head: Option<(u32, Vec<u8>)>,
    pub mode: Option<(u32, u64)>,
    pub output: Vec<u8>,
    pub flushes: usize,
}

impl Default for FakeServer {
    fn default() -> FakeServer {
        FakeServer {
            vars: HashMap::new(),
            body: Vec::new(),
            max_read: usize::MAX,
            body_read: 0,
            connected: true,
            get_var_capacities: Vec::new(),
            calls: 0,
            head: None,
            mode: None,
            output: Vec::new(),
            flushes: 0,
        }
    }
}

impl FakeServer {
    pub fn var(mut self, name: &str, value: &[u8]) -> FakeServer {
        self.vars.insert(name.to_owned(), value.to_vec());
        self
    }

    pub fn body(mut self, body: &[u8], max_read: usize) -> FakeServer {
        self.body = body.to_vec();
        self.max_read = max_read;
        self
    }

    /// A request object over this server; it must not outlive `self`, nor be used once
    /// `self` has been touched again.
    pub fn abi(&mut self) -> RequestAbi {
        RequestAbi {
            size: size_of::<RequestAbi>() as u32,
            abi_version: abi::ABI_VERSION,
            server: ptr::from_mut(self).cast(),
            get_var,
            read_body,
            send_headers,
            write,
            flush,
            set_mode,
            is_connected,
            reserved: [ptr::null_mut(); 8],
        }
    }

    fn head_sent(&self) -> bool {
        self.head.is_some()
    }
}

/// The fake behind `server`.
///
/// # Safety
/// `server` comes from [`FakeServer::abi`], whose server is alive and not otherwise borrowed.
unsafe fn fake<'a>(server: *mut c_void) -> &'a mut FakeServer {
    // SAFETY: per this function's contract.
    unsafe { &mut *server.cast::<FakeServer>() }
}

unsafe extern "C" fn get_var(
    server: *mut c_void,
    name: *const c_char,
    buf: *mut c_char,
    len: *mut usize,
) -> i32 {
    // SAFETY: the tests' contract with `FakeServer::abi`.
    let fake = unsafe { fake(server) };
    // SAFETY: the SDK passes a NUL-terminated name and a live `len`.
    let (name, capacity) = unsafe { (CStr::from_ptr(name), *len) };
    fake.get_var_capacities.push(capacity);
    let Some(value) = name.to_str().ok().and_then(|name| fake.vars.get(name)) else {
        return abi::E_NOT_FOUND;
    };
    // SAFETY: as above.
    unsafe { *len = value.len() };
    if capacity < value.len() + 1 {
        return abi::E_TOO_SMALL;
    }
    // SAFETY: the SDK gives `capacity` writable bytes at `buf`, and the value and NUL fit.
    let out = unsafe { slice::from_raw_parts_mut(buf.cast::<u8>(), capacity) };
    out[..value.len()].copy_from_slice(value);
    out[value.len()] = 0;
    abi::OK
}

unsafe extern "C" fn read_body(server: *mut c_void, buf: *mut c_void, len: usize) -> i64 {
    // SAFETY: the tests' contract with `FakeServer::abi`.
    let fake = unsafe { fake(server) };
    fake.calls += 1;
    let n = len.min(fake.max_read).min(fake.body.len() - fake.body_read);
    // SAFETY: the SDK gives `len` writable bytes at `buf`, and n <= len.
    let out = unsafe { slice::from_raw_parts_mut(buf.cast::<u8>(), n) };
    out.copy_from_slice(&fake.body[fake.body_read..fake.body_read + n]);
    fake.body_read += n;
    n as i64
}

unsafe extern "C" fn send_headers(
    server: *mut c_void,
    status: u32,
    headers: *const c_char,
    len: usize,
) -> i32 {
    // SAFETY: the tests' contract with `FakeServer::abi`.
    let fake = unsafe { fake(server) };
    fake.calls += 1;
    if fake.head_sent() {
        return abi::E_STATE;
    }
    let block = if len == 0 {
        Vec::new()
    } else {
        // SAFETY: the SDK gives `len` readable bytes at `headers`.
        unsafe { slice::from_raw_parts(headers.cast::<u8>(), len) }.to_vec()
    };
    fake.head = Some((status, block));
    abi::OK
}

unsafe extern "C" fn write(server: *mut c_void, data: *const c_void, len: usize) -> i32 {
    // SAFETY: the tests' contract with `FakeServer::abi`.
    let fake = unsafe { fake(server) };
    fake.calls += 1;
    if !fake.connected {
        return abi::E_DISCONNECTED;
    }
    fake.head.get_or_insert((200, Vec::new()));
    // SAFETY: the SDK gives `len` readable bytes at `data` (a dangling but non-NULL,
    // aligned pointer when `len` is 0, which from_raw_parts allows).
    fake.output
        .extend_from_slice(unsafe { slice::from_raw_parts(data.cast::<u8>(), len) });
    abi::OK
}

unsafe extern "C" fn flush(server: *mut c_void) -> i32 {
    // SAFETY: the tests' contract with `FakeServer::abi`.
    let fake = unsafe { fake(server) };
    fake.calls += 1;
    fake.head.get_or_insert((200, Vec::new()));
    fake.flushes += 1;
    abi::OK
}

unsafe extern "C" fn set_mode(server: *mut c_void, mode: u32, len: u64) -> i32 {
    // SAFETY: the tests' contract with `FakeServer::abi`.
    let fake = unsafe { fake(server) };
    fake.calls += 1;
    if fake.head_sent() {
        return abi::E_STATE;
    }
    if mode > abi::MODE_SIZED {
        return abi::E_INVALID;
    }
    fake.mode = Some((mode, len));
    abi::OK
}

unsafe extern "C" fn is_connected(server: *mut c_void) -> i32 {
    // SAFETY: the tests' contract with `FakeServer::abi`.
    let fake = unsafe { fake(server) };
    fake.calls += 1;
    i32::from(fake.connected)
}
