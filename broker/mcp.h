/*
 * mcp: reading MCP messages (JSON-RPC 2.0 over the streamable HTTP transport) for the gateway.
 * It classifies each message of a request body (request, notification, response; batches),
 * maps it to the consent scope it needs (tools:NAME, resources:URI, prompts:NAME, or protocol
 * plumbing), checks the stateless transport's Mcp-Method / Mcp-Name headers against the body,
 * filters list results (tools/list, prompts/list, resources/list) to what a client may use,
 * and reads and rebuilds Server-Sent Events streams event by event. JSON is parsed by jansson
 * only; this module does no I/O, holds no tokens and makes no policy decision itself.
 */
#ifndef MCP_H
#define MCP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"

#define MCP_MAX_BATCH 64           /* messages in one JSON-RPC batch */
#define MCP_METHOD_MAX 128         /* bytes of a method name */
#define MCP_TARGET_MAX 2048        /* bytes of a tool/prompt name or resource URI */
#define MCP_SSE_EVENT_MAX (4u * 1024u * 1024u) /* largest SSE event mcp_sse collects */

/* JSON-RPC error codes the gateway answers with (JSON-RPC 2.0 §5.1 and the MCP spec). */
#define MCP_RPC_PARSE_ERROR (-32700)
#define MCP_RPC_INVALID_REQUEST (-32600)
#define MCP_RPC_HEADER_MISMATCH (-32020)

/* Reasons (ly_error.reason) of refused messages. */
enum mcp_reason {
    MCP_R_JSON = 1,        /* not JSON, or duplicate members */
    MCP_R_NOT_RPC,         /* not a JSON-RPC 2.0 object ("jsonrpc" != "2.0", wrong types) */
    MCP_R_EMPTY_BATCH,     /* [] */
    MCP_R_BATCH_TOO_BIG,   /* more than MCP_MAX_BATCH messages */
    MCP_R_METHOD,          /* method not a non-empty string of at most MCP_METHOD_MAX bytes */
    MCP_R_ID,              /* id neither a string, an integer nor (responses only) null */
    MCP_R_TARGET,          /* params.name / params.uri / params.ref missing or malformed */
    MCP_R_HEADER_MISMATCH, /* Mcp-Method or Mcp-Name disagrees with the body (or is malformed) */
    MCP_R_SSE,             /* an SSE event over MCP_SSE_EVENT_MAX */
};

enum mcp_kind {
    MCP_KIND_REQUEST = 1,  /* method and id */
    MCP_KIND_NOTIFICATION, /* method, no id */
    MCP_KIND_RESPONSE,     /* result or error, and id; no method (answers server requests) */
};

/* What a message asks for, in consent terms. */
enum mcp_op {
    MCP_OP_PLUMBING = 1, /* initialize, ping, notifications/..., the list methods, logging/setLevel,
                            tasks/..., responses: allowed for any consented client */
    MCP_OP_TOOL,         /* tools/call: target = params.name */
    MCP_OP_RESOURCE,     /* resources/read|subscribe|unsubscribe: target = params.uri */
    MCP_OP_PROMPT,       /* prompts/get: target = params.name */
    MCP_OP_UNKNOWN,      /* a method lanyard does not know: refused (fail closed) */
};

/* Which list result a request's response carries (for filtering). */
enum mcp_list {
    MCP_LIST_NONE = 0,
    MCP_LIST_TOOLS,     /* tools/list: result.tools[].name */
    MCP_LIST_PROMPTS,   /* prompts/list: result.prompts[].name */
    MCP_LIST_RESOURCES, /* resources/list: result.resources[].uri */
};

/* One message of a body. Every pointer is borrowed from the owning mcp_msg. */
struct mcp_item {
    enum mcp_kind kind;
    const char *method; /* NULL for responses */
    enum mcp_op op;
    const char *target; /* for MCP_OP_TOOL/_RESOURCE/_PROMPT; NULL otherwise */
    json_t *id;         /* the id value (NULL for notifications) */
    enum mcp_list list; /* the list this request's response will carry */
};

/* A parsed body: one message or a batch. Free with mcp_msg_free(). */
struct mcp_msg {
    json_t *root; /* owned */
    int batch;    /* 1 when the body was a JSON array */
    size_t n;     /* messages (1 unless batch) */
    struct mcp_item items[MCP_MAX_BATCH];
};

/*
 * Parse `len` bytes of a POST body. Each message must be a JSON-RPC 2.0 object; requests and
 * notifications need a method (and, for the scoped methods, their target: params.name a
 * non-empty string for tools/call and prompts/get, params.uri for resources/read, subscribe and
 * unsubscribe; completion/complete maps params.ref {type "ref/prompt", name} to MCP_OP_PROMPT and
 * {type "ref/resource", uri} to MCP_OP_RESOURCE). Targets over MCP_TARGET_MAX bytes or holding
 * NUL or control bytes are refused. On success *out owns the JSON (mcp_msg_free); on failure
 * *out is empty and the return is LY_ERR_PARSE with an enum mcp_reason and a message that
 * names the fault (never more than a capped, escaped excerpt of the input).
 */
int mcp_parse(const char *body, size_t len, struct mcp_msg *out, struct ly_error *err)
    LY_MUST_USE;
/* Release what mcp_parse() built. An emptied or zeroed msg is a no-op. */
void mcp_msg_free(struct mcp_msg *m);

/* The consent op kind of an op: "tools", "resources", "prompts", or "plumbing". NULL for UNKNOWN. */
const char *mcp_op_kind(enum mcp_op op);

/*
 * The stateless transport's headers (MCP 2026-07-28): `mcp_method` / `mcp_name` are the raw
 * header values (NULL when absent; not NUL-terminated, len bytes). A value of the form
 * "=?base64?B64?=" is decoded (standard base64) before comparison. When Mcp-Method is present
 * the body must be one (non-batch) request or notification whose method equals it; a method
 * with a target then also needs Mcp-Name equal to the target. Mcp-Name without Mcp-Method, or
 * with a method that has no target, is a mismatch too. Returns 0 when consistent (also when
 * both are absent), else LY_ERR_PARSE / MCP_R_HEADER_MISMATCH naming which header disagrees.
 */
int mcp_check_headers(const struct mcp_msg *m, const char *mcp_method, size_t method_len,
                      const char *mcp_name, size_t name_len, struct ly_error *err) LY_MUST_USE;

/* Asked for each listed entry: 1 keep, 0 drop. op is MCP_OP_TOOL, _PROMPT or _RESOURCE. */
typedef int (*mcp_allow_fn)(enum mcp_op op, const char *target, void *arg);

/*
 * Filter one JSON-RPC response text (`len` bytes: a single message, or a batch array whose
 * element with a matching id is filtered) that answers a request with id `id` and list kind
 * `list`: entries of the result's array for which allow() returns 0, or which have no string
 * name/uri, are removed; everything else is kept as it was. When the text is not such a
 * response (another id, an error, not JSON), *changed = 0 and out is untouched: the caller
 * passes the original through. When filtered, *changed = 1 and out (initialised by the caller)
 * receives the compact JSON text. LY_ERR_NOMEM / LY_ERR_USAGE (out's max) on failure.
 */
int mcp_filter_list(const char *json, size_t len, const json_t *id, enum mcp_list list,
                    mcp_allow_fn allow, void *arg, struct ly_buf *out, int *changed,
                    struct ly_error *err) LY_MUST_USE;

/* ---- Server-Sent Events (the text/event-stream format of the HTML Living Standard) -------- */

/*
 * One complete event. raw/raw_len are the exact bytes of the event as received, including the
 * blank line that ended it (pass them through unchanged when not rewriting). data is the
 * concatenation of its data fields joined by "\n" (NUL-terminated), data_len its length; has_data
 * is 0 for an event without data lines (comments, retry-only). Borrowed for the callback only.
 */
struct mcp_sse_event {
    const char *raw;
    size_t raw_len;
    const char *data;
    size_t data_len;
    int has_data;
};

/* Called for each complete event; return 0 to go on, or a negative LY_ERR_* to stop. */
typedef int (*mcp_sse_fn)(const struct mcp_sse_event *ev, void *arg);

/* A streaming SSE reader. Lines may end in CRLF, LF or CR, split anywhere across feeds. */
struct mcp_sse {
    struct ly_buf raw;  /* the current event's bytes */
    struct ly_buf data; /* its data fields, joined */
    size_t line_start;  /* offset in raw of the line being read */
    int cr_pending;     /* the last byte fed was CR (a following LF belongs to it) */
    int has_data;
    size_t max_event;
    mcp_sse_fn cb;
    void *arg;
};

/* Prepare a reader; events longer than max_event bytes (0: MCP_SSE_EVENT_MAX) are an error. */
void mcp_sse_init(struct mcp_sse *s, size_t max_event, mcp_sse_fn cb, void *arg);
/* Feed bytes; cb runs for every event they complete. LY_ERR_PARSE / MCP_R_SSE when too big. */
int mcp_sse_feed(struct mcp_sse *s, const char *data, size_t len, struct ly_error *err)
    LY_MUST_USE;
/*
 * The bytes of an unfinished event (the stream ended without its blank line), to pass through
 * as they are: *len may be 0. Borrowed until the next feed or free.
 */
const char *mcp_sse_pending(const struct mcp_sse *s, size_t *len);
/* Release the reader's buffers. */
void mcp_sse_free(struct mcp_sse *s);

/*
 * Rebuild an event with new data: every field line of ev except data lines (event:, id:,
 * retry:, comments) is kept in order, then "data: " + new_data + "\n" (new_data must hold no
 * CR or LF: compact JSON), then the blank line "\n". Appends to out.
 */
int mcp_sse_rebuild(const struct mcp_sse_event *ev, const char *new_data, size_t new_len,
                    struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

#endif
