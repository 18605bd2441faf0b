//! Loading a plugin library: find the descriptor, refuse an ABI version or size we do not
//! know, run `init`; `terminate` at shutdown. Libraries are never unloaded.

use std::ffi::{c_char, CStr};
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cgigate_plugin::abi::{
    self, DescriptorFn, HandleFn, PluginDescriptor, RequestAbi, TerminateFn,
};
use libloading::{Library, Symbol};

/// Room for the message a failing `init` writes (bytes).
const INIT_ERROR_BYTES: usize = 1024;

/// Why a plugin could not be loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// dlopen failed.
    #[error("plugin {path}: cannot load: {source}")]
    Open {
        /// The library.
        path: PathBuf,
        /// Why.
        #[source]
        source: libloading::Error,
    },
    /// The library does not export the descriptor function.
    #[error("plugin {path}: no `cgigate_plugin_descriptor` symbol (is it a cgigate plugin?)")]
    NoDescriptor {
        /// The library.
        path: PathBuf,
    },
    /// The descriptor function returned NULL.
    #[error("plugin {path}: cgigate_plugin_descriptor() returned NULL")]
    NullDescriptor {
        /// The library.
        path: PathBuf,
    },
    /// The plugin was built for an ABI version this server does not know.
    #[error("plugin {path}: ABI version {found} is not supported (this server speaks version {expected})")]
    Version {
        /// The library.
        path: PathBuf,
        /// What the plugin says.
        found: u32,
        /// What we know.
        expected: u32,
    },
    /// The descriptor's size does not match the version it claims.
    #[error("plugin {path}: descriptor size {found} does not match ABI version {version} (expected {expected})")]
    Size {
        /// The library.
        path: PathBuf,
        /// What the plugin says.
        found: u32,
        /// What version 1 has.
        expected: u32,
        /// The version it claims.
        version: u32,
    },
    /// The descriptor has no `handle` function.
    #[error("plugin {path}: the descriptor has no handle function")]
    NoHandle {
        /// The library.
        path: PathBuf,
    },
    /// `init` failed; the message is the plugin's own.
    #[error("plugin {path} ({name}): init failed: {message}")]
    Init {
        /// The library.
        path: PathBuf,
        /// The plugin's name.
        name: String,
        /// The plugin's message.
        message: String,
    },
}

/// A loaded, initialised plugin.
pub(crate) struct Plugin {
    name: String,
    handle: HandleFn,
    terminate: Option<TerminateFn>,
    terminated: AtomicBool,
    /// `handle` calls running now: `terminate` waits for them.
    active: AtomicUsize,
    /// Never unloaded: code of the library may still be on a worker thread's stack, and
    /// ISAPI hosts learnt that unloading is where the crashes are.
    _library: ManuallyDrop<Library>,
}

impl Plugin {
    /// Load `path`, check its descriptor and run its `init` with `config`.
    pub(crate) fn load(path: &Path, config: &str) -> Result<Plugin, LoadError> {
        let path_buf = path.to_path_buf();
        // SAFETY: loading a library runs its initialisers. The operator named this file as a
        // plugin in the config: running its code in-process is what a plugin is for.
        let library = unsafe { Library::new(path) }.map_err(|source| LoadError::Open {
            path: path_buf.clone(),
            source,
        })?;
        // SAFETY: the ABI declares the symbol as `const cgigate_plugin *(*)(void)`, which is
        // what `DescriptorFn` is; the symbol does not outlive `library` (both are kept).
        let describe: Symbol<'_, DescriptorFn> = unsafe { library.get(abi::DESCRIPTOR_SYMBOL) }
            .map_err(|_| LoadError::NoDescriptor {
                path: path_buf.clone(),
            })?;
        // SAFETY: calling the plugin's descriptor function, which takes no arguments.
        let descriptor = unsafe { describe() };
        let descriptor = check_descriptor(descriptor, &path_buf)?;
        let name = c_string(descriptor.name).unwrap_or_else(|| "unnamed".to_string());
        let handle = descriptor.handle.ok_or_else(|| LoadError::NoHandle {
            path: path_buf.clone(),
        })?;
        if let Some(init) = descriptor.init {
            let mut err = vec![0u8; INIT_ERROR_BYTES];
            // SAFETY: `config` is valid for `config.len()` bytes and `err` for its length for
            // the duration of the call; the plugin may write a NUL-terminated message into
            // `err` and keeps neither pointer (ABI: "owned by the server").
            let status = unsafe {
                init(
                    config.as_ptr().cast::<c_char>(),
                    config.len(),
                    err.as_mut_ptr().cast::<c_char>(),
                    err.len(),
                )
            };
            if status != abi::OK {
                let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
                let message = String::from_utf8_lossy(&err[..end]).into_owned();
                let message = if message.is_empty() {
                    format!("status {status}")
                } else {
                    message
                };
                return Err(LoadError::Init {
                    path: path_buf,
                    name,
                    message,
                });
            }
        }
        let terminate = descriptor.terminate;
        Ok(Plugin {
            name,
            handle,
            terminate,
            terminated: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            _library: ManuallyDrop::new(library),
        })
    }

    /// The plugin's name, from its descriptor.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Run `handle` on a request object (on a worker thread).
    pub(crate) fn handle(&self, request: &mut RequestAbi) -> i32 {
        self.active.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `handle` comes from a descriptor that passed the version and size checks,
        // and the library stays loaded; `request` is a valid v1 request object that lives
        // for the whole call, as the ABI promises.
        let status = unsafe { (self.handle)(request) };
        self.active.fetch_sub(1, Ordering::SeqCst);
        status
    }

    /// Run `terminate` once, at shutdown, after every `handle` call has returned: a plugin
    /// may free in `terminate` what `handle` uses. If calls are still running after `wait`,
    /// `terminate` is skipped (with a warning) rather than risk a use-after-free.
    pub(crate) fn terminate(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.active.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                tracing::warn!(plugin = %self.name, "handle calls still running; terminate skipped");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.terminated.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(terminate) = self.terminate {
            // SAFETY: a function from a checked descriptor of a library that stays loaded;
            // called once, after every request finished or was cut at shutdown.
            unsafe { terminate() }
        }
    }
}

/// Read the descriptor's version and size before trusting the rest of its layout.
fn check_descriptor<'a>(
    ptr: *const PluginDescriptor,
    path: &Path,
) -> Result<&'a PluginDescriptor, LoadError> {
    if ptr.is_null() {
        return Err(LoadError::NullDescriptor {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: non-null; every ABI version begins with `uint32_t size, abi_version`, so these
    // eight bytes are readable whatever the version (read unaligned to assume nothing).
    let (size, version) = unsafe {
        let words = ptr.cast::<u32>();
        (words.read_unaligned(), words.add(1).read_unaligned())
    };
    if version != abi::ABI_VERSION {
        return Err(LoadError::Version {
            path: path.to_path_buf(),
            found: version,
            expected: abi::ABI_VERSION,
        });
    }
    let expected = std::mem::size_of::<PluginDescriptor>() as u32;
    if size != expected {
        return Err(LoadError::Size {
            path: path.to_path_buf(),
            found: size,
            expected,
            version,
        });
    }
    // SAFETY: the version and size say this is a v1 descriptor, static in the library,
    // which is never unloaded.
    Ok(unsafe { &*ptr })
}

/// A NUL-terminated string from the plugin, if the pointer is not NULL.
fn c_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null; the ABI says `name` is a static NUL-terminated string.
    Some(
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned(),
    )
}
