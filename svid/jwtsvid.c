/*
 * jwtsvid: JWT-SVID minting (ES256 with a broker key) and validation (JWT-SVID.md §2-§4, checklist
 * §4), built on a compact-JWS core (parse, header profile, key by kid in one trust domain,
 * signature) that lanyard's other tokens share through jwtsvid_jws_verify/_sign. Validation starts
 * at "reject" and accepts only after every step has passed; it never trusts a header to locate a
 * key (no jku/jwk/x5u/x5c), and never copies token or signature bytes into an error message.
 */
#include "jwtsvid.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/signature.h>

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ly_b64.h"
#include "../common/ly_secret.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../trust-bundles/bundle.h"

/* How much peer text (kid, sub, alg, audience) an error message may quote, before escaping. */
#define ESC_IN_MAX 64
#define ESC_OUT_SZ (ESC_IN_MAX * 4 + 4)

/* 9999-12-31T23:59:59Z: the latest expiry jwtsvid_mint() writes (ly_time's calendar range). */
#define MINT_EXP_MAX INT64_C(253402300799)

/* RFC 7518 §3.3 / §3.5: RSA keys must be at least 2048 bits; wolfSSL here handles <= 4096. */
#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 4096

/* Base64url input per chunk when encoding token parts: 45 bytes give 60 characters, which fit
 * a fresh ly_buf without regrowth, so no unwiped copy of a signature is left on the heap. */
#define B64_CHUNK 45

enum alg_family {
    FAM_EC = 1,
    FAM_RSA_PKCS1,
    FAM_RSA_PSS,
};

struct alg_info {
    const char *name;
    enum jwtsvid_alg alg;
    enum alg_family family;
    enum wc_HashType hash;
    int mgf;      /* RSA-PSS only */
    int curve_id; /* EC only: the one curve this alg allows (RFC 7518 §3.4) */
    word32 coord; /* EC only: bytes per coordinate in the raw R||S signature */
    const char *curve_name;
};

/* The JWT-SVID allow-list (JWT-3). Anything not in this table is refused. */
static const struct alg_info alg_table[] = {
    {"ES256", JWTSVID_ALG_ES256, FAM_EC, WC_HASH_TYPE_SHA256, 0, ECC_SECP256R1, 32, "P-256"},
    {"ES384", JWTSVID_ALG_ES384, FAM_EC, WC_HASH_TYPE_SHA384, 0, ECC_SECP384R1, 48, "P-384"},
    {"ES512", JWTSVID_ALG_ES512, FAM_EC, WC_HASH_TYPE_SHA512, 0, ECC_SECP521R1, 66, "P-521"},
    {"RS256", JWTSVID_ALG_RS256, FAM_RSA_PKCS1, WC_HASH_TYPE_SHA256, 0, 0, 0, NULL},
    {"RS384", JWTSVID_ALG_RS384, FAM_RSA_PKCS1, WC_HASH_TYPE_SHA384, 0, 0, 0, NULL},
    {"RS512", JWTSVID_ALG_RS512, FAM_RSA_PKCS1, WC_HASH_TYPE_SHA512, 0, 0, 0, NULL},
    {"PS256", JWTSVID_ALG_PS256, FAM_RSA_PSS, WC_HASH_TYPE_SHA256, WC_MGF1SHA256, 0, 0, NULL},
    {"PS384", JWTSVID_ALG_PS384, FAM_RSA_PSS, WC_HASH_TYPE_SHA384, WC_MGF1SHA384, 0, 0, NULL},
    {"PS512", JWTSVID_ALG_PS512, FAM_RSA_PSS, WC_HASH_TYPE_SHA512, WC_MGF1SHA512, 0, 0, NULL},
};

#define ALG_COUNT (sizeof(alg_table) / sizeof(alg_table[0]))

const char *jwtsvid_alg_name(enum jwtsvid_alg alg)
{
    size_t i;

    for (i = 0; i < ALG_COUNT; i++) {
        if (alg_table[i].alg == alg) {
            return alg_table[i].name;
        }
    }
    return "?";
}

static const struct alg_info *alg_lookup(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < ALG_COUNT; i++) {
        if (strlen(alg_table[i].name) == len && memcmp(alg_table[i].name, name, len) == 0) {
            return &alg_table[i];
        }
    }
    return NULL;
}

static const char *esc(const char *s, size_t len, char *out, size_t outsz)
{
    return ly_text_escape(s, len, ESC_IN_MAX, out, outsz);
}

/* A jansson value as a NumericDate (RFC 7519 §2): integer, or real rounded down (up when `up`). */
static int json_to_time(const json_t *v, int up, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        int64_t t;

        /* Also rejects NaN: every comparison with it is false. */
        if (!(d > -9.0e15 && d < 9.0e15)) {
            return -1;
        }
        t = (int64_t)d;
        if (!up && (double)t > d) {
            t--;
        }
        if (up && (double)t < d) {
            t++;
        }
        *out = t;
        return 0;
    }
    return -1;
}

/* Format t for a message as RFC 3339, or as plain seconds when outside ly_time's range. */
static const char *time_text(int64_t t, char *out, size_t outsz)
{
    if (ly_time_format_rfc3339(t, out, outsz, NULL) < 0) {
        if (snprintf(out, outsz, "%lld (epoch seconds)", (long long)t) < 0) {
            out[0] = '\0';
        }
    }
    return out;
}

static const char *json_err_kind(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_duplicate_key:
        return "duplicate member";
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "NUL character";
    case json_error_numeric_overflow:
        return "number out of range";
    case json_error_stack_overflow:
        return "nesting too deep";
    case json_error_out_of_memory:
        return "out of memory";
    case json_error_premature_end_of_input:
        return "truncated";
    case json_error_end_of_input_expected:
        return "trailing data";
    default:
        return "invalid syntax";
    }
}

/*
 * Parse a decoded header or payload as a JSON object, rejecting duplicate members (RFC 7515
 * §5.2 / RFC 7519 §7.2 allow rejecting them; accepting them lets two parsers disagree). The
 * message names the problem and offset only: jansson's own text quotes the input.
 */
static int parse_object(const struct ly_buf *raw, const char *what, enum jwtsvid_reason reason,
                        json_t **out, struct ly_error *err)
{
    json_error_t jerr;
    json_t *j;
    int rc = 0;

    j = json_loadb((const char *)raw->data, raw->len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        } else {
            rc =
                ly_error_setx(err, LY_ERR_PARSE, reason, "JWT %s is not valid JSON (%s at byte %d)",
                              what, json_err_kind(&jerr), jerr.position);
        }
    } else if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
        rc = ly_error_setx(err, LY_ERR_PARSE, reason, "JWT %s is not a JSON object", what);
    }
    ly_wipe(&jerr, sizeof(jerr));
    *out = j;
    return rc;
}

/* Hash the JWS signing input with the alg's hash. */
static int hash_input(const struct alg_info *ai, const uint8_t *msg, size_t len, uint8_t *digest,
                      word32 *dlen, struct ly_error *err)
{
    int sz = wc_HashGetDigestSize(ai->hash);

    if (sz <= 0 || sz > WC_MAX_DIGEST_SIZE || len > UINT32_MAX) {
        return ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL, "hash setup failed");
    }
    if (wc_Hash(ai->hash, msg, (word32)len, digest, (word32)sz) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL, "hashing failed");
    }
    *dlen = (word32)sz;
    return 0;
}

/* 1 when the SPKI DER decodes as a public key of that family (used only to word a message). */
static int spki_is_ec(const uint8_t *spki, word32 len)
{
    ecc_key k;
    word32 idx = 0;
    int ok;

    if (wc_ecc_init(&k) != 0) {
        return 0;
    }
    ok = wc_EccPublicKeyDecode(spki, &idx, &k, len) == 0;
    wc_ecc_free(&k);
    return ok;
}

static int spki_is_rsa(const uint8_t *spki, word32 len)
{
    RsaKey *k = calloc(1, sizeof(*k));
    word32 idx = 0;
    int ok = 0;

    if (k == NULL) {
        return 0;
    }
    if (wc_InitRsaKey(k, NULL) == 0) {
        ok = wc_RsaPublicKeyDecode(spki, &idx, k, len) == 0;
        wc_FreeRsaKey(k);
    }
    free(k);
    return ok;
}

/* Verify an ES256/384/512 signature: raw R||S (RFC 7518 §3.4) with the alg's own curve. */
static int verify_ec(const struct alg_info *ai, const char *kid_e, const uint8_t *spki,
                     word32 spki_len, const uint8_t *msg, size_t msg_len, const struct ly_buf *sig,
                     struct ly_error *err)
{
    ecc_key key;
    uint8_t der[ECC_MAX_SIG_SIZE];
    word32 der_len = sizeof(der);
    uint8_t digest[WC_MAX_DIGEST_SIZE];
    word32 dlen = 0;
    word32 idx = 0;
    int res = 0;
    int curve;
    int ret;
    int rc;

    if (wc_ecc_init(&key) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL, "EC key setup failed");
    }
    if (wc_EccPublicKeyDecode(spki, &idx, &key, spki_len) != 0 || idx != spki_len) {
        if (spki_is_rsa(spki, spki_len)) {
            rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_MISMATCH,
                               "JWT authority '%s' is an RSA key; %s needs an EC key", kid_e,
                               ai->name);
        } else {
            rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_UNSUPPORTED,
                               "JWT authority '%s' is not a usable public key", kid_e);
        }
        goto err;
    }
    curve = wc_ecc_get_curve_id(key.idx);
    if (curve != ai->curve_id) {
        const char *cn = "another curve";
        if (curve == ECC_SECP256R1) {
            cn = "P-256";
        } else if (curve == ECC_SECP384R1) {
            cn = "P-384";
        } else if (curve == ECC_SECP521R1) {
            cn = "P-521";
        }
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_MISMATCH,
                           "JWT authority '%s' is a %s key; %s needs %s", kid_e, cn, ai->name,
                           ai->curve_name);
        goto err;
    }
    /* Bundle keys come from federation peers: refuse a point that is not on the curve. */
    if (wc_ecc_check_key(&key) != 0) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_UNSUPPORTED,
                           "JWT authority '%s' holds an invalid EC public key", kid_e);
        goto err;
    }
    if (sig->len != 2 * (size_t)ai->coord) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_SIG_MALFORMED,
                           "%s signature must be %u bytes, got %zu", ai->name, 2 * ai->coord,
                           sig->len);
        goto err;
    }
    if (wc_ecc_rs_raw_to_sig(sig->data, ai->coord, sig->data + ai->coord, ai->coord, der,
                             &der_len) != 0) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_SIG_MALFORMED, "%s signature is malformed",
                           ai->name);
        goto err;
    }
    rc = hash_input(ai, msg, msg_len, digest, &dlen, err);
    if (rc < 0) {
        goto err;
    }
    ret = wc_ecc_verify_hash(der, der_len, digest, dlen, &res, &key);
    if (ret == MEMORY_E) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    if (ret != 0 || res != 1) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE,
                           "%s signature does not verify with JWT authority '%s'", ai->name, kid_e);
        goto err;
    }
    rc = 0;
err:
    ly_wipe(der, sizeof(der));
    wc_ecc_free(&key);
    return rc;
}

/* Number of significant bits in a big-endian unsigned integer. */
static size_t be_bits(const uint8_t *p, size_t len)
{
    size_t i = 0;
    size_t bits;
    uint8_t top;

    while (i < len && p[i] == 0) {
        i++;
    }
    if (i == len) {
        return 0;
    }
    bits = (len - i - 1) * 8;
    for (top = p[i]; top != 0; top >>= 1) {
        bits++;
    }
    return bits;
}

/* Verify an RS* (PKCS#1 v1.5, RFC 7518 §3.3) or PS* (PSS, salt = hash length, §3.5) signature. */
static int verify_rsa(const struct alg_info *ai, const char *kid_e, const uint8_t *spki,
                      word32 spki_len, const uint8_t *msg, size_t msg_len, const struct ly_buf *sig,
                      struct ly_error *err)
{
    RsaKey *key = NULL;
    int key_init = 0;
    uint8_t e[16];
    word32 e_len = sizeof(e);
    uint8_t n[RSA_BITS_MAX / 8 * 2];
    word32 n_len = sizeof(n);
    uint8_t digest[WC_MAX_DIGEST_SIZE];
    word32 dlen = 0;
    uint8_t *work = NULL;
    uint8_t *plain = NULL;
    size_t bits;
    word32 idx = 0;
    int ret;
    int rc;

    key = calloc(1, sizeof(*key));
    if (key == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    if (wc_InitRsaKey(key, NULL) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL, "RSA key setup failed");
        goto err;
    }
    key_init = 1;
    if (wc_RsaPublicKeyDecode(spki, &idx, key, spki_len) != 0 || idx != spki_len) {
        if (spki_is_ec(spki, spki_len)) {
            rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_MISMATCH,
                               "JWT authority '%s' is an EC key; %s needs an RSA key", kid_e,
                               ai->name);
        } else {
            rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_UNSUPPORTED,
                               "JWT authority '%s' is not a usable public key", kid_e);
        }
        goto err;
    }
    if (wc_RsaFlattenPublicKey(key, e, &e_len, n, &n_len) != 0) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_UNSUPPORTED,
                           "JWT authority '%s' has an RSA key that is too large", kid_e);
        goto err;
    }
    bits = be_bits(n, n_len);
    if (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_UNSUPPORTED,
                           "JWT authority '%s' has a %zu-bit RSA key; %d..%d bits are accepted",
                           kid_e, bits, RSA_BITS_MIN, RSA_BITS_MAX);
        goto err;
    }
    /* RFC 8017 §8.2.2 / §8.1.2: the signature is exactly as long as the modulus. */
    if (sig->len != (bits + 7) / 8) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_SIG_MALFORMED,
                           "%s signature must be %zu bytes for this key, got %zu", ai->name,
                           (bits + 7) / 8, sig->len);
        goto err;
    }
    if (ai->family == FAM_RSA_PKCS1) {
        if (msg_len > UINT32_MAX) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL, "input too long");
            goto err;
        }
        ret = wc_SignatureVerify(ai->hash, WC_SIGNATURE_TYPE_RSA_W_ENC, msg, (word32)msg_len,
                                 sig->data, (word32)sig->len, key, (word32)sizeof(*key));
    } else {
        rc = hash_input(ai, msg, msg_len, digest, &dlen, err);
        if (rc < 0) {
            goto err;
        }
        /* The input is not const in wolfSSL's prototype; give it a private copy. */
        work = malloc(sig->len);
        plain = malloc(sig->len);
        if (work == NULL || plain == NULL) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
            goto err;
        }
        memcpy(work, sig->data, sig->len);
        ret = wc_RsaPSS_VerifyCheck(work, (word32)sig->len, plain, (word32)sig->len, digest, dlen,
                                    ai->hash, ai->mgf, key);
        ret = ret > 0 ? 0 : (ret == 0 ? -1 : ret);
    }
    if (ret == MEMORY_E) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    if (ret != 0) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_SIGNATURE,
                           "%s signature does not verify with JWT authority '%s'", ai->name, kid_e);
        goto err;
    }
    rc = 0;
err:
    if (work != NULL) {
        ly_wipe_free(work, sig->len);
    }
    if (plain != NULL) {
        ly_wipe_free(plain, sig->len);
    }
    if (key_init) {
        wc_FreeRsaKey(key);
    }
    free(key);
    return rc;
}

static void free_strv(char **v, size_t n)
{
    size_t i;

    if (v == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void jwtsvid_result_free(struct jwtsvid_result *r)
{
    if (r == NULL) {
        return;
    }
    free_strv(r->audiences, r->n_audiences);
    free(r->kid);
    free(r->claims_json);
    memset(r, 0, sizeof(*r));
}

/* Decode one token part as strict, unpadded base64url (RFC 7515 §2, §7.1). */
static int decode_part(const char *p, size_t len, const char *what, int secret, struct ly_buf *out,
                       struct ly_error *err)
{
    struct ly_error tmp;
    int rc;

    ly_error_clear(&tmp);
    rc = ly_b64_decode(p, len, 1, secret, out, JWTSVID_MAX_LEN, &tmp);
    if (rc == LY_ERR_NOMEM) {
        return ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
    }
    if (rc < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_BASE64, "JWT %s is not base64url: %s",
                             what, tmp.msg);
    }
    return 0;
}

/* Copy the aud claim (string or non-empty array of strings, RFC 7519 §4.1.3) into out. */
static int read_audiences(const json_t *aud, struct jwtsvid_result *out, struct ly_error *err)
{
    size_t n = json_is_string(aud) ? 1 : json_array_size(aud);
    size_t i;

    out->audiences = calloc(n, sizeof(char *));
    if (out->audiences == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
    }
    for (i = 0; i < n; i++) {
        const json_t *v = json_is_string(aud) ? aud : json_array_get(aud, i);
        out->audiences[i] = strdup(json_string_value(v));
        if (out->audiences[i] == NULL) {
            return ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        }
        out->n_audiences = i + 1;
    }
    return 0;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * JWS Compact Serialization only (RFC 7515 §7.1; JWT-1): exactly three non-empty parts. Sets
 * *dot1 and *dot2 to the two separators. `label` names the token in messages.
 */
static int split_token(const char *token, size_t len, const char *label, const char **dot1,
                       const char **dot2, struct ly_error *err)
{
    size_t parts = 1;
    size_t i = 0;
    const char *d1;
    const char *d2;

    if (len > JWTSVID_MAX_LEN) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_TOO_LONG,
                             "%s is %zu bytes; at most %u are accepted", label, len,
                             JWTSVID_MAX_LEN);
    }
    while (i < len && is_json_space(token[i])) {
        i++;
    }
    if (i < len && token[i] == '{') {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_JSON_SERIALIZATION,
                             "JWS JSON serialization is not allowed for %ss; "
                             "use the compact form",
                             label);
    }
    for (i = 0; i < len; i++) {
        if (token[i] == '.') {
            parts++;
        }
    }
    if (len == 0 || parts != 3) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_NOT_COMPACT,
                             "%s must have 3 dot-separated parts, got %zu", label,
                             len == 0 ? (size_t)0 : parts);
    }
    d1 = memchr(token, '.', len);
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (d1 == token || d2 == d1 + 1 || d2 + 1 == token + len) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_EMPTY_PART, "JWT %s part is empty",
                             d1 == token ? "header" : (d2 == d1 + 1 ? "payload" : "signature"));
    }
    *dot1 = d1;
    *dot2 = d2;
    return 0;
}

/* 1 when the typ header value v is one of the profile's, byte for byte. */
static int typ_allowed(const struct jwtsvid_jws_profile *p, const json_t *v)
{
    size_t i;

    if (!json_is_string(v)) {
        return 0;
    }
    for (i = 0; i < p->n_typs; i++) {
        if (strlen(p->typs[i]) == json_string_length(v) &&
            memcmp(p->typs[i], json_string_value(v), json_string_length(v)) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The profile's typ values as "A or B" for a message. */
static const char *typ_list(const struct jwtsvid_jws_profile *p, char *out, size_t outsz)
{
    size_t used = 0;
    size_t i;

    out[0] = '\0';
    for (i = 0; i < p->n_typs; i++) {
        int n = snprintf(out + used, outsz - used, "%s%s", i == 0 ? "" : " or ", p->typs[i]);
        if (n < 0 || (size_t)n >= outsz - used) {
            break; /* a cut list still names the first values */
        }
        used += (size_t)n;
    }
    return out;
}

/*
 * The JOSE header: alg first (JWT-3), then typ (the profile's allow-list), crit and kid. *kid is
 * borrowed from hdr.
 */
static int check_header(const json_t *hdr, const struct jwtsvid_jws_profile *p,
                        const struct alg_info **ai, const char **kid, size_t *kid_len,
                        struct ly_error *err)
{
    const json_t *v = json_object_get(hdr, "alg");
    char e[ESC_OUT_SZ];
    char typs[128];

    if (!json_is_string(v)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_ALG,
                             v == NULL ? "JWT header has no alg"
                                       : "JWT header alg is not a string");
    }
    *ai = alg_lookup(json_string_value(v), json_string_length(v));
    if (*ai == NULL) {
        return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_ALG,
                             "alg '%s' is not allowed for %ss (ES256/384/512, "
                             "RS256/384/512, PS256/384/512 only)",
                             esc(json_string_value(v), json_string_length(v), e, sizeof(e)),
                             p->label);
    }
    /*
     * JWT-5: for JWT-SVIDs typ is optional, but when present only "JWT" or "JOSE"; other
     * profiles (RFC 9068 §4: at+jwt) require their own typ, so one kind of token can never be
     * taken for another.
     */
    v = json_object_get(hdr, "typ");
    if (v == NULL && !p->typ_optional) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_TYP,
                             "JWT header has no typ (%s required)",
                             typ_list(p, typs, sizeof(typs)));
    }
    if (v != NULL && !typ_allowed(p, v)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_TYP,
                             "JWT header typ '%s' is not allowed (%s only)",
                             json_is_string(v)
                                 ? esc(json_string_value(v), json_string_length(v), e, sizeof(e))
                                 : "(not a string)",
                             typ_list(p, typs, sizeof(typs)));
    }
    /* RFC 7515 §4.1.11: we understand no extension, so any crit must be refused. */
    if (json_object_get(hdr, "crit") != NULL) {
        return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_CRIT,
                             "JWT header has crit; no JWS extension is supported");
    }
    /*
     * JWT-4: the spec makes kid optional, but go-spiffe and SPIRE look keys up by kid and
     * reject tokens without one (checklist §9.6); so do we, rather than trying every key.
     */
    v = json_object_get(hdr, "kid");
    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_KID, "JWT header has no kid");
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > BUNDLE_KID_MAX ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_KID,
                             "JWT header kid must be a non-empty string of at most %d bytes",
                             BUNDLE_KID_MAX);
    }
    *kid = json_string_value(v);
    *kid_len = json_string_length(v);
    return 0;
}

/* JWT-6: sub is a valid SPIFFE ID naming a workload (it has a path). */
static int check_subject(const json_t *pay, struct spiffeid *sub, struct ly_error *err)
{
    const json_t *v = json_object_get(pay, "sub");
    struct ly_error tmp;
    char e[ESC_OUT_SZ];

    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_SUB_MISSING, "JWT-SVID has no sub claim");
    }
    if (!json_is_string(v)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_SUB_INVALID,
                             "JWT-SVID sub is not a string");
    }
    ly_error_clear(&tmp);
    if (spiffeid_parse(json_string_value(v), json_string_length(v), sub, &tmp) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_SUB_INVALID,
                             "JWT-SVID sub is not a SPIFFE ID: %s", tmp.msg);
    }
    if (spiffeid_is_root(sub)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_SUB_ROOT,
                             "JWT-SVID sub '%s' names a trust domain, not a workload",
                             esc(sub->str, sub->len, e, sizeof(e)));
    }
    return 0;
}

/* JWT-7: aud is a string or a non-empty array of strings, and holds our audience exactly. */
static int check_audience(const json_t *pay, const char *audience, const char *e_sub,
                          struct ly_error *err)
{
    const json_t *aud = json_object_get(pay, "aud");
    size_t alen = strlen(audience);
    size_t n = json_is_string(aud) ? 1 : json_array_size(aud);
    size_t i;
    int found = 0;
    char e[ESC_OUT_SZ];

    if (aud == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_AUD_MISSING,
                             "JWT-SVID for '%s' has no aud claim", e_sub);
    }
    if (n == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_AUD_INVALID,
                             "JWT-SVID aud must be a string or a non-empty array of strings");
    }
    for (i = 0; i < n; i++) {
        const json_t *v = json_is_string(aud) ? aud : json_array_get(aud, i);

        if (!json_is_string(v)) {
            return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_AUD_INVALID,
                                 "JWT-SVID aud must be a string or a non-empty array of strings");
        }
        found |= json_string_length(v) == alen && memcmp(json_string_value(v), audience, alen) == 0;
    }
    if (!found) {
        return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_AUD_MISMATCH,
                             "JWT-SVID for '%s' is not meant for audience '%s'", e_sub,
                             esc(audience, alen, e, sizeof(e)));
    }
    return 0;
}

/* JWT-9 and RFC 7519 §4.1.4-§4.1.6: exp required, nbf and iat optional, leeway for skew. */
static int check_times(const json_t *pay, int64_t at, int64_t leeway, const char *e_sub,
                       struct jwtsvid_result *r, struct ly_error *err)
{
    const json_t *v = json_object_get(pay, "exp");
    char tbuf[48];
    int64_t nbf;

    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_EXP_MISSING,
                             "JWT-SVID for '%s' has no exp claim", e_sub);
    }
    if (json_to_time(v, 0, &r->exp) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_EXP_INVALID,
                             "JWT-SVID exp is not a valid NumericDate");
    }
    /* at >= exp + leeway, written so that a huge exp cannot overflow. */
    if (at - leeway >= r->exp) {
        return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_EXPIRED,
                             "JWT-SVID for '%s' expired at %s", e_sub,
                             time_text(r->exp, tbuf, sizeof(tbuf)));
    }
    v = json_object_get(pay, "nbf");
    if (v != NULL) {
        if (json_to_time(v, 1, &nbf) < 0) {
            return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_NBF_INVALID,
                                 "JWT-SVID nbf is not a valid NumericDate");
        }
        if (at + leeway < nbf) {
            return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_NOT_YET_VALID,
                                 "JWT-SVID for '%s' is not valid before %s", e_sub,
                                 time_text(nbf, tbuf, sizeof(tbuf)));
        }
    }
    v = json_object_get(pay, "iat");
    if (v != NULL) {
        if (json_to_time(v, 0, &r->iat) < 0) {
            return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_IAT_INVALID,
                                 "JWT-SVID iat is not a valid NumericDate");
        }
        r->has_iat = 1;
    }
    return 0;
}

/* The key comes only from the JWT bundle of one trust domain (JWT-11), by kid. */
static int find_key(const struct bundle_set *bundles, const char *td, const char *kid,
                    const char *e_kid, const uint8_t **spki, size_t *spki_len, struct ly_error *err)
{
    const struct bundle *b;

    /* A validated trust domain holds only [a-z0-9._-], so it is safe to print as is. */
    b = bundle_set_get(bundles, td);
    if (b == NULL || bundle_jwt_count(b) == 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_NO_BUNDLE,
                             "no JWT bundle for trust domain '%s'", td);
    }
    if (bundle_jwt_find(b, kid, spki, spki_len) < 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_UNKNOWN_KID,
                             "JWT bundle of '%s' has no authority with kid '%s'", td, e_kid);
    }
    if (*spki_len > UINT32_MAX) {
        return ly_error_setx(err, LY_ERR_VERIFY, JWTSVID_R_KEY_UNSUPPORTED,
                             "JWT authority '%s' is too large", e_kid);
    }
    return 0;
}

/*
 * A compact JWS on its way through verification. Nothing in it may leave this file before
 * jws_verify_sig() has succeeded on it.
 */
struct jws {
    struct ly_buf hdr_raw;
    struct ly_buf pay_raw;
    struct ly_buf sig_raw; /* secret: a signature is part of a bearer credential */
    json_t *hdr;
    json_t *pay;
    const struct alg_info *ai;
    const char *kid; /* borrowed from hdr */
    size_t kid_len;
    char e_kid[ESC_OUT_SZ];
    size_t signed_len; /* bytes of "header.payload", the JWS signing input */
};

static void jws_init(struct jws *j)
{
    memset(j, 0, sizeof(*j));
    ly_buf_init(&j->hdr_raw, 0);
    ly_buf_init(&j->pay_raw, 0);
    ly_buf_init_secret(&j->sig_raw, 0);
}

static void jws_release(struct jws *j)
{
    json_decref(j->hdr);
    json_decref(j->pay);
    ly_buf_free(&j->hdr_raw);
    ly_buf_free(&j->pay_raw);
    ly_buf_free(&j->sig_raw);
    memset(j, 0, sizeof(*j));
}

/*
 * Structure, then strict base64url of every part, before any JSON is read; then the header
 * under the profile's rules and the payload as a JSON object. Verifies nothing yet.
 */
static int jws_parse(const char *token, size_t len, const struct jwtsvid_jws_profile *p,
                     struct jws *j, struct ly_error *err)
{
    const char *dot1 = NULL;
    const char *dot2 = NULL;
    int rc;

    rc = split_token(token, len, p->label, &dot1, &dot2, err);
    if (rc < 0) {
        return rc;
    }
    rc = decode_part(token, (size_t)(dot1 - token), "header", 0, &j->hdr_raw, err);
    if (rc < 0) {
        return rc;
    }
    rc = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", 0, &j->pay_raw, err);
    if (rc < 0) {
        return rc;
    }
    rc = decode_part(dot2 + 1, (size_t)(token + len - dot2 - 1), "signature", 1, &j->sig_raw,
                     err);
    if (rc < 0) {
        return rc;
    }
    j->signed_len = (size_t)(dot2 - token);
    rc = parse_object(&j->hdr_raw, "header", JWTSVID_R_HEADER_JSON, &j->hdr, err);
    if (rc < 0) {
        return rc;
    }
    rc = check_header(j->hdr, p, &j->ai, &j->kid, &j->kid_len, err);
    if (rc < 0) {
        return rc;
    }
    esc(j->kid, j->kid_len, j->e_kid, sizeof(j->e_kid));
    return parse_object(&j->pay_raw, "payload", JWTSVID_R_PAYLOAD_JSON, &j->pay, err);
}

/* Key (by kid, in trust domain td only) and signature over the ASCII "header.payload". */
static int jws_verify_sig(const struct jws *j, const char *token, const struct bundle_set *bundles,
                          const char *td, struct ly_error *err)
{
    const uint8_t *spki = NULL;
    size_t spki_len = 0;
    int rc;

    rc = find_key(bundles, td, j->kid, j->e_kid, &spki, &spki_len, err);
    if (rc < 0) {
        return rc;
    }
    if (j->ai->family == FAM_EC) {
        return verify_ec(j->ai, j->e_kid, spki, (word32)spki_len, (const uint8_t *)token,
                         j->signed_len, &j->sig_raw, err);
    }
    return verify_rsa(j->ai, j->e_kid, spki, (word32)spki_len, (const uint8_t *)token,
                      j->signed_len, &j->sig_raw, err);
}

/* JWT-SVID §3: typ "JWT" or "JOSE" when present (JWT-5); the key is found via sub (JWT-11). */
static const char *const svid_typs[] = {"JWT", "JOSE"};
static const struct jwtsvid_jws_profile svid_profile = {
    "JWT-SVID", svid_typs, sizeof(svid_typs) / sizeof(svid_typs[0]), 1, "sub", 0,
};

int jwtsvid_validate(const char *token, size_t len, const char *audience,
                     const struct bundle_set *bundles, int64_t at, int64_t leeway,
                     struct jwtsvid_result *out, struct ly_error *err)
{
    struct jws j;
    struct jwtsvid_result r;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char e_sub[ESC_OUT_SZ];
    int rc = LY_ERR_INTERNAL;

    ly_error_clear(err);
    memset(&r, 0, sizeof(r));
    jws_init(&j);
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }

    if (token == NULL || bundles == NULL) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE, "missing token or bundle set");
        goto err;
    }
    /* Checklist §9.12: an empty expectation must never turn the audience check off. */
    if (audience == NULL || audience[0] == '\0') {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "an expected audience is required to validate a JWT-SVID");
        goto err;
    }
    if (at < 0 || at > INT64_MAX / 2 || leeway < 0 || leeway > JWTSVID_LEEWAY_MAX) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "validation time must be >= 0 and leeway 0..%d seconds",
                           JWTSVID_LEEWAY_MAX);
        goto err;
    }

    rc = jws_parse(token, len, &svid_profile, &j, err);
    if (rc < 0) {
        goto err;
    }
    /* Claims (JWT-SVID §3), judged before the key only to name the first problem precisely:
     * nothing leaves this function unless the signature below verifies. */
    rc = check_subject(j.pay, &r.sub, err);
    if (rc < 0) {
        goto err;
    }
    esc(r.sub.str, r.sub.len, e_sub, sizeof(e_sub));
    rc = check_audience(j.pay, audience, e_sub, err);
    if (rc < 0) {
        goto err;
    }
    rc = check_times(j.pay, at, leeway, e_sub, &r, err);
    if (rc < 0) {
        goto err;
    }
    if (spiffeid_td_copy(&r.sub, td, sizeof(td)) < 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL, "trust domain too long");
        goto err;
    }
    rc = jws_verify_sig(&j, token, bundles, td, err);
    if (rc < 0) {
        goto err;
    }

    /* Accepted: hand the claims out. */
    r.alg = j.ai->alg;
    if (out != NULL) {
        rc = read_audiences(json_object_get(j.pay, "aud"), &r, err);
        if (rc < 0) {
            goto err;
        }
        r.kid = strdup(j.kid);
        if (r.kid == NULL) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
            goto err;
        }
        r.claims_json = (char *)ly_buf_steal(&j.pay_raw, &r.claims_json_len);
        *out = r;
        memset(&r, 0, sizeof(r));
    }
    rc = 0;
err:
    jwtsvid_result_free(&r);
    jws_release(&j);
    return rc;
}

/* The profile's key claim: a SPIFFE ID of the required form, naming the key's trust domain. */
static int check_key_claim(const json_t *pay, const struct jwtsvid_jws_profile *p,
                           struct spiffeid *id, struct ly_error *err)
{
    const json_t *v = json_object_get(pay, p->key_claim);
    struct ly_error tmp;
    char e[ESC_OUT_SZ];

    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_KEY_CLAIM_MISSING, "%s has no %s claim",
                             p->label, p->key_claim);
    }
    if (!json_is_string(v)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_KEY_CLAIM_INVALID,
                             "%s %s is not a string", p->label, p->key_claim);
    }
    ly_error_clear(&tmp);
    if (spiffeid_parse(json_string_value(v), json_string_length(v), id, &tmp) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_KEY_CLAIM_INVALID,
                             "%s %s is not a SPIFFE ID: %s", p->label, p->key_claim, tmp.msg);
    }
    esc(id->str, id->len, e, sizeof(e));
    if (p->key_claim_is_td && !spiffeid_is_root(id)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_KEY_CLAIM_INVALID,
                             "%s %s '%s' must be a trust domain's ID (spiffe://TD, no path)",
                             p->label, p->key_claim, e);
    }
    if (!p->key_claim_is_td && spiffeid_is_root(id)) {
        return ly_error_setx(err, LY_ERR_PARSE, JWTSVID_R_KEY_CLAIM_INVALID,
                             "%s %s '%s' names a trust domain, not a workload", p->label,
                             p->key_claim, e);
    }
    return 0;
}

int jwtsvid_jws_verify(const char *token, size_t len, const struct jwtsvid_jws_profile *profile,
                       const struct bundle_set *bundles, struct jwtsvid_jws *out,
                       struct ly_error *err)
{
    struct jws j;
    struct jwtsvid_jws v;
    int rc = LY_ERR_INTERNAL;

    ly_error_clear(err);
    memset(&v, 0, sizeof(v));
    jws_init(&j);
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (token == NULL || bundles == NULL || out == NULL) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "missing token, bundle set or result");
        goto err;
    }
    if (profile == NULL || profile->label == NULL || profile->typs == NULL ||
        profile->n_typs == 0 || profile->key_claim == NULL || profile->key_claim[0] == '\0') {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "a JWS profile needs a label, typ values and a key claim");
        goto err;
    }

    rc = jws_parse(token, len, profile, &j, err);
    if (rc < 0) {
        goto err;
    }
    rc = check_key_claim(j.pay, profile, &v.key_id, err);
    if (rc < 0) {
        goto err;
    }
    if (spiffeid_td_copy(&v.key_id, v.trust_domain, sizeof(v.trust_domain)) < 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL, "trust domain too long");
        goto err;
    }
    rc = jws_verify_sig(&j, token, bundles, v.trust_domain, err);
    if (rc < 0) {
        goto err;
    }

    /* Verified: only now do the claims leave this file. */
    v.alg = j.ai->alg;
    v.kid = strdup(j.kid);
    if (v.kid == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    v.kid_len = j.kid_len;
    v.claims = j.pay;
    j.pay = NULL;
    *out = v;
    memset(&v, 0, sizeof(v));
    rc = 0;
err:
    jwtsvid_jws_free(&v);
    jws_release(&j);
    return rc;
}

void jwtsvid_jws_free(struct jwtsvid_jws *v)
{
    if (v == NULL) {
        return;
    }
    json_decref(v->claims);
    free(v->kid);
    memset(v, 0, sizeof(*v));
}

int jwtsvid_numeric_date(const json_t *v, int round_up, int64_t *out)
{
    return json_to_time(v, round_up, out);
}


/*
 * Append base64url(in) to a secret buffer without leaving unwiped copies behind: each chunk is
 * encoded into a buffer that never regrows, then wiped.
 */
static int b64url_append(const uint8_t *in, size_t len, struct ly_buf *out, struct ly_error *err)
{
    size_t off = 0;

    while (off < len) {
        struct ly_buf chunk;
        size_t n = len - off > B64_CHUNK ? B64_CHUNK : len - off;
        int rc = ly_b64_encode(in + off, n, 1, &chunk, B64_CHUNK / 3 * 4, err);

        if (rc < 0) {
            return rc;
        }
        rc = ly_buf_append(out, chunk.data, chunk.len, err);
        ly_wipe(chunk.data, chunk.cap);
        ly_buf_free(&chunk);
        if (rc < 0) {
            return rc;
        }
        off += n;
    }
    return 0;
}

/* 1 when s is non-empty printable ASCII of at most max bytes. */
static int printable(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= max || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) {
            return 0;
        }
    }
    return i > 0;
}

/* Serialise compactly and append base64url of it to out. */
static int append_json(const json_t *j, struct ly_buf *out, struct ly_error *err)
{
    char *txt = json_dumps(j, JSON_COMPACT);
    size_t n;
    int rc;

    if (txt == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "JSON serialisation failed");
    }
    n = strlen(txt);
    rc = b64url_append((const uint8_t *)txt, n, out, err);
    ly_wipe(txt, n);
    free(txt);
    return rc;
}

/* Largest typ jwtsvid_jws_sign() writes: media type names are short (RFC 6838 §4.2: 127). */
#define TYP_MAX 64

int jwtsvid_jws_sign(struct svid_key *key, const char *kid, const char *typ, const json_t *claims,
                     struct ly_buf *out, struct ly_error *err)
{
    json_t *hdr = NULL;
    struct ly_buf sig;
    int rc = LY_ERR_INTERNAL;

    ly_error_clear(err);
    ly_buf_init_secret(out, JWTSVID_MAX_LEN);
    ly_buf_init_secret(&sig, 0);

    if (key == NULL || kid == NULL || typ == NULL || !json_is_object(claims)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "missing key, kid, typ or claims object");
        goto err;
    }
    if (svid_key_get_type(key) != SVID_KEY_EC_P256) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_KEY_UNSUPPORTED,
                           "JWT signing needs an EC P-256 key (ES256); %s is not allowed (JWT-3)",
                           svid_key_type_name(svid_key_get_type(key)));
        goto err;
    }
    if (!printable(kid, BUNDLE_KID_MAX)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "kid must be 1..%d printable ASCII bytes", BUNDLE_KID_MAX);
        goto err;
    }
    if (!printable(typ, TYP_MAX)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "typ must be 1..%d printable ASCII bytes", TYP_MAX);
        goto err;
    }

    /* JWT-2: exactly alg, kid, typ; nothing that could tell a validator where to find keys. */
    hdr = json_object();
    if (hdr == NULL || json_object_set_new(hdr, "alg", json_string("ES256")) != 0 ||
        json_object_set_new(hdr, "kid", json_string(kid)) != 0 ||
        json_object_set_new(hdr, "typ", json_string(typ)) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    rc = append_json(hdr, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = ly_buf_append(out, ".", 1, err);
    if (rc < 0) {
        goto err;
    }
    rc = append_json(claims, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = svid_key_sign_jws(key, out->data, out->len, &sig, err);
    if (rc < 0) {
        goto err;
    }
    if (sig.len != 64) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, JWTSVID_R_INTERNAL,
                           "ES256 signature has %zu bytes, expected 64", sig.len);
        goto err;
    }
    rc = ly_buf_append(out, ".", 1, err);
    if (rc < 0) {
        goto err;
    }
    rc = b64url_append(sig.data, sig.len, out, err);
    if (rc < 0) {
        goto err;
    }
    rc = 0;
err:
    if (sig.data != NULL) {
        ly_wipe(sig.data, sig.cap);
    }
    ly_buf_free(&sig);
    json_decref(hdr);
    if (rc < 0) {
        ly_buf_free(out);
        if (err != NULL && err->reason == 0) {
            err->reason = JWTSVID_R_INTERNAL;
        }
    }
    return rc;
}

int jwtsvid_mint(struct svid_key *key, const char *kid, const struct spiffeid *sub,
                 const char *const *audiences, size_t n_audiences, int64_t now, int64_t ttl,
                 struct ly_buf *out, struct ly_error *err)
{
    json_t *claims = NULL;
    json_t *aud = NULL;
    size_t i;
    int rc = LY_ERR_INTERNAL;

    ly_error_clear(err);
    ly_buf_init_secret(out, JWTSVID_MAX_LEN);

    if (key == NULL || kid == NULL || sub == NULL || audiences == NULL) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE, "missing key, kid, sub or audience");
        goto err;
    }
    if (svid_key_get_type(key) != SVID_KEY_EC_P256) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_KEY_UNSUPPORTED,
                           "JWT-SVIDs need an EC P-256 key (ES256); %s is not allowed (JWT-3)",
                           svid_key_type_name(svid_key_get_type(key)));
        goto err;
    }
    if (!printable(kid, BUNDLE_KID_MAX)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "kid must be 1..%d printable ASCII bytes", BUNDLE_KID_MAX);
        goto err;
    }
    /* JWT-6 and X509-SVID §2 alike: a workload identity has a path. */
    if (sub->len == 0 || spiffeid_is_root(sub)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "JWT-SVID subject must be a workload ID with a path");
        goto err;
    }
    if (n_audiences == 0 || n_audiences > JWTSVID_MAX_AUDIENCES) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "a JWT-SVID needs 1..%d audiences, got %zu", JWTSVID_MAX_AUDIENCES,
                           n_audiences);
        goto err;
    }
    if (now < 0 || ttl <= 0 || now > MINT_EXP_MAX - ttl) {
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "issue time must be >= 0 and ttl > 0, expiring before year 10000");
        goto err;
    }

    claims = json_object();
    if (claims == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    for (i = 0; i < n_audiences; i++) {
        if (audiences[i] == NULL || audiences[i][0] == '\0') {
            rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE, "audience %zu is empty", i);
            goto err;
        }
    }
    if (n_audiences == 1) {
        aud = json_string(audiences[0]);
    } else {
        aud = json_array();
        for (i = 0; aud != NULL && i < n_audiences; i++) {
            json_t *s = json_string(audiences[i]);
            if (s == NULL) {
                json_decref(aud);
                aud = NULL;
            } else if (json_array_append_new(aud, s) != 0) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
                goto err;
            }
        }
    }
    if (aud == NULL) {
        /* json_string() fails on invalid UTF-8 (or, rarely, out of memory). */
        rc = ly_error_setx(err, LY_ERR_USAGE, JWTSVID_R_USAGE,
                           "audiences must be valid UTF-8 strings");
        goto err;
    }
    /* Insertion order is kept by jansson, so the claims always read sub, aud, exp, iat. */
    if (json_object_set_new(claims, "sub", json_stringn(sub->str, sub->len)) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    rc = json_object_set_new(claims, "aud", aud);
    aud = NULL; /* set_new consumed it, even on failure */
    if (rc != 0 || json_object_set_new(claims, "exp", json_integer((json_int_t)(now + ttl))) != 0 ||
        json_object_set_new(claims, "iat", json_integer((json_int_t)now)) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, JWTSVID_R_INTERNAL, "out of memory");
        goto err;
    }
    /* JWT-2 and JWT-5: the header is {"alg":"ES256","kid":kid,"typ":"JWT"}. */
    rc = jwtsvid_jws_sign(key, kid, "JWT", claims, out, err);
err:
    json_decref(aud);
    json_decref(claims);
    if (rc < 0) {
        ly_buf_free(out);
        if (err != NULL && err->reason == 0) {
            err->reason = JWTSVID_R_INTERNAL;
        }
    }
    return rc;
}
