//! What [`export_plugin!`](crate::export_plugin) expands to, kept here so the macro stays a
//! few lines: the [`PluginDescriptor`] and the `extern "C"` `init`/`handle`/`terminate`
//! trampolines. As in hyper's `ffi`, each one checks every pointer it is given and runs
//! everything inside `catch_unwind`, so a panic never unwinds into the server.

use std::any::Any;
use std::ffi::{c_char, c_void, CStr};
use std::mem::{offset_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::{ptr, slice};

use crate::abi::{self, InitFn, PluginDescriptor, RequestAbi, TerminateFn};
use crate::{Error, Plugin, Request};

/// One exported plugin: its type, its name and the static holding its instance. The macro
/// implements it on a type of its own, so every plugin gets its own static.
pub trait Export: 'static {
    /// The plugin.
    type Plugin: Plugin;
    /// The plugin's name, for messages.
    const NAME: &'static str;
    /// The instance `init` creates and `handle` uses.
    fn instance() -> &'static OnceLock<Self::Plugin>;
}

/// The descriptor for `E`; `name` must end with its only NUL byte (checked at compile time
/// when used in a `static`).
pub const fn descriptor<E: Export>(name: &'static str) -> PluginDescriptor {
    let name = match CStr::from_bytes_with_nul(name.as_bytes()) {
        Ok(name) => name,
        Err(_) => panic!("a cgigate plugin name must not contain a NUL byte"),
    };
    PluginDescriptor {
        size: size_of::<PluginDescriptor>() as u32,
        abi_version: abi::ABI_VERSION,
        name: name.as_ptr(),
        init: Some(__init::<E> as InitFn),
        handle: Some(__handle::<E>),
        terminate: Some(__terminate::<E> as TerminateFn),
        reserved: [ptr::null_mut(); 4],
    }
}

/// The `init` trampoline ([`abi::InitFn`]).
///
/// # Safety
/// As the ABI requires: `config` holds `len` readable bytes (or is NULL with `len` 0) and
/// `err` holds `err_len` writable bytes (or is NULL with `err_len` 0), for this call.
pub unsafe extern "C" fn __init<E: Export>(
    config: *const c_char,
    len: usize,
    err: *mut c_char,
    err_len: usize,
) -> i32 {
    guard(abi::ERROR, || {
        if err.is_null() && err_len > 0 {
            return abi::ERROR;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: this function's contract on `config`.
            match unsafe { bytes(config.cast(), len) } {
                Some(config) => init::<E>(config),
                None => Err("invalid plugin_config pointer".to_owned()),
            }
        }));
        let message = match outcome {
            Ok(Ok(())) => return abi::OK,
            Ok(Err(message)) => message,
            Err(payload) => format!("plugin panicked in init: {}", panic_message(payload)),
        };
        // SAFETY: this function's contract on `err`.
        unsafe { write_message(err, err_len, &message) };
        abi::ERROR
    })
}

/// Creates and stores the instance; the message for the server on failure.
fn init<E: Export>(config: &[u8]) -> Result<(), String> {
    const ALREADY: &str = "plugin already initialised";
    let slot = E::instance();
    if slot.get().is_some() {
        return Err(ALREADY.to_owned());
    }
    let plugin = E::Plugin::init(&String::from_utf8_lossy(config))?;
    // A concurrent `init` may have won; the server calls it once, so this is a safety net.
    slot.set(plugin).map_err(|_| ALREADY.to_owned())
}

/// The `handle` trampoline ([`abi::HandleFn`]): OK, or ERROR for a plugin that is not
/// initialised, a request object that is not v1-compatible, an `Err` or a panic.
///
/// # Safety
/// `request` is NULL or a request object the server built for this call, valid and not
/// used by anything else until it returns.
pub unsafe extern "C" fn __handle<E: Export>(request: *mut RequestAbi) -> i32 {
    guard(abi::ERROR, || {
        // SAFETY: this function's contract.
        let Some(abi) = (unsafe { request_from_ptr(request) }) else {
            return abi::ERROR;
        };
        let Some(plugin) = E::instance().get() else {
            return abi::ERROR;
        };
        match plugin.handle(&mut Request::new(abi)) {
            Ok(()) => abi::OK,
            // A client going away is routine, not worth a line in the log.
            Err(Error::Disconnected) => abi::ERROR,
            Err(error) => {
                // ABI v1 has no log function; the server's stderr is its log.
                eprintln!("{}: {error}", E::NAME);
                abi::ERROR
            }
        }
    })
}

/// The `terminate` trampoline ([`abi::TerminateFn`]).
pub extern "C" fn __terminate<E: Export>() {
    guard((), || {
        if let Some(plugin) = E::instance().get() {
            plugin.terminate();
        }
    });
}

/// The offsets of the request's functions, which must not be NULL.
const REQUEST_FUNCTIONS: [usize; 7] = [
    offset_of!(RequestAbi, get_var),
    offset_of!(RequestAbi, read_body),
    offset_of!(RequestAbi, send_headers),
    offset_of!(RequestAbi, write),
    offset_of!(RequestAbi, flush),
    offset_of!(RequestAbi, set_mode),
    offset_of!(RequestAbi, is_connected),
];

/// The request object behind `ptr` if it is non-NULL, aligned, at least as large as v1's,
/// of version 1 or later and has all its functions.
///
/// # Safety
/// As [`__handle`].
unsafe fn request_from_ptr<'a>(ptr: *mut RequestAbi) -> Option<&'a mut RequestAbi> {
    if ptr.is_null() || !ptr.is_aligned() {
        return None;
    }
    // SAFETY: non-NULL and aligned; every version of the request object starts with these
    // two u32 fields, and reading them through the pointer creates no reference to the rest.
    let (size, version) = unsafe { ((*ptr).size, (*ptr).abi_version) };
    if (size as usize) < size_of::<RequestAbi>() || version < abi::ABI_VERSION {
        return None;
    }
    let base = ptr.cast::<u8>();
    let missing = REQUEST_FUNCTIONS.iter().any(|&offset| {
        // SAFETY: the object is at least `size_of::<RequestAbi>()` bytes, so each function
        // slot is inside it and pointer-aligned (`repr(C)`). It is read as a data pointer,
        // which may be NULL, because a NULL in a fn-pointer field is not a valid `RequestAbi`.
        unsafe { base.add(offset).cast::<*const c_void>().read() }.is_null()
    });
    if missing {
        return None;
    }
    // SAFETY: checked above; the server keeps it valid and ours alone during `handle`.
    Some(unsafe { &mut *ptr })
}

/// `len` bytes at `data`; `None` if `data` is NULL with a non-zero length or the length is
/// impossible.
///
/// # Safety
/// If non-NULL, `data` holds `len` readable bytes for `'a`.
unsafe fn bytes<'a>(data: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() || isize::try_from(len).is_err() {
        return None;
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
    Some(unsafe { slice::from_raw_parts(data, len) })
}

/// Copies as much of `message` as fits in `err_len - 1` bytes (not splitting a character),
/// then a NUL. Nothing when `err` is NULL or `err_len` is 0.
///
/// # Safety
/// If non-NULL, `err` holds `err_len` writable bytes.
unsafe fn write_message(err: *mut c_char, err_len: usize, message: &str) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let mut n = message.len().min(err_len - 1);
    while !message.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: n + 1 <= err_len bytes, which the caller guarantees are writable.
    let out = unsafe { slice::from_raw_parts_mut(err.cast::<u8>(), n + 1) };
    out[..n].copy_from_slice(&message.as_bytes()[..n]);
    out[n] = 0;
}

/// Runs `f`, returning `fallback` if it panics.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            discard(payload);
            fallback
        }
    }
}

/// The text of a panic (`panic!("…")` carries a `&str` or a `String`).
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    };
    discard(payload);
    message
}

/// Drops a panic payload; one whose own `drop` panics is leaked rather than let unwind, as
/// the `catch_unwind` documentation warns it would.
fn discard(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(again);
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::fake_server::FakeServer;

    /// A plugin driven by its config (in `init`) and the QUERY_STRING (in `handle`).
    struct Echo {
        config: String,
        terminated: AtomicUsize,
    }

    impl Plugin for Echo {
        fn init(config: &str) -> Result<Self, String> {
            match config {
                "panic" => panic!("boom"),
                bad if bad.starts_with("bad") => Err(format!("refused: {bad}")),
                _ => Ok(Echo {
                    config: config.to_owned(),
                    terminated: AtomicUsize::new(0),
                }),
            }
        }

        fn handle(&self, req: &mut Request<'_>) -> Result<(), Error> {
            match req.var_str("QUERY_STRING").as_deref() {
                Some("panic") => panic!("boom"),
                Some("fail") => Err(Error::Plugin("asked to fail".into())),
                _ => {
                    req.send_headers(200, &[("Content-Type", "text/plain")])?;
                    req.write(self.config.as_bytes())
                }
            }
        }

        fn terminate(&self) {
            self.terminated.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An `Export` with a static of its own, so tests do not share an instance.
    macro_rules! slot {
        ($name:ident) => {
            enum $name {}
            impl Export for $name {
                type Plugin = Echo;
                const NAME: &'static str = stringify!($name);
                fn instance() -> &'static OnceLock<Echo> {
                    static INSTANCE: OnceLock<Echo> = OnceLock::new();
                    &INSTANCE
                }
            }
        };
    }

    /// Spare bytes after the error buffer, which must stay untouched.
    const CANARY: u8 = 0xAA;

    /// Calls `__init::<E>` with an error buffer of `err_len` bytes; the status and the whole
    /// buffer (with 4 canary bytes after it).
    fn init<E: Export>(config: &[u8], err_len: usize) -> (i32, Vec<u8>) {
        let mut err = vec![CANARY; err_len + 4];
        // SAFETY: both buffers are live and of the lengths given.
        let status = unsafe {
            __init::<E>(
                config.as_ptr().cast(),
                config.len(),
                err.as_mut_ptr().cast(),
                err_len,
            )
        };
        (status, err)
    }

    /// The NUL-terminated message at the start of `err`.
    fn message(err: &[u8]) -> &str {
        CStr::from_bytes_until_nul(err).unwrap().to_str().unwrap()
    }

    /// Calls `__handle::<E>` on a request over `fake`.
    fn handle<E: Export>(fake: &mut FakeServer) -> i32 {
        let mut abi = fake.abi();
        // SAFETY: a complete request object over a live fake.
        unsafe { __handle::<E>(&mut abi) }
    }

    #[test]
    fn init_then_handle_answers() {
        slot!(P);
        assert_eq!(init::<P>(b"hello", 64).0, abi::OK);
        let mut fake = FakeServer::default();
        assert_eq!(handle::<P>(&mut fake), abi::OK);
        assert_eq!(fake.output, b"hello");
        assert_eq!(fake.head.unwrap().1, b"Content-Type: text/plain\r\n");
    }

    #[test]
    fn init_error_is_copied_with_a_nul() {
        slot!(P);
        let (status, err) = init::<P>(b"bad config", 64);
        assert_eq!(status, abi::ERROR);
        assert_eq!(message(&err), "refused: bad config");
        assert!(P::instance().get().is_none());
    }

    #[test]
    fn init_error_is_truncated_to_fit_with_its_nul() {
        slot!(P);
        let (status, err) = init::<P>(b"bad config", 8);
        assert_eq!(status, abi::ERROR);
        assert_eq!(&err[..8], b"refused\0");
        assert_eq!(err[8..], [CANARY; 4]);
    }

    #[test]
    fn init_error_truncation_keeps_characters_whole() {
        slot!(P);
        // "refused: bad é": 'é' is two bytes, and only one of them would fit.
        let (_, err) = init::<P>("bad é".as_bytes(), 15);
        assert_eq!(message(&err), "refused: bad ");
    }

    #[test]
    fn init_error_with_no_room_writes_nothing() {
        slot!(P);
        let (status, err) = init::<P>(b"bad", 0);
        assert_eq!(status, abi::ERROR);
        assert_eq!(err, [CANARY; 4]);
        // SAFETY: NULL with a zero length is allowed.
        let status = unsafe { __init::<P>(b"bad".as_ptr().cast(), 3, ptr::null_mut(), 0) };
        assert_eq!(status, abi::ERROR);
        // SAFETY: the function must refuse NULL with a non-zero length without using it.
        let status = unsafe { __init::<P>(b"ok".as_ptr().cast(), 2, ptr::null_mut(), 8) };
        assert_eq!(status, abi::ERROR);
        assert!(P::instance().get().is_none());
    }

    #[test]
    fn init_with_no_config_gets_an_empty_one() {
        slot!(P);
        let mut err = [0u8; 16];
        // SAFETY: NULL with a zero length is allowed; `err` holds 16 bytes.
        let status = unsafe { __init::<P>(ptr::null(), 0, err.as_mut_ptr().cast(), 16) };
        assert_eq!(status, abi::OK);
        assert_eq!(P::instance().get().unwrap().config, "");

        slot!(Q);
        // SAFETY: the function must refuse NULL with a non-zero length without reading it.
        let status = unsafe { __init::<Q>(ptr::null(), 5, err.as_mut_ptr().cast(), 16) };
        assert_eq!(status, abi::ERROR);
        assert_eq!(message(&err), "invalid plugin_");
    }

    #[test]
    fn init_reads_config_as_lossy_utf8() {
        slot!(P);
        assert_eq!(init::<P>(b"caf\xe9", 64).0, abi::OK);
        assert_eq!(P::instance().get().unwrap().config, "caf\u{fffd}");
    }

    #[test]
    fn init_panic_becomes_a_message() {
        slot!(P);
        let (status, err) = init::<P>(b"panic", 64);
        assert_eq!(status, abi::ERROR);
        assert_eq!(message(&err), "plugin panicked in init: boom");
    }

    #[test]
    fn second_init_is_refused() {
        slot!(P);
        assert_eq!(init::<P>(b"first", 64).0, abi::OK);
        let (status, err) = init::<P>(b"second", 64);
        assert_eq!(status, abi::ERROR);
        assert_eq!(message(&err), "plugin already initialised");
        assert_eq!(P::instance().get().unwrap().config, "first");
    }

    #[test]
    fn handle_before_init_fails_without_calling_the_server() {
        slot!(P);
        let mut fake = FakeServer::default();
        assert_eq!(handle::<P>(&mut fake), abi::ERROR);
        assert_eq!(fake.calls + fake.get_var_capacities.len(), 0);
    }

    #[test]
    fn handle_panic_is_an_error_and_the_plugin_serves_on() {
        slot!(P);
        assert_eq!(init::<P>(b"still here", 64).0, abi::OK);
        let mut fake = FakeServer::default().var("QUERY_STRING", b"panic");
        assert_eq!(handle::<P>(&mut fake), abi::ERROR);
        assert_eq!(fake.head, None);
        let mut fake = FakeServer::default();
        assert_eq!(handle::<P>(&mut fake), abi::OK);
        assert_eq!(fake.output, b"still here");
    }

    #[test]
    fn handle_err_is_an_error() {
        slot!(P);
        assert_eq!(init::<P>(b"", 64).0, abi::OK);
        let mut fake = FakeServer::default().var("QUERY_STRING", b"fail");
        assert_eq!(handle::<P>(&mut fake), abi::ERROR);
        assert_eq!(fake.head, None);
    }

    #[test]
    fn handle_refuses_a_bad_request_object() {
        slot!(P);
        assert_eq!(init::<P>(b"", 64).0, abi::OK);
        // SAFETY: NULL is checked before use.
        assert_eq!(unsafe { __handle::<P>(ptr::null_mut()) }, abi::ERROR);

        let mut fake = FakeServer::default();
        let mut small = fake.abi();
        small.size -= 8;
        // SAFETY: a live object; its size field is what is under test.
        assert_eq!(unsafe { __handle::<P>(&mut small) }, abi::ERROR);
        let mut old = fake.abi();
        old.abi_version = 0;
        // SAFETY: as above, for the version.
        assert_eq!(unsafe { __handle::<P>(&mut old) }, abi::ERROR);
        assert_eq!(fake.calls, 0);

        for offset in REQUEST_FUNCTIONS {
            let mut raw = MaybeUninit::new(fake.abi());
            // SAFETY: a slot inside the object, pointer-sized and aligned. The object is
            // only ever used through the raw pointer afterwards, never as a `RequestAbi`.
            unsafe {
                let slot = raw.as_mut_ptr().cast::<u8>().add(offset);
                slot.cast::<*const c_void>().write(ptr::null());
            }
            // SAFETY: the object is live; the NULL function is what is under test.
            assert_eq!(unsafe { __handle::<P>(raw.as_mut_ptr()) }, abi::ERROR);
        }
        assert_eq!(fake.calls, 0);
    }

    #[test]
    fn a_newer_larger_request_object_is_accepted() {
        slot!(P);
        assert_eq!(init::<P>(b"v2", 64).0, abi::OK);
        let mut fake = FakeServer::default();
        let mut abi = fake.abi();
        // A later server may grow the object and bump the version; v1 fields stay put.
        abi.abi_version = 2;
        // SAFETY: a live, complete object.
        assert_eq!(unsafe { __handle::<P>(&mut abi) }, abi::OK);
        assert_eq!(fake.output, b"v2");
    }

    #[test]
    fn terminate_reaches_the_instance_if_any() {
        slot!(P);
        slot!(Never);
        assert_eq!(init::<P>(b"", 64).0, abi::OK);
        __terminate::<Never>();
        __terminate::<P>();
        assert_eq!(
            P::instance()
                .get()
                .unwrap()
                .terminated
                .load(Ordering::SeqCst),
            1
        );
    }

    #[test]
    fn panic_payloads_give_their_text() {
        let text = |f: fn()| panic_message(catch_unwind(f).unwrap_err());
        assert_eq!(text(|| panic!("plain")), "plain");
        assert_eq!(text(|| panic!("formatted {}", 1)), "formatted 1");
        assert_eq!(text(|| std::panic::panic_any(7_u8)), "(no message)");
    }

    // The macro, used as a plugin crate would, exports the descriptor under its C name.
    crate::export_plugin!(Echo, "test-echo");

    extern "C" {
        fn cgigate_plugin_descriptor() -> *const PluginDescriptor;
    }

    #[test]
    fn export_plugin_builds_the_descriptor() {
        // SAFETY: defined just above by the macro; takes no arguments.
        let descriptor = unsafe { &*cgigate_plugin_descriptor() };
        assert_eq!(descriptor.size as usize, size_of::<PluginDescriptor>());
        assert_eq!(descriptor.abi_version, abi::ABI_VERSION);
        // SAFETY: the descriptor's name is a static NUL-terminated string.
        assert_eq!(unsafe { CStr::from_ptr(descriptor.name) }, c"test-echo");
        assert!(descriptor.reserved.iter().all(|p| p.is_null()));

        let mut err = [0u8; 64];
        let config = b"through the descriptor";
        // SAFETY: the descriptor's functions, called as the server would.
        let status = unsafe {
            descriptor.init.unwrap()(
                config.as_ptr().cast(),
                config.len(),
                err.as_mut_ptr().cast(),
                64,
            )
        };
        assert_eq!(status, abi::OK);
        let mut fake = FakeServer::default();
        let mut abi = fake.abi();
        // SAFETY: as above.
        assert_eq!(unsafe { descriptor.handle.unwrap()(&mut abi) }, abi::OK);
        assert_eq!(fake.output, config);
        // SAFETY: as above.
        unsafe { descriptor.terminate.unwrap()() };
    }
}
