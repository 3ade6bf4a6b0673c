/*
 * mcp_test: the gateway's MCP message reader. Classification of requests, notifications,
 * responses and batches into consent ops and targets; every refusal with its own reason
 * (not JSON, duplicate members, wrong jsonrpc, empty or oversized batch, bad method, bad id,
 * missing or malformed targets); the stateless Mcp-Method / Mcp-Name checks including the
 * base64 form; list filtering of single and batch responses; and the SSE reader fed whole and
 * split at every byte, with each line ending, plus the rebuild of a filtered event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/mcp.h"

static int parse_str(const char *s, struct mcp_msg *m, struct ly_error *err)
{
    ly_error_clear(err);
    return mcp_parse(s, strlen(s), m, err);
}

static void test_classify(void **state)
{
    struct mcp_msg m;
    struct ly_error err = {0};
    (void)state;

    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                               "\"params\":{\"name\":\"echo\",\"arguments\":{}}}",
                               &m, &err),
                     0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.batch, 0);
    assert_int_equal(m.items[0].kind, MCP_KIND_REQUEST);
    assert_int_equal(m.items[0].op, MCP_OP_TOOL);
    assert_string_equal(m.items[0].target, "echo");
    assert_string_equal(m.items[0].method, "tools/call");
    assert_int_equal(json_integer_value(m.items[0].id), 1);
    assert_string_equal(mcp_op_kind(m.items[0].op), "tools");
    mcp_msg_free(&m);

    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"resources/read\","
                               "\"params\":{\"uri\":\"demo://resource/static/1\"}}",
                               &m, &err),
                     0);
    assert_int_equal(m.items[0].op, MCP_OP_RESOURCE);
    assert_string_equal(m.items[0].target, "demo://resource/static/1");
    mcp_msg_free(&m);

    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"prompts/get\","
                               "\"params\":{\"name\":\"simple\"}}",
                               &m, &err),
                     0);
    assert_int_equal(m.items[0].op, MCP_OP_PROMPT);
    mcp_msg_free(&m);

    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"completion/complete\","
                               "\"params\":{\"ref\":{\"type\":\"ref/prompt\",\"name\":\"p\"},"
                               "\"argument\":{\"name\":\"a\",\"value\":\"\"}}}",
                               &m, &err),
                     0);
    assert_int_equal(m.items[0].op, MCP_OP_PROMPT);
    assert_string_equal(m.items[0].target, "p");
    mcp_msg_free(&m);

    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"completion/complete\","
                               "\"params\":{\"ref\":{\"type\":\"ref/resource\",\"uri\":\"x://{a}\"}}}",
                               &m, &err),
                     0);
    assert_int_equal(m.items[0].op, MCP_OP_RESOURCE);
    assert_string_equal(m.items[0].target, "x://{a}");
    mcp_msg_free(&m);

    /* Plumbing, lists and notifications. */
    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/list\"}", &m, &err),
                     0);
    assert_int_equal(m.items[0].op, MCP_OP_PLUMBING);
    assert_int_equal(m.items[0].list, MCP_LIST_TOOLS);
    assert_null(m.items[0].target);
    mcp_msg_free(&m);
    assert_int_equal(
        parse_str("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m, &err), 0);
    assert_int_equal(m.items[0].kind, MCP_KIND_NOTIFICATION);
    assert_int_equal(m.items[0].op, MCP_OP_PLUMBING);
    assert_null(m.items[0].id);
    mcp_msg_free(&m);

    /* A response to a server request (e.g. sampling). */
    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}", &m, &err), 0);
    assert_int_equal(m.items[0].kind, MCP_KIND_RESPONSE);
    assert_int_equal(m.items[0].op, MCP_OP_PLUMBING);
    assert_null(m.items[0].method);
    mcp_msg_free(&m);

    /* Unknown methods fail closed. */
    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/exec\"}", &m, &err),
                     0);
    assert_int_equal(m.items[0].op, MCP_OP_UNKNOWN);
    assert_null(mcp_op_kind(m.items[0].op));
    mcp_msg_free(&m);
    assert_int_equal(parse_str("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/\"}", &m, &err), 0);
    assert_int_equal(m.items[0].op, MCP_OP_UNKNOWN);
    mcp_msg_free(&m);

    /* A batch, each message classified. */
    assert_int_equal(parse_str("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                               "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\","
                               "\"params\":{\"name\":\"add\"}}]",
                               &m, &err),
                     0);
    assert_int_equal(m.batch, 1);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.items[0].op, MCP_OP_PLUMBING);
    assert_int_equal(m.items[1].op, MCP_OP_TOOL);
    assert_string_equal(m.items[1].target, "add");
    mcp_msg_free(&m);
    mcp_msg_free(&m); /* a freed message is a no-op */
}

static void expect_refused(const char *body, int reason, const char *needle)
{
    struct mcp_msg m;
    struct ly_error err = {0};

    if (parse_str(body, &m, &err) != LY_ERR_PARSE) {
        fail_msg("accepted: %s", body);
    }
    if (err.reason != reason) {
        fail_msg("reason %d, not %d: %s (body %s)", err.reason, reason, err.msg, body);
    }
    if (strstr(err.msg, needle) == NULL) {
        fail_msg("message '%s' lacks '%s' (body %s)", err.msg, needle, body);
    }
    assert_null(m.root);
    assert_int_equal(m.n, 0);
}

static void test_refusals(void **state)
{
    char big[8192];
    size_t off;
    (void)state;

    expect_refused("{\"jsonrpc\":\"2.0\",", MCP_R_JSON, "not JSON");
    expect_refused("", MCP_R_JSON, "not JSON");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"method\":\"tools/call\"}",
                   MCP_R_JSON, "duplicate");
    expect_refused("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", MCP_R_NOT_RPC, "2.0");
    expect_refused("{\"id\":1,\"method\":\"ping\"}", MCP_R_NOT_RPC, "jsonrpc");
    expect_refused("\"ping\"", MCP_R_NOT_RPC, "object");
    expect_refused("[1]", MCP_R_NOT_RPC, "message 0 of the batch");
    expect_refused("[]", MCP_R_EMPTY_BATCH, "empty");
    off = (size_t)snprintf(big, sizeof(big), "[");
    for (int i = 0; i <= MCP_MAX_BATCH; i++) {
        off += (size_t)snprintf(big + off, sizeof(big) - off,
                                "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"ping\"}",
                                i > 0 ? "," : "", i);
    }
    (void)snprintf(big + off, sizeof(big) - off, "]");
    expect_refused(big, MCP_R_BATCH_TOO_BIG, "at most 64");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", MCP_R_METHOD, "method");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", MCP_R_METHOD, "method");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/ call\"}", MCP_R_METHOD,
                   "printable");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", MCP_R_ID, "id");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", MCP_R_ID, "id");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{}}", MCP_R_ID, "response");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1}", MCP_R_NOT_RPC, "exactly one");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}", MCP_R_NOT_RPC,
                   "exactly one");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"result\":{}}",
                   MCP_R_NOT_RPC, "must not carry");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[]}",
                   MCP_R_NOT_RPC, "params");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}", MCP_R_TARGET,
                   "params.name");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"\"}}",
                   MCP_R_TARGET, "params.name");
    expect_refused(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\\nb\"}}",
        MCP_R_TARGET, "control");
    expect_refused(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\\u0000b\"}}",
        MCP_R_TARGET, "params.name");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":3}}",
                   MCP_R_TARGET, "params.uri");
    expect_refused("{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{}}", MCP_R_TARGET,
                   "params.name");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\","
                   "\"params\":{\"ref\":{\"type\":\"ref/tool\",\"name\":\"x\"}}}",
                   MCP_R_TARGET, "params.ref");
    off = (size_t)snprintf(big, sizeof(big),
                           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\","
                           "\"params\":{\"name\":\"");
    memset(big + off, 'a', MCP_TARGET_MAX + 1);
    off += MCP_TARGET_MAX + 1;
    (void)snprintf(big + off, sizeof(big) - off, "\"}}");
    expect_refused(big, MCP_R_TARGET, "at most 2048");
}

static int check(const char *body, const char *mh, const char *nh, struct ly_error *err)
{
    struct mcp_msg m;
    struct ly_error e = {0};
    int rc;

    assert_int_equal(mcp_parse(body, strlen(body), &m, &e), 0);
    ly_error_clear(err);
    rc = mcp_check_headers(&m, mh, mh != NULL ? strlen(mh) : 0, nh, nh != NULL ? strlen(nh) : 0,
                           err);
    mcp_msg_free(&m);
    return rc;
}

static void test_stateless_headers(void **state)
{
    static const char call[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get-sum\"}}";
    static const char uni[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"caf\xc3\xa9\"}}";
    static const char list[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
    struct ly_error err = {0};
    (void)state;

    assert_int_equal(check(call, NULL, NULL, &err), 0);
    assert_int_equal(check(call, "tools/call", "get-sum", &err), 0);
    assert_int_equal(check(call, " tools/call ", "\tget-sum", &err), 0);
    assert_int_equal(check(list, "tools/list", NULL, &err), 0);
    /* "café" in the base64 form. */
    assert_int_equal(check(uni, "tools/call", "=?base64?Y2Fmw6k=?=", &err), 0);

    assert_int_equal(check(call, "tools/list", "get-sum", &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, MCP_R_HEADER_MISMATCH);
    assert_non_null(strstr(err.msg, "Mcp-Method"));
    assert_int_equal(check(call, "tools/call", "get-env", &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, MCP_R_HEADER_MISMATCH);
    assert_non_null(strstr(err.msg, "Mcp-Name 'get-env'"));
    assert_int_equal(check(call, "tools/call", NULL, &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "needs an Mcp-Name"));
    assert_int_equal(check(call, NULL, "get-sum", &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "without Mcp-Method"));
    assert_int_equal(check(list, "tools/list", "x", &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "names nothing"));
    assert_int_equal(check(uni, "tools/call", "=?base64?Y2Fmw6k?=", &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "malformed"));
    assert_int_equal(check(uni, "tools/call", "=?base64?Y2FmZQ==?=", &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, MCP_R_HEADER_MISMATCH);
    assert_int_equal(check("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", "ping", NULL,
                           &err),
                     LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "one request"));
    assert_int_equal(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", "ping", NULL, &err),
                     LY_ERR_PARSE);
}

static int allow_even(enum mcp_op op, const char *target, void *arg)
{
    int *calls = arg;
    (*calls)++;
    assert_true(op == MCP_OP_TOOL || op == MCP_OP_RESOURCE || op == MCP_OP_PROMPT);
    return strcmp(target, "echo") == 0 || strcmp(target, "a://1") == 0;
}

static int filter(const char *text, json_t *id, enum mcp_list list, struct ly_buf *out,
                  int *changed)
{
    struct ly_error err = {0};
    int calls = 0;

    ly_buf_init(out, 1u << 20);
    return mcp_filter_list(text, strlen(text), id, list, allow_even, &calls, out, changed, &err);
}

static void test_filter_list(void **state)
{
    static const char tools[] =
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"echo\",\"inputSchema\":{}},"
        "{\"name\":\"add\"},{\"title\":\"nameless\"}],\"nextCursor\":\"c\"}}";
    json_t *id7 = json_integer(7), *id8 = json_integer(8), *ids = json_string("7");
    struct ly_buf out;
    int changed;
    json_t *r;
    (void)state;

    assert_int_equal(filter(tools, id7, MCP_LIST_TOOLS, &out, &changed), 0);
    assert_int_equal(changed, 1);
    r = json_loadb((const char *)out.data, out.len, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "result"), "tools")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(json_object_get(r, "result"), "tools"), 0),
                            "name")),
                        "echo");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "result"), "nextCursor")), "c");
    json_decref(r);
    ly_buf_free(&out);

    /* Another id (also "7" the string), an error, not JSON, another list kind: untouched. */
    assert_int_equal(filter(tools, id8, MCP_LIST_TOOLS, &out, &changed), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(out.len, 0);
    ly_buf_free(&out);
    assert_int_equal(filter(tools, ids, MCP_LIST_TOOLS, &out, &changed), 0);
    assert_int_equal(changed, 0);
    ly_buf_free(&out);
    assert_int_equal(filter("{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":1,\"message\":\"x\"}}",
                            id7, MCP_LIST_TOOLS, &out, &changed),
                     0);
    assert_int_equal(changed, 0);
    ly_buf_free(&out);
    assert_int_equal(filter("not json", id7, MCP_LIST_TOOLS, &out, &changed), 0);
    assert_int_equal(changed, 0);
    ly_buf_free(&out);
    assert_int_equal(filter(tools, id7, MCP_LIST_PROMPTS, &out, &changed), 0);
    assert_int_equal(changed, 0);
    ly_buf_free(&out);

    /* Nothing to drop: the original goes through. */
    assert_int_equal(filter("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"echo\"}]}}",
                            id7, MCP_LIST_TOOLS, &out, &changed),
                     0);
    assert_int_equal(changed, 0);
    ly_buf_free(&out);

    /* Resources in a batch response, with a cache scope that becomes private. */
    assert_int_equal(
        filter("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}},{\"jsonrpc\":\"2.0\",\"id\":7,"
               "\"result\":{\"resources\":[{\"uri\":\"a://1\"},{\"uri\":\"a://2\"}],"
               "\"cacheScope\":\"public\"}}]",
               id7, MCP_LIST_RESOURCES, &out, &changed),
        0);
    assert_int_equal(changed, 1);
    assert_non_null(strstr((const char *)out.data, "\"resources\":[{\"uri\":\"a://1\"}]"));
    assert_non_null(strstr((const char *)out.data, "\"cacheScope\":\"private\""));
    assert_non_null(strstr((const char *)out.data, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}"));
    ly_buf_free(&out);

    /* The output cap is honoured. */
    {
        struct ly_error err = {0};
        int calls = 0;
        ly_buf_init(&out, 10);
        assert_true(mcp_filter_list(tools, strlen(tools), id7, MCP_LIST_TOOLS, allow_even, &calls,
                                    &out, &changed, &err) < 0);
        assert_int_equal(changed, 0);
        ly_buf_free(&out);
    }
    json_decref(id7);
    json_decref(id8);
    json_decref(ids);
}

/* ---- SSE ----------------------------------------------------------------------------------- */

struct seen {
    char raw[4096];
    size_t raw_len;
    char data[8][256];
    int has[8];
    int n;
};

static int on_event(const struct mcp_sse_event *ev, void *arg)
{
    struct seen *s = arg;

    assert_true(s->n < 8);
    assert_true(s->raw_len + ev->raw_len < sizeof(s->raw));
    memcpy(s->raw + s->raw_len, ev->raw, ev->raw_len);
    s->raw_len += ev->raw_len;
    assert_true(ev->data_len < sizeof(s->data[0]));
    assert_int_equal(strlen(ev->data), ev->data_len);
    memcpy(s->data[s->n], ev->data, ev->data_len + 1);
    s->has[s->n] = ev->has_data;
    s->n++;
    return 0;
}

static void sse_case(const char *stream, size_t split)
{
    struct mcp_sse r;
    struct seen s;
    struct ly_error err = {0};
    size_t len = strlen(stream), pl;

    memset(&s, 0, sizeof(s));
    mcp_sse_init(&r, 0, on_event, &s);
    if (split == 0) {
        assert_int_equal(mcp_sse_feed(&r, stream, len, &err), 0);
    } else {
        for (size_t i = 0; i < len; i += split) {
            size_t n = len - i < split ? len - i : split;
            assert_int_equal(mcp_sse_feed(&r, stream + i, n, &err), 0);
        }
    }
    assert_int_equal(s.n, 3);
    assert_string_equal(s.data[0], "{\"a\":1}");
    assert_int_equal(s.has[0], 1);
    assert_string_equal(s.data[1], "line1\nline2");
    assert_int_equal(s.has[2], 0);
    /* Raw bytes of the events plus the unfinished tail are the stream, byte for byte. */
    {
        const char *p = mcp_sse_pending(&r, &pl);
        assert_int_equal(s.raw_len + pl, len);
        assert_memory_equal(s.raw, stream, s.raw_len);
        assert_memory_equal(p, stream + s.raw_len, pl);
        /* A CRLF split between feeds leaves its LF in front of the next event's bytes. */
        assert_string_equal(p[0] == '\n' ? p + 1 : p, "data: tail");
    }
    mcp_sse_free(&r);
}

static void test_sse_reader(void **state)
{
    static const char *streams[] = {
        "event: message\nid: 1\ndata: {\"a\":1}\n\ndata:line1\ndata: line2\n\n: keep-alive\n\n"
        "data: tail",
        "event: message\r\nid: 1\r\ndata: {\"a\":1}\r\n\r\ndata:line1\r\ndata: line2\r\n\r\n"
        ": keep-alive\r\n\r\ndata: tail",
        "event: message\rid: 1\rdata: {\"a\":1}\r\rdata:line1\rdata: line2\r\r: keep-alive\r\r"
        "data: tail",
    };
    (void)state;

    for (size_t k = 0; k < 3; k++) {
        for (size_t split = 0; split <= 9; split++) {
            sse_case(streams[k], split);
        }
    }
}

static void test_sse_limits_and_rebuild(void **state)
{
    struct mcp_sse r;
    struct seen s;
    struct ly_error err = {0};
    struct ly_buf out;
    struct mcp_sse_event ev;
    static const char raw[] = "event: message\r\nid: 9\r\ndata: {\"old\":\r\ndata: 1}\r\n: c\r\n\r\n";
    char big[300];
    (void)state;

    memset(&s, 0, sizeof(s));
    mcp_sse_init(&r, 64, on_event, &s);
    memset(big, 'x', sizeof(big));
    memcpy(big, "data: ", 6);
    assert_int_equal(mcp_sse_feed(&r, big, 60, &err), 0);
    assert_int_equal(mcp_sse_feed(&r, big + 60, 10, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, MCP_R_SSE);
    assert_non_null(strstr(err.msg, "over 64 bytes"));
    mcp_sse_free(&r);

    ev.raw = raw;
    ev.raw_len = sizeof(raw) - 1;
    ev.data = "{\"old\":\n1}";
    ev.data_len = strlen(ev.data);
    ev.has_data = 1;
    ly_buf_init(&out, 4096);
    ly_error_clear(&err);
    assert_int_equal(mcp_sse_rebuild(&ev, "{\"new\":2}", 9, &out, &err), 0);
    assert_string_equal((const char *)out.data,
                        "event: message\nid: 9\n: c\ndata: {\"new\":2}\n\n");
    assert_int_equal(mcp_sse_rebuild(&ev, "a\nb", 3, &out, &err), LY_ERR_USAGE);
    ly_buf_free(&out);

    /* The rebuilt event reads back as one event with the new data. */
    memset(&s, 0, sizeof(s));
    mcp_sse_init(&r, 0, on_event, &s);
    ly_error_clear(&err);
    assert_int_equal(mcp_sse_feed(&r, "event: message\nid: 9\n: c\ndata: {\"new\":2}\n\n",
                                  strlen("event: message\nid: 9\n: c\ndata: {\"new\":2}\n\n"), &err),
                     0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.data[0], "{\"new\":2}");
    mcp_sse_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_stateless_headers),
        cmocka_unit_test(test_filter_list),
        cmocka_unit_test(test_sse_reader),
        cmocka_unit_test(test_sse_limits_and_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
