/*
 * cgigate_plugin.h - the C ABI of cgigate's native handler plugins, version 1.
 *
 * A plugin is a shared library (.so) that answers the requests of one or more routes
 * in-process, as an ISAPI extension does under IIS. This header is everything a plugin
 * author needs; it mirrors sdk/src/abi.rs (the Rust definition, the source of truth) field
 * for field, and a test checks every size, offset, type and constant against it.
 *
 * LIFE CYCLE
 *   1. At start-up the server dlopen()s the library named by a route's `plugin` key and
 *      calls the one exported function, cgigate_plugin_descriptor(), which returns a
 *      pointer to a static cgigate_plugin table (CGIGATE_PLUGIN() below writes both).
 *   2. It checks the table's abi_version and size (see VERSIONING), then calls init() once,
 *      with the route's `plugin_config`. A failing init stops the server's start-up and its
 *      message is shown to the user. A library named by several routes is loaded and
 *      initialised once (those routes must give it the same plugin_config).
 *   3. For each request on the route, handle() runs on a worker thread with a
 *      cgigate_request, through which it reads server variables and the request body and
 *      writes the response. handle() may block, and several handle() calls run at the same
 *      time on different threads for different requests: the plugin's own state must be
 *      thread-safe (read-only after init, or guarded by a mutex or atomics).
 *      Every method reaches handle(), HEAD included: answer a HEAD as you would a GET; the
 *      server sends the head (with the Content-Length or framing GET would get) and drops
 *      the body bytes.
 *   4. At shutdown, after every handle() call has returned, terminate() is called once
 *      (if handle() calls are still running kill_grace after the connections were closed,
 *      terminate() is not called at all, rather than free state they use; kill_grace is
 *      the config's [cgi] kill_grace, 2 s by default). The library is never unloaded
 *      (dlclose is never called).
 *
 * CONCURRENCY
 *   handle() calls run on the server's pool of blocking threads (tokio's, at most 512
 *   threads, shared with the server's own blocking work such as starting scripts,
 *   spooling request bodies to files and reading static files). Up to that many handle() calls run at once, across
 *   all plugin routes; when every thread is busy, further requests wait in a queue, in
 *   order, until a thread is free: there is no time limit on that wait other than the
 *   client's patience, and the connection stays open meanwhile. A handle() that blocks for
 *   long therefore holds a thread that other requests may need: keep it short, or bound
 *   the plugin's own concurrency.
 *
 * SCRIPT_NAME AND PATH_INFO
 *   For a plugin route, SCRIPT_NAME is the route's prefix without a trailing '/' ("/ext"
 *   for prefix "/ext/" or "/ext") and PATH_INFO is the rest of the request path,
 *   percent-decoded once, starting with '/'. PATH_INFO (and PATH_TRANSLATED) is absent
 *   when the path is the prefix itself. A path whose rest a CGI route would refuse — an
 *   encoded '/' or '\' (%2F, %5C), %00, or bytes that are not UTF-8 once decoded — is
 *   answered 404 by the server, as on a CGI route, and never reaches handle(). REQUEST_URI
 *   always holds the raw, still-encoded target.
 *
 * VERSIONING
 *   Both tables start with `uint32_t size, abi_version` and end with spare `reserved`
 *   pointers, so later versions can grow them. The loader refuses a descriptor whose
 *   abi_version it does not know, or whose size is not the size of that version's table:
 *   always fill them with sizeof(cgigate_plugin) and CGIGATE_ABI_VERSION (the macro does).
 *   The request object the server passes carries its own size and abi_version likewise.
 *
 * OWNERSHIP
 *   Buffers the plugin passes to the server (names, header blocks, body data, read
 *   buffers) stay the plugin's: the server reads or fills them during the call, copies
 *   what it needs, and never keeps, frees or reuses the pointer afterwards. Everything the
 *   server passes to the plugin (init's config and err buffer, the request object) stays
 *   the server's and is valid only as long as documented below: copy what you need.
 *
 * STATUS CODES
 *   Functions return CGIGATE_OK (0) or a negative CGIGATE_E_* code; read_body returns a
 *   byte count instead of OK. Compare with the constants, not with the numbers.
 *
 * A MINIMAL PLUGIN (build: cc -shared -fPIC -I include -o libhi.so hi.c)
 *
 *   #include <string.h>
 *   #include "cgigate_plugin.h"
 *
 *   static int32_t hi_handle(cgigate_request *r)
 *   {
 *       static const char headers[] = "Content-Type: text/plain\r\n";
 *       static const char body[] = "hi\n";
 *       if (r->send_headers(r->server, 200, headers, strlen(headers)) != CGIGATE_OK)
 *           return CGIGATE_ERROR;
 *       return r->write(r->server, body, strlen(body)) == CGIGATE_OK ? CGIGATE_OK
 *                                                                  : CGIGATE_ERROR;
 *   }
 *
 *   CGIGATE_PLUGIN("hi", NULL, hi_handle, NULL)
 *
 * and in the server's config:
 *
 *   [[route]]
 *   prefix = "/hi"
 *   plugin = "plugins/libhi.so"     # relative to the config file's folder
 *   plugin_config = "some text"     # optional: handed to init
 *
 * A fuller example is examples/plugins/c/hello.c.
 */
#ifndef CGIGATE_PLUGIN_H
#define CGIGATE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define CGIGATE_ABI_VERSION 1

/* ---- Status codes ----------------------------------------------------------------- */

/* Success. */
#define CGIGATE_OK 0
/* A failure of the plugin's own: what init or handle return when they fail. Also returned
 * by read_body when the request body cannot be read (e.g. it stalled past body_timeout or
 * its chunked framing is broken). */
#define CGIGATE_ERROR (-1)
/* The client is gone: nothing more can be read or written. Stop and return from handle. */
#define CGIGATE_E_DISCONNECTED (-2)
/* Not allowed now: the head was already given to the server, by send_headers, or by a
 * write (of at least one byte) or a flush, which send the default head. It says nothing
 * about the wire: in buffer and auto modes the server holds a head it was given until the
 * body ends, overflows buffer_limit or (auto) pauses, so a client may not have seen it
 * yet; the status, fields and mode are final all the same. Returned by send_headers and
 * set_mode after that point. */
#define CGIGATE_E_STATE (-3)
/* An argument is invalid: a NULL pointer, a malformed header block, a status outside
 * 200-999, an unknown mode. */
#define CGIGATE_E_INVALID (-4)
/* get_var: the buffer is too small; the length needed was stored. */
#define CGIGATE_E_TOO_SMALL (-5)
/* get_var: no such server variable for this request. */
#define CGIGATE_E_NOT_FOUND (-6)

/* ---- Output modes (set_mode); the route's `output` key gives the default ------------ */

/* Hold the whole body; if it fits in the route's buffer_limit, send it with
 * Content-Length, else send what is held and continue chunked. */
#define CGIGATE_MODE_BUFFER 0
/* Every write goes to the client at once, as a chunk. For slow, trickling output. */
#define CGIGATE_MODE_STREAM 1
/* As buffer, but once the plugin has been silent for the route's flush_after while
 * output is held, send it and continue as stream. The server's default. */
#define CGIGATE_MODE_AUTO 2
/* The body is exactly `len` bytes (set_mode's third argument), sent with Content-Length.
 * Bytes written beyond `len` are dropped; returning from handle having written fewer
 * closes the connection (the client sees a truncated response, never a padded one). */
#define CGIGATE_MODE_SIZED 3

/* ---- The request object ----------------------------------------------------------- */

/*
 * What handle() gets: one request, and the functions to answer it (the analog of ISAPI's
 * EXTENSION_CONTROL_BLOCK). Owned by the server. Valid only during the handle() call that
 * received it and only on that call's thread: do not keep the pointer, or `server`, or
 * pass them to another thread, or call these functions after handle() returned.
 *
 * Every function takes `server` (the field below) as its first argument:
 *     r->write(r->server, data, len);
 * None of them is thread-safe; they need not be, as only handle()'s thread may call them.
 */
typedef struct cgigate_request {
    /* sizeof(cgigate_request) as the server built it. */
    uint32_t size;
    /* The server's ABI version (CGIGATE_ABI_VERSION: the loader accepted this plugin). */
    uint32_t abi_version;
    /* Opaque: pass it back as the first argument of every function below. */
    void *server;

    /*
     * get_var: copy the value of the server variable `name` into `buf`.
     *
     *   name  NUL-terminated, the plugin's (not kept). The CGI/1.1 names, upper case:
     *         REQUEST_METHOD, REQUEST_URI (raw), REQUEST_SCHEME, SCRIPT_NAME, PATH_INFO
     *         (decoded), PATH_TRANSLATED (with PATH_INFO), QUERY_STRING (raw, always
     *         set, may be empty), SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, SERVER_ADDR,
     *         SERVER_SOFTWARE, GATEWAY_INTERFACE, REDIRECT_STATUS, REMOTE_ADDR,
     *         REMOTE_PORT, DOCUMENT_ROOT, HTTPS (under TLS), CONTENT_LENGTH and
     *         CONTENT_TYPE (when the request has them), one
     *         HTTP_* per request header (HTTP_HOST, HTTP_USER_AGENT, ...; repeated
     *         headers joined with ", "), and ALL_HTTP: every HTTP_* variable as
     *         "HTTP_NAME:value\n" lines.
     *   buf   the plugin's buffer, `*len` bytes long.
     *   len   in: the capacity of `buf` in bytes, including room for the NUL.
     *         out: the length of the value in bytes, NOT counting the NUL.
     *
     * Returns
     *   CGIGATE_OK           `buf` holds the value followed by a NUL; `*len` its length.
     *                        Values are bytes, not necessarily UTF-8: use *len, not strlen.
     *   CGIGATE_E_TOO_SMALL  the value needs *len + 1 bytes: `*len` was set to the value's
     *                        length (without the NUL) and `buf` is unchanged. Allocate
     *                        *len + 1 bytes and call again with that capacity. Passing
     *                        buf = NULL with *len = 0 asks for the length alone.
     *   CGIGATE_E_NOT_FOUND  no such variable for this request (e.g. CONTENT_TYPE when
     *                        there is no body, a header the client did not send);
     *                        `buf` and `*len` are unchanged.
     *   CGIGATE_E_INVALID    `name` or `len` is NULL.
     * Never blocks. Values do not change during the request, so one retry is enough.
     */
    int32_t (*get_var)(void *server, const char *name, char *buf, size_t *len);

    /*
     * read_body: read up to `len` bytes of the request body into `buf` (the plugin's).
     *
     * The body comes de-chunked: the plugin sees the same bytes whether the client sent
     * Content-Length or chunked. CONTENT_LENGTH is absent for a chunked body, so read
     * until 0 rather than counting.
     *
     * Returns the number of bytes stored (1..len, possibly fewer than asked: loop), 0 at
     * the end of the body (at once if there is none; also when `len` is 0), or a negative
     * code: CGIGATE_E_DISCONNECTED (client gone), CGIGATE_ERROR (the body could not be
     * read: it stalled past body_timeout or its framing is broken), CGIGATE_E_INVALID
     * (`buf` NULL). Note the int64_t return type.
     *
     * Blocks until some bytes arrive or the body ends. The first call sends the client
     * "100 Continue" if it asked for it (Expect: 100-continue). Reading the body is
     * optional; the server deals with what the plugin left unread.
     */
    int64_t (*read_body)(void *server, void *buf, size_t len);

    /*
     * send_headers: set the response's status and header fields, and send the head.
     *
     *   status   200-999 (interim 1xx responses are the server's).
     *   headers  `len` bytes of "Name: value\r\n" lines (a bare "\n" also ends a line),
     *            without the empty line that ends a head; the plugin's, copied before
     *            the call returns. May be NULL when len is 0 (no header fields).
     *
     * The server owns the framing: Connection, Keep-Alive, Transfer-Encoding, Upgrade,
     * TE, Trailer and Date are dropped; a Content-Length field acts as
     * set_mode(CGIGATE_MODE_SIZED, n), and "Connection: close" closes the connection
     * after this response. In buffer and auto modes the head may be held and go out with
     * the first bytes of the body (to add Content-Length); in every mode the status and
     * fields are final once this returns.
     *
     * Call it at most once, before any write or flush (these send a default head:
     * status 200, no fields). Returns CGIGATE_OK, CGIGATE_E_STATE (the head was already
     * sent), CGIGATE_E_INVALID (bad status, a line without ':', a name that is not an
     * HTTP token, a value with control bytes; nothing is sent then and the call may be
     * repeated), or CGIGATE_E_DISCONNECTED. May block briefly, as write does.
     */
    int32_t (*send_headers)(void *server, uint32_t status, const char *headers, size_t len);

    /*
     * write: append `len` bytes from `data` (the plugin's) to the response body.
     *
     * The bytes are copied before the call returns: `data` may be reused or freed at once.
     * Every byte is taken or the call fails (there are no partial writes). Sends the
     * default head first if send_headers was not called. len 0 does nothing at all (it
     * does not send the default head either; send_headers and set_mode still work).
     *
     * Blocks while the client reads slower than the plugin writes (back-pressure), so a
     * plugin never holds more than a little of its output in the server's memory.
     * Returns CGIGATE_OK, CGIGATE_E_DISCONNECTED once the client is gone (stop writing
     * and return from handle), or CGIGATE_E_INVALID (`data` NULL with len > 0).
     */
    int32_t (*write)(void *server, const void *data, size_t len);

    /*
     * flush: deliver what was written so far to the client now. In stream mode every
     * write already goes out at once; in auto mode flush sends what is held and the
     * response continues as a stream; in buffer mode it does nothing. Sends the default
     * head first if no head was sent. May block like write. Returns CGIGATE_OK or
     * CGIGATE_E_DISCONNECTED.
     */
    int32_t (*flush)(void *server);

    /*
     * set_mode: choose the output mode (CGIGATE_MODE_*) for this response. `len` is the
     * exact body length for CGIGATE_MODE_SIZED and is ignored by the other modes (pass 0).
     * Call it before send_headers, write and flush; may be called again until then (the
     * last call wins). Returns CGIGATE_OK, CGIGATE_E_STATE (the head was already sent),
     * CGIGATE_E_INVALID (unknown mode) or CGIGATE_E_DISCONNECTED. Does not wait for the
     * client.
     */
    int32_t (*set_mode)(void *server, uint32_t mode, uint64_t len);

    /*
     * is_connected: 1 while the client is there, 0 once it is gone. Never blocks. Check it
     * in long computations between writes, to stop early work nobody will receive.
     */
    int32_t (*is_connected)(void *server);

    /* Spare room for later versions; NULL. Do not touch. */
    void *reserved[8];
} cgigate_request;

/* ---- The plugin descriptor -------------------------------------------------------- */

/*
 * What the plugin exports through cgigate_plugin_descriptor(). Static and constant: the
 * server reads it at start-up and keeps pointing into it (the library is never unloaded).
 */
typedef struct cgigate_plugin {
    /* sizeof(cgigate_plugin), as the plugin was built. */
    uint32_t size;
    /* CGIGATE_ABI_VERSION, as the plugin was built. */
    uint32_t abi_version;
    /* The plugin's name, for the server's log and error messages: a static,
     * NUL-terminated string. */
    const char *name;

    /*
     * init: called once at start-up, before the server accepts requests (so before any
     * handle() and never concurrently with another call into the plugin).
     *
     *   config   the route's `plugin_config`: `len` bytes, NOT NUL-terminated ("" with
     *            len 0 when the key is absent; do not read *config when len is 0). Owned
     *            by the server and valid only during this call: copy it to keep it.
     *   err      the server's buffer of `err_len` bytes, for a message when init fails.
     *
     * Return CGIGATE_OK, or CGIGATE_ERROR after writing a short NUL-terminated message
     * into `err` (snprintf(err, err_len, ...) truncates safely); the server then stops
     * its start-up and shows the message with the library's path and the plugin's name.
     * init may block (open files, connect to a database). NULL if the plugin needs no
     * set-up.
     */
    int32_t (*init)(const char *config, size_t len, char *err, size_t err_len);

    /*
     * handle: answer one request, described by `request` (see cgigate_request: valid only
     * during this call, on this thread).
     *
     * Runs on one of the server's worker threads and may block (a blocked handle keeps
     * its worker busy). Called concurrently from several threads for different requests:
     * everything it shares must be thread-safe.
     *
     * Return CGIGATE_OK when the response is complete (if nothing was written, that is an
     * empty 200), or CGIGATE_ERROR: the server answers 500 if no head was sent yet, else
     * closes the connection without completing the body, so the client can tell the
     * response is cut. Any value other than CGIGATE_OK counts as an error. Must not be
     * NULL: the loader refuses a descriptor without handle.
     */
    int32_t (*handle)(cgigate_request *request);

    /*
     * terminate: called once at shutdown, after every handle() call has returned; free
     * what init allocated. A handle() whose request was cut off keeps running until it
     * returns (its calls into the server return CGIGATE_E_DISCONNECTED): check
     * is_connected() in long loops. If handle() calls are still running kill_grace after
     * the connections closed, terminate is not called. Not called if start-up failed
     * (including when init failed) or the process was killed. The library stays loaded.
     * NULL if there is nothing to do.
     */
    void (*terminate)(void);

    /* Spare room for later versions; NULL. */
    void *reserved[4];
} cgigate_plugin;

/* ---- The export ------------------------------------------------------------------- */

/* Marks the one symbol the server looks up as exported, even when the plugin is built
 * with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define CGIGATE_EXPORT __attribute__((visibility("default")))
#else
#define CGIGATE_EXPORT
#endif

/* The one function a plugin exports: returns its static descriptor (never NULL). Called
 * once, at start-up. */
CGIGATE_EXPORT const cgigate_plugin *cgigate_plugin_descriptor(void);

/*
 * CGIGATE_PLUGIN(name, init, handle, terminate) defines the static descriptor and the
 * exported cgigate_plugin_descriptor() that returns it, filling size and abi_version.
 * `name` is a string literal; `init` and `terminate` may be NULL. Use it once, at file
 * scope, in one source file of the library:
 *
 *     CGIGATE_PLUGIN("hello", hello_init, hello_handle, hello_terminate)
 */
#define CGIGATE_PLUGIN(name, init, handle, terminate)                                      \
    static const cgigate_plugin cgigate_plugin_descriptor_static = {                       \
        sizeof(cgigate_plugin), CGIGATE_ABI_VERSION, (name), (init), (handle), (terminate), \
        { 0 }                                                                              \
    };                                                                                     \
    CGIGATE_EXPORT const cgigate_plugin *cgigate_plugin_descriptor(void)                   \
    {                                                                                      \
        return &cgigate_plugin_descriptor_static;                                          \
    }

#ifdef __cplusplus
}
#endif

#endif /* CGIGATE_PLUGIN_H */
