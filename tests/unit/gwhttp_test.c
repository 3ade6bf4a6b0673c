/*
 * gwhttp_test: the gateway's HTTP/1.1 message reader. Requests fed whole and a byte at a time,
 * pipelined requests left unconsumed for the next message, chunked bodies, the body cap (by
 * Content-Length and by chunks), header count and size caps, smuggling shapes the parser must
 * refuse (Content-Length with Transfer-Encoding, two different Content-Lengths, a bare LF in a
 * header name), CONNECT and Upgrade refused, hop-by-hop detection including headers named by
 * Connection, and streamed responses: chunked, by length, closed by EOF and cut short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/gwhttp.h"

static struct gwhttp_msg m; /* large: keep it off the stack */

static int feed_all(struct gwhttp_msg *msg, const char *s, size_t len, size_t *consumed)
{
    size_t used = 0;
    int rc = gwhttp_feed(msg, s, len, &used);
    *consumed = used;
    return rc;
}

static void test_request_whole_and_bytewise(void **state)
{
    static const char req[] = "POST /mcp HTTP/1.1\r\nHost: gw.test\r\nContent-Type: "
                              "application/json\r\nMcp-Session-Id: abc\r\nContent-Length: 7\r\n"
                              "\r\n{\"a\":1}";
    size_t used;
    size_t len = sizeof(req) - 1;
    (void)state;

    gwhttp_init(&m, HTTP_REQUEST, 1, 1024, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, req, len, &used), 0);
    assert_int_equal(used, len);
    assert_true(m.done);
    assert_int_equal(m.method, HTTP_POST);
    assert_string_equal(gwhttp_url(&m), "/mcp");
    assert_int_equal(m.body.len, 7);
    assert_memory_equal(m.body.data, "{\"a\":1}", 7);
    {
        size_t l;
        const char *v = gwhttp_get(&m, "MCP-SESSION-ID", &l);
        assert_non_null(v);
        assert_int_equal(l, 3);
        assert_memory_equal(v, "abc", 3);
    }
    assert_true(m.keep_alive);
    gwhttp_free(&m);

    gwhttp_init(&m, HTTP_REQUEST, 1, 1024, NULL, NULL, NULL);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(feed_all(&m, req + i, 1, &used), 0);
        assert_int_equal(used, 1);
    }
    assert_true(m.done);
    assert_int_equal(m.body.len, 7);
    assert_int_equal(gwhttp_count(&m, "host"), 1);
    gwhttp_free(&m);
}

static void test_pipelined(void **state)
{
    static const char two[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nDELETE /b HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n";
    size_t used, off;
    (void)state;

    gwhttp_init(&m, HTTP_REQUEST, 1, 1024, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, two, sizeof(two) - 1, &used), 0);
    assert_true(m.done);
    assert_string_equal(gwhttp_url(&m), "/a");
    assert_true(used < sizeof(two) - 1);
    off = used;
    gwhttp_next(&m);
    assert_false(m.done);
    assert_int_equal(feed_all(&m, two + off, sizeof(two) - 1 - off, &used), 0);
    assert_true(m.done);
    assert_int_equal(m.method, HTTP_DELETE);
    assert_string_equal(gwhttp_url(&m), "/b");
    assert_false(m.keep_alive);
    gwhttp_free(&m);
}

static void test_chunked_and_caps(void **state)
{
    static const char chunked[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n";
    static const char big_cl[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
    static const char big_chunks[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                     "chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n";
    char head[GWHTTP_MAX_HEAD + 200];
    size_t used;
    int n;
    (void)state;

    gwhttp_init(&m, HTTP_REQUEST, 1, 10, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, chunked, sizeof(chunked) - 1, &used), 0);
    assert_true(m.done);
    assert_true(m.chunked);
    assert_int_equal(m.body.len, 7);
    assert_memory_equal(m.body.data, "abcdefg", 7);
    gwhttp_free(&m);

    /* The cap, by Content-Length (before any body byte) and by the chunks themselves. */
    gwhttp_init(&m, HTTP_REQUEST, 1, 10, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, big_cl, sizeof(big_cl) - 1, &used), -1);
    assert_int_equal(m.err.reason, GWHTTP_R_BODY_TOO_BIG);
    gwhttp_free(&m);
    gwhttp_init(&m, HTTP_REQUEST, 1, 10, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, big_chunks, sizeof(big_chunks) - 1, &used), -1);
    assert_int_equal(m.err.reason, GWHTTP_R_BODY_TOO_BIG);
    gwhttp_free(&m);

    /* Too many headers, and a head over the byte cap. */
    n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < GWHTTP_MAX_HEADERS + 1; i++) {
        n += snprintf(head + n, sizeof(head) - (size_t)n, "X-%d: v\r\n", i);
    }
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    gwhttp_init(&m, HTTP_REQUEST, 1, 10, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, head, (size_t)n, &used), -1);
    assert_int_equal(m.err.reason, GWHTTP_R_HEAD_TOO_BIG);
    gwhttp_free(&m);
    n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nX-Big: ");
    memset(head + n, 'a', GWHTTP_MAX_HEAD);
    n += GWHTTP_MAX_HEAD;
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n\r\n");
    gwhttp_init(&m, HTTP_REQUEST, 1, 10, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, head, (size_t)n, &used), -1);
    assert_int_equal(m.err.reason, GWHTTP_R_HEAD_TOO_BIG);
    gwhttp_free(&m);
}

static void test_refused_shapes(void **state)
{
    static const char *const bad[] = {
        /* request smuggling: both framings, or two lengths */
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "GET / HTTP/1.1\r\nHo\nst: x\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        "NOTAMETHOD / HTTP/1.1\r\n\r\n",
    };
    size_t used;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gwhttp_init(&m, HTTP_REQUEST, 1, 100, NULL, NULL, NULL);
        if (feed_all(&m, bad[i], strlen(bad[i]), &used) != -1) {
            fail_msg("case %zu accepted", i);
        }
        assert_int_equal(m.err.code, LY_ERR_PARSE);
        gwhttp_free(&m);
    }
    gwhttp_init(&m, HTTP_REQUEST, 1, 100, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 36, &used), -1);
    assert_int_equal(m.err.reason, GWHTTP_R_UPGRADE);
    gwhttp_free(&m);
    gwhttp_init(&m, HTTP_REQUEST, 1, 100, NULL, NULL, NULL);
    {
        static const char up[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: "
                                 "websocket\r\n\r\n";
        assert_int_equal(feed_all(&m, up, sizeof(up) - 1, &used), -1);
        assert_int_equal(m.err.reason, GWHTTP_R_UPGRADE);
    }
    gwhttp_free(&m);
}

static void test_hop_by_hop(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\n"
                              "X-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nContent-Length: 0\r\n"
                              "Accept: */*\r\nProxy-Authorization: b\r\n\r\n";
    size_t used;
    int hop_names = 0;
    (void)state;

    gwhttp_init(&m, HTTP_REQUEST, 1, 100, NULL, NULL, NULL);
    assert_int_equal(feed_all(&m, req, sizeof(req) - 1, &used), 0);
    for (size_t i = 0; i < m.n; i++) {
        if (gwhttp_is_hop(&m, i)) {
            hop_names++;
            assert_false(gwhttp_name_is(&m, i, "host") || gwhttp_name_is(&m, i, "accept"));
        }
    }
    /* connection, x-secret (named by Connection), keep-alive, te, content-length, proxy-auth */
    assert_int_equal(hop_names, 6);
    gwhttp_free(&m);
}

struct sink {
    char data[256];
    size_t len;
    int heads;
};

static int on_head(struct gwhttp_msg *msg, void *arg)
{
    struct sink *s = arg;
    (void)msg;
    s->heads++;
    return 0;
}

static int on_body(struct gwhttp_msg *msg, const char *data, size_t len, void *arg)
{
    struct sink *s = arg;
    (void)msg;
    if (s->len + len > sizeof(s->data)) {
        return -1;
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

static void test_streamed_responses(void **state)
{
    static const char chunked[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n";
    static const char eof[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close";
    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    struct sink s;
    size_t used;
    (void)state;

    memset(&s, 0, sizeof(s));
    gwhttp_init(&m, HTTP_RESPONSE, 0, 0, on_head, on_body, &s);
    for (size_t i = 0; i < sizeof(chunked) - 1; i++) {
        assert_int_equal(feed_all(&m, chunked + i, 1, &used), 0);
    }
    assert_true(m.done);
    assert_int_equal(m.status, 200);
    assert_int_equal(s.heads, 1);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.data, "hello!", 6);
    gwhttp_free(&m);

    memset(&s, 0, sizeof(s));
    gwhttp_init(&m, HTTP_RESPONSE, 0, 0, on_head, on_body, &s);
    assert_int_equal(feed_all(&m, eof, sizeof(eof) - 1, &used), 0);
    assert_false(m.done);
    assert_int_equal(gwhttp_eof(&m), 0);
    assert_true(m.done);
    assert_int_equal(s.len, 11);
    gwhttp_free(&m);

    memset(&s, 0, sizeof(s));
    gwhttp_init(&m, HTTP_RESPONSE, 0, 0, on_head, on_body, &s);
    assert_int_equal(feed_all(&m, cut, sizeof(cut) - 1, &used), 0);
    assert_int_equal(gwhttp_eof(&m), -1);
    gwhttp_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_whole_and_bytewise),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_chunked_and_caps),
        cmocka_unit_test(test_refused_shapes),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_streamed_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
