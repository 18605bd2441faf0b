/*
 * hello.c - the example C plugin (see include/cgigate_plugin.h).
 * Build: cc -shared -fPIC -I include -o libhello_c.so examples/plugins/c/hello.c
 *
 * What it does depends on the query string:
 *   vars (or other)  print some server variables, plugin_config and the body length
 *   count=N          stream "count 1" .. "count N" (N <= 100), one line every 100 ms
 *   fail             fail before sending anything (the server answers 500)
 *   zero             write 0 bytes (which does nothing), then send a 201 head: it works
 */
#define _POSIX_C_SOURCE 200809L /* for nanosleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgigate_plugin.h"

#define TEXT_PLAIN "Content-Type: text/plain\r\n"

/* plugin_config, NUL-terminated. Written by init only: handle() threads just read it. */
static char *config;

static int32_t hello_init(const char *cfg, size_t len, char *err, size_t err_len)
{
    if (len == 4 && memcmp(cfg, "fail", 4) == 0) {
        snprintf(err, err_len, "hello_c: plugin_config must not be \"fail\"");
        return CGIGATE_ERROR;
    }
    config = malloc(len + 1); /* cfg is not NUL-terminated and dies with this call */
    if (config == NULL) {
        snprintf(err, err_len, "hello_c: out of memory");
        return CGIGATE_ERROR;
    }
    if (len > 0)
        memcpy(config, cfg, len);
    config[len] = '\0';
    return CGIGATE_OK;
}

static void hello_terminate(void)
{
    fprintf(stderr, "hello_c: terminate\n");
    free(config);
    config = NULL;
}

/* A server variable as a new NUL-terminated string ("" if not set), or NULL on error. */
static char *get_var(cgigate_request *r, const char *name)
{
    size_t len = 64;
    char *value = malloc(len);
    int32_t rc = value ? r->get_var(r->server, name, value, &len) : CGIGATE_ERROR;
    if (rc == CGIGATE_E_TOO_SMALL) { /* len is now the length needed, without the NUL */
        free(value);
        len += 1;
        value = malloc(len);
        rc = value ? r->get_var(r->server, name, value, &len) : CGIGATE_ERROR;
    }
    if (rc == CGIGATE_E_NOT_FOUND) {
        value[0] = '\0';
        rc = CGIGATE_OK;
    }
    if (rc != CGIGATE_OK) {
        free(value);
        return NULL;
    }
    return value;
}

/* Writes "name=value\n" in one write; returns write's status. */
static int32_t write_line(cgigate_request *r, const char *name, const char *value)
{
    size_t len = strlen(name) + 1 + strlen(value) + 1;
    char *line = malloc(len + 1);
    if (line == NULL)
        return CGIGATE_ERROR;
    snprintf(line, len + 1, "%s=%s\n", name, value);
    int32_t rc = r->write(r->server, line, len);
    free(line);
    return rc;
}

static int32_t print_vars(cgigate_request *r)
{
    static const char *const names[] = {"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO",
                                        "QUERY_STRING",   "REMOTE_ADDR", "HTTP_HOST"};
    char buf[4096];
    int64_t n, body = 0;
    while ((n = r->read_body(r->server, buf, sizeof buf)) > 0)
        body += n;
    if (n < 0)
        return CGIGATE_ERROR;

    int32_t rc = r->send_headers(r->server, 200, TEXT_PLAIN, strlen(TEXT_PLAIN));
    for (size_t i = 0; rc == CGIGATE_OK && i < sizeof names / sizeof names[0]; i++) {
        char *value = get_var(r, names[i]);
        rc = value ? write_line(r, names[i], value) : CGIGATE_ERROR;
        free(value);
    }
    if (rc == CGIGATE_OK)
        rc = write_line(r, "config", config);
    snprintf(buf, sizeof buf, "%lld", (long long)body);
    if (rc == CGIGATE_OK)
        rc = write_line(r, "body", buf);
    return rc == CGIGATE_OK ? CGIGATE_OK : CGIGATE_ERROR;
}

static int32_t count(cgigate_request *r, const char *arg)
{
    char *end;
    long n = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || n < 0 || n > 100) {
        static const char msg[] = "count must be 0..100\n";
        r->send_headers(r->server, 400, TEXT_PLAIN, strlen(TEXT_PLAIN));
        r->write(r->server, msg, strlen(msg));
        return CGIGATE_OK;
    }
    r->set_mode(r->server, CGIGATE_MODE_STREAM, 0);
    r->send_headers(r->server, 200, TEXT_PLAIN, strlen(TEXT_PLAIN));
    long i;
    for (i = 1; i <= n; i++) {
        char line[32];
        int len = snprintf(line, sizeof line, "count %ld\n", i);
        if (!r->is_connected(r->server) || r->write(r->server, line, (size_t)len) != CGIGATE_OK)
            break;
        r->flush(r->server);
        if (i < n) {
            struct timespec pause = {0, 100 * 1000 * 1000}; /* 100 ms */
            nanosleep(&pause, NULL);
        }
    }
    if (i <= n)
        fprintf(stderr, "hello_c: client gone after %ld of %ld lines\n", i - 1, n);
    return CGIGATE_OK;
}

/* write with len 0 does nothing, so the head can still be chosen afterwards. */
static int32_t zero(cgigate_request *r)
{
    static const char headers[] = "Content-Type: text/plain\r\nX-Zero: 1\r\n";
    static const char msg[] = "a zero-length write sent no head\n";
    if (r->write(r->server, "", 0) != CGIGATE_OK)
        return CGIGATE_ERROR;
    if (r->send_headers(r->server, 201, headers, strlen(headers)) != CGIGATE_OK)
        return CGIGATE_ERROR;
    return r->write(r->server, msg, strlen(msg)) == CGIGATE_OK ? CGIGATE_OK : CGIGATE_ERROR;
}

static int32_t hello_handle(cgigate_request *r)
{
    char *query = get_var(r, "QUERY_STRING");
    if (query == NULL)
        return CGIGATE_ERROR;
    int32_t rc;
    if (strcmp(query, "fail") == 0)
        rc = CGIGATE_ERROR;
    else if (strcmp(query, "zero") == 0)
        rc = zero(r);
    else if (strncmp(query, "count=", 6) == 0)
        rc = count(r, query + 6);
    else
        rc = print_vars(r);
    free(query);
    return rc;
}

CGIGATE_PLUGIN("hello_c", hello_init, hello_handle, hello_terminate)
