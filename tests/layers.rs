//! The module graph of `src/`, read from the source: no import cycles (parent and child
//! modules included), `http/` imports nothing above it, and no function in `src/http/` is
//! longer than [`MAX_HTTP_FN_LINES`]. A tool, so the layering is not checked by eye.
//!
//! Edges come from `use` declarations (nested trees, `self`, `super`, `crate`, relative
//! paths to child modules) and from paths in code (`crate::a::b`, `super::x`, `child::f`).
//! Each path is attributed to the deepest module file it names. Code under `#[cfg(test)]`
//! is left out: tests may reach anywhere. Run
//! `cargo test --test integration layers -- --nocapture` to see the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest function allowed in `src/http/`, in lines (signature to closing brace).
const MAX_HTTP_FN_LINES: usize = 80;

/// One module file: its path from the crate root (`""` for lib.rs) and its code with
/// comments, literals and test-only items removed.
struct Module {
    name: String,
    code: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file under `src/` but the binary's `main.rs`.
fn modules() -> Vec<Module> {
    let mut files = Vec::new();
    collect(&src_dir(), &mut files);
    let test_only = test_only_files(&files);
    files
        .into_iter()
        .filter(|f| !test_only.contains(f))
        .filter_map(|file| {
            let name = module_name(&file)?;
            let text = std::fs::read_to_string(&file).expect("read source");
            let code = without_test_items(&strip(&text));
            Some(Module { name, code })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `a::b`; `src/lib.rs` → `""`; `main.rs` → none.
fn module_name(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src_dir()).ok()?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" if parts.is_empty() => Some(String::new()),
        "main.rs" if parts.is_empty() => None,
        "mod.rs" => Some(parts.join("::")),
        _ => {
            parts.push(last.trim_end_matches(".rs").to_string());
            Some(parts.join("::"))
        }
    }
}

/// Files declared as `#[cfg(test)] mod x;`.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for file in files {
        let code = strip(&std::fs::read_to_string(file).expect("read source"));
        let mut rest = code.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let item = rest.trim_start();
            if let Some(decl) = item.strip_prefix("mod ") {
                if let Some(name) = decl.split(';').next().filter(|n| !n.contains('{')) {
                    let dir = if file.ends_with("mod.rs") || file.ends_with("lib.rs") {
                        file.parent().map(Path::to_path_buf)
                    } else {
                        Some(file.with_extension(""))
                    };
                    if let Some(dir) = dir {
                        out.insert(dir.join(format!("{}.rs", name.trim())));
                        out.insert(dir.join(name.trim()).join("mod.rs"));
                    }
                }
            }
        }
    }
    out
}

/// The source without comments and with string and char literals emptied, so that only
/// code is left to search.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += block_comment_len(rest);
        } else if let Some(len) = raw_string_len(rest) {
            out.push_str("\"\"");
            i += len;
        } else if b[i] == b'"' {
            out.push_str("\"\"");
            i += string_len(rest);
        } else if let Some(len) = char_literal_len(rest) {
            out.push_str("' '");
            i += len;
        } else {
            let c = rest.chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn block_comment_len(s: &str) -> usize {
    let mut depth = 0;
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if s[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += s[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    s.len()
}

/// `r"…"`, `r#"…"#`, `br"…"` at the start of `s` (not preceded by an identifier char,
/// which the caller's position guarantees well enough for our own sources).
fn raw_string_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("br").or_else(|| s.strip_prefix('r'))?;
    let hashes = body.bytes().take_while(|&c| c == b'#').count();
    if body.as_bytes().get(hashes) != Some(&b'"') {
        return None;
    }
    let close = format!("\"{}", "#".repeat(hashes));
    let start = s.len() - body.len() + hashes + 1;
    let end = s[start..].find(&close)?;
    Some(start + end + close.len())
}

fn string_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// A char literal (`'a'`, `'\n'`, `'\u{1F600}'`) at the start of `s`; `None` for a lifetime.
fn char_literal_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('\'')?;
    if let Some(esc) = rest.strip_prefix('\\') {
        let end = esc.find('\'')?;
        return Some(2 + end + 1);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..]
        .starts_with('\'')
        .then(|| 1 + c.len_utf8() + 1)
}

/// The code without items marked `#[cfg(test)]` (test modules, test-only functions).
fn without_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        rest = skip_item(&rest[at + "#[cfg(test)]".len()..]);
    }
    out.push_str(rest);
    out
}

/// What follows the item at the start of `s` (after its attributes): up to its `;` or
/// the end of its first balanced `{ … }`, whichever comes first.
fn skip_item(s: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            ';' if depth == 0 => return &s[i + 1..],
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &s[i + 1..];
                }
            }
            _ => {}
        }
    }
    ""
}

/// The child modules a file declares (`mod x;`, `pub(crate) mod x;`).
fn child_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("mod ") {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = code[i + 4..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// Every path a `use` declaration names, as written (`a::b::c`), trees expanded.
fn use_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("use ") {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = code[i..].find(';') else {
            continue;
        };
        expand("", &tidy(&code[i + 4..i + end]), &mut out);
    }
    out
}

/// A use tree with whitespace only where it matters: `a :: { b as c }` → `a::{b as c}`.
fn tidy(tree: &str) -> String {
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut out = words.join(" ");
    for punct in ["::", "{", "}", ",", "*"] {
        out = out
            .replace(&format!(" {punct}"), punct)
            .replace(&format!("{punct} "), punct);
    }
    out
}

/// Expands a use tree (`a::{b,c::{d}}`) under `prefix`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim_start_matches("::");
    let join = |p: &str, s: &str| {
        if p.is_empty() {
            s.to_string()
        } else {
            format!("{p}::{s}")
        }
    };
    match tree.find('{') {
        Some(open) if tree.ends_with('}') => {
            let head = tree[..open].trim_end_matches("::");
            let base = join(prefix, head);
            for part in split_top(&tree[open + 1..tree.len() - 1]) {
                match part {
                    "" => {}
                    "self" => out.push(base.clone()),
                    p => expand(&base, p, out),
                }
            }
        }
        _ => {
            let path = tree.split(" as ").next().unwrap_or(tree);
            let path = path.trim_end_matches("::*").trim_end_matches("::self");
            if !path.is_empty() && path != "*" {
                out.push(join(prefix, path));
            }
        }
    }
}

/// Splits at commas not inside braces.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Paths in code that start at `crate`, `super` or a child module: `crate::a::b`.
fn code_paths(code: &str, children: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts_word = c.is_ascii_alphabetic() || c == b'_';
        let after_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let after_path = i >= 2 && &code[i - 2..i] == "::";
        if !starts_word || after_word || after_path {
            i += 1;
            continue;
        }
        let len = code[i..]
            .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == ':'))
            .unwrap_or(code.len() - i);
        let path = code[i..i + len].trim_end_matches(':');
        let first = path.split("::").next().unwrap_or("");
        if path.contains("::") && (first == "crate" || first == "super" || children.contains(first))
        {
            out.push(path.to_string());
        }
        i += len.max(1);
    }
    out
}

/// The module a path written in `module` names: the deepest prefix of the path that is
/// one of our module files (the crate root when only that is left).
fn resolve(module: &str, path: &str, known: &BTreeSet<String>) -> String {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut full: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    match segs.first().copied() {
        Some("crate") => {
            full.clear();
            segs.remove(0);
        }
        Some("super") => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                full.pop();
            }
        }
        Some("self") => {
            segs.remove(0);
        }
        // A relative path starting at a child module of this one.
        _ => {}
    }
    full.extend(segs);
    while !full.is_empty() {
        let name = full.join("::");
        if known.contains(&name) {
            return name;
        }
        full.pop();
    }
    String::new()
}

/// The module graph: module → the modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let known: BTreeSet<String> = mods.iter().map(|m| m.name.clone()).collect();
    let mut graph = BTreeMap::new();
    for m in &mods {
        let children = child_modules(&m.code);
        let mut uses = BTreeSet::new();
        let mut paths = use_paths(&m.code);
        paths.extend(code_paths(&m.code, &children));
        for path in paths {
            let first = path.split("::").next().unwrap_or("");
            let ours = matches!(first, "crate" | "super" | "self") || children.contains(first);
            if !ours {
                continue;
            }
            let target = resolve(&m.name, &path, &known);
            if target != m.name {
                uses.insert(target);
            }
        }
        graph.insert(m.name.clone(), uses);
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.found.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn show(name: &str) -> &str {
    if name.is_empty() {
        "crate"
    } else {
        name
    }
}

#[test]
fn the_module_graph_has_no_cycles() {
    let graph = graph();
    assert!(
        graph.len() > 30,
        "the source was read: {} modules",
        graph.len()
    );
    println!("module graph ({} modules):", graph.len());
    for (module, uses) in &graph {
        let uses: Vec<&str> = uses.iter().map(|u| show(u)).collect();
        println!("  {} -> {}", show(module), uses.join(", "));
    }
    let found = cycles(&graph);
    let described: Vec<String> = found
        .iter()
        .map(|comp| {
            let edges: Vec<String> = comp
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| comp.contains(b))
                        .map(move |b| format!("{} -> {}", show(a), show(b)))
                })
                .collect();
            edges.join(", ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles:\n{}", described.join("\n"));
}

#[test]
fn http_imports_nothing_above_it() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (module, uses) in &graph {
        if module != "http" && !module.starts_with("http::") {
            continue;
        }
        for target in uses {
            if target != "http" && !target.starts_with("http::") {
                wrong.push(format!("{module} -> {}", show(target)));
            }
        }
    }
    assert!(wrong.is_empty(), "http/ imports from above it: {wrong:?}");
}

#[test]
fn no_function_in_http_is_long() {
    let mut long = Vec::new();
    for m in modules().iter().filter(|m| m.name.starts_with("http")) {
        for (name, lines) in function_lengths(&m.code) {
            if lines > MAX_HTTP_FN_LINES {
                long.push(format!("{}::{name}: {lines} lines", m.name));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_HTTP_FN_LINES} lines: {long:?}"
    );
}

/// Each `fn`'s name and its length in lines, from `fn` to its closing brace.
fn function_lengths(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("fn ") {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = code[i + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = code[i..].find(['{', ';']) else {
            continue;
        };
        if code[i + open..].starts_with(';') {
            continue; // a declaration without a body
        }
        let body = &code[i + open..];
        let rest = skip_item(body);
        let end = code.len() - rest.len();
        let lines = code[i..end].lines().count();
        out.push((name, lines));
    }
    out
}

#[test]
fn the_reader_sees_what_it_should() {
    let code = strip("let s = \"use crate::x;\"; // crate::y\n/* crate::z */ let c = '{';");
    assert!(!code.contains("crate::"), "{code}");
    assert!(!code.contains('{'), "{code}");
    let mut out = Vec::new();
    expand(
        "",
        &tidy("crate::a::{b, c::{self, d as e},\n f::*}"),
        &mut out,
    );
    assert_eq!(
        out,
        [
            "crate::a::b",
            "crate::a::c",
            "crate::a::c::d",
            "crate::a::f"
        ]
    );
    let kept = without_test_items("a();\n#[cfg(test)]\nmod tests { use crate::x; }\nb();");
    assert!(
        !kept.contains("crate::x") && kept.contains("b();"),
        "{kept}"
    );
    let children: BTreeSet<String> = ["output".to_string()].into();
    let paths = code_paths(
        "output::pump(x); crate::a::b(); std::mem::take(y)",
        &children,
    );
    assert_eq!(paths, ["output::pump", "crate::a::b"]);
}
