/*
 * endpoint_fuzz: libFuzzer target for the bundle endpoint's request reader and answer builder,
 * without TLS. The first byte picks the chunk size the rest is fed in (each chunk copied to a
 * buffer of its own exact size, so a read past a chunk is caught) and whether a bundle is set.
 * Invariants: the reader never claims more bytes than it was given nor more than the head cap,
 * its status is -1 until decided and then one of 200/400/404/405/503, the same input fed in one
 * piece decides the same, and the answer is well formed (status line, Content-Length matching
 * the body, no body for HEAD, the bundle itself for 200).
 * Target functions: fed_req_init, fed_req_feed, fed_req_status, fed_req_is_head,
 * fed_answer_build.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../federation/endpoint_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t bundle[] = "{\"keys\":[],\"spiffe_refresh_hint\":300}";

/* Feed data in chunks of `step` bytes; returns the status (-1 when never decided). */
static int feed(struct fed_req *r, const uint8_t *data, size_t size, size_t step, int have)
{
    size_t off = 0;
    int done = 0;

    fed_req_init(r);
    while (off < size && !done) {
        size_t n = size - off < step ? size - off : step;
        size_t used = n + 1;
        uint8_t *chunk = malloc(n);
        if (chunk == NULL) {
            abort();
        }
        memcpy(chunk, data + off, n);
        done = fed_req_feed(r, chunk, n, &used);
        free(chunk);
        if (used > n || r->fed > FED_ENDPOINT_MAX_HEAD || (done != 0 && done != 1)) {
            abort();
        }
        if (r->target_len > FED_REQ_TARGET_MAX || r->target[r->target_len] != '\0') {
            abort();
        }
        off += n;
    }
    if (!done && fed_req_status(r, have) != -1) {
        abort();
    }
    return fed_req_status(r, have);
}

/* The value of the Content-Length header in a head we built. */
static size_t content_length(const char *head, size_t head_len)
{
    static const char name[] = "\r\nContent-Length: ";
    const char *p = NULL;
    size_t v = 0;

    for (size_t i = 0; i + sizeof(name) - 1 <= head_len; i++) {
        if (memcmp(head + i, name, sizeof(name) - 1) == 0) {
            p = head + i + sizeof(name) - 1;
            break;
        }
    }
    if (p == NULL) {
        abort();
    }
    while (p < head + head_len && *p >= '0' && *p <= '9') {
        v = v * 10 + (size_t)(*p - '0');
        p++;
    }
    return v;
}

static void check_answer(int status, int head)
{
    struct ly_error err;
    struct ly_buf a;
    char line[16];
    size_t head_len = 0;
    size_t cl;

    memset(&err, 0, sizeof(err));
    if (fed_answer_build(status, head, bundle, sizeof(bundle) - 1, 1795341600, &a, &err) != 0) {
        abort();
    }
    (void)snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    if (a.len < 13 || memcmp(a.data, line, 13) != 0) {
        abort();
    }
    for (size_t i = 0; i + 4 <= a.len; i++) {
        if (memcmp(a.data + i, "\r\n\r\n", 4) == 0) {
            head_len = i + 4;
            break;
        }
    }
    if (head_len == 0) {
        abort();
    }
    cl = content_length((const char *)a.data, head_len);
    if (head ? a.len != head_len : a.len - head_len != cl) {
        abort();
    }
    if (status == 200 &&
        (cl != sizeof(bundle) - 1 || (!head && memcmp(a.data + head_len, bundle, cl) != 0))) {
        abort();
    }
    ly_buf_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fed_req chunked;
    struct fed_req whole;
    size_t step;
    int have;
    int s1;
    int s2;

    if (size < 1) {
        return 0;
    }
    step = (size_t)(data[0] & 0x3f) + 1;
    have = (data[0] & 0x40) != 0;
    data++;
    size--;
    s1 = feed(&chunked, data, size, step, have);
    s2 = feed(&whole, data, size, size > 0 ? size : 1, have);
    if (s1 != s2 || fed_req_is_head(&chunked) != fed_req_is_head(&whole)) {
        abort();
    }
    if (s1 == -1) {
        return 0;
    }
    if (s1 != 200 && s1 != 400 && s1 != 404 && s1 != 405 && s1 != 503) {
        abort();
    }
    if (s1 == 200 && !have) {
        abort();
    }
    check_answer(s1, fed_req_is_head(&chunked));
    return 0;
}
