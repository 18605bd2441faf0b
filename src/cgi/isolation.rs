//! Isolation (SPEC §9): the profile a spawn helper applies to itself before it serves — who
//! it runs as, its sandbox, the limit on its user's processes — and then to each script it
//! starts (the other limits, niceness); the checks it makes of every program it is asked to
//! start; and what a script's end says about the limit that ended it.
//!
//! Why a helper per profile, confined as its scripts will be: identity, `no_new_privs`, the
//! Landlock domain and RLIMIT_NPROC pass to every child it starts, so they cost nothing per
//! spawn, and a helper can do nothing its scripts could not. The limits that cannot live on
//! the helper — CPU time (the helper's own would count), address space and open files (the
//! helper needs its own) — are set in each child between its vfork and its `execve`
//! ([`super::spawner`]'s launcher), so a script never runs without them (docs/isolation.md
//! has the measurements behind this choice).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use nix::unistd::{Gid, Uid};
use rustix::process::{Resource, Rlimit};
use serde::{Deserialize, Serialize};

use super::sandbox::{self, SandboxRules, Support};
use crate::config::{format_size, CgiConfig, Identity, Limits, RunAs};

/// Everything a spawn helper is, and checks: one per isolated route (per owner, on a
/// run-as-owner route), one for the server's own scripts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// What it serves, for messages: the route's prefix, or "scripts" for the plain one.
    pub(crate) name: String,
    /// Who the helper and its scripts run as; `None` in a run-as-owner template, which the
    /// supervisor completes per owner.
    pub(crate) identity: Option<Identity>,
    /// The lowest uid and gid an owner may have (run-as-owner).
    pub(crate) min_uid: u32,
    /// See `min_uid`.
    pub(crate) min_gid: u32,
    /// The limits of each script.
    pub(crate) limits: Limits,
    /// Niceness of each script.
    pub(crate) nice: i32,
    /// The sandbox, when the route has one.
    pub(crate) sandbox: Option<SandboxRules>,
    /// What it may start; `None` for the plain helper (anything the server asks: it could
    /// start it itself).
    pub(crate) programs: Option<Programs>,
    /// How strictly script files are checked.
    pub(crate) strict: Strict,
}

/// What a route's helper may start: scripts below its folders (or its one program), alone
/// or as the first argument of one of its interpreters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Programs {
    /// Canonical folders (a `cgi_dir`) or files (a `cgi_script` program).
    pub(crate) roots: Vec<PathBuf>,
    /// Interpreters as configured (a bare name or a path).
    pub(crate) interpreters: Vec<PathBuf>,
}

/// How script files are checked before they run (suEXEC's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Strict {
    /// The server's own identity: nothing beyond the usual.
    No,
    /// Another user: the script and its folder are writable by their owner alone.
    Foreign,
    /// The script's owner: as `Foreign`, and both belong to the user they run as.
    Owner,
}

/// Whether a route needs a profile of its own: another identity, a limit, a niceness, a
/// sandbox, or a core-dump limit unlike the server's (which scripts inherit).
pub(crate) fn needs_profile(cfg: &CgiConfig, server: &Identity, process_core: Option<u64>) -> bool {
    let other_user = match &cfg.run_as {
        RunAs::Server => false,
        RunAs::User(id) => id != server,
        RunAs::Owner => true,
    };
    other_user
        || cfg.limits.is_limiting()
        || cfg.limits.core != process_core
        || cfg.nice != 0
        || cfg.sandbox.enabled
}

impl Profile {
    /// The profile of the server's own scripts: its identity, nothing else.
    pub(crate) fn plain(server: &Identity) -> Profile {
        Profile {
            name: "scripts".to_string(),
            identity: Some(server.clone()),
            min_uid: 0,
            min_gid: 0,
            limits: Limits::default(),
            nice: 0,
            sandbox: None,
            programs: None,
            strict: Strict::No,
        }
    }

    /// The profile of a route (`prefix`) whose scripts live below `roots`.
    pub(crate) fn for_route(
        prefix: &str,
        cfg: &CgiConfig,
        roots: Vec<PathBuf>,
        server: &Identity,
    ) -> Profile {
        let (identity, strict) = match &cfg.run_as {
            RunAs::Server => (Some(server.clone()), Strict::No),
            RunAs::User(id) if id == server => (Some(id.clone()), Strict::No),
            RunAs::User(id) => (Some(id.clone()), Strict::Foreign),
            RunAs::Owner => (None, Strict::Owner),
        };
        let folders: Vec<PathBuf> = roots
            .iter()
            .map(|r| {
                if r.is_dir() {
                    r.clone()
                } else {
                    r.parent().unwrap_or(r).to_path_buf()
                }
            })
            .collect();
        let sandbox = cfg.sandbox.enabled.then(|| SandboxRules {
            read: folders
                .into_iter()
                .chain(interpreter_folders(&cfg.interpreters))
                .chain(cfg.sandbox.read.iter().cloned())
                .collect(),
            write: cfg.sandbox.write.clone(),
            tcp_connect: cfg.sandbox.tcp_connect,
            tcp_bind: cfg.sandbox.tcp_bind,
            best_effort: cfg.sandbox.best_effort,
        });
        Profile {
            name: prefix.to_string(),
            identity,
            min_uid: cfg.min_uid,
            min_gid: cfg.min_gid,
            limits: cfg.limits,
            nice: cfg.nice,
            sandbox,
            programs: Some(Programs {
                roots,
                interpreters: cfg.interpreters.iter().map(|(_, p)| p.clone()).collect(),
            }),
            strict,
        }
    }

    /// This template for scripts owned by `uid`: refused below `min_uid` or `min_gid`, or
    /// for a uid without an account.
    pub(crate) fn for_owner(&self, uid: u32) -> Result<Profile, String> {
        let identity = Identity::of_uid(uid)?;
        if uid < self.min_uid {
            return Err(format!("owner uid {uid} is below min_uid {}", self.min_uid));
        }
        if identity.gid < self.min_gid {
            return Err(format!(
                "owner {}'s gid {} is below min_gid {}",
                identity.user, identity.gid, self.min_gid
            ));
        }
        if identity.is_root() && self.limits.processes.is_some() {
            return Err("owner is root, whom limits.processes does not bind".to_string());
        }
        Ok(Profile {
            identity: Some(identity),
            ..self.clone()
        })
    }

    /// Whether this profile's identity is `server`'s (so the server can signal its scripts
    /// itself).
    pub(crate) fn is_identity_of(&self, server: &Identity) -> bool {
        self.identity
            .as_ref()
            .is_some_and(|id| id.uid == server.uid)
    }

    /// Become this profile (in a helper, before it serves): the sandbox's rules are built
    /// with the starting privileges, then the identity is taken for good, then the
    /// sandbox is entered (with `no_new_privs`). Returns how much of the sandbox the
    /// kernel enforces: 0 none (or none asked for), 1 part, 2 all.
    pub(crate) fn apply_to_self(&self) -> Result<u8, String> {
        let ruleset = self
            .sandbox
            .as_ref()
            .map(sandbox::build_ruleset)
            .transpose()?;
        if let Some(n) = self.limits.processes {
            // RLIMIT_NPROC counts the user's processes at each fork: set on the helper, it
            // bounds every script it starts, and its own spawns fail first (EAGAIN → 503).
            rustix::process::setrlimit(Resource::Nproc, rlimit(n, n))
                .map_err(|e| format!("setrlimit(RLIMIT_NPROC): {e}"))?;
        }
        if let Some(identity) = &self.identity {
            switch_identity(identity)?;
        }
        let Some(ruleset) = ruleset else {
            return Ok(0);
        };
        let best_effort = self.sandbox.as_ref().is_some_and(|s| s.best_effort);
        sandbox::enter(ruleset, best_effort)
    }

    /// Whether the helper may start `program` with `args`: a script below the profile's
    /// roots (directly, or as an interpreter's first argument), passing [`check_script`].
    pub(crate) fn check_program(&self, program: &Path, args: &[PathBuf]) -> Result<(), String> {
        let Some(programs) = &self.programs else {
            return Ok(());
        };
        let script = if programs.interpreters.iter().any(|i| i == program) {
            args.first()
                .map(PathBuf::as_path)
                .ok_or("an interpreter without a script")?
        } else {
            program
        };
        let real = script
            .canonicalize()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let inside = programs.roots.iter().any(|root| real.starts_with(root));
        if !inside {
            return Err(format!(
                "{} is not below this route's folder",
                real.display()
            ));
        }
        let uid = self.identity.as_ref().map_or(0, |id| id.uid);
        check_script(&real, self.strict, uid)
    }

    /// What `cgigate check` prints of this profile: who its scripts run as, what is
    /// refused, their limits and niceness, their sandbox (`landlock`: what this kernel
    /// enforces, known when some route has a sandbox).
    pub(crate) fn describe(&self, landlock: Option<Support>) -> Vec<String> {
        let who = match &self.identity {
            Some(id) => format!(
                "runs as {} (uid {}, gid {}, groups {})",
                id.user,
                id.uid,
                id.gid,
                if id.groups.is_empty() {
                    "none".to_string()
                } else {
                    id.groups
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                }
            ),
            None => format!(
                "runs as each script's owner (uid >= {}, gid >= {})",
                self.min_uid, self.min_gid
            ),
        };
        let refuses = match self.strict {
            Strict::No => "",
            Strict::Foreign => "; refuses a script or folder writable by others",
            Strict::Owner => {
                "; refuses a script or folder writable by others or owned by another user"
            }
        };
        let mut limits = describe_limits(&self.limits);
        let core = self.limits.core.map_or_else(
            || "core=unlimited".to_string(),
            |c| format!("core={}", format_size(c)),
        );
        limits = [limits, core]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut lines = vec![
            format!("{who}{refuses}"),
            format!("limits: {limits} nice={}", self.nice),
        ];
        match (&self.sandbox, landlock) {
            (Some(rules), Some(support)) => lines.extend(rules.describe(support)),
            _ => lines.push("sandbox: none".to_string()),
        }
        lines
    }

    /// The per-script limits, as (resource, soft, hard), and the niceness: what the helper
    /// sets in each child between its fork and its `execve`, so a script never runs an
    /// instruction without them.
    pub(crate) fn child_limits(&self) -> ChildLimits {
        use nix::sys::resource::Resource as R;
        let l = &self.limits;
        let mut rlimits = Vec::new();
        if let Some(cpu) = l.cpu {
            // The soft limit sends SIGXCPU, a named outcome; the hard one, a second later,
            // SIGKILL, for a script that ignores it.
            let soft = cpu.as_secs().max(1);
            rlimits.push((R::RLIMIT_CPU, soft, soft + 1));
        }
        let same = |r: R, n: Option<u64>| n.map(|n| (r, n, n));
        rlimits.extend(same(R::RLIMIT_AS, l.memory));
        rlimits.extend(same(R::RLIMIT_NOFILE, l.open_files));
        rlimits.extend(same(R::RLIMIT_FSIZE, l.file_size));
        rlimits.extend(same(R::RLIMIT_CORE, l.core));
        ChildLimits {
            rlimits,
            nice: self.nice,
        }
    }
}

/// What [`Profile::child_limits`] gives each script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChildLimits {
    /// (resource, soft, hard).
    pub(crate) rlimits: Vec<(nix::sys::resource::Resource, u64, u64)>,
    /// Added to the script's niceness; 0: left alone.
    pub(crate) nice: i32,
}

fn rlimit(soft: u64, hard: u64) -> Rlimit {
    Rlimit {
        current: Some(soft),
        maximum: Some(hard),
    }
}

/// `cpu=30s memory=512MiB …`: the limits that are set, but `core`.
pub(crate) fn describe_limits(l: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(cpu) = l.cpu {
        parts.push(format!("cpu={}s", cpu.as_secs()));
    }
    if let Some(bytes) = l.memory {
        parts.push(format!("memory={}", format_size(bytes)));
    }
    if let Some(n) = l.processes {
        parts.push(format!("processes={n}"));
    }
    if let Some(n) = l.open_files {
        parts.push(format!("open_files={n}"));
    }
    if let Some(bytes) = l.file_size {
        parts.push(format!("file_size={}", format_size(bytes)));
    }
    parts.join(" ")
}

/// The folders of interpreters configured by path (a bare name is found in `PATH`, below
/// the system folders).
fn interpreter_folders(interpreters: &[(String, PathBuf)]) -> impl Iterator<Item = PathBuf> + '_ {
    interpreters
        .iter()
        .filter(|(_, p)| p.is_absolute())
        .filter_map(|(_, p)| p.parent().map(Path::to_path_buf))
}

/// suEXEC's checks of a script about to run as another user: neither the script nor its
/// folder may be writable by anyone but its owner, and in owner mode both belong to the
/// user it runs as (`uid`).
pub(crate) fn check_script(script: &Path, strict: Strict, uid: u32) -> Result<(), String> {
    if strict == Strict::No {
        return Ok(());
    }
    let folder = script.parent().unwrap_or(Path::new("/"));
    for (what, path) in [("script", script), ("folder", folder)] {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{what} {} is writable by others (mode {:o})",
                path.display(),
                meta.mode() & 0o7777
            ));
        }
        if strict == Strict::Owner && meta.uid() != uid {
            return Err(format!(
                "{what} {} belongs to uid {}, the script runs as uid {uid}",
                path.display(),
                meta.uid()
            ));
        }
    }
    Ok(())
}

/// Take `identity` for good: supplementary groups, then gid, then uid (real, effective and
/// saved), verified by trying to switch back. Nothing to do when it is already ours.
pub(crate) fn switch_identity(identity: &Identity) -> Result<(), String> {
    let (uid, gid) = (Uid::from_raw(identity.uid), Gid::from_raw(identity.gid));
    if nix::unistd::getuid() == uid && nix::unistd::geteuid() == uid && nix::unistd::getgid() == gid
    {
        return Ok(());
    }
    let groups: Vec<Gid> = identity.groups.iter().copied().map(Gid::from_raw).collect();
    nix::unistd::setgroups(&groups).map_err(|e| {
        format!(
            "setgroups for {}: {e} (not started as root?)",
            identity.user
        )
    })?;
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| format!("setresgid({}): {e}", identity.gid))?;
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| format!("setresuid({}): {e}", identity.uid))?;
    if identity.uid != 0 && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err("switched to another user, yet could switch back to root".to_string());
    }
    Ok(())
}

/// The limit a script's end points at, when the kernel names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitHit {
    /// SIGXCPU.
    Cpu,
    /// SIGXFSZ.
    FileSize,
}

/// Which limit ended a script with `status`, if the kernel's signal says.
pub(crate) fn limit_hit(status: ExitStatus, limits: &Limits) -> Option<LimitHit> {
    match status.signal()? {
        s if s == libc_signal(nix::sys::signal::Signal::SIGXCPU) && limits.cpu.is_some() => {
            Some(LimitHit::Cpu)
        }
        s if s == libc_signal(nix::sys::signal::Signal::SIGXFSZ) && limits.file_size.is_some() => {
            Some(LimitHit::FileSize)
        }
        _ => None,
    }
}

fn libc_signal(s: nix::sys::signal::Signal) -> i32 {
    s as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    fn identity(uid: u32) -> Identity {
        Identity {
            user: format!("u{uid}"),
            uid,
            gid: uid,
            groups: vec![uid],
        }
    }

    #[test]
    fn a_route_needs_a_profile_for_anything_the_server_does_not_give_it() {
        let server = identity(1000);
        let mut cfg = CgiConfig::default();
        assert!(!needs_profile(&cfg, &server, Some(0)));
        assert!(
            needs_profile(&cfg, &server, None),
            "a core limit unlike the server's"
        );
        cfg.run_as = RunAs::User(server.clone());
        assert!(
            !needs_profile(&cfg, &server, Some(0)),
            "the server's own user"
        );
        cfg.run_as = RunAs::User(identity(2000));
        assert!(needs_profile(&cfg, &server, Some(0)));
        cfg.run_as = RunAs::Owner;
        assert!(needs_profile(&cfg, &server, Some(0)));
        let mut cfg = CgiConfig::default();
        cfg.limits.cpu = Some(Duration::from_secs(1));
        assert!(needs_profile(&cfg, &server, Some(0)));
        let cfg = CgiConfig {
            nice: 5,
            ..CgiConfig::default()
        };
        assert!(needs_profile(&cfg, &server, Some(0)));
        let mut cfg = CgiConfig::default();
        cfg.sandbox.enabled = true;
        assert!(needs_profile(&cfg, &server, Some(0)));
    }

    #[test]
    fn owners_below_the_minimum_are_refused() {
        let cfg = CgiConfig {
            run_as: RunAs::Owner,
            ..CgiConfig::default()
        };
        let template = Profile::for_route("/u/", &cfg, vec![PathBuf::from("/tmp")], &identity(0));
        assert_eq!(template.identity, None);
        assert_eq!(template.strict, Strict::Owner);
        let root = template.for_owner(0).unwrap_err();
        assert!(root.contains("below min_uid 100"), "{root}");
        let nobody = template.for_owner(65534).unwrap();
        assert_eq!(nobody.identity.unwrap().uid, 65534);
        assert!(template.for_owner(4_000_000).is_err(), "no account");
        // Root, allowed by the minimums, is still no owner for a processes limit.
        let mut cfg = cfg;
        (cfg.min_uid, cfg.min_gid) = (0, 0);
        let open = Profile::for_route("/u/", &cfg, vec![PathBuf::from("/tmp")], &identity(0));
        assert!(open.for_owner(0).is_ok());
        cfg.limits.processes = Some(10);
        let limited = Profile::for_route("/u/", &cfg, vec![PathBuf::from("/tmp")], &identity(0));
        let refused = limited.for_owner(0).unwrap_err();
        assert!(refused.contains("does not bind"), "{refused}");
    }

    #[test]
    fn strict_checks_refuse_what_others_may_write() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cgi");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = folder.join("x");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let me = nix::unistd::getuid().as_raw();
        assert!(check_script(&script, Strict::Foreign, me).is_ok());
        assert!(check_script(&script, Strict::Owner, me).is_ok());
        let other = check_script(&script, Strict::Owner, me + 1).unwrap_err();
        assert!(other.contains("belongs to uid"), "{other}");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o775)).unwrap();
        let writable = check_script(&script, Strict::Foreign, me).unwrap_err();
        assert!(
            writable.contains("script") && writable.contains("writable by others"),
            "{writable}"
        );
        assert!(check_script(&script, Strict::No, me).is_ok());
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        let folder_writable = check_script(&script, Strict::Foreign, me).unwrap_err();
        assert!(folder_writable.starts_with("folder"), "{folder_writable}");
    }

    #[test]
    fn programs_must_be_below_the_route() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let script = root.join("x.py");
        std::fs::write(&script, "print()\n").unwrap();
        let mut cfg = CgiConfig::default();
        cfg.limits.cpu = Some(Duration::from_secs(5));
        let p = Profile::for_route("/r/", &cfg, vec![root.clone()], &identity(0));
        assert!(p.check_program(&script, &[]).is_ok());
        assert!(p
            .check_program(Path::new("python3"), std::slice::from_ref(&script))
            .is_ok());
        let outside = p.check_program(Path::new("/bin/sh"), &[]).unwrap_err();
        assert!(outside.contains("not below"), "{outside}");
        let via = p.check_program(Path::new("python3"), &[PathBuf::from("/etc/passwd")]);
        assert!(via.is_err());
        assert!(Profile::plain(&identity(0))
            .check_program(Path::new("/bin/sh"), &[])
            .is_ok());
    }

    #[test]
    fn the_signal_names_the_limit() {
        let limits = Limits {
            cpu: Some(Duration::from_secs(1)),
            file_size: Some(1),
            ..Limits::default()
        };
        let by = |sig: i32| ExitStatus::from_raw(sig);
        assert_eq!(limit_hit(by(24), &limits), Some(LimitHit::Cpu)); // SIGXCPU
        assert_eq!(limit_hit(by(25), &limits), Some(LimitHit::FileSize)); // SIGXFSZ
        assert_eq!(limit_hit(by(9), &limits), None);
        assert_eq!(limit_hit(ExitStatus::from_raw(1 << 8), &limits), None);
        assert_eq!(
            limit_hit(by(24), &Limits::default()),
            None,
            "no limit, no claim"
        );
        assert_eq!(describe_limits(&limits), "cpu=1s file_size=1B");
    }
}
