/*
 * gwhttp: HTTP/1.1 messages for the gateway, read with libhttp-parser. One gwhttp_msg reads the
 * successive requests (or responses) of one connection: the request line or status, up to
 * GWHTTP_MAX_HEADERS headers within GWHTTP_MAX_HEAD bytes, and the body, which is either
 * collected (requests, capped) or handed to a callback as it arrives (responses, streamed).
 * No HTTP is parsed by hand here: framing, chunked coding and keep-alive come from the library.
 */
#ifndef GWHTTP_H
#define GWHTTP_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"

#define GWHTTP_MAX_HEADERS 64
#define GWHTTP_MAX_HEAD (32u * 1024u) /* request line or status + all headers */

/* Reasons (ly_error.reason) for a refused message. */
enum gwhttp_reason {
    GWHTTP_R_SYNTAX = 1,   /* the parser refused the bytes */
    GWHTTP_R_HEAD_TOO_BIG, /* headers over GWHTTP_MAX_HEAD or GWHTTP_MAX_HEADERS */
    GWHTTP_R_BODY_TOO_BIG, /* a request body over the cap */
    GWHTTP_R_UPGRADE,      /* protocol upgrades and CONNECT are not proxied */
    GWHTTP_R_ABORTED,      /* a callback asked to stop */
};

struct gwhttp_header {
    uint32_t name, name_len, value, value_len; /* offsets into head[] */
};

struct gwhttp_msg;
/* Headers complete. Return 0 to go on, 1 when the message has no body (a HEAD response), -1 to abort. */
typedef int (*gwhttp_head_fn)(struct gwhttp_msg *m, void *arg);
/* A piece of a streamed (response) body. Return 0 to go on, -1 to abort. */
typedef int (*gwhttp_body_fn)(struct gwhttp_msg *m, const char *data, size_t len, void *arg);

struct gwhttp_msg {
    http_parser parser;
    http_parser_settings settings;
    char head[GWHTTP_MAX_HEAD];
    size_t head_len;
    uint32_t url, url_len;
    struct gwhttp_header h[GWHTTP_MAX_HEADERS];
    size_t n;
    int in_value;      /* the last header callback was a value */
    int url_ended;     /* the URL's NUL is in the arena */
    int started;       /* bytes of this message have been seen */
    int headers_done;
    int done;          /* the whole message has been read */
    int keep_alive;    /* valid once headers_done */
    int chunked;       /* the body was chunked (valid once headers_done) */
    int has_length;    /* a Content-Length was given */
    uint64_t length;
    unsigned method;   /* enum http_method, requests */
    int status;        /* responses */
    struct ly_buf body;
    int collect;       /* 1: collect the body into `body` (capped) */
    gwhttp_head_fn on_head;
    gwhttp_body_fn on_body;
    void *arg;
    struct ly_error err;
};

/*
 * Prepare m for a connection's messages: type HTTP_REQUEST or HTTP_RESPONSE; collect=1 gathers
 * each body into m->body up to max_body bytes (bigger is GWHTTP_R_BODY_TOO_BIG), collect=0
 * streams it to on_body. Callbacks may be NULL.
 */
void gwhttp_init(struct gwhttp_msg *m, enum http_parser_type type, int collect, size_t max_body,
                 gwhttp_head_fn on_head, gwhttp_body_fn on_body, void *arg);
/* Forget the last message (after it is done) so the next one on the connection can be read. */
void gwhttp_next(struct gwhttp_msg *m);
/* Release the body buffer. */
void gwhttp_free(struct gwhttp_msg *m);
/*
 * For a response: the request it answers was HEAD (no body whatever the headers say). Call
 * before feeding the response.
 */
void gwhttp_expect_no_body(struct gwhttp_msg *m, int no_body);

/*
 * Feed bytes. Reading stops at the end of a message: *used is the number of bytes consumed
 * (the rest belongs to the next message). Returns 0, or -1 with m->err filled (LY_ERR_PARSE and
 * an enum gwhttp_reason, or what a callback reported).
 */
int gwhttp_feed(struct gwhttp_msg *m, const char *data, size_t len, size_t *used);
/* The connection closed: ends a body delimited by the close; -1 if the message is cut short. */
int gwhttp_eof(struct gwhttp_msg *m);

/* The first value of header `name` (case-insensitive), or NULL; *len its length. */
const char *gwhttp_get(const struct gwhttp_msg *m, const char *name, size_t *len);
/* How many times header `name` occurs. */
size_t gwhttp_count(const struct gwhttp_msg *m, const char *name);
/* The request target (URL) as sent, NUL-terminated. */
const char *gwhttp_url(const struct gwhttp_msg *m);
/*
 * 1 when header i must not be forwarded: the hop-by-hop headers of RFC 9110 §7.6.1
 * (Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), every header the
 * Connection header names, and Content-Length (framing is the proxy's own).
 */
int gwhttp_is_hop(const struct gwhttp_msg *m, size_t i);
/* Header i's name and value (not NUL-terminated). */
const char *gwhttp_name(const struct gwhttp_msg *m, size_t i, size_t *len);
const char *gwhttp_value(const struct gwhttp_msg *m, size_t i, size_t *len);
/* Case-insensitive comparison of a header name with `name`. */
int gwhttp_name_is(const struct gwhttp_msg *m, size_t i, const char *name);

#endif
