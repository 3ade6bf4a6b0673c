/*
 * relation: what a bundle fetched from a foreign trust domain's bundle endpoint must satisfy
 * before lanyard trusts it, and when the next fetch is due. Pure: no I/O, no clock; the daemon
 * (broker/fedsync) fetches with federation/fetch and keeps the last good bundle whenever this
 * module refuses a new one.
 */
#ifndef FED_RELATION_H
#define FED_RELATION_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"
#include "../svid/spiffeid.h"
#include "../trust-bundles/bundle.h"

/* How the bundle endpoint is authenticated (SPIFFE Trust Domain and Bundle §5.2). */
enum fed_profile {
    FED_PROFILE_HTTPS_WEB = 1,    /* a web PKI certificate for the URL's host */
    FED_PROFILE_HTTPS_SPIFFE = 2, /* an X509-SVID of the expected endpoint SPIFFE ID */
};

/* "https_web" / "https_spiffe" -> profile. 0, or LY_ERR_PARSE naming the accepted values. */
int fed_profile_parse(const char *s, enum fed_profile *out, struct ly_error *err) LY_MUST_USE;
/* The profile's name ("https_web", "https_spiffe"; "unknown" otherwise). Never NULL. */
const char *fed_profile_name(enum fed_profile p);

/* ly_error.reason of a refused bundle. */
enum fed_reason {
    FED_R_GARBAGE = 1,       /* the answer is not a SPIFFE bundle */
    FED_R_EMPTY,             /* a bundle without any authority */
    FED_R_WRONG_DOMAIN,      /* an authority names another trust domain */
    FED_R_STALE_SEQUENCE,    /* spiffe_sequence lower than the bundle already held */
    FED_R_ENDPOINT_ID,       /* https_spiffe: the server is not the expected SPIFFE ID */
    FED_R_ENDPOINT_UNTRUSTED /* https_spiffe: the server's chain does not verify */
};

/* Everything one check looks at; every pointer is borrowed for the call. */
struct fed_check {
    const char *trust_domain;          /* the foreign trust domain (bare name) */
    enum fed_profile profile;
    const struct spiffeid *endpoint_id; /* https_spiffe: who the server must be */
    const struct bundle *current;      /* the bundle held now (bootstrap or last good), or NULL */
    const uint8_t *body;               /* the endpoint's answer */
    size_t body_len;
    const uint8_t *peer_chain;         /* https_spiffe: the server's certificates, DER, leaf first */
    size_t peer_chain_len;
    int64_t now;                       /* epoch seconds */
};

/*
 * Decide on one fetched answer. https_spiffe first: the server's chain must verify as an
 * X509-SVID against `current` (the foreign domain's own bundle, so a rotated foreign CA is
 * followed as soon as its bundle was fetched once) and name exactly endpoint_id. Then the body
 * must parse as a SPIFFE bundle for trust_domain, hold at least one authority, hold no X.509
 * authority whose SPIFFE ID is in another trust domain, and carry a spiffe_sequence no lower
 * than current's. On success *out is the new bundle (caller frees with bundle_free) and
 * *changed is 1 when it differs from current in authorities, sequence or refresh hint.
 * Refusals: LY_ERR_VERIFY or LY_ERR_PARSE with an enum fed_reason and a message for the log.
 */
int fed_check_bundle(const struct fed_check *c, struct bundle **out, int *changed,
                     struct ly_error *err) LY_MUST_USE;

/* 1 when a and b hold the same authorities, sequence and refresh hint. */
int fed_bundle_same(const struct bundle *a, const struct bundle *b);

/* Refresh hint assumed when a bundle carries none (seconds). */
#define FED_REFRESH_HINT_DEFAULT 300
/* Bounds of the delay after a failed fetch (seconds). */
#define FED_BACKOFF_MIN 1
#define FED_BACKOFF_MAX 300

/*
 * Seconds until the next fetch after a successful one: a quarter of the refresh hint (hint <= 0
 * means FED_REFRESH_HINT_DEFAULT), at least 1, so a change is seen well within the hint.
 */
int64_t fed_next_refresh(int64_t refresh_hint);

/*
 * Seconds until the next try after `failures` consecutive failed fetches (>= 1): doubling from
 * FED_BACKOFF_MIN, never beyond the normal refresh interval nor FED_BACKOFF_MAX, so an endpoint
 * that comes back is picked up as soon as a success would have been.
 */
int64_t fed_backoff(unsigned failures, int64_t refresh_hint);

#endif
