//! The isolation keys (SPEC §9): identities resolved from the account database, limits and
//! sandboxes inherited key by key, and each refusal with its file, line, column and key.
//! They rely on accounts every Debian system has: root, nobody/nogroup, www-data.

use super::*;
use crate::config::{Identity, Limits, RunAs, Sandbox};

/// SPEC §9 with its two made-up accounts replaced by ones this system has.
const SPEC_ISOLATION: &str = r#"[server]
user = "www-data"                 # after binding and loading: drop to this user (and its groups)
group = "www-data"                # default: the user's primary group

[cgi]                             # every key below may also be set per route
user = "nobody"                   # scripts run as this user; default: the server's own
group = "nogroup"
run_as_owner = false              # true: each script runs as its file's owner (suEXEC-style)
min_uid = 100                     # never run scripts below these ids (root included)
min_gid = 100
limits = { cpu = "30s", memory = "512MiB", processes = 64, open_files = 256, file_size = "1GiB", core = 0 }
nice = 0
pass_headers = []                 # non-empty: only these request headers become HTTP_* (allowlist)

[cgi.sandbox]                     # Landlock; per route as `sandbox = { ... }`
enabled = false
read = []                         # paths the script may read, beyond its folder and the system's
write = []                        # paths it may write
tcp_connect = true                # false: no outgoing TCP (where the kernel's Landlock supports it)
tcp_bind = true
best_effort = false               # true: run unsandboxed on a kernel without Landlock (logged)
"#;

fn nobody() -> Identity {
    Identity::of_user("nobody", None).unwrap()
}

#[test]
fn spec_isolation_example_yields_its_values() {
    let config = ok(SPEC_ISOLATION);
    let server = config.server.user.expect("a server user");
    assert_eq!(
        (server.user.as_str(), server.uid, server.gid),
        ("www-data", 33, 33)
    );
    assert_eq!(
        server.groups.first(),
        Some(&33),
        "the group it runs as comes first"
    );
    let cgi = config.cgi;
    assert_eq!(cgi.run_as, RunAs::User(nobody()));
    assert_eq!((cgi.min_uid, cgi.min_gid), (100, 100));
    assert_eq!(
        cgi.limits,
        Limits {
            cpu: Some(secs(30)),
            memory: Some(512 << 20),
            processes: Some(64),
            open_files: Some(256),
            file_size: Some(1 << 30),
            core: Some(0),
        }
    );
    assert_eq!(cgi.nice, 0);
    assert!(cgi.pass_headers.is_empty());
    assert_eq!(cgi.sandbox, Sandbox::default());
}

#[test]
fn defaults_run_scripts_as_the_server_with_no_limit_but_core_dumps() {
    let cgi = ok("").cgi;
    assert_eq!(cgi.run_as, RunAs::Server);
    assert_eq!((cgi.min_uid, cgi.min_gid), (100, 100));
    assert_eq!(
        cgi.limits,
        Limits {
            core: Some(0),
            ..Limits::default()
        }
    );
    assert!(!cgi.sandbox.enabled);
    assert!(cgi.sandbox.tcp_connect && cgi.sandbox.tcp_bind && !cgi.sandbox.best_effort);
    assert_eq!(ok("").server.user, None);
}

#[test]
fn routes_inherit_limits_and_sandboxes_key_by_key() {
    let text = "[cgi]\nlimits = { cpu = \"10s\", memory = \"64MiB\" }\n\
                sandbox = { enabled = true, write = [\"spool\"], tcp_connect = false }\n\
                [[route]]\nprefix = \"/a/\"\ncgi_dir = \"cgi\"\n\
                limits = { memory = \"128MiB\", open_files = 32 }\n\
                sandbox = { read = [\"/srv/data\"], tcp_bind = false }\n\
                [[route]]\nprefix = \"/b/\"\ncgi_dir = \"cgi\"\nsandbox = { enabled = false }\n";
    let config = ok(text);
    let a = &config.routes[0].cgi;
    assert_eq!(a.limits.cpu, Some(secs(10)), "inherited");
    assert_eq!(a.limits.memory, Some(128 << 20), "replaced");
    assert_eq!(a.limits.open_files, Some(32), "added");
    assert_eq!(a.limits.core, Some(0), "the default");
    assert!(a.sandbox.enabled);
    assert_eq!(
        a.sandbox.write,
        [PathBuf::from("/etc/cgigate/spool")],
        "relative to the file"
    );
    assert_eq!(a.sandbox.read, [PathBuf::from("/srv/data")]);
    assert!(!a.sandbox.tcp_connect && !a.sandbox.tcp_bind);
    let b = &config.routes[1].cgi;
    assert!(!b.sandbox.enabled);
    assert_eq!(b.limits.memory, Some(64 << 20));
}

#[test]
fn users_groups_and_owner_mode_per_route() {
    let text = "[cgi]\nuser = \"nobody\"\n\
                [[route]]\nprefix = \"/a/\"\ncgi_dir = \"cgi\"\n\
                [[route]]\nprefix = \"/b/\"\ncgi_dir = \"cgi\"\nrun_as_owner = true\n\
                [[route]]\nprefix = \"/c/\"\ncgi_dir = \"cgi\"\nuser = \"www-data\"\nmin_uid = 33\nmin_gid = 33\n\
                [[route]]\nprefix = \"/d/\"\ncgi_dir = \"cgi\"\ngroup = \"www-data\"\nmin_gid = 33\n";
    let config = ok(text);
    assert_eq!(
        config.routes[0].cgi.run_as,
        RunAs::User(nobody()),
        "inherited"
    );
    assert_eq!(config.routes[1].cgi.run_as, RunAs::Owner);
    let RunAs::User(www) = &config.routes[2].cgi.run_as else {
        panic!("{:?}", config.routes[2].cgi.run_as)
    };
    assert_eq!((www.uid, www.gid), (33, 33));
    let RunAs::User(mixed) = &config.routes[3].cgi.run_as else {
        panic!("{:?}", config.routes[3].cgi.run_as)
    };
    assert_eq!(
        (mixed.uid, mixed.gid),
        (65534, 33),
        "the inherited user, this group"
    );
}

#[test]
fn accounts_that_do_not_exist_are_named_with_their_key() {
    assert_error(
        "[server]\nuser = \"no-such-user-x\"\n",
        2,
        8,
        "server.user",
        "no user \"no-such-user-x\" on this system",
    );
    assert_error(
        "[server]\nuser = \"nobody\"\ngroup = \"no-such-group-x\"\n",
        3,
        9,
        "server.group",
        "no group \"no-such-group-x\" on this system",
    );
    assert_error(
        "[server]\ngroup = \"nogroup\"\n",
        2,
        9,
        "server.group",
        "needs server.user",
    );
    assert_error(
        "[[route]]\nprefix = \"/a/\"\ncgi_dir = \"cgi\"\nuser = \"no-such-user-x\"\n",
        4,
        8,
        "route[1].user",
        "no user \"no-such-user-x\" on this system",
    );
    assert_error(
        "[cgi]\ngroup = \"nogroup\"\n",
        2,
        9,
        "cgi.group",
        "needs user",
    );
}

#[test]
fn targets_below_the_minimum_ids_are_refused() {
    assert_error(
        "[cgi]\nuser = \"root\"\n",
        2,
        8,
        "cgi.user",
        "user \"root\" has uid 0, below min_uid 100 (set min_uid to allow it)",
    );
    assert_error(
        "[cgi]\nuser = \"nobody\"\ngroup = \"root\"\n",
        3,
        9,
        "cgi.group",
        "scripts would run with gid 0, below min_gid 100",
    );
    // Explicitly allowed.
    let root = ok("[cgi]\nuser = \"root\"\nmin_uid = 0\nmin_gid = 0\n")
        .cgi
        .run_as;
    assert!(
        matches!(root, RunAs::User(ref id) if id.is_root()),
        "{root:?}"
    );
    // A route's own, higher minimum applies to the user it inherits.
    assert_error(
        "[cgi]\nuser = \"nobody\"\n[[route]]\nprefix = \"/a/\"\ncgi_dir = \"cgi\"\nmin_uid = 70000\n",
        6,
        11,
        "route[1].min_uid",
        "user \"nobody\" has uid 65534, below min_uid 70000",
    );
}

#[test]
fn owner_mode_takes_no_user() {
    assert_error(
        "[cgi]\nuser = \"nobody\"\nrun_as_owner = true\n",
        2,
        8,
        "cgi.run_as_owner",
        "user and group cannot be combined with run_as_owner = true",
    );
}

#[test]
fn limits_have_floors_that_keep_a_script_runnable() {
    for (limits, column, key, rest) in [
        ("{ cpu = \"500ms\" }", 18, "cpu", "must be at least 1s"),
        (
            "{ memory = \"64KiB\" }",
            21,
            "memory",
            "must be at least 1048576",
        ),
        ("{ processes = 0 }", 24, "processes", "must be at least 1"),
        ("{ open_files = 3 }", 25, "open_files", "must be at least 4"),
    ] {
        assert_error(
            &format!("[cgi]\nlimits = {limits}\n"),
            2,
            column,
            &format!("cgi.limits.{key}"),
            rest,
        );
    }
    assert_error(
        "[cgi]\nlimits = { cpu = \"1s\", pages = 3 }\n",
        2,
        24,
        "cgi.limits.pages",
        "unknown key (expected one of cpu, memory, processes, open_files, file_size, core)",
    );
    assert_error(
        "[cgi]\nnice = 20\n",
        2,
        8,
        "cgi.nice",
        "must be between 0 and 19",
    );
}

#[test]
fn sandbox_keys_are_checked() {
    assert_error(
        "[cgi.sandbox]\nenabled = \"yes\"\n",
        2,
        11,
        "cgi.sandbox.enabled",
        "",
    );
    assert_error(
        "[cgi.sandbox]\nwrite = [\"\"]\n",
        2,
        10,
        "cgi.sandbox.write",
        "path must not be empty",
    );
    assert_error(
        "[cgi.sandbox]\nnetwork = false\n",
        2,
        1,
        "cgi.sandbox.network",
        "unknown key",
    );
}

#[test]
fn pass_headers_are_header_names_kept_in_lower_case() {
    let cgi = ok("[cgi]\npass_headers = [\"Accept\", \"X-Request-Id\"]\n").cgi;
    assert_eq!(cgi.pass_headers, ["accept", "x-request-id"]);
    assert_error(
        "[cgi]\npass_headers = [\"Accept\", \"Bad Name\"]\n",
        2,
        27,
        "cgi.pass_headers",
        "\"Bad Name\" is not a header name (letters, digits and -)",
    );
}
