//! The landing page (`handler = "welcome"`) in a real browser: headless Chromium loads it from
//! the real server and the test reads what the page has drawn, as a person would look at it.
//! The CGI script behind the three lanes holds its last line until the test releases it, so
//! "the streamed lane draws its lines while the script still runs, the buffered lane draws
//! nothing until the end" is checked at a moment the test controls, not by timing.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::browser::{Browser, Page};
use crate::support::Server;

/// The shipped config's routes that the page uses, with a short keep-alive so that the test
/// can wait for the browser's idle connections to be closed.
const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]
keep_alive_timeout = "2s"

[log]
level = "warn"
access = "off"

[output]
mode = "auto"
flush_after = "50ms"

[[route]]
prefix = "/"
handler = "welcome"

[[route]]
prefix = "/status"
handler = "status"

[[route]]
prefix = "/cgi-bin/"
cgi_dir = "cgi-bin"

[[route]]
prefix = "/buffered/"
cgi_dir = "cgi-bin"
output = "buffer"

[[route]]
prefix = "/streamed/"
cgi_dir = "cgi-bin"
output = "stream"
"#;

/// The shipped ticker (five lines, 200 ms apart), except that the last line waits for the
/// file RELEASE (at most 20 s, so that a failed test leaves nothing running for long).
const TICKER: &str = r#"#!/bin/sh
printf 'Content-Type: text/plain\n\n'
i=1
while [ "$i" -le 4 ]; do
  echo "tick $i"
  sleep 0.2
  i=$((i + 1))
done
n=0
while [ ! -e 'RELEASE' ] && [ "$n" -lt 400 ]; do
  sleep 0.05
  n=$((n + 1))
done
echo "tick 5"
"#;

const LINES: [&str; 5] = ["tick 1", "tick 2", "tick 3", "tick 4", "tick 5"];

/// The body's length: five lines of `tick N\n`.
const BODY_LEN: usize = 35;

/// What the page shows: everything the test looks at, read in one evaluation so that the
/// lanes are seen at one and the same moment.
const SNAPSHOT: &str = r#"(() => {
  const lane = (mode) => {
    const el = document.querySelector(`.lane[data-mode="${mode}"]`);
    const stat = (name) => el.querySelector(`[data-stat="${name}"]`).textContent;
    return {
      state: el.dataset.state,
      marks: Array.from(el.querySelectorAll('.track .mark'), (m) => Number(m.dataset.ms)),
      lines: Array.from(el.querySelectorAll('.text .line'), (l) => l.lastChild.textContent),
      framing: stat('framing'),
      first: stat('first'),
      total: stat('total'),
      conn: stat('conn'),
    };
  };
  return {
    runs: Number(document.body.dataset.runs),
    state: document.body.dataset.state,
    summary: document.getElementById('summary').textContent,
    buffer: lane('buffer'),
    stream: lane('stream'),
    auto: lane('auto'),
  };
})()"#;

/// One lane, as drawn.
#[derive(Debug)]
struct Lane {
    state: String,
    /// Arrival marks, ms after the requests were made.
    marks: Vec<f64>,
    lines: Vec<String>,
    framing: String,
    first: String,
    total: String,
    conn: String,
}

#[derive(Debug)]
struct Snapshot {
    runs: u64,
    state: String,
    summary: String,
    buffer: Lane,
    stream: Lane,
    auto: Lane,
}

impl Snapshot {
    fn of(page: &mut Page<'_>) -> Snapshot {
        let v = page.eval(SNAPSHOT);
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let lane = |v: &Value| Lane {
            state: text(&v["state"]),
            marks: v["marks"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            lines: v["lines"]
                .as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default(),
            framing: text(&v["framing"]),
            first: text(&v["first"]),
            total: text(&v["total"]),
            conn: text(&v["conn"]),
        };
        Snapshot {
            runs: v["runs"].as_u64().unwrap_or(0),
            state: text(&v["state"]),
            summary: text(&v["summary"]),
            buffer: lane(&v["buffer"]),
            stream: lane(&v["stream"]),
            auto: lane(&v["auto"]),
        }
    }

    fn lanes(&self) -> [(&str, &Lane); 3] {
        [
            ("buffered", &self.buffer),
            ("streamed", &self.stream),
            ("auto", &self.auto),
        ]
    }

    fn new_connections(&self) -> u64 {
        self.lanes()
            .iter()
            .filter(|(_, lane)| lane.conn == "new")
            .count() as u64
    }
}

/// Poll the page (bounded) until `ready` holds, and return what it showed then.
fn wait_for(page: &mut Page<'_>, what: &str, ready: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = std::time::Instant::now() + crate::support::IO_TIMEOUT;
    loop {
        let shown = Snapshot::of(page);
        if ready(&shown) {
            return shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}; the page shows {shown:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Click "Run again" and wait for that run to be drawn to its end.
fn run_again(page: &mut Page<'_>, run: u64) -> Snapshot {
    page.eval("document.getElementById('again').click()");
    wait_for(page, &format!("run {run} done"), |s| {
        s.runs == run && s.state == "done"
    })
}

/// Creates the release file when dropped, so that a failing test does not leave the
/// scripts waiting.
struct Release(PathBuf);

impl Release {
    fn now(&self) {
        std::fs::write(&self.0, "").expect("release");
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

fn accepted(srv: &Server) -> u64 {
    let r = srv.get("/status?format=json");
    let v: Value = serde_json::from_slice(&r.body).expect("status json");
    v["connections_accepted"]
        .as_u64()
        .expect("connections_accepted")
}

/// Connections the server accepted between two [`accepted`] readings, less the second
/// reading's own.
fn accepted_since(srv: &Server, before: u64) -> u64 {
    accepted(srv) - before - 1
}

fn save(name: &str, png: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).expect("write screenshot");
    path
}

#[test]
fn streamed_lines_are_drawn_as_the_script_writes_them_and_buffered_ones_at_its_end() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let srv = Server::start_with(CONFIG, |dir| {
        use std::os::unix::fs::PermissionsExt;
        let release = dir.join("release");
        std::fs::create_dir(dir.join("cgi-bin")).unwrap();
        let script = dir.join("cgi-bin/ticker");
        let text = TICKER.replace("RELEASE", &release.display().to_string());
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    });
    let release = Release(srv.dir.path().join("release"));
    let mut page = browser.open(&format!("http://{}/", srv.addr), 1280, 800);

    // Run 1 starts as the page loads. The moment the streamed lane has drawn anything, the
    // buffered lane has drawn nothing.
    let first = wait_for(&mut page, "the streamed lane's first arrival", |s| {
        !s.stream.marks.is_empty()
    });
    assert!(
        first.buffer.marks.is_empty() && first.buffer.lines.is_empty(),
        "{first:#?}"
    );

    // Four lines streamed (and auto, which streams once the script pauses) while every
    // script still holds its last line: the buffered lane has not even had its head.
    let held = wait_for(&mut page, "four streamed lines and an auto one", |s| {
        s.stream.lines.len() >= 4 && !s.auto.lines.is_empty()
    });
    assert_eq!(held.stream.lines, LINES[..4], "{held:#?}");
    assert_eq!(held.stream.framing, "chunked", "{held:#?}");
    assert_eq!(held.auto.framing, "chunked", "{held:#?}");
    assert!(
        held.buffer.marks.is_empty() && held.buffer.lines.is_empty(),
        "{held:#?}"
    );
    assert_eq!(
        (held.buffer.state.as_str(), held.buffer.framing.as_str()),
        ("waiting", "…")
    );

    release.now();
    let done = wait_for(&mut page, "run 1 done", |s| {
        s.runs == 1 && s.state == "done"
    });
    let length = format!("length {BODY_LEN}");
    assert_eq!(done.buffer.framing, length, "{done:#?}");
    for (name, lane) in done.lanes() {
        assert_eq!(lane.state, "done", "{name}: {done:#?}");
        assert_eq!(lane.lines, LINES, "{name}: {done:#?}");
    }
    assert_eq!(done.stream.framing, "chunked");
    assert_eq!(done.auto.framing, "chunked");
    assert!(done.stream.marks.len() >= 5, "{done:#?}");
    let held_until = held.stream.marks[held.stream.marks.len() - 1];
    assert!(
        done.buffer.marks.iter().all(|&t| t > held_until),
        "the buffered lane drew only after the release: {done:#?}"
    );
    assert!(done.summary.contains("Buffered: nothing for"), "{done:#?}");

    // "Run again", at the shipped script's own pace. Whether each request went on a new
    // connection is what the server saw: as many new ones as it accepted.
    let before = accepted(&srv);
    let again = run_again(&mut page, 2);
    let opened = accepted_since(&srv, before);
    assert_eq!(again.new_connections(), opened, "{again:#?}");
    assert_eq!(again.buffer.framing, length);
    assert_eq!(again.stream.framing, "chunked");
    for (name, lane) in again.lanes() {
        assert_eq!(lane.lines, LINES, "{name}: {again:#?}");
        assert!(
            lane.first.ends_with(" ms") && lane.total.ends_with(" ms"),
            "{name}: {again:#?}"
        );
    }
    let height = page
        .eval("document.getElementById('compare').getBoundingClientRect().bottom + scrollY + 24");
    let laptop = save("landing.png", &page.screenshot(height.as_f64()));

    // Once the server has closed the browser's idle connections, every lane connects anew.
    srv.wait_until("the browser's idle connections closed", || {
        srv.open_connections() == 1
    });
    let before = accepted(&srv);
    let fresh = run_again(&mut page, 3);
    assert_eq!(accepted_since(&srv, before), 3);
    for (name, lane) in fresh.lanes() {
        assert_eq!(lane.conn, "new", "{name}: {fresh:#?}");
    }

    // On a phone-sized screen: nothing wider than the screen, and tracks still wide enough
    // to read.
    page.viewport(390, 844, true);
    let fits = page.wait_for(
        "the page laid out for 390 px",
        "innerWidth === 390 && document.documentElement.scrollWidth <= innerWidth \
         && Array.from(document.querySelectorAll('.track'), (t) => t.clientWidth).every((w) => w >= 300)",
    );
    assert_eq!(fits, Value::Bool(true));
    let phone = save("landing-phone.png", &page.screenshot(None));

    eprintln!(
        "landing: run 1 (last line held): streamed lines at {:?} ms, buffered at {:?} ms\n\
         landing: run 2: streamed first byte {} total {}, auto first byte {}, buffered first byte {}; connections {}/{}/{}\n\
         landing: screenshots {} and {}",
        done.stream.marks,
        done.buffer.marks,
        again.stream.first,
        again.stream.total,
        again.auto.first,
        again.buffer.first,
        again.buffer.conn,
        again.stream.conn,
        again.auto.conn,
        laptop.display(),
        phone.display(),
    );
}
