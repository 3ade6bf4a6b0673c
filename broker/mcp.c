/*
 * mcp: JSON-RPC 2.0 / MCP message reading for the gateway (see mcp.h). jansson parses all JSON;
 * the SSE reader follows the event-stream parsing rules of the HTML Living Standard (lines end
 * in CRLF, LF or CR; "field: value" with one optional space; data lines joined by LF; a blank
 * line dispatches). Nothing here does I/O or decides policy.
 */
#include "mcp.h"

#include <string.h>

#include "../common/ly_b64.h"
#include "../common/ly_text.h"

#define EXCERPT 64

/* ---- messages ------------------------------------------------------------------------------ */

struct method_map {
    const char *method;
    enum mcp_op op;
    const char *field; /* params member holding the target (NULL: none, or special) */
    enum mcp_list list;
};

/*
 * Methods lanyard knows, across both transport generations. Every other method is
 * MCP_OP_UNKNOWN and refused: a new method must be classified here before it passes.
 */
static const struct method_map METHODS[] = {
    {"tools/call", MCP_OP_TOOL, "name", MCP_LIST_NONE},
    {"prompts/get", MCP_OP_PROMPT, "name", MCP_LIST_NONE},
    {"resources/read", MCP_OP_RESOURCE, "uri", MCP_LIST_NONE},
    {"resources/subscribe", MCP_OP_RESOURCE, "uri", MCP_LIST_NONE},
    {"resources/unsubscribe", MCP_OP_RESOURCE, "uri", MCP_LIST_NONE},
    {"completion/complete", MCP_OP_PROMPT, NULL, MCP_LIST_NONE}, /* target from params.ref */
    {"tools/list", MCP_OP_PLUMBING, NULL, MCP_LIST_TOOLS},
    {"prompts/list", MCP_OP_PLUMBING, NULL, MCP_LIST_PROMPTS},
    {"resources/list", MCP_OP_PLUMBING, NULL, MCP_LIST_RESOURCES},
    {"resources/templates/list", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"initialize", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"ping", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"logging/setLevel", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"server/discover", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"tasks/get", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"tasks/list", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"tasks/result", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
    {"tasks/cancel", MCP_OP_PLUMBING, NULL, MCP_LIST_NONE},
};

/* The methods whose stateless requests carry Mcp-Name (the MCP 2026-07-28 transport). */
static int method_has_name_header(const char *method)
{
    return strcmp(method, "tools/call") == 0 || strcmp(method, "prompts/get") == 0 ||
           strcmp(method, "resources/read") == 0;
}

const char *mcp_op_kind(enum mcp_op op)
{
    switch (op) {
    case MCP_OP_PLUMBING:
        return "plumbing";
    case MCP_OP_TOOL:
        return "tools";
    case MCP_OP_RESOURCE:
        return "resources";
    case MCP_OP_PROMPT:
        return "prompts";
    default:
        return NULL;
    }
}

static int refuse(struct ly_error *err, int reason, size_t index, int batch, const char *what)
{
    if (batch) {
        return ly_error_setx(err, LY_ERR_PARSE, reason, "message %zu of the batch: %s", index,
                             what);
    }
    return ly_error_setx(err, LY_ERR_PARSE, reason, "%s", what);
}

/* A target: a non-empty string of at most MCP_TARGET_MAX bytes without NUL or control bytes. */
static const char *valid_target(json_t *v)
{
    const char *s;
    size_t n;

    if (!json_is_string(v)) {
        return NULL;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > MCP_TARGET_MAX || strlen(s) != n) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return NULL;
        }
    }
    return s;
}

static int valid_method(json_t *v)
{
    const char *s;
    size_t n;

    if (!json_is_string(v)) {
        return 0;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > MCP_METHOD_MAX || strlen(s) != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

static void classify(const char *method, struct mcp_item *it, const struct method_map **map)
{
    *map = NULL;
    it->op = MCP_OP_UNKNOWN;
    it->list = MCP_LIST_NONE;
    for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]); i++) {
        if (strcmp(METHODS[i].method, method) == 0) {
            *map = &METHODS[i];
            it->op = METHODS[i].op;
            it->list = METHODS[i].list;
            return;
        }
    }
    if (strncmp(method, "notifications/", 14) == 0 && method[14] != '\0') {
        it->op = MCP_OP_PLUMBING;
    }
}

/* completion/complete: params.ref names a prompt or a resource (template) the client asks about. */
static int ref_target(json_t *params, struct mcp_item *it)
{
    json_t *ref = json_is_object(params) ? json_object_get(params, "ref") : NULL;
    const char *type;

    if (!json_is_object(ref) || !json_is_string(json_object_get(ref, "type"))) {
        return -1;
    }
    type = json_string_value(json_object_get(ref, "type"));
    if (strcmp(type, "ref/prompt") == 0) {
        it->op = MCP_OP_PROMPT;
        it->target = valid_target(json_object_get(ref, "name"));
    } else if (strcmp(type, "ref/resource") == 0) {
        it->op = MCP_OP_RESOURCE;
        it->target = valid_target(json_object_get(ref, "uri"));
    } else {
        return -1;
    }
    return it->target != NULL ? 0 : -1;
}

static int parse_item(json_t *o, size_t index, int batch, struct mcp_item *it,
                      struct ly_error *err)
{
    json_t *ver, *method, *id, *params;
    const struct method_map *map;
    char what[128 + MCP_METHOD_MAX];

    memset(it, 0, sizeof(*it));
    if (!json_is_object(o)) {
        return refuse(err, MCP_R_NOT_RPC, index, batch, "a JSON-RPC message must be an object");
    }
    ver = json_object_get(o, "jsonrpc");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0 ||
        json_string_length(ver) != 3) {
        return refuse(err, MCP_R_NOT_RPC, index, batch, "\"jsonrpc\" must be \"2.0\"");
    }
    method = json_object_get(o, "method");
    id = json_object_get(o, "id");
    if (method == NULL) {
        /* A response to a request the server sent (sampling, elicitation, roots). */
        json_t *res = json_object_get(o, "result");
        json_t *er = json_object_get(o, "error");
        if ((res == NULL) == (er == NULL)) {
            return refuse(err, MCP_R_NOT_RPC, index, batch,
                          "a message without \"method\" must be a response with exactly one of "
                          "\"result\" and \"error\"");
        }
        if (id == NULL || !(json_is_string(id) || json_is_integer(id) || json_is_null(id))) {
            return refuse(err, MCP_R_ID, index, batch,
                          "a response's \"id\" must be a string, an integer or null");
        }
        it->kind = MCP_KIND_RESPONSE;
        it->op = MCP_OP_PLUMBING;
        it->id = id;
        return 0;
    }
    if (!valid_method(method)) {
        (void)snprintf(what, sizeof(what),
                       "\"method\" must be a non-empty string of at most %d printable bytes",
                       MCP_METHOD_MAX);
        return refuse(err, MCP_R_METHOD, index, batch, what);
    }
    if (json_object_get(o, "result") != NULL || json_object_get(o, "error") != NULL) {
        return refuse(err, MCP_R_NOT_RPC, index, batch,
                      "a request must not carry \"result\" or \"error\"");
    }
    it->method = json_string_value(method);
    if (id != NULL) {
        if (!json_is_string(id) && !json_is_integer(id)) {
            return refuse(err, MCP_R_ID, index, batch,
                          "a request's \"id\" must be a string or an integer");
        }
        it->kind = MCP_KIND_REQUEST;
        it->id = id;
    } else {
        it->kind = MCP_KIND_NOTIFICATION;
    }
    params = json_object_get(o, "params");
    if (params != NULL && !json_is_object(params)) {
        return refuse(err, MCP_R_NOT_RPC, index, batch, "\"params\" must be an object");
    }
    classify(it->method, it, &map);
    if (map != NULL && strcmp(map->method, "completion/complete") == 0) {
        if (ref_target(params, it) < 0) {
            return refuse(err, MCP_R_TARGET, index, batch,
                          "completion/complete needs params.ref: {\"type\":\"ref/prompt\", "
                          "\"name\"} or {\"type\":\"ref/resource\", \"uri\"}");
        }
    } else if (map != NULL && map->field != NULL) {
        it->target = params != NULL ? valid_target(json_object_get(params, map->field)) : NULL;
        if (it->target == NULL) {
            (void)snprintf(what, sizeof(what),
                           "%s needs params.%s: a non-empty string of at most %d bytes without "
                           "control characters",
                           map->method, map->field, MCP_TARGET_MAX);
            return refuse(err, MCP_R_TARGET, index, batch, what);
        }
    }
    if (it->kind != MCP_KIND_REQUEST) {
        it->list = MCP_LIST_NONE;
    }
    return 0;
}

int mcp_parse(const char *body, size_t len, struct mcp_msg *out, struct ly_error *err)
{
    json_error_t je;
    json_t *root;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (root == NULL) {
        char ex[EXCERPT * 4 + 8];
        (void)ly_text_escape(je.text, strlen(je.text), EXCERPT * 2, ex, sizeof(ex));
        return ly_error_setx(err, LY_ERR_PARSE, MCP_R_JSON,
                             "the body is not JSON: %s (at byte %d)", ex, je.position);
    }
    out->root = root;
    if (json_is_array(root)) {
        size_t n = json_array_size(root);
        out->batch = 1;
        if (n == 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, MCP_R_EMPTY_BATCH, "an empty JSON-RPC batch");
        } else if (n > MCP_MAX_BATCH) {
            rc = ly_error_setx(err, LY_ERR_PARSE, MCP_R_BATCH_TOO_BIG,
                               "a batch of %zu messages (at most %d)", n, MCP_MAX_BATCH);
        } else {
            for (size_t i = 0; i < n && rc == 0; i++) {
                rc = parse_item(json_array_get(root, i), i, 1, &out->items[i], err);
            }
            out->n = n;
        }
    } else {
        out->n = 1;
        rc = parse_item(root, 0, 0, &out->items[0], err);
    }
    if (rc != 0) {
        mcp_msg_free(out);
    }
    return rc;
}

void mcp_msg_free(struct mcp_msg *m)
{
    if (m == NULL) {
        return;
    }
    if (m->root != NULL) {
        json_decref(m->root);
    }
    memset(m, 0, sizeof(*m));
}

/* ---- stateless headers --------------------------------------------------------------------- */

/* A header value with surrounding blanks trimmed and the "=?base64?...?=" form decoded. */
static int header_value(const char *v, size_t len, struct ly_buf *out, struct ly_error *err)
{
    while (len > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        len--;
    }
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
        len--;
    }
    if (len >= 11 && memcmp(v, "=?base64?", 9) == 0 && memcmp(v + len - 2, "?=", 2) == 0) {
        return ly_b64_decode(v + 9, len - 11, 0, 0, out, MCP_TARGET_MAX, err);
    }
    ly_buf_init(out, MCP_TARGET_MAX + 1);
    return ly_buf_append(out, v, len, err);
}

static int same_text(const struct ly_buf *b, const char *s)
{
    size_t n = strlen(s);
    return b->len == n && memcmp(b->data, s, n) == 0;
}

int mcp_check_headers(const struct mcp_msg *m, const char *mcp_method, size_t method_len,
                      const char *mcp_name, size_t name_len, struct ly_error *err)
{
    struct ly_buf mv, nv;
    struct ly_error e = {0};
    const struct mcp_item *it;
    int rc = 0;

    if (mcp_method == NULL && mcp_name == NULL) {
        return 0;
    }
    if (mcp_method == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                             "Mcp-Name without Mcp-Method");
    }
    if (m->batch || m->n != 1 || m->items[0].kind == MCP_KIND_RESPONSE) {
        return ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                             "Mcp-Method needs a body of one request or notification");
    }
    it = &m->items[0];
    if (header_value(mcp_method, method_len, &mv, &e) != 0) {
        ly_buf_free(&mv);
        return ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                             "Mcp-Method is malformed: %s", e.msg);
    }
    if (!same_text(&mv, it->method)) {
        char ex[EXCERPT * 4 + 8];
        (void)ly_text_escape((const char *)mv.data, mv.len, EXCERPT, ex, sizeof(ex));
        rc = ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                           "Mcp-Method '%s' disagrees with the body's method '%s'", ex,
                           it->method);
    }
    ly_buf_free(&mv);
    if (rc != 0) {
        return rc;
    }
    if (!method_has_name_header(it->method)) {
        if (mcp_name != NULL) {
            return ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                                 "Mcp-Name given for %s, which names nothing", it->method);
        }
        return 0;
    }
    if (mcp_name == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                             "%s needs an Mcp-Name header", it->method);
    }
    if (header_value(mcp_name, name_len, &nv, &e) != 0) {
        ly_buf_free(&nv);
        return ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                             "Mcp-Name is malformed: %s", e.msg);
    }
    if (it->target == NULL || !same_text(&nv, it->target)) {
        char ex[EXCERPT * 4 + 8];
        (void)ly_text_escape((const char *)nv.data, nv.len, EXCERPT, ex, sizeof(ex));
        rc = ly_error_setx(err, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                           "Mcp-Name '%s' disagrees with the body's target", ex);
    }
    ly_buf_free(&nv);
    return rc;
}

/* ---- list filtering ------------------------------------------------------------------------ */

static int same_id(json_t *a, const json_t *b)
{
    return a != NULL && b != NULL && json_equal(a, (json_t *)b);
}

/* The message of `root` that answers `id`, or NULL. */
static json_t *answer_of(json_t *root, const json_t *id)
{
    if (json_is_object(root)) {
        return same_id(json_object_get(root, "id"), id) ? root : NULL;
    }
    if (json_is_array(root)) {
        size_t i;
        json_t *v;
        json_array_foreach(root, i, v)
        {
            if (json_is_object(v) && same_id(json_object_get(v, "id"), id)) {
                return v;
            }
        }
    }
    return NULL;
}

int mcp_filter_list(const char *json, size_t len, const json_t *id, enum mcp_list list,
                    mcp_allow_fn allow, void *arg, struct ly_buf *out, int *changed,
                    struct ly_error *err)
{
    const char *key, *field;
    enum mcp_op op;
    json_t *root, *msg, *result, *arr, *kept;
    size_t i;
    json_t *v;
    char *text;
    int rc = 0;

    *changed = 0;
    switch (list) {
    case MCP_LIST_TOOLS:
        key = "tools", field = "name", op = MCP_OP_TOOL;
        break;
    case MCP_LIST_PROMPTS:
        key = "prompts", field = "name", op = MCP_OP_PROMPT;
        break;
    case MCP_LIST_RESOURCES:
        key = "resources", field = "uri", op = MCP_OP_RESOURCE;
        break;
    default:
        return 0;
    }
    root = json_loadb(json, len, JSON_ALLOW_NUL, NULL);
    if (root == NULL) {
        return 0;
    }
    msg = answer_of(root, id);
    result = msg != NULL ? json_object_get(msg, "result") : NULL;
    arr = json_is_object(result) ? json_object_get(result, key) : NULL;
    if (!json_is_array(arr)) {
        json_decref(root);
        return 0;
    }
    kept = json_array();
    if (kept == NULL) {
        json_decref(root);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    json_array_foreach(arr, i, v)
    {
        const char *t = json_is_object(v) ? valid_target(json_object_get(v, field)) : NULL;
        if (t != NULL && allow(op, t, arg) == 1) {
            if (json_array_append(kept, v) != 0) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
                break;
            }
        }
    }
    if (rc == 0 && json_array_size(kept) == json_array_size(arr)) {
        /* Nothing dropped: the original bytes go through untouched. */
        json_decref(kept);
        json_decref(root);
        return 0;
    }
    if (rc == 0 && json_object_set_new(result, key, kept) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    } else if (rc != 0) {
        json_decref(kept);
    }
    /* A filtered list is this client's alone: it must not be cached for others. */
    if (rc == 0 && json_object_get(result, "cacheScope") != NULL &&
        json_object_set_new(result, "cacheScope", json_string("private")) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (rc == 0) {
        text = json_dumps(root, JSON_COMPACT);
        if (text == NULL) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        } else {
            rc = ly_buf_append_str(out, text, err);
            free(text);
            *changed = rc == 0;
        }
    }
    json_decref(root);
    return rc;
}

/* ---- Server-Sent Events -------------------------------------------------------------------- */

void mcp_sse_init(struct mcp_sse *s, size_t max_event, mcp_sse_fn cb, void *arg)
{
    memset(s, 0, sizeof(*s));
    s->max_event = max_event != 0 ? max_event : MCP_SSE_EVENT_MAX;
    ly_buf_init(&s->raw, s->max_event + 2);
    ly_buf_init(&s->data, s->max_event + 2);
    s->cb = cb;
    s->arg = arg;
}

void mcp_sse_free(struct mcp_sse *s)
{
    ly_buf_free(&s->raw);
    ly_buf_free(&s->data);
}

const char *mcp_sse_pending(const struct mcp_sse *s, size_t *len)
{
    *len = s->raw.len;
    return s->raw.len > 0 ? (const char *)s->raw.data : "";
}

/* Append to one of the reader's buffers; past max_event it is an MCP_R_SSE error. */
static int sse_put(struct mcp_sse *s, struct ly_buf *b, const char *p, size_t n,
                   struct ly_error *err)
{
    struct ly_error e = {0};

    if (ly_buf_append(b, p, n, &e) != 0) {
        if (e.code == LY_ERR_NOMEM) {
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        return ly_error_setx(err, LY_ERR_PARSE, MCP_R_SSE, "an SSE event over %zu bytes",
                             s->max_event);
    }
    return 0;
}

/* Split "field: value" (one optional space after the colon); a line without ':' is all field. */
static void split_field(const char *line, size_t n, size_t *flen, const char **val, size_t *vlen)
{
    const char *colon = memchr(line, ':', n);

    if (colon == NULL) {
        *flen = n;
        *val = line + n;
        *vlen = 0;
        return;
    }
    *flen = (size_t)(colon - line);
    *val = colon + 1;
    *vlen = n - *flen - 1;
    if (*vlen > 0 && **val == ' ') {
        (*val)++;
        (*vlen)--;
    }
}

static int is_data_field(const char *line, size_t n)
{
    size_t flen, vlen;
    const char *val;

    if (n == 0 || line[0] == ':') {
        return 0;
    }
    split_field(line, n, &flen, &val, &vlen);
    return flen == 4 && memcmp(line, "data", 4) == 0;
}

/* A line of the current event is complete: [start, end) of raw, terminator excluded. */
static int sse_line(struct mcp_sse *s, size_t start, size_t end, struct ly_error *err)
{
    const char *line = (const char *)s->raw.data + start;
    size_t n = end - start;
    struct mcp_sse_event ev;
    int rc;

    if (n == 0) {
        ev.raw = (const char *)s->raw.data;
        ev.raw_len = s->raw.len;
        ev.data = s->has_data ? (const char *)s->data.data : "";
        ev.data_len = s->has_data ? s->data.len : 0;
        ev.has_data = s->has_data;
        rc = s->cb(&ev, s->arg);
        ly_buf_reset(&s->raw);
        ly_buf_reset(&s->data);
        s->has_data = 0;
        return rc;
    }
    if (is_data_field(line, n)) {
        size_t flen, vlen;
        const char *val;
        split_field(line, n, &flen, &val, &vlen);
        if (s->has_data && (rc = sse_put(s, &s->data, "\n", 1, err)) != 0) {
            return rc;
        }
        if ((rc = sse_put(s, &s->data, val, vlen, err)) != 0) {
            return rc;
        }
        s->has_data = 1;
    }
    return 0;
}

int mcp_sse_feed(struct mcp_sse *s, const char *data, size_t len, struct ly_error *err)
{
    size_t i = 0;

    while (i < len) {
        size_t j = i;
        size_t end;
        int rc;

        if (s->cr_pending) {
            s->cr_pending = 0;
            if (data[i] == '\n') {
                /* The LF of a CRLF whose CR ended the line in an earlier feed. */
                if ((rc = sse_put(s, &s->raw, "\n", 1, err)) != 0) {
            return rc;
        }
                s->line_start = s->raw.len;
                i++;
                continue;
            }
        }
        while (j < len && data[j] != '\n' && data[j] != '\r') {
            j++;
        }
        if (s->raw.len + (j - i) > s->max_event) {
            return ly_error_setx(err, LY_ERR_PARSE, MCP_R_SSE, "an SSE event over %zu bytes",
                                 s->max_event);
        }
        if ((rc = sse_put(s, &s->raw, data + i, j - i, err)) != 0) {
            return rc;
        }
        if (j == len) {
            break; /* the line goes on in the next feed */
        }
        end = s->raw.len;
        if ((rc = sse_put(s, &s->raw, data + j, 1, err)) != 0) {
            return rc;
        }
        i = j + 1;
        if (data[j] == '\r') {
            if (i < len && data[i] == '\n') {
                if ((rc = sse_put(s, &s->raw, "\n", 1, err)) != 0) {
            return rc;
        }
                i++;
            } else if (i == len) {
                s->cr_pending = 1;
            }
        }
        {
            size_t start = s->line_start;
            s->line_start = s->raw.len;
            rc = sse_line(s, start, end, err);
        }
        if (s->raw.len == 0) {
            s->line_start = 0;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int mcp_sse_rebuild(const struct mcp_sse_event *ev, const char *new_data, size_t new_len,
                    struct ly_buf *out, struct ly_error *err)
{
    size_t i = 0;

    if (memchr(new_data, '\n', new_len) != NULL || memchr(new_data, '\r', new_len) != NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "SSE data must not hold line breaks");
    }
    while (i < ev->raw_len) {
        size_t j = i;
        while (j < ev->raw_len && ev->raw[j] != '\n' && ev->raw[j] != '\r') {
            j++;
        }
        if (j > i && !is_data_field(ev->raw + i, j - i)) {
            if (ly_buf_append(out, ev->raw + i, j - i, err) != 0 ||
                ly_buf_append(out, "\n", 1, err) != 0) {
                return err != NULL ? err->code : LY_ERR_USAGE;
            }
        }
        if (j < ev->raw_len && ev->raw[j] == '\r' && j + 1 < ev->raw_len &&
            ev->raw[j + 1] == '\n') {
            j++;
        }
        i = j + 1;
    }
    if (ly_buf_append(out, "data: ", 6, err) != 0 ||
        ly_buf_append(out, new_data, new_len, err) != 0 || ly_buf_append(out, "\n\n", 2, err) != 0) {
        return err != NULL ? err->code : LY_ERR_USAGE;
    }
    return 0;
}
