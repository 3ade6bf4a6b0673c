/*
 * admin: CBOR framing for the admin socket. libcbor's streaming decoder does the CBOR parsing;
 * this file only assembles the decoded events into a jansson tree under hard limits, so a
 * hostile length header can never make us allocate what the message does not contain.
 */
#define _GNU_SOURCE
#include "admin.h"

#include <cbor.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>


/* ---- decoding ------------------------------------------------------------------------------ */

struct frame {
    json_t *container; /* owned by the builder until attached to its parent */
    int is_map;
    size_t remaining;  /* elements (arrays) or pairs (maps) still expected */
    char *key;         /* maps: the pending key, NULL when a key is expected next */
};

struct builder {
    struct frame stack[ADMIN_MAX_DEPTH];
    size_t depth;
    json_t *root;      /* the finished item */
    size_t left;       /* input bytes not yet consumed: a bound on declared sizes */
    int failed;
    int reason;
    const char *why;
};

static void fail_b(struct builder *b, int reason, const char *why)
{
    if (!b->failed) {
        b->failed = 1;
        b->reason = reason;
        b->why = why;
    }
}

/* Attach a finished value to the current container (or make it the root); steals v. */
static void push_value(struct builder *b, json_t *v)
{
    struct frame *f;

    if (b->failed) {
        json_decref(v);
        return;
    }
    if (v == NULL) {
        fail_b(b, ADMIN_R_LIMIT, "out of memory");
        return;
    }
    for (;;) {
        if (b->depth == 0) {
            if (b->root != NULL) {
                json_decref(v);
                fail_b(b, ADMIN_R_MALFORMED, "more than one top-level item");
                return;
            }
            b->root = v;
            return;
        }
        f = &b->stack[b->depth - 1];
        if (f->is_map) {
            if (f->key == NULL) {
                if (!json_is_string(v)) {
                    json_decref(v);
                    fail_b(b, ADMIN_R_UNSUPPORTED, "map key is not a text string");
                    return;
                }
                f->key = strdup(json_string_value(v));
                json_decref(v);
                if (f->key == NULL) {
                    fail_b(b, ADMIN_R_LIMIT, "out of memory");
                }
                return;
            }
            if (json_object_get(f->container, f->key) != NULL) {
                json_decref(v);
                fail_b(b, ADMIN_R_MALFORMED, "duplicate map key");
                return;
            }
            if (json_object_set_new(f->container, f->key, v) != 0) {
                fail_b(b, ADMIN_R_LIMIT, "cannot add map entry");
                return;
            }
            free(f->key);
            f->key = NULL;
        } else if (json_array_append_new(f->container, v) != 0) {
            fail_b(b, ADMIN_R_LIMIT, "cannot add array element");
            return;
        }
        f->remaining--;
        if (f->remaining > 0) {
            return;
        }
        /* Container complete: pop it and attach it to its parent in turn. */
        v = f->container;
        f->container = NULL;
        b->depth--;
    }
}

static void open_container(struct builder *b, int is_map, size_t n)
{
    struct frame *f;
    json_t *c;

    if (b->failed) {
        return;
    }
    /* Every element takes at least one byte (two per map pair): no promise we cannot keep. */
    if (n > b->left || (is_map && n > b->left / 2)) {
        fail_b(b, ADMIN_R_LIMIT, "declared size exceeds the message");
        return;
    }
    c = is_map ? json_object() : json_array();
    if (n == 0) {
        push_value(b, c);
        return;
    }
    if (b->depth >= ADMIN_MAX_DEPTH) {
        json_decref(c);
        fail_b(b, ADMIN_R_LIMIT, "nesting too deep");
        return;
    }
    if (c == NULL) {
        fail_b(b, ADMIN_R_LIMIT, "out of memory");
        return;
    }
    f = &b->stack[b->depth++];
    f->container = c;
    f->is_map = is_map;
    f->remaining = n;
    f->key = NULL;
}

static void on_uint(struct builder *b, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        fail_b(b, ADMIN_R_LIMIT, "integer out of range");
        return;
    }
    push_value(b, json_integer((json_int_t)v));
}

static void on_negint(struct builder *b, uint64_t v)
{
    /* CBOR negative integers encode -1 - v. */
    if (v > (uint64_t)INT64_MAX) {
        fail_b(b, ADMIN_R_LIMIT, "integer out of range");
        return;
    }
    push_value(b, json_integer(-1 - (json_int_t)v));
}

static void cb_u8(void *ctx, uint8_t v) { on_uint(ctx, v); }
static void cb_u16(void *ctx, uint16_t v) { on_uint(ctx, v); }
static void cb_u32(void *ctx, uint32_t v) { on_uint(ctx, v); }
static void cb_u64(void *ctx, uint64_t v) { on_uint(ctx, v); }
static void cb_n8(void *ctx, uint8_t v) { on_negint(ctx, v); }
static void cb_n16(void *ctx, uint16_t v) { on_negint(ctx, v); }
static void cb_n32(void *ctx, uint32_t v) { on_negint(ctx, v); }
static void cb_n64(void *ctx, uint64_t v) { on_negint(ctx, v); }

static void cb_string(void *ctx, cbor_data data, size_t len)
{
    struct builder *b = ctx;

    if (len > ADMIN_MAX_TEXT) {
        fail_b(b, ADMIN_R_LIMIT, "text string too long");
        return;
    }
    /* json_stringn refuses invalid UTF-8, which RFC 8949 also forbids in text strings. */
    {
        json_t *s = json_stringn((const char *)data, len);
        if (s == NULL) {
            fail_b(b, ADMIN_R_MALFORMED, "text string is not valid UTF-8 or holds a NUL");
            return;
        }
        if (memchr(data, '\0', len) != NULL) {
            json_decref(s);
            fail_b(b, ADMIN_R_MALFORMED, "text string holds a NUL");
            return;
        }
        push_value(b, s);
    }
}

static void cb_array(void *ctx, size_t n) { open_container(ctx, 0, n); }
static void cb_map(void *ctx, size_t n) { open_container(ctx, 1, n); }
static void cb_null(void *ctx) { push_value(ctx, json_null()); }
static void cb_bool(void *ctx, bool v) { push_value(ctx, json_boolean(v)); }

static void cb_indef(void *ctx)
{
    fail_b(ctx, ADMIN_R_UNSUPPORTED, "indefinite-length items are not accepted");
}

static void cb_bytes(void *ctx, cbor_data data, size_t len)
{
    (void)data;
    (void)len;
    fail_b(ctx, ADMIN_R_UNSUPPORTED, "byte strings are not accepted");
}

static void cb_tag(void *ctx, uint64_t v)
{
    (void)v;
    fail_b(ctx, ADMIN_R_UNSUPPORTED, "tags are not accepted");
}

static void cb_float(void *ctx, float v)
{
    (void)v;
    fail_b(ctx, ADMIN_R_UNSUPPORTED, "floating-point values are not accepted");
}

static void cb_double(void *ctx, double v)
{
    (void)v;
    fail_b(ctx, ADMIN_R_UNSUPPORTED, "floating-point values are not accepted");
}

static void cb_undefined(void *ctx)
{
    fail_b(ctx, ADMIN_R_UNSUPPORTED, "undefined is not accepted");
}

static const struct cbor_callbacks admin_callbacks = {
    .uint8 = cb_u8,
    .uint16 = cb_u16,
    .uint32 = cb_u32,
    .uint64 = cb_u64,
    .negint8 = cb_n8,
    .negint16 = cb_n16,
    .negint32 = cb_n32,
    .negint64 = cb_n64,
    .byte_string_start = cb_indef,
    .byte_string = cb_bytes,
    .string = cb_string,
    .string_start = cb_indef,
    .indef_array_start = cb_indef,
    .array_start = cb_array,
    .indef_map_start = cb_indef,
    .map_start = cb_map,
    .tag = cb_tag,
    .float2 = cb_float,
    .float4 = cb_float,
    .float8 = cb_double,
    .undefined = cb_undefined,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_indef,
};

static void builder_free(struct builder *b)
{
    while (b->depth > 0) {
        struct frame *f = &b->stack[--b->depth];
        json_decref(f->container);
        free(f->key);
    }
    json_decref(b->root);
    b->root = NULL;
}

int admin_cbor_decode(const uint8_t *data, size_t len, json_t **out, struct ly_error *err)
{
    struct builder b;
    size_t off = 0;

    ly_error_clear(err);
    *out = NULL;
    memset(&b, 0, sizeof(b));
    if (len == 0 || len > ADMIN_MAX_MESSAGE) {
        return ly_error_setx(err, LY_ERR_PARSE, len == 0 ? ADMIN_R_MALFORMED : ADMIN_R_LIMIT,
                             "admin message is empty or larger than %u bytes", ADMIN_MAX_MESSAGE);
    }
    while (off < len && !b.failed) {
        struct cbor_decoder_result r;

        if (b.root != NULL) {
            fail_b(&b, ADMIN_R_MALFORMED, "trailing bytes after the message");
            break;
        }
        b.left = len - off - 1;
        r = cbor_stream_decode(data + off, len - off, &admin_callbacks, &b);
        if (r.status == CBOR_DECODER_NEDATA) {
            fail_b(&b, ADMIN_R_MALFORMED, "message is truncated");
            break;
        }
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0) {
            fail_b(&b, ADMIN_R_MALFORMED, "not well-formed CBOR");
            break;
        }
        off += r.read;
    }
    if (!b.failed && (b.root == NULL || b.depth != 0)) {
        fail_b(&b, ADMIN_R_MALFORMED, "message is truncated");
    }
    if (b.failed) {
        builder_free(&b);
        return ly_error_setx(err, LY_ERR_PARSE, b.reason, "bad admin message: %s", b.why);
    }
    *out = b.root;
    return 0;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static cbor_item_t *to_cbor(const json_t *v, int depth)
{
    cbor_item_t *item = NULL;

    if (depth > ADMIN_MAX_DEPTH) {
        return NULL;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *val;

        item = cbor_new_definite_map(json_object_size(v));
        if (item == NULL) {
            return NULL;
        }
        json_object_foreach((json_t *)v, k, val) {
            cbor_item_t *ck = cbor_build_string(k);
            cbor_item_t *cv = to_cbor(val, depth + 1);
            struct cbor_pair pair;

            if (ck == NULL || cv == NULL) {
                if (ck != NULL) {
                    cbor_decref(&ck);
                }
                if (cv != NULL) {
                    cbor_decref(&cv);
                }
                cbor_decref(&item);
                return NULL;
            }
            pair.key = cbor_move(ck);
            pair.value = cbor_move(cv);
            if (!cbor_map_add(item, pair)) {
                cbor_decref(&item);
                return NULL;
            }
        }
        return item;
    }
    case JSON_ARRAY: {
        size_t i;

        item = cbor_new_definite_array(json_array_size(v));
        if (item == NULL) {
            return NULL;
        }
        for (i = 0; i < json_array_size(v); i++) {
            cbor_item_t *cv = to_cbor(json_array_get(v, i), depth + 1);
            if (cv == NULL || !cbor_array_push(item, cbor_move(cv))) {
                cbor_decref(&item);
                return NULL;
            }
        }
        return item;
    }
    case JSON_STRING:
        return cbor_build_stringn(json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        json_int_t n = json_integer_value(v);
        if (n >= 0) {
            return cbor_build_uint64((uint64_t)n);
        }
        item = cbor_build_uint64((uint64_t)(-1 - n));
        if (item != NULL) {
            cbor_mark_negint(item);
        }
        return item;
    }
    case JSON_TRUE:
        return cbor_build_bool(true);
    case JSON_FALSE:
        return cbor_build_bool(false);
    case JSON_NULL:
        return cbor_new_null();
    case JSON_REAL:
    default:
        return NULL;
    }
}

int admin_cbor_encode(const json_t *v, struct ly_buf *out, struct ly_error *err)
{
    cbor_item_t *item;
    unsigned char *buf = NULL;
    size_t bufsz = 0;
    size_t n;
    int rc;

    ly_error_clear(err);
    ly_buf_init(out, ADMIN_MAX_MESSAGE);
    item = to_cbor(v, 0);
    if (item == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "admin message cannot be encoded (too deep, a real number, or out "
                             "of memory)");
    }
    n = cbor_serialize_alloc(item, &buf, &bufsz);
    cbor_decref(&item);
    if (n == 0) {
        free(buf);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "cannot serialise admin message");
    }
    rc = ly_buf_append(out, buf, n, err);
    free(buf);
    return rc;
}

/* ---- framing ------------------------------------------------------------------------------- */

int admin_frame_encode(const json_t *v, struct ly_buf *out, struct ly_error *err)
{
    struct ly_buf body;
    uint8_t hdr[4];
    int rc;

    rc = admin_cbor_encode(v, &body, err);
    if (rc < 0) {
        return rc;
    }
    hdr[0] = (uint8_t)(body.len >> 24);
    hdr[1] = (uint8_t)(body.len >> 16);
    hdr[2] = (uint8_t)(body.len >> 8);
    hdr[3] = (uint8_t)body.len;
    ly_buf_init(out, ADMIN_MAX_MESSAGE + 4);
    rc = ly_buf_append(out, hdr, 4, err);
    if (rc == 0) {
        rc = ly_buf_append(out, body.data, body.len, err);
    }
    ly_buf_free(&body);
    return rc;
}

int admin_frame_check(const uint8_t *buf, size_t len, size_t *frame_len, struct ly_error *err)
{
    uint32_t n;

    *frame_len = 0;
    if (len < 4) {
        return 0;
    }
    n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) | buf[3];
    if (n == 0 || n > ADMIN_MAX_MESSAGE) {
        return ly_error_setx(err, LY_ERR_PARSE, ADMIN_R_LIMIT,
                             "admin frame announces %u bytes (allowed 1..%u)", n,
                             ADMIN_MAX_MESSAGE);
    }
    if (len - 4 >= n) {
        *frame_len = 4 + (size_t)n;
    }
    return 0;
}

/* ---- requests and responses ---------------------------------------------------------------- */

int admin_request_parse(const json_t *req, const char **op, const json_t **args,
                        struct ly_error *err)
{
    const json_t *o;
    const json_t *a;
    const char *s;
    size_t i;
    size_t n;

    ly_error_clear(err);
    if (!json_is_object(req)) {
        return ly_error_setx(err, LY_ERR_PARSE, ADMIN_R_SHAPE, "admin request is not a map");
    }
    o = json_object_get(req, "op");
    if (!json_is_string(o)) {
        return ly_error_setx(err, LY_ERR_PARSE, ADMIN_R_SHAPE,
                             "admin request has no text \"op\"");
    }
    s = json_string_value(o);
    n = json_string_length(o);
    if (n == 0 || n > 64) {
        return ly_error_setx(err, LY_ERR_PARSE, ADMIN_R_SHAPE, "admin \"op\" has a bad length");
    }
    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '.')) {
            return ly_error_setx(err, LY_ERR_PARSE, ADMIN_R_SHAPE,
                                 "admin \"op\" may hold only a-z and '.'");
        }
    }
    a = json_object_get(req, "args");
    if (a != NULL && !json_is_object(a)) {
        return ly_error_setx(err, LY_ERR_PARSE, ADMIN_R_SHAPE, "admin \"args\" is not a map");
    }
    *op = s;
    *args = a;
    return 0;
}

json_t *admin_response_ok(json_t *result)
{
    return json_pack("{s:b, s:o}", "ok", 1, "result", result != NULL ? result : json_null());
}

json_t *admin_response_error(int code, const char *msg)
{
    return json_pack("{s:b, s:i, s:s}", "ok", 0, "code", code, "error", msg);
}

/* ---- client -------------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline, struct ly_error *err)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int64_t left = deadline - mono_ms();
        int r;

        if (left <= 0) {
            return ly_error_setx(err, LY_ERR_IO, 0, "admin socket: timed out");
        }
        r = poll(&p, 1, (int)left);
        if (r > 0) {
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return ly_error_set(err, LY_ERR_IO, 0, "admin socket: poll");
        }
    }
}

int admin_call(const char *path, const char *op, const json_t *args, int timeout_ms,
               json_t **result, struct ly_error *err)
{
    struct sockaddr_un sa;
    struct ly_buf out;
    struct ly_buf in;
    json_t *req = NULL;
    json_t *resp = NULL;
    int64_t deadline = mono_ms() + timeout_ms;
    size_t sent = 0;
    size_t flen = 0;
    int fd = -1;
    int rc;

    ly_error_clear(err);
    *result = NULL;
    ly_buf_init(&out, 0);
    ly_buf_init(&in, ADMIN_MAX_MESSAGE + 4);
    if (strlen(path) >= sizeof(sa.sun_path)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "admin socket path too long: %.64s", path);
    }
    /* "O" takes a new reference to the caller's args; "o" steals the fresh empty object. */
    req = args != NULL ? json_pack("{s:s, s:O}", "op", op, "args", args)
                       : json_pack("{s:s, s:o}", "op", op, "args", json_object());
    if (req == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    rc = admin_frame_encode(req, &out, err);
    json_decref(req);
    if (rc < 0) {
        return rc;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "admin socket");
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "cannot reach the lanyard server at %s", path);
        goto out;
    }
    while (sent < out.len) {
        ssize_t n;
        rc = wait_fd(fd, POLLOUT, deadline, err);
        if (rc < 0) {
            goto out;
        }
        n = send(fd, out.data + sent, out.len - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            rc = ly_error_set(err, LY_ERR_IO, 0, "cannot reach the lanyard server at %s", path);
            goto out;
        }
        sent += (size_t)n;
    }
    for (;;) {
        uint8_t chunk[4096];
        ssize_t n;

        rc = admin_frame_check(in.data ? in.data : chunk, in.len, &flen, err);
        if (rc < 0) {
            goto out;
        }
        if (flen > 0) {
            break;
        }
        rc = wait_fd(fd, POLLIN, deadline, err);
        if (rc < 0) {
            goto out;
        }
        n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            rc = ly_error_set(err, LY_ERR_IO, 0, "admin socket: receive");
            goto out;
        }
        if (n == 0) {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "the lanyard server closed the admin connection");
            goto out;
        }
        rc = ly_buf_append(&in, chunk, (size_t)n, err);
        if (rc < 0) {
            goto out;
        }
    }
    rc = admin_cbor_decode(in.data + 4, flen - 4, &resp, err);
    if (rc < 0) {
        goto out;
    }
    if (!json_is_object(resp) || !json_is_boolean(json_object_get(resp, "ok"))) {
        rc = ly_error_setx(err, LY_ERR_PARSE, ADMIN_R_SHAPE, "malformed admin response");
        goto out;
    }
    if (!json_is_true(json_object_get(resp, "ok"))) {
        json_t *c = json_object_get(resp, "code");
        json_t *m = json_object_get(resp, "error");
        int code = json_is_integer(c) ? (int)json_integer_value(c) : LY_ERR_INTERNAL;
        if (code >= 0 || code < LY_ERR_INTERNAL) {
            code = LY_ERR_INTERNAL;
        }
        rc = ly_error_setx(err, code, 0, "%s",
                           json_is_string(m) ? json_string_value(m) : "server refused the request");
        goto out;
    }
    *result = json_incref(json_object_get(resp, "result"));
    if (*result == NULL) {
        *result = json_null();
    }
    rc = 0;
out:
    json_decref(resp);
    ly_buf_free(&out);
    ly_buf_free(&in);
    if (fd >= 0) {
        (void)close(fd); /* request/response done or failed; nothing buffered to lose */
    }
    return rc;
}
