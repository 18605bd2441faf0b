/* spawn.c — the raw ceiling for a CGI host on this machine: spawn a program in a loop from
 * W workers (threads or processes), each doing what a CGI host must do per request at the
 * least — a pipe, posix_spawn with stdout on the pipe, read to EOF, waitpid — and print
 * spawns/s. No HTTP, no parsing: a server that hosts the same program cannot beat this.
 *
 *   spawn [-w WORKERS] [-d SECONDS] [-m thread|process] [-f FDS] PROGRAM
 *
 * Defaults: 2 workers, 5 s, processes. -f FDS first opens FDS extra close-on-exec
 * descriptors in each worker, as a server holding that many connections has: the kernel
 * copies the descriptor table at each spawn and closes them at exec. Output: one line
 *   spawns=N seconds=S rate=R workers=W mode=M bytes_per_spawn=B parent_us_per_spawn=P
 *   child_us_per_spawn=C
 * P is the CPU (user + system) the spawning workers used per spawn, C the programs' own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *prog;
static double seconds = 5;
static int devnull;
static char *child_env[] = {
    "GATEWAY_INTERFACE=CGI/1.1", "REQUEST_METHOD=GET", "QUERY_STRING=",
    "SERVER_PROTOCOL=HTTP/1.1", "PATH=/usr/local/bin:/usr/bin:/bin", NULL};

/* cpu_us: the worker's own CPU (user + system); child_us: its reaped children's. */
struct result { long spawns; long bytes; int failed; long cpu_us; long child_us; };

static long rusage_us(int who) {
    struct rusage ru;
    if (getrusage(who, &ru) != 0) return 0;
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One CGI-like run of PROGRAM; returns the number of bytes it wrote, -1 on failure. */
static long run_once(void) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    char *argv[] = {(char *)prog, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, prog, &fa, NULL, argv, child_env);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) { close(fds[0]); errno = rc; return -1; }
    char buf[65536];
    long total = 0;
    for (;;) {
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        total += r;
    }
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return total;
}

static int extra_fds;

static void worker(struct result *res) {
    for (int i = 0; i < extra_fds; i++)
        if (fcntl(devnull, F_DUPFD_CLOEXEC, 0) < 0) { perror("F_DUPFD_CLOEXEC"); res->failed = 1; return; }
    double end = now() + seconds;
    while (now() < end) {
        long b = run_once();
        if (b < 0) { res->failed = 1; perror("spawn"); return; }
        res->spawns++;
        res->bytes += b;
    }
    /* Process workers only: a thread's RUSAGE_SELF would be the whole process's. */
    res->cpu_us = rusage_us(RUSAGE_SELF);
    res->child_us = rusage_us(RUSAGE_CHILDREN);
}

static void *thread_main(void *arg) { worker(arg); return NULL; }

int main(int argc, char **argv) {
    int workers = 2, opt;
    const char *mode = "process";
    while ((opt = getopt(argc, argv, "w:d:m:f:")) != -1) {
        switch (opt) {
        case 'w': workers = atoi(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 'm': mode = optarg; break;
        case 'f': extra_fds = atoi(optarg); break;
        default: goto usage;
        }
    }
    if (optind != argc - 1 || workers < 1 || workers > 256 || seconds <= 0 ||
        extra_fds < 0 || (strcmp(mode, "thread") && strcmp(mode, "process")))
        goto usage;
    prog = argv[optind];
    if (access(prog, X_OK) != 0) { fprintf(stderr, "spawn: %s: %s\n", prog, strerror(errno)); return 2; }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) { perror("/dev/null"); return 2; }

    /* Results live in shared memory so process workers can report them. */
    struct result *res = mmap(NULL, sizeof *res * workers, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) { perror("mmap"); return 2; }
    memset(res, 0, sizeof *res * workers);

    double t0 = now();
    if (!strcmp(mode, "thread")) {
        pthread_t th[256];
        for (int i = 0; i < workers; i++) pthread_create(&th[i], NULL, thread_main, &res[i]);
        for (int i = 0; i < workers; i++) pthread_join(th[i], NULL);
    } else {
        pid_t pids[256];
        for (int i = 0; i < workers; i++) {
            pids[i] = fork();
            if (pids[i] < 0) { perror("fork"); return 2; }
            if (pids[i] == 0) { worker(&res[i]); _exit(0); }
        }
        for (int i = 0; i < workers; i++) {
            int st;
            while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR) {}
        }
    }
    double elapsed = now() - t0;
    long spawns = 0, bytes = 0, cpu_us = 0, child_us = 0;
    for (int i = 0; i < workers; i++) {
        if (res[i].failed) { fprintf(stderr, "spawn: worker %d failed\n", i); return 1; }
        spawns += res[i].spawns;
        bytes += res[i].bytes;
        cpu_us += res[i].cpu_us;
        child_us += res[i].child_us;
    }
    if (!strcmp(mode, "thread")) { /* one process: its own and its children's, all workers */
        cpu_us = rusage_us(RUSAGE_SELF);
        child_us = rusage_us(RUSAGE_CHILDREN);
    }
    printf("spawns=%ld seconds=%.3f rate=%.1f workers=%d mode=%s extra_fds=%d bytes_per_spawn=%ld "
           "parent_us_per_spawn=%.1f child_us_per_spawn=%.1f\n",
           spawns, elapsed, spawns / elapsed, workers, mode, extra_fds, spawns ? bytes / spawns : 0,
           spawns ? (double)cpu_us / spawns : 0, spawns ? (double)child_us / spawns : 0);
    return 0;
usage:
    fprintf(stderr, "usage: spawn [-w WORKERS] [-d SECONDS] [-m thread|process] [-f FDS] PROGRAM\n");
    return 2;
}
