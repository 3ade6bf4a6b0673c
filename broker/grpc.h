/*
 * grpc: a gRPC server transport (HTTP/2 with prior knowledge, over a Unix socket) built on
 * nghttp2's server session and driven by struct loop. It frames and routes messages by method
 * path and hands raw message bytes to handlers; it knows no protobuf schema and no SPIFFE.
 */
#ifndef GRPC_H
#define GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/ly_error.h"
#include "loop.h"

struct grpc_server;
struct grpc_call;

/* gRPC status codes used by lanyard (the gRPC spec numbers them; they go on the wire). */
enum grpc_status {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_UNAUTHENTICATED = 16,
};

/* Reasons (struct ly_error.reason) set by this module and grpc_client. */
enum grpc_reason {
    GRPC_R_NONE = 0,
    GRPC_R_QUEUE_FULL = 1, /* grpc_call_send: the call's output queue is at its cap */
    GRPC_R_CALL_DONE = 2,  /* the call was finished or has gone away */
    GRPC_R_TIMEOUT = 3,    /* grpc_client: the deadline passed */
    GRPC_R_PROTOCOL = 4,   /* the peer broke HTTP/2 or gRPC framing */
};

/*
 * A method handler, called once the whole request message has arrived (gRPC framing removed).
 * `msg` is borrowed for the duration of the call only. The handler may call grpc_call_send and
 * grpc_call_finish at once (unary) or keep `call` and use it later from other loop callbacks
 * (server streaming), after registering a close callback. It must not block, and must not call
 * grpc_server_free. Returning -1 finishes the call with INTERNAL unless it was already finished.
 */
typedef int (*grpc_handler_fn)(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx);

/* One route: `path` is the full method path ("/SpiffeWorkloadAPI/FetchX509SVID"). */
struct grpc_method {
    const char *path; /* borrowed; must outlive the server (usually a string literal) */
    grpc_handler_fn handler;
};

/* Caps on what peers control. A zero field takes the default shown. */
struct grpc_server_limits {
    size_t max_conns;        /* open connections (1024); further ones are accepted and closed */
    uint32_t max_streams;    /* SETTINGS_MAX_CONCURRENT_STREAMS per connection (100) */
    size_t max_request;      /* request body bytes incl. the 5-byte prefix (64 KiB) */
    size_t max_queue;        /* unsent response bytes per call (1 MiB) */
    size_t max_header_bytes; /* request header bytes per stream, names + values (16 KiB) */
    long handshake_ms;       /* a new connection must send a valid HTTP/2 frame within (10 s) */
};
/* Besides, request bytes buffered per connection are capped at 16 x max_request. */

/* The credentials of the connected process, from SO_PEERCRED at accept time. */
struct grpc_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    uint64_t conn_id; /* unique per server and connection; never reused */
    int fd;           /* the connection's socket, borrowed: for getsockopt-style queries only
                         (SO_PEERCRED, SO_PEERSEC); never read, write or close it */
};

/*
 * Create a server that will run on `loop`. The methods array is copied (the path strings are
 * borrowed), `ctx` is passed to every handler, and `limits` may be NULL for the defaults.
 * Returns 0 and the server in *out (free with grpc_server_free), or a negative LY_ERR_* with err
 * set. A server and its calls belong to the loop's thread.
 */
int grpc_server_new(struct loop *loop, const struct grpc_method *methods, size_t n, void *ctx,
                    const struct grpc_server_limits *limits, struct grpc_server **out,
                    struct ly_error *err) LY_MUST_USE;

/*
 * Listen on the Unix socket `path`: a stale socket file there is unlinked (any other kind of file
 * is an error), then bind, chmod to `mode`, listen, and watch it on the loop. Only one listener
 * per server. LY_ERR_USAGE for a path too long for sockaddr_un; LY_ERR_IO on socket errors.
 */
int grpc_server_listen_unix(struct grpc_server *srv, const char *path, mode_t mode,
                            struct ly_error *err) LY_MUST_USE;

/*
 * Graceful stop: close the listener (unlinking its socket file if it is still ours) and send
 * GOAWAY on every connection. Calls already running go on until they finish; each connection
 * closes once its last stream ends. Long-lived streams are the caller's to finish (or to cut by
 * grpc_server_free after a grace period). Safe from a loop callback; idempotent.
 */
void grpc_server_shutdown(struct grpc_server *srv);

/* Number of open connections (for waiting out a graceful shutdown, and for tests). */
size_t grpc_server_conn_count(const struct grpc_server *srv);

/*
 * Close every connection at once, running the close callback of each call still owned by a
 * handler, then free the server and remove its socket file if it is still ours. NULL is a
 * no-op. Not from inside one of this server's handlers or callbacks.
 */
void grpc_server_free(struct grpc_server *srv);

/* Flags for grpc_call_send. */
#define GRPC_SEND_REPLACE 0x1 /* drop queued messages not yet started on the wire first */

/*
 * Queue one message (the raw protobuf bytes; the gRPC length prefix is added here) on the call's
 * response stream. The first send also sends the response headers. Any number of sends are
 * allowed before grpc_call_finish (server streaming). `msg` is copied. With GRPC_SEND_REPLACE,
 * messages still waiting whole in the queue are dropped first (for streams where only the newest
 * message matters). Returns 0, or LY_ERR_USAGE with reason GRPC_R_QUEUE_FULL when the queue would
 * pass max_queue, GRPC_R_CALL_DONE after grpc_call_finish, LY_ERR_NOMEM.
 */
int grpc_call_send(struct grpc_call *call, const uint8_t *msg, size_t len, unsigned flags,
                   struct ly_error *err) LY_MUST_USE;

/*
 * End the call with `status` and an optional `message` (UTF-8, NULL for none, truncated to 512
 * bytes, percent-encoded on the wire). Queued messages are sent first, then the trailers; with
 * no message ever sent this is a trailers-only response. After this call the handler must not
 * use `call` again, and its close callback will not run. If the trailers cannot be queued the
 * stream is reset instead.
 */
void grpc_call_finish(struct grpc_call *call, int status, const char *message);

/*
 * The value of request header `name` (lower-case, e.g. "workload.spiffe.io"), or NULL if
 * absent. The first one wins when repeated. Borrowed until the call finishes or closes.
 */
const char *grpc_call_header(const struct grpc_call *call, const char *name);

/* The method path of the call. Borrowed like grpc_call_header. */
const char *grpc_call_path(const struct grpc_call *call);

/* The connection's peer credentials captured at accept. Borrowed like grpc_call_header. */
const struct grpc_peer *grpc_call_peer(const struct grpc_call *call);

/*
 * A close callback runs once if the call goes away before the handler finished it: client cancel
 * (RST_STREAM), connection drop or error, or grpc_server_free. The call is freed right after the
 * callback returns: inside it only the read-only accessors (grpc_call_path, grpc_call_header,
 * grpc_call_peer) may be used, and send/finish on it are no-ops; after it, never touch `call`.
 * Setting it again replaces it; cb NULL removes it. It runs from inside the transport, so it must
 * not call grpc_server_free or grpc_server_shutdown.
 */
typedef void (*grpc_close_fn)(struct grpc_call *call, void *arg);
void grpc_call_set_close_cb(struct grpc_call *call, grpc_close_fn cb, void *arg);

/*
 * Percent-encode `in` for a grpc-message header (bytes outside 0x20-0x7E and '%' become %XX, as
 * the gRPC HTTP/2 spec says) into out[outsz], always NUL-terminated; input is cut at a whole
 * escape when out is too small. Returns the encoded length.
 */
size_t grpc_percent_encode(const char *in, char *out, size_t outsz);

/* The reverse, for clients: decodes %XX (invalid escapes are kept as-is). Same output rules. */
size_t grpc_percent_decode(const char *in, size_t inlen, char *out, size_t outsz);

#endif
