/*
 * ca: the trust domain's authorities on disk. `ca_init` creates the X.509 CA (key + self-signed
 * certificate) and the JWT signing key, writes each key 0600 and atomically under
 * <data>/keys/, and records them in the store in one transaction; `ca_open` loads them back to
 * mint X509-SVIDs and JWT-SVIDs and to publish the bundle; `ca_maintain` rotates the X.509 CA on
 * its schedule. Every issued X509-SVID is recorded (serial, SPIFFE ID, not-after, fingerprint),
 * never its key. Not thread-safe per handle.
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
#define CA_MIN_TTL 60                     /* a CA lives at least this long... */
#define CA_MIN_SVID_TTL 10                /* ...an SVID at least this (short is only stricter) */
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

/* The spiffe_refresh_hint ca_bundle() puts in this handle's bundles (seconds, > 0; default
 * CA_DEFAULT_REFRESH_HINT). */
void ca_set_refresh_hint(struct ca_state *ca, int64_t seconds);

/*
 * This trust domain's bundle: the published X.509 CAs (the prepared next CA, the active one and
 * each retired one that still vouches for an unexpired SVID; see ca_maintain) whose certificate
 * is still valid at `now`, every JWT key, the sequence number and the refresh hint. Caller frees
 * with bundle_free.
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

/* As ca_mint_x509(), at the explicit time `now` (epoch seconds) instead of the wall clock. */
int ca_mint_x509_at(struct ca_state *ca, const struct spiffeid *id, const uint8_t *spki,
                    size_t spki_len, int64_t ttl, const char *const *dns, size_t n_dns,
                    int64_t now, struct ly_buf *cert_der, struct ly_error *err) LY_MUST_USE;

/* Mint a JWT-SVID (ES256) for `id` with the given audiences; token goes to out (secret). */
int ca_mint_jwt(struct ca_state *ca, const struct spiffeid *id, const char *const *aud,
                size_t n_aud, int64_t ttl, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;

/* ---- CA rotation ------------------------------------------------------------------------- */
/*
 * The X.509 CA rotates on its own lifetime L = notAfter - notBefore of the active CA:
 *   1/2 L  the next CA (same key type, same lifetime) is prepared: its key file is written, it
 *          is recorded as the next CA and published in the bundle (sequence + 1), and it signs
 *          nothing yet;
 *   5/6 L  it takes over signing; the old CA becomes "retired" and stays in the bundle (no
 *          sequence change: the bundle's content is the same);
 *   later  a retired CA leaves the bundle (sequence + 1) once every SVID it signed has expired
 *          (the latest recorded not-after has passed) or its own certificate has.
 * If the next CA could only be prepared late (the broker was down), it takes over halfway
 * between its preparation and the old CA's notAfter instead, so it is always published before
 * it signs, and at once if the old CA has already expired. An SVID never outlives its signer:
 * minting clamps its notAfter to the CA's.
 */

/* Bits of *changed reported by ca_maintain(). */
#define CA_CHANGED_BUNDLE 1 /* the published bundle changed (push it to bundle streams) */
#define CA_CHANGED_SIGNER 2 /* another CA signs now (re-issue SVIDs signed by the old one) */

/* How long ca_next_event() asks to wait before retrying after a failed ca_maintain(). */
#define CA_RETRY_DELAY 10

/*
 * Perform every rotation step due at `now` (prepare, take over, drop retired CAs from the
 * bundle), each idempotent and crash-safe: a new key file is written first under a fresh name,
 * then one transaction records the step; a crash in between leaves at most an unreferenced key
 * file, and a failed transaction removes it. It also picks up steps another process made (such
 * as `lanyard ca rotate`), switching this handle to the CA the store says is active. Sets
 * *changed to a CA_CHANGED_* mask (0 when nothing happened). On error, steps done before the
 * failing one stay done and the handle keeps a consistent signer.
 */
int ca_maintain(struct ca_state *ca, int64_t now, int *changed, struct ly_error *err)
    LY_MUST_USE;

/*
 * When ca_maintain() is next due (epoch seconds; at or before `now` means due now; INT64_MAX
 * when nothing is scheduled). Computed by ca_open() and every ca_maintain()/ca_rotate_now();
 * after a failure it is `now` + CA_RETRY_DELAY. Does no I/O.
 */
int64_t ca_next_event(const struct ca_state *ca, int64_t now);

/*
 * Force a rotation now in one step (`lanyard ca rotate` with no server running): prepare the
 * next CA unless one is prepared already, then make it take over at once. The old CA stays in
 * the bundle until its SVIDs expire. Returns 0 or an error with nothing half-done (as
 * ca_maintain). A running daemon uses ca_prepare_now() instead, so that its clients hold the
 * new CA before any SVID it signs reaches them.
 */
int ca_rotate_now(struct ca_state *ca, int64_t now, struct ly_error *err) LY_MUST_USE;

/*
 * First phase of a two-phase forced rotation, for the daemon, which can tell its clients about
 * the next CA before that CA signs anything. Prepares the next CA now unless one is prepared
 * already (*changed gets CA_CHANGED_BUNDLE: it joins the bundle, sequence + 1), and records in
 * the same transaction that it takes over at `takeover_at` (epoch seconds, > now; an earlier
 * recorded time is kept). The takeover itself is the later ca_maintain() step that
 * ca_next_event() announces (CA_CHANGED_SIGNER then), so a crash between the phases loses
 * nothing: the store holds the published CA and its takeover time, and the next start finishes
 * the rotation on time. Only a takeover that is due regardless (the active CA has expired)
 * happens within this call. LY_ERR_USAGE when takeover_at <= now. Errors as ca_maintain().
 */
int ca_prepare_now(struct ca_state *ca, int64_t now, int64_t takeover_at, int *changed,
                   struct ly_error *err) LY_MUST_USE;

/*
 * When the prepared next CA takes over (epoch seconds: the regular 5/6 point or the time a
 * forced rotation recorded, whichever is sooner), or 0 when no next CA is prepared. As known at
 * the last ca_open()/ca_maintain()/ca_rotate_now()/ca_prepare_now(); does no I/O.
 */
int64_t ca_takeover_at(const struct ca_state *ca);

/* The store id of the CA that signs now (changes when another CA takes over). */
int64_t ca_active_id(const struct ca_state *ca);

/* The active CA's notAfter (no SVID it signs lives longer). */
int64_t ca_active_not_after(const struct ca_state *ca);

#endif
