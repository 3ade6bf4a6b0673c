/*
 * key: private and public keys for SVIDs and CAs: ECDSA P-256 (default) and Ed25519.
 * Generation, PKCS#8 DER/PEM in and out, SubjectPublicKeyInfo export, and signing. Private key
 * material lives only inside struct svid_key and in secret buffers, and is wiped on free.
 * Not thread-safe per key (the RNG state is per key); distinct keys may be used concurrently.
 */
#ifndef SVID_KEY_H
#define SVID_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"

enum svid_key_type {
    SVID_KEY_EC_P256 = 1,
    SVID_KEY_ED25519 = 2,
};

struct svid_key;

/* "ec-p256" / "ed25519" <-> enum. parse returns 0 or LY_ERR_USAGE naming the accepted values. */
int svid_key_type_parse(const char *name, enum svid_key_type *out, struct ly_error *err)
    LY_MUST_USE;
const char *svid_key_type_name(enum svid_key_type t);

/* Generate a fresh key. Caller frees with svid_key_free(). */
int svid_key_generate(enum svid_key_type type, struct svid_key **out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Load an unencrypted private key: PKCS#8 PEM ("PRIVATE KEY"), PKCS#8 DER, or SEC1 PEM
 * ("EC PRIVATE KEY") for P-256. Other curves/algorithms and encrypted keys are refused with
 * LY_ERR_PARSE naming what was found. Caller frees with svid_key_free().
 */
int svid_key_parse(const uint8_t *data, size_t len, struct svid_key **out, struct ly_error *err)
    LY_MUST_USE;

enum svid_key_type svid_key_get_type(const struct svid_key *key);

/* PKCS#8 DER / PEM of the private key into out (initialised here as a secret buffer). */
int svid_key_to_pkcs8_der(const struct svid_key *key, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;
int svid_key_to_pkcs8_pem(const struct svid_key *key, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;

/* SubjectPublicKeyInfo DER of the public half into out (initialised here). */
int svid_key_public_der(const struct svid_key *key, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Sign `msg`: ECDSA P-256 with SHA-256, signature DER-encoded (X.509 form); Ed25519 pure
 * (64 bytes). out is initialised here.
 */
int svid_key_sign(struct svid_key *key, const uint8_t *msg, size_t len, struct ly_buf *out,
                  struct ly_error *err) LY_MUST_USE;

/*
 * Sign `msg` for JWS: ES256 gives the 64-byte raw R||S (RFC 7518 §3.4). Only P-256 keys;
 * an Ed25519 key gets LY_ERR_USAGE (JWT-SVIDs do not allow EdDSA). out is initialised here.
 */
int svid_key_sign_jws(struct svid_key *key, const uint8_t *msg, size_t len, struct ly_buf *out,
                      struct ly_error *err) LY_MUST_USE;

/* 1 when spki_der (SubjectPublicKeyInfo) is this key's public key, 0 otherwise. */
int svid_key_matches_public(const struct svid_key *key, const uint8_t *spki_der, size_t len);

/* Wipe and free. NULL is a no-op. */
void svid_key_free(struct svid_key *key);

#endif
