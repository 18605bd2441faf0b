//! SIGHUP reloads the config (SPEC §8): new routes for new requests while a request in
//! flight finishes on its old one, an invalid config logged with its file and line while the
//! old one serves, listeners opened and closed, `max_connections` raised under waiting
//! clients, the access log file opened again after a rotation, and a change of a route's
//! isolation refused (it takes a restart) while the spawn helpers keep running.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{get, Client, Server};

/// A config whose log lets the reload's outcome through; `server` goes into [server],
/// `rest` after it.
fn config(server: &str, rest: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n{server}\n\n[log]\nlevel = \"info\"\naccess = \"off\"\n\n{rest}\n"
    )
}

/// A CGI folder `cgi/` with `echo`, which answers its request body.
fn cgi_folder(dir: &Path) {
    std::fs::create_dir_all(dir.join("cgi")).unwrap();
    let path = dir.join("cgi/echo");
    std::fs::write(
        &path,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nhead -c \"$CONTENT_LENGTH\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn route(prefix: &str, what: &str) -> String {
    format!("[[route]]\nprefix = \"{prefix}\"\n{what}\n")
}

/// The last `reload refused` line the server logged.
fn last_refusal(srv: &Server) -> String {
    let log = srv.log_text();
    let line = log.lines().rev().find(|l| l.contains("reload refused"));
    line.expect("a refusal logged").to_string()
}

fn post(target: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn new_requests_get_the_new_routes_and_one_in_flight_finishes_on_its_old_one() {
    let routes =
        |cgi: &str| route(cgi, "cgi_dir = \"cgi\"") + &route("/hello", "handler = \"hello\"");
    let srv = Server::start_with(&config("", &routes("/old/")), cgi_folder);
    let mut kept = srv.connect();
    kept.send(&post("/old/echo", "x"));
    assert_eq!(kept.response().text(), "x");
    // Half a body: the request, and its script, are running on /old/ when the reload comes.
    let mut in_flight = srv.connect();
    in_flight.send(b"POST /old/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab");
    srv.write_config(&config("", &routes("/new/")));
    assert!(srv.reload(), "{}", srv.log_text());
    in_flight.send(b"cd");
    let r = in_flight.response();
    assert_eq!((r.status, r.text()), (200, "abcd".to_string()));
    // The next request on a connection kept alive across the reload uses the new routes.
    kept.send(&get("/old/echo"));
    assert_eq!(kept.response().status, 404);
    kept.send(&post("/new/echo", "wxyz"));
    assert_eq!(kept.response().text(), "wxyz");
    assert_eq!(srv.get("/hello").status, 200);
    srv.terminate();
}

#[test]
fn an_invalid_config_is_logged_with_file_line_and_key_and_the_old_one_keeps_serving() {
    let hello = route("/hello", "handler = \"hello\"");
    let srv = Server::start(&config("", &hello));
    // Line 3, in [server]: a value of the wrong type.
    srv.write_config(&config("max_connections = \"lots\"", &hello));
    assert!(!srv.reload());
    let line = last_refusal(&srv);
    assert!(line.contains("config.toml:3"), "{line}");
    assert!(line.contains("max_connections"), "{line}");
    assert_eq!(srv.get("/hello").status, 200);
    // A config that parses but cannot be served: a folder that does not exist.
    let missing = route("/gone/", "cgi_dir = \"no-such-folder\"");
    srv.write_config(&config("", &(hello.clone() + &missing)));
    assert!(!srv.reload());
    let line = last_refusal(&srv);
    assert!(line.contains("route /gone/"), "{line}");
    assert!(line.contains("no-such-folder"), "{line}");
    assert_eq!(srv.get("/hello").status, 200);
    assert_eq!(srv.get("/gone/x").status, 404);
    srv.terminate();
}

#[test]
fn listeners_added_are_opened_and_listeners_removed_are_closed() {
    let hello = route("/hello", "handler = \"hello\"");
    let one = config("", &hello);
    let srv = Server::start_program(Path::new(env!("CARGO_BIN_EXE_cgigate")), &[], &one, |_| {});
    let two = one.replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\", \"127.0.0.2:0\"]",
    );
    srv.write_config(&two);
    assert!(srv.reload(), "{}", srv.log_text());
    let added = || {
        srv.stdout.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("listening on http://127.0.0.2:")
                .map(str::to_string)
        })
    };
    srv.wait_until("the new listener's line", || added().is_some());
    let second = format!("127.0.0.2:{}", added().unwrap());
    let mut c = Client::connect(&second);
    c.send(&get("/hello"));
    assert_eq!(c.response().status, 200);
    // The first listener was kept, not opened again: same port.
    assert_eq!(srv.get("/hello").status, 200);
    srv.write_config(&one);
    assert!(srv.reload());
    srv.wait_until("the removed listener closed", || {
        std::net::TcpStream::connect(&second).is_err()
    });
    assert!(srv.log_text().contains("stopped listening"));
    // A connection accepted there before keeps its answers.
    c.send(&get("/hello"));
    assert_eq!(c.response().status, 200);
    assert_eq!(srv.get("/hello").status, 200);
    srv.terminate();
}

#[test]
fn raising_max_connections_lets_a_waiting_client_in() {
    let hello = route("/hello", "handler = \"hello\"");
    let srv = Server::start(&config("max_connections = 1", &hello));
    let mut first = srv.connect();
    first.send(&get("/hello"));
    assert_eq!(first.response().status, 200);
    // The one slot is taken by `first`, kept alive: `second` waits in the backlog, and
    // would wait until its read timed out without the reload.
    let mut second = srv.connect();
    second.send(&get("/hello"));
    srv.write_config(&config("max_connections = 2", &hello));
    assert!(srv.reload());
    assert_eq!(second.response().status, 200);
    first.send(&get("/hello"));
    assert_eq!(first.response().status, 200);
    srv.terminate();
}

#[test]
fn the_access_log_file_is_opened_again_so_logrotate_can_move_it() {
    let hello = route("/hello", "handler = \"hello\"");
    let text = config("", &hello).replace("access = \"off\"", "access = \"access.log\"");
    let srv = Server::start(&text);
    let log = srv.dir.path().join("access.log");
    let rotated = srv.dir.path().join("access.log.1");
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(srv.get("/hello").status, 200);
    srv.wait_until("the first line written", || lines(&log) == 1);
    std::fs::rename(&log, &rotated).unwrap();
    assert!(srv.reload());
    assert_eq!(srv.get("/hello?after").status, 200);
    srv.wait_until("the new file", || lines(&log) == 1);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("/hello?after"));
    assert_eq!(lines(&rotated), 1);
    srv.terminate();
}

#[test]
fn a_changed_isolation_takes_a_restart_and_the_helpers_keep_serving() {
    let limited = |cpu: &str| {
        route(
            "/cgi/",
            &format!("cgi_dir = \"cgi\"\nlimits = {{ cpu = \"{cpu}\" }}"),
        )
    };
    let hello = route("/hello", "handler = \"hello\"");
    let srv = Server::start_with(&config("", &limited("5s")), cgi_folder);
    let mut c = srv.connect();
    c.send(&post("/cgi/echo", "one"));
    assert_eq!(c.response().text(), "one");
    let helpers = srv.helpers();
    assert!(!helpers.is_empty(), "a limited route runs through helpers");
    srv.write_config(&config("", &limited("6s")));
    assert!(!srv.reload());
    let line = last_refusal(&srv);
    assert!(line.contains("takes a restart"), "{line}");
    assert_eq!(
        srv.get("/hello").status,
        404,
        "nothing of the refused config applies"
    );
    // The same isolation with another route beside it: reloaded, the same helpers.
    srv.write_config(&config("", &(limited("5s") + &hello)));
    assert!(srv.reload(), "{}", srv.log_text());
    assert_eq!(srv.get("/hello").status, 200);
    c.send(&post("/cgi/echo", "two"));
    assert_eq!(c.response().text(), "two");
    assert_eq!(srv.helpers(), helpers);
    srv.terminate();
}

#[test]
fn a_refused_reload_changes_nothing_and_an_accepted_one_changes_the_per_client_bound() {
    let cgi = |per_client: u32, cpu: &str| {
        format!(
            "[cgi]\nrequest_body = \"stream\"\nmax_children_per_client = {per_client}\n\n{}",
            route(
                "/cgi/",
                &format!("cgi_dir = \"cgi\"\nlimits = {{ cpu = \"{cpu}\" }}")
            )
        )
    };
    let srv = Server::start_with(&config("", &cgi(1, "5s")), cgi_folder);
    // One script of this client waits for the rest of its body: the client is at its bound.
    let mut held = srv.connect();
    held.send(b"POST /cgi/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab");
    srv.wait_until("the script running", || !srv.children().is_empty());
    let second = || {
        let mut c = srv.connect();
        c.send(&post("/cgi/echo", "x"));
        c.response().status
    };
    assert_eq!(second(), 503);
    // No bound, but a changed CPU limit: refused, so the bound stays.
    srv.write_config(&config("", &cgi(0, "6s")));
    assert!(!srv.reload());
    assert_eq!(second(), 503, "a refused reload changed the bound");
    // No bound and the same limit: reloaded, and the client may start a second script.
    srv.write_config(&config("", &cgi(0, "5s")));
    assert!(srv.reload(), "{}", srv.log_text());
    assert_eq!(second(), 200);
    held.send(b"cd");
    assert_eq!(held.response().text(), "abcd");
    srv.terminate();
}
