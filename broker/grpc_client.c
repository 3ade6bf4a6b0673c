/*
 * grpc_client: blocking gRPC calls over an nghttp2 client session on a Unix socket, with poll()
 * and a deadline. It frames the request, unframes responses against a size cap and maps how the
 * stream ended to a gRPC status; it never decodes a message.
 */
#define _GNU_SOURCE
#include "grpc_client.h"

#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GRPC_CLIENT_MAX_MD 32
#define GRPC_CLIENT_READ_CHUNK 16384

struct grpc_client {
    int fd;
    nghttp2_session *sess;
    int dead;
    size_t max_msg;
    const volatile sig_atomic_t *intr; /* borrowed; see grpc_client_set_interrupt */
    /* the call in progress */
    int32_t sid;
    struct ly_buf req;
    size_t req_off;
    struct ly_buf in; /* unframed response bytes not yet delivered */
    grpc_client_msg_fn on_msg;
    void *arg;
    int ended;
    int cancel;       /* set by on_msg or a framing error: reset the stream */
    int local_status; /* status decided on our side (-1: none) */
    char local_msg[128];
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_msg[256];
    uint32_t rst_code;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail with a valid pointer */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static nghttp2_nv mknv(const char *name, const char *value)
{
    nghttp2_nv nv;

    nv.name = (uint8_t *)(uintptr_t)name; /* nghttp2 copies: no NO_COPY flags */
    nv.namelen = strlen(name);
    nv.value = (uint8_t *)(uintptr_t)value;
    nv.valuelen = strlen(value);
    nv.flags = NGHTTP2_NV_FLAG_NONE;
    return nv;
}

static void set_local(struct grpc_client *c, int status, const char *msg)
{
    if (c->local_status < 0) {
        c->local_status = status;
        (void)snprintf(c->local_msg, sizeof(c->local_msg), "%s", msg); /* may truncate: fine */
    }
}

static ssize_t on_send(nghttp2_session *sess, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct grpc_client *c = user_data;
    ssize_t n;

    (void)sess;
    (void)flags;
    do {
        n = send(c->fd, data, length, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? NGHTTP2_ERR_WOULDBLOCK
                                                         : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return n;
}

static ssize_t req_read(nghttp2_session *sess, int32_t stream_id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct grpc_client *c = user_data;
    size_t avail = c->req.len - c->req_off;
    size_t n = avail < length ? avail : length;

    (void)sess;
    (void)stream_id;
    (void)source;
    memcpy(buf, c->req.data + c->req_off, n);
    c->req_off += n;
    if (c->req_off == c->req.len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct grpc_client *c = user_data;
    char v[16];

    (void)sess;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != c->sid) {
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        if (valuelen == 3) {
            c->http_status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        }
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        size_t i;
        int s = 0;
        if (valuelen == 0 || valuelen >= sizeof(v)) {
            return 0;
        }
        for (i = 0; i < valuelen; i++) {
            if (value[i] < '0' || value[i] > '9') {
                return 0;
            }
            s = s * 10 + (value[i] - '0');
        }
        c->grpc_status = s;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        (void)grpc_percent_decode((const char *)value, valuelen, c->grpc_msg,
                                  sizeof(c->grpc_msg));
    }
    return 0;
}

/* Deliver every complete message in c->in. */
static void deliver(struct grpc_client *c)
{
    size_t off = 0;

    while (!c->cancel && c->in.len - off >= 5) {
        const uint8_t *p = c->in.data + off;
        size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | (size_t)p[4];
        if (p[0] != 0) {
            set_local(c, GRPC_INTERNAL, "compressed or malformed response message");
            c->cancel = 1;
            break;
        }
        if (len > c->max_msg) {
            set_local(c, GRPC_RESOURCE_EXHAUSTED, "response message too large");
            c->cancel = 1;
            break;
        }
        if (c->in.len - off - 5 < len) {
            break;
        }
        if (c->on_msg != NULL && c->on_msg(p + 5, len, c->arg) != 0) {
            set_local(c, GRPC_CANCELLED, "cancelled by the client");
            c->cancel = 1;
        }
        off += 5 + len;
    }
    if (off > 0) {
        memmove(c->in.data, c->in.data + off, c->in.len - off);
        c->in.len -= off;
    }
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct grpc_client *c = user_data;

    (void)sess;
    (void)flags;
    if (stream_id != c->sid || c->cancel) {
        return 0;
    }
    if (ly_buf_append(&c->in, data, len, NULL) != 0) {
        set_local(c, GRPC_RESOURCE_EXHAUSTED, "response message too large");
        c->cancel = 1;
        return 0;
    }
    deliver(c);
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct grpc_client *c = user_data;

    (void)sess;
    if (stream_id == c->sid) {
        c->ended = 1;
        c->rst_code = error_code;
    }
    return 0;
}

int grpc_client_connect_unix(const char *path, struct grpc_client **out, struct ly_error *err)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_settings_entry iv[1];
    struct sockaddr_un sa;
    struct grpc_client *c;
    int flags;

    *out = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path) || path[0] == '\0') {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "grpc: socket path too long or empty");
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    c->max_msg = GRPC_CLIENT_MAX_MESSAGE;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        (void)ly_error_set(err, LY_ERR_IO, 0, "grpc: socket");
        goto err;
    }
    if (connect(c->fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        (void)ly_error_set(err, LY_ERR_IO, 0, "grpc: connect %s", path);
        goto err;
    }
    flags = fcntl(c->fd, F_GETFL);
    if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        (void)ly_error_set(err, LY_ERR_IO, 0, "grpc: fcntl");
        goto err;
    }
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        (void)ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    if (nghttp2_session_client_new(&c->sess, cbs, c) != 0) {
        (void)ly_error_setx(err, LY_ERR_NOMEM, 0, "grpc: nghttp2 session");
        goto err;
    }
    nghttp2_session_callbacks_del(cbs);
    cbs = NULL;
    iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[0].value = 0;
    if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 1) != 0 ||
        nghttp2_session_send(c->sess) != 0) {
        (void)ly_error_setx(err, LY_ERR_IO, 0, "grpc: sending the HTTP/2 preface failed");
        goto err;
    }
    *out = c;
    return 0;
err:
    nghttp2_session_callbacks_del(cbs);
    grpc_client_free(c);
    return err != NULL ? err->code : LY_ERR_IO;
}

void grpc_client_free(struct grpc_client *c)
{
    if (c == NULL) {
        return;
    }
    nghttp2_session_del(c->sess);
    if (c->fd >= 0) {
        (void)close(c->fd); /* socket: nothing to report */
    }
    ly_buf_free(&c->req);
    ly_buf_free(&c->in);
    free(c);
}

void grpc_client_set_max_message(struct grpc_client *c, size_t max)
{
    c->max_msg = max != 0 ? max : GRPC_CLIENT_MAX_MESSAGE;
}

void grpc_client_set_interrupt(struct grpc_client *c, const volatile sig_atomic_t *flag)
{
    c->intr = flag;
}

int grpc_client_is_dead(const struct grpc_client *c)
{
    return c->dead;
}

/* Read what is there; -1 when the connection is gone or broken. */
static int client_read(struct grpc_client *c)
{
    uint8_t buf[GRPC_CLIENT_READ_CHUNK];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        if (n == 0 || nghttp2_session_mem_recv(c->sess, buf, (size_t)n) < 0) {
            return -1;
        }
    }
}

static int http_to_grpc(int http)
{
    switch (http) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

static void final_status(struct grpc_client *c, struct grpc_client_status *st)
{
    if (c->local_status >= 0) {
        st->status = c->local_status;
        (void)snprintf(st->message, sizeof(st->message), "%s", c->local_msg);
    } else if (c->http_status != 200) {
        st->status = http_to_grpc(c->http_status);
        (void)snprintf(st->message, sizeof(st->message), "HTTP status %d", c->http_status);
    } else if (c->grpc_status >= 0) {
        st->status = c->grpc_status;
        (void)snprintf(st->message, sizeof(st->message), "%s", c->grpc_msg);
        if (c->in.len > 0 && st->status == GRPC_OK) {
            st->status = GRPC_INTERNAL;
            (void)snprintf(st->message, sizeof(st->message), "truncated response message");
        }
    } else if (c->rst_code == NGHTTP2_REFUSED_STREAM) {
        st->status = GRPC_UNAVAILABLE;
        (void)snprintf(st->message, sizeof(st->message), "stream refused");
    } else if (c->rst_code == NGHTTP2_CANCEL) {
        st->status = GRPC_CANCELLED;
        (void)snprintf(st->message, sizeof(st->message), "stream cancelled by the server");
    } else if (c->rst_code == NGHTTP2_ENHANCE_YOUR_CALM) {
        st->status = GRPC_RESOURCE_EXHAUSTED;
        (void)snprintf(st->message, sizeof(st->message), "stream reset: enhance your calm");
    } else if (c->rst_code != 0) {
        st->status = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "stream reset (HTTP/2 error %u)",
                       (unsigned)c->rst_code);
    } else {
        st->status = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "stream ended without grpc-status");
    }
}

int grpc_client_call(struct grpc_client *c, const char *path, const struct grpc_client_md *md,
                     size_t nmd, const uint8_t *req, size_t req_len, long timeout_ms,
                     grpc_client_msg_fn on_msg, void *arg, struct grpc_client_status *st,
                     struct ly_error *err)
{
    nghttp2_nv nva[7 + GRPC_CLIENT_MAX_MD];
    nghttp2_data_provider prd;
    uint8_t pfx[5];
    uint64_t deadline = timeout_ms > 0 ? now_ms() + (uint64_t)timeout_ms : 0;
    size_t n = 0, i;
    int32_t sid;

    st->status = GRPC_UNKNOWN;
    st->message[0] = '\0';
    if (c->dead) {
        return ly_error_setx(err, LY_ERR_IO, 0, "grpc: connection is closed");
    }
    if (nmd > GRPC_CLIENT_MAX_MD || req_len > UINT32_MAX || path[0] != '/') {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "grpc: bad call arguments");
    }
    ly_buf_free(&c->req);
    ly_buf_free(&c->in);
    ly_buf_init(&c->req, req_len + 5);
    ly_buf_init(&c->in, c->max_msg + 5 + GRPC_CLIENT_READ_CHUNK);
    pfx[0] = 0;
    pfx[1] = (uint8_t)(req_len >> 24);
    pfx[2] = (uint8_t)(req_len >> 16);
    pfx[3] = (uint8_t)(req_len >> 8);
    pfx[4] = (uint8_t)req_len;
    if (ly_buf_append(&c->req, pfx, 5, err) != 0 ||
        (req_len > 0 && ly_buf_append(&c->req, req, req_len, err) != 0)) {
        return err != NULL ? err->code : LY_ERR_NOMEM;
    }
    c->req_off = 0;
    c->on_msg = on_msg;
    c->arg = arg;
    c->ended = c->cancel = 0;
    c->local_status = -1;
    c->http_status = 0;
    c->grpc_status = -1;
    c->grpc_msg[0] = '\0';
    c->rst_code = 0;
    nva[n++] = mknv(":method", "POST");
    nva[n++] = mknv(":scheme", "http");
    nva[n++] = mknv(":path", path);
    nva[n++] = mknv(":authority", "localhost");
    nva[n++] = mknv("content-type", "application/grpc");
    nva[n++] = mknv("te", "trailers");
    nva[n++] = mknv("user-agent", "lanyard-grpc/0.1");
    for (i = 0; i < nmd; i++) {
        nva[n++] = mknv(md[i].name, md[i].value);
    }
    prd.source.ptr = c;
    prd.read_callback = req_read;
    /* sid is set before any callback can run: submit only queues. */
    c->sid = -1;
    sid = nghttp2_submit_request(c->sess, NULL, nva, n, &prd, NULL);
    if (sid < 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "grpc: submit request: %s",
                             nghttp2_strerror(sid));
    }
    c->sid = sid;
    while (!c->ended) {
        struct pollfd pfd;
        int wait = -1, rc;

        if (c->cancel) {
            /* Only fails if the stream is already gone, which ends the loop anyway. */
            (void)nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_CANCEL);
            c->cancel = 0;
            c->on_msg = NULL;
            set_local(c, GRPC_CANCELLED, "cancelled");
        }
        if (nghttp2_session_send(c->sess) != 0) {
            c->dead = 1;
            set_local(c, GRPC_UNAVAILABLE, "connection failed while sending");
            break;
        }
        if (c->ended) {
            break;
        }
        if (deadline != 0) {
            uint64_t t = now_ms();
            if (t >= deadline) {
                (void)nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, c->sid,
                                                NGHTTP2_CANCEL); /* best effort */
                (void)nghttp2_session_send(c->sess);             /* best effort */
                set_local(c, GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
                break;
            }
            wait = (int)(deadline - t);
        }
        if (c->intr != NULL) {
            if (*c->intr != 0) {
                (void)nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, c->sid,
                                                NGHTTP2_CANCEL); /* best effort */
                (void)nghttp2_session_send(c->sess);             /* best effort */
                set_local(c, GRPC_CANCELLED, "interrupted");
                break;
            }
            if (wait < 0 || wait > GRPC_CLIENT_INTR_POLL_MS) {
                wait = GRPC_CLIENT_INTR_POLL_MS;
            }
        }
        pfd.fd = c->fd;
        pfd.events = POLLIN | (nghttp2_session_want_write(c->sess) ? POLLOUT : 0);
        pfd.revents = 0;
        rc = poll(&pfd, 1, wait);
        if (rc < 0 && errno != EINTR) {
            c->dead = 1;
            set_local(c, GRPC_UNAVAILABLE, "poll failed");
            break;
        }
        if (rc > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0 && client_read(c) != 0) {
            c->dead = 1;
            if (!c->ended) {
                set_local(c, GRPC_UNAVAILABLE, "connection closed");
            }
            break;
        }
    }
    final_status(c, st);
    c->sid = -1;
    if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess)) {
        c->dead = 1;
    }
    return 0;
}

struct unary_ctx {
    struct ly_buf *resp;
    int count;
    int failed;
};

static int unary_msg(const uint8_t *msg, size_t len, void *arg)
{
    struct unary_ctx *u = arg;

    if (++u->count > 1 || ly_buf_append(u->resp, msg, len, NULL) != 0) {
        u->failed = 1;
        return 1;
    }
    return 0;
}

int grpc_client_unary(struct grpc_client *c, const char *path, const struct grpc_client_md *md,
                      size_t nmd, const uint8_t *req, size_t req_len, long timeout_ms,
                      struct ly_buf *resp, struct grpc_client_status *st, struct ly_error *err)
{
    struct unary_ctx u;

    u.resp = resp;
    u.count = 0;
    u.failed = 0;
    if (grpc_client_call(c, path, md, nmd, req, req_len, timeout_ms, unary_msg, &u, st, err) !=
        0) {
        return err != NULL ? err->code : LY_ERR_IO;
    }
    if (u.failed) {
        st->status = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "%s",
                       u.count > 1 ? "more than one response to a unary call"
                                   : "response does not fit the buffer");
    } else if (st->status == GRPC_OK && u.count == 0) {
        st->status = GRPC_INTERNAL;
        (void)snprintf(st->message, sizeof(st->message), "no response message");
    }
    return 0;
}
