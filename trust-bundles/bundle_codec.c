/*
 * bundle_codec: the SPIFFE bundle (JWKS), plain JWKS and PEM codecs. JSON is parsed only by
 * jansson and certificates, PEM and keys only by wolfSSL; this file must not hand-parse DER or
 * PEM, and must not decide trust beyond the structural rules of the bundle formats.
 */
#include <wolfssl/options.h>

#include "bundle_codec.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../common/ly_b64.h"
#include "../common/ly_text.h"

/* Bytes of peer-supplied text quoted in a message (each escaped to at most 4 characters). */
#define ECHO_MAX 40
#define ESC_SZ (ECHO_MAX * 4 + 4)
/* Largest SubjectPublicKeyInfo DER this module builds (RSA 8192 plus headers fits). */
#define SPKI_MAX 2048
#define JSON_FLAGS (JSON_REJECT_DUPLICATES)

enum parse_mode {
    MODE_SPIFFE, /* SPIFFE bundle: entries are selected by "use" */
    MODE_JWKS,   /* Workload API JWT bundle: every entry is a JWT authority */
};

struct curve {
    const char *crv;
    int id;
    word32 size;
};

/* RFC 7518 §6.2.1: the curves JWT-SVID and our CAs use, with their coordinate sizes. */
static const struct curve curves[] = {
    {"P-256", ECC_SECP256R1, 32},
    {"P-384", ECC_SECP384R1, 48},
    {"P-521", ECC_SECP521R1, 66},
};

/* Escape (\xNN for non-printable) at most `cap` bytes of s into out (outsz >= cap * 4 + 4). */
static const char *esc_n(const char *s, size_t len, size_t cap, char *out)
{
    return ly_text_escape(s, len, cap, out, cap * 4 + 4);
}

/* Escape and cap peer-supplied text for a message. */
static const char *esc(const char *s, size_t len, char out[ESC_SZ])
{
    return esc_n(s, len, ECHO_MAX, out);
}

static const char *esc_str(const char *s, char out[ESC_SZ])
{
    return esc(s, strnlen(s, ECHO_MAX + 1), out);
}

static const struct curve *curve_by_name(const char *crv)
{
    size_t i;

    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (strcmp(curves[i].crv, crv) == 0) {
            return &curves[i];
        }
    }
    return NULL;
}

static const struct curve *curve_by_id(int id)
{
    size_t i;

    for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (curves[i].id == id) {
            return &curves[i];
        }
    }
    return NULL;
}

/* Decode the base64url string member `field` of jwk into out (initialised here). */
static int get_b64url(const json_t *jwk, const char *field, struct ly_buf *out,
                      struct ly_error *err)
{
    json_t *v = json_object_get(jwk, field);
    int rc;

    ly_buf_init(out, SPKI_MAX);
    if (!json_is_string(v)) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "\"%s\" is missing or not a string", field);
    }
    rc = ly_b64_decode(json_string_value(v), json_string_length(v), 1, 0, out, SPKI_MAX, err);
    if (rc < 0) {
        return ly_error_wrap(err, "\"%s\"", field);
    }
    return 0;
}

static int ec_jwk_to_spki(const json_t *jwk, struct ly_buf *out, struct ly_error *err)
{
    json_t *crv = json_object_get(jwk, "crv");
    const struct curve *c;
    struct ly_buf x;
    struct ly_buf y;
    ecc_key key;
    int key_init = 0;
    byte der[256];
    int n;
    int rc;
    char e[ESC_SZ];

    ly_buf_init(&x, SPKI_MAX);
    ly_buf_init(&y, SPKI_MAX);
    if (!json_is_string(crv)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "\"crv\" is missing or not a string");
        goto err;
    }
    c = curve_by_name(json_string_value(crv));
    if (c == NULL) {
        rc = ly_error_setx(err, LY_ERR_USAGE, BUNDLE_CODEC_R_UNSUPPORTED,
                           "unsupported EC curve '%s'",
                           esc(json_string_value(crv), json_string_length(crv), e));
        goto err;
    }
    rc = get_b64url(jwk, "x", &x, err);
    if (rc < 0) {
        goto err;
    }
    rc = get_b64url(jwk, "y", &y, err);
    if (rc < 0) {
        goto err;
    }
    /* RFC 7518 §6.2.1.2/3: coordinates are exactly the curve's field size, zero-padded. */
    if (x.len != c->size || y.len != c->size) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                           "%s coordinates must be %u bytes each (x has %zu, y has %zu)", c->crv,
                           (unsigned)c->size, x.len, y.len);
        goto err;
    }
    if (wc_ecc_init(&key) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_ecc_init failed");
        goto err;
    }
    key_init = 1;
    /* An off-curve point must never become an authority (invalid-curve attacks). */
    if (wc_ecc_import_unsigned(&key, x.data, y.data, NULL, c->id) != 0 ||
        wc_ecc_check_key(&key) != 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "x/y is not a valid %s public key", c->crv);
        goto err;
    }
    n = wc_EccPublicKeyToDer(&key, der, sizeof(der), 1);
    if (n <= 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_EccPublicKeyToDer failed (%d)", n);
        goto err;
    }
    rc = ly_buf_append(out, der, (size_t)n, err);
err:
    if (key_init) {
        (void)wc_ecc_free(&key); /* nothing to do if freeing a public key fails */
    }
    ly_buf_free(&x);
    ly_buf_free(&y);
    return rc;
}

static int rsa_jwk_to_spki(const json_t *jwk, unsigned min_bits, struct ly_buf *out,
                           struct ly_error *err)
{
    struct ly_buf n;
    struct ly_buf e;
    RsaKey key;
    int key_init = 0;
    byte *der = NULL;
    size_t off = 0;
    size_t bits;
    unsigned char top;
    int len;
    int rc;

    ly_buf_init(&n, SPKI_MAX);
    ly_buf_init(&e, SPKI_MAX);
    rc = get_b64url(jwk, "n", &n, err);
    if (rc < 0) {
        goto err;
    }
    rc = get_b64url(jwk, "e", &e, err);
    if (rc < 0) {
        goto err;
    }
    while (off < n.len && n.data[off] == 0) {
        off++;
    }
    bits = 0;
    if (off < n.len) {
        bits = (n.len - off - 1) * 8;
        for (top = n.data[off]; top != 0; top >>= 1) {
            bits++;
        }
    }
    if (bits < min_bits || bits > BUNDLE_CODEC_RSA_MAX_BITS) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "RSA modulus is %zu bits (allowed %u..%d)", bits,
                           min_bits, BUNDLE_CODEC_RSA_MAX_BITS);
        goto err;
    }
    if (e.len == 0 || e.len > 8 || (e.data[e.len - 1] & 1) == 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "RSA exponent \"e\" is not a valid exponent");
        goto err;
    }
    if (wc_InitRsaKey(&key, NULL) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_InitRsaKey failed");
        goto err;
    }
    key_init = 1;
    if (wc_RsaPublicKeyDecodeRaw(n.data + off, (word32)(n.len - off), e.data, (word32)e.len,
                                 &key) != 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "n/e is not a valid RSA public key");
        goto err;
    }
    der = malloc(SPKI_MAX);
    if (der == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    len = wc_RsaKeyToPublicDer(&key, der, SPKI_MAX);
    if (len <= 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_RsaKeyToPublicDer failed (%d)", len);
        goto err;
    }
    rc = ly_buf_append(out, der, (size_t)len, err);
err:
    if (key_init) {
        (void)wc_FreeRsaKey(&key); /* nothing to do if freeing a public key fails */
    }
    free(der);
    ly_buf_free(&n);
    ly_buf_free(&e);
    return rc;
}

static int okp_jwk_to_spki(const json_t *jwk, struct ly_buf *out, struct ly_error *err)
{
    json_t *crv = json_object_get(jwk, "crv");
    struct ly_buf x;
    ed25519_key key;
    int key_init = 0;
    byte der[128];
    int n;
    int rc;
    char e[ESC_SZ];

    ly_buf_init(&x, SPKI_MAX);
    if (!json_is_string(crv)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "\"crv\" is missing or not a string");
        goto err;
    }
    /* RFC 8037 §2: OKP with crv Ed25519; X25519 and Ed448 are not signature keys we use. */
    if (strcmp(json_string_value(crv), "Ed25519") != 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, BUNDLE_CODEC_R_UNSUPPORTED,
                           "unsupported OKP curve '%s'",
                           esc(json_string_value(crv), json_string_length(crv), e));
        goto err;
    }
    rc = get_b64url(jwk, "x", &x, err);
    if (rc < 0) {
        goto err;
    }
    if (x.len != ED25519_PUB_KEY_SIZE) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "Ed25519 \"x\" must be %d bytes, not %zu",
                           ED25519_PUB_KEY_SIZE, x.len);
        goto err;
    }
    if (wc_ed25519_init(&key) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_ed25519_init failed");
        goto err;
    }
    key_init = 1;
    if (wc_ed25519_import_public(x.data, (word32)x.len, &key) != 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "\"x\" is not a valid Ed25519 public key");
        goto err;
    }
    n = wc_Ed25519PublicKeyToDer(&key, der, sizeof(der), 1);
    if (n <= 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_Ed25519PublicKeyToDer failed (%d)", n);
        goto err;
    }
    rc = ly_buf_append(out, der, (size_t)n, err);
err:
    if (key_init) {
        wc_ed25519_free(&key);
    }
    ly_buf_free(&x);
    return rc;
}

static int jwk_to_spki(const json_t *jwk, unsigned rsa_min_bits, struct ly_buf *out,
                       struct ly_error *err)
{
    json_t *kty = json_object_get(jwk, "kty");
    const char *k;
    char e[ESC_SZ];
    int rc;

    ly_buf_init(out, SPKI_MAX);
    if (!json_is_object(jwk)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "JWK is not a JSON object");
    }
    if (!json_is_string(kty)) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "\"kty\" is missing or not a string");
    }
    k = json_string_value(kty);
    if (strcmp(k, "EC") == 0) {
        rc = ec_jwk_to_spki(jwk, out, err);
    } else if (strcmp(k, "RSA") == 0) {
        rc = rsa_jwk_to_spki(jwk, rsa_min_bits, out, err);
    } else if (strcmp(k, "OKP") == 0) {
        rc = okp_jwk_to_spki(jwk, out, err);
    } else {
        rc = ly_error_setx(err, LY_ERR_USAGE, BUNDLE_CODEC_R_UNSUPPORTED, "unsupported kty '%s'",
                           esc(k, json_string_length(kty), e));
    }
    if (rc < 0) {
        ly_buf_free(out);
    }
    return rc;
}

int bundle_codec_jwk_to_spki(const json_t *jwk, struct ly_buf *out, struct ly_error *err)
{
    struct ly_error local_err; /* error contexts need a carrier even when the caller passes none */
    if (err == NULL) {
        err = &local_err;
    }
    ly_error_clear(err);
    if (jwk == NULL || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bundle_codec_jwk_to_spki: NULL argument");
    }
    return jwk_to_spki(jwk, BUNDLE_CODEC_RSA_MIN_BITS, out, err);
}

/* Set obj[key] to a new string; -1 on allocation failure. */
static int set_str(json_t *obj, const char *key, const char *val)
{
    return json_object_set_new(obj, key, json_string(val));
}

/* Set obj[key] to the base64url (url=1) or base64 (url=0) text of data. */
static int set_b64(json_t *obj, const char *key, const uint8_t *data, size_t len, int url,
                   struct ly_error *err)
{
    struct ly_buf b;
    int rc;

    rc = ly_b64_encode(data, len, url, &b, BUNDLE_CODEC_MAX_OUTPUT, err);
    if (rc < 0) {
        return rc;
    }
    rc = json_object_set_new(obj, key, json_stringn((const char *)b.data, b.len));
    ly_buf_free(&b);
    if (rc != 0) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
    }
    return 0;
}

int bundle_codec_spki_to_jwk(const uint8_t *spki, size_t len, json_t **out, struct ly_error *err)
{
    struct ly_error local_err; /* error contexts need a carrier even when the caller passes none */
    json_t *jwk = NULL;
    ecc_key ecc;
    RsaKey rsa;
    ed25519_key ed;
    int ecc_init = 0;
    int rsa_init = 0;
    int ed_init = 0;
    word32 idx;
    int rc;

    if (err == NULL) {
        err = &local_err;
    }
    ly_error_clear(err);
    if (out != NULL) {
        *out = NULL;
    }
    if (spki == NULL || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bundle_codec_spki_to_jwk: NULL argument");
    }
    if (len == 0 || len > SPKI_MAX) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "public key DER of %zu bytes is not allowed",
                             len);
    }
    jwk = json_object();
    if (jwk == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
    }
    ecc_init = wc_ecc_init(&ecc) == 0;
    rsa_init = wc_InitRsaKey(&rsa, NULL) == 0;
    ed_init = wc_ed25519_init(&ed) == 0;
    if (!ecc_init || !rsa_init || !ed_init) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wolfSSL key init failed");
        goto err;
    }

    /* Each decoder must consume the whole DER: trailing bytes mean it is not this key type. */
    idx = 0;
    if (wc_EccPublicKeyDecode(spki, &idx, &ecc, (word32)len) == 0 && idx == len) {
        byte qx[66];
        byte qy[66];
        word32 lx = sizeof(qx);
        word32 ly = sizeof(qy);
        const struct curve *c = curve_by_id(wc_ecc_get_curve_id(ecc.idx));
        if (c == NULL) {
            rc = ly_error_setx(err, LY_ERR_PARSE, 0, "EC public key on an unsupported curve");
            goto err;
        }
        /*
         * The decoder takes coordinates of any size; export would overrun on one larger than
         * the field, and an off-curve point must never become a key: validate first.
         */
        if (wc_ecc_check_key(&ecc) != 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, 0, "EC public key is not a valid %s point",
                               c->crv);
            goto err;
        }
        if (wc_ecc_export_public_raw(&ecc, qx, &lx, qy, &ly) != 0 || lx != c->size ||
            ly != c->size) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_ecc_export_public_raw failed");
            goto err;
        }
        if (set_str(jwk, "kty", "EC") != 0 || set_str(jwk, "crv", c->crv) != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            goto err;
        }
        rc = set_b64(jwk, "x", qx, lx, 1, err);
        if (rc == 0) {
            rc = set_b64(jwk, "y", qy, ly, 1, err);
        }
        goto done;
    }
    idx = 0;
    if (wc_Ed25519PublicKeyDecode(spki, &idx, &ed, (word32)len) == 0) {
        byte x[ED25519_PUB_KEY_SIZE];
        byte again[128];
        word32 lx = sizeof(x);
        int n;
        if (wc_ed25519_export_public(&ed, x, &lx) != 0 || lx != sizeof(x)) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_ed25519_export_public failed");
            goto err;
        }
        /*
         * wolfSSL's Ed25519 decoder does not report how much it consumed, so require the input
         * to be exactly the canonical encoding of the key it found (no trailing bytes).
         */
        n = wc_Ed25519PublicKeyToDer(&ed, again, sizeof(again), 1);
        if (n <= 0 || (size_t)n != len || memcmp(again, spki, len) != 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                               "Ed25519 SubjectPublicKeyInfo is not canonical");
            goto err;
        }
        if (set_str(jwk, "kty", "OKP") != 0 || set_str(jwk, "crv", "Ed25519") != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            goto err;
        }
        rc = set_b64(jwk, "x", x, lx, 1, err);
        goto done;
    }
    idx = 0;
    if (wc_RsaPublicKeyDecode(spki, &idx, &rsa, (word32)len) == 0 && idx == len) {
        byte n[BUNDLE_CODEC_RSA_MAX_BITS / 8 + 1];
        byte e[16];
        word32 ln = sizeof(n);
        word32 le = sizeof(e);
        if (wc_RsaFlattenPublicKey(&rsa, e, &le, n, &ln) != 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, 0, "RSA public key is too large");
            goto err;
        }
        if (set_str(jwk, "kty", "RSA") != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            goto err;
        }
        rc = set_b64(jwk, "n", n, ln, 1, err);
        if (rc == 0) {
            rc = set_b64(jwk, "e", e, le, 1, err);
        }
        goto done;
    }
    rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                       "not an EC (P-256/P-384/P-521), RSA or Ed25519 SubjectPublicKeyInfo");
done:
    if (rc == 0) {
        *out = jwk;
        jwk = NULL;
    }
err:
    if (ecc_init) {
        (void)wc_ecc_free(&ecc); /* nothing to do if freeing a public key fails */
    }
    if (rsa_init) {
        (void)wc_FreeRsaKey(&rsa); /* idem */
    }
    if (ed_init) {
        wc_ed25519_free(&ed);
    }
    json_decref(jwk);
    return rc;
}

/*
 * Parse DER as exactly one X.509 certificate (no trailing bytes) with wolfSSL's certificate
 * decoder. Signatures and dates are not checked here: a bundle only carries authorities.
 * Caller releases *out with cert_close().
 */
static int cert_open(const uint8_t *der, size_t len, DecodedCert **out, struct ly_error *err)
{
    DecodedCert *dc;
    int ret;

    *out = NULL;
    if (len == 0 || len > BUNDLE_CODEC_MAX_INPUT) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "certificate of %zu bytes is not allowed", len);
    }
    /* DecodedCert is several kilobytes: keep it off the stack. */
    dc = malloc(sizeof(*dc));
    if (dc == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    ret = wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL);
    if (ret != 0) {
        wc_FreeDecodedCert(dc);
        free(dc);
        return ly_error_setx(err, LY_ERR_PARSE, 0, "not a DER X.509 certificate (wolfSSL error %d)",
                             ret);
    }
    if (dc->srcIdx != len) {
        wc_FreeDecodedCert(dc);
        free(dc);
        return ly_error_setx(err, LY_ERR_PARSE, 0, "trailing bytes after the certificate");
    }
    *out = dc;
    return 0;
}

static void cert_close(DecodedCert *dc)
{
    if (dc == NULL) {
        return;
    }
    wc_FreeDecodedCert(dc);
    free(dc);
}

/* The certificate's SubjectPublicKeyInfo DER into out (initialised here). */
static int cert_spki(DecodedCert *dc, struct ly_buf *out, struct ly_error *err)
{
    byte buf[SPKI_MAX];
    word32 sz = sizeof(buf);
    ed25519_key ed;
    int n;
    int rc;

    ly_buf_init(out, SPKI_MAX);
    if (wc_GetPubKeyDerFromCert(dc, buf, &sz) != 0 || sz == 0 || sz > sizeof(buf)) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "cannot read the certificate's public key");
    }
    if (dc->keyOID != ED25519k) {
        return ly_buf_append(out, buf, sz, err);
    }
    /* For Ed25519 wolfSSL hands out the raw 32-byte key: wrap it as SubjectPublicKeyInfo. */
    if (wc_ed25519_init(&ed) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_ed25519_init failed");
    }
    if (wc_ed25519_import_public(buf, sz, &ed) != 0) {
        wc_ed25519_free(&ed);
        return ly_error_setx(err, LY_ERR_PARSE, 0, "certificate has an invalid Ed25519 key");
    }
    n = wc_Ed25519PublicKeyToDer(&ed, buf, sizeof(buf), 1);
    wc_ed25519_free(&ed);
    if (n <= 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_Ed25519PublicKeyToDer failed (%d)", n);
    }
    rc = ly_buf_append(out, buf, (size_t)n, err);
    return rc;
}

/*
 * The certificate's key as a JWK (new reference) and as canonical SPKI DER (rebuilt from that
 * JWK, so that both sides of a key comparison went through the same encoder).
 */
static int cert_key(DecodedCert *x, json_t **jwk, struct ly_buf *canon, struct ly_error *err)
{
    struct ly_buf spki;
    int rc;

    *jwk = NULL;
    ly_buf_init(canon, SPKI_MAX);
    rc = cert_spki(x, &spki, err);
    if (rc < 0) {
        goto err;
    }
    rc = bundle_codec_spki_to_jwk(spki.data, spki.len, jwk, err);
    if (rc < 0) {
        goto err;
    }
    rc = jwk_to_spki(*jwk, 0, canon, err);
    if (rc < 0) {
        json_decref(*jwk);
        *jwk = NULL;
    }
err:
    ly_buf_free(&spki);
    return rc;
}

static int known_kty(const char *k)
{
    return strcmp(k, "EC") == 0 || strcmp(k, "RSA") == 0 || strcmp(k, "OKP") == 0;
}

/* X509-SVID §6.2: one x509-svid entry. Returns 0 when added or deliberately ignored. */
static int parse_x509_entry(struct bundle *b, size_t i, const json_t *e, const char *kty,
                            struct ly_error *err)
{
    json_t *x5c = json_object_get(e, "x5c");
    json_t *first;
    struct ly_buf der;
    struct ly_buf jspki;
    struct ly_buf cspki;
    json_t *cjwk = NULL;
    DecodedCert *x = NULL;
    int rc = 0;

    ly_buf_init(&der, BUNDLE_CODEC_MAX_INPUT);
    ly_buf_init(&jspki, SPKI_MAX);
    ly_buf_init(&cspki, SPKI_MAX);
    /*
     * SPEC over go-spiffe (checklist §9.3): an entry without x5c, or with an empty x5c, is
     * ignored; go-spiffe rejects the whole bundle.
     */
    if (x5c == NULL) {
        goto err;
    }
    if (!json_is_array(x5c)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "bundle entry %zu: \"x5c\" is not an array", i);
        goto err;
    }
    if (json_array_size(x5c) == 0) {
        goto err;
    }
    /*
     * SPEC over go-spiffe (checklist §9.2): only the first x5c value is used and the rest are
     * ignored; go-spiffe rejects an x5c with more than one certificate.
     */
    first = json_array_get(x5c, 0);
    if (!json_is_string(first)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "bundle entry %zu: x5c[0] is not a string", i);
        goto err;
    }
    /* RFC 7517 §4.7: x5c values are standard base64 (not base64url) of the DER. */
    rc = ly_b64_decode(json_string_value(first), json_string_length(first), 0, 0, &der,
                       BUNDLE_CODEC_MAX_INPUT, err);
    if (rc < 0) {
        rc = ly_error_wrap(err, "bundle entry %zu: x5c[0]", i);
        goto err;
    }
    rc = cert_open(der.data, der.len, &x, err);
    if (rc < 0) {
        rc = ly_error_wrap(err, "bundle entry %zu: x5c[0]", i);
        goto err;
    }
    /* X509-SVID §4.1 / checklist X509-7, X509-17: an X.509 authority is a CA certificate. */
    if (!x->isCA) {
        rc =
            ly_error_setx(err, LY_ERR_PARSE, 0,
                          "bundle entry %zu: x5c[0] is not a CA certificate (cA=TRUE required)", i);
        goto err;
    }
    rc = cert_key(x, &cjwk, &cspki, err);
    if (rc < 0) {
        rc = ly_error_wrap(err, "bundle entry %zu: x5c[0]", i);
        goto err;
    }
    /* The JWK's kty, and its key parameters when present, must describe the x5c key. */
    if (strcmp(kty, json_string_value(json_object_get(cjwk, "kty"))) != 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                           "bundle entry %zu: \"kty\" does not match the x5c certificate's key", i);
        goto err;
    }
    if (json_object_get(e, "crv") != NULL || json_object_get(e, "x") != NULL ||
        json_object_get(e, "y") != NULL || json_object_get(e, "n") != NULL ||
        json_object_get(e, "e") != NULL) {
        rc = jwk_to_spki(e, 0, &jspki, err);
        if (rc < 0) {
            err->code = LY_ERR_PARSE; /* an unknown curve here is malformed input */
            rc = ly_error_wrap(err, "bundle entry %zu", i);
            goto err;
        }
        if (jspki.len != cspki.len || memcmp(jspki.data, cspki.data, jspki.len) != 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                               "bundle entry %zu: key parameters do not match the x5c "
                               "certificate's key",
                               i);
            goto err;
        }
    }
    rc = bundle_add_x509_authority(b, der.data, der.len, err);
    if (rc < 0) {
        rc = ly_error_wrap(err, "bundle entry %zu", i);
    }
err:
    cert_close(x);
    json_decref(cjwk);
    ly_buf_free(&der);
    ly_buf_free(&jspki);
    ly_buf_free(&cspki);
    return rc;
}

/* JWT-SVID §6: one jwt-svid entry. Returns 0 when added or deliberately ignored. */
static int parse_jwt_entry(struct bundle *b, size_t i, const json_t *e, const char *kty,
                           struct ly_error *err)
{
    json_t *kid = json_object_get(e, "kid");
    struct ly_buf spki;
    char q[ESC_SZ];
    int rc;

    /*
     * SPEC over go-spiffe (checklist §9.4, BUNDLE-8): an unknown kty makes only this entry
     * ignored. OKP is known, but JWT-SVID §3 allows no EdDSA, so such a key could never verify
     * a token: ignored as well.
     */
    if (strcmp(kty, "EC") != 0 && strcmp(kty, "RSA") != 0) {
        return 0;
    }
    /*
     * JWT-SVID §6.1 makes kid mandatory for publishers; like go-spiffe (and the vectors
     * spiffebundle_missing_kid.json / jwks_missing_kid.json) the whole document is rejected.
     */
    if (kid == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "bundle entry %zu: \"kid\" is missing", i);
    }
    if (!json_is_string(kid) || json_string_length(kid) == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "bundle entry %zu: \"kid\" is not a non-empty string", i);
    }
    rc = jwk_to_spki(e, BUNDLE_CODEC_RSA_MIN_BITS, &spki, err);
    if (rc < 0) {
        /* Inside a bundle an unknown curve is malformed input, not a caller mistake. */
        err->code = LY_ERR_PARSE;
        return ly_error_wrap(err, "bundle entry %zu (kid '%s')", i,
                             esc(json_string_value(kid), json_string_length(kid), q));
    }
    rc = bundle_add_jwt_authority(b, json_string_value(kid), spki.data, spki.len, err);
    ly_buf_free(&spki);
    if (rc < 0) {
        return ly_error_wrap(err, "bundle entry %zu", i);
    }
    return 0;
}

static int parse_entry(struct bundle *b, size_t i, const json_t *e, enum parse_mode mode,
                       struct ly_error *err)
{
    json_t *use = json_object_get(e, "use");
    json_t *kty;
    const char *u = NULL;
    int is_x509 = 0;

    if (!json_is_object(e)) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "bundle entry %zu is not a JSON object", i);
    }
    if (use != NULL) {
        if (!json_is_string(use)) {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "bundle entry %zu: \"use\" is not a string",
                                 i);
        }
        u = json_string_value(use);
    }
    if (mode == MODE_SPIFFE) {
        /* BUNDLE-9: a missing or unknown use (compared case-sensitively) is ignored. */
        if (u == NULL) {
            return 0;
        }
        if (strcmp(u, "x509-svid") == 0) {
            is_x509 = 1;
        } else if (strcmp(u, "jwt-svid") != 0) {
            return 0; /* includes "wit-svid": lanyard has no WIT-SVID support */
        }
    } else if (u != NULL && strcmp(u, "jwt-svid") != 0) {
        return 0;
    }
    /* RFC 7517 §4.1: kty is required in every JWK. */
    kty = json_object_get(e, "kty");
    if (kty == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "bundle entry %zu: \"kty\" is missing", i);
    }
    if (!json_is_string(kty)) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "bundle entry %zu: \"kty\" is not a string", i);
    }
    /* SPEC over go-spiffe (checklist §9.4, BUNDLE-8): an unknown kty ignores the entry only. */
    if (!known_kty(json_string_value(kty))) {
        return 0;
    }
    if (is_x509) {
        return parse_x509_entry(b, i, e, json_string_value(kty), err);
    }
    return parse_jwt_entry(b, i, e, json_string_value(kty), err);
}

/* Top-level integer member: -1 absent-ok, 0 ok with *v, <0 error already set. */
static int get_int_member(const json_t *root, const char *name, json_int_t *v, int *present,
                          struct ly_error *err)
{
    json_t *m = json_object_get(root, name);

    *present = 0;
    if (m == NULL) {
        return 0;
    }
    /* BUNDLE-4/5: integers; a string or a float (even 1.0) is a malformed bundle. */
    if (!json_is_integer(m)) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "\"%s\" is not an integer", name);
    }
    *v = json_integer_value(m);
    *present = 1;
    return 0;
}

static int parse_json_doc(const char *td, const uint8_t *data, size_t len, enum parse_mode mode,
                          struct bundle **out, struct ly_error *err)
{
    struct ly_error local_err; /* error contexts need a carrier even when the caller passes none */
    struct bundle *b = NULL;
    json_t *root = NULL;
    json_t *keys;
    json_t *e;
    json_error_t jerr;
    json_int_t v = 0;
    int present;
    size_t i;
    char q[ESC_SZ];
    int rc;

    if (err == NULL) {
        err = &local_err;
    }
    ly_error_clear(err);
    if (out == NULL || (data == NULL && len > 0)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bundle parse: NULL argument");
    }
    *out = NULL;
    if (len > BUNDLE_CODEC_MAX_INPUT) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "bundle is %zu bytes, larger than the %d limit",
                             len, BUNDLE_CODEC_MAX_INPUT);
    }
    rc = bundle_new(td, &b, err);
    if (rc < 0) {
        goto err;
    }
    /* BUNDLE-12: duplicate members are rejected; NUL inside strings is refused by default. */
    root = json_loadb(len > 0 ? (const char *)data : "", len, JSON_FLAGS, &jerr);
    if (root == NULL) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "bundle is not valid JSON: %s (line %d)",
                           esc_str(jerr.text, q), jerr.line);
        goto err;
    }
    if (!json_is_object(root)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "bundle is not a JSON object");
        goto err;
    }
    /* Trust Domain and Bundle §4.1.3 / BUNDLE-6: "keys" is required; [] is valid. */
    keys = json_object_get(root, "keys");
    if (keys == NULL) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "bundle has no \"keys\" member");
        goto err;
    }
    if (!json_is_array(keys)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "bundle \"keys\" is not an array");
        goto err;
    }
    if (json_array_size(keys) > BUNDLE_CODEC_MAX_KEYS) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "bundle has %zu keys, more than %d",
                           json_array_size(keys), BUNDLE_CODEC_MAX_KEYS);
        goto err;
    }
    if (mode == MODE_SPIFFE) {
        rc = get_int_member(root, "spiffe_sequence", &v, &present, err);
        if (rc < 0) {
            goto err;
        }
        if (present) {
            if (v < 0) {
                rc = ly_error_setx(err, LY_ERR_PARSE, 0, "\"spiffe_sequence\" is negative");
                goto err;
            }
            bundle_set_sequence(b, (uint64_t)v);
        }
        rc = get_int_member(root, "spiffe_refresh_hint", &v, &present, err);
        if (rc < 0) {
            goto err;
        }
        if (present) {
            if (v <= 0) {
                rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                                   "\"spiffe_refresh_hint\" must be a positive number of seconds");
                goto err;
            }
            bundle_set_refresh_hint(b, (int64_t)v);
        }
    }
    json_array_foreach (keys, i, e) {
        rc = parse_entry(b, i, e, mode, err);
        if (rc < 0) {
            goto err;
        }
    }
    *out = b;
    b = NULL;
    rc = 0;
err:
    json_decref(root);
    bundle_free(b);
    return rc;
}

int bundle_codec_parse_json(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                            struct ly_error *err)
{
    return parse_json_doc(td, data, len, MODE_SPIFFE, out, err);
}

int bundle_codec_parse_jwks(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                            struct ly_error *err)
{
    return parse_json_doc(td, data, len, MODE_JWKS, out, err);
}

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int bundle_codec_parse_pem(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                           struct ly_error *err)
{
    struct ly_error local_err; /* error contexts need a carrier even when the caller passes none */
    struct bundle *b = NULL;
    DerBuffer *der = NULL;
    DecodedCert *x = NULL;
    size_t off = 0;
    size_t count = 0;
    int rc;

    if (err == NULL) {
        err = &local_err;
    }
    ly_error_clear(err);
    if (out == NULL || (data == NULL && len > 0)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bundle parse: NULL argument");
    }
    *out = NULL;
    if (len > BUNDLE_CODEC_MAX_INPUT) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "bundle is %zu bytes, larger than the %d limit",
                             len, BUNDLE_CODEC_MAX_INPUT);
    }
    rc = bundle_new(td, &b, err);
    if (rc < 0) {
        goto err;
    }
    /* As go-spiffe x509bundle.Parse: zero bytes is an empty bundle, not an error. */
    while (len > 0) {
        EncryptedInfo info;
        int fmt = 0;
        int ret;

        while (off < len && is_space(data[off])) {
            off++;
        }
        if (off == len) {
            break;
        }
        memset(&info, 0, sizeof(info));
        ret = wc_PemToDer(data + off, (long)(len - off), CERT_TYPE, &der, NULL, &info, &fmt);
        if (ret != 0) {
            wc_FreeDer(&der);
            if (count > 0 && ret == ASN_NO_PEM_HEADER) {
                break; /* text after the last block (comments) is not a certificate */
            }
            if (count == 0 && ret == ASN_NO_PEM_HEADER) {
                rc = ly_error_setx(err, LY_ERR_PARSE, 0, "no PEM CERTIFICATE block found");
            } else {
                rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                                   "PEM certificate %zu is malformed (wolfSSL error %d)", count,
                                   ret);
            }
            goto err;
        }
        if (info.consumed <= 0 || (size_t)info.consumed > len - off) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_PemToDer consumed %ld bytes",
                               info.consumed);
            goto err;
        }
        off += (size_t)info.consumed;
        rc = cert_open(der->buffer, der->length, &x, err);
        if (rc < 0) {
            rc = ly_error_wrap(err, "PEM certificate %zu", count);
            goto err;
        }
        cert_close(x);
        x = NULL;
        rc = bundle_add_x509_authority(b, der->buffer, der->length, err);
        if (rc < 0) {
            rc = ly_error_wrap(err, "PEM certificate %zu", count);
            goto err;
        }
        wc_FreeDer(&der);
        count++;
    }
    if (len > 0 && count == 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "no PEM CERTIFICATE block found");
        goto err;
    }
    *out = b;
    b = NULL;
    rc = 0;
err:
    wc_FreeDer(&der);
    cert_close(x);
    bundle_free(b);
    return rc;
}

int bundle_codec_parse_auto(const char *td, const uint8_t *data, size_t len, struct bundle **out,
                            struct ly_error *err)
{
    size_t i = 0;

    while (data != NULL && i < len && is_space(data[i])) {
        i++;
    }
    if (data != NULL && i < len && data[i] == '{') {
        return bundle_codec_parse_json(td, data, len, out, err);
    }
    return bundle_codec_parse_pem(td, data, len, out, err);
}

/* Serialise root deterministically into out (initialised here) with a final newline. */
static int dump_json(json_t *root, struct ly_buf *out, struct ly_error *err)
{
    char *text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
    int rc;

    if (text == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "cannot serialise JSON");
    }
    rc = ly_buf_append_str(out, text, err);
    free(text);
    if (rc == 0) {
        rc = ly_buf_append(out, "\n", 1, err);
    }
    return rc;
}

static int append_new(json_t *arr, json_t *v, struct ly_error *err)
{
    if (v == NULL || json_array_append_new(arr, v) != 0) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
    }
    return 0;
}

static int x509_entry(const uint8_t *der, size_t len, size_t i, json_t **out, struct ly_error *err)
{
    DecodedCert *x = NULL;
    json_t *jwk = NULL;
    json_t *x5c = NULL;
    struct ly_buf canon;
    struct ly_buf b64;
    int rc;

    *out = NULL;
    ly_buf_init(&canon, SPKI_MAX);
    ly_buf_init(&b64, BUNDLE_CODEC_MAX_OUTPUT);
    rc = cert_open(der, len, &x, err);
    if (rc < 0) {
        goto err;
    }
    rc = cert_key(x, &jwk, &canon, err);
    if (rc < 0) {
        goto err;
    }
    /* X509-SVID §6.1: use, key parameters and x5c with one standard-base64 DER; no kid. */
    rc = ly_b64_encode(der, len, 0, &b64, BUNDLE_CODEC_MAX_OUTPUT, err);
    if (rc < 0) {
        goto err;
    }
    x5c = json_array();
    if (x5c == NULL || set_str(jwk, "use", "x509-svid") != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        goto err;
    }
    rc = append_new(x5c, json_stringn((const char *)b64.data, b64.len), err);
    if (rc < 0) {
        goto err;
    }
    if (json_object_set_new(jwk, "x5c", x5c) != 0) {
        x5c = NULL;
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        goto err;
    }
    x5c = NULL;
    *out = jwk;
    jwk = NULL;
err:
    if (rc < 0) {
        (void)ly_error_wrap(err, "X.509 authority %zu", i);
    }
    cert_close(x);
    json_decref(jwk);
    json_decref(x5c);
    ly_buf_free(&canon);
    ly_buf_free(&b64);
    return rc;
}

int bundle_codec_write_json(const struct bundle *b, struct ly_buf *out, struct ly_error *err)
{
    struct ly_error local_err; /* error contexts need a carrier even when the caller passes none */
    json_t *root = NULL;
    json_t *keys = NULL;
    json_t *jwk = NULL;
    uint64_t seq;
    int64_t hint;
    size_t i;
    int rc;

    if (err == NULL) {
        err = &local_err;
    }
    ly_error_clear(err);
    if (b == NULL || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bundle_codec_write_json: NULL argument");
    }
    ly_buf_init(out, BUNDLE_CODEC_MAX_OUTPUT);
    root = json_object();
    keys = json_array();
    if (root == NULL || keys == NULL || json_object_set(root, "keys", keys) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        goto err;
    }
    for (i = 0; i < bundle_x509_count(b); i++) {
        size_t len = 0;
        const uint8_t *der = bundle_x509_authority(b, i, &len);
        rc = x509_entry(der, len, i, &jwk, err);
        if (rc < 0) {
            goto err;
        }
        rc = append_new(keys, jwk, err);
        jwk = NULL;
        if (rc < 0) {
            goto err;
        }
    }
    for (i = 0; i < bundle_jwt_count(b); i++) {
        const uint8_t *spki = NULL;
        size_t len = 0;
        const char *kid = bundle_jwt_authority(b, i, &spki, &len);
        rc = bundle_codec_spki_to_jwk(spki, len, &jwk, err);
        if (rc < 0) {
            rc = ly_error_wrap(err, "JWT authority %zu", i);
            goto err;
        }
        /* JWT-SVID §6.1: use and kid are mandatory for a published JWT authority. */
        if (set_str(jwk, "use", "jwt-svid") != 0 || set_str(jwk, "kid", kid) != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            goto err;
        }
        rc = append_new(keys, jwk, err);
        jwk = NULL;
        if (rc < 0) {
            goto err;
        }
    }
    if (bundle_get_sequence(b, &seq) == 0) {
        if (seq > (uint64_t)INT64_MAX) {
            rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                               "sequence %llu does not fit a JSON integer here",
                               (unsigned long long)seq);
            goto err;
        }
        if (json_object_set_new(root, "spiffe_sequence", json_integer((json_int_t)seq)) != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            goto err;
        }
    }
    if (bundle_get_refresh_hint(b, &hint) == 0) {
        if (json_object_set_new(root, "spiffe_refresh_hint", json_integer((json_int_t)hint)) != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            goto err;
        }
    }
    rc = dump_json(root, out, err);
err:
    if (rc < 0) {
        ly_buf_free(out);
    }
    json_decref(jwk);
    json_decref(keys);
    json_decref(root);
    return rc;
}

int bundle_codec_write_pem(const struct bundle *b, struct ly_buf *out, struct ly_error *err)
{
    struct ly_error local_err; /* error contexts need a carrier even when the caller passes none */
    byte *pem = NULL;
    size_t i;
    int rc = 0;

    if (err == NULL) {
        err = &local_err;
    }
    ly_error_clear(err);
    if (b == NULL || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bundle_codec_write_pem: NULL argument");
    }
    ly_buf_init(out, BUNDLE_CODEC_MAX_OUTPUT);
    for (i = 0; i < bundle_x509_count(b); i++) {
        size_t len = 0;
        const uint8_t *der = bundle_x509_authority(b, i, &len);
        /* Base64 grows 4/3, plus a newline per 64 characters and the two armour lines. */
        size_t cap = len * 2 + 128;
        int n;

        if (len > BUNDLE_CODEC_MAX_INPUT) {
            rc = ly_error_setx(err, LY_ERR_USAGE, 0, "X.509 authority %zu is too large", i);
            goto err;
        }
        pem = malloc(cap);
        if (pem == NULL) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
            goto err;
        }
        n = wc_DerToPem(der, (word32)len, pem, (word32)cap, CERT_TYPE);
        if (n <= 0) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_DerToPem failed (%d)", n);
            goto err;
        }
        rc = ly_buf_append(out, pem, (size_t)n, err);
        if (rc < 0) {
            goto err;
        }
        free(pem);
        pem = NULL;
    }
    if (out->data == NULL) {
        /* An empty bundle is an empty (but valid, NUL-terminated) text. */
        rc = ly_buf_append(out, "", 0, err);
    }
err:
    free(pem);
    if (rc < 0) {
        ly_buf_free(out);
    }
    return rc;
}

static int x509_summary(const uint8_t *der, size_t len, json_t **out, struct ly_error *err)
{
    static const char hex[] = "0123456789abcdef";
    DecodedCert *x = NULL;
    byte hash[WC_SHA256_DIGEST_SIZE];
    char hexbuf[2 * WC_SHA256_DIGEST_SIZE + 1];
    char subject[WC_ASN_NAME_MAX + 1];
    char subject_esc[sizeof(subject) * 4 + 4];
    json_t *o = NULL;
    size_t i;
    size_t n;
    int rc;

    *out = NULL;
    rc = cert_open(der, len, &x, err);
    if (rc < 0) {
        goto err;
    }
    if (wc_Sha256Hash(der, (word32)len, hash) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wc_Sha256Hash failed");
        goto err;
    }
    for (i = 0; i < sizeof(hash); i++) {
        hexbuf[2 * i] = hex[hash[i] >> 4];
        hexbuf[2 * i + 1] = hex[hash[i] & 0xf];
    }
    hexbuf[2 * sizeof(hash)] = '\0';
    /* wolfSSL's one-line form of the subject ("/C=US/O=SPIFFE"). */
    n = strnlen(x->subject, WC_ASN_NAME_MAX);
    memcpy(subject, x->subject, n);
    subject[n] = '\0';
    o = json_object();
    /* Subjects are peer-supplied: keep printable ASCII, escape everything else. */
    (void)esc_n(subject, strnlen(subject, sizeof(subject)), sizeof(subject), subject_esc);
    if (o == NULL || set_str(o, "sha256", hexbuf) != 0 || set_str(o, "subject", subject_esc) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        goto err;
    }
    *out = o;
    o = NULL;
err:
    json_decref(o);
    cert_close(x);
    return rc;
}

int bundle_codec_summary_json(const struct bundle *b, struct ly_buf *out, struct ly_error *err)
{
    struct ly_error local_err; /* error contexts need a carrier even when the caller passes none */
    json_t *root = NULL;
    json_t *xs = NULL;
    json_t *js = NULL;
    json_t *item = NULL;
    json_t *jwk = NULL;
    uint64_t seq;
    int64_t hint;
    size_t i;
    int rc;

    if (err == NULL) {
        err = &local_err;
    }
    ly_error_clear(err);
    if (b == NULL || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bundle_codec_summary_json: NULL argument");
    }
    ly_buf_init(out, BUNDLE_CODEC_MAX_OUTPUT);
    root = json_object();
    xs = json_array();
    js = json_array();
    if (root == NULL || xs == NULL || js == NULL ||
        set_str(root, "trust_domain", bundle_trust_domain(b)) != 0 ||
        json_object_set(root, "x509_authorities", xs) != 0 ||
        json_object_set(root, "jwt_authorities", js) != 0 ||
        json_object_set_new(root, "sequence",
                            bundle_get_sequence(b, &seq) == 0 && seq <= (uint64_t)INT64_MAX
                                ? json_integer((json_int_t)seq)
                                : json_null()) != 0 ||
        json_object_set_new(root, "refresh_hint",
                            bundle_get_refresh_hint(b, &hint) == 0 ? json_integer((json_int_t)hint)
                                                                   : json_null()) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        goto err;
    }
    for (i = 0; i < bundle_x509_count(b); i++) {
        size_t len = 0;
        const uint8_t *der = bundle_x509_authority(b, i, &len);
        rc = x509_summary(der, len, &item, err);
        if (rc < 0) {
            rc = ly_error_wrap(err, "X.509 authority %zu", i);
            goto err;
        }
        rc = append_new(xs, item, err);
        item = NULL;
        if (rc < 0) {
            goto err;
        }
    }
    for (i = 0; i < bundle_jwt_count(b); i++) {
        const uint8_t *spki = NULL;
        size_t len = 0;
        const char *kid = bundle_jwt_authority(b, i, &spki, &len);
        rc = bundle_codec_spki_to_jwk(spki, len, &jwk, err);
        if (rc < 0) {
            rc = ly_error_wrap(err, "JWT authority %zu", i);
            goto err;
        }
        item = json_object();
        if (item == NULL || set_str(item, "kid", kid) != 0 ||
            json_object_set(item, "kty", json_object_get(jwk, "kty")) != 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
            goto err;
        }
        json_decref(jwk);
        jwk = NULL;
        rc = append_new(js, item, err);
        item = NULL;
        if (rc < 0) {
            goto err;
        }
    }
    rc = dump_json(root, out, err);
err:
    if (rc < 0) {
        ly_buf_free(out);
    }
    json_decref(item);
    json_decref(jwk);
    json_decref(xs);
    json_decref(js);
    json_decref(root);
    return rc;
}
