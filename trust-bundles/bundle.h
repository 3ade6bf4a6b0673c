/*
 * bundle: the trust bundle of one trust domain (X.509 authorities as DER certificates, JWT
 * authorities as key ID + SubjectPublicKeyInfo DER, sequence number, refresh hint) and the
 * bundle set (trust domain -> bundle) that verifiers consult. This module is the data model
 * only: no I/O, no parsing of certificate contents (see bundle_codec.h for the formats).
 * Not thread-safe: callers serialise access to one bundle or set.
 */
#ifndef BUNDLE_H
#define BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"

/* Caps: a bundle is peer-supplied in federation; keep it bounded. */
#define BUNDLE_MAX_AUTHORITIES 64
#define BUNDLE_KID_MAX 256

struct bundle;
struct bundle_set;

/* New empty bundle for a trust domain (bare name, validated). Caller frees with bundle_free. */
int bundle_new(const char *trust_domain, struct bundle **out, struct ly_error *err) LY_MUST_USE;

/* Deep copy. Caller frees with bundle_free. */
int bundle_clone(const struct bundle *b, struct bundle **out, struct ly_error *err) LY_MUST_USE;

/* The trust domain name, borrowed for the bundle's lifetime. */
const char *bundle_trust_domain(const struct bundle *b);

/*
 * Add an X.509 authority (DER certificate, copied). An identical DER already present is a
 * no-op. More than BUNDLE_MAX_AUTHORITIES gives LY_ERR_USAGE. The certificate is not parsed
 * here: callers (codec, CA) check it is a CA certificate before adding it.
 */
int bundle_add_x509_authority(struct bundle *b, const uint8_t *der, size_t len,
                              struct ly_error *err) LY_MUST_USE;
/* Remove the authority with this exact DER. 0 if removed, LY_ERR_USAGE if absent. */
int bundle_remove_x509_authority(struct bundle *b, const uint8_t *der, size_t len,
                                 struct ly_error *err) LY_MUST_USE;
size_t bundle_x509_count(const struct bundle *b);
/* The i-th authority's DER (borrowed), or NULL when i is out of range. */
const uint8_t *bundle_x509_authority(const struct bundle *b, size_t i, size_t *len);

/*
 * Add a JWT authority: key ID (non-empty, at most BUNDLE_KID_MAX bytes, copied) and public key
 * as SubjectPublicKeyInfo DER (copied). A duplicate kid gives LY_ERR_PARSE.
 */
int bundle_add_jwt_authority(struct bundle *b, const char *kid, const uint8_t *spki,
                             size_t len, struct ly_error *err) LY_MUST_USE;
size_t bundle_jwt_count(const struct bundle *b);
/* The i-th JWT authority: returns its kid and sets *spki and *len (borrowed), or NULL if out of range. */
const char *bundle_jwt_authority(const struct bundle *b, size_t i, const uint8_t **spki,
                                 size_t *len);
/* Find a JWT authority by exact kid. Returns 0 and sets *spki and *len, or -1 when absent. */
int bundle_jwt_find(const struct bundle *b, const char *kid, const uint8_t **spki, size_t *len);

/* Sequence number (spiffe_sequence) and refresh hint in seconds (spiffe_refresh_hint). */
void bundle_set_sequence(struct bundle *b, uint64_t seq);
int bundle_get_sequence(const struct bundle *b, uint64_t *seq); /* -1 when unset */
void bundle_set_refresh_hint(struct bundle *b, int64_t seconds);
int bundle_get_refresh_hint(const struct bundle *b, int64_t *seconds); /* -1 when unset */

/* Free the bundle. NULL is a no-op. */
void bundle_free(struct bundle *b);

/* ---- bundle set ---- */

int bundle_set_new(struct bundle_set **out, struct ly_error *err) LY_MUST_USE;

/*
 * Put a bundle into the set, taking ownership of it; a bundle already present for the same
 * trust domain is replaced (and freed). On failure the bundle is freed too.
 */
int bundle_set_put(struct bundle_set *set, struct bundle *b, struct ly_error *err) LY_MUST_USE;

/* The bundle for trust domain td (exact match), borrowed, or NULL when the set has none. */
const struct bundle *bundle_set_get(const struct bundle_set *set, const char *td);

size_t bundle_set_count(const struct bundle_set *set);
/* The i-th bundle (borrowed), or NULL when out of range. */
const struct bundle *bundle_set_at(const struct bundle_set *set, size_t i);

/* Free the set and every bundle in it. NULL is a no-op. */
void bundle_set_free(struct bundle_set *set);

#endif
