/*
 * entry: the registration entry model (SPIFFE ID, selectors, TTL, DNS names, hint) and the unix
 * selectors that attestation matches: parsing, canonical formatting and validation with stable
 * reason codes. Pure data and checks: no I/O, no database; storing entries is store.h's job.
 */
#ifndef ENTRY_H
#define ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"

/* An entry id: 128 random bits as 32 lowercase hex digits. */
#define ENTRY_ID_HEX_LEN 32
#define ENTRY_MAX_SELECTORS 16      /* per entry */
#define ENTRY_SELECTOR_VALUE_MAX 4096 /* bytes of a selector's value (PATH_MAX) */
#define ENTRY_NAME_MAX 256          /* user and group names (LOGIN_NAME_MAX) */
#define ENTRY_MAX_DNS 32            /* DNS SANs per entry */
#define ENTRY_DNS_NAME_MAX 253      /* RFC 1035 §2.3.4, without the root dot */
#define ENTRY_MAX_FEDERATES 32      /* federated trust domains per entry */
#define ENTRY_HINT_MAX 1024         /* WAPI-24: no hint longer than 1024 bytes */

/* Stable rejection reasons (struct ly_error.reason) for entries and selectors. */
enum entry_reason {
    ENTRY_R_SEL_PREFIX = 1,   /* selector not of the form unix:TYPE:VALUE (unknown prefix) */
    ENTRY_R_SEL_TYPE,         /* unknown unix selector type */
    ENTRY_R_SEL_EMPTY,        /* empty value */
    ENTRY_R_SEL_NUL,          /* a NUL byte inside the selector */
    ENTRY_R_SEL_TOO_LONG,     /* value longer than ENTRY_SELECTOR_VALUE_MAX (or name cap) */
    ENTRY_R_SEL_NUMBER,       /* uid/gid not a canonical decimal number */
    ENTRY_R_SEL_RANGE,        /* uid/gid out of range (0 .. 4294967294) */
    ENTRY_R_SEL_NAME,         /* user/group name with a forbidden byte */
    ENTRY_R_SEL_PATH_RELATIVE, /* path does not start with '/' */
    ENTRY_R_SEL_PATH_SEGMENT, /* "//", "/./", "/../" or trailing '/' in a path */
    ENTRY_R_SEL_PATH_CHAR,    /* control byte in a path */
    ENTRY_R_SEL_HEX,          /* sha256 not 64 lowercase hex digits */
    ENTRY_R_SEL_DUPLICATE,    /* the same selector twice in one entry */
    ENTRY_R_NO_SELECTORS,     /* an entry needs at least one selector */
    ENTRY_R_TOO_MANY_SELECTORS, /* more than ENTRY_MAX_SELECTORS */
    ENTRY_R_ID,               /* SPIFFE ID invalid (the message names the spiffeid problem) */
    ENTRY_R_ID_ROOT,          /* SPIFFE ID without a path */
    ENTRY_R_TRUST_DOMAIN,     /* SPIFFE ID outside this broker's trust domain */
    ENTRY_R_TTL,              /* TTL outside [CA_MIN_SVID_TTL, CA_MAX_SVID_TTL] */
    ENTRY_R_DNS,              /* DNS name not LDH labels */
    ENTRY_R_DNS_DUPLICATE,    /* the same DNS name twice */
    ENTRY_R_TOO_MANY_DNS,     /* more than ENTRY_MAX_DNS */
    ENTRY_R_HINT_TOO_LONG,    /* hint longer than ENTRY_HINT_MAX bytes */
    ENTRY_R_HINT_CHAR,        /* hint with a control byte or invalid UTF-8 */
    ENTRY_R_FEDERATES,        /* bad or duplicate federated trust domain */
    ENTRY_R_BAD_ENTRY_ID,     /* an entry id that is not 32 lowercase hex digits */
    ENTRY_R_DUPLICATE,        /* store: same SPIFFE ID and selector set already registered */
    ENTRY_R_NOT_FOUND,        /* store: no entry with that id */
};

/*
 * Selector types. gid/group are the workload's primary group (the one SO_PEERCRED reports);
 * supplementary_gid/supplementary_group are its other groups, as in SPIRE's unix attestor.
 */
enum entry_sel_type {
    ENTRY_SEL_UID = 1,
    ENTRY_SEL_GID,
    ENTRY_SEL_USER,
    ENTRY_SEL_GROUP,
    ENTRY_SEL_SUPPL_GID,
    ENTRY_SEL_SUPPL_GROUP,
    ENTRY_SEL_PATH,
    ENTRY_SEL_SHA256,
};

/* One selector: a type and its canonical value text (the part after "unix:TYPE:"). */
struct entry_selector {
    enum entry_sel_type type;
    char *value; /* owned, NUL-terminated; freed with the entry (or entry_selector_clear) */
};

/*
 * A registration entry. Every pointer member is owned by the entry and released by
 * entry_free(). Build one with entry_new() and the entry_set_* / entry_add_* functions, which
 * validate each piece as it is added; entry_validate() checks the whole before storing.
 */
struct entry {
    char id[ENTRY_ID_HEX_LEN + 1]; /* "" until the store assigns one */
    char *spiffe_id;               /* canonical SPIFFE ID with a path */
    int64_t ttl;                   /* X509-SVID lifetime in seconds */
    int64_t created_at;            /* seconds since the epoch, set by the store */
    char *hint;                    /* NULL when none (WAPI-17 hint) */
    struct entry_selector *selectors; /* sorted canonically once validated */
    size_t n_selectors;
    char **dns; /* lowercase LDH names */
    size_t n_dns;
    char **federates_with; /* bare trust domain names */
    size_t n_federates_with;
};

/* The selector type's name as written in a selector ("uid", "path", ...). Never NULL. */
const char *entry_sel_type_name(enum entry_sel_type type);

/* The type named `name` (as entry_sel_type_name gives it): 0 and *out set, or -1 if unknown. */
int entry_sel_type_parse(const char *name, enum entry_sel_type *out) LY_MUST_USE;

/*
 * Parse "unix:TYPE:VALUE" (len bytes at s; embedded NULs are rejected) into *out. The value is
 * validated for its type (see enum entry_reason) and must already be canonical. On success the
 * caller owns out->value (free with entry_selector_clear). Returns 0 or LY_ERR_PARSE (or
 * LY_ERR_NOMEM); peer or user text in the message is escaped and capped.
 */
int entry_selector_parse(const char *s, size_t len, struct entry_selector *out,
                         struct ly_error *err) LY_MUST_USE;

/*
 * Validate a value for a type (the same checks entry_selector_parse applies). Returns 0 or
 * LY_ERR_PARSE. Used for facts and for values arriving already split (the admin API).
 */
int entry_selector_check(enum entry_sel_type type, const char *value, size_t len,
                         struct ly_error *err) LY_MUST_USE;

/*
 * Format a selector as "unix:TYPE:VALUE" into out (initialised here, caller frees with
 * ly_buf_free). Returns 0 or LY_ERR_NOMEM.
 */
int entry_selector_format(const struct entry_selector *sel, struct ly_buf *out,
                          struct ly_error *err) LY_MUST_USE;

/* Total order on selectors (type, then value bytes): <0, 0, >0. */
int entry_selector_cmp(const struct entry_selector *a, const struct entry_selector *b);

/* Free a selector's value and reset it. NULL is a no-op. */
void entry_selector_clear(struct entry_selector *sel);

/*
 * 1 when every selector of `e` is in `facts` (n_facts selectors describing one workload),
 * 0 otherwise: an entry matches only when ALL its selectors hold. An entry without selectors
 * never matches. This is the reference semantics; store_entry_match() applies the same rule.
 */
int entry_matches(const struct entry *e, const struct entry_selector *facts, size_t n_facts);

/* A new empty entry with the default TTL, or NULL when out of memory. Free with entry_free. */
struct entry *entry_new(void) LY_MUST_USE;

/* Free an entry and everything it owns. NULL is a no-op. */
void entry_free(struct entry *e);

/* Free an array of n entries (as returned by the store) and the array. NULL is a no-op. */
void entry_list_free(struct entry **list, size_t n);

/*
 * Set the SPIFFE ID (parsed strictly; must have a path). LY_ERR_PARSE with ENTRY_R_ID or
 * ENTRY_R_ID_ROOT otherwise. The entry keeps its own copy.
 */
int entry_set_spiffe_id(struct entry *e, const char *id, size_t len, struct ly_error *err)
    LY_MUST_USE;

/* Set the TTL in seconds; LY_ERR_PARSE (ENTRY_R_TTL) outside [CA_MIN_SVID_TTL, CA_MAX_SVID_TTL]. */
int entry_set_ttl(struct entry *e, int64_t ttl, struct ly_error *err) LY_MUST_USE;

/* Set the hint (≤ ENTRY_HINT_MAX bytes of UTF-8 without control bytes). Empty clears it. */
int entry_set_hint(struct entry *e, const char *hint, size_t len, struct ly_error *err)
    LY_MUST_USE;

/* Parse and add one selector ("unix:uid:1000"); refuses duplicates and more than the cap. */
int entry_add_selector(struct entry *e, const char *sel, size_t len, struct ly_error *err)
    LY_MUST_USE;

/* Add a DNS name (LDH labels, stored lowercase); refuses duplicates and more than the cap. */
int entry_add_dns(struct entry *e, const char *name, size_t len, struct ly_error *err)
    LY_MUST_USE;

/* Add a federated trust domain (bare name or SPIFFE ID; the trust domain is kept). */
int entry_add_federates_with(struct entry *e, const char *td, size_t len, struct ly_error *err)
    LY_MUST_USE;

/*
 * Check a whole entry before it is stored: a SPIFFE ID with a path, in `trust_domain` when that
 * is not NULL (ENTRY_R_TRUST_DOMAIN, LY_ERR_USAGE), 1..ENTRY_MAX_SELECTORS valid distinct
 * selectors, TTL in range, valid DNS names and hint, and no federated trust domain equal to
 * `trust_domain` (ENTRY_R_FEDERATES, LY_ERR_USAGE). Sorts the selectors into canonical order.
 * Returns 0, LY_ERR_PARSE (invalid content) or LY_ERR_USAGE (other trust domain).
 */
int entry_validate(struct entry *e, const char *trust_domain, struct ly_error *err)
    LY_MUST_USE;

/* 1 when s (len bytes) is a well-formed entry id (32 lowercase hex digits), else 0. */
int entry_id_valid(const char *s, size_t len);

/*
 * SHA-256 (hex, 65 bytes with NUL) over the canonical, sorted selector set: two entries with
 * the same set have the same key. The store uses it to refuse duplicate entries. Returns 0 or
 * LY_ERR_INTERNAL. The entry's selectors must be sorted (entry_validate does that).
 */
int entry_selector_set_key(const struct entry *e, char out[65], struct ly_error *err)
    LY_MUST_USE;

/*
 * Append the entry as one JSON object to out (an initialised buffer): id, spiffe_id,
 * selectors (strings), ttl, dns, federates_with, hint (null when none), created_at (RFC 3339).
 * Returns 0 or LY_ERR_NOMEM / LY_ERR_USAGE (buffer cap).
 */
int entry_to_json(const struct entry *e, struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

/*
 * The same object as a jansson value (for the admin API): *out is a new reference the caller
 * releases with json_decref(). Returns 0 or LY_ERR_NOMEM.
 */
struct json_t;
int entry_to_json_value(const struct entry *e, struct json_t **out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Append a human-readable multi-line description ("id: ...\nspiffe_id: ...\n") to out. Any byte
 * that is not printable ASCII in a value is shown as \xHH. Returns 0 or an error from ly_buf.
 */
int entry_to_text(const struct entry *e, struct ly_buf *out, struct ly_error *err) LY_MUST_USE;

#endif
