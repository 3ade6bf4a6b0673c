/*
 * mcp_fuzz: libFuzzer target for the gateway's MCP reader. The input is parsed as a request
 * body; when it parses, its Mcp-Method / Mcp-Name checks run with the body's own method and
 * target (which must agree) and with a header taken from the input's tail; it is filtered as a
 * tools/list and resources/list response; and it is fed to the SSE reader split at a position
 * taken from the first byte. Invariants: a refusal always carries LY_ERR_PARSE, a reason and a
 * message and leaves the message empty; an accepted scoped item has a NUL-free target within
 * MCP_TARGET_MAX; the SSE reader's raw events plus its pending bytes are the input byte for
 * byte; a rebuilt event reads back as one event with the new data.
 * Target functions: mcp_parse, mcp_msg_free, mcp_op_kind, mcp_check_headers, mcp_filter_list,
 * mcp_sse_init, mcp_sse_feed, mcp_sse_pending, mcp_sse_rebuild, mcp_sse_free.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/mcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    size_t raw_total;
    const uint8_t *input;
    int events;
};

static int on_event(const struct mcp_sse_event *ev, void *arg)
{
    struct seen *s = arg;
    struct ly_buf out;
    struct ly_error err = {0};

    if (memcmp(ev->raw, s->input + s->raw_total, ev->raw_len) != 0 ||
        strlen(ev->data) > ev->data_len || ev->data_len > ev->raw_len) {
        abort();
    }
    s->raw_total += ev->raw_len;
    s->events++;
    ly_buf_init(&out, 1u << 20);
    if (mcp_sse_rebuild(ev, "{\"x\":1}", 7, &out, &err) != 0) {
        abort();
    }
    ly_buf_free(&out);
    return 0;
}

static int allow_odd(enum mcp_op op, const char *target, void *arg)
{
    (void)op;
    (void)arg;
    return (strlen(target) & 1u) != 0;
}

static void check_parse(const uint8_t *data, size_t size)
{
    struct mcp_msg m;
    struct ly_error err = {0};

    if (mcp_parse((const char *)data, size, &m, &err) != 0) {
        if (err.code != LY_ERR_PARSE || err.reason == 0 || err.msg[0] == '\0' ||
            m.root != NULL || m.n != 0) {
            abort();
        }
        return;
    }
    if (m.n == 0 || m.n > MCP_MAX_BATCH) {
        abort();
    }
    for (size_t i = 0; i < m.n; i++) {
        const struct mcp_item *it = &m.items[i];
        if (it->op == MCP_OP_TOOL || it->op == MCP_OP_RESOURCE || it->op == MCP_OP_PROMPT) {
            if (it->target == NULL || strlen(it->target) == 0 ||
                strlen(it->target) > MCP_TARGET_MAX || mcp_op_kind(it->op) == NULL) {
                abort();
            }
        }
        if ((it->kind == MCP_KIND_RESPONSE) != (it->method == NULL)) {
            abort();
        }
    }
    if (!m.batch && m.items[0].kind != MCP_KIND_RESPONSE) {
        const struct mcp_item *it = &m.items[0];
        const char *name = it->target;
        int named = strcmp(it->method, "tools/call") == 0 ||
                    strcmp(it->method, "prompts/get") == 0 ||
                    strcmp(it->method, "resources/read") == 0;
        ly_error_clear(&err);
        if (mcp_check_headers(&m, it->method, strlen(it->method), named ? name : NULL,
                              named ? strlen(name) : 0, &err) != 0) {
            abort(); /* the body's own values must agree with it */
        }
        ly_error_clear(&err);
        (void)mcp_check_headers(&m, it->method, strlen(it->method),
                                (const char *)data + size / 2, size - size / 2, &err);
    }
    mcp_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mcp_sse r;
    struct seen s = {0, data, 0};
    struct ly_error err = {0};
    struct ly_buf out;
    json_t *id = json_integer(1);
    int changed = 0;
    size_t split = size > 0 ? (size_t)data[0] % (size + 1) : 0, pl;
    const char *p;

    check_parse(data, size);

    for (int list = MCP_LIST_TOOLS; list <= MCP_LIST_RESOURCES; list++) {
        ly_buf_init(&out, 1u << 20);
        ly_error_clear(&err);
        if (mcp_filter_list((const char *)data, size, id, (enum mcp_list)list, allow_odd, NULL,
                            &out, &changed, &err) == 0 &&
            changed && out.len == 0) {
            abort();
        }
        ly_buf_free(&out);
    }
    json_decref(id);

    mcp_sse_init(&r, 4096, on_event, &s);
    ly_error_clear(&err);
    if (mcp_sse_feed(&r, (const char *)data, split, &err) == 0 &&
        mcp_sse_feed(&r, (const char *)data + split, size - split, &err) == 0) {
        p = mcp_sse_pending(&r, &pl);
        if (s.raw_total + pl != size || memcmp(p, data + s.raw_total, pl) != 0) {
            abort();
        }
    } else if (err.reason != MCP_R_SSE) {
        abort();
    }
    mcp_sse_free(&r);
    return 0;
}
