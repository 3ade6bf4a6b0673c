/*
 * audit: lanyard's append-only, hash-chained log of policy decisions (DATA/audit.log). Each
 * record is a CBOR map framed as a 4-byte big-endian length + CBOR bytes and carries the
 * SHA-256 of the previous framed record, so an edited, deleted, reordered or truncated record is
 * detected by audit_scan(). It never rewrites the file, and it refuses token- or key-like values.
 */
#ifndef AUDIT_H
#define AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"

/* Largest CBOR payload of one record (the length prefix excluded). */
#define AUDIT_MAX_RECORD (64u * 1024u)
/* Longest value of one text field of an event. */
#define AUDIT_MAX_FIELD 2048u
/* Largest audit file audit_open() and audit_scan() read (they read it whole). */
#define AUDIT_MAX_FILE (1024u * 1024u * 1024u)
/* A SHA-256 as lower-case hex, with its NUL. */
#define AUDIT_HEX_LEN 65

/* Reasons (ly_error.reason) of audit failures; scans report the FIRST broken record. */
enum audit_reason {
    AUDIT_R_TRUNCATED = 1, /* the file ends inside a record (an interrupted write) */
    AUDIT_R_FRAMING,       /* a length prefix that is zero or over AUDIT_MAX_RECORD: garbage */
    AUDIT_R_RECORD,        /* the bytes are not a strict CBOR audit record (garbage or edited) */
    AUDIT_R_HASH,          /* prev does not match the previous record: edited or reordered */
    AUDIT_R_SEQ_GAP,       /* seq skips forward: records deleted (or moved) */
    AUDIT_R_SEQ_ORDER,     /* seq goes backwards or repeats: records reordered or duplicated */
    AUDIT_R_SECRET,        /* audit_append: a value looks like a token or key (refused) */
    AUDIT_R_FIELD,         /* audit_append: a missing, oversized or malformed field */
    AUDIT_R_BROKEN_WRITER, /* audit_append after a failed write on this handle */
};

/*
 * One decision to record. All strings are borrowed for the duration of the call. client_id,
 * method, decision ("allow" or "deny") and reason are required; cert_sha256 (64 lower-case hex),
 * user (NULL for a workload-only grant), target and consent_id may be NULL (stored as null).
 * time is seconds since the epoch; 0 means now.
 */
struct audit_event {
    int64_t time;
    const char *client_id;
    const char *cert_sha256;
    const char *user;
    const char *method;
    const char *target;
    const char *decision;
    const char *reason;
    const char *consent_id;
};

/*
 * A decoded, strictly checked record handed to an audit_scan() callback. Every pointer is
 * borrowed from the decoded record and valid only during the callback; text fields are NULL
 * where the record holds null.
 */
struct audit_record {
    uint64_t seq;
    int64_t time;
    const char *time_str;
    const char *client_id;
    const char *cert_sha256;
    const char *user;
    const char *method;
    const char *target;
    const char *decision;
    const char *reason;
    const char *consent_id;
    const char *prev;
    const json_t *json; /* the whole record as a jansson object (borrowed) */
    size_t offset;      /* byte offset of the record's length prefix in the file */
};

/* Which records the callback sees (the chain is checked over all of them regardless). */
struct audit_filter {
    int64_t since;         /* only records with time >= since; 0 for no bound */
    const char *client_id; /* exact match, or NULL for any (borrowed) */
    const char *user;      /* exact match, or NULL for any (borrowed) */
    const char *decision;  /* "allow", "deny", or NULL for any (borrowed) */
};

/* Called for each matching record in file order; return 0 to go on, or a negative LY_ERR_*. */
typedef int (*audit_scan_cb)(const struct audit_record *rec, void *arg);

/* What a scan saw; filled on success and, up to the break, on a broken chain. */
struct audit_scan_info {
    uint64_t records;      /* records that decoded and chained correctly */
    uint64_t last_seq;     /* seq of the last good record (0 when none) */
    uint8_t last_hash[32]; /* SHA-256 of the last good framed record (zeros when none) */
    size_t good_len;       /* bytes of the file covered by good records */
    uint64_t broken_seq;   /* on a broken chain: the seq named in the error */
};

/* An open audit log for appending. Opaque; released only with audit_close(). */
struct audit_log;

/*
 * Open (creating with mode 0600 when missing) the audit log at path for appending, with
 * O_APPEND|O_CREAT|O_CLOEXEC|O_NOFOLLOW. The existing file must be a regular file without group
 * or other permissions; it is read and its whole chain checked to recover the next seq and the
 * last hash. A truncated final record or any broken record makes the open fail (LY_ERR_VERIFY
 * with an enum audit_reason naming the record); nothing is ever dropped or repaired. LY_ERR_IO
 * when the file cannot be opened, read or locked (another process appending). On success *log
 * is owned by the caller, who releases it with audit_close().
 */
int audit_open(const char *path, struct audit_log **log, struct ly_error *err) LY_MUST_USE;

/*
 * Append one record: {seq, time, client_id, cert_sha256, user, method, target, decision,
 * reason, consent_id, prev}, written with one write(2) of the whole framed record followed by
 * fdatasync(2). A value that looks like a token or key (a JWT "eyJ..." or PEM "-----BEGIN",
 * "PRIVATE KEY", "Bearer ") is refused with LY_ERR_USAGE / AUDIT_R_SECRET, and a malformed event
 * with LY_ERR_USAGE / AUDIT_R_FIELD; neither writes anything. After a failed or short write the
 * handle refuses further appends (LY_ERR_IO), so a torn record is never followed by more.
 */
int audit_append(struct audit_log *log, const struct audit_event *ev,
                 struct ly_error *err) LY_MUST_USE;

/*
 * deferred=1: audit_append() still writes each record with one write(2) before it returns (a
 * crash of the process loses nothing), but leaves fdatasync(2) to audit_sync(), which a
 * writer on a latency-critical path calls on a timer (the gateway: every 100 ms). A machine
 * crash can then lose the records of the last interval. Default 0: fdatasync per append.
 */
void audit_defer_sync(struct audit_log *log, int deferred);
/* fdatasync(2) the records appended since the last sync (no-op when none). LY_ERR_IO. */
int audit_sync(struct audit_log *log, struct ly_error *err) LY_MUST_USE;

/* The seq the next append will get (1 for an empty log). */
uint64_t audit_next_seq(const struct audit_log *log);

/* Close the log and free it. NULL is a no-op. */
void audit_close(struct audit_log *log);

/*
 * Read the audit file at path (O_NOFOLLOW, regular file, at most AUDIT_MAX_FILE bytes), decode
 * every record strictly and check the chain: the first record has seq 1 and prev of 64 zeros,
 * each later record has seq = previous + 1 and prev = SHA-256 of the previous framed record.
 * cb (may be NULL) sees each good record that matches filter (may be NULL) before the next one
 * is read. Returns 0 when the whole file is intact; LY_ERR_VERIFY with an enum audit_reason and
 * a message naming the FIRST broken record's seq and offset; LY_ERR_IO when unreadable; or what
 * cb returned. info (may be NULL) is filled either way.
 */
int audit_scan(const char *path, const struct audit_filter *filter, audit_scan_cb cb, void *arg,
               struct audit_scan_info *info, struct ly_error *err) LY_MUST_USE;

/* As audit_scan(), over `len` bytes of an audit file already in memory (borrowed). */
int audit_scan_mem(const uint8_t *data, size_t len, const struct audit_filter *filter,
                   audit_scan_cb cb, void *arg, struct audit_scan_info *info,
                   struct ly_error *err) LY_MUST_USE;

/*
 * 1 when value looks like a token or key that must never be audited (JWT/JWS compact form,
 * PEM, a bearer credential), 0 otherwise. NULL is 0.
 */
int audit_value_is_secret(const char *value);

#endif
