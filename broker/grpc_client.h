/*
 * grpc_client: a small blocking gRPC client (HTTP/2 prior knowledge over a Unix socket, nghttp2
 * client session) for unary and server-streaming calls, one call at a time per connection, each
 * bounded by a timeout. Used by `lanyard helper` and the tests; it knows no protobuf schema.
 */
#ifndef GRPC_CLIENT_H
#define GRPC_CLIENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "grpc.h"

struct grpc_client;

/* Default cap on one response message (bytes, without the 5-byte prefix). */
#define GRPC_CLIENT_MAX_MESSAGE (4 * 1024 * 1024)

/* One request metadata entry; names must be lower-case. Both strings are borrowed. */
struct grpc_client_md {
    const char *name;
    const char *value;
};

/* How a call ended: a gRPC status code (enum grpc_status) and the decoded grpc-message. */
struct grpc_client_status {
    int status;
    char message[256];
};

/*
 * Called for each response message (prefix removed); `msg` is borrowed for the callback only.
 * Return 0 to go on, or non-zero to cancel the call (RST_STREAM CANCEL; status CANCELLED).
 */
typedef int (*grpc_client_msg_fn)(const uint8_t *msg, size_t len, void *arg);

/*
 * Connect to the gRPC server on Unix socket `path` and send the HTTP/2 preface. Returns 0 and
 * the client in *out (free with grpc_client_free), or LY_ERR_IO / LY_ERR_USAGE / LY_ERR_NOMEM.
 * Not thread-safe; one thread uses a client at a time.
 */
int grpc_client_connect_unix(const char *path, struct grpc_client **out, struct ly_error *err)
    LY_MUST_USE;

/* Close the connection and free. NULL is a no-op. */
void grpc_client_free(struct grpc_client *c);

/* Change the per-message cap (default GRPC_CLIENT_MAX_MESSAGE; 0 restores it). */
void grpc_client_set_max_message(struct grpc_client *c, size_t max);

/*
 * Run one call on `path` ("/Service/Method") sending `req` (raw protobuf bytes) with the given
 * metadata, and block until it ends, calling on_msg per response message (on_msg may be NULL).
 * timeout_ms <= 0 waits forever. Returns 0 when the call reached an end, with *st filled: the
 * server's status, or CANCELLED (on_msg asked), DEADLINE_EXCEEDED (timeout), UNAVAILABLE (the
 * connection dropped), RESOURCE_EXHAUSTED (a message over the cap), INTERNAL (broken framing),
 * or the gRPC mapping of a non-200 HTTP status. Returns a negative LY_ERR_* only when the call
 * could not start (the connection is already dead: reconnect; or bad arguments).
 */
int grpc_client_call(struct grpc_client *c, const char *path, const struct grpc_client_md *md,
                     size_t nmd, const uint8_t *req, size_t req_len, long timeout_ms,
                     grpc_client_msg_fn on_msg, void *arg, struct grpc_client_status *st,
                     struct ly_error *err) LY_MUST_USE;

/*
 * A unary call: as grpc_client_call, collecting the single response message into `resp` (the
 * caller's buffer, appended to; its max applies). More than one message gives INTERNAL.
 */
int grpc_client_unary(struct grpc_client *c, const char *path, const struct grpc_client_md *md,
                      size_t nmd, const uint8_t *req, size_t req_len, long timeout_ms,
                      struct ly_buf *resp, struct grpc_client_status *st, struct ly_error *err)
    LY_MUST_USE;

/*
 * Let a signal end calls: while *flag is non-zero, a running call is reset (RST_STREAM CANCEL)
 * and ends with status CANCELLED, message "interrupted". The flag is checked at least every
 * GRPC_CLIENT_INTR_POLL_MS, so a flag set by a signal handler just before poll() is still seen.
 * `flag` is borrowed and must outlive the client; NULL turns this off (the default).
 */
#define GRPC_CLIENT_INTR_POLL_MS 250
void grpc_client_set_interrupt(struct grpc_client *c, const volatile sig_atomic_t *flag);

/* Non-zero once the connection is unusable (peer closed, GOAWAY with no streams left, error). */
int grpc_client_is_dead(const struct grpc_client *c);

#endif
