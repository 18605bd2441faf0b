//! `static_dir = "…"`: files from a folder. GET and HEAD only; Content-Type by extension,
//! Content-Length, Last-Modified with If-Modified-Since → 304 (RFC 9110 §13.1.3). Nothing
//! outside the folder is ever served: `%2F` or NUL in a name → 404, symlinks that leave the
//! folder → 403, a folder without index.html → 403.
//!
//! Every file system call is made on the runtime's own thread, as nginx makes them on its
//! event loop: for a page-cached file an `open`, an `fstat` or a `pread` takes microseconds,
//! less than the two thread wake-ups of a hop to the blocking pool (three hops per request
//! cost more than the rest of the request together). A folder on slow storage (a network
//! file system) stalls the worker that waits for it; docs/config.md says so. Resolved paths
//! and their open files are kept in [`OpenFiles`] (its validity rule is in `open_files`).
//! Small files are read whole and sent with the head in one write; larger ones go as a file
//! range, which a plain TCP connection sends with sendfile(2).

mod open_files;

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::http::outbuf::FileRange;
use crate::http::path::percent_decode;
use crate::http::status;
use crate::response::Response;

use open_files::{OpenFile, OpenFiles};

/// Files up to this size are read into memory and go out with the head in one write; larger
/// ones are sent as a file range (bytes).
const READ_WHOLE_MAX: u64 = 64 * 1024;

/// Serves one folder.
pub(crate) struct StaticDir {
    root: PathBuf,
    open_files: OpenFiles,
}

impl StaticDir {
    /// Serve `root`, which must exist and be a folder.
    pub(crate) fn new(root: &Path) -> std::io::Result<StaticDir> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "not a directory",
            ));
        }
        Ok(StaticDir {
            root,
            open_files: OpenFiles::new(open_files::VALID, open_files::MAX_ENTRIES),
        })
    }
}

impl Handler for StaticDir {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.serve(req, res))
    }
}

/// Why a path cannot be served.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    NotFound,
    Forbidden,
    /// A folder asked for without its trailing slash.
    AddSlash,
}

impl StaticDir {
    async fn serve(&self, req: &mut Request, res: &mut Response) -> Result<(), HandlerError> {
        if !super::read_only::is_get_or_head(req) {
            return super::read_only::get_or_head_only(res).await;
        }
        let opened = match self.open(req.path_below_prefix(), Instant::now()) {
            Ok(opened) => opened,
            Err(Refusal::NotFound) => return res.plain(status::NOT_FOUND, "Not Found").await,
            Err(Refusal::Forbidden) => return res.plain(status::FORBIDDEN, "Forbidden").await,
            Err(Refusal::AddSlash) => {
                res.set_header("Location", format!("{}/", req.path));
                return res
                    .plain(status::MOVED_PERMANENTLY, "Moved Permanently")
                    .await;
            }
        };
        // The open file's own length and time, for every request, cached or not: a file
        // changed in place is seen at once (open_files: the validity rule).
        let meta = opened.file.metadata()?;
        let modified = meta.modified().ok().map(whole_seconds);
        if let (Some(mtime), Some(since)) = (modified, if_modified_since(req)) {
            if mtime <= since {
                res.status(status::NOT_MODIFIED);
                res.set_header("Last-Modified", crate::http::date::http_date(mtime));
                return Ok(());
            }
        }
        res.set_header("Content-Type", opened.content_type);
        if let Some(m) = modified {
            res.set_header("Last-Modified", crate::http::date::http_date(m));
        }
        let len = meta.len();
        res.sized(len);
        if req.head.is_head() {
            return Ok(());
        }
        if len <= READ_WHOLE_MAX {
            // Read before the head goes: a file that shrank since its fstat is a 500, not a
            // short body.
            let body = read_whole(&opened.file, len)?;
            return res.write(body).await;
        }
        let range = FileRange {
            file: opened.file,
            offset: 0,
            len,
        };
        res.write_file(range).await
    }

    /// The open file for a path below the prefix: from the cache while it is valid, else
    /// resolved, checked and opened (and then cached).
    fn open(&self, below: &str, now: Instant) -> Result<OpenFile, Refusal> {
        if let Some(opened) = self.open_files.get(below, now) {
            return Ok(opened);
        }
        let path = self.resolve(below)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => return Err(Refusal::Forbidden),
            Err(_) => return Err(Refusal::NotFound),
        };
        let opened = OpenFile {
            file: Arc::new(file),
            content_type: content_type(&path),
        };
        self.open_files.insert(below, opened.clone(), now);
        Ok(opened)
    }

    /// Map the (normalized, percent-encoded) path below the prefix to a file inside the root.
    fn resolve(&self, below: &str) -> Result<PathBuf, Refusal> {
        let decoded = percent_decode(below).ok_or(Refusal::NotFound)?;
        let mut path = self.root.clone();
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Err(Refusal::Forbidden),
                s => path.push(s),
            }
        }
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => return Err(Refusal::Forbidden),
            Err(_) => return Err(Refusal::NotFound),
        };
        if !real.starts_with(&self.root) {
            return Err(Refusal::Forbidden);
        }
        if real.is_dir() {
            if !below.is_empty() && !below.ends_with('/') {
                return Err(Refusal::AddSlash);
            }
            let index = real.join("index.html");
            return if index.is_file() {
                Ok(index)
            } else {
                Err(Refusal::Forbidden)
            };
        }
        if real.is_file() {
            Ok(real)
        } else {
            Err(Refusal::Forbidden)
        }
    }
}

/// The first `len` bytes of `file`; an error if it has fewer now.
fn read_whole(file: &File, len: u64) -> Result<Bytes, HandlerError> {
    let len = usize::try_from(len).map_err(|_| HandlerError::Other("file too large".into()))?;
    let mut buf = BytesMut::zeroed(len);
    let mut at = 0;
    while let Some(rest) = buf.get_mut(at..).filter(|rest| !rest.is_empty()) {
        let n = file.read_at(rest, at as u64)?;
        if n == 0 {
            return Err(HandlerError::Other("file shrank while being read".into()));
        }
        at += n;
    }
    Ok(buf.freeze())
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn if_modified_since(req: &Request) -> Option<SystemTime> {
    // RFC 9110 §13.1.3: only for GET and HEAD, ignored when the date does not parse.
    let value = req.head.header("if-modified-since")?;
    httpdate::parse_http_date(std::str::from_utf8(value).ok()?).ok()
}

/// Content-Type by file extension.
pub(super) fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "text" | "log" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, StaticDir) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("withindex")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("withindex/index.html"), "i").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("inside")).unwrap();
        let sd = StaticDir::new(&root).unwrap();
        (dir, sd)
    }

    #[test]
    fn resolves_inside_and_refuses_outside() {
        let (_d, sd) = tree();
        assert!(sd.resolve("a.txt").unwrap().ends_with("a.txt"));
        assert!(sd.resolve("inside").unwrap().ends_with("a.txt"));
        assert!(sd.resolve("withindex/").unwrap().ends_with("index.html"));
        assert_eq!(sd.resolve("withindex"), Err(Refusal::AddSlash));
        assert_eq!(sd.resolve("sub/"), Err(Refusal::Forbidden));
        assert_eq!(sd.resolve(""), Err(Refusal::Forbidden));
        assert_eq!(sd.resolve("leak"), Err(Refusal::Forbidden));
        assert_eq!(sd.resolve("../secret"), Err(Refusal::Forbidden));
        assert_eq!(sd.resolve("sub%2F..%2F..%2Fsecret"), Err(Refusal::NotFound));
        assert_eq!(sd.resolve("a.txt%00"), Err(Refusal::NotFound));
        assert_eq!(sd.resolve("missing"), Err(Refusal::NotFound));
        assert_eq!(sd.resolve("%61.txt").unwrap().file_name().unwrap(), "a.txt");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("x.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
        assert_eq!(content_type(Path::new("x.png")), "image/png");
    }
}
