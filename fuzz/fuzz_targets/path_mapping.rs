//! URL path → script: `cgi::script::resolve_in_dir`, `http::path::percent_decode` and
//! `router::normalize_path` on arbitrary paths, against a small fixed tree built once.
//!
//! No path ever resolves to a script outside the canonical root, nor through the links that
//! point outside; whatever resolves is a file inside the root. The input is the path below the
//! route prefix (lossy UTF-8), tried as is and as the router hands it over after normalizing.
#![no_main]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cgigate::parsers::cgi_script::{self as script, Refusal, Script};
use cgigate::parsers::{normalize_path, percent_decode_path};
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "/cgi-bin/";

/// The tree, in a temporary folder kept for the life of the process:
///
/// ```text
/// base/cgi/            the root
///   hello, nph-run     executable scripts
///   app.py             not executable, run by an interpreter
///   plain.txt          not executable, no interpreter
///   .hidden            an executable dotfile
///   sub/run, sub/deep/x
///   sub/up -> ..       a link to a folder inside (the root itself)
///   alias -> sub/run   a link to a script inside
///   subalias -> sub    a link to a folder inside
///   evil -> ../outside/evil, abs -> base/outside/evil   links to a script outside
///   out -> ../outside, slash -> /                       links to folders outside
///   dangling -> nowhere, loop -> loop
/// base/outside/evil, base/outside/sub/run               executable, never to be run
/// ```
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    /// `root` as a route holds it.
    dir: script::CanonicalDir,
    outside: PathBuf,
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp folder");
        let base = tmp.path().canonicalize().expect("canonical temp folder");
        let (root, outside) = (base.join("cgi"), base.join("outside"));
        for (rel, mode) in [
            ("cgi/hello", 0o755),
            ("cgi/nph-run", 0o755),
            ("cgi/app.py", 0o644),
            ("cgi/plain.txt", 0o644),
            ("cgi/.hidden", 0o755),
            ("cgi/sub/run", 0o755),
            ("cgi/sub/deep/x", 0o755),
            ("outside/evil", 0o755),
            ("outside/sub/run", 0o755),
        ] {
            let path = base.join(rel);
            fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            fs::write(&path, "#!/bin/sh\necho\n").expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let abs = outside.join("evil");
        for (target, link) in [
            (Path::new(".."), "sub/up"),
            (Path::new("sub/run"), "alias"),
            (Path::new("sub"), "subalias"),
            (Path::new("../outside/evil"), "evil"),
            (abs.as_path(), "abs"),
            (Path::new("../outside"), "out"),
            (Path::new("/"), "slash"),
            (Path::new("nowhere"), "dangling"),
            (Path::new("loop"), "loop"),
        ] {
            symlink(target, root.join(link)).expect("symlink");
        }
        Tree {
            _tmp: tmp,
            dir: script::CanonicalDir::new(&root).expect("canonical root"),
            root,
            outside,
        }
    })
}

fn interpreters() -> Vec<(String, PathBuf)> {
    vec![(".py".to_string(), PathBuf::from("python3"))]
}

fuzz_target!(|input: &[u8]| {
    let below = String::from_utf8_lossy(input);
    check_decode(&below);
    check_normalize(&format!("/{below}"));
    let tree = tree();
    let interpreters = interpreters();
    check_resolved(
        tree,
        &below,
        script::resolve_in_dir(&tree.dir, PREFIX, &below, &interpreters),
    );
    // As the router hands it over: normalized, then the part below the prefix.
    let routed = normalize_path(&format!("{PREFIX}{below}"));
    if let Some(rest) = routed.strip_prefix(PREFIX) {
        let result = script::resolve_in_dir(&tree.dir, PREFIX, rest, &interpreters);
        check_resolved(tree, rest, result);
    }
});

fn check_decode(s: &str) {
    let Some(decoded) = percent_decode_path(s) else {
        return;
    };
    assert!(!decoded.contains('\0'));
    // No "/" nor "\" comes from an escape: each one was there literally.
    for c in ['/', '\\'] {
        assert_eq!(
            decoded.matches(c).count(),
            s.matches(c).count(),
            "{c:?} in {s:?}"
        );
    }
    assert!(decoded.len() <= s.len());
}

fn check_normalize(raw: &str) {
    let path = normalize_path(raw);
    assert!(path.starts_with('/'), "{raw:?} → {path:?}");
    assert!(
        !path.split('/').any(|seg| seg == "." || seg == ".."),
        "{raw:?} → {path:?} keeps a dot-segment"
    );
    // For a target the head parser accepts (visible ASCII, '%' only in "%" HEXDIG HEXDIG),
    // a second pass changes nothing.
    if is_valid_target(raw) {
        assert_eq!(normalize_path(&path), path, "not idempotent for {raw:?}");
    }
}

fn is_valid_target(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        (0x21..=0x7e).contains(&c)
            && c != b'#'
            && (c != b'%'
                || b.get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
    })
}

fn check_resolved(tree: &Tree, below: &str, result: Result<Script, Refusal>) {
    let Ok(s) = result else {
        return;
    };
    let canonical = s
        .script_filename
        .canonicalize()
        .expect("a resolved script exists");
    assert!(
        canonical.starts_with(&tree.root) && s.script_filename.starts_with(&tree.root),
        "{below:?} resolved outside the root: {:?} ({canonical:?})",
        s.script_filename
    );
    assert!(
        !canonical.starts_with(&tree.outside),
        "{below:?} reached {canonical:?}"
    );
    let meta = fs::metadata(&canonical).expect("metadata");
    assert!(meta.is_file(), "{below:?} resolved to a non-file");
    let name = s
        .script_filename
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    assert!(!name.starts_with('.'), "{below:?} ran a dotfile");
    if s.args.is_empty() {
        assert_eq!(s.program, s.script_filename);
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{below:?}: not executable"
        );
    } else {
        assert_eq!(s.args, std::slice::from_ref(&s.script_filename));
        assert!(name.ends_with(".py"));
    }
    assert!(s.dir.starts_with(&tree.root) && s.script_filename.starts_with(&s.dir));
    assert!(s.path_info.is_empty() || s.path_info.starts_with('/'));
    assert!(s.script_name.starts_with(PREFIX) && !s.script_name.contains('\0'));
    assert!(!s.path_info.contains('\0'));
    assert!(!s
        .script_name
        .split('/')
        .chain(s.path_info.split('/'))
        .any(|seg| seg == ".."));
    assert_eq!(s.nph, name.starts_with("nph-"));
}
