/*
 * gwhttp_fuzz: libFuzzer target for the gateway's HTTP/1.1 reader. The input is read as a
 * stream of pipelined requests (bodies collected under a cap) split at a position taken from
 * the first byte, and again as a streamed response ending with EOF. Invariants: consumed
 * counts never exceed what was fed, a done message has a NUL-terminated URL and headers inside
 * the arena, a collected body never exceeds its cap, and every refusal carries an error.
 * Target functions: gwhttp_init, gwhttp_feed, gwhttp_next, gwhttp_eof, gwhttp_get,
 * gwhttp_count, gwhttp_url, gwhttp_is_hop, gwhttp_name, gwhttp_value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/gwhttp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gwhttp_msg m;

static void inspect(const struct gwhttp_msg *msg)
{
    const char *u = gwhttp_url(msg);
    size_t l;

    if (strlen(u) > msg->head_len + 1) {
        abort();
    }
    for (size_t i = 0; i < msg->n; i++) {
        size_t nl, vl;
        const char *n = gwhttp_name(msg, i, &nl);
        const char *v = gwhttp_value(msg, i, &vl);
        if (n < msg->head || n + nl > msg->head + msg->head_len ||
            (vl > 0 && (v < msg->head || v + vl > msg->head + msg->head_len))) {
            abort();
        }
        (void)gwhttp_is_hop(msg, i);
    }
    (void)gwhttp_get(msg, "content-type", &l);
    (void)gwhttp_count(msg, "authorization");
}

static int on_body(struct gwhttp_msg *msg, const char *d, size_t len, void *arg)
{
    (void)msg;
    (void)d;
    *(size_t *)arg += len;
    return 0;
}

static void run(enum http_parser_type type, const char *d, size_t size, size_t split)
{
    size_t off = 0;
    size_t streamed = 0;
    int rounds = 0;

    gwhttp_init(&m, type, type == HTTP_REQUEST, 256, NULL, on_body, &streamed);
    while (off < size && rounds++ < 64) {
        size_t end = off < split && split < size ? split : size;
        size_t used = 0;
        if (gwhttp_feed(&m, d + off, end - off, &used) < 0) {
            if (m.err.code == 0 || m.err.msg[0] == '\0') {
                abort();
            }
            break;
        }
        if (used > end - off) {
            abort();
        }
        off += used;
        if (m.done) {
            inspect(&m);
            if (m.body.len > 256) {
                abort();
            }
            gwhttp_next(&m);
        } else if (used == 0 && end == size) {
            break;
        }
    }
    if (type == HTTP_RESPONSE && !m.done) {
        (void)gwhttp_eof(&m);
    }
    gwhttp_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t split;

    if (size < 1) {
        return 0;
    }
    split = data[0] % (size + 1);
    run(HTTP_REQUEST, (const char *)data + 1, size - 1, split);
    run(HTTP_RESPONSE, (const char *)data + 1, size - 1, split);
    return 0;
}
