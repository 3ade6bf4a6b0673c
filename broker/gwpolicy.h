/*
 * gwpolicy: the MCP gateway's shared decision state. It keeps the consent index built from the
 * store (broker/store) fresh on every request: a snapshot first asks SQLite whether anyone has
 * committed since the last look (PRAGMA data_version), rebuilds the index when so, and hands
 * out a reference that stays valid for the whole request, so a revocation is seen by the very
 * next request and a decision never sees half a change. It also binds MCP sessions
 * (Mcp-Session-Id) to the client SPIFFE ID and user that opened them. Thread-safe; no tokens
 * pass through it.
 */
#ifndef GWPOLICY_H
#define GWPOLICY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"
#include "../svid/spiffeid.h"
#include "consent.h"

#define GWPOLICY_SESSION_ID_MAX 256  /* bytes of an Mcp-Session-Id */
#define GWPOLICY_MAX_SESSIONS 65536  /* bound sessions kept; the least recently used goes first */
#define GWPOLICY_REASON_MAX 320

struct gwpolicy;
struct gwpolicy_snap;

/*
 * Open the policy state over the store at store_path, which must already exist (the gateway
 * never creates or migrates a store). The first index is built here. LY_ERR_IO when the store
 * is missing or unreadable.
 */
int gwpolicy_open(const char *store_path, struct gwpolicy **out, struct ly_error *err)
    LY_MUST_USE;
/* Close the store and free everything (no snapshot may still be held). NULL is a no-op. */
void gwpolicy_free(struct gwpolicy *p);

/*
 * The current consent index, refreshed first when the store changed: when inotify reports a
 * write to the database or its WAL (by any process on this machine) the data version is read
 * and, if it moved, the index rebuilt. Without inotify every snapshot reads the data version.
 * Release with
 * gwpolicy_release(). NULL with LY_ERR_IO when the store cannot be read: callers then deny
 * (fail closed); the stale index is never used after a failed check.
 */
struct gwpolicy_snap *gwpolicy_snapshot(struct gwpolicy *p, struct ly_error *err);
void gwpolicy_release(struct gwpolicy_snap *s);
/* Records in a snapshot's index. */
size_t gwpolicy_snap_count(const struct gwpolicy_snap *s);
/* How many times the index was (re)built. */
uint64_t gwpolicy_rebuilds(struct gwpolicy *p);

/* One decision, with what the audit log and the HTTP answer need. */
struct gwpolicy_verdict {
    int allow;
    enum consent_reason reason;
    char consent_id[CONSENT_ID_HEX_LEN + 1]; /* the allowing (or best-matching) record, or "" */
    char text[GWPOLICY_REASON_MAX];          /* "allowed by consent ...", "missing scope ..." */
    char scope[CONSENT_URI_PREFIX_MAX + 16]; /* the scope asked for ("tools:echo"), or "" */
};

/*
 * Decide on a snapshot: op_kind "tools" | "resources" | "prompts" | CONSENT_OP_PLUMBING and the
 * target (ignored for plumbing), for user (NULL: workload-only) and client at `now`
 * (consent_decide_from, source trust domain = the client's). Returns 1 allow, 0 deny.
 */
int gwpolicy_decide(const struct gwpolicy_snap *s, const char *user,
                    const struct spiffeid *client, const char *op_kind, const char *target,
                    int64_t now, struct gwpolicy_verdict *out);

/* ---- sessions ---------------------------------------------------------------------------- */

enum gwpolicy_session {
    GWPOLICY_SESSION_OK = 0,
    GWPOLICY_SESSION_UNKNOWN,      /* never opened through this gateway, or ended */
    GWPOLICY_SESSION_OTHER_CLIENT, /* opened by another client SPIFFE ID */
    GWPOLICY_SESSION_OTHER_USER,   /* opened by the same client for another user */
    GWPOLICY_SESSION_BAD_ID,       /* not 1..GWPOLICY_SESSION_ID_MAX visible ASCII bytes */
};

/* Bind a session the upstream just opened to (client, user); user NULL = workload-only. */
int gwpolicy_session_bind(struct gwpolicy *p, const char *sid, size_t len,
                          const struct spiffeid *client, const char *user,
                          struct ly_error *err) LY_MUST_USE;
/* Check that (client, user) may use the session. */
enum gwpolicy_session gwpolicy_session_check(struct gwpolicy *p, const char *sid, size_t len,
                                             const struct spiffeid *client, const char *user);
/* Forget a session (ended by DELETE, or unknown to the upstream). */
void gwpolicy_session_drop(struct gwpolicy *p, const char *sid, size_t len);
/* Bound sessions. */
size_t gwpolicy_session_count(struct gwpolicy *p);
/* A short text for a session check result ("session opened by another client"). */
const char *gwpolicy_session_text(enum gwpolicy_session r);

#endif
