//! `handler = "welcome"`: the landing page the shipped config serves at `/`. It says what the
//! running config serves (a table of its routes, with links to try them) and shows the
//! difference between the output modes live: the browser fetches one CGI script through a
//! buffered, a streamed and an auto route at once and draws each response as a lane on one
//! time axis as its bytes arrive (docs/landing.md).
//!
//! The page is rendered once, when the routes are built (so a reload shows the new ones),
//! from `page.html` with its CSS and JavaScript inline: one response, nothing fetched from
//! anywhere else, no build step. Every other path below the route's prefix gets the same
//! plain 404 as the router's, so a welcome route at `/` changes nothing for the paths no
//! route serves.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::handler::{BoxFuture, Handler, HandlerError, Request, SERVER_SOFTWARE};
use crate::http::status;
use crate::response::Response;

const PAGE: &str = include_str!("welcome/page.html");
const STYLE: &str = include_str!("welcome/page.css");
const SCRIPT: &str = include_str!("welcome/page.js");

/// The script the comparison fetches, looked for in each `cgi_dir` route's folder.
const COMPARED_SCRIPT: &str = "ticker";

/// Most scripts of one `cgi_dir` folder linked from the table.
const MAX_LISTED_SCRIPTS: usize = 24;

/// One route, as the landing page shows it. Built by `routes` from the config (the handlers
/// cannot read the config's types: the config reads the names of the built-ins).
pub(crate) struct Listing {
    /// The route's prefix.
    pub(crate) prefix: String,
    /// The config key that chose the handler (`handler`, `cgi_dir`…), or `mounted` for a
    /// handler an embedding program mounted in code.
    pub(crate) kind: &'static str,
    /// Its value: the built-in's name, or the path relative to the config's folder.
    pub(crate) target: String,
    /// The route's output mode (`buffer`, `stream`, `auto`); `None` for static files, which
    /// always go out with their length.
    pub(crate) output: Option<&'static str>,
    /// Auto mode's silence before held output is flushed.
    pub(crate) flush_after: Duration,
    /// A `cgi_dir` route's folder: its scripts are linked, and the comparison looks there.
    pub(crate) cgi_dir: Option<PathBuf>,
}

/// The landing page.
pub(crate) struct Welcome {
    page: Bytes,
}

impl Welcome {
    /// The page for these routes (reads each `cgi_dir` folder once, for its scripts).
    pub(crate) fn new(routes: &[Listing]) -> Welcome {
        let page = fill(
            PAGE,
            &[
                ("style", STYLE),
                ("script", SCRIPT),
                ("version", &escape(SERVER_SOFTWARE)),
                ("lanes", &lanes(routes)),
                ("routes", &table(routes)),
            ],
        );
        Welcome {
            page: Bytes::from(page),
        }
    }
}

/// `template` with each `{{name}}` replaced by its value, in one pass over the template, so
/// that a value (a route's prefix) is never read as a placeholder.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let found = after.find("}}").and_then(|end| {
            let value = values.iter().find(|(name, _)| *name == &after[..end])?.1;
            Some((end, value))
        });
        match found {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The paths below its prefix the landing page answers.
pub(crate) const WELCOME_PATHS: &[&str] = &["", "index.html"];

impl Handler for Welcome {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            // The router sends only these (routes.rs); a local redirect could still ask.
            let below = req.path_below_prefix().trim_start_matches('/');
            if !WELCOME_PATHS.contains(&below) {
                return res.plain(status::NOT_FOUND, "Not Found").await;
            }
            if !super::read_only::is_get_or_head(req) {
                return super::read_only::get_or_head_only(res).await;
            }
            res.set_header("Content-Type", "text/html; charset=utf-8");
            // The table is the running config's: a reload may change it.
            res.set_header("Cache-Control", "no-store");
            // Nothing but this server: the page's own inline code, and fetches of its routes.
            res.set_header(
                "Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'",
            );
            // Cross-origin isolation gives the page a 5 µs clock instead of 100 µs (Chromium),
            // for the arrival times and for telling a new connection from a reused one.
            res.set_header("Cross-Origin-Opener-Policy", "same-origin");
            res.set_header("Cross-Origin-Embedder-Policy", "require-corp");
            res.sized(self.page.len() as u64);
            if req.head.is_head() {
                return Ok(());
            }
            res.write(self.page.clone()).await
        })
    }
}

/// The three lanes of the comparison, buffer, stream and auto: the first `cgi_dir` route in
/// each mode whose folder has the compared script.
fn lanes(routes: &[Listing]) -> String {
    let mut out = String::new();
    for (mode, name) in [
        ("buffer", "buffered"),
        ("stream", "streamed"),
        ("auto", "auto"),
    ] {
        let found = routes.iter().find(|r| {
            r.output == Some(mode)
                && r.cgi_dir
                    .as_deref()
                    .is_some_and(|dir| is_script(&dir.join(COMPARED_SCRIPT)))
        });
        let Some(route) = found else {
            let _ = write!(
                out,
                r#"<section class="lane missing" data-mode="{mode}"><h3><span class="name">{name}</span></h3><p class="why">No <code>cgi_dir</code> route with <code>output = "{mode}"</code> has a <code>{COMPARED_SCRIPT}</code> script, so this lane is not drawn.</p></section>"#
            );
            continue;
        };
        let url = escape(&below(&route.prefix, COMPARED_SCRIPT));
        let why = match mode {
            "buffer" => "held until the script ends, then sent whole".to_string(),
            "stream" => "each write sent at once, as a chunk".to_string(),
            _ => format!(
                "held, but flushed once the script is silent for {} ms; then streamed",
                route.flush_after.as_millis()
            ),
        };
        let _ = write!(
            out,
            r#"<section class="lane" data-mode="{mode}" data-url="{url}" data-state="idle">
<h3><span class="name">{name}</span> <a href="{url}"><code>{url}</code></a> <span class="why">output = "{mode}": {why}</span></h3>
<div class="track" aria-hidden="true"><div class="grid"></div><div class="bar wait"></div><div class="bar recv"></div><div class="now"></div></div>
<pre class="text" aria-label="what arrived, and when"></pre>
<dl class="stats"><div><dt>framing</dt><dd data-stat="framing">…</dd></div><div><dt>first byte</dt><dd data-stat="first">…</dd></div><div><dt>total</dt><dd data-stat="total">…</dd></div><div><dt>connection</dt><dd data-stat="conn">…</dd></div></dl>
</section>
"#
        );
    }
    out
}

/// The table of routes, in config order, each with links to try it.
fn table(routes: &[Listing]) -> String {
    let mut out = String::new();
    for route in routes {
        let output = match route.output {
            Some(mode) => format!("<code>{mode}</code>"),
            None => "a file's length".to_string(),
        };
        let served_by = if route.target.is_empty() {
            route.kind.to_string()
        } else {
            format!("{} {}", route.kind, route.target)
        };
        let about = about(route.kind, &route.target);
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code> <span class=\"about\">{about}</span></td><td>{output}</td><td>{}</td></tr>",
            escape(&route.prefix),
            escape(&served_by),
            links(route),
        );
    }
    out
}

/// What a kind of route, or a built-in, does (HTML); nothing for names it does not know.
fn about(kind: &str, target: &str) -> &'static str {
    match (kind, target) {
        ("handler", "status") => "the server's counters (<code>?format=json</code> too)",
        ("handler", "echo") => "your request, described back",
        ("handler", "ticker") => "<code>tick N</code> lines from inside the server",
        ("handler", "hello") => "a fixed <code>hello</code>",
        ("handler", "welcome") => "this page",
        ("cgi_dir", _) => "every executable in the folder is a CGI script",
        ("cgi_script", _) => "one CGI program for every path below",
        ("static_dir", _) => "the folder's files",
        ("plugin", _) => "a native plugin",
        ("mounted", _) => "a handler mounted in code",
        _ => "",
    }
}

/// Links to try a route: each script of a `cgi_dir` folder, else the prefix itself.
fn links(route: &Listing) -> String {
    if route.kind == "handler" && route.target == "welcome" {
        return "this page".to_string();
    }
    let Some(dir) = &route.cgi_dir else {
        let href = escape(&route.prefix);
        return format!(r#"<a href="{href}">{href}</a>"#);
    };
    let names = scripts(dir);
    if names.is_empty() {
        return "no scripts yet".to_string();
    }
    let mut out = String::new();
    for name in names {
        let href = escape(&below(&route.prefix, &percent_encode(&name)));
        let _ = write!(out, r#"<a href="{href}">{}</a> "#, escape(&name));
    }
    out.trim_end().to_string()
}

/// The executable files directly in `dir` (what a `cgi_dir` route runs), sorted, at most
/// [`MAX_LISTED_SCRIPTS`]; dotfiles are never run, so never listed.
fn scripts(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| is_script(&e.path()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    names.truncate(MAX_LISTED_SCRIPTS);
    names
}

fn is_script(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` below a route's prefix, which may or may not end with a slash.
fn below(prefix: &str, name: &str) -> String {
    if prefix.ends_with('/') {
        format!("{prefix}{name}")
    } else {
        format!("{prefix}/{name}")
    }
}

/// A file name as one path segment: everything but RFC 3986 §2.3's unreserved characters
/// percent-encoded.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Text for HTML content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(
        prefix: &str,
        kind: &'static str,
        target: &str,
        output: Option<&'static str>,
    ) -> Listing {
        Listing {
            prefix: prefix.to_string(),
            kind,
            target: target.to_string(),
            output,
            flush_after: Duration::from_millis(50),
            cgi_dir: None,
        }
    }

    fn cgi(prefix: &str, dir: &Path, output: &'static str) -> Listing {
        Listing {
            cgi_dir: Some(dir.to_path_buf()),
            ..listing(prefix, "cgi_dir", "cgi-bin", Some(output))
        }
    }

    fn page(routes: &[Listing]) -> String {
        String::from_utf8(Welcome::new(routes).page.to_vec()).unwrap()
    }

    fn folder_with(scripts: &[(&str, u32)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, mode) in scripts {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    #[test]
    fn every_route_is_a_row_with_its_values_escaped() {
        let text = page(&[
            listing("/status", "handler", "status", Some("auto")),
            listing("/a\"<b>", "static_dir", "<files>", None),
        ]);
        assert!(text.contains(
            "<tr><td><code>/status</code></td><td><code>handler status</code> <span class=\"about\">the server's counters (<code>?format=json</code> too)</span></td><td><code>auto</code></td><td><a href=\"/status\">/status</a></td></tr>"
        ), "{text}");
        assert!(text.contains("<code>/a&quot;&lt;b&gt;</code>"), "{text}");
        assert!(text.contains("static_dir &lt;files&gt;"), "{text}");
        assert!(!text.contains("/a\"<b>"), "{text}");
        assert!(!text.contains("{{"), "every placeholder is filled");
    }

    #[test]
    fn a_value_is_never_read_as_a_placeholder() {
        let text = page(&[listing("/{{script}}", "handler", "echo", Some("auto"))]);
        assert!(text.contains("<code>/{{script}}</code>"), "{text}");
        assert_eq!(
            fill("a{{x}}b{{y}}c{{", &[("x", "{{y}}")]),
            "a{{y}}b{{y}}c{{"
        );
    }

    #[test]
    fn a_cgi_folder_links_its_executables_only() {
        let dir = folder_with(&[
            ("ticker", 0o755),
            ("a b", 0o755),
            ("data.txt", 0o644),
            (".hidden", 0o755),
        ]);
        let text = links(&cgi("/cgi-bin/", dir.path(), "auto"));
        assert_eq!(
            text,
            r#"<a href="/cgi-bin/a%20b">a b</a> <a href="/cgi-bin/ticker">ticker</a>"#
        );
        let empty = folder_with(&[]);
        assert_eq!(links(&cgi("/x", empty.path(), "auto")), "no scripts yet");
    }

    #[test]
    fn each_mode_gets_the_first_route_that_has_the_script() {
        let with = folder_with(&[("ticker", 0o755)]);
        let without = folder_with(&[("hello", 0o755)]);
        let text = lanes(&[
            cgi("/plain/", without.path(), "buffer"),
            cgi("/buffered/", with.path(), "buffer"),
            cgi("/later/", with.path(), "buffer"),
            cgi("/streamed", with.path(), "stream"),
        ]);
        assert!(
            text.contains(r#"data-mode="buffer" data-url="/buffered/ticker""#),
            "{text}"
        );
        assert!(
            text.contains(r#"data-mode="stream" data-url="/streamed/ticker""#),
            "{text}"
        );
        assert!(
            text.contains(r#"<section class="lane missing" data-mode="auto">"#),
            "{text}"
        );
        assert!(!text.contains("/later/"), "{text}");
    }
}
