//! `static_dir = "…"`: files from a folder. GET and HEAD only; Content-Type by extension,
//! Content-Length, Last-Modified with If-Modified-Since → 304 (RFC 9110 §13.1.3). Nothing
//! outside the folder is ever served: `%2F` or NUL in a name → 404, symlinks that leave the
//! folder → 403, a folder without index.html → 403.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::http::path::percent_decode;
use crate::http::status;
use crate::response::Response;

/// File reads are this big (bytes).
const READ_SIZE: usize = 64 * 1024;

/// Serves one folder.
pub(crate) struct StaticDir {
    root: PathBuf,
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
        Ok(StaticDir { root })
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
        let method = req.head.method_str();
        if method != "GET" && method != "HEAD" {
            res.set_header("Allow", "GET, HEAD");
            return res
                .plain(status::METHOD_NOT_ALLOWED, "Method Not Allowed")
                .await;
        }
        let below = req.path_below_prefix().to_string();
        let path = match self.resolve(&below) {
            Ok(p) => p,
            Err(Refusal::NotFound) => return res.plain(status::NOT_FOUND, "Not Found").await,
            Err(Refusal::Forbidden) => return res.plain(status::FORBIDDEN, "Forbidden").await,
            Err(Refusal::AddSlash) => {
                res.set_header("Location", format!("{}/", req.path));
                return res
                    .plain(status::MOVED_PERMANENTLY, "Moved Permanently")
                    .await;
            }
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                return res.plain(status::FORBIDDEN, "Forbidden").await
            }
            Err(_) => return res.plain(status::NOT_FOUND, "Not Found").await,
        };
        let meta = file.metadata().await?;
        let modified = meta.modified().ok().map(whole_seconds);
        if let (Some(mtime), Some(since)) = (modified, if_modified_since(req)) {
            if mtime <= since {
                res.status(status::NOT_MODIFIED);
                if let Some(m) = modified {
                    res.set_header("Last-Modified", crate::http::date::http_date(m));
                }
                return Ok(());
            }
        }
        res.set_header("Content-Type", content_type(&path));
        if let Some(m) = modified {
            res.set_header("Last-Modified", crate::http::date::http_date(m));
        }
        let len = meta.len();
        res.sized(len);
        if req.head.is_head() {
            return Ok(());
        }
        let mut left = len;
        while left > 0 {
            let mut buf = BytesMut::with_capacity(READ_SIZE.min(left as usize));
            let n = file.read_buf(&mut buf).await?;
            if n == 0 {
                // The file shrank while we sent it; the connection closes (SPEC §4).
                return Err(HandlerError::Other("file shrank while being sent".into()));
            }
            left = left.saturating_sub(n as u64);
            res.write(buf.freeze()).await?;
        }
        Ok(())
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
