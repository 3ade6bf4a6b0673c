/*
 * bundle_codec: reads and writes trust bundles in their wire formats: the SPIFFE bundle (a JWK
 * Set with "use" x509-svid / jwt-svid, SPIFFE Trust Domain and Bundle §4, X509-SVID §6,
 * JWT-SVID §6), the plain JWK Set of the Workload API, and PEM certificate bundles. JSON goes
 * through jansson and certificates and keys through wolfSSL; this module never fetches, stores or
 * decides whether a bundle is trusted.
 */
#ifndef BUNDLE_CODEC_H
#define BUNDLE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "bundle.h"

/* Largest input any parser here accepts (bundles are peer-supplied in federation). */
#define BUNDLE_CODEC_MAX_INPUT (1024 * 1024)
/* Largest output the writers produce. */
#define BUNDLE_CODEC_MAX_OUTPUT (4 * 1024 * 1024)
/* Most JWK entries a "keys" array may hold, counting the ones that are ignored. */
#define BUNDLE_CODEC_MAX_KEYS 1024
/* Smallest RSA modulus accepted for a JWT authority, in bits. */
#define BUNDLE_CODEC_RSA_MIN_BITS 2048
/* Largest RSA modulus accepted, in bits. */
#define BUNDLE_CODEC_RSA_MAX_BITS 8192

/*
 * Parse a SPIFFE bundle (JSON) for trust domain `td` (a bare name, validated by bundle_new).
 * Rules:
 * - top level: an object with a "keys" array (required; empty is valid); optional
 *   "spiffe_sequence" (integer >= 0; values above INT64_MAX are refused because jansson holds
 *   integers as int64) and "spiffe_refresh_hint" (integer seconds > 0); other members ignored;
 * - per entry: "kty" required; an unknown kty, a missing or unknown "use" (including
 *   "wit-svid") make the entry ignored;
 * - use "x509-svid": an entry without x5c or with an empty x5c is ignored; only x5c[0] is
 *   used and must be a standard-base64 DER certificate with cA=TRUE; key parameters, when the
 *   entry has them, must match the certificate's key;
 * - use "jwt-svid": "kid" required; kty EC (P-256/P-384/P-521, x, y) or RSA (n, e, at least
 *   BUNDLE_CODEC_RSA_MIN_BITS); OKP entries are ignored (JWT-SVID allows no EdDSA);
 * Wrong JSON types, duplicate members, bad base64 and the like give LY_ERR_PARSE naming the
 * entry index and field. On success *out is a new bundle the caller frees with bundle_free().
 */
int bundle_codec_parse_json(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                            struct ly_error *err) LY_MUST_USE;

/*
 * Parse a plain JWK Set as carried in the Workload API's JWTBundlesResponse: every entry is a
 * JWT authority (no "use" needed; an entry whose "use" is present and not "jwt-svid" is
 * ignored) and needs a "kid". Same key rules and errors as bundle_codec_parse_json().
 * Caller frees *out with bundle_free().
 */
int bundle_codec_parse_jwks(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                            struct ly_error *err) LY_MUST_USE;

/*
 * Parse a PEM bundle: X.509 authorities only, one per CERTIFICATE block (decoded by wolfSSL),
 * each of which must be a well-formed certificate. Empty input gives an empty bundle; any other
 * input without a CERTIFICATE block, or a block whose contents are not a certificate, gives
 * LY_ERR_PARSE. Certificate contents (cA etc.) are not checked, as for a PEM CA file.
 * Caller frees *out with bundle_free().
 */
int bundle_codec_parse_pem(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                           struct ly_error *err) LY_MUST_USE;

/*
 * Parse either format: SPIFFE bundle JSON when the first non-whitespace byte is '{', PEM
 * otherwise. Caller frees *out with bundle_free().
 */
int bundle_codec_parse_auto(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                            struct ly_error *err) LY_MUST_USE;

/*
 * Write b as a SPIFFE bundle into out (initialised here; caller frees with ly_buf_free): one
 * x509-svid entry per X.509 authority (key parameters + x5c with its DER, no kid), one jwt-svid
 * entry per JWT authority (kid + key parameters), spiffe_sequence and spiffe_refresh_hint when
 * set. Output is deterministic (sorted keys, 2-space indent, final newline) and re-parses to the
 * same bundle. A sequence above INT64_MAX gives LY_ERR_USAGE.
 */
int bundle_codec_write_json(const struct bundle *b, struct ly_buf *out,
                            struct ly_error *err) LY_MUST_USE;

/* Write b's X.509 authorities as PEM CERTIFICATE blocks into out (initialised here). */
int bundle_codec_write_pem(const struct bundle *b, struct ly_buf *out,
                           struct ly_error *err) LY_MUST_USE;

/*
 * The summary printed by `lanyard bundle parse`, as JSON text in out (initialised here):
 * {"trust_domain", "sequence" (number|null), "refresh_hint" (number|null),
 *  "x509_authorities": [{"sha256": lowercase hex of the DER, "subject": one-line subject}],
 *  "jwt_authorities": [{"kid", "kty": "EC"|"RSA"|"OKP"}]}.
 */
int bundle_codec_summary_json(const struct bundle *b, struct ly_buf *out,
                              struct ly_error *err) LY_MUST_USE;

/*
 * Convert a JWK's public key parameters to SubjectPublicKeyInfo DER in out (initialised here):
 * kty EC (crv P-256/P-384/P-521, full-length base64url x and y, point checked on the curve),
 * RSA (n, e; modulus BUNDLE_CODEC_RSA_MIN_BITS..BUNDLE_CODEC_RSA_MAX_BITS) or OKP (crv Ed25519,
 * x). Other members of jwk are not looked at. LY_ERR_PARSE for a malformed key; LY_ERR_USAGE
 * (reason BUNDLE_CODEC_R_UNSUPPORTED) for a kty or crv this module does not know.
 * jwk is borrowed.
 */
int bundle_codec_jwk_to_spki(const json_t *jwk, struct ly_buf *out,
                             struct ly_error *err) LY_MUST_USE;

/* ly_error.reason set by bundle_codec_jwk_to_spki() for an unknown kty or curve. */
#define BUNDLE_CODEC_R_UNSUPPORTED 1

/*
 * Convert SubjectPublicKeyInfo DER (EC P-256/P-384/P-521, RSA, Ed25519) to a new JWK object
 * holding only kty and the key parameters (crv/x/y, n/e, or crv/x). On success *out is a new
 * reference the caller releases with json_decref(). LY_ERR_PARSE if the DER is not such a key.
 */
int bundle_codec_spki_to_jwk(const uint8_t *spki, size_t len, json_t **out,
                             struct ly_error *err) LY_MUST_USE;

#endif
