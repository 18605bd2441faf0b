//! The static_dir handler.

use crate::support::{config, Server};

fn static_server() -> Server {
    Server::start_with(&config(""), |dir| {
        let root = dir.join("static");
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("index.html"), "<p>hi</p>\n").unwrap();
        std::fs::write(root.join("data.json"), "{}\n").unwrap();
        std::fs::write(dir.join("secret.txt"), "secret\n").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("leak.txt")).unwrap();
    })
}

#[test]
fn serves_files_with_type_length_and_last_modified() {
    let srv = static_server();
    let r = srv.get("/static/data.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-length"), Some("3"));
    assert!(r.header("last-modified").is_some());
    let index = srv.get("/static/");
    assert_eq!(index.text(), "<p>hi</p>\n");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

#[test]
fn if_modified_since_gives_304_without_a_body() {
    let srv = static_server();
    let first = srv.get("/static/data.json");
    let modified = first.header("last-modified").unwrap().to_string();
    let mut c = srv.connect();
    c.send(
        format!(
            "GET /static/data.json HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: {modified}\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.response();
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);
    c.send(b"GET /static/data.json HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n");
    assert_eq!(c.response().status, 200, "an older date gets the file");
}

#[test]
fn nothing_outside_the_folder_is_served() {
    let srv = static_server();
    for (target, status) in [
        ("/static/../secret.txt", 404),
        ("/static/%2e%2e/secret.txt", 404),
        ("/static/..%2fsecret.txt", 404),
        ("/static/%2e%2e%2fsecret.txt", 404),
        ("/static/leak.txt", 403),
        ("/static/empty/", 403),
        ("/static/data.json%00", 404),
    ] {
        let r = srv.get(target);
        assert_eq!(r.status, status, "{target}");
        assert!(!r.text().contains("secret"), "{target}");
    }
    let mut c = srv.connect();
    c.send(b"POST /static/data.json HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}
