/*
 * spiffeid: strict parsing, formatting and comparison of SPIFFE IDs and trust domain names
 * (SPIFFE-ID.md §2). A struct spiffeid only ever holds a valid ID in its one canonical form, so
 * comparison is exact byte equality: no case folding, no percent-decoding, no normalisation.
 * Pure functions: no I/O, no allocation, thread-safe.
 */
#ifndef SPIFFEID_H
#define SPIFFEID_H

#include <stddef.h>

#include "../common/ly_error.h"

/* SPIFFE-ID §2.3: IDs up to 2048 bytes (whole string) must be accepted; longer are refused. */
#define SPIFFEID_MAX_LEN 2048
/* RFC 3986 host limit, which the checklist (ID-14) adopts for trust domains. */
#define SPIFFEID_TD_MAX_LEN 255

/* Stable rejection reasons (struct ly_error.reason), matching the vector categories. */
enum spiffeid_reason {
    SPIFFEID_R_EMPTY = 1,        /* empty input */
    SPIFFEID_R_WRONG_SCHEME,     /* not "spiffe://" exactly */
    SPIFFEID_R_MISSING_TD,       /* empty trust domain */
    SPIFFEID_R_BAD_TD_CHAR,      /* trust domain byte outside [a-z0-9._-] (incl. ':', '@', '%') */
    SPIFFEID_R_BAD_PATH_CHAR,    /* path byte outside [A-Za-z0-9._-] and '/' */
    SPIFFEID_R_EMPTY_SEGMENT,    /* "//" in the path */
    SPIFFEID_R_DOT_SEGMENT,      /* a segment that is exactly "." or ".." */
    SPIFFEID_R_TRAILING_SLASH,   /* path ends in '/' (including a bare "/") */
    SPIFFEID_R_TOO_LONG,         /* whole ID longer than SPIFFEID_MAX_LEN */
    SPIFFEID_R_TD_TOO_LONG,      /* trust domain longer than SPIFFEID_TD_MAX_LEN */
    SPIFFEID_R_EMBEDDED_NUL,     /* a NUL byte inside the given length */
};

/* A valid SPIFFE ID. Treat as read-only; fill only with spiffeid_parse()/spiffeid_from_parts(). */
struct spiffeid {
    char str[SPIFFEID_MAX_LEN + 1]; /* "spiffe://td/path", NUL-terminated */
    size_t len;                     /* strlen(str) */
    size_t td_len;                  /* trust domain is str[9 .. 9+td_len) */
};

/*
 * Parse `len` bytes at `s` as a SPIFFE ID. On success fills *out and returns 0; otherwise
 * returns LY_ERR_PARSE with err->reason an enum spiffeid_reason and a message naming the
 * offending byte/segment (peer-supplied text is escaped and capped in the message).
 */
int spiffeid_parse(const char *s, size_t len, struct spiffeid *out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Parse a trust domain given either as a bare name ("example.org") or as a SPIFFE ID (whose
 * trust domain is taken, path ignored but still validated). Writes the NUL-terminated name to
 * td (at least SPIFFEID_TD_MAX_LEN + 1 bytes). LY_ERR_PARSE with a spiffeid_reason otherwise.
 */
int spiffeid_parse_trust_domain(const char *s, size_t len, char *td, size_t tdsz,
                                struct ly_error *err) LY_MUST_USE;

/* Validate an absolute path ("" allowed, else "/seg/seg") against §2.2. LY_ERR_PARSE if bad. */
int spiffeid_validate_path(const char *path, size_t len, struct ly_error *err) LY_MUST_USE;

/* Validate one path segment (non-empty, not "." or "..", allowed bytes only). */
int spiffeid_validate_segment(const char *seg, size_t len, struct ly_error *err) LY_MUST_USE;

/* Build an ID from a trust domain name and a path ("" or "/..."); validates both. */
int spiffeid_from_parts(const char *td, const char *path, struct spiffeid *out,
                        struct ly_error *err) LY_MUST_USE;

/* The trust domain name (not NUL-terminated at td_len; use spiffeid_td_copy for a C string). */
const char *spiffeid_td(const struct spiffeid *id, size_t *len);
/* Copy the trust domain name into out (>= SPIFFEID_TD_MAX_LEN + 1). Returns 0 or -1 if small. */
int spiffeid_td_copy(const struct spiffeid *id, char *out, size_t outsz) LY_MUST_USE;
/* The path ("" for the trust domain's own ID), NUL-terminated, borrowed from id. */
const char *spiffeid_path(const struct spiffeid *id);
/* 1 when the ID has no path (it names a trust domain, e.g. a CA's ID). */
int spiffeid_is_root(const struct spiffeid *id);

/* Exact equality (byte for byte): 1 equal, 0 not. */
int spiffeid_equal(const struct spiffeid *a, const struct spiffeid *b);
/* 1 when id's trust domain equals the bare name td exactly (never by suffix). */
int spiffeid_member_of(const struct spiffeid *id, const char *td);

#endif
