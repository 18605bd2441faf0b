/* slow CGI: the header block and a first line in one write, 1 s of silence, a second line.
 * The first line carries the wall-clock time (CLOCK_REALTIME, seconds.nanoseconds) of that
 * write, so a client on the same machine measures how long the host held it. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    char buf[256];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(buf, sizeof buf, "Content-Type: text/plain\r\n\r\nfirst %lld.%09ld\n",
                     (long long)ts.tv_sec, ts.tv_nsec);
    if (write(1, buf, (size_t)n) != n) return 1;
    sleep(1);
    static const char second[] = "second\n";
    if (write(1, second, sizeof second - 1) != (ssize_t)(sizeof second - 1)) return 1;
    return 0;
}
