/* echo CGI: reads the request body from stdin and writes it back.
 * With CONTENT_LENGTH it reads exactly that many bytes, without it (a chunked upload some
 * hosts pass on de-chunked and unsized) it reads to EOF. The reply declares its length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

int main(void) {
    const char *cl = getenv("CONTENT_LENGTH");
    long want = (cl && *cl) ? atol(cl) : -1;
    size_t cap = want > 0 ? (size_t)want : 1 << 16, len = 0;
    char *buf = malloc(cap ? cap : 1);
    if (!buf) return 1;
    for (;;) {
        if (want >= 0 && len >= (size_t)want) break;
        if (len == cap) {
            cap *= 2;
            char *n = realloc(buf, cap);
            if (!n) return 1;
            buf = n;
        }
        ssize_t r = read(0, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    char head[128];
    int hl = snprintf(head, sizeof head,
                      "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", len);
    fwrite(head, 1, (size_t)hl, stdout);
    fwrite(buf, 1, len, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
