/* big CGI: 1 MiB of output (no Content-Length: the host frames it), in 64 KiB writes. */
#include <string.h>
#include <unistd.h>
#include <errno.h>

static int write_all(const char *p, size_t n) {
    while (n) {
        ssize_t w = write(1, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

int main(void) {
    static char block[65536];
    memset(block, 'x', sizeof block);
    for (size_t i = 63; i < sizeof block; i += 64) block[i] = '\n';
    static const char head[] = "Content-Type: text/plain\r\n\r\n";
    if (write_all(head, sizeof head - 1)) return 1;
    for (int i = 0; i < 16; i++)
        if (write_all(block, sizeof block)) return 1;
    return 0;
}
