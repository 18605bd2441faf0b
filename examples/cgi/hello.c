/* A tiny compiled CGI: the integration tests build it with cc; the benchmarks use it too. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *query = getenv("QUERY_STRING");
    printf("Content-Type: text/plain\r\n\r\nHello from C, query=%s\n", query ? query : "");
    return 0;
}
