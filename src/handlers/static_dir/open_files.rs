//! The static handler's cache of open files, after nginx's `open_file_cache`: a request
//! path that was resolved and opened lately is answered from the same descriptor without
//! walking the path again (canonicalize's `readlink` and `stat` per component, the checks
//! that keep symlinks inside the folder, `open`, `close`).
//!
//! The validity rule: the bytes, the length and the modification time always come from the
//! open file itself (it is `fstat`ed for every request), so a file changed in place is seen
//! at once. Which file a path names — a file replaced by a rename, removed, a symlink or a
//! permission changed — is trusted for [`VALID`] after the path was resolved; the first
//! request after that resolves and opens it again. Only successes are kept: a 404 or 403
//! is decided anew for every request, so a file that appears is served at once. At most
//! [`MAX_ENTRIES`] descriptors are held per route. The cache is pure bookkeeping over a
//! clock it is given, so the rule is tested without waiting.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a resolved path is trusted to name the same file.
pub(crate) const VALID: Duration = Duration::from_secs(1);
/// Most open files kept per `static_dir` route (each is a descriptor).
pub(crate) const MAX_ENTRIES: usize = 256;

/// A file resolved and opened for a request path.
#[derive(Debug, Clone)]
pub(crate) struct OpenFile {
    /// The open file.
    pub(crate) file: Arc<File>,
    /// Its Content-Type, from the resolved name's extension.
    pub(crate) content_type: &'static str,
}

#[derive(Debug)]
struct Entry {
    open: OpenFile,
    /// When the path was resolved.
    resolved: Instant,
}

/// Request paths (below the route's prefix) → the files they resolved to.
#[derive(Debug)]
pub(crate) struct OpenFiles {
    valid: Duration,
    max: usize,
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

impl OpenFiles {
    /// A cache trusting a resolution for `valid`, holding at most `max` files (`max` 0 or
    /// `valid` zero: nothing is kept).
    pub(crate) fn new(valid: Duration, max: usize) -> OpenFiles {
        OpenFiles {
            valid,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file `path` resolved to, if that was less than the validity ago at `now`.
    pub(crate) fn get(&self, path: &str, now: Instant) -> Option<OpenFile> {
        let mut entries = self.lock();
        let entry = entries.get(path)?;
        if self.is_fresh(entry, now) {
            return Some(entry.open.clone());
        }
        entries.remove(path);
        None
    }

    /// Remember that `path` resolved to `open` at `now`. When full, expired entries go
    /// first, then an arbitrary one.
    pub(crate) fn insert(&self, path: &str, open: OpenFile, now: Instant) {
        if self.max == 0 || self.valid.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max && !entries.contains_key(path) {
            entries.retain(|_, e| now.saturating_duration_since(e.resolved) < self.valid);
            if entries.len() >= self.max {
                if let Some(victim) = entries.keys().next().cloned() {
                    entries.remove(&victim);
                }
            }
        }
        let entry = Entry {
            open,
            resolved: now,
        };
        entries.insert(path.into(), entry);
    }

    fn is_fresh(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.resolved) < self.valid
    }

    /// Files held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir, name: &str) -> OpenFile {
        let path = dir.path().join(name);
        std::fs::write(&path, name).unwrap();
        OpenFile {
            file: Arc::new(File::open(path).unwrap()),
            content_type: "text/plain",
        }
    }

    #[test]
    fn an_entry_is_trusted_until_the_validity_is_over_and_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let cache = OpenFiles::new(Duration::from_secs(1), 8);
        let t0 = Instant::now();
        assert!(cache.get("a", t0).is_none());
        cache.insert("a", open(&dir, "a"), t0);
        let just_before = t0 + Duration::from_secs(1) - Duration::from_nanos(1);
        assert!(cache.get("a", just_before).is_some());
        assert!(cache.get("a", t0 + Duration::from_secs(1)).is_none());
        assert_eq!(
            cache.len(),
            0,
            "an expired entry is dropped, closing its file"
        );
        assert!(cache.get("a", just_before).is_none(), "and stays gone");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = OpenFiles::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        cache.insert("old", open(&dir, "old"), t0);
        let t1 = t0 + Duration::from_millis(500);
        cache.insert("mid", open(&dir, "mid"), t1);
        let t2 = t0 + Duration::from_millis(1200);
        cache.insert("new", open(&dir, "new"), t2);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("mid", t2).is_some(), "the fresh entry stayed");
        assert!(cache.get("new", t2).is_some());
        cache.insert("newer", open(&dir, "newer"), t2);
        assert_eq!(cache.len(), 2, "nothing expired: one entry made room");
        assert!(cache.get("newer", t2).is_some());
    }

    #[test]
    fn a_zero_validity_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = OpenFiles::new(Duration::ZERO, 8);
        let t0 = Instant::now();
        cache.insert("a", open(&dir, "a"), t0);
        assert!(cache.get("a", t0).is_none());
        assert_eq!(cache.len(), 0);
    }
}
