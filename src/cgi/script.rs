//! Which program runs for a request path (SPEC §5.1): the walk from a `cgi_dir` folder to the
//! first regular file, the PATH_INFO left over, the interpreter chosen by extension, and the
//! refusals (404/403) that keep everything outside the folder from ever running.
//!
//! Synchronous on purpose: it only makes `std::fs` metadata calls, a handful per request, so
//! the caller may run it on a blocking thread or accept the small cost inline.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::http::path::percent_decode;
use crate::http::status;

/// A program to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// What to exec: the interpreter if any, else the script itself.
    pub program: PathBuf,
    /// `[script path]` when an interpreter runs it, else empty (argv[0] is `program`).
    pub args: Vec<PathBuf>,
    /// Absolute path of the script file (SCRIPT_FILENAME).
    pub script_filename: PathBuf,
    /// URL path of the script: prefix + the script's path below it, decoded (SCRIPT_NAME).
    pub script_name: String,
    /// The rest of the path, decoded: "" or starting with "/" (PATH_INFO).
    pub path_info: String,
    /// Working directory: the script's folder.
    pub dir: PathBuf,
    /// The script's file name starts with "nph-" (SPEC §5.5).
    pub nph: bool,
}

/// Why a path does not lead to a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 404: nothing there, or a path that cannot name a file (`%2F`, `%00`, bad escapes).
    NotFound,
    /// 403: something there that must not run (folder, dotfile, not executable, escaping link).
    Forbidden,
}

impl Refusal {
    /// The HTTP status code for this refusal.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotFound => status::NOT_FOUND,
            Refusal::Forbidden => status::FORBIDDEN,
        }
    }

    /// The reason phrase for [`Refusal::status`] (RFC 9110 §15.5.4, §15.5.5).
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotFound => "Not Found",
            Refusal::Forbidden => "Forbidden",
        }
    }
}

/// A `cgi_dir` folder, made canonical once when the route is built (start-up, reload): the
/// walk starts here and a followed symlink must stay below it. Resolving it again for every
/// request would cost a `readlink` per path component and change nothing, since a canonical
/// path holds no links to swap.
#[derive(Debug, Clone)]
pub struct CanonicalDir(PathBuf);

impl CanonicalDir {
    /// `dir` made canonical; it must be a folder.
    pub fn new(dir: &Path) -> io::Result<CanonicalDir> {
        let dir = dir.canonicalize()?;
        if !dir.is_dir() {
            return Err(io::Error::other("not a directory"));
        }
        Ok(CanonicalDir(dir))
    }

    /// The canonical path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Interpreters by extension, e.g. `(".py", "python3")`. A bare program name is looked up in
/// PATH by the OS at exec time.
pub type Interpreters = [(String, PathBuf)];

/// Resolve a `cgi_dir` route.
///
/// `root` is the route's folder, `prefix` the route prefix (e.g. "/cgi-bin/"), `below` the
/// request path below the prefix, still percent-encoded.
pub fn resolve_in_dir(
    root: &CanonicalDir,
    prefix: &str,
    below: &str,
    interpreters: &Interpreters,
) -> Result<Script, Refusal> {
    // SPEC §5.1: decoded once; `%2F` and `%00` → 404.
    let decoded = percent_decode(below).ok_or(Refusal::NotFound)?;
    // The router removed dot-segments before decoding; a "%2e%2e" only appears now.
    refuse_dot_dot(&decoded)?;
    let root = root.path();
    let found = walk(root, &decoded)?;
    let name = found.segments.last().copied().unwrap_or_default();
    let (program, args) = program_for(&found.path, name, &found.meta, interpreters)?;
    let dir = found
        .path
        .parent()
        .map_or_else(|| root.to_path_buf(), Path::to_path_buf);
    Ok(Script {
        program,
        args,
        script_name: url_join(prefix, &found.segments),
        path_info: decoded[found.end..].to_string(),
        dir,
        nph: is_nph(name),
        script_filename: found.path,
    })
}

/// Resolve a `cgi_script` route: one program for the whole prefix.
///
/// SCRIPT_NAME is the prefix without a trailing "/"; PATH_INFO is the decoded `below` with the
/// prefix's trailing "/" in front, or "" when nothing follows a prefix without one.
pub fn resolve_fixed(
    program: &Path,
    prefix: &str,
    below: &str,
    interpreters: &Interpreters,
) -> Result<Script, Refusal> {
    let decoded = percent_decode(below).ok_or(Refusal::NotFound)?;
    // PATH_INFO is mapped onto the filesystem by scripts (PATH_TRANSLATED, RFC 3875 §4.1.6):
    // a decoded dot-dot in it would climb out of whatever folder they map it under.
    refuse_dot_dot(&decoded)?;
    // Made absolute but not canonical: multi-call programs (git's dashed commands) pick
    // their role from argv[0], so the configured name must survive.
    let path = std::path::absolute(program).map_err(|e| io_refusal(&e))?;
    // A missing program is a configuration error caught at start-up; here it is only a 404.
    let meta = fs::metadata(&path).map_err(|e| io_refusal(&e))?;
    if !meta.is_file() {
        return Err(Refusal::NotFound);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (exec, args) = program_for(&path, name, &meta, interpreters)?;
    let nph = is_nph(name);
    let path_info = if prefix.ends_with('/') {
        format!("/{decoded}")
    } else if decoded.is_empty() || decoded.starts_with('/') {
        decoded
    } else {
        format!("/{decoded}")
    };
    Ok(Script {
        program: exec,
        args,
        script_name: prefix.strip_suffix('/').unwrap_or(prefix).to_string(),
        path_info,
        dir: path
            .parent()
            .map_or_else(|| path.clone(), Path::to_path_buf),
        nph,
        script_filename: path,
    })
}

/// The end of a successful walk: the script file and how it was reached.
struct Found<'a> {
    /// Canonical root joined with `segments`: inside the root even through a followed link.
    path: PathBuf,
    /// The URL segments walked, "." and empty ones skipped; the last one names the script.
    segments: Vec<&'a str>,
    /// Byte offset in the decoded path where PATH_INFO starts.
    end: usize,
    /// Metadata of the script file (of the link's target when it is a link).
    meta: Metadata,
}

/// What one step of the walk found.
enum Entry {
    Dir,
    File(Metadata),
}

/// Walk `decoded` from `root` to the first regular file (SPEC §5.1).
fn walk<'a>(root: &Path, decoded: &'a str) -> Result<Found<'a>, Refusal> {
    let mut path = root.to_path_buf();
    let mut segments = Vec::new();
    let mut start = 0;
    for seg in decoded.split('/') {
        let end = start + seg.len();
        start = end + 1;
        if seg.is_empty() || seg == "." {
            continue;
        }
        // Dotfiles (.htaccess, .git) are never scripts nor folders to walk into.
        if seg.starts_with('.') {
            return Err(Refusal::Forbidden);
        }
        path.push(seg);
        segments.push(seg);
        if let Entry::File(meta) = entry(root, &path)? {
            return Ok(Found {
                path,
                segments,
                end,
                meta,
            });
        }
    }
    // SPEC §5.1: the walk ended on a folder → 403.
    Err(Refusal::Forbidden)
}

/// Classify one step of the walk, following a symlink only if it stays inside `root`.
fn entry(root: &Path, path: &Path) -> Result<Entry, Refusal> {
    let mut meta = fs::symlink_metadata(path).map_err(|e| io_refusal(&e))?;
    if meta.file_type().is_symlink() {
        // SPEC §5.1: symlinks leaving the folder → 403. A dangling link is simply missing.
        let target = path.canonicalize().map_err(|e| io_refusal(&e))?;
        if !target.starts_with(root) {
            return Err(Refusal::Forbidden);
        }
        meta = fs::metadata(&target).map_err(|e| io_refusal(&e))?;
    }
    if meta.is_dir() {
        Ok(Entry::Dir)
    } else if meta.is_file() {
        Ok(Entry::File(meta))
    } else {
        // FIFOs, sockets and devices are never programs.
        Err(Refusal::Forbidden)
    }
}

/// Program and arguments for the script at `path` named `name` (SPEC §5.1, §2 interpreters).
fn program_for(
    path: &Path,
    name: &str,
    meta: &Metadata,
    interpreters: &Interpreters,
) -> Result<(PathBuf, Vec<PathBuf>), Refusal> {
    if let Some(interpreter) = interpreter_for(name, interpreters) {
        return Ok((interpreter.to_path_buf(), vec![path.to_path_buf()]));
    }
    // SPEC §5.1: not executable by anyone and no interpreter → 403.
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(Refusal::Forbidden);
    }
    Ok((path.to_path_buf(), Vec::new()))
}

/// The interpreter for `name`'s extension: from its last ".", compared case-sensitively.
fn interpreter_for<'a>(name: &str, interpreters: &'a Interpreters) -> Option<&'a Path> {
    let ext = &name[name.rfind('.')?..];
    interpreters
        .iter()
        .find(|(e, _)| e == ext)
        .map(|(_, program)| program.as_path())
}

/// Reject any ".." segment: after decoding it can only come from an encoded dot-dot.
fn refuse_dot_dot(decoded: &str) -> Result<(), Refusal> {
    if decoded.split('/').any(|s| s == "..") {
        return Err(Refusal::Forbidden);
    }
    Ok(())
}

/// SCRIPT_NAME: `prefix` and the walked segments, one "/" between each (RFC 3875 §4.1.13).
fn url_join(prefix: &str, segments: &[&str]) -> String {
    let mut s = prefix.to_string();
    for seg in segments {
        if !s.ends_with('/') {
            s.push('/');
        }
        s.push_str(seg);
    }
    s
}

/// SPEC §5.5: a script named `nph-*` writes its own status line.
fn is_nph(name: &str) -> bool {
    name.starts_with("nph-")
}

/// Missing (or unreachable as a name) → 404; present but not ours to look at → 403.
fn io_refusal(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::PermissionDenied => Refusal::Forbidden,
        _ => Refusal::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use tempfile::TempDir;

    /// A tempdir holding `cgi/` (the root) and `outside/`, both canonical.
    struct Fixture {
        _tmp: TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let tmp = tempfile::tempdir().unwrap();
            let base = tmp.path().canonicalize().unwrap();
            let root = base.join("cgi");
            let outside = base.join("outside");
            fs::create_dir(&root).unwrap();
            fs::create_dir(&outside).unwrap();
            Fixture {
                _tmp: tmp,
                root,
                outside,
            }
        }

        /// The root as a route holds it.
        fn dir(&self) -> CanonicalDir {
            CanonicalDir::new(&self.root).unwrap()
        }

        /// Create `rel` below the root (parents too) with `mode`.
        fn file(&self, rel: &str, mode: u32) -> PathBuf {
            write_file(&self.root.join(rel), mode)
        }

        fn resolve(&self, below: &str) -> Result<Script, Refusal> {
            crate::fuzz_seeds::save("path_mapping", below.as_bytes());
            resolve_in_dir(&self.dir(), "/cgi-bin/", below, &interpreters())
        }
    }

    fn write_file(path: &Path, mode: u32) -> PathBuf {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "#!/bin/sh\necho\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        path.to_path_buf()
    }

    fn interpreters() -> Vec<(String, PathBuf)> {
        vec![
            (".py".to_string(), PathBuf::from("python3")),
            (".pl".to_string(), PathBuf::from("/usr/bin/perl")),
        ]
    }

    #[test]
    fn plain_script() {
        let f = Fixture::new();
        let path = f.file("hello", 0o755);
        let s = f.resolve("hello").unwrap();
        assert_eq!(
            s,
            Script {
                program: path.clone(),
                args: vec![],
                script_filename: path,
                script_name: "/cgi-bin/hello".to_string(),
                path_info: String::new(),
                dir: f.root.clone(),
                nph: false,
            }
        );
    }

    #[test]
    fn executable_by_anyone_is_enough() {
        let f = Fixture::new();
        f.file("other", 0o601);
        assert!(f.resolve("other").is_ok());
    }

    #[test]
    fn path_info_keeps_its_segments() {
        let f = Fixture::new();
        f.file("hello", 0o755);
        for (below, info) in [
            ("hello/a/b", "/a/b"),
            ("hello/a/", "/a/"),
            ("hello/", "/"),
            ("hello/a//b", "/a//b"),
            ("hello//a", "//a"),
            ("hello/./a", "/./a"),
            ("hello/.well-known/x", "/.well-known/x"),
            ("hello/caf%C3%A9%20x", "/café x"),
        ] {
            let s = f.resolve(below).unwrap();
            assert_eq!(s.path_info, info, "{below}");
            assert_eq!(s.script_name, "/cgi-bin/hello", "{below}");
        }
    }

    #[test]
    fn nested_script() {
        let f = Fixture::new();
        let path = f.file("sub/deep/run", 0o755);
        let s = f.resolve("sub/deep/run/x").unwrap();
        assert_eq!(s.script_filename, path);
        assert_eq!(s.program, path);
        assert_eq!(s.dir, f.root.join("sub/deep"));
        assert_eq!(s.script_name, "/cgi-bin/sub/deep/run");
        assert_eq!(s.path_info, "/x");
    }

    #[test]
    fn empty_and_dot_segments_are_skipped_before_the_script() {
        let f = Fixture::new();
        f.file("sub/run", 0o755);
        let s = f.resolve("./sub//./run/y").unwrap();
        assert_eq!(s.script_name, "/cgi-bin/sub/run");
        assert_eq!(s.path_info, "/y");
        let s = f.resolve("/sub/run").unwrap();
        assert_eq!(s.script_name, "/cgi-bin/sub/run");
    }

    #[test]
    fn prefix_without_trailing_slash() {
        let f = Fixture::new();
        f.file("sub/run", 0o755);
        let s = resolve_in_dir(&f.dir(), "/cgi", "/sub/run/z", &interpreters()).unwrap();
        assert_eq!(s.script_name, "/cgi/sub/run");
        assert_eq!(s.path_info, "/z");
    }

    #[test]
    fn encoded_names_are_decoded_once() {
        let f = Fixture::new();
        let path = f.file("my script%41", 0o755);
        let s = f.resolve("my%20script%2541").unwrap();
        assert_eq!(s.script_filename, path);
        assert_eq!(s.script_name, "/cgi-bin/my script%41");
    }

    #[test]
    fn interpreter_by_extension() {
        let f = Fixture::new();
        let path = f.file("app.py", 0o644);
        let s = f.resolve("app.py/info").unwrap();
        assert_eq!(s.program, PathBuf::from("python3"));
        assert_eq!(s.args, vec![path.clone()]);
        assert_eq!(s.script_filename, path);
        assert_eq!(s.path_info, "/info");
        // The extension is from the last ".", even when the file is executable.
        let path = f.file("tool.tar.pl", 0o755);
        let s = f.resolve("tool.tar.pl").unwrap();
        assert_eq!(s.program, PathBuf::from("/usr/bin/perl"));
        assert_eq!(s.args, vec![path]);
    }

    #[test]
    fn extension_is_case_sensitive() {
        let f = Fixture::new();
        f.file("APP.PY", 0o644);
        assert_eq!(f.resolve("APP.PY"), Err(Refusal::Forbidden));
    }

    #[test]
    fn not_executable_without_interpreter_is_forbidden() {
        let f = Fixture::new();
        f.file("plain.txt", 0o644);
        f.file("noext", 0o600);
        assert_eq!(f.resolve("plain.txt"), Err(Refusal::Forbidden));
        assert_eq!(f.resolve("noext/x"), Err(Refusal::Forbidden));
    }

    #[test]
    fn directories_are_forbidden() {
        let f = Fixture::new();
        f.file("sub/run", 0o755);
        for below in ["", "/", "sub", "sub/", "./sub/."] {
            assert_eq!(f.resolve(below), Err(Refusal::Forbidden), "{below:?}");
        }
    }

    #[test]
    fn missing_is_not_found() {
        let f = Fixture::new();
        f.file("sub/run", 0o755);
        for below in ["nope", "sub/nope", "nope/x/y"] {
            assert_eq!(f.resolve(below), Err(Refusal::NotFound), "{below}");
        }
        // The folder removed after the route was built.
        let gone = f.root.join("gone");
        write_file(&gone.join("run"), 0o755);
        let dir = CanonicalDir::new(&gone).unwrap();
        fs::remove_dir_all(&gone).unwrap();
        assert_eq!(
            resolve_in_dir(&dir, "/cgi-bin/", "run", &interpreters()),
            Err(Refusal::NotFound)
        );
        assert!(CanonicalDir::new(&gone).is_err());
        assert!(
            CanonicalDir::new(&f.file("plain", 0o644)).is_err(),
            "a file is no folder"
        );
    }

    #[test]
    fn encoded_slash_backslash_and_nul_are_not_found() {
        let f = Fixture::new();
        f.file("sub/run", 0o755);
        for below in [
            "sub%2Frun",
            "sub%2frun",
            "sub%5Crun",
            "sub/run%00",
            "%00",
            "r%zzun",
        ] {
            assert_eq!(f.resolve(below), Err(Refusal::NotFound), "{below}");
        }
    }

    #[test]
    fn dot_dot_is_forbidden() {
        let f = Fixture::new();
        f.file("hello", 0o755);
        write_file(&f.outside.join("evil"), 0o755);
        for below in [
            "%2e%2e/outside/evil",
            "%2E%2E/outside/evil",
            ".%2e/outside/evil",
            "../outside/evil",
            "hello/..",
            "hello/%2e%2e/x",
        ] {
            assert_eq!(f.resolve(below), Err(Refusal::Forbidden), "{below}");
        }
    }

    #[test]
    fn symlink_to_a_script_inside_is_allowed() {
        let f = Fixture::new();
        f.file("sub/real", 0o755);
        symlink(f.root.join("sub/real"), f.root.join("alias")).unwrap();
        symlink("sub", f.root.join("subalias")).unwrap();
        let s = f.resolve("alias/x").unwrap();
        // The link's own name is kept: argv[0] and SCRIPT_FILENAME as the URL named it.
        assert_eq!(s.script_filename, f.root.join("alias"));
        assert_eq!(s.program, f.root.join("alias"));
        assert_eq!(s.script_name, "/cgi-bin/alias");
        assert_eq!(s.path_info, "/x");
        let s = f.resolve("subalias/real").unwrap();
        assert_eq!(s.script_filename, f.root.join("subalias/real"));
        assert_eq!(s.dir, f.root.join("subalias"));
    }

    #[test]
    fn symlinks_leaving_the_folder_are_forbidden() {
        let f = Fixture::new();
        let evil = write_file(&f.outside.join("evil"), 0o755);
        symlink(&evil, f.root.join("link")).unwrap();
        symlink("../outside", f.root.join("out")).unwrap();
        symlink("/", f.root.join("slash")).unwrap();
        for below in ["link", "link/x", "out/evil", "out", "slash/bin/sh"] {
            assert_eq!(f.resolve(below), Err(Refusal::Forbidden), "{below}");
        }
    }

    #[test]
    fn dangling_symlink_is_not_found() {
        let f = Fixture::new();
        symlink("nowhere", f.root.join("dangling")).unwrap();
        assert_eq!(f.resolve("dangling"), Err(Refusal::NotFound));
    }

    #[test]
    fn root_given_through_a_symlink() {
        let f = Fixture::new();
        let path = f.file("hello", 0o755);
        let alias = f.outside.join("cgi-alias");
        symlink(&f.root, &alias).unwrap();
        let s = resolve_in_dir(
            &CanonicalDir::new(&alias).unwrap(),
            "/cgi-bin/",
            "hello",
            &interpreters(),
        )
        .unwrap();
        assert_eq!(s.script_filename, path);
    }

    #[test]
    fn dotfiles_are_forbidden() {
        let f = Fixture::new();
        f.file(".htaccess", 0o755);
        f.file(".git/hooks/run", 0o755);
        f.file("sub/.hidden", 0o755);
        for below in [".htaccess", ".git/hooks/run", "sub/.hidden", ".nothere"] {
            assert_eq!(f.resolve(below), Err(Refusal::Forbidden), "{below}");
        }
    }

    #[test]
    fn fifo_is_forbidden() {
        let f = Fixture::new();
        let made = std::process::Command::new("mkfifo")
            .arg(f.root.join("pipe"))
            .status();
        if !matches!(made, Ok(s) if s.success()) {
            eprintln!("mkfifo unavailable: skipping");
            return;
        }
        assert_eq!(f.resolve("pipe"), Err(Refusal::Forbidden));
    }

    #[test]
    fn nph_is_detected_by_file_name() {
        let f = Fixture::new();
        f.file("nph-stream", 0o755);
        f.file("sub/nph-x.py", 0o644);
        f.file("nphx", 0o755);
        assert!(f.resolve("nph-stream/a").unwrap().nph);
        assert!(f.resolve("sub/nph-x.py").unwrap().nph);
        assert!(!f.resolve("nphx").unwrap().nph);
    }

    #[test]
    fn refusal_status() {
        assert_eq!(Refusal::NotFound.status(), 404);
        assert_eq!(Refusal::Forbidden.status(), 403);
        assert_eq!(Refusal::NotFound.as_str(), "Not Found");
        assert_eq!(Refusal::Forbidden.as_str(), "Forbidden");
    }

    #[test]
    fn fixed_git_example() {
        let f = Fixture::new();
        let program = write_file(&f.outside.join("git-http-backend"), 0o755);
        let s = resolve_fixed(&program, "/git/", "repo.git/info/refs", &interpreters()).unwrap();
        assert_eq!(
            s,
            Script {
                program: program.clone(),
                args: vec![],
                script_filename: program,
                script_name: "/git".to_string(),
                path_info: "/repo.git/info/refs".to_string(),
                dir: f.outside.clone(),
                nph: false,
            }
        );
    }

    #[test]
    fn fixed_path_info_forms() {
        let f = Fixture::new();
        let program = write_file(&f.outside.join("app"), 0o755);
        let i = interpreters();
        let info = |prefix: &str, below: &str| {
            resolve_fixed(&program, prefix, below, &i).map(|s| (s.script_name, s.path_info))
        };
        let pair = |a: &str, b: &str| Ok((a.to_string(), b.to_string()));
        assert_eq!(info("/git/", ""), pair("/git", "/"));
        assert_eq!(info("/git", ""), pair("/git", ""));
        assert_eq!(info("/git", "/a%20b"), pair("/git", "/a b"));
        assert_eq!(info("/git/", "/x"), pair("/git", "//x"));
        assert_eq!(info("/", "x/"), pair("", "/x/"));
        assert_eq!(info("/git/", "a%2Fb"), Err(Refusal::NotFound));
        assert_eq!(info("/git/", "a/%2e%2e/b"), Err(Refusal::Forbidden));
    }

    #[test]
    fn fixed_program_checks() {
        let f = Fixture::new();
        let i = interpreters();
        let missing = f.outside.join("missing");
        assert_eq!(
            resolve_fixed(&missing, "/x/", "", &i),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            resolve_fixed(&f.outside, "/x/", "", &i),
            Err(Refusal::NotFound)
        );
        let plain = write_file(&f.outside.join("plain"), 0o644);
        assert_eq!(
            resolve_fixed(&plain, "/x/", "", &i),
            Err(Refusal::Forbidden)
        );
        let py = write_file(&f.outside.join("nph-app.py"), 0o644);
        let s = resolve_fixed(&py, "/x/", "", &i).unwrap();
        assert_eq!(s.program, PathBuf::from("python3"));
        assert_eq!(s.args, vec![py]);
        assert!(s.nph);
    }

    #[test]
    fn fixed_keeps_the_configured_name() {
        let f = Fixture::new();
        let real = write_file(&f.outside.join("git"), 0o755);
        let link = f.outside.join("git-http-backend");
        symlink(&real, &link).unwrap();
        let s = resolve_fixed(&link, "/git/", "", &interpreters()).unwrap();
        assert_eq!(s.program, link);
    }
}
