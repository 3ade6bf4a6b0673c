/*
 * consent: lanyard's consent model and policy decision. A record says that a user (or, with the
 * explicit workload-only marker, nobody) allowed one client SPIFFE ID a set of MCP scopes, until
 * an expiry and under optional conditions. consent_decide() answers allow/deny from an in-memory
 * index built from the store; it performs no I/O and never allocates. This module holds no
 * tokens and never touches the database (broker/store does).
 */
#ifndef CONSENT_H
#define CONSENT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "../svid/spiffeid.h"

#define CONSENT_USER_MAX 256      /* bytes of a user name, and of granted_by */
#define CONSENT_MAX_SCOPES 64     /* scopes per record */
#define CONSENT_MAX_SOURCE_TDS 32 /* allowed source trust domains per record */
#define CONSENT_NAME_MAX 128      /* bytes of a tool or prompt name */
#define CONSENT_URI_PREFIX_MAX 2048
#define CONSENT_ID_HEX_LEN 32     /* record ids: 128 random bits, lower-case hex */

/* Stable rejection and decision reasons (struct ly_error.reason / consent_decision.reason). */
enum consent_reason {
    CONSENT_R_NONE = 0,
    CONSENT_R_SCOPE_EMPTY,        /* empty scope */
    CONSENT_R_SCOPE_KIND,         /* not tools:, resources:, prompts: or "*" */
    CONSENT_R_SCOPE_NAME,         /* empty, oversized or badly formed name or URI prefix */
    CONSENT_R_SCOPE_WILDCARD,     /* "tools:*" and the like: "*" is only a whole grant */
    CONSENT_R_TOO_MANY_SCOPES,    /* more than CONSENT_MAX_SCOPES */
    CONSENT_R_NO_SCOPES,          /* a record with no scope */
    CONSENT_R_BAD_USER,           /* empty, oversized or control bytes in a user name */
    CONSENT_R_BAD_CLIENT,         /* client is not a valid SPIFFE ID */
    CONSENT_R_BAD_WINDOW,         /* time window not "HH:MM-HH:MM", or empty */
    CONSENT_R_BAD_TD,             /* a source trust domain is invalid, or too many */
    CONSENT_R_BAD_EXPIRY,         /* expires_at not after granted_at */
    CONSENT_R_BAD_ID,             /* a record id that is not 32 lower-case hex digits */
    CONSENT_R_NOT_FOUND,          /* no record with that id (revoke) */
    /* decisions */
    CONSENT_R_NO_RECORD,          /* no record for (user, client) */
    CONSENT_R_EXPIRED,            /* a covering record has expired */
    CONSENT_R_OUTSIDE_WINDOW,     /* a covering record's time window excludes now */
    CONSENT_R_SOURCE_TD,          /* the source trust domain is not allowed */
    CONSENT_R_SCOPE_NOT_COVERED,  /* records exist, none grants the scope */
    CONSENT_R_BAD_REQUEST,        /* op_kind unknown or name missing */
};

enum consent_scope_kind {
    CONSENT_SCOPE_ALL = 1, /* "*" */
    CONSENT_SCOPE_TOOLS,
    CONSENT_SCOPE_RESOURCES,
    CONSENT_SCOPE_PROMPTS,
};

/* A parsed scope; `value` points into the parsed text (borrowed), NULL for "*". */
struct consent_scope {
    enum consent_scope_kind kind;
    const char *value;
    size_t value_len;
};

/*
 * Parse one scope of `len` bytes: "tools:NAME", "prompts:NAME" (NAME 1..128 bytes of
 * [A-Za-z0-9_.-/]), "resources:URI_PREFIX" (1..2048 printable ASCII bytes, no space, starting
 * with a URI scheme and ':'), or exactly "*". A resource prefix is a plain byte prefix of the
 * requested URI: "resources:file:///data/" covers "file:///data/x" but not "file:///database",
 * while "resources:file:///data" covers both; end a directory prefix with '/'. No other
 * wildcard exists. LY_ERR_PARSE with a consent_reason and a message naming the fault.
 */
int consent_scope_parse(const char *s, size_t len, struct consent_scope *out,
                        struct ly_error *err) LY_MUST_USE;

/*
 * Parse a UTC time window "HH:MM-HH:MM" into minutes since midnight. The start is inclusive,
 * the end exclusive; start > end wraps midnight ("22:00-06:00"); start == end is refused.
 */
int consent_window_parse(const char *s, int *start_min, int *end_min, struct ly_error *err)
    LY_MUST_USE;

/* Check a user name: 1..CONSENT_USER_MAX bytes, no control bytes. LY_ERR_PARSE otherwise. */
int consent_user_validate(const char *user, struct ly_error *err) LY_MUST_USE;

/* A consent record. Every pointer field is owned by the record and freed by consent_free(). */
struct consent {
    char id[CONSENT_ID_HEX_LEN + 1]; /* assigned by store_consent_add */
    int no_user;                     /* 1: workload-only grant (--no-user); user is "" */
    char user[CONSENT_USER_MAX + 1];
    char *client_id;                 /* a valid SPIFFE ID in canonical form */
    char **scopes;                   /* canonical scope texts, no duplicates */
    size_t n_scopes;
    char **source_tds;               /* allowed source trust domains; none = any */
    size_t n_source_tds;
    int64_t granted_at;              /* Unix seconds */
    int64_t expires_at;              /* Unix seconds; 0 = never */
    char granted_by[CONSENT_USER_MAX + 1];
    int has_window;                  /* 1: window_start/window_end apply */
    int window_start;                /* minutes since 00:00 UTC, inclusive */
    int window_end;                  /* minutes since 00:00 UTC, exclusive */
};

/* A new empty record (calloc'd), or NULL when out of memory. Free with consent_free(). */
struct consent *consent_new(void);
/* Free a record and everything it owns. NULL is a no-op. */
void consent_free(struct consent *c);
/* Free an array of n records from store_consent_list(). NULL is a no-op. */
void consent_list_free(struct consent **v, size_t n);

/* Set the user (validated); user NULL makes the record workload-only. */
int consent_set_user(struct consent *c, const char *user, struct ly_error *err) LY_MUST_USE;
/* Set the client: parsed strictly as a SPIFFE ID (ID-15: stored exactly, never folded). */
int consent_set_client(struct consent *c, const char *client_id, struct ly_error *err)
    LY_MUST_USE;
/* Add a scope (parsed; a duplicate is ignored; more than CONSENT_MAX_SCOPES refused). */
int consent_add_scope(struct consent *c, const char *scope, struct ly_error *err) LY_MUST_USE;
/* Add an allowed source trust domain (a bare name or a SPIFFE ID's; duplicates ignored). */
int consent_add_source_td(struct consent *c, const char *td, struct ly_error *err) LY_MUST_USE;
/* Set the time window from "HH:MM-HH:MM". */
int consent_set_window(struct consent *c, const char *window, struct ly_error *err)
    LY_MUST_USE;
/* Check a whole record (client set, >= 1 scope, expiry after grant, granted_by non-empty). */
int consent_validate(const struct consent *c, struct ly_error *err) LY_MUST_USE;

/* Append the record as one compact JSON object to out. */
int consent_to_json(const struct consent *c, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;

/* ---- the index and the decision ---------------------------------------------------------- */

/* Opaque: an immutable hash index keyed by (user, client ID). Safe to read from many threads. */
struct consent_index;

/*
 * Build an index from n records (e.g. store_consent_list() with no filter). The index copies
 * what it needs; the records may be freed afterwards. Rebuild it after any change in the store
 * (a revocation is only seen by a new index). Free with consent_index_free().
 */
int consent_index_build(struct consent *const *recs, size_t n, struct consent_index **out,
                        struct ly_error *err) LY_MUST_USE;
/* Free an index. NULL is a no-op. */
void consent_index_free(struct consent_index *idx);
/* Number of records in the index. */
size_t consent_index_count(const struct consent_index *idx);

/*
 * The result of one decision. Pointers are borrowed: record_id from the index (valid until it
 * is freed), missing_kind/missing_name from the caller's arguments.
 */
struct consent_decision {
    int allow;                  /* 1 allow, 0 deny */
    enum consent_reason reason; /* CONSENT_R_NONE when allowed */
    const char *record_id;      /* the allowing record, or the best-matching denying one */
    const char *missing_kind;   /* for a denial: "tools" | "resources" | "prompts" */
    const char *missing_name;   /* for a denial: the tool/prompt name or resource URI */
};

/*
 * Decide whether `client` may perform op_kind ("tools" | "resources" | "prompts") on
 * name_or_uri for `user` (NULL = a workload-only request, matched only by --no-user records) at
 * Unix time `now`. Starts at deny; allows only when one record for exactly (user, client) —
 * byte comparison, so another client or another case of the same path never matches — covers
 * the scope, is unexpired (expires_at > now or 0), has now inside its window and allows the
 * source trust domain. The source trust domain is the client's own here; see
 * consent_decide_from(). On denial the reason is that of the record that got furthest (scope,
 * then expiry, then window, then source trust domain). Returns 1 allow, 0 deny; never
 * allocates, no I/O; thread-safe on a shared index.
 */
int consent_decide(const struct consent_index *idx, const char *user,
                   const struct spiffeid *client, const char *op_kind, const char *name_or_uri,
                   int64_t now, struct consent_decision *out);

/*
 * op_kind CONSENT_OP_PLUMBING asks whether the client is consented at all: allowed when one
 * record for (user, client) is unexpired, inside its window and allows the source trust
 * domain, whatever its scopes (name_or_uri is ignored; pass ""). The gateway uses it for
 * protocol plumbing (initialize, ping, notifications, list methods, the event stream).
 */
#define CONSENT_OP_PLUMBING "plumbing"

/* As consent_decide(), with the trust domain the request came from (NULL = the client's). */
int consent_decide_from(const struct consent_index *idx, const char *user,
                        const struct spiffeid *client, const char *source_td,
                        const char *op_kind, const char *name_or_uri, int64_t now,
                        struct consent_decision *out);

/* A human-readable sentence for a decision ("scope tools:x not granted to ..."), into buf. */
const char *consent_decision_describe(const struct consent_decision *d, char *buf, size_t bufsz);

#endif
