/*
 * der: a small DER *encoder* (ITU-T X.690) for the TBSCertificate lanyard signs. It only writes:
 * every certificate, CSR and key lanyard reads is parsed by wolfSSL, never by this module.
 * Values go into a caller's ly_buf, whose max caps the output.
 */
#ifndef SVID_DER_H
#define SVID_DER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"

/* Universal and context tags used by certificates. */
#define DER_BOOLEAN 0x01
#define DER_INTEGER 0x02
#define DER_BIT_STRING 0x03
#define DER_OCTET_STRING 0x04
#define DER_OID 0x06
#define DER_UTF8_STRING 0x0c
#define DER_PRINTABLE_STRING 0x13
#define DER_IA5_STRING 0x16
#define DER_UTC_TIME 0x17
#define DER_GENERALIZED_TIME 0x18
#define DER_SEQUENCE 0x30
#define DER_SET 0x31
#define DER_CTX(n) (0x80 | (n))           /* [n] IMPLICIT, primitive */
#define DER_CTX_CONS(n) (0xa0 | (n))      /* [n] constructed */

/*
 * Open a constructed value with tag `tag`: writes the tag and a length placeholder and stores
 * the position in *mark for der_end(). Returns 0 or the ly_buf error.
 */
int der_begin(struct ly_buf *b, uint8_t tag, size_t *mark, struct ly_error *err) LY_MUST_USE;

/* Close the value opened at `mark`, rewriting its length in minimal DER form. */
int der_end(struct ly_buf *b, size_t mark, struct ly_error *err) LY_MUST_USE;

/* Write one complete TLV: tag, minimal length, `len` content bytes (data may be NULL if 0). */
int der_put_tlv(struct ly_buf *b, uint8_t tag, const void *data, size_t len,
                struct ly_error *err) LY_MUST_USE;

/* Append bytes that are already DER (a Name, a SubjectPublicKeyInfo, an AlgorithmIdentifier). */
int der_put_raw(struct ly_buf *b, const void *data, size_t len, struct ly_error *err) LY_MUST_USE;

/*
 * INTEGER from unsigned big-endian magnitude bytes: leading zero bytes are dropped and a 0x00
 * is prepended when the top bit is set, so the value stays positive (RFC 5280 §4.1.2.2).
 */
int der_put_uint(struct ly_buf *b, const uint8_t *be, size_t len, struct ly_error *err)
    LY_MUST_USE;

/* INTEGER from a small non-negative number (versions, path lengths). */
int der_put_small_uint(struct ly_buf *b, unsigned v, struct ly_error *err) LY_MUST_USE;

/* BOOLEAN; DER encodes TRUE as 0xff. */
int der_put_bool(struct ly_buf *b, int v, struct ly_error *err) LY_MUST_USE;

/* BIT STRING with `unused` unused bits in the last content byte (0..7). */
int der_put_bits(struct ly_buf *b, unsigned unused, const uint8_t *data, size_t len,
                 struct ly_error *err) LY_MUST_USE;

/*
 * A certificate Time (RFC 5280 §4.1.2.5): UTCTime for years 1950..2049, GeneralizedTime
 * otherwise, always in seconds with "Z". Years beyond 0..9999 give LY_ERR_USAGE.
 */
int der_put_time(struct ly_buf *b, int64_t t, struct ly_error *err) LY_MUST_USE;

#endif
