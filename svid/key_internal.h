/*
 * key_internal: the inside of struct svid_key (the wolfCrypt key object, its type and its RNG)
 * and allocation-free helpers for the svid/ modules that sign certificates. Only svid/ sources
 * and their unit tests include this header; nothing outside svid/ may see wolfSSL types.
 */
#ifndef SVID_KEY_INTERNAL_H
#define SVID_KEY_INTERNAL_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/random.h>

#include "key.h"

/* Largest signature svid_key_sign_raw() writes (ECDSA P-256 DER is at most 72 bytes). */
#define SVID_KEY_SIG_MAX 80
/* Largest raw public key: the uncompressed P-256 point (0x04 || X || Y). */
#define SVID_KEY_PUB_MAX 65
/* Largest SubjectPublicKeyInfo DER lanyard produces or accepts for its two key types. */
#define SVID_KEY_SPKI_MAX 128

/*
 * The key. Allocated with ly_secret_alloc() (locked, not dumped) and wiped on free. `rng` is
 * initialised once per key, so signing never re-seeds; that is also why a key is not
 * thread-safe.
 */
struct svid_key {
    enum svid_key_type type;
    int rng_ready;  /* rng initialised (wc_FreeRng needed) */
    int key_ready;  /* u.ec / u.ed initialised (wc_ecc_free / wc_ed25519_free needed) */
    WC_RNG rng;
    union {
        ecc_key ec;
        ed25519_key ed;
    } u;
};

/*
 * Sign msg into sig (at least SVID_KEY_SIG_MAX bytes), as svid_key_sign() does but without
 * allocating: ECDSA-SHA256 DER for P-256, pure Ed25519 for Ed25519. *siglen gets the length.
 */
int svid_key_sign_raw(struct svid_key *key, const uint8_t *msg, size_t len, uint8_t *sig,
                      size_t *siglen, struct ly_error *err) LY_MUST_USE;

/*
 * Decode a SubjectPublicKeyInfo with wolfSSL and accept only EC P-256 or Ed25519. Fills *type,
 * the raw public key (pub, at least SVID_KEY_PUB_MAX bytes; *publen) and the canonical SPKI
 * DER re-encoded by wolfSSL (spki_out, at least SVID_KEY_SPKI_MAX bytes; *spki_outlen), so
 * callers embed a well-formed encoding rather than the bytes they were handed.
 * Returns 0, or LY_ERR_PARSE naming what was found.
 */
int svid_key_spki_decode(const uint8_t *spki, size_t len, enum svid_key_type *type, uint8_t *pub,
                         size_t *publen, uint8_t *spki_out, size_t *spki_outlen,
                         struct ly_error *err) LY_MUST_USE;

/* The raw public key of a key (as svid_key_spki_decode gives it). */
int svid_key_public_raw(const struct svid_key *key, uint8_t *pub, size_t *publen,
                        struct ly_error *err) LY_MUST_USE;

#endif
