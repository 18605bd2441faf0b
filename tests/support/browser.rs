//! A headless Chromium for the tests of what a person sees, driven over the DevTools protocol
//! through the pipe `--remote-debugging-pipe` opens (the transport Puppeteer uses): Chromium
//! reads commands from descriptor 3 and writes replies and events to descriptor 4, each a
//! JSON message ended by a NUL byte. The tests need a handful of commands (open a page,
//! evaluate, set the viewport, take a screenshot), so there is no websocket and no CDP crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::IO_TIMEOUT;

/// Debian's name for the browser, and its package.
const CHROMIUM: &str = "chromium";

/// How often [`Page::wait_for`] looks again.
const POLL: Duration = Duration::from_millis(10);

/// A running headless Chromium with a fresh profile, closed when dropped.
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    messages: Receiver<Value>,
    /// Events received while waiting for a reply, kept for [`Browser::wait_event`].
    events: Vec<Value>,
    next_id: u64,
    stderr: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

/// One tab, attached to in the browser's flat session mode.
pub struct Page<'a> {
    browser: &'a mut Browser,
    session: String,
}

impl Browser {
    /// Chromium, if installed: otherwise the test says it skipped (a failure under CI=true,
    /// where `.ci/run` installs it).
    pub fn launch() -> Option<Browser> {
        if !super::require(CHROMIUM, "chromium") {
            return None;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let flags = [
            "--headless".to_string(),
            // Root in a container has no usable sandbox; the pages are the tests' own.
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--remote-debugging-pipe".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
            "--no-first-run".to_string(),
            "--no-default-browser-check".to_string(),
            // Loopback only: no updates, no sync, and no name resolves but 127.0.0.1.
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-default-apps".to_string(),
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1".to_string(),
            "--mute-audio".to_string(),
            "--hide-scrollbars".to_string(),
            "--force-device-scale-factor=1".to_string(),
            "about:blank".to_string(),
        ];
        // The shell hands our stdin and stdout to Chromium as descriptors 3 and 4, and its
        // own stdin and stdout become /dev/null and stderr: Command cannot place a pipe at
        // descriptor 3 without unsafe code.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(CHROMIUM)
            .args(&flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chromium");
        let commands = child.stdin.take().expect("stdin");
        let replies = child.stdout.take().expect("stdout");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            for line in err.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || read_messages(replies, &tx));
        Some(Browser {
            child,
            commands,
            messages,
            events: Vec::new(),
            next_id: 0,
            stderr,
            _profile: profile,
        })
    }

    /// A new tab of `width` × `height` CSS pixels, showing `url` once loaded.
    pub fn open(&mut self, url: &str, width: u32, height: u32) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        let mut page = Page {
            browser: self,
            session,
        };
        page.viewport(width, height, false);
        page.call("Page.enable", json!({}));
        let navigated = page.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = navigated.get("errorText") {
            panic!("{url}: {error}");
        }
        let session = page.session.clone();
        page.browser.wait_event(&session, "Page.loadEventFired");
        page
    }

    /// Wait (bounded) for the event `method` of a session.
    fn wait_event(&mut self, session: &str, method: &str) -> Value {
        let is_it = |m: &Value| m["method"] == json!(method) && m["sessionId"] == json!(session);
        if let Some(at) = self.events.iter().position(is_it) {
            return self.events.remove(at);
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(event) if is_it(&event) => return event,
                Ok(other) => self.events.push(other),
                Err(_) => panic!("no {method} from chromium:\n{}", self.stderr_text()),
            }
        }
    }

    /// Send one command and wait (bounded) for its reply; events in between are kept.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        if let Err(e) = self.commands.write_all(&bytes) {
            panic!("{method}: chromium is gone ({e}):\n{}", self.stderr_text());
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(reply) if reply["id"] == json!(id) => {
                    if let Some(error) = reply.get("error") {
                        panic!("{method}: {error}");
                    }
                    return reply["result"].clone();
                }
                Ok(event) => self.events.push(event),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{method}: no reply from chromium:\n{}", self.stderr_text())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{method}: chromium exited:\n{}", self.stderr_text())
                }
            }
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let mut close =
            serde_json::to_vec(&json!({ "id": 0, "method": "Browser.close" })).expect("json");
        close.push(0);
        let _ = self.commands.write_all(&close);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Split Chromium's output at the NUL bytes into JSON messages, until the pipe closes.
fn read_messages(mut from: impl Read, to: &mpsc::Sender<Value>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == 0) {
            let message: Vec<u8> = pending.drain(..=end).collect();
            match serde_json::from_slice(&message[..end]) {
                Ok(value) => {
                    if to.send(value).is_err() {
                        return;
                    }
                }
                Err(e) => panic!("chromium sent a message that is not JSON: {e}"),
            }
        }
    }
}

impl Page<'_> {
    fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.browser.call(Some(&session), method, params)
    }

    /// The value of a JavaScript expression (a promise is awaited); a thrown error fails
    /// the test.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression}: {details}");
        }
        result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Evaluate `expression` until its value is neither false, null, 0 nor "" (bounded by
    /// [`IO_TIMEOUT`]), and return that value: how the tests wait for the page.
    pub fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let value = self.eval(expression);
            let falsy = matches!(&value, Value::Null | Value::Bool(false))
                || value.as_f64() == Some(0.0)
                || value.as_str() == Some("");
            if !falsy {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            std::thread::sleep(POLL);
        }
    }

    /// Lay the page out for a screen of `width` × `height` CSS pixels; `mobile` also
    /// honours the page's viewport meta tag, as a phone does.
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        );
    }

    /// A PNG of the page from its top down to `height` CSS pixels (the whole page when
    /// `None`), as wide as the viewport.
    pub fn screenshot(&mut self, height: Option<f64>) -> Vec<u8> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().expect("width");
        let full = size["height"].as_f64().expect("height");
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height.unwrap_or(full).min(full), "scale": 1 },
            }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("data"))
            .expect("base64 PNG")
    }
}
