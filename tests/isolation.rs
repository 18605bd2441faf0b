//! Isolation (SPEC §9): the server dropping root after binding, scripts run as other users
//! (and as their files' owners, with suEXEC's refusals), resource limits crossed by scripts
//! written to cross them, the Landlock sandbox, and the header allowlist. Each rule is
//! shown to matter: the same script on a route without it succeeds.
//!
//! Most of these need root (to switch users); elsewhere they say that they skipped, and
//! under `CI=true` not being root fails them.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    children_of, get, own, proc_status, repo_path, require, require_root, Server, TestUser,
    IO_TIMEOUT,
};

/// Scripts of the isolation tests, written into `cgi/`.
const SCRIPTS: &[(&str, &str)] = &[
    ("hello", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhello\\n'\n"),
    ("id", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\"\n"),
    // Spins until it has used 2.5 s of CPU time, then answers.
    ("spin", "#!/usr/bin/perl\n# times() only now and then: a loop of system calls is mostly kernel time.\nuntil ((times)[0] >= 2.5) { for (1..100000) {} }\nprint \"Content-Type: text/plain\\n\\nspun\\n\";\n"),
    // Allocates 200 MiB, then answers.
    ("alloc", "#!/usr/bin/perl\nmy $x = 'x' x (200 << 20);\nprint \"Content-Type: text/plain\\n\\nallocated \", length($x), \"\\n\";\n"),
    // Forks 20 children that each live half a second, then answers.
    ("forks", "#!/usr/bin/perl\nfor (1..20) { my $pid = fork() // die \"fork: $!\\n\"; if (!$pid) { select(undef, undef, undef, 0.5); exit 0 } }\n1 while wait() > 0;\nprint \"Content-Type: text/plain\\n\\nforked 20\\n\";\n"),
    // Writes a 2 MiB file into ../spool, then answers.
    ("bigfile", "#!/usr/bin/perl\nopen(my $f, '>', \"../spool/big-$$\") or die \"open: $!\\n\";\nprint $f ('x' x 1024) for 1..2048;\nclose($f) or die \"close: $!\\n\";\nprint \"Content-Type: text/plain\\n\\nwrote 2MiB\\n\";\n"),
    // Opens /dev/null 64 times, then answers.
    ("files", "#!/usr/bin/perl\nmy @fh;\nfor (1..64) { open(my $f, '<', '/dev/null') or die \"open: $!\\n\"; push @fh, $f }\nprint \"Content-Type: text/plain\\n\\nopened 64\\n\";\n"),
];

/// Everything a sandbox must refuse, tried in turn; each line says `ok` or `refused`.
const PROBE: &str = r#"#!/usr/bin/perl
use IO::Socket::INET;
print "Content-Type: text/plain\n\n";
sub try { my ($name, $ok) = @_; print "$name=", ($ok ? "ok" : "refused"), "\n" }
try("shadow", open(my $a, '<', '/etc/shadow'));
try("read_outside", open(my $b, '<', '../outside/secret.txt'));
try("write_outside", open(my $c, '>', "../outside/new-$$"));
try("write_spool", open(my $d, '>', "../spool/new-$$"));
try("read_own_folder", open(my $e, '<', 'hello'));
try("connect", IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ENV{LISTENER_PORT}", Timeout => 5));
try("bind", IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1));
"#;

fn write(path: &Path, body: &str, mode: u32) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The test folder, open to other users (a tempdir is 0700), with `cgi/` holding the
/// scripts, and `spool/` writable by `writer`.
fn prepare(dir: &Path, writer: Option<(u32, u32)>) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cgi = dir.join("cgi");
    std::fs::create_dir(&cgi).unwrap();
    for (name, body) in SCRIPTS {
        write(&cgi.join(name), body, 0o755);
    }
    write(&cgi.join("probe"), PROBE, 0o755);
    let spool = dir.join("spool");
    std::fs::create_dir(&spool).unwrap();
    if let Some((uid, gid)) = writer {
        own(&spool, uid, gid, 0o755);
    }
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
    write(&outside.join("secret.txt"), "secret\n", 0o644);
}

/// A config with `server` in [server], `cgi` in [cgi], and `routes` after a /status route.
fn config(server: &str, cgi: &str, routes: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
{server}

[log]
level = "warn"
access = "stdout"

[cgi]
{cgi}

[[route]]
prefix = "/status"
handler = "status"
{routes}
"#
    )
}

/// The access log line of the one request for `target`, once written.
fn access_line(srv: &Server, target: &str) -> String {
    let needle = format!("\"GET {target} HTTP/1.1\"");
    let mut found = String::new();
    srv.wait_until(&format!("an access log line for {target}"), || {
        match srv.log_lines().into_iter().find(|l| l.contains(&needle)) {
            Some(line) => {
                found = line;
                true
            }
            None => false,
        }
    });
    found
}

/// Wait until the error log has a line holding every one of `parts`; returns it.
fn log_line(srv: &Server, parts: &[&str]) -> String {
    let mut found = String::new();
    srv.wait_until(&format!("a log line with {parts:?}"), || {
        let text = srv.log_text();
        match text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            Some(line) => {
                found = line.to_string();
                true
            }
            None => false,
        }
    });
    found
}

/// Wait until no script of the server is left (the helpers' and its own children).
fn no_script_left(srv: &Server) {
    srv.wait_until("every script gone", || srv.children().is_empty());
}

/// A privileged port (below 1024) free on 127.0.0.1 now.
fn free_low_port() -> u16 {
    (600..1000)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port below 1024")
}

#[test]
fn a_server_started_as_root_binds_then_keeps_no_privilege_anywhere() {
    if !require_root("a_server_started_as_root_binds_then_keeps_no_privilege_anywhere") {
        return;
    }
    // A port only root may bind: proof that the listener is bound before the drop.
    let listen = format!("127.0.0.1:{}", free_low_port());
    let text = config(
        "user = \"nobody\"",
        "spawn = \"helper\"",
        "[[route]]\nprefix = \"/cgi/\"\ncgi_dir = \"cgi\"\n",
    );
    let srv = Server::start_on(&text, |d| prepare(d, None), &listen);
    assert_eq!(srv.addr, listen);
    assert_eq!(srv.get("/status").status, 200);
    let r = srv.get("/cgi/id");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "uid=65534 gid=65534 groups=65534\n");
    // The server, its supervisor and its helper: nobody, with no capability of any kind.
    let supervisor = srv.supervisor().expect("a supervisor");
    let mut processes = vec![("server", srv.pid()), ("supervisor", supervisor)];
    processes.extend(srv.helpers().into_iter().map(|h| ("helper", h)));
    assert!(processes.len() >= 3, "{processes:?}");
    for (what, pid) in processes {
        let status = proc_status(pid);
        assert_eq!(status["Uid"], "65534\t65534\t65534\t65534", "{what}");
        assert_eq!(status["Gid"], "65534\t65534\t65534\t65534", "{what}");
        assert_eq!(status["Groups"], "65534", "{what}");
        for cap in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(status[cap], "0000000000000000", "{what} {cap}");
        }
    }
    // Said nothing about running scripts as root.
    assert!(!srv.log_text().contains("as root"), "{}", srv.log_text());
}

#[test]
fn a_server_started_as_root_without_a_user_says_so_once() {
    if !require_root("a_server_started_as_root_without_a_user_says_so_once") {
        return;
    }
    let text = config("", "", "[[route]]\nprefix = \"/cgi/\"\ncgi_dir = \"cgi\"\n");
    let srv = Server::start_with(&text, |d| prepare(d, None));
    assert_eq!(srv.get("/cgi/id").text(), "uid=0 gid=0 groups=0\n");
    let line = log_line(&srv, &["run as root"]);
    assert!(line.contains("set [server] user"), "{line}");
    assert_eq!(srv.log_text().matches("run as root").count(), 1);
}

#[test]
fn scripts_run_as_the_route_user_with_its_groups() {
    if !require_root("scripts_run_as_the_route_user_with_its_groups") {
        return;
    }
    let alice = TestUser::create("ua");
    let routes = format!(
        "[[route]]\nprefix = \"/alice/\"\ncgi_dir = \"cgi\"\nuser = \"{}\"\n\
         [[route]]\nprefix = \"/nobody/\"\ncgi_dir = \"cgi\"\nuser = \"nobody\"\n\
         [[route]]\nprefix = \"/server/\"\ncgi_dir = \"cgi\"\n",
        alice.name
    );
    let srv = Server::start_with(&config("", "", &routes), |d| prepare(d, None));
    let r = srv.get("/alice/id");
    assert_eq!(r.status, 200, "{}", r.describe());
    let want = format!(
        "uid={} gid={} groups={} {}\n",
        alice.uid, alice.gid, alice.gid, alice.extra.1
    );
    assert_eq!(r.text(), want);
    assert_eq!(
        srv.get("/nobody/id").text(),
        "uid=65534 gid=65534 groups=65534\n"
    );
    assert_eq!(srv.get("/server/id").text(), "uid=0 gid=0 groups=0\n");
    srv.terminate();
}

#[test]
fn run_as_owner_picks_each_files_owner_and_refuses_what_suexec_refuses() {
    if !require_root("run_as_owner_picks_each_files_owner_and_refuses_what_suexec_refuses") {
        return;
    }
    let alice = TestUser::create("oa");
    let bob = TestUser::create("ob");
    let id = SCRIPTS[1].1;
    let prepare_users = |dir: &Path| {
        prepare(dir, None);
        let users = dir.join("users");
        std::fs::create_dir(&users).unwrap();
        for (name, user) in [("alice", &alice), ("bob", &bob)] {
            let home = users.join(name);
            std::fs::create_dir(&home).unwrap();
            own(&home, user.uid, user.gid, 0o755);
            for script in ["id", "loose", "open-folder/id"] {
                let path = home.join(script);
                if let Some(parent) = path.parent().filter(|p| !p.exists()) {
                    std::fs::create_dir(parent).unwrap();
                    own(parent, user.uid, user.gid, 0o777); // writable by anyone
                }
                std::fs::write(&path, id).unwrap();
                let mode = if script == "loose" { 0o757 } else { 0o755 };
                own(&path, user.uid, user.gid, mode);
            }
        }
        // Bob's script in Alice's folder, and root's own folder.
        let planted = users.join("alice/planted");
        std::fs::write(&planted, id).unwrap();
        own(&planted, bob.uid, bob.gid, 0o755);
        let root = users.join("root");
        std::fs::create_dir(&root).unwrap();
        write(&root.join("id"), id, 0o755);
        // The same scripts on a route that does not check: a run as the server.
        let open = dir.join("open");
        std::fs::create_dir(&open).unwrap();
        write(&open.join("id"), id, 0o757);
    };
    let routes = "[[route]]\nprefix = \"/~/\"\ncgi_dir = \"users\"\nrun_as_owner = true\n\
                  [[route]]\nprefix = \"/open/\"\ncgi_dir = \"open\"\n";
    let srv = Server::start_with(&config("", "", routes), prepare_users);
    for (who, user) in [("alice", &alice), ("bob", &bob)] {
        let r = srv.get(&format!("/~/{who}/id"));
        assert_eq!(r.status, 200, "{}", r.describe());
        let want = format!(
            "uid={} gid={} groups={} {}\n",
            user.uid, user.gid, user.gid, user.extra.1
        );
        assert_eq!(r.text(), want);
    }
    // Each refusal: a 403, the reason in the log, and no script started.
    for (target, reason) in [
        ("/~/alice/loose", "script"),
        ("/~/alice/open-folder/id", "folder"),
        ("/~/alice/planted", "belongs to uid"),
        ("/~/root/id", "owner uid 0 is below min_uid 100"),
    ] {
        let r = srv.get(target);
        assert_eq!(r.status, 403, "{target}: {}", r.describe());
        let line = log_line(&srv, &["script refused", target]);
        assert!(line.contains(reason), "{target}: {line}");
        if reason == "script" || reason == "folder" {
            assert!(line.contains("writable by others"), "{line}");
        }
        assert!(access_line(&srv, target).contains("outcome=refused"));
    }
    // Without the checks, the same loose script runs (as the server).
    assert_eq!(srv.get("/open/id").status, 200);
    no_script_left(&srv);
    srv.terminate();
}

/// A limit crossed: route, script, status, access log outcome, error log words.
type Crossing = (
    &'static str,
    &'static str,
    u16,
    &'static str,
    &'static [&'static str],
);

#[test]
fn each_limit_is_crossed_by_a_script_written_to_cross_it() {
    if !require_root("each_limit_is_crossed_by_a_script_written_to_cross_it") {
        return;
    }
    let user = TestUser::create("lu");
    // RLIMIT_NPROC counts every process of the user: the fork route has a user of its own.
    let forker = TestUser::create("lf");
    let route = |prefix: &str, who: &TestUser, limits: &str| {
        format!(
            "[[route]]\nprefix = \"{prefix}\"\ncgi_dir = \"cgi\"\nuser = \"{}\"\nlimits = {{ {limits} }}\n",
            who.name
        )
    };
    let routes = [
        route("/cpu/", &user, "cpu = \"1s\""),
        route("/memory/", &user, "memory = \"64MiB\""),
        route("/processes/", &forker, "processes = 8"),
        route("/file_size/", &user, "file_size = \"1MiB\""),
        route("/open_files/", &user, "open_files = 16"),
        format!(
            "[[route]]\nprefix = \"/free/\"\ncgi_dir = \"cgi\"\nuser = \"{}\"\n",
            user.name
        ),
    ]
    .concat();
    let writer = Some((user.uid, user.gid));
    let srv = Server::start_with(&config("", "", &routes), |d| {
        prepare(d, writer);
        // Both users write into spool/.
        std::fs::set_permissions(d.join("spool"), std::fs::Permissions::from_mode(0o777)).unwrap();
    });
    let cases: &[Crossing] = &[
        (
            "/cpu/",
            "spin",
            504,
            "cpu_limit",
            &["script ended by a limit", "SIGXCPU", "cpu=1s"],
        ),
        (
            "/memory/",
            "alloc",
            502,
            "failed_under_limits",
            &["script failed under limits", "memory=64MiB"],
        ),
        (
            "/processes/",
            "forks",
            502,
            "failed_under_limits",
            &["script failed under limits", "processes=8"],
        ),
        (
            "/file_size/",
            "bigfile",
            502,
            "file_size_limit",
            &["script ended by a limit", "SIGXFSZ", "file_size=1MiB"],
        ),
        (
            "/open_files/",
            "files",
            502,
            "failed_under_limits",
            &["script failed under limits", "open_files=16"],
        ),
    ];
    for &(prefix, script, status, outcome, words) in cases {
        let target = format!("{prefix}{script}");
        let mut c = srv.connect();
        c.send(&get(&target));
        match c.try_response(false) {
            Some(r) => assert_eq!(r.status, status, "{target}: {}", r.describe()),
            None => {
                // Seen about once in ten full runs on /cpu/spin: the server logs the 504 it
                // sent on a kept-alive connection, and this client's read ends without it.
                // What the server sent is then taken from its access log, and the client's
                // side is reported (docs/RELIABILITY.md).
                let line = access_line(&srv, &target);
                assert!(
                    line.contains(&format!("\" {status} ")),
                    "{target}: closed without a response, and the server logged {line}"
                );
                eprintln!(
                    "{target}: the server sent {status} (\"{line}\") but the client's read ended: {:?}",
                    c.last_error()
                );
            }
        }
        let mut parts = words.to_vec();
        parts.push(&target);
        log_line(&srv, &parts);
        let line = access_line(&srv, &target);
        assert!(line.contains(&format!("outcome={outcome}")), "{line}");
        no_script_left(&srv);
        // The server is unaffected.
        assert_eq!(srv.get("/free/hello").status, 200);
        // Without the limit, the same script answers.
        let free = srv.get(&format!("/free/{script}"));
        assert_eq!(free.status, 200, "/free/{script}: {}", free.describe());
    }
    no_script_left(&srv);
    srv.terminate();
}

/// Whether this kernel has Landlock, as cgigate finds it; elsewhere the sandbox tests say
/// that they skipped (under `CI=true` they fail: CI's kernel has it).
fn require_landlock(test: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cgi")).unwrap();
    let routes = "[[route]]\nprefix = \"/b/\"\ncgi_dir = \"cgi\"\nsandbox = { enabled = true }\n";
    let out = check(
        dir.path(),
        &config("", "", routes),
        Path::new(env!("CARGO_BIN_EXE_cgigate")),
    );
    if out.status.success() {
        return true;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Landlock"), "{err}");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: this kernel has no Landlock");
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("skipped: {test}: this kernel has no Landlock\n").as_bytes(),
    );
    false
}

/// `program check --config DIR/config.toml`, with `text` written there.
fn check(dir: &Path, text: &str, program: &Path) -> Output {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    Command::new(program)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn a_sandboxed_script_reads_writes_and_connects_only_where_its_route_allows() {
    let test = "a_sandboxed_script_reads_writes_and_connects_only_where_its_route_allows";
    if !require_root(test) || !require_landlock(test) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // As root, so that only the sandbox stands between the script and /etc/shadow.
    let cgi = format!("env = {{ LISTENER_PORT = \"{port}\" }}");
    let routes = "[[route]]\nprefix = \"/box/\"\ncgi_dir = \"cgi\"\n\
                  sandbox = { enabled = true, write = [\"spool\"], tcp_connect = false, tcp_bind = false }\n\
                  [[route]]\nprefix = \"/open/\"\ncgi_dir = \"cgi\"\n";
    let srv = Server::start_with(&config("", &cgi, routes), |d| prepare(d, None));
    let boxed = srv.get("/box/probe");
    assert_eq!(boxed.status, 200, "{}", boxed.describe());
    assert_eq!(
        boxed.text(),
        "shadow=refused\nread_outside=refused\nwrite_outside=refused\nwrite_spool=ok\n\
         read_own_folder=ok\nconnect=refused\nbind=refused\n"
    );
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the listener saw a connection from the sandbox: {other:?}"),
    }
    // Its helper, and so the script, runs with no_new_privs.
    let nnp: Vec<_> = srv
        .helpers()
        .into_iter()
        .map(|h| proc_status(h)["NoNewPrivs"].clone())
        .collect();
    assert!(nnp.contains(&"1".to_string()), "{nnp:?}");
    let open = srv.get("/open/probe");
    assert_eq!(
        open.text(),
        "shadow=ok\nread_outside=ok\nwrite_outside=ok\nwrite_spool=ok\n\
         read_own_folder=ok\nconnect=ok\nbind=ok\n"
    );
    listener.set_nonblocking(false).unwrap();
    assert!(
        listener.accept().is_ok(),
        "the unsandboxed script connected"
    );
    srv.terminate();
}

#[test]
fn sandboxed_interpreters_run() {
    let test = "sandboxed_interpreters_run";
    if !require_root(test) || !require_landlock(test) || !require("/usr/bin/python3", "python3") {
        return;
    }
    let routes = "[[route]]\nprefix = \"/box/\"\ncgi_dir = \"cgi\"\nuser = \"nobody\"\n\
                  sandbox = { enabled = true }\n";
    let cgi = "interpreters = { \".py\" = \"/usr/bin/python3\", \".pl\" = \"/usr/bin/perl\" }";
    let srv = Server::start_with(&config("", cgi, routes), |d| {
        prepare(d, None);
        let cgi = d.join("cgi");
        write(
            &cgi.join("hi.py"),
            "import json, os\nprint('Content-Type: text/plain')\nprint()\nprint(json.dumps({'uid': os.getuid()}))\n",
            0o644,
        );
        write(
            &cgi.join("hi.pl"),
            "use strict; use POSIX ();\nprint \"Content-Type: text/plain\\n\\nperl \", $<, \"\\n\";\n",
            0o644,
        );
    });
    assert_eq!(srv.get("/box/hi.py").text(), "{\"uid\": 65534}\n");
    assert_eq!(srv.get("/box/hi.pl").text(), "perl 65534\n");
    assert_eq!(srv.get("/box/hello").text(), "hello\n");
    srv.terminate();
}

#[test]
fn after_the_drop_only_the_supervisor_keeps_root_and_restarts_a_killed_helper() {
    let test = "after_the_drop_only_the_supervisor_keeps_root_and_restarts_a_killed_helper";
    if !require_root(test) {
        return;
    }
    let alice = TestUser::create("ka");
    let routes = format!(
        "[[route]]\nprefix = \"/a/\"\ncgi_dir = \"cgi\"\nuser = \"{}\"\n",
        alice.name
    );
    let srv = Server::start_with(&config("user = \"nobody\"", "", &routes), |d| {
        prepare(d, None)
    });
    let want = format!(
        "uid={} gid={} groups={} {}\n",
        alice.uid, alice.gid, alice.gid, alice.extra.1
    );
    assert_eq!(srv.get("/a/id").text(), want);
    // The server that parses HTTP is nobody; the supervisor, which starts helpers as other
    // users, is the one process that stays root.
    assert!(proc_status(srv.pid())["Uid"].starts_with("65534\t"));
    let supervisor = srv.supervisor().expect("a supervisor");
    assert!(proc_status(supervisor)["Uid"].starts_with("0\t"));
    let of_alice = || -> Vec<u32> {
        let prefix = format!("{}\t", alice.uid);
        srv.helpers()
            .into_iter()
            .filter(|&h| proc_status(h)["Uid"].starts_with(&prefix))
            .collect()
    };
    let before = of_alice();
    assert!(!before.is_empty(), "{:?}", srv.helpers());
    let status = Command::new("kill")
        .args(["-KILL", &before[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    srv.wait_until("the helper reaped", || {
        !children_of(supervisor).iter().any(|&(p, _)| p == before[0])
    });
    // Started again, as Alice, by the supervisor, once a request reaches its slot (the
    // route's helpers are taken in turn).
    for _ in 0..8 {
        assert_eq!(srv.get("/a/id").text(), want);
    }
    let after = of_alice();
    assert_eq!(after.len(), before.len(), "{before:?} {after:?}");
    assert!(!after.contains(&before[0]));
    srv.terminate();
}

#[test]
fn processes_limits_on_scripts_run_as_root_are_a_config_error() {
    if !require_root("processes_limits_on_scripts_run_as_root_are_a_config_error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cgi")).unwrap();
    let text = "[[route]]\nprefix = \"/r/\"\ncgi_dir = \"cgi\"\nlimits = { processes = 5 }\n";
    let out = check(dir.path(), text, Path::new(env!("CARGO_BIN_EXE_cgigate")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(":1: route /r/"), "{err}");
    assert!(
        err.contains("limits.processes does nothing for scripts run as root"),
        "{err}"
    );
}

#[test]
fn the_allowlist_exports_only_the_headers_it_names() {
    let routes = "[[route]]\nprefix = \"/listed/\"\ncgi_dir = \"cgi\"\npass_headers = [\"Accept\", \"X-Request-Id\"]\n\
                  [[route]]\nprefix = \"/all/\"\ncgi_dir = \"cgi\"\n";
    let srv = Server::start_with(&config("", "", routes), |d| {
        prepare(d, None);
        write(
            &d.join("cgi/env"),
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv | grep '^HTTP_' | sort\n",
            0o755,
        );
    });
    let request = |target: &str| {
        let mut c = srv.connect();
        c.send(
            format!(
                "GET {target} HTTP/1.1\r\nHost: t\r\nAccept: text/plain\r\nX-Request-Id: 42\r\n\
                 User-Agent: ua\r\nX-Other: o\r\nProxy: http://evil.invalid/\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        c.response().text()
    };
    assert_eq!(
        request("/listed/env"),
        "HTTP_ACCEPT=text/plain\nHTTP_X_REQUEST_ID=42\n"
    );
    assert_eq!(
        request("/all/env"),
        "HTTP_ACCEPT=text/plain\nHTTP_HOST=t\nHTTP_USER_AGENT=ua\nHTTP_X_OTHER=o\nHTTP_X_REQUEST_ID=42\n"
    );
}

/// cgigate as on a kernel without Landlock: `tests/support/no_landlock.c`, built into `dir`.
fn without_landlock(dir: &Path) -> PathBuf {
    let out = dir.join("no-landlock");
    let status = Command::new("cc")
        .arg("-O2")
        .arg(format!("-DTARGET=\"{}\"", env!("CARGO_BIN_EXE_cgigate")))
        .arg("-o")
        .arg(&out)
        .arg(repo_path("tests/support/no_landlock.c"))
        .status()
        .expect("cc");
    assert!(status.success(), "cc failed for no_landlock.c");
    out
}

/// Run `program ARGS` to its end (bounded), with its output.
fn run_to_end(program: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + IO_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not exit", program.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn without_landlock_a_sandboxed_route_refuses_to_start_unless_best_effort() {
    if !require("cc", "gcc") {
        return;
    }
    let build = tempfile::tempdir().unwrap();
    let wrapper = without_landlock(build.path());
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path(), None);
    let strict = config(
        "",
        "",
        "[[route]]\nprefix = \"/box/\"\ncgi_dir = \"cgi\"\nsandbox = { enabled = true }\n",
    );
    let out = check(dir.path(), &strict, &wrapper);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("route /box/: sandbox: this kernel has no Landlock"),
        "{err}"
    );
    assert!(err.contains("set sandbox.best_effort = true"), "{err}");
    // Starting it, not only checking it, stops in the same way.
    let path = dir.path().join("config.toml");
    let started = run_to_end(&wrapper, &["--config".as_ref(), path.as_os_str()]);
    let err = String::from_utf8_lossy(&started.stderr);
    assert_eq!(started.status.code(), Some(2), "{err}");
    assert!(err.contains("this kernel has no Landlock"), "{err}");
    // A best-effort route runs, unsandboxed, and says so.
    let relaxed = strict.replace("enabled = true", "enabled = true, best_effort = true");
    let out = check(dir.path(), &relaxed, &wrapper);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("sandbox: NOT enforced: no Landlock on this kernel (best_effort)"),
        "{report}"
    );
    let srv = Server::start_program(&wrapper, &["--listen", "127.0.0.1:0"], &relaxed, |d| {
        prepare(d, None);
        write(
            &d.join("cgi/peek"),
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\ncat ../outside/secret.txt\n",
            0o755,
        );
    });
    assert_eq!(srv.get("/box/peek").text(), "secret\n");
    let line = log_line(&srv, &["scripts run unsandboxed (best_effort)"]);
    assert!(line.contains("/box/"), "{line}");
    srv.terminate();
}

#[test]
fn check_reports_each_routes_identity_limits_and_sandbox() {
    if !require_landlock("check_reports_each_routes_identity_limits_and_sandbox") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path(), None);
    let text = config(
        "user = \"nobody\"",
        "limits = { cpu = \"30s\", memory = \"512MiB\" }",
        "[[route]]\nprefix = \"/app/\"\ncgi_dir = \"cgi\"\nuser = \"nobody\"\nnice = 5\n\
         limits = { processes = 64 }\n\
         sandbox = { enabled = true, write = [\"spool\"], tcp_connect = false }\n\
         [[route]]\nprefix = \"/~/\"\ncgi_dir = \"cgi\"\nrun_as_owner = true\n",
    );
    let out = check(dir.path(), &text, Path::new(env!("CARGO_BIN_EXE_cgigate")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = dir.path().display();
    let want = format!(
        "{d}/config.toml: ok (3 routes)\n\
         server: binds, then runs as nobody (uid 65534, gid 65534)\n\
         /status -> handler status\n\
         /app/ -> cgi_dir {d}/cgi\n\
         \x20   runs as nobody (uid 65534, gid 65534, groups 65534)\n\
         \x20   limits: cpu=30s memory=512MiB processes=64 core=0 nice=5\n\
         \x20   sandbox: enforced by Landlock; no_new_privs\n\
         \x20     read: the system's libraries and interpreters, {d}/cgi\n\
         \x20     write: /dev/null, {d}/spool\n\
         \x20     tcp: connect refused, bind allowed\n\
         /~/ -> cgi_dir {d}/cgi\n\
         \x20   runs as each script's owner (uid >= 100, gid >= 100); refuses a script or folder writable by others or owned by another user\n\
         \x20   limits: cpu=30s memory=512MiB core=0 nice=0\n\
         \x20   sandbox: none\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
