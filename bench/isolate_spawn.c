/* bench/isolate_spawn.c — what an isolated spawn costs against a plain one, from a small
 * single-threaded parent (as cgigate's spawn helper is): per run a pipe, a spawn with
 * stdout on the pipe, read to EOF, waitpid. docs/isolation.md quotes its figures; run it
 * with bench/isolate_spawn.sh (as root: the isolated modes switch to UID:GID).
 *   isolate_spawn MODE SECONDS PROGRAM [UID GID]
 * posix: posix_spawn, nothing else (today's plain spawn).
 * posix-confined: the first design. The parent confines itself once, as a helper does
 *   (RLIMIT_NPROC, setgroups/setgid/setuid, PR_SET_NO_NEW_PRIVS, landlock_restrict_self),
 *   then per run posix_spawn and prlimit (CPU, AS, NOFILE, FSIZE, CORE) + setpriority on
 *   the child just started (which leaves the program running unlimited until then).
 * vfork-confined: what cgigate does. The parent confined once, as above; per run
 *   clone(CLONE_VM|CLONE_VFORK), and in the child dup2, setpgid, setrlimit (CPU, AS,
 *   NOFILE, FSIZE, CORE), setpriority, the signal mask, execve.
 * fork: fork + dup2 + execve.
 * fork-isolated: the other design: fork, then in the child setrlimit (CPU, AS, NPROC,
 *   NOFILE, FSIZE, CORE), setpriority, setgroups/setgid/setuid, PR_SET_NO_NEW_PRIVS,
 *   landlock_restrict_self, execve.
 * The Landlock ruleset: read /usr /lib /etc and the program's folder; write /tmp and
 * /dev/null; TCP: none. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
/* The headers of this Debian predate Landlock's network rules (ABI 4). */
struct ruleset_attr_v4 { __u64 handled_access_fs; __u64 handled_access_net; };
#define NET_BIND_TCP (1ULL << 0)
#define NET_CONNECT_TCP (1ULL << 1)
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>

static char *env[] = {"GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET", "PATH=/usr/bin:/bin", NULL};
static int ruleset = -1; static uid_t uid; static gid_t gid;

static double now(void){ struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec + t.tv_nsec/1e9; }

static void add_path(int rs, const char *p, __u64 access){
    struct landlock_path_beneath_attr a = { .allowed_access = access, .parent_fd = open(p, O_PATH|O_CLOEXEC) };
    if (a.parent_fd < 0) { perror(p); exit(1); }
    if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &a, 0)) { perror("add_rule"); exit(1); }
    close(a.parent_fd);
}

static int make_ruleset(const char *dir){
    __u64 fs = (1ULL<<16)-1; /* every fs right of ABI >= 5 */
    struct ruleset_attr_v4 attr = { .handled_access_fs = fs,
        .handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP };
    int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (rs < 0) { perror("create_ruleset"); exit(1); }
    __u64 read = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    add_path(rs, "/usr", read); add_path(rs, "/lib", read); add_path(rs, "/etc", read); add_path(rs, dir, read);
    add_path(rs, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE|LANDLOCK_ACCESS_FS_WRITE_FILE);
    add_path(rs, "/tmp", fs);
    return rs;
}

static void limit(int res, rlim_t soft, rlim_t hard){ struct rlimit r = {soft, hard}; if (setrlimit(res,&r)) _exit(120); }

struct vchild { int out; const char *prog; char **argv; };
static char vstack[64 * 1024];
static int vfork_child(void *arg){
    struct vchild *c = arg; sigset_t none; sigemptyset(&none);
    dup2(c->out, 1); setpgid(0, 0);
    limit(RLIMIT_CPU, 30, 31); limit(RLIMIT_AS, 512<<20, 512<<20); limit(RLIMIT_NOFILE, 256, 256);
    limit(RLIMIT_FSIZE, 1<<30, 1<<30); limit(RLIMIT_CORE, 0, 0);
    setpriority(PRIO_PROCESS, 0, 5); signal(SIGPIPE, SIG_DFL); sigprocmask(SIG_SETMASK, &none, NULL);
    execve(c->prog, c->argv, env); _exit(127);
}

static long run(const char *mode, const char *prog){
    int fds[2]; if (pipe2(fds, O_CLOEXEC)) return -1;
    char *argv[] = {(char*)prog, NULL}; pid_t pid;
    if (!strcmp(mode, "vfork-confined")) {
        struct vchild c = { fds[1], prog, argv };
        pid = clone(vfork_child, vstack + sizeof vstack, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
        if (pid < 0) return -1;
    } else if (!strncmp(mode,"posix",5)) {
        posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawnattr_t at; posix_spawnattr_init(&at);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
        int rc = posix_spawn(&pid, prog, &fa, &at, argv, env);
        posix_spawn_file_actions_destroy(&fa); posix_spawnattr_destroy(&at);
        if (rc) return -1;
        if (!strcmp(mode, "posix-confined")) {
            struct rlimit cpu = {30, 31}, as = {512<<20, 512<<20}, nofile = {256, 256},
                fsize = {1<<30, 1<<30}, core = {0, 0};
            if (prlimit(pid, RLIMIT_CPU, &cpu, NULL) || prlimit(pid, RLIMIT_AS, &as, NULL)
                || prlimit(pid, RLIMIT_NOFILE, &nofile, NULL) || prlimit(pid, RLIMIT_FSIZE, &fsize, NULL)
                || prlimit(pid, RLIMIT_CORE, &core, NULL) || setpriority(PRIO_PROCESS, pid, 5)) {
                perror("prlimit"); return -1;
            }
        }
    } else {
        pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            dup2(fds[1], 1);
            int all = !strcmp(mode, "fork-isolated");
            setpgid(0,0);
            if (all || !strcmp(mode, "fork-limits")) {
                limit(RLIMIT_CPU, 30, 31); limit(RLIMIT_AS, 512<<20, 512<<20); limit(RLIMIT_NOFILE, 256, 256);
                limit(RLIMIT_FSIZE, 1<<30, 1<<30); limit(RLIMIT_CORE, 0, 0); limit(RLIMIT_NPROC, 64, 64);
                setpriority(PRIO_PROCESS, 0, 5);
            }
            if (all || !strcmp(mode, "fork-uid"))
                if (setgroups(1, &gid) || setgid(gid) || setuid(uid)) _exit(121);
            if (all || !strcmp(mode, "fork-landlock")) {
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(122);
                if (syscall(SYS_landlock_restrict_self, ruleset, 0)) _exit(123);
            }
            execve(prog, argv, env); _exit(127);
        }
    }
    close(fds[1]);
    char buf[4096]; long total = 0; ssize_t r;
    while ((r = read(fds[0], buf, sizeof buf)) > 0) total += r;
    close(fds[0]);
    int st; waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "child status %d\n", st); return -1; }
    return total;
}

int main(int argc, char **argv){
    if (argc < 4) return 2;
    const char *mode = argv[1]; double secs = atof(argv[2]); const char *prog = argv[3];
    uid = argc > 4 ? atoi(argv[4]) : 65534; gid = argc > 5 ? atoi(argv[5]) : 65534;
    char *d = strdup(prog); ruleset = make_ruleset(dirname(d));
    if (!strcmp(mode, "posix-confined") || !strcmp(mode, "vfork-confined")) {
        struct rlimit nproc = {4096, 4096};
        if (setrlimit(RLIMIT_NPROC, &nproc) || setgroups(1, &gid) || setgid(gid) || setuid(uid)
            || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_landlock_restrict_self, ruleset, 0)) {
            perror("confining the parent"); return 1;
        }
    }
    long n = 0; double end = now() + secs, start = now();
    while (now() < end) { if (run(mode, prog) < 0) { fprintf(stderr, "failed\n"); return 1; } n++; }
    double el = now() - start;
    struct rusage self, kids; getrusage(RUSAGE_SELF, &self); getrusage(RUSAGE_CHILDREN, &kids);
    double ps = self.ru_utime.tv_sec*1e6 + self.ru_utime.tv_usec + self.ru_stime.tv_sec*1e6 + self.ru_stime.tv_usec;
    double cs = kids.ru_utime.tv_sec*1e6 + kids.ru_utime.tv_usec + kids.ru_stime.tv_sec*1e6 + kids.ru_stime.tv_usec;
    printf("mode=%s spawns=%ld rate=%.0f/s wall_us=%.1f parent_cpu_us=%.1f child_cpu_us=%.1f\n", mode, n, n/el, el*1e6/n, ps/n, cs/n);
    return 0;
}
