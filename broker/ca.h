/*
 * ca: the trust domain's authorities on disk. `ca_init` creates the X.509 CA (key + self-signed
 * certificate) and the JWT signing key, writes each key 0600 and atomically under
 * <data>/keys/, and records them in the store in one transaction; `ca_open` loads them back to
 * mint X509-SVIDs and JWT-SVIDs and to publish the bundle. Every issued X509-SVID is recorded
 * (serial, SPIFFE ID, not-after, fingerprint), never its key. Not thread-safe per handle.
 */
#ifndef CA_H
#define CA_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "../svid/key.h"
#include "../svid/spiffeid.h"
#include "../trust-bundles/bundle.h"

/* Defaults: short-lived by design. */
#define CA_DEFAULT_TTL (30 * 86400)       /* X.509 CA lifetime */
#define CA_DEFAULT_SVID_TTL 3600          /* X509-SVID lifetime */
#define CA_DEFAULT_JWT_TTL 300            /* JWT-SVID lifetime */
#define CA_DEFAULT_REFRESH_HINT 300       /* bundle refresh hint, seconds */
#define CA_MIN_TTL 60                     /* nothing lanyard issues lives shorter than this... */
#define CA_MAX_SVID_TTL (30 * 86400)      /* ...or an SVID longer than this */

struct ca_state;

struct ca_init_params {
    const char *trust_domain;    /* bare name, validated (≤255 bytes) */
    enum svid_key_type key_type; /* of the X.509 CA; the JWT key is always EC P-256 */
    int64_t ttl;                 /* CA lifetime in seconds */
};

/*
 * Create the data directory (0700) if needed and initialise its trust domain. Refuses with
 * LY_ERR_USAGE if a CA already exists there (nothing is changed then). On any failure, nothing
 * is recorded and no key file is left behind.
 */
int ca_init(const char *data_dir, const struct ca_init_params *p, struct ly_error *err)
    LY_MUST_USE;

/*
 * Open an initialised data directory: the store, the active CA (certificate + key) and the
 * active JWT key. LY_ERR_USAGE with a hint to run `lanyard ca init` when there is none.
 * Caller frees with ca_close().
 */
int ca_open(const char *data_dir, struct ca_state **out, struct ly_error *err) LY_MUST_USE;

/* Close and wipe. NULL is a no-op. */
void ca_close(struct ca_state *ca);

/* The trust domain name (borrowed). */
const char *ca_trust_domain(const struct ca_state *ca);

/*
 * This trust domain's bundle: every CA certificate still valid at `now` (active and retired) and
 * every JWT key, with the sequence number and refresh hint. Caller frees with bundle_free.
 */
int ca_bundle(struct ca_state *ca, int64_t now, struct bundle **out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Mint an X509-SVID for `id` (must be in this trust domain, with a path) over the public key
 * `spki` (SubjectPublicKeyInfo DER), valid from about now for `ttl` seconds (clamped to the CA's
 * notAfter), with optional DNS SANs. The DER certificate goes to cert_der (initialised here).
 * The issuance is recorded in the store before the certificate is returned.
 */
int ca_mint_x509(struct ca_state *ca, const struct spiffeid *id, const uint8_t *spki,
                 size_t spki_len, int64_t ttl, const char *const *dns, size_t n_dns,
                 struct ly_buf *cert_der, struct ly_error *err) LY_MUST_USE;

/* Mint a JWT-SVID (ES256) for `id` with the given audiences; token goes to out (secret). */
int ca_mint_jwt(struct ca_state *ca, const struct spiffeid *id, const char *const *aud,
                size_t n_aud, int64_t ttl, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;

#endif
