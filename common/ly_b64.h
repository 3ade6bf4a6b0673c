/*
 * ly_b64: strict base64 (RFC 4648 §4, with padding) and base64url (§5, without padding, as JOSE
 * requires) encoding and decoding. Decoders reject any byte outside the alphabet, whitespace,
 * misplaced or (for base64url) present padding, and non-canonical trailing bits.
 */
#ifndef LY_B64_H
#define LY_B64_H

#include <stddef.h>
#include <stdint.h>

#include "ly_buf.h"
#include "ly_error.h"

/* Encode into out (initialised here, cap `max` bytes). url=1 gives unpadded base64url. */
int ly_b64_encode(const uint8_t *in, size_t len, int url, struct ly_buf *out, size_t max,
                  struct ly_error *err) LY_MUST_USE;

/*
 * Decode strictly into out (initialised here, cap `max` bytes; secret=1 wipes it on free).
 * url=0: standard alphabet, length a multiple of 4, '=' only as final padding.
 * url=1: '-' and '_' alphabet, no padding at all.
 * Returns 0 or LY_ERR_PARSE naming the problem.
 */
int ly_b64_decode(const char *in, size_t len, int url, int secret, struct ly_buf *out,
                  size_t max, struct ly_error *err) LY_MUST_USE;

/*
 * Append `der` as a PEM block ("-----BEGIN <label>-----", base64 in 64-column lines,
 * "-----END <label>-----") to `out`, which the caller has initialised. Encoding only: lanyard
 * never parses PEM itself (wolfSSL does). Same failure rules as ly_buf_append.
 */
int ly_pem_append(struct ly_buf *out, const char *label, const uint8_t *der, size_t len,
                  struct ly_error *err) LY_MUST_USE;

#endif
