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

/// `VALID` in src/handlers/static_dir/open_files.rs: how long a resolved path is trusted.
const CACHE_VALID: std::time::Duration = std::time::Duration::from_secs(1);

/// A big file's bytes: not a repeating pattern, so a misplaced range shows.
fn big_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_file_changed_in_place_is_served_new_at_once() {
    let srv = static_server();
    let path = srv.dir.path().join("static/data.json");
    assert_eq!(srv.get("/static/data.json").text(), "{}\n");
    // Same inode (truncated and rewritten): the open file's own length is read each time.
    std::fs::write(&path, "{\"longer\": true}\n").unwrap();
    let r = srv.get("/static/data.json");
    assert_eq!(r.text(), "{\"longer\": true}\n");
    assert_eq!(r.header("content-length"), Some("17"));
}

#[test]
fn a_replaced_or_removed_file_is_noticed_once_the_cache_validity_is_over() {
    let srv = static_server();
    let root = srv.dir.path().join("static");
    assert_eq!(srv.get("/static/data.json").text(), "{}\n");
    // A deploy's atomic replace: a new inode under the old name.
    std::fs::write(root.join("next.json"), "[1]\n").unwrap();
    std::fs::rename(root.join("next.json"), root.join("data.json")).unwrap();
    // Not synchronisation: time passing is the rule under test (it is tested to the
    // nanosecond without waiting in open_files.rs).
    std::thread::sleep(CACHE_VALID + std::time::Duration::from_millis(100));
    assert_eq!(srv.get("/static/data.json").text(), "[1]\n");
    std::fs::remove_file(root.join("data.json")).unwrap();
    std::thread::sleep(CACHE_VALID + std::time::Duration::from_millis(100));
    assert_eq!(srv.get("/static/data.json").status, 404);
    std::fs::write(root.join("data.json"), "new\n").unwrap();
    assert_eq!(
        srv.get("/static/data.json").text(),
        "new\n",
        "a 404 is not cached: a file that appears is served at once"
    );
}

#[test]
fn a_big_file_is_sent_whole_and_the_connection_goes_on() {
    let big = big_bytes(3 * 1024 * 1024 + 17);
    let srv = Server::start_with(&config(""), |dir| {
        std::fs::create_dir_all(dir.join("static")).unwrap();
        std::fs::write(dir.join("static/big.bin"), &big).unwrap();
        std::fs::write(dir.join("static/small.txt"), "small\n").unwrap();
    });
    let mut c = srv.connect();
    // Pipelined: two big bodies (file ranges) and a small one (bytes), in order.
    c.send(
        b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          HEAD /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /static/small.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for round in 0..2 {
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(&*big.len().to_string()));
        assert!(r.body == big, "round {round}: the body is the file");
        if round == 0 {
            let head = c.head_response();
            assert_eq!(head.header("content-length"), Some(&*big.len().to_string()));
        }
    }
    assert_eq!(c.response().text(), "small\n");
    assert!(
        c.pending().is_empty(),
        "nothing after the last response: HEAD had no body"
    );
}

#[test]
fn a_file_that_shrinks_while_it_is_sent_closes_the_connection_short() {
    // Far more than the loopback socket buffers hold, so most of it is still to be sent
    // when the file is cut.
    let len = 64 * 1024 * 1024;
    let srv = Server::start_with(&config(""), |dir| {
        std::fs::create_dir_all(dir.join("static")).unwrap();
        std::fs::write(dir.join("static/huge.bin"), vec![b'x'; len]).unwrap();
    });
    let mut c = srv.connect();
    c.send(b"GET /static/huge.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let (status, _, headers) = c.response_head().expect("a head");
    assert_eq!(status, 200);
    let cl = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.clone());
    assert_eq!(cl, Some(len.to_string()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(srv.dir.path().join("static/huge.bin"))
        .unwrap();
    file.set_len(1000).unwrap();
    let rest = c.read_to_close();
    assert!(
        rest.len() < len,
        "the body stops short ({} of {len} bytes) and the connection closes",
        rest.len()
    );
}
