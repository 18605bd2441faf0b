//! `[cgi] capture_failures = "FOLDER"`: for each request whose script made the server answer
//! 502 or 504, a folder with what is needed to see it again: `request.http` (the request as
//! received, replayable with `cgigate run --request FILE`), `stderr.txt` (what the script
//! wrote there) and `reason.txt` (the status, the reason, the script). Off unless set.
//! Bounded: at most `capture_max` records (the oldest are removed first), a request body and
//! a stderr of at most [`KEPT_BYTES`] each. Authorization, Proxy-Authorization and Cookie are
//! left out of the request unless `capture_secrets = true`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::http::head::RequestHead;

/// The most bytes of a request body, and of a stderr, a record keeps.
pub(crate) const KEPT_BYTES: usize = 1 << 20;

/// Header fields that carry credentials.
const SECRETS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Records made by this process, for unique names within one millisecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Where records go and how many are kept.
#[derive(Clone, Debug)]
pub(crate) struct Capture {
    pub(crate) folder: PathBuf,
    pub(crate) max: usize,
    pub(crate) secrets: bool,
}

/// The request body as far as it was kept.
pub(crate) enum KeptBody {
    /// No body.
    None,
    /// Its bytes (at most [`KEPT_BYTES`]) and its whole length.
    Bytes(Vec<Bytes>, u64),
    /// A spooled file's handle (read back from its start) and its length.
    File(std::fs::File, u64),
    /// Streamed to the script and not kept (`request_body = "stream"`), of this length if
    /// known.
    Streamed(Option<u64>),
}

/// One failure to record.
pub(crate) struct Failure<'a> {
    pub(crate) head: &'a RequestHead,
    pub(crate) body: KeptBody,
    pub(crate) stderr: &'a [u8],
    pub(crate) status: u16,
    /// `bad_output: invalid Content-Type from script` and the like.
    pub(crate) reason: String,
    pub(crate) script: &'a str,
}

impl Capture {
    /// Write the record of `failure`, removing the oldest beyond `max`; its folder.
    pub(crate) fn write(&self, failure: Failure<'_>) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.folder)?;
        self.prune()?;
        let at = std::time::SystemTime::now();
        let now = httpdate::fmt_http_date(at);
        let stamp = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .folder
            .join(format!("{stamp:016}-{}-{n:04}", std::process::id()));
        std::fs::create_dir(&dir)?;
        let (body, cut) = body_bytes(failure.body)?;
        std::fs::write(dir.join("request.http"), self.request(failure.head, &body))?;
        let stderr = &failure.stderr[..failure.stderr.len().min(KEPT_BYTES)];
        std::fs::write(dir.join("stderr.txt"), stderr)?;
        let mut reason = std::fs::File::create(dir.join("reason.txt"))?;
        writeln!(reason, "{} {}", failure.status, failure.reason)?;
        writeln!(reason, "script: {}", failure.script)?;
        writeln!(reason, "at: {now}")?;
        if let Some(note) = cut {
            writeln!(reason, "body: {note}")?;
        }
        if failure.stderr.len() > KEPT_BYTES {
            writeln!(
                reason,
                "stderr: the first {KEPT_BYTES} of {} bytes",
                failure.stderr.len()
            )?;
        }
        writeln!(
            reason,
            "replay: cgigate run --request {}",
            dir.join("request.http").display()
        )?;
        Ok(dir)
    }

    /// The request as received, framed with a Content-Length for what was kept of its body.
    fn request(&self, head: &RequestHead, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + body.len());
        out.extend_from_slice(&head.method);
        out.push(b' ');
        out.extend_from_slice(&head.target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for field in &head.headers {
            let name = field.name_str().to_ascii_lowercase();
            let framing = name == "content-length" || name == "transfer-encoding";
            if framing || (!self.secrets && SECRETS.contains(&name.as_str())) {
                continue;
            }
            out.extend_from_slice(&field.name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&field.value);
            out.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }

    /// Remove the oldest records until there is room for one more.
    fn prune(&self) -> std::io::Result<()> {
        let mut records: Vec<PathBuf> = std::fs::read_dir(&self.folder)?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| is_record(p))
            .collect();
        records.sort();
        let excess = (records.len() + 1).saturating_sub(self.max);
        for old in records.into_iter().take(excess) {
            std::fs::remove_dir_all(old)?;
        }
        Ok(())
    }
}

/// Whether `path` is a record's folder (only those are pruned: the folder may hold more).
fn is_record(path: &Path) -> bool {
    path.join("reason.txt").is_file()
}

/// The kept body's bytes, and a note when they are not all of it.
fn body_bytes(body: KeptBody) -> std::io::Result<(Vec<u8>, Option<String>)> {
    let cut = |len: u64| {
        (len > KEPT_BYTES as u64).then(|| format!("the first {KEPT_BYTES} of {len} bytes"))
    };
    Ok(match body {
        KeptBody::None => (Vec::new(), None),
        KeptBody::Bytes(pieces, len) => {
            let mut bytes = Vec::new();
            for piece in pieces {
                let room = KEPT_BYTES - bytes.len();
                bytes.extend_from_slice(&piece[..piece.len().min(room)]);
            }
            (bytes, cut(len))
        }
        KeptBody::File(file, len) => {
            use std::os::unix::fs::FileExt;
            let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(KEPT_BYTES).min(KEPT_BYTES)];
            let mut at = 0;
            while at < bytes.len() {
                match file.read_at(&mut bytes[at..], at as u64)? {
                    0 => break,
                    n => at += n,
                }
            }
            bytes.truncate(at);
            (bytes, cut(len))
        }
        KeptBody::Streamed(len) => (
            Vec::new(),
            Some(format!(
                "not kept: it was streamed to the script (request_body = \"stream\"){}",
                len.map(|n| format!(", {n} bytes")).unwrap_or_default()
            )),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse, Limits};
    use bytes::BytesMut;

    fn head(raw: &[u8]) -> RequestHead {
        let limits = Limits {
            max_head_bytes: 8192,
            max_headers: 100,
            max_body_bytes: 1 << 20,
        };
        parse(&mut BytesMut::from(raw), &limits).unwrap().unwrap()
    }

    fn failure(head: &RequestHead, body: KeptBody) -> Failure<'_> {
        Failure {
            head,
            body,
            stderr: b"oops\n",
            status: 502,
            reason: "bad_output: invalid Content-Type from script".into(),
            script: "/cgi-bin/x",
        }
    }

    #[test]
    fn a_record_replays_the_request_without_its_secrets_and_keeps_at_most_max() {
        let dir = tempfile::tempdir().unwrap();
        let capture = Capture {
            folder: dir.path().join("failures"),
            max: 2,
            secrets: false,
        };
        let h = head(b"POST /cgi-bin/x?q=1 HTTP/1.1\r\nHost: t\r\nCookie: s=1\r\nAuthorization: Basic eA==\r\nContent-Length: 3\r\nX-Y: z\r\n\r\n");
        let body = KeptBody::Bytes(vec![Bytes::from_static(b"a=b")], 3);
        let first = capture.write(failure(&h, body)).unwrap();
        let request = std::fs::read(first.join("request.http")).unwrap();
        assert_eq!(
            request,
            b"POST /cgi-bin/x?q=1 HTTP/1.1\r\nHost: t\r\nX-Y: z\r\nContent-Length: 3\r\n\r\na=b"
        );
        assert_eq!(std::fs::read(first.join("stderr.txt")).unwrap(), b"oops\n");
        let reason = std::fs::read_to_string(first.join("reason.txt")).unwrap();
        assert!(
            reason.starts_with(
                "502 bad_output: invalid Content-Type from script\nscript: /cgi-bin/x\n"
            ),
            "{reason}"
        );
        for _ in 0..3 {
            capture.write(failure(&h, KeptBody::None)).unwrap();
        }
        let left = std::fs::read_dir(&capture.folder).unwrap().count();
        assert_eq!(left, 2);
        assert!(!first.exists(), "the oldest went first");
        // Asked for, the secrets stay.
        let with = Capture {
            secrets: true,
            ..capture
        };
        let dir = with.write(failure(&h, KeptBody::None)).unwrap();
        let request = String::from_utf8(std::fs::read(dir.join("request.http")).unwrap()).unwrap();
        assert!(
            request.contains("Cookie: s=1\r\n")
                && request.contains("Authorization: Basic eA==\r\n")
        );
    }

    #[test]
    fn a_long_body_is_cut_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let capture = Capture {
            folder: dir.path().to_path_buf(),
            max: 5,
            secrets: false,
        };
        let h = head(b"POST /x HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![b'a'; KEPT_BYTES + 10]).unwrap();
        let record = capture
            .write(failure(&h, KeptBody::File(file, KEPT_BYTES as u64 + 10)))
            .unwrap();
        let request = std::fs::read(record.join("request.http")).unwrap();
        assert!(request.ends_with(&vec![b'a'; KEPT_BYTES]));
        let reason = std::fs::read_to_string(record.join("reason.txt")).unwrap();
        assert!(
            reason.contains(&format!(
                "body: the first {KEPT_BYTES} of {} bytes",
                KEPT_BYTES + 10
            )),
            "{reason}"
        );
    }
}
