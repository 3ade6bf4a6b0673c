/*
 * endpoint_internal: the bundle endpoint's request reader (libhttp-parser under a head cap) and
 * its answer builder, which need neither TLS nor a socket. Only federation/endpoint.c, its unit
 * test and its fuzz target include this; it does no I/O and keeps no global state.
 */
#ifndef FED_ENDPOINT_INTERNAL_H
#define FED_ENDPOINT_INTERNAL_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "endpoint.h"

/* Longest request target kept; a longer one is refused with 400 (no bundle URL is that long). */
#define FED_REQ_TARGET_MAX 1024
/* Longest header name looked at (only "Host" matters). */
#define FED_REQ_NAME_MAX 16

/*
 * One request being read. Fields are private to endpoint.c; tests and the fuzz target only use
 * the functions below. Holds no pointer to anything but itself (parser.data).
 */
struct fed_req {
    http_parser parser;
    size_t fed;                          /* bytes given to the parser, <= FED_ENDPOINT_MAX_HEAD */
    int done;                            /* 1 once the answer is decided */
    int bad;                             /* refused: malformed, too long or ambiguous */
    char target[FED_REQ_TARGET_MAX + 1]; /* NUL-terminated; meaningful when !bad */
    size_t target_len;
    char name[FED_REQ_NAME_MAX + 1]; /* the header name being read (cut when longer) */
    size_t name_len;
    int name_long; /* the name did not fit, so it is not "Host" */
    int in_value;  /* the parser is inside a header value */
    int hosts;     /* Host header fields seen */
    int has_body;  /* Content-Length > 0 or chunked */
};

/* Start reading a request (no allocation; nothing to free). */
void fed_req_init(struct fed_req *r);

/*
 * Feed the next `len` bytes of the connection. Returns 1 once the answer is decided (the head is
 * complete, malformed, or over FED_ENDPOINT_MAX_HEAD bytes), 0 while more bytes are needed.
 * Bytes after the head (a body, a pipelined request) are never looked at; after 1, further
 * calls return 1 and read nothing. *used (may be NULL) is set to the bytes read, <= len.
 */
int fed_req_feed(struct fed_req *r, const uint8_t *data, size_t len, size_t *used);

/*
 * The status of a decided request: 400 (malformed, head too long, target too long, not HTTP/1.x,
 * HTTP/1.1 without exactly one Host, more than one Host, a body), 405 (not GET or HEAD), 404
 * (the path is not "/"; a query is ignored), 503 (have_bundle is 0) or 200. -1 when not decided.
 */
int fed_req_status(const struct fed_req *r, int have_bundle);

/* 1 when the decided request is a well-formed HEAD (its answer has no body), else 0. */
int fed_req_is_head(const struct fed_req *r);

/*
 * Build the whole answer for `status` (one of those fed_req_status returns): status line, Date
 * (from `now`, epoch seconds), Content-Type, Content-Length, Cache-Control: no-store, Allow (405
 * only), Connection: close, then the body unless `head`. For 200 the body is `body` (borrowed,
 * body_len bytes); other statuses carry a short text of their own. `out` is initialised here
 * (caller frees with ly_buf_free). LY_ERR_USAGE for an unknown status, LY_ERR_NOMEM.
 */
int fed_answer_build(int status, int head, const uint8_t *body, size_t body_len, int64_t now,
                     struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

#endif
