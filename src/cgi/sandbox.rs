//! The sandbox of a route (SPEC §9 `sandbox`), on Landlock: which paths a script may read
//! and write, whether it may use TCP, what this kernel can enforce of that, and entering it.
//!
//! A helper builds its ruleset while it still has the privileges it started with (so it can
//! open every folder it names), takes its identity, then enters the sandbox; its scripts
//! inherit the domain and `no_new_privs` through the vfork that starts them.

use std::path::PathBuf;

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, ABI,
};
use serde::{Deserialize, Serialize};

/// The Landlock ABI whose rights these rules are written for (Linux 6.15); on an older
/// kernel the crate enforces what it can and says so.
const LANDLOCK_ABI: ABI = ABI::V7;

/// What scripts may read on every sandboxed route, beyond their own folder: the system's
/// programs and libraries, and the few files under `/etc` that the C library and the common
/// interpreters read. Not `/etc` as a whole: it holds secrets that a script run as root
/// could otherwise read. Not `/proc`: through it a script could read the environment of
/// every process of its user, the server's included (Landlock refuses `/proc/PID/mem`
/// outside the sandbox, but not `/proc/PID/environ`: measured on Linux 6.18); a route whose
/// programs need it lists it in `read`.
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/locale.alias",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/gitconfig",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
];
/// Folders under `/etc` that interpreters read their settings from (`/etc/php`,
/// `/etc/perl`, `/etc/python3.11` …), matched by the start of their name.
const SYSTEM_READ_ETC_PREFIXES: &[&str] = &["php", "perl", "python"];
/// What scripts may write on every sandboxed route.
const SYSTEM_WRITE: &[&str] = &["/dev/null"];

/// A route's sandbox as the helper applies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SandboxRules {
    /// Read and execute, beyond [`SYSTEM_READ`].
    pub(crate) read: Vec<PathBuf>,
    /// Everything.
    pub(crate) write: Vec<PathBuf>,
    /// Outgoing TCP allowed.
    pub(crate) tcp_connect: bool,
    /// Binding TCP ports allowed.
    pub(crate) tcp_bind: bool,
    /// Run with less (or none) where the kernel cannot enforce it.
    pub(crate) best_effort: bool,
}

/// The Landlock ruleset of a sandbox, with every path that exists on this system.
pub(crate) fn build_ruleset(rules: &SandboxRules) -> Result<RulesetCreated, String> {
    let fail = |e: landlock::RulesetError| format!("Landlock: {e}");
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .map_err(fail)?;
    let mut net = BitFlags::<AccessNet>::empty();
    if !rules.tcp_connect {
        net |= AccessNet::ConnectTcp;
    }
    if !rules.tcp_bind {
        net |= AccessNet::BindTcp;
    }
    if !net.is_empty() {
        // Without a kernel that enforces it, "no TCP" would be a promise not kept.
        let level = if rules.best_effort {
            CompatLevel::BestEffort
        } else {
            CompatLevel::HardRequirement
        };
        ruleset = ruleset
            .set_compatibility(level)
            .handle_access(net)
            .map_err(|e| format!("Landlock cannot refuse TCP here ({e}); set sandbox.best_effort = true to run without that rule"))?
            .set_compatibility(CompatLevel::BestEffort);
    }
    let mut created = ruleset.create().map_err(fail)?;
    let read = AccessFs::from_read(LANDLOCK_ABI);
    let all = AccessFs::from_all(LANDLOCK_ABI);
    for (path, access) in sandbox_paths(rules, read, all) {
        let Ok(fd) = PathFd::new(&path) else {
            continue; // not on this system (lib32, a missing /etc file)
        };
        let access = if path.is_dir() {
            access
        } else {
            access & AccessFs::from_file(LANDLOCK_ABI)
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("Landlock rule for {}: {e}", path.display()))?;
    }
    Ok(created)
}

/// Every path of a sandbox with its rights: the system's, the route's reads, its writes.
fn sandbox_paths(
    rules: &SandboxRules,
    read: BitFlags<AccessFs>,
    all: BitFlags<AccessFs>,
) -> Vec<(PathBuf, BitFlags<AccessFs>)> {
    let etc = std::fs::read_dir("/etc")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                SYSTEM_READ_ETC_PREFIXES
                    .iter()
                    .any(|pre| n.starts_with(pre))
            })
        });
    SYSTEM_READ
        .iter()
        .map(PathBuf::from)
        .chain(etc)
        .chain(rules.read.iter().cloned())
        .map(|p| (p, read))
        .chain(
            SYSTEM_WRITE
                .iter()
                .map(PathBuf::from)
                .chain(rules.write.iter().cloned())
                .map(|p| (p, all)),
        )
        .collect()
}

/// How much of a sandbox this kernel enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Support {
    /// Filesystem rules: all of ours, part of them (an older ABI: reads and writes, not
    /// every right such as truncation), or none (no Landlock).
    pub(crate) files: Level,
    /// TCP connect and bind rules (ABI 4, Linux 6.7).
    pub(crate) tcp: bool,
}

/// How much of a set of rules the kernel enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// None of them.
    None,
    /// Some.
    Partial,
    /// All.
    Full,
}

/// What this kernel enforces, found by creating (never entering) rulesets that demand it.
pub(crate) fn support() -> Support {
    let files = |abi: ABI| {
        Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))
            .and_then(Ruleset::create)
            .is_ok()
    };
    let tcp = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessNet::from_all(ABI::V4))
        .and_then(Ruleset::create)
        .is_ok();
    let files = if files(LANDLOCK_ABI) {
        Level::Full
    } else if files(ABI::V1) {
        Level::Partial
    } else {
        Level::None
    };
    Support { files, tcp }
}

impl SandboxRules {
    /// Why a route with these rules cannot start on a kernel with `support`: no Landlock,
    /// or TCP rules asked for and not enforceable, unless the route is best-effort.
    pub(crate) fn refusal(&self, support: Support) -> Option<String> {
        if self.best_effort {
            return None;
        }
        if support.files == Level::None {
            return Some(
                "sandbox: this kernel has no Landlock (not built in, or not enabled at boot: \
                 add lsm=landlock); set sandbox.best_effort = true to run this route \
                 unsandboxed"
                    .to_string(),
            );
        }
        if (!self.tcp_connect || !self.tcp_bind) && !support.tcp {
            return Some(
                "sandbox: this kernel's Landlock cannot refuse TCP (it needs Linux 6.7); allow \
                 tcp_connect and tcp_bind, or set sandbox.best_effort = true"
                    .to_string(),
            );
        }
        None
    }

    /// What `cgigate check` prints: what scripts may read and write beyond the system's
    /// files, the TCP rules, and what this kernel enforces of it all.
    pub(crate) fn describe(&self, support: Support) -> Vec<String> {
        // What every sandbox has, then the route's own paths.
        let list = |always: &str, paths: &[PathBuf]| {
            std::iter::once(always.to_string())
                .chain(paths.iter().map(|p| p.display().to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let allowed = |yes: bool| if yes { "allowed" } else { "refused" };
        let enforced = match (support.files, self.best_effort) {
            (Level::Full, _) => "enforced by Landlock",
            (Level::Partial, _) => "enforced by Landlock, in part (an older kernel ABI)",
            (Level::None, true) => "NOT enforced: no Landlock on this kernel (best_effort)",
            (Level::None, false) => "cannot start: no Landlock on this kernel",
        };
        let tcp_enforced = if (self.tcp_connect && self.tcp_bind) || support.tcp {
            ""
        } else {
            " (not enforced on this kernel)"
        };
        vec![
            format!("sandbox: {enforced}; no_new_privs"),
            format!(
                "  read: {}",
                list("the system's libraries and interpreters", &self.read)
            ),
            format!("  write: {}", list("/dev/null", &self.write)),
            format!(
                "  tcp: connect {}, bind {}{tcp_enforced}",
                allowed(self.tcp_connect),
                allowed(self.tcp_bind)
            ),
        ]
    }
}

/// Enter the sandbox `ruleset` (after the identity switch), with `no_new_privs`. Returns
/// how much the kernel enforces: 0 none, 1 part, 2 all; none is an error unless the route
/// is `best_effort`.
pub(crate) fn enter(ruleset: RulesetCreated, best_effort: bool) -> Result<u8, String> {
    let status = ruleset
        .restrict_self()
        .map_err(|e| format!("entering the Landlock sandbox: {e}"))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(2),
        RulesetStatus::PartiallyEnforced => Ok(1),
        RulesetStatus::NotEnforced if best_effort => Ok(0),
        RulesetStatus::NotEnforced => Err(
            "this kernel does not enforce Landlock (set sandbox.best_effort = true to run this \
             route unsandboxed)"
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn rules() -> SandboxRules {
        SandboxRules {
            read: vec![PathBuf::from("/srv/cgi")],
            write: vec![PathBuf::from("/srv/spool")],
            tcp_connect: true,
            tcp_bind: true,
            best_effort: false,
        }
    }

    const FULL: Support = Support {
        files: Level::Full,
        tcp: true,
    };
    const NONE: Support = Support {
        files: Level::None,
        tcp: false,
    };
    const OLD: Support = Support {
        files: Level::Partial,
        tcp: false,
    };

    #[test]
    fn a_sandbox_the_kernel_cannot_enforce_refuses_to_start_unless_best_effort() {
        let mut r = rules();
        assert_eq!(r.refusal(FULL), None);
        assert!(r.refusal(NONE).unwrap().contains("no Landlock"));
        assert_eq!(r.refusal(OLD), None, "reads and writes are enforced");
        r.tcp_connect = false;
        assert!(r.refusal(OLD).unwrap().contains("cannot refuse TCP"));
        assert_eq!(r.refusal(FULL), None);
        r.best_effort = true;
        assert_eq!(r.refusal(NONE), None);
        assert_eq!(r.refusal(OLD), None);
    }

    #[test]
    fn the_description_says_what_is_enforced() {
        let mut r = rules();
        r.tcp_connect = false;
        let full = r.describe(FULL).join("\n");
        assert!(
            full.starts_with("sandbox: enforced by Landlock; no_new_privs"),
            "{full}"
        );
        assert!(full.contains("read: the system's libraries and interpreters, /srv/cgi"));
        assert!(full.contains("write: /dev/null, /srv/spool"));
        assert!(
            full.ends_with("tcp: connect refused, bind allowed"),
            "{full}"
        );
        r.best_effort = true;
        let none = r.describe(NONE).join("\n");
        assert!(none.contains("NOT enforced"), "{none}");
        assert!(none.contains("(not enforced on this kernel)"), "{none}");
    }

    #[test]
    fn every_listed_path_gets_its_rights_and_the_system_is_read_only() {
        let r = rules();
        let read = AccessFs::from_read(LANDLOCK_ABI);
        let all = AccessFs::from_all(LANDLOCK_ABI);
        let paths = sandbox_paths(&r, read, all);
        let rights = |p: &str| {
            paths
                .iter()
                .filter(|(q, _)| q == Path::new(p))
                .map(|(_, a)| *a)
                .collect::<Vec<_>>()
        };
        assert_eq!(rights("/usr"), [read]);
        assert_eq!(rights("/srv/cgi"), [read]);
        assert_eq!(rights("/srv/spool"), [all]);
        assert_eq!(rights("/dev/null"), [all]);
        assert!(rights("/etc").is_empty(), "not /etc as a whole");
        assert!(rights("/etc/shadow").is_empty());
    }

    #[test]
    fn support_is_found_without_entering_a_sandbox() {
        let found = support();
        // Still unconfined: a file outside every list is readable.
        assert!(std::fs::metadata("/proc/self/status").is_ok());
        if found.tcp {
            assert_ne!(found.files, Level::None, "TCP rules come with file rules");
        }
    }
}
