/*
 * grpc: gRPC server over nghttp2's server session on non-blocking Unix sockets, driven by struct
 * loop. It routes by :path, strips and adds the 5-byte gRPC message prefix, and writes statuses
 * as trailers; it never decodes a message and never blocks. nghttp2 does all HTTP/2 framing.
 */
#define _GNU_SOURCE
#include "grpc.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/ly_buf.h"
#include "../common/ly_secret.h"

#define GRPC_DEF_MAX_CONNS 1024
#define GRPC_DEF_MAX_STREAMS 100
#define GRPC_DEF_MAX_REQUEST (64 * 1024)
#define GRPC_DEF_MAX_QUEUE (1024 * 1024)
#define GRPC_DEF_MAX_HEADER_BYTES (16 * 1024)
#define GRPC_PATH_MAX 256
#define GRPC_MSG_TEXT_MAX 512
#define GRPC_READ_CHUNK 16384
#define GRPC_READS_PER_EVENT 16 /* fairness: other connections get a turn */
#define GRPC_ACCEPTS_PER_EVENT 64
#define GRPC_ACCEPT_BACKOFF_MS 100
#define GRPC_PREFIX 5
#define GRPC_HANDSHAKE_MS 10000 /* a connection must send a valid HTTP/2 frame by then */
#define GRPC_CONN_BODY_FACTOR 16 /* request bytes buffered per connection: 16 x max_request */

struct grpc_conn;

struct grpc_call {
    struct grpc_conn *conn;
    int32_t stream_id;
    struct grpc_call *prev, *next;
    char path[GRPC_PATH_MAX];
    int path_ok;  /* :path present and short enough */
    int is_post;
    int ctype_ok; /* content-type is application/grpc[+...|;...] */
    int enc_other; /* grpc-encoding names something other than identity */
    size_t hdr_bytes;
    struct ly_buf hdrs; /* "name\0value\0" pairs of regular request headers */
    const struct grpc_method *method;
    struct ly_buf body;
    int handed;    /* the handler has been called (or the request was answered without it) */
    int finished;  /* a status has been decided; the handler no longer owns the call */
    int responded; /* response HEADERS submitted */
    int deferred;  /* our data provider returned NGHTTP2_ERR_DEFERRED */
    int trailers_due;
    int closed;    /* stream or connection gone; being freed */
    int status;
    char message[GRPC_MSG_TEXT_MAX * 3 + 1]; /* percent-encoded */
    struct ly_buf out;  /* framed messages waiting for the wire */
    size_t out_off;     /* bytes of `out` already handed to nghttp2 */
    size_t out_msg_end; /* end of the message that holds out_off (== out_off at a boundary) */
    grpc_close_fn close_cb;
    void *close_arg;
};

struct grpc_conn {
    struct grpc_server *srv;
    int fd;
    nghttp2_session *sess;
    struct grpc_peer peer;
    struct grpc_call *calls;
    struct grpc_conn *prev, *next;
    size_t body_bytes; /* request bytes buffered over all its calls */
    uint64_t handshake_timer;
    int saw_frame;
    int dead;
};

struct grpc_server {
    struct loop *loop;
    struct grpc_method *methods;
    size_t nmethods;
    void *ctx;
    struct grpc_server_limits lim;
    int lfd;
    char *path;
    dev_t dev;
    ino_t ino;
    uint64_t accept_timer;
    struct grpc_conn *conns;
    size_t nconns;
    uint64_t next_conn_id;
    int shutting_down;
};

static nghttp2_nv mknv(const char *name, const char *value)
{
    nghttp2_nv nv;

    /* nghttp2 copies names and values (no NO_COPY flags), so stack strings are fine. */
    nv.name = (uint8_t *)(uintptr_t)name;
    nv.namelen = strlen(name);
    nv.value = (uint8_t *)(uintptr_t)value;
    nv.valuelen = strlen(value);
    nv.flags = NGHTTP2_NV_FLAG_NONE;
    return nv;
}

size_t grpc_percent_encode(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (outsz == 0) {
        return 0;
    }
    for (; in != NULL && *in != '\0'; in++) {
        unsigned char c = (unsigned char)*in;
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (o + 1 >= outsz) {
                break;
            }
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outsz) {
                break;
            }
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    out[o] = '\0';
    return o;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

size_t grpc_percent_decode(const char *in, size_t inlen, char *out, size_t outsz)
{
    size_t i = 0, o = 0;

    if (outsz == 0) {
        return 0;
    }
    while (i < inlen && o + 1 < outsz) {
        if (in[i] == '%' && i + 2 < inlen && hexval(in[i + 1]) >= 0 &&
            hexval(in[i + 2]) >= 0) {
            out[o++] = (char)(hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
            i += 3;
        } else {
            out[o++] = in[i++];
        }
    }
    out[o] = '\0';
    return o;
}

/* ---- connection plumbing ------------------------------------------------------------------ */

static void conn_kick(struct grpc_conn *conn)
{
    /* Ask the loop for a writable event: the flush then runs from a clean stack, never from
     * inside nghttp2 or a handler (whose callbacks could free the very call being used). */
    if (conn->sess != NULL && loop_fd_mask(conn->srv->loop, conn->fd,
                                           LOOP_READABLE | LOOP_WRITABLE, NULL) != 0) {
        conn->dead = 1;
    }
}

static void call_drop_body(struct grpc_call *call)
{
    call->conn->body_bytes -= call->body.len;
    ly_buf_free(&call->body);
}

static void call_free(struct grpc_call *call)
{
    call_drop_body(call);
    ly_buf_free(&call->hdrs);
    ly_buf_free(&call->out);
    free(call);
}

static void call_unlink(struct grpc_call *call)
{
    struct grpc_conn *conn = call->conn;

    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else {
        conn->calls = call->next;
    }
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    call->prev = call->next = NULL;
}

/* The call leaves: tell its handler if it still owned it, then free it. */
static void call_release(struct grpc_call *call)
{
    grpc_close_fn cb = call->finished ? NULL : call->close_cb;

    call->closed = 1;
    call->close_cb = NULL;
    if (cb != NULL) {
        cb(call, call->close_arg);
    }
    call_free(call);
}

static void conn_free(struct grpc_conn *conn)
{
    struct grpc_server *srv = conn->srv;
    struct grpc_call *call, *next, *list;

    loop_fd_del(srv->loop, conn->fd);
    if (conn->handshake_timer != 0) {
        loop_timer_del(srv->loop, conn->handshake_timer);
    }
    /* P2: nghttp2_session_del does not report open streams, so release them ourselves. */
    nghttp2_session_del(conn->sess);
    conn->sess = NULL;
    list = conn->calls;
    conn->calls = NULL;
    for (call = list; call != NULL; call = call->next) {
        call->closed = 1;
    }
    for (call = list; call != NULL; call = next) {
        next = call->next;
        call_release(call);
    }
    /* Read/write socket: nothing buffered in the kernel is worth reporting on close. */
    (void)close(conn->fd);
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        srv->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    srv->nconns--;
    free(conn);
}

/* ---- responses ---------------------------------------------------------------------------- */

static void call_reset(struct grpc_call *call, uint32_t code)
{
    call->finished = 1;
    if (call->conn->sess != NULL &&
        nghttp2_submit_rst_stream(call->conn->sess, NGHTTP2_FLAG_NONE, call->stream_id, code) !=
            0) {
        call->conn->dead = 1; /* cannot even reset: drop the connection */
    }
    conn_kick(call->conn);
}

static void call_http_error(struct grpc_call *call, const char *http_status)
{
    nghttp2_nv nv[1];

    call->finished = call->handed = call->responded = 1;
    nv[0] = mknv(":status", http_status);
    if (nghttp2_submit_response(call->conn->sess, call->stream_id, nv, 1, NULL) != 0) {
        call_reset(call, NGHTTP2_INTERNAL_ERROR);
    }
    conn_kick(call->conn);
}

/* A single HEADERS frame with END_STREAM carrying the status (gRPC "Trailers-Only"). */
static void call_trailers_only(struct grpc_call *call)
{
    nghttp2_nv nv[4];
    char st[16];
    size_t n = 0;

    call->finished = call->handed = call->responded = 1;
    (void)snprintf(st, sizeof(st), "%d", call->status); /* cannot truncate an int in 16 */
    nv[n++] = mknv(":status", "200");
    nv[n++] = mknv("content-type", "application/grpc");
    nv[n++] = mknv("grpc-status", st);
    if (call->message[0] != '\0') {
        nv[n++] = mknv("grpc-message", call->message);
    }
    if (nghttp2_submit_response(call->conn->sess, call->stream_id, nv, n, NULL) != 0) {
        call_reset(call, NGHTTP2_INTERNAL_ERROR);
    }
    conn_kick(call->conn);
}

static void call_set_status(struct grpc_call *call, int status, const char *message)
{
    char cut[GRPC_MSG_TEXT_MAX + 1];
    size_t len = message != NULL ? strnlen(message, GRPC_MSG_TEXT_MAX) : 0;

    memcpy(cut, message != NULL ? message : "", len);
    cut[len] = '\0';
    call->status = status;
    (void)grpc_percent_encode(cut, call->message, sizeof(call->message)); /* always fits */
}

/* Answer before (or instead of) the handler with a gRPC status. */
static void call_reject(struct grpc_call *call, int status, const char *message)
{
    call_set_status(call, status, message);
    call_trailers_only(call);
}

static int submit_trailer(nghttp2_session *sess, struct grpc_call *call)
{
    nghttp2_nv nv[2];
    char st[16];
    size_t n = 0;

    (void)snprintf(st, sizeof(st), "%d", call->status); /* cannot truncate an int in 16 */
    nv[n++] = mknv("grpc-status", st);
    if (call->message[0] != '\0') {
        nv[n++] = mknv("grpc-message", call->message);
    }
    call->trailers_due = 0;
    return nghttp2_submit_trailer(sess, call->stream_id, nv, n);
}

/*
 * The data provider. P3: trailers are submitted here, with NO_END_STREAM on the last DATA, so
 * they can never overtake queued messages.
 */
static ssize_t call_read(nghttp2_session *sess, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct grpc_call *call = source->ptr;
    size_t avail = call->out.len - call->out_off;
    size_t n = avail < length ? avail : length;

    (void)stream_id;
    (void)user_data;
    if (n > 0) {
        memcpy(buf, call->out.data + call->out_off, n);
        call->out_off += n;
        while (call->out_msg_end < call->out_off) {
            const uint8_t *p = call->out.data + call->out_msg_end + 1;
            call->out_msg_end += GRPC_PREFIX + ((size_t)p[0] << 24 | (size_t)p[1] << 16 |
                                                (size_t)p[2] << 8 | (size_t)p[3]);
        }
    }
    if (call->out_off == call->out.len && call->trailers_due) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (submit_trailer(sess, call) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        call->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int call_start_response(struct grpc_call *call)
{
    nghttp2_nv nv[2];
    nghttp2_data_provider prd;

    nv[0] = mknv(":status", "200");
    nv[1] = mknv("content-type", "application/grpc");
    prd.source.ptr = call;
    prd.read_callback = call_read;
    if (nghttp2_submit_response(call->conn->sess, call->stream_id, nv, 2, &prd) != 0) {
        return -1;
    }
    call->responded = 1;
    return 0;
}

static void call_resume(struct grpc_call *call)
{
    if (call->deferred) {
        call->deferred = 0;
        /* Only fails when nothing is deferred, which our flag rules out. */
        if (nghttp2_session_resume_data(call->conn->sess, call->stream_id) != 0) {
            call->conn->dead = 1;
        }
    }
    conn_kick(call->conn);
}

int grpc_call_send(struct grpc_call *call, const uint8_t *msg, size_t len, unsigned flags,
                   struct ly_error *err)
{
    uint8_t pfx[GRPC_PREFIX];
    size_t pending;

    if (call->finished || call->closed || call->conn->sess == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, GRPC_R_CALL_DONE, "grpc: call already ended");
    }
    if ((flags & GRPC_SEND_REPLACE) != 0) {
        /* Keep only what nghttp2 has started: the rest of a partly sent message. */
        size_t keep = call->out_msg_end > call->out_off ? call->out_msg_end : call->out_off;
        if (keep < call->out.len) {
            ly_wipe(call->out.data + keep, call->out.len - keep); /* dropped messages */
        }
        call->out.len = keep;
    }
    if (call->out_off == call->out.len) {
        ly_wipe(call->out.data, call->out.len); /* everything was handed to nghttp2 */
        call->out.len = call->out_off = call->out_msg_end = 0;
    } else if (call->out_off > 0 && call->out_off >= call->out.len / 2) {
        size_t rest = call->out.len - call->out_off;
        memmove(call->out.data, call->out.data + call->out_off, rest);
        ly_wipe(call->out.data + rest, call->out_off); /* the stale tail after the move */
        call->out.len -= call->out_off;
        call->out_msg_end -= call->out_off;
        call->out_off = 0;
    }
    pending = call->out.len - call->out_off;
    if (len > UINT32_MAX || len > call->conn->srv->lim.max_queue ||
        pending + GRPC_PREFIX + len > call->conn->srv->lim.max_queue) {
        return ly_error_setx(err, LY_ERR_USAGE, GRPC_R_QUEUE_FULL,
                             "grpc: output queue full (%zu bytes pending)", pending);
    }
    pfx[0] = 0; /* not compressed */
    pfx[1] = (uint8_t)(len >> 24);
    pfx[2] = (uint8_t)(len >> 16);
    pfx[3] = (uint8_t)(len >> 8);
    pfx[4] = (uint8_t)len;
    if (ly_buf_append(&call->out, pfx, sizeof(pfx), err) != 0 ||
        ly_buf_append(&call->out, msg, len, err) != 0) {
        /* ly_buf freed the queue: the stream cannot continue coherently. */
        call->out_off = call->out_msg_end = 0;
        call_reset(call, NGHTTP2_INTERNAL_ERROR);
        return err != NULL ? err->code : LY_ERR_NOMEM;
    }
    if (!call->responded) {
        if (call_start_response(call) != 0) {
            call_reset(call, NGHTTP2_INTERNAL_ERROR);
            return ly_error_setx(err, LY_ERR_INTERNAL, 0, "grpc: cannot submit response");
        }
        conn_kick(call->conn);
        return 0;
    }
    call_resume(call);
    return 0;
}

void grpc_call_finish(struct grpc_call *call, int status, const char *message)
{
    if (call->finished || call->closed || call->conn->sess == NULL) {
        return;
    }
    call->finished = 1;
    call->close_cb = NULL;
    call_set_status(call, status, message);
    if (!call->responded) {
        call_trailers_only(call);
        return;
    }
    call->trailers_due = 1;
    call_resume(call);
}

const char *grpc_call_header(const struct grpc_call *call, const char *name)
{
    const char *p = (const char *)call->hdrs.data;
    const char *end = p + call->hdrs.len;

    while (p != NULL && p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, name) == 0) {
            return value;
        }
        p = value + strlen(value) + 1;
    }
    return NULL;
}

const char *grpc_call_path(const struct grpc_call *call)
{
    return call->path;
}

const struct grpc_peer *grpc_call_peer(const struct grpc_call *call)
{
    return &call->conn->peer;
}

void grpc_call_set_close_cb(struct grpc_call *call, grpc_close_fn cb, void *arg)
{
    call->close_cb = cb;
    call->close_arg = arg;
}

/* ---- nghttp2 callbacks -------------------------------------------------------------------- */

static ssize_t on_send(nghttp2_session *sess, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct grpc_conn *conn = user_data;
    ssize_t n;

    (void)sess;
    (void)flags;
    do {
        n = send(conn->fd, data, length, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? NGHTTP2_ERR_WOULDBLOCK
                                                         : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return n;
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *user_data)
{
    struct grpc_conn *conn = user_data;
    struct grpc_call *call;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    }
    call->conn = conn;
    call->stream_id = frame->hd.stream_id;
    ly_buf_init(&call->hdrs, conn->srv->lim.max_header_bytes);
    /* Requests may carry bearer tokens (ValidateJWTSVID): wiped on growth and free. */
    ly_buf_init_secret(&call->body, conn->srv->lim.max_request);
    /* Responses may carry private keys (X509-SVID responses): wiped on growth and free. */
    ly_buf_init_secret(&call->out, SIZE_MAX);
    if (nghttp2_session_set_stream_user_data(sess, call->stream_id, call) != 0) {
        call_free(call);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    call->next = conn->calls;
    if (conn->calls != NULL) {
        conn->calls->prev = call;
    }
    conn->calls = call;
    return 0;
}

static int name_is(const uint8_t *name, size_t namelen, const char *want)
{
    return namelen == strlen(want) && memcmp(name, want, namelen) == 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct grpc_call *call;
    static const char ct[] = "application/grpc";
    const size_t ctlen = sizeof(ct) - 1;

    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* request trailers carry nothing we use */
    }
    call = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    /* Cap what the peer may make us keep (32 bytes per field as in SETTINGS_MAX_HEADER_LIST). */
    call->hdr_bytes += namelen + valuelen + 32;
    if (call->hdr_bytes > call->conn->srv->lim.max_header_bytes) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (namelen > 0 && name[0] == ':') {
        if (name_is(name, namelen, ":path")) {
            call->path_ok = valuelen < sizeof(call->path);
            if (call->path_ok) {
                memcpy(call->path, value, valuelen);
                call->path[valuelen] = '\0';
            }
        } else if (name_is(name, namelen, ":method")) {
            call->is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
        }
        return 0;
    }
    if (name_is(name, namelen, "content-type")) {
        call->ctype_ok = valuelen >= ctlen && memcmp(value, ct, ctlen) == 0 &&
                         (valuelen == ctlen || value[ctlen] == '+' || value[ctlen] == ';');
    } else if (name_is(name, namelen, "grpc-encoding")) {
        call->enc_other = !(valuelen == 8 && memcmp(value, "identity", 8) == 0);
    }
    /* nghttp2 has validated the field (no NUL), so each half is a C string once terminated. */
    if (ly_buf_append(&call->hdrs, name, namelen, NULL) != 0 ||
        ly_buf_append(&call->hdrs, "", 1, NULL) != 0 ||
        ly_buf_append(&call->hdrs, value, valuelen, NULL) != 0 ||
        ly_buf_append(&call->hdrs, "", 1, NULL) != 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

/* Route and vet a complete request header block; answer at once when it cannot be served. */
static void call_check_headers(struct grpc_call *call)
{
    struct grpc_server *srv = call->conn->srv;
    size_t i;

    if (!call->is_post) {
        call_http_error(call, "405");
        return;
    }
    if (!call->ctype_ok) {
        call_http_error(call, "415");
        return;
    }
    for (i = 0; call->path_ok && i < srv->nmethods; i++) {
        if (strcmp(srv->methods[i].path, call->path) == 0) {
            call->method = &srv->methods[i];
        }
    }
    if (call->method == NULL) {
        call_reject(call, GRPC_UNIMPLEMENTED, "unknown method");
        return;
    }
    if (call->enc_other) {
        call_reject(call, GRPC_UNIMPLEMENTED, "message compression is not supported");
    }
}

static void call_dispatch(struct grpc_call *call)
{
    struct grpc_server *srv = call->conn->srv;
    const uint8_t *b = call->body.data;
    size_t len;
    int rc;

    if (call->handed) {
        return;
    }
    call->handed = 1;
    if (call->body.len < GRPC_PREFIX) {
        call_reject(call, GRPC_INTERNAL, "missing request message");
        return;
    }
    if (b[0] == 1) {
        call_reject(call, GRPC_INTERNAL, "compressed message without grpc-encoding");
        return;
    }
    len = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | (size_t)b[4];
    if (b[0] != 0 || len != call->body.len - GRPC_PREFIX) {
        call_reject(call, GRPC_INTERNAL, "malformed gRPC message framing");
        return;
    }
    rc = call->method->handler(call, b + GRPC_PREFIX, len, srv->ctx);
    /* The call is still alive here: streams close only inside session send/recv. */
    call_drop_body(call);
    if (rc != 0) {
        grpc_call_finish(call, GRPC_INTERNAL, "internal error");
    }
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct grpc_call *call = nghttp2_session_get_stream_user_data(sess, stream_id);
    size_t before;

    (void)flags;
    (void)user_data;
    if (call == NULL || call->handed) {
        return 0; /* already answered: drop the rest of the body */
    }
    if (len > call->body.max - call->body.len) {
        call_drop_body(call);
        call_reject(call, GRPC_RESOURCE_EXHAUSTED, "request message too large");
        return 0;
    }
    if (call->conn->body_bytes + len >
        call->conn->srv->lim.max_request * GRPC_CONN_BODY_FACTOR) {
        call_drop_body(call);
        call_reject(call, GRPC_RESOURCE_EXHAUSTED, "too many request bytes on this connection");
        return 0;
    }
    before = call->body.len;
    if (ly_buf_append(&call->body, data, len, NULL) != 0) {
        call->conn->body_bytes -= before; /* ly_buf freed the body on failure */
        call_reject(call, GRPC_RESOURCE_EXHAUSTED, "out of memory for request");
        return 0;
    }
    call->conn->body_bytes += len;
    return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *user_data)
{
    struct grpc_call *call;

    ((struct grpc_conn *)user_data)->saw_frame = 1;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    call = nghttp2_session_get_stream_user_data(sess, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        call_check_headers(call);
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        call_dispatch(call);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct grpc_call *call = nghttp2_session_get_stream_user_data(sess, stream_id);

    (void)error_code;
    (void)user_data;
    if (call != NULL) {
        call_unlink(call);
        call_release(call);
    }
    return 0;
}

/* ---- connection I/O ----------------------------------------------------------------------- */

static int conn_read(struct grpc_conn *conn)
{
    uint8_t buf[GRPC_READ_CHUNK];
    int i;

    for (i = 0; i < GRPC_READS_PER_EVENT; i++) {
        ssize_t n = recv(conn->fd, buf, sizeof(buf), 0);
        ssize_t used;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            return -1; /* the peer closed */
        }
        /* Bad client magic (HTTP/1.1 or garbage) and protocol errors end here: close. */
        used = nghttp2_session_mem_recv(conn->sess, buf, (size_t)n);
        if (used < 0 || conn->dead) {
            return -1;
        }
    }
    return 0;
}

static void conn_io(struct loop *loop, int fd, int mask, void *arg)
{
    struct grpc_conn *conn = arg;
    int want;

    (void)fd;
    if (conn->dead) {
        goto close;
    }
    if ((mask & LOOP_READABLE) != 0 && conn_read(conn) != 0) {
        goto close;
    }
    if (nghttp2_session_send(conn->sess) != 0 || conn->dead) {
        goto close;
    }
    want = (nghttp2_session_want_read(conn->sess) ? LOOP_READABLE : 0) |
           (nghttp2_session_want_write(conn->sess) ? LOOP_WRITABLE : 0);
    if (want == 0 || loop_fd_mask(loop, conn->fd, want, NULL) != 0) {
        goto close;
    }
    return;
close:
    conn_free(conn);
}

/* A peer that connects and never speaks HTTP/2 must not hold a connection slot forever. */
static long handshake_check(struct loop *loop, uint64_t id, void *arg)
{
    struct grpc_conn *conn = arg;

    (void)loop;
    (void)id;
    conn->handshake_timer = 0;
    if (!conn->saw_frame) {
        conn->dead = 1;
        conn_kick(conn);
    }
    return LOOP_TIMER_DONE;
}

static int conn_new(struct grpc_server *srv, int fd)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_settings_entry iv[2];
    struct grpc_conn *conn;
    struct ucred uc;
    socklen_t uclen = sizeof(uc);

    conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        return -1;
    }
    conn->srv = srv;
    conn->fd = fd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &uclen) != 0 || uclen != sizeof(uc)) {
        goto err;
    }
    conn->peer.pid = uc.pid;
    conn->peer.uid = uc.uid;
    conn->peer.gid = uc.gid;
    conn->peer.conn_id = ++srv->next_conn_id;
    conn->peer.fd = fd;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        goto err;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if (nghttp2_session_server_new(&conn->sess, cbs, conn) != 0) {
        goto err;
    }
    nghttp2_session_callbacks_del(cbs);
    cbs = NULL;
    /* P6: the server preface (SETTINGS) goes out at once; grpc-js fails without it. */
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = srv->lim.max_streams;
    iv[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[1].value = (uint32_t)srv->lim.max_header_bytes;
    if (nghttp2_submit_settings(conn->sess, NGHTTP2_FLAG_NONE, iv, 2) != 0) {
        goto err;
    }
    if (loop_timer_add(srv->loop, srv->lim.handshake_ms, handshake_check, conn,
                       &conn->handshake_timer, NULL) != 0) {
        goto err;
    }
    if (loop_fd_add(srv->loop, fd, LOOP_READABLE | LOOP_WRITABLE, conn_io, conn, NULL) != 0) {
        loop_timer_del(srv->loop, conn->handshake_timer);
        goto err;
    }
    conn->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = conn;
    }
    srv->conns = conn;
    srv->nconns++;
    return 0;
err:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_session_del(conn->sess);
    free(conn);
    return -1;
}

static long accept_resume(struct loop *loop, uint64_t id, void *arg)
{
    struct grpc_server *srv = arg;

    (void)id;
    srv->accept_timer = 0;
    if (srv->lfd >= 0 && loop_fd_mask(loop, srv->lfd, LOOP_READABLE, NULL) != 0) {
        return GRPC_ACCEPT_BACKOFF_MS; /* try again later */
    }
    return LOOP_TIMER_DONE;
}

static void srv_accept(struct loop *loop, int lfd, int mask, void *arg)
{
    struct grpc_server *srv = arg;
    int i;

    (void)mask;
    for (i = 0; i < GRPC_ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && srv->accept_timer == 0) {
                /* Out of fds or memory: pause accepting instead of spinning on the listener. */
                if (loop_fd_mask(loop, lfd, 0, NULL) == 0 &&
                    loop_timer_add(loop, GRPC_ACCEPT_BACKOFF_MS, accept_resume, srv,
                                   &srv->accept_timer, NULL) != 0 &&
                    loop_fd_mask(loop, lfd, LOOP_READABLE, NULL) != 0) {
                    srv->accept_timer = 0; /* no timer and no listener: nothing more to try */
                }
            }
            return;
        }
        if (srv->nconns >= srv->lim.max_conns || srv->shutting_down || conn_new(srv, fd) != 0) {
            (void)close(fd); /* refused: nothing was sent on it */
        }
    }
}

/* ---- server ------------------------------------------------------------------------------- */

int grpc_server_new(struct loop *loop, const struct grpc_method *methods, size_t n, void *ctx,
                    const struct grpc_server_limits *limits, struct grpc_server **out,
                    struct ly_error *err)
{
    struct grpc_server *srv;
    size_t i;

    *out = NULL;
    for (i = 0; i < n; i++) {
        if (methods[i].path == NULL || methods[i].path[0] != '/' || methods[i].handler == NULL ||
            strlen(methods[i].path) >= GRPC_PATH_MAX) {
            return ly_error_setx(err, LY_ERR_USAGE, 0, "grpc: bad method entry %zu", i);
        }
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL || (n > 0 && (srv->methods = calloc(n, sizeof(*methods))) == NULL)) {
        free(srv);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (n > 0) {
        memcpy(srv->methods, methods, n * sizeof(*methods));
    }
    srv->nmethods = n;
    srv->loop = loop;
    srv->ctx = ctx;
    srv->lfd = -1;
    if (limits != NULL) {
        srv->lim = *limits;
    }
    srv->lim.max_conns = srv->lim.max_conns ? srv->lim.max_conns : GRPC_DEF_MAX_CONNS;
    srv->lim.max_streams = srv->lim.max_streams ? srv->lim.max_streams : GRPC_DEF_MAX_STREAMS;
    srv->lim.max_request = srv->lim.max_request ? srv->lim.max_request : GRPC_DEF_MAX_REQUEST;
    srv->lim.max_queue = srv->lim.max_queue ? srv->lim.max_queue : GRPC_DEF_MAX_QUEUE;
    srv->lim.max_header_bytes =
        srv->lim.max_header_bytes ? srv->lim.max_header_bytes : GRPC_DEF_MAX_HEADER_BYTES;
    srv->lim.handshake_ms = srv->lim.handshake_ms > 0 ? srv->lim.handshake_ms : GRPC_HANDSHAKE_MS;
    if (srv->lim.max_header_bytes > UINT32_MAX) {
        srv->lim.max_header_bytes = UINT32_MAX;
    }
    *out = srv;
    return 0;
}

int grpc_server_listen_unix(struct grpc_server *srv, const char *path, mode_t mode,
                            struct ly_error *err)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd = -1, bound = 0;

    if (srv->lfd >= 0 || srv->shutting_down) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "grpc: server already listening");
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path) || path[0] == '\0') {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "grpc: socket path too long or empty");
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return ly_error_setx(err, LY_ERR_USAGE, 0, "grpc: %s exists and is not a socket",
                                 path);
        }
        if (unlink(path) != 0) {
            return ly_error_set(err, LY_ERR_IO, 0, "grpc: removing stale socket %s", path);
        }
    } else if (errno != ENOENT) {
        return ly_error_set(err, LY_ERR_IO, 0, "grpc: %s", path);
    }
    srv->path = strdup(path);
    if (srv->path == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        (void)ly_error_set(err, LY_ERR_IO, 0, "grpc: socket");
        goto err;
    }
    if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        (void)ly_error_set(err, LY_ERR_IO, 0, "grpc: bind %s", path);
        goto err;
    }
    bound = 1;
    /* chmod before listen: until listen() no one can connect, so no window of wider access. */
    if (chmod(path, mode) != 0 || lstat(path, &st) != 0) {
        (void)ly_error_set(err, LY_ERR_IO, 0, "grpc: chmod %s", path);
        goto err;
    }
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
    if (listen(fd, 128) != 0) {
        (void)ly_error_set(err, LY_ERR_IO, 0, "grpc: listen %s", path);
        goto err;
    }
    if (loop_fd_add(srv->loop, fd, LOOP_READABLE, srv_accept, srv, err) != 0) {
        goto err;
    }
    srv->lfd = fd;
    return 0;
err:
    if (fd >= 0) {
        (void)close(fd);
    }
    if (bound) {
        (void)unlink(path); /* best effort: we created it */
    }
    free(srv->path);
    srv->path = NULL;
    return err != NULL ? err->code : LY_ERR_IO;
}

static void srv_close_listener(struct grpc_server *srv)
{
    struct stat st;

    if (srv->accept_timer != 0) {
        loop_timer_del(srv->loop, srv->accept_timer);
        srv->accept_timer = 0;
    }
    if (srv->lfd >= 0) {
        loop_fd_del(srv->loop, srv->lfd);
        (void)close(srv->lfd); /* listener: nothing to flush */
        srv->lfd = -1;
    }
    if (srv->path != NULL) {
        /* Remove the socket file only if it is still the one we bound (not a successor's). */
        if (lstat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino) {
            (void)unlink(srv->path); /* best effort at shutdown */
        }
        free(srv->path);
        srv->path = NULL;
    }
}

void grpc_server_shutdown(struct grpc_server *srv)
{
    struct grpc_conn *conn;

    if (srv == NULL || srv->shutting_down) {
        return;
    }
    srv->shutting_down = 1;
    srv_close_listener(srv);
    for (conn = srv->conns; conn != NULL; conn = conn->next) {
        if (nghttp2_submit_goaway(conn->sess, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(conn->sess),
                                  NGHTTP2_NO_ERROR, NULL, 0) != 0) {
            conn->dead = 1;
        }
        conn_kick(conn);
    }
}

size_t grpc_server_conn_count(const struct grpc_server *srv)
{
    return srv->nconns;
}

void grpc_server_free(struct grpc_server *srv)
{
    if (srv == NULL) {
        return;
    }
    srv_close_listener(srv);
    while (srv->conns != NULL) {
        conn_free(srv->conns);
    }
    free(srv->methods);
    free(srv);
}
