/*
 * gwhttp: libhttp-parser callbacks that store the head of a message in a fixed arena and either
 * collect or stream its body. The parser is paused at the end of each message so that bytes of
 * a pipelined next message stay unconsumed.
 */
#define _GNU_SOURCE
#include "gwhttp.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static struct gwhttp_msg *msg_of(http_parser *p)
{
    return p->data;
}

static int arena_add(struct gwhttp_msg *m, const char *at, size_t len)
{
    if (len > GWHTTP_MAX_HEAD - m->head_len) {
        (void)ly_error_setx(&m->err, LY_ERR_PARSE, GWHTTP_R_HEAD_TOO_BIG,
                            "message head over %u bytes", GWHTTP_MAX_HEAD);
        return -1;
    }
    memcpy(m->head + m->head_len, at, len);
    m->head_len += len;
    return 0;
}

static int on_begin(http_parser *p)
{
    msg_of(p)->started = 1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct gwhttp_msg *m = msg_of(p);
    if (m->url_len == 0) {
        m->url = (uint32_t)m->head_len;
    }
    m->url_len += (uint32_t)len;
    return arena_add(m, at, len);
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct gwhttp_msg *m = msg_of(p);
    if (m->n == 0 && !m->url_ended) {
        /* The URL is complete once the first header starts: end it with a NUL. */
        if (arena_add(m, "", 1) < 0) {
            return -1;
        }
        m->url_ended = 1;
    }
    if (m->n == 0 || m->in_value) {
        if (m->n == GWHTTP_MAX_HEADERS) {
            (void)ly_error_setx(&m->err, LY_ERR_PARSE, GWHTTP_R_HEAD_TOO_BIG,
                                "more than %d headers", GWHTTP_MAX_HEADERS);
            return -1;
        }
        m->n++;
        m->h[m->n - 1].name = (uint32_t)m->head_len;
        m->h[m->n - 1].name_len = 0;
        m->h[m->n - 1].value = 0;
        m->h[m->n - 1].value_len = 0;
        m->in_value = 0;
    }
    m->h[m->n - 1].name_len += (uint32_t)len;
    return arena_add(m, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct gwhttp_msg *m = msg_of(p);
    if (!m->in_value) {
        m->in_value = 1;
        m->h[m->n - 1].value = (uint32_t)m->head_len;
    }
    m->h[m->n - 1].value_len += (uint32_t)len;
    return arena_add(m, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct gwhttp_msg *m = msg_of(p);
    int rc = 0;

    /* A message without headers: the URL still needs its NUL for gwhttp_url(). */
    if (!m->url_ended) {
        if (arena_add(m, "", 1) < 0) {
            return -1;
        }
        m->url_ended = 1;
    }
    m->headers_done = 1;
    m->keep_alive = http_should_keep_alive(p);
    m->chunked = (p->flags & F_CHUNKED) != 0;
    m->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    m->length = m->has_length ? p->content_length : 0;
    m->method = p->method;
    m->status = (int)p->status_code;
    if (p->http_major != 1) {
        (void)ly_error_setx(&m->err, LY_ERR_PARSE, GWHTTP_R_SYNTAX,
                            "HTTP/%u.%u is not supported (HTTP/1.x only)", p->http_major,
                            p->http_minor);
        return -1;
    }
    if (p->upgrade || (p->type == HTTP_REQUEST && p->method == HTTP_CONNECT)) {
        (void)ly_error_setx(&m->err, LY_ERR_PARSE, GWHTTP_R_UPGRADE,
                            "protocol upgrades and CONNECT are not supported");
        return -1;
    }
    if (m->collect && m->has_length && m->length > m->body.max) {
        (void)ly_error_setx(&m->err, LY_ERR_PARSE, GWHTTP_R_BODY_TOO_BIG,
                            "a body of %llu bytes is over the %zu-byte limit",
                            (unsigned long long)m->length, m->body.max);
        return -1;
    }
    if (m->on_head != NULL) {
        rc = m->on_head(m, m->arg);
        if (rc < 0) {
            if (m->err.code == 0) {
                (void)ly_error_setx(&m->err, LY_ERR_IO, GWHTTP_R_ABORTED, "aborted");
            }
            return -1;
        }
    }
    /* For a response, 1 tells the parser there is no body (the answer to a HEAD). */
    return rc == 1 ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct gwhttp_msg *m = msg_of(p);

    if (m->collect) {
        if (len > m->body.max - m->body.len) {
            (void)ly_error_setx(&m->err, LY_ERR_PARSE, GWHTTP_R_BODY_TOO_BIG,
                                "the body is over the %zu-byte limit", m->body.max);
            return -1;
        }
        return ly_buf_append(&m->body, at, len, &m->err) < 0 ? -1 : 0;
    }
    if (m->on_body != NULL && m->on_body(m, at, len, m->arg) < 0) {
        if (m->err.code == 0) {
            (void)ly_error_setx(&m->err, LY_ERR_IO, GWHTTP_R_ABORTED, "aborted");
        }
        return -1;
    }
    return 0;
}

static int on_complete(http_parser *p)
{
    struct gwhttp_msg *m = msg_of(p);
    m->done = 1;
    http_parser_pause(p, 1);
    return 0;
}

void gwhttp_init(struct gwhttp_msg *m, enum http_parser_type type, int collect, size_t max_body,
                 gwhttp_head_fn on_head, gwhttp_body_fn on_body_fn, void *arg)
{
    memset(m, 0, sizeof(*m));
    http_parser_init(&m->parser, type);
    m->parser.data = m;
    http_parser_settings_init(&m->settings);
    m->settings.on_message_begin = on_begin;
    m->settings.on_url = on_url;
    m->settings.on_header_field = on_field;
    m->settings.on_header_value = on_value;
    m->settings.on_headers_complete = on_headers_complete;
    m->settings.on_body = on_body;
    m->settings.on_message_complete = on_complete;
    m->collect = collect;
    ly_buf_init(&m->body, max_body);
    m->on_head = on_head;
    m->on_body = on_body_fn;
    m->arg = arg;
}

void gwhttp_next(struct gwhttp_msg *m)
{
    m->head_len = 0;
    m->url = m->url_len = 0;
    m->n = 0;
    m->in_value = 0;
    m->url_ended = 0;
    m->started = m->headers_done = m->done = 0;
    m->keep_alive = m->chunked = m->has_length = 0;
    m->length = 0;
    m->status = 0;
    ly_buf_reset(&m->body);
    ly_error_clear(&m->err);
    http_parser_pause(&m->parser, 0);
}

void gwhttp_free(struct gwhttp_msg *m)
{
    ly_buf_free(&m->body);
}

void gwhttp_expect_no_body(struct gwhttp_msg *m, int no_body)
{
    if (no_body) {
        m->parser.flags |= F_SKIPBODY;
    }
}

static int parser_failed(struct gwhttp_msg *m)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&m->parser);
    if (m->err.code == 0) {
        (void)ly_error_setx(&m->err, LY_ERR_PARSE, GWHTTP_R_SYNTAX, "malformed HTTP: %s",
                            http_errno_description(e));
    }
    return -1;
}

int gwhttp_feed(struct gwhttp_msg *m, const char *data, size_t len, size_t *used)
{
    size_t n;

    *used = 0;
    if (m->done) {
        return 0;
    }
    n = http_parser_execute(&m->parser, &m->settings, data, len);
    *used = n;
    if (HTTP_PARSER_ERRNO(&m->parser) == HPE_PAUSED) {
        return 0;
    }
    if (HTTP_PARSER_ERRNO(&m->parser) != HPE_OK || (n != len && !m->done)) {
        return parser_failed(m);
    }
    return 0;
}

int gwhttp_eof(struct gwhttp_msg *m)
{
    if (m->done) {
        return 0;
    }
    (void)http_parser_execute(&m->parser, &m->settings, NULL, 0);
    if (m->done) {
        return 0;
    }
    if (m->err.code == 0) {
        (void)ly_error_setx(&m->err, LY_ERR_IO, GWHTTP_R_SYNTAX,
                            m->started ? "the connection closed inside a message"
                                       : "the connection closed");
    }
    return -1;
}

int gwhttp_name_is(const struct gwhttp_msg *m, size_t i, const char *name)
{
    size_t l = strlen(name);
    return m->h[i].name_len == l && strncasecmp(m->head + m->h[i].name, name, l) == 0;
}

const char *gwhttp_get(const struct gwhttp_msg *m, const char *name, size_t *len)
{
    for (size_t i = 0; i < m->n; i++) {
        if (gwhttp_name_is(m, i, name)) {
            if (len != NULL) {
                *len = m->h[i].value_len;
            }
            return m->head + m->h[i].value;
        }
    }
    if (len != NULL) {
        *len = 0;
    }
    return NULL;
}

size_t gwhttp_count(const struct gwhttp_msg *m, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < m->n; i++) {
        c += gwhttp_name_is(m, i, name) ? 1 : 0;
    }
    return c;
}

const char *gwhttp_url(const struct gwhttp_msg *m)
{
    return m->url_len > 0 ? m->head + m->url : "/";
}

const char *gwhttp_name(const struct gwhttp_msg *m, size_t i, size_t *len)
{
    *len = m->h[i].name_len;
    return m->head + m->h[i].name;
}

const char *gwhttp_value(const struct gwhttp_msg *m, size_t i, size_t *len)
{
    *len = m->h[i].value_len;
    return m->head + m->h[i].value;
}

/* 1 when the comma-separated token list v (len bytes) contains `tok` (case-insensitive). */
static int list_has(const char *v, size_t len, const char *tok, size_t toklen)
{
    size_t i = 0;
    while (i < len) {
        size_t s, e;
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        s = i;
        while (i < len && v[i] != ',') {
            i++;
        }
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (e - s == toklen && strncasecmp(v + s, tok, toklen) == 0) {
            return 1;
        }
    }
    return 0;
}

int gwhttp_is_hop(const struct gwhttp_msg *m, size_t i)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "proxy-authenticate", "proxy-authorization", "te",
                                      "trailer", "transfer-encoding", "upgrade",
                                      "content-length"};
    size_t nl;
    const char *name = gwhttp_name(m, i, &nl);

    for (size_t k = 0; k < sizeof(hop) / sizeof(hop[0]); k++) {
        if (gwhttp_name_is(m, i, hop[k])) {
            return 1;
        }
    }
    for (size_t k = 0; k < m->n; k++) {
        size_t vl;
        const char *v;
        if (!gwhttp_name_is(m, k, "connection")) {
            continue;
        }
        v = gwhttp_value(m, k, &vl);
        if (list_has(v, vl, name, nl)) {
            return 1;
        }
    }
    return 0;
}
