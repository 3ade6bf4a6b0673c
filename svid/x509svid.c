/*
 * x509svid: issuing and verifying X509-SVIDs. Every certificate, CSR and key lanyard *reads* is
 * parsed by wolfSSL (DecodedCert, PEM readers, its certificate manager for signatures); this
 * file decodes no DER and searches no certificate text. It *encodes* the certificates it issues
 * with svid/der.h because wolfSSL 5.5.4's generator cannot mark basicConstraints critical,
 * back-dates notBefore by a day, and re-parses the CA for every certificate.
 */
#include "x509svid_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "der.h"
#include "key_internal.h"

/* Object identifiers, content bytes only (RFC 5280 §4.1.2.4, §4.2.1; RFC 5758; RFC 8410). */
static const uint8_t OID_O[] = {0x55, 0x04, 0x0a};
static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_SKID[] = {0x55, 0x1d, 0x0e};
static const uint8_t OID_KU[] = {0x55, 0x1d, 0x0f};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_BC[] = {0x55, 0x1d, 0x13};
static const uint8_t OID_AKID[] = {0x55, 0x1d, 0x23};
static const uint8_t OID_EKU[] = {0x55, 0x1d, 0x25};
static const uint8_t OID_SERVER_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
static const uint8_t OID_CLIENT_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};
/* AlgorithmIdentifier SEQUENCEs: ecdsa-with-SHA256 (no parameters) and id-Ed25519. */
static const uint8_t ALG_ECDSA_SHA256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t ALG_ED25519[] = {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70};

#define SERIAL_BYTES 16  /* 128 random bits: above the 64 bits CAs must use */
#define KEYID_BYTES 20   /* SHA-1 of subjectPublicKey, RFC 5280 §4.2.1.2 method (1) */
#define NAME_MAX_DER 1024
/* On a failed path, how many other bundles are tried to name the domain the chain leads to. */
#define DIAG_MAX_BUNDLES 8

struct x509svid_ca {
    struct svid_key *key;             /* borrowed */
    uint8_t *cert;                    /* owned copy of the CA certificate DER */
    size_t cert_len;
    uint8_t *name;                    /* owned: the CA's subject Name DER (leaves' issuer) */
    size_t name_len;
    uint8_t akid[KEYID_BYTES];        /* the CA's subject key identifier */
    int64_t not_after;
    int has_td;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct ly_buf scratch;            /* reused by every mint, so minting rarely allocates */
};

struct x509svid_chain {
    struct {
        uint8_t *der;
        size_t len;
    } certs[X509SVID_MAX_CERTS];
    size_t n;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static int fail(struct ly_error *err, int code, int reason, const char *msg)
{
    return ly_error_setx(err, code, reason, "%s", msg);
}

static int code_of(const struct ly_error *err, int fallback)
{
    return err != NULL && err->code != LY_OK ? err->code : fallback;
}

static void fmt_time(int64_t t, char *out, size_t outsz)
{
    if (ly_time_format_rfc3339(t, out, outsz, NULL) != 0) {
        (void)snprintf(out, outsz, "@%lld", (long long)t);
    }
}

/* Escape and cap peer-supplied text for an error message (STYLE rule 15). */
static void safe_text(const char *in, size_t len, char *out, size_t outsz)
{
    (void)ly_text_escape(in, len, len, out, outsz);
}


/* wolfSSL's Time fields to epoch seconds. */
static int decoded_time(const byte *date, int len, int64_t *out)
{
    const byte *d = NULL;
    byte format = 0;
    int dlen = 0;
    struct tm tm;

    if (date == NULL || len <= 0) {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    if (wc_GetDateInfo(date, len, &d, &format, &dlen) != 0 ||
        wc_GetDateAsCalendarTime(d, dlen, format, &tm) != 0) {
        return -1;
    }
    *out = ly_time_from_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec);
    return 0;
}

/*
 * Parse one certificate with wolfSSL. verify: NO_VERIFY (structure only) or VERIFY_SKIP_DATE
 * (signature checked against the signers in cm; lanyard checks validity against its own `at`).
 * The caller must wc_FreeDecodedCert(dc) whatever this returns. Returns wolfSSL's code.
 */
static int decode(DecodedCert *dc, const uint8_t *der, size_t len, int verify, void *cm)
{
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    return wc_ParseCert(dc, CERT_TYPE, verify, cm);
}

/*
 * The SubjectPublicKeyInfo DER of a decoded certificate or CSR. wolfSSL gives the whole SPKI for
 * EC keys but only the raw 32 bytes for Ed25519, which are wrapped again by wolfCrypt here.
 */
static int decoded_spki(DecodedCert *dc, uint8_t *out, word32 *outlen)
{
    ed25519_key ed;
    int n;

    if (wc_GetPubKeyDerFromCert(dc, out, outlen) != 0) {
        return -1;
    }
    if (dc->keyOID != ED25519k || *outlen != ED25519_PUB_KEY_SIZE) {
        return 0;
    }
    if (wc_ed25519_init(&ed) != 0) {
        return -1;
    }
    if (wc_ed25519_import_public(out, ED25519_PUB_KEY_SIZE, &ed) != 0) {
        wc_ed25519_free(&ed);
        return -1;
    }
    n = wc_Ed25519PublicKeyToDer(&ed, out, SVID_KEY_SPKI_MAX, 1);
    wc_ed25519_free(&ed);
    if (n <= 0) {
        return -1;
    }
    *outlen = (word32)n;
    return 0;
}

/* ---- encoding ----------------------------------------------------------------------------- */

static int put_oid(struct ly_buf *b, const uint8_t *oid, size_t len, struct ly_error *err)
{
    return der_put_tlv(b, DER_OID, oid, len, err);
}

static int put_name(struct ly_buf *b, const char *o, const char *cn, struct ly_error *err)
{
    size_t name, set, atv;
    const char *vals[2] = {o, cn};
    const uint8_t *oids[2] = {OID_O, OID_CN};
    int i;

    if (der_begin(b, DER_SEQUENCE, &name, err) != 0) {
        return code_of(err, LY_ERR_INTERNAL);
    }
    for (i = 0; i < 2; i++) {
        if (vals[i] == NULL) {
            continue;
        }
        if (der_begin(b, DER_SET, &set, err) != 0 || der_begin(b, DER_SEQUENCE, &atv, err) != 0 ||
            put_oid(b, oids[i], 3, err) != 0 ||
            der_put_tlv(b, DER_UTF8_STRING, vals[i], strlen(vals[i]), err) != 0 ||
            der_end(b, atv, err) != 0 || der_end(b, set, err) != 0) {
            return code_of(err, LY_ERR_INTERNAL);
        }
    }
    return der_end(b, name, err);
}

/*
 * Open an Extension: SEQUENCE { extnID, critical (written only when TRUE: DER omits defaults),
 * OCTET STRING { ... (closed by ext_end).
 */
static int ext_begin(struct ly_buf *b, const uint8_t *oid, int critical, size_t *ext, size_t *oct,
                     struct ly_error *err)
{
    if (der_begin(b, DER_SEQUENCE, ext, err) != 0 || put_oid(b, oid, 3, err) != 0 ||
        (critical && der_put_bool(b, 1, err) != 0) ||
        der_begin(b, DER_OCTET_STRING, oct, err) != 0) {
        return code_of(err, LY_ERR_INTERNAL);
    }
    return 0;
}

static int ext_end(struct ly_buf *b, size_t ext, size_t oct, struct ly_error *err)
{
    if (der_end(b, oct, err) != 0) {
        return code_of(err, LY_ERR_INTERNAL);
    }
    return der_end(b, ext, err);
}

static int put_extensions(struct ly_buf *b, const struct x509svid_tmpl *t, const uint8_t *skid,
                          const uint8_t *akid, struct ly_error *err)
{
    size_t ctx3, exts, ext, oct, seq;
    size_t i;

    if (der_begin(b, DER_CTX_CONS(3), &ctx3, err) != 0 ||
        der_begin(b, DER_SEQUENCE, &exts, err) != 0) {
        return code_of(err, LY_ERR_INTERNAL);
    }
    if (t->bc != X509SVID_BC_NONE) {
        /* RFC 5280 §4.2.1.9: critical in CA certificates; lanyard marks leaves critical too. */
        if (ext_begin(b, OID_BC, t->bc_critical, &ext, &oct, err) != 0 ||
            der_begin(b, DER_SEQUENCE, &seq, err) != 0 ||
            (t->bc == X509SVID_BC_CA && der_put_bool(b, 1, err) != 0) ||
            (t->bc == X509SVID_BC_CA && t->path_len >= 0 &&
             der_put_small_uint(b, (unsigned)t->path_len, err) != 0) ||
            der_end(b, seq, err) != 0 || ext_end(b, ext, oct, err) != 0) {
            return code_of(err, LY_ERR_INTERNAL);
        }
    }
    if (t->key_usage != 0) {
        uint8_t ku = (uint8_t)t->key_usage;
        unsigned unused = 0;

        /* DER BIT STRING: trailing zero bits are not encoded (X.690 §11.2.2). */
        while (unused < 7 && (ku & (1u << unused)) == 0) {
            unused++;
        }
        if (ext_begin(b, OID_KU, t->ku_critical, &ext, &oct, err) != 0 ||
            der_put_bits(b, unused, &ku, 1, err) != 0 || ext_end(b, ext, oct, err) != 0) {
            return code_of(err, LY_ERR_INTERNAL);
        }
    }
    if (t->eku_tls) {
        /* X509-13: both TLS purposes, so either side of mutual TLS accepts the SVID. */
        if (ext_begin(b, OID_EKU, 0, &ext, &oct, err) != 0 ||
            der_begin(b, DER_SEQUENCE, &seq, err) != 0 ||
            put_oid(b, OID_SERVER_AUTH, sizeof(OID_SERVER_AUTH), err) != 0 ||
            put_oid(b, OID_CLIENT_AUTH, sizeof(OID_CLIENT_AUTH), err) != 0 ||
            der_end(b, seq, err) != 0 || ext_end(b, ext, oct, err) != 0) {
            return code_of(err, LY_ERR_INTERNAL);
        }
    }
    if (t->n_uris + t->n_dns > 0) {
        if (ext_begin(b, OID_SAN, t->san_critical, &ext, &oct, err) != 0 ||
            der_begin(b, DER_SEQUENCE, &seq, err) != 0) {
            return code_of(err, LY_ERR_INTERNAL);
        }
        for (i = 0; i < t->n_uris; i++) {
            size_t ulen = t->uri_lens != NULL ? t->uri_lens[i] : strlen(t->uris[i]);

            if (der_put_tlv(b, DER_CTX(6), t->uris[i], ulen, err) != 0) {
                return code_of(err, LY_ERR_INTERNAL);
            }
        }
        for (i = 0; i < t->n_dns; i++) {
            if (der_put_tlv(b, DER_CTX(2), t->dns[i], strlen(t->dns[i]), err) != 0) {
                return code_of(err, LY_ERR_INTERNAL);
            }
        }
        if (der_end(b, seq, err) != 0 || ext_end(b, ext, oct, err) != 0) {
            return code_of(err, LY_ERR_INTERNAL);
        }
    }
    if (ext_begin(b, OID_SKID, 0, &ext, &oct, err) != 0 ||
        der_put_tlv(b, DER_OCTET_STRING, skid, KEYID_BYTES, err) != 0 ||
        ext_end(b, ext, oct, err) != 0) {
        return code_of(err, LY_ERR_INTERNAL);
    }
    if (ext_begin(b, OID_AKID, 0, &ext, &oct, err) != 0 ||
        der_begin(b, DER_SEQUENCE, &seq, err) != 0 ||
        der_put_tlv(b, DER_CTX(0), akid, KEYID_BYTES, err) != 0 || der_end(b, seq, err) != 0 ||
        ext_end(b, ext, oct, err) != 0) {
        return code_of(err, LY_ERR_INTERNAL);
    }
    if (der_end(b, exts, err) != 0) {
        return code_of(err, LY_ERR_INTERNAL);
    }
    return der_end(b, ctx3, err);
}

int x509svid_build(const struct x509svid_tmpl *t, struct x509svid_ca *issuer,
                   struct svid_key *self_key, struct ly_buf *out, struct ly_error *err)
{
    struct svid_key *signer = issuer != NULL ? issuer->key : self_key;
    struct ly_buf local;
    struct ly_buf subject;
    struct ly_buf *b;
    uint8_t pub[SVID_KEY_PUB_MAX];
    uint8_t spki[SVID_KEY_SPKI_MAX];
    uint8_t skid[KEYID_BYTES];
    uint8_t serial[SERIAL_BYTES];
    uint8_t sig[SVID_KEY_SIG_MAX];
    size_t publen = 0, spki_len = 0, siglen = 0;
    size_t cert, tbs, ver, validity;
    const uint8_t *alg;
    size_t alg_len;
    enum svid_key_type type;
    int rc = LY_ERR_INTERNAL;

    ly_buf_init(out, X509SVID_MAX_CERT_DER);
    ly_buf_init(&local, X509SVID_MAX_CERT_DER);
    ly_buf_init(&subject, NAME_MAX_DER);
    b = issuer != NULL ? &issuer->scratch : &local;
    ly_buf_reset(b);
    if (signer == NULL) {
        rc = fail(err, LY_ERR_USAGE, X509SVID_R_BAD_CA, "no signing key");
        goto err;
    }
    if (svid_key_spki_decode(t->spki, t->spki_len, &type, pub, &publen, spki, &spki_len, err) !=
        0) {
        if (err != NULL) {
            err->reason = X509SVID_R_BAD_PUBLIC_KEY;
        }
        rc = code_of(err, LY_ERR_PARSE);
        goto err;
    }
    (void)type; /* both accepted types are fine as subject keys */
    if (issuer == NULL) {
        uint8_t mine[SVID_KEY_PUB_MAX];
        size_t mine_len = 0;

        if (svid_key_public_raw(self_key, mine, &mine_len, err) != 0 || mine_len != publen ||
            memcmp(mine, pub, publen) != 0) {
            ly_error_clear(err);
            rc = fail(err, LY_ERR_USAGE, X509SVID_R_BAD_CA,
                      "self-signed certificate: public key is not the signing key's");
            goto err;
        }
    }
    if (wc_ShaHash(pub, (word32)publen, skid) != 0 ||
        wc_RNG_GenerateBlock(&signer->rng, serial, sizeof(serial)) != 0) {
        rc = fail(err, LY_ERR_INTERNAL, 0, "cannot hash the key or draw a serial number");
        goto err;
    }
    if (serial[0] == 0) {
        serial[0] = 1; /* keep all 128 bits significant and the serial non-zero */
    }
    if (signer->type == SVID_KEY_EC_P256) {
        alg = ALG_ECDSA_SHA256;
        alg_len = sizeof(ALG_ECDSA_SHA256);
    } else {
        alg = ALG_ED25519;
        alg_len = sizeof(ALG_ED25519);
    }
    if (put_name(&subject, t->subject_o, t->subject_cn, err) != 0) {
        goto err_code;
    }
    /* RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, sig }. */
    if (der_begin(b, DER_SEQUENCE, &cert, err) != 0 || der_begin(b, DER_SEQUENCE, &tbs, err) != 0 ||
        der_begin(b, DER_CTX_CONS(0), &ver, err) != 0 || der_put_small_uint(b, 2, err) != 0 ||
        der_end(b, ver, err) != 0 || der_put_uint(b, serial, sizeof(serial), err) != 0 ||
        der_put_raw(b, alg, alg_len, err) != 0) {
        goto err_code;
    }
    if (issuer != NULL) {
        rc = der_put_raw(b, issuer->name, issuer->name_len, err);
    } else {
        rc = der_put_raw(b, subject.data, subject.len, err);
    }
    if (rc != 0 || der_begin(b, DER_SEQUENCE, &validity, err) != 0 ||
        der_put_time(b, t->not_before, err) != 0 || der_put_time(b, t->not_after, err) != 0 ||
        der_end(b, validity, err) != 0 || der_put_raw(b, subject.data, subject.len, err) != 0 ||
        der_put_raw(b, spki, spki_len, err) != 0 ||
        put_extensions(b, t, skid, issuer != NULL ? issuer->akid : skid, err) != 0 ||
        der_end(b, tbs, err) != 0) {
        goto err_code;
    }
    /* The TBS starts at `tbs` and, now closed, runs to the end of the buffer. */
    if (svid_key_sign_raw(signer, b->data + tbs, b->len - tbs, sig, &siglen, err) != 0 ||
        der_put_raw(b, alg, alg_len, err) != 0 || der_put_bits(b, 0, sig, siglen, err) != 0 ||
        der_end(b, cert, err) != 0) {
        goto err_code;
    }
    if (ly_buf_append(out, b->data, b->len, err) != 0) {
        goto err_code;
    }
    ly_buf_free(&local);
    ly_buf_free(&subject);
    return 0;
err_code:
    rc = code_of(err, LY_ERR_INTERNAL);
err:
    ly_buf_free(&local);
    ly_buf_free(&subject);
    ly_buf_free(out);
    ly_buf_init(out, X509SVID_MAX_CERT_DER);
    return rc;
}

/* ---- CA ----------------------------------------------------------------------------------- */

int x509svid_ca_create(struct svid_key *key, const char *trust_domain, int64_t now, int64_t ttl,
                       struct ly_buf *cert_der, struct ly_error *err)
{
    struct x509svid_tmpl t;
    struct ly_buf spki;
    struct spiffeid id;
    const char *uri;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    int rc;

    ly_error_clear(err);
    ly_buf_init(cert_der, X509SVID_MAX_CERT_DER);
    if (key == NULL || trust_domain == NULL) {
        return fail(err, LY_ERR_USAGE, X509SVID_R_BAD_CA, "CA creation needs a key and a domain");
    }
    if (ttl <= 0 || now > INT64_MAX - ttl) {
        return ly_error_setx(err, LY_ERR_USAGE, X509SVID_R_BAD_TTL,
                             "CA lifetime must be positive (got %lld s)", (long long)ttl);
    }
    rc = spiffeid_parse_trust_domain(trust_domain, strlen(trust_domain), td, sizeof(td), err);
    if (rc == 0) {
        rc = spiffeid_from_parts(td, "", &id, err);
    }
    if (rc != 0) {
        return rc;
    }
    rc = svid_key_public_der(key, &spki, err);
    if (rc != 0) {
        return rc;
    }
    uri = id.str;
    memset(&t, 0, sizeof(t));
    t.spki = spki.data;
    t.spki_len = spki.len;
    t.subject_o = "lanyard";
    t.subject_cn = td;
    t.uris = &uri;
    t.n_uris = 1;
    t.bc = X509SVID_BC_CA;
    t.bc_critical = 1;
    t.path_len = -1;
    t.key_usage = X509SVID_KU_KEY_CERT_SIGN | X509SVID_KU_CRL_SIGN;
    t.ku_critical = 1;
    t.not_before = now;
    t.not_after = now + ttl;
    rc = x509svid_build(&t, NULL, key, cert_der, err);
    ly_buf_free(&spki);
    return rc;
}

void x509svid_ca_free(struct x509svid_ca *ca)
{
    if (ca == NULL) {
        return;
    }
    free(ca->cert);
    ca->cert = NULL;
    free(ca->name);
    ca->name = NULL;
    ly_buf_free(&ca->scratch);
    free(ca);
}

/* The single valid spiffe URI SAN of a decoded certificate, if any (for CAs and info). */
static int decoded_single_id(const DecodedCert *dc, struct spiffeid *id)
{
    const DNS_entry *e;
    const DNS_entry *uri = NULL;
    int n = 0;

    for (e = dc->altNames; e != NULL; e = e->next) {
        if (e->type == ASN_URI_TYPE) {
            uri = e;
            n++;
        }
    }
    if (n != 1 || uri->name == NULL || uri->len < 0 || strlen(uri->name) != (size_t)uri->len) {
        return -1;
    }
    return spiffeid_parse(uri->name, (size_t)uri->len, id, NULL) == 0 ? 0 : -1;
}

int x509svid_ca_new(const uint8_t *cert_der, size_t len, struct svid_key *key,
                    struct x509svid_ca **out, struct ly_error *err)
{
    struct x509svid_ca *ca = NULL;
    DecodedCert dc;
    uint8_t spki[1024];
    word32 spki_len = sizeof(spki);
    struct spiffeid id;
    int64_t nb = 0;
    int rc;

    ly_error_clear(err);
    *out = NULL;
    if (cert_der == NULL || key == NULL || len == 0 || len > X509SVID_MAX_CERT_DER) {
        return fail(err, LY_ERR_USAGE, X509SVID_R_BAD_CA, "CA needs a certificate and a key");
    }
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL) {
        return fail(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    ly_buf_init(&ca->scratch, X509SVID_MAX_CERT_DER);
    ca->key = key;
    rc = decode(&dc, cert_der, len, NO_VERIFY, NULL);
    if (rc != 0) {
        (void)ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                            "CA certificate does not parse (wolfSSL %d)", rc);
        goto err;
    }
    if (!dc.isCA || !dc.extKeyUsageSet || (dc.extKeyUsage & KEYUSE_KEY_CERT_SIGN) == 0) {
        (void)fail(err, LY_ERR_USAGE, X509SVID_R_BAD_CA,
                   "certificate is not a CA (needs cA=TRUE and keyUsage keyCertSign)");
        goto err;
    }
    if (decoded_spki(&dc, spki, &spki_len) != 0 || !svid_key_matches_public(key, spki, spki_len)) {
        (void)fail(err, LY_ERR_USAGE, X509SVID_R_BAD_CA,
                   "CA private key does not match the CA certificate");
        goto err;
    }
    if (dc.subjectRaw == NULL || dc.subjectRawLen <= 0 ||
        decoded_time(dc.beforeDate, dc.beforeDateLen, &nb) != 0 ||
        decoded_time(dc.afterDate, dc.afterDateLen, &ca->not_after) != 0) {
        (void)fail(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                   "CA certificate subject or validity unreadable");
        goto err;
    }
    /*
     * wolfSSL 5.5.4 points subjectRaw at the Name's RDNSequence contents, without the outer
     * SEQUENCE header: wrap them again (a Name always begins with SEQUENCE, its RDNs with SET).
     */
    {
        struct ly_buf name;
        size_t mark;

        ly_buf_init(&name, NAME_MAX_DER);
        if (dc.subjectRaw[0] == DER_SEQUENCE) {
            rc = der_put_raw(&name, dc.subjectRaw, (size_t)dc.subjectRawLen, err);
        } else if (der_begin(&name, DER_SEQUENCE, &mark, err) != 0 ||
                   der_put_raw(&name, dc.subjectRaw, (size_t)dc.subjectRawLen, err) != 0) {
            rc = code_of(err, LY_ERR_INTERNAL);
        } else {
            rc = der_end(&name, mark, err);
        }
        if (rc != 0) {
            ly_buf_free(&name);
            goto err;
        }
        ca->name = ly_buf_steal(&name, &ca->name_len);
    }
    ca->cert = malloc(len);
    if (ca->name == NULL || ca->cert == NULL) {
        (void)fail(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    memcpy(ca->cert, cert_der, len);
    ca->cert_len = len;
    if (dc.extSubjKeyIdSet) {
        memcpy(ca->akid, dc.extSubjKeyId, KEYID_BYTES);
    } else {
        uint8_t pub[SVID_KEY_PUB_MAX];
        size_t publen = 0;

        if (svid_key_public_raw(key, pub, &publen, err) != 0 ||
            wc_ShaHash(pub, (word32)publen, ca->akid) != 0) {
            (void)fail(err, LY_ERR_INTERNAL, 0, "cannot compute the CA key identifier");
            goto err;
        }
    }
    if (decoded_single_id(&dc, &id) == 0) {
        ca->has_td = spiffeid_td_copy(&id, ca->td, sizeof(ca->td)) == 0;
    }
    wc_FreeDecodedCert(&dc);
    *out = ca;
    return 0;
err:
    wc_FreeDecodedCert(&dc);
    x509svid_ca_free(ca);
    return code_of(err, LY_ERR_INTERNAL);
}

int64_t x509svid_ca_not_after(const struct x509svid_ca *ca)
{
    return ca->not_after;
}

const uint8_t *x509svid_ca_cert(const struct x509svid_ca *ca, size_t *len)
{
    *len = ca->cert_len;
    return ca->cert;
}

/* A DNS SAN lanyard will issue: LDH labels separated by dots, optional leading "*." label. */
static int dns_name_ok(const char *s)
{
    size_t len = strlen(s);
    size_t i;

    if (len == 0 || len > X509SVID_DNS_MAX_LEN || s[0] == '.' || s[len - 1] == '.') {
        return 0;
    }
    if (len > 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        len -= 2;
    }
    for (i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || (c == '.' && i > 0 && s[i - 1] != '.');

        if (!ok) {
            return 0;
        }
    }
    return 1;
}

int x509svid_mint(struct x509svid_ca *ca, const struct spiffeid *id, const uint8_t *spki,
                  size_t spki_len, const char *const *dns, size_t n_dns, int64_t now, int64_t ttl,
                  struct ly_buf *cert_der, struct ly_error *err)
{
    struct x509svid_tmpl t;
    const char *uri;
    char when[32];
    size_t i;

    ly_error_clear(err);
    ly_buf_init(cert_der, X509SVID_MAX_CERT_DER);
    if (ca == NULL || id == NULL) {
        return fail(err, LY_ERR_USAGE, X509SVID_R_BAD_REQUEST, "mint request without CA or ID");
    }
    /* X509-4: a leaf's SPIFFE ID has a path; the root ID names the trust domain itself. */
    if (spiffeid_is_root(id)) {
        return ly_error_setx(err, LY_ERR_USAGE, X509SVID_R_BAD_REQUEST,
                             "cannot mint an X509-SVID for '%s': a leaf's SPIFFE ID needs a path",
                             id->str);
    }
    if (ca->has_td && !spiffeid_member_of(id, ca->td)) {
        return ly_error_setx(err, LY_ERR_USAGE, X509SVID_R_BAD_REQUEST,
                             "'%s' is not in this CA's trust domain '%s'", id->str, ca->td);
    }
    if (ttl <= 0 || now > INT64_MAX - ttl) {
        return ly_error_setx(err, LY_ERR_USAGE, X509SVID_R_BAD_TTL,
                             "SVID lifetime must be positive (got %lld s)", (long long)ttl);
    }
    if (n_dns > X509SVID_MAX_DNS || (n_dns > 0 && dns == NULL)) {
        return ly_error_setx(err, LY_ERR_USAGE, X509SVID_R_BAD_REQUEST,
                             "at most %d DNS names per SVID", X509SVID_MAX_DNS);
    }
    for (i = 0; i < n_dns; i++) {
        if (dns[i] == NULL || !dns_name_ok(dns[i])) {
            return ly_error_setx(err, LY_ERR_USAGE, X509SVID_R_BAD_REQUEST,
                                 "DNS name #%zu is not a valid host name", i + 1);
        }
    }
    if (now >= ca->not_after) {
        fmt_time(ca->not_after, when, sizeof(when));
        return ly_error_setx(err, LY_ERR_USAGE, X509SVID_R_BAD_CA, "the CA expired at %s", when);
    }
    uri = id->str;
    memset(&t, 0, sizeof(t));
    t.spki = spki;
    t.spki_len = spki_len;
    t.subject_o = "lanyard";
    t.uris = &uri;
    t.n_uris = 1;
    t.dns = dns;
    t.n_dns = n_dns;
    t.bc = X509SVID_BC_LEAF;
    t.bc_critical = 1;
    t.path_len = -1;
    t.key_usage = X509SVID_KU_DIGITAL_SIGNATURE;
    t.ku_critical = 1;
    t.eku_tls = 1;
    t.not_before = now - X509SVID_LEAF_BACKDATE;
    /* A leaf never outlives its CA: clamp notAfter (RFC 5280 §6 would reject it later anyway). */
    t.not_after = now + ttl;
    if (t.not_after > ca->not_after) {
        t.not_after = ca->not_after;
    }
    return x509svid_build(&t, ca, NULL, cert_der, err);
}

/* ---- CSR ---------------------------------------------------------------------------------- */

int x509svid_csr_public_key(const uint8_t *csr, size_t len, struct ly_buf *spki,
                            struct ly_error *err)
{
    DerBuffer *der = NULL;
    EncryptedInfo info;
    DecodedCert dc;
    const uint8_t *body = csr;
    size_t body_len = len;
    uint8_t raw[1024];
    word32 raw_len = sizeof(raw);
    uint8_t pub[SVID_KEY_PUB_MAX];
    uint8_t canon[SVID_KEY_SPKI_MAX];
    size_t publen = 0, canon_len = 0;
    enum svid_key_type type;
    int decoded = 0;
    int rc;

    ly_error_clear(err);
    ly_buf_init(spki, SVID_KEY_SPKI_MAX);
    memset(&info, 0, sizeof(info));
    if (csr == NULL || len == 0 || len > X509SVID_MAX_CERT_DER * 2) {
        return fail(err, LY_ERR_PARSE, X509SVID_R_BAD_CSR, "CSR is empty or too large");
    }
    if (ly_text_is_pem(csr, len)) {
        if (wc_PemToDer(csr, (long)len, CERTREQ_TYPE, &der, NULL, &info, NULL) != 0 ||
            der == NULL) {
            rc = fail(err, LY_ERR_PARSE, X509SVID_R_BAD_CSR,
                      "no CERTIFICATE REQUEST PEM block found");
            goto err;
        }
        body = der->buffer;
        body_len = der->length;
    }
    /* wolfSSL checks the CSR's signature with the CSR's own key (PKCS#10 proof of possession). */
    wc_InitDecodedCert(&dc, body, (word32)body_len, NULL);
    decoded = 1;
    rc = wc_ParseCert(&dc, CERTREQ_TYPE, VERIFY, NULL);
    if (rc == ASN_SIG_CONFIRM_E || rc == SIG_VERIFY_E || rc == ASN_SIG_KEY_E ||
        rc == ASN_SIG_HASH_E || rc == ASN_SIG_OID_E) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_CSR_SIGNATURE,
                           "CSR signature does not verify with its own public key");
        goto err;
    }
    if (rc != 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_BAD_CSR,
                           "not a PKCS#10 certificate request (wolfSSL %d)", rc);
        goto err;
    }
    if (dc.keyOID != ECDSAk && dc.keyOID != ED25519k) {
        rc = fail(err, LY_ERR_PARSE, X509SVID_R_BAD_PUBLIC_KEY,
                  "CSR key is not EC P-256 or Ed25519 (lanyard accepts these two only)");
        goto err;
    }
    if (decoded_spki(&dc, raw, &raw_len) != 0) {
        rc = fail(err, LY_ERR_PARSE, X509SVID_R_BAD_CSR, "CSR public key unreadable");
        goto err;
    }
    if (svid_key_spki_decode(raw, raw_len, &type, pub, &publen, canon, &canon_len, err) != 0) {
        if (err != NULL) {
            err->reason = X509SVID_R_BAD_PUBLIC_KEY;
        }
        rc = code_of(err, LY_ERR_PARSE);
        goto err;
    }
    rc = ly_buf_append(spki, canon, canon_len, err);
err:
    if (decoded) {
        wc_FreeDecodedCert(&dc);
    }
    wc_FreeDer(&der);
    return rc;
}

/* ---- chains ------------------------------------------------------------------------------- */

int x509svid_chain_new(struct x509svid_chain **out, struct ly_error *err)
{
    ly_error_clear(err);
    *out = calloc(1, sizeof(**out));
    if (*out == NULL) {
        return fail(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    return 0;
}

void x509svid_chain_free(struct x509svid_chain *chain)
{
    size_t i;

    if (chain == NULL) {
        return;
    }
    for (i = 0; i < chain->n; i++) {
        free(chain->certs[i].der);
        chain->certs[i].der = NULL;
    }
    free(chain);
}

size_t x509svid_chain_count(const struct x509svid_chain *chain)
{
    return chain != NULL ? chain->n : 0;
}

const uint8_t *x509svid_chain_cert(const struct x509svid_chain *chain, size_t i, size_t *len)
{
    if (chain == NULL || i >= chain->n) {
        return NULL;
    }
    *len = chain->certs[i].len;
    return chain->certs[i].der;
}

/* Append without clearing err (shared by chain_add and chain_parse). */
static int chain_push(struct x509svid_chain *chain, const uint8_t *der, size_t len,
                      struct ly_error *err)
{
    DecodedCert dc;
    int rc;

    if (chain->n >= X509SVID_MAX_CERTS) {
        return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_TOO_MANY,
                             "more than %d certificates in the chain", X509SVID_MAX_CERTS);
    }
    if (len == 0 || len > X509SVID_MAX_CERT_DER) {
        return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_TOO_BIG,
                             "certificate #%zu is empty or larger than %u bytes", chain->n + 1,
                             X509SVID_MAX_CERT_DER);
    }
    rc = decode(&dc, der, len, NO_VERIFY, NULL);
    wc_FreeDecodedCert(&dc);
    if (rc != 0) {
        return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                             "certificate #%zu is not a valid X.509 certificate (wolfSSL %d)",
                             chain->n + 1, rc);
    }
    chain->certs[chain->n].der = malloc(len);
    if (chain->certs[chain->n].der == NULL) {
        return fail(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    memcpy(chain->certs[chain->n].der, der, len);
    chain->certs[chain->n].len = len;
    chain->n++;
    return 0;
}

int x509svid_chain_add(struct x509svid_chain *chain, const uint8_t *der, size_t len,
                       struct ly_error *err)
{
    ly_error_clear(err);
    return chain_push(chain, der, len, err);
}

/*
 * Split concatenated DER certificates. wolfSSL's certificate parser stops at the end of the
 * first certificate and reports where (srcIdx). (wolfSSL_d2i_X509 is not used: in 5.5.4 it
 * refuses certificates with Ed25519 subject keys signed by ECDSA, which lanyard issues.)
 */
static int chain_parse_der(struct x509svid_chain *chain, const uint8_t *data, size_t len,
                           struct ly_error *err)
{
    size_t off = 0;

    while (off < len) {
        DecodedCert dc;
        size_t left = len - off;
        size_t used;
        int rc;

        if (chain->n >= X509SVID_MAX_CERTS) {
            return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_TOO_MANY,
                                 "more than %d certificates in the chain", X509SVID_MAX_CERTS);
        }
        if (left > X509SVID_MAX_CERT_DER) {
            left = X509SVID_MAX_CERT_DER; /* a longer first certificate fails to parse below */
        }
        rc = decode(&dc, data + off, left, NO_VERIFY, NULL);
        used = dc.srcIdx;
        wc_FreeDecodedCert(&dc);
        if (rc != 0 || used == 0 || used > left) {
            return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                                 "certificate #%zu is not a valid DER X.509 certificate",
                                 chain->n + 1);
        }
        rc = chain_push(chain, data + off, used, err);
        if (rc != 0) {
            return rc;
        }
        off += used;
    }
    return 0;
}

static int chain_parse_pem(struct x509svid_chain *chain, const uint8_t *data, size_t len,
                           struct ly_error *err)
{
    size_t off = 0;

    while (off < len) {
        DerBuffer *der = NULL;
        EncryptedInfo info;
        int rc;

        memset(&info, 0, sizeof(info));
        rc = wc_PemToDer(data + off, (long)(len - off), CERT_TYPE, &der, NULL, &info, NULL);
        if (rc == ASN_NO_PEM_HEADER) {
            wc_FreeDer(&der);
            break; /* no further CERTIFICATE block: the rest is other blocks or text */
        }
        if (rc != 0 || der == NULL || info.consumed <= 0 ||
            (size_t)info.consumed > len - off) {
            wc_FreeDer(&der);
            return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                                 "CERTIFICATE block #%zu is not valid PEM", chain->n + 1);
        }
        off += (size_t)info.consumed;
        rc = chain_push(chain, der->buffer, der->length, err);
        wc_FreeDer(&der);
        if (rc != 0) {
            return rc;
        }
    }
    if (chain->n == 0) {
        return fail(err, LY_ERR_PARSE, X509SVID_R_NO_CERTS, "no CERTIFICATE PEM block found");
    }
    return 0;
}

int x509svid_chain_parse(const uint8_t *data, size_t len, struct x509svid_chain **out,
                         struct ly_error *err)
{
    struct x509svid_chain *chain = NULL;
    int rc;

    ly_error_clear(err);
    *out = NULL;
    if (data == NULL || len == 0) {
        return fail(err, LY_ERR_PARSE, X509SVID_R_NO_CERTS, "no certificates (empty input)");
    }
    if (len > X509SVID_MAX_INPUT) {
        return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_TOO_BIG,
                             "certificate input larger than %u bytes", X509SVID_MAX_INPUT);
    }
    chain = calloc(1, sizeof(*chain));
    if (chain == NULL) {
        return fail(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (ly_text_is_pem(data, len)) {
        rc = chain_parse_pem(chain, data, len, err);
    } else if (data[0] == 0x30) {
        rc = chain_parse_der(chain, data, len, err);
    } else {
        rc = fail(err, LY_ERR_PARSE, X509SVID_R_NOT_PEM,
                  "input is neither PEM nor DER certificates");
    }
    if (rc != 0) {
        goto err;
    }
    *out = chain;
    return 0;
err:
    x509svid_chain_free(chain);
    return rc;
}

/* ---- the X509-SVID rules ------------------------------------------------------------------ */

/* X509-1/2/4 and RFC 5280 §4.2.1.6 on the leaf's SANs, then X509-9/12 on its constraints. */
static int check_leaf(const DecodedCert *dc, struct spiffeid *id, struct ly_error *err)
{
    const DNS_entry *e;
    const DNS_entry *uri = NULL;
    struct ly_error perr;
    char shown[96];
    int n_uri = 0;

    for (e = dc->altNames; e != NULL; e = e->next) {
        /* libtls: a NUL inside a name means the certificate is probably malicious. */
        if (e->name == NULL || e->len < 0 || strlen(e->name) != (size_t)e->len) {
            return fail(err, LY_ERR_VERIFY, X509SVID_R_EMBEDDED_NUL,
                        "certificate has a SAN with an embedded NUL byte (hostile certificate)");
        }
        if (e->type == ASN_URI_TYPE) {
            uri = e;
            n_uri++;
        }
    }
    if (n_uri == 0) {
        return fail(err, LY_ERR_VERIFY, X509SVID_R_NO_URI_SAN,
                    "certificate has no URI SAN; an X509-SVID has exactly one");
    }
    if (n_uri > 1) {
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_MULTIPLE_URI_SANS,
                             "certificate has %d URI SANs; an X509-SVID has exactly one", n_uri);
    }
    ly_error_clear(&perr);
    if (spiffeid_parse(uri->name, (size_t)uri->len, id, &perr) != 0) {
        safe_text(uri->name, (size_t)uri->len, shown, sizeof(shown));
        if (perr.reason == SPIFFEID_R_WRONG_SCHEME) {
            return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_NOT_SPIFFE,
                                 "URI SAN '%s' is not a spiffe:// ID", shown);
        }
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_BAD_SPIFFE_ID,
                             "URI SAN is not a valid SPIFFE ID: %s", perr.msg);
    }
    if (spiffeid_is_root(id)) {
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_ROOT_PATH,
                             "leaf SPIFFE ID '%s' has no path (it names the trust domain)",
                             id->str);
    }
    if (dc->isCA) {
        return fail(err, LY_ERR_VERIFY, X509SVID_R_LEAF_IS_CA,
                    "leaf certificate is a CA (cA=TRUE)");
    }
    if (!dc->extKeyUsageSet || (dc->extKeyUsage & KEYUSE_DIGITAL_SIG) == 0) {
        return fail(err, LY_ERR_VERIFY, X509SVID_R_LEAF_NO_DIGITAL_SIG,
                    "leaf certificate lacks keyUsage digitalSignature");
    }
    if (dc->extKeyUsage & KEYUSE_KEY_CERT_SIGN) {
        return fail(err, LY_ERR_VERIFY, X509SVID_R_LEAF_KEY_CERT_SIGN,
                    "leaf certificate has keyUsage keyCertSign");
    }
    if (dc->extKeyUsage & KEYUSE_CRL_SIGN) {
        return fail(err, LY_ERR_VERIFY, X509SVID_R_LEAF_CRL_SIGN,
                    "leaf certificate has keyUsage cRLSign");
    }
    return 0;
}

/* X509-7: a signing certificate is a CA with keyCertSign. idx is 1-based for messages. */
static int check_signer(const DecodedCert *dc, size_t idx, struct ly_error *err)
{
    if (!dc->isCA) {
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_SIGNER_NOT_CA,
                             "certificate #%zu of the chain is a signing certificate without "
                             "cA=TRUE",
                             idx);
    }
    if (!dc->extKeyUsageSet || (dc->extKeyUsage & KEYUSE_KEY_CERT_SIGN) == 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_SIGNER_NO_KEY_CERT_SIGN,
                             "certificate #%zu of the chain is a signing certificate without "
                             "keyUsage keyCertSign",
                             idx);
    }
    return 0;
}

/* RFC 5280 §6.1.3 (a)(2): the validity period must include the verification time. */
static int check_time(const DecodedCert *dc, const char *what, int64_t at, struct ly_error *err)
{
    int64_t nb, na;
    char t1[32], t2[32];

    if (decoded_time(dc->beforeDate, dc->beforeDateLen, &nb) != 0 ||
        decoded_time(dc->afterDate, dc->afterDateLen, &na) != 0) {
        return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                             "%s has an unreadable validity period", what);
    }
    fmt_time(at, t2, sizeof(t2));
    if (at > na) {
        fmt_time(na, t1, sizeof(t1));
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_EXPIRED,
                             "%s expired at %s (verification time %s)", what, t1, t2);
    }
    if (at < nb) {
        fmt_time(nb, t1, sizeof(t1));
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_NOT_YET_VALID,
                             "%s is not yet valid: its validity starts at %s "
                             "(verification time %s)",
                             what, t1, t2);
    }
    return 0;
}

/* Leaf rules on certificate 0, signer rules on the rest; no signatures, no time. */
static int check_all_structure(const struct x509svid_chain *chain, struct spiffeid *id,
                               struct ly_error *err)
{
    DecodedCert dc;
    size_t i;
    int rc;

    if (chain == NULL || chain->n == 0) {
        return fail(err, LY_ERR_PARSE, X509SVID_R_NO_CERTS, "no certificates in the chain");
    }
    for (i = 0; i < chain->n; i++) {
        rc = decode(&dc, chain->certs[i].der, chain->certs[i].len, NO_VERIFY, NULL);
        if (rc != 0) {
            wc_FreeDecodedCert(&dc);
            return ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                                 "certificate #%zu does not parse (wolfSSL %d)", i + 1, rc);
        }
        rc = i == 0 ? check_leaf(&dc, id, err) : check_signer(&dc, i + 1, err);
        wc_FreeDecodedCert(&dc);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int x509svid_check_structure(const struct x509svid_chain *chain, struct spiffeid *id,
                             struct ly_error *err)
{
    struct spiffeid tmp;
    int rc;

    ly_error_clear(err);
    rc = check_all_structure(chain, &tmp, err);
    if (rc != 0) {
        return rc;
    }
    *id = tmp;
    return 0;
}

/* ---- path validation ---------------------------------------------------------------------- */

static int is_signature_error(int rc)
{
    return rc == ASN_SIG_CONFIRM_E || rc == SIG_VERIFY_E || rc == ASN_SIG_KEY_E ||
           rc == ASN_SIG_HASH_E || rc == ASN_SIG_OID_E;
}

/*
 * RFC 5280 path validation of `chain` against the authorities of bundle b at time `at`. A fresh
 * certificate manager holds only b's authorities that are CAs valid at `at`; a chain
 * certificate joins it only after its own signature verifies against what is already there,
 * so a peer-supplied certificate never becomes an anchor by itself. wolfSSL checks signatures,
 * issuer names/key IDs, pathLenConstraint and critical extensions (VERIFY_SKIP_DATE); lanyard
 * checks every validity period against `at`, since wolfSSL would use the current clock.
 */
static int path_validate(const struct x509svid_chain *chain, const struct bundle *b, int64_t at,
                         struct ly_error *err)
{
    WOLFSSL_CERT_MANAGER *cm = NULL;
    DecodedCert dc;
    int added[X509SVID_MAX_CERTS];
    int why[X509SVID_MAX_CERTS]; /* wolfSSL's last refusal of each intermediate not added */
    size_t i, n_auth, loaded = 0, stale = 0;
    const char *td = bundle_trust_domain(b);
    char what[64];
    int progress;
    int rc = LY_ERR_VERIFY;

    memset(added, 0, sizeof(added));
    memset(why, 0, sizeof(why));
    n_auth = bundle_x509_count(b);
    cm = wolfSSL_CertManagerNew();
    if (cm == NULL) {
        return fail(err, LY_ERR_NOMEM, 0, "cannot create a certificate manager");
    }
    for (i = 0; i < n_auth; i++) {
        size_t alen = 0;
        const uint8_t *a = bundle_x509_authority(b, i, &alen);
        int ok;

        if (a == NULL || alen == 0 || alen > X509SVID_MAX_CERT_DER) {
            continue;
        }
        ok = decode(&dc, a, alen, NO_VERIFY, NULL) == 0 && dc.isCA &&
             check_time(&dc, "authority", at, NULL) == 0;
        if (!ok) {
            stale++;
        }
        wc_FreeDecodedCert(&dc);
        if (ok && wolfSSL_CertManagerLoadCABuffer(cm, a, (long)alen, WOLFSSL_FILETYPE_ASN1) ==
                      WOLFSSL_SUCCESS) {
            loaded++;
        }
    }
    if (loaded == 0) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_UNKNOWN_AUTHORITY,
                           "no authority of trust domain '%s' is usable (%zu not a CA or not "
                           "valid at the verification time)",
                           td, stale);
        goto err;
    }
    /* Intermediates, in any order: each joins only once it verifies (at most n passes). */
    do {
        progress = 0;
        for (i = 1; i < chain->n; i++) {
            int prc;

            if (added[i]) {
                continue;
            }
            prc = decode(&dc, chain->certs[i].der, chain->certs[i].len, VERIFY_SKIP_DATE, cm);
            if (prc == 0) {
                (void)snprintf(what, sizeof(what), "intermediate certificate #%zu", i + 1);
                rc = check_time(&dc, what, at, err);
                if (rc == 0) {
                    rc = check_signer(&dc, i + 1, err);
                }
            } else if (is_signature_error(prc)) {
                rc = ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_BAD_SIGNATURE,
                                   "signature of certificate #%zu does not verify", i + 1);
            }
            wc_FreeDecodedCert(&dc);
            if (prc == 0 && rc != 0) {
                goto err;
            }
            if (prc != 0) {
                if (is_signature_error(prc)) {
                    goto err;
                }
                why[i] = prc;
                continue; /* its issuer may join in a later pass */
            }
            if (wolfSSL_CertManagerLoadCABuffer(cm, chain->certs[i].der,
                                                (long)chain->certs[i].len,
                                                WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
                rc = ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_PATH_INVALID,
                                   "intermediate certificate #%zu cannot act as an issuer", i + 1);
                goto err;
            }
            added[i] = 1;
            progress = 1;
        }
    } while (progress);
    rc = decode(&dc, chain->certs[0].der, chain->certs[0].len, VERIFY_SKIP_DATE, cm);
    if (rc == ASN_NO_SIGNER_E) {
        /* An intermediate that has an issuer but was refused (pathLenConstraint, a critical
         * extension...) explains the failure better than "unknown authority". */
        for (i = 1; i < chain->n; i++) {
            if (!added[i] && why[i] != 0 && why[i] != ASN_NO_SIGNER_E) {
                rc = ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_PATH_INVALID,
                                   "intermediate certificate #%zu cannot be on the path: %s "
                                   "(wolfSSL %d)",
                                   i + 1, wc_GetErrorString(why[i]), why[i]);
                break;
            }
        }
        if (rc == ASN_NO_SIGNER_E) {
            rc = ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_UNKNOWN_AUTHORITY,
                               "chain does not lead to an authority of trust domain '%s'", td);
        }
    } else if (is_signature_error(rc)) {
        rc = fail(err, LY_ERR_VERIFY, X509SVID_R_BAD_SIGNATURE,
                  "signature of the leaf certificate does not verify");
    } else if (rc != 0) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_PATH_INVALID,
                           "certificate path is invalid: %s (wolfSSL %d)", wc_GetErrorString(rc),
                           rc);
    } else {
        rc = check_time(&dc, "leaf certificate", at, err);
    }
    wc_FreeDecodedCert(&dc);
err:
    wolfSSL_CertManagerFree(cm);
    return rc;
}

int x509svid_verify(const struct x509svid_chain *chain, const struct bundle_set *set, int64_t at,
                    struct spiffeid *id, struct ly_error *err)
{
    struct spiffeid leaf_id;
    const struct bundle *b;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    int rc = LY_ERR_VERIFY; /* start at reject; only the end of this function accepts */

    ly_error_clear(err);
    if (set == NULL) {
        return fail(err, LY_ERR_USAGE, X509SVID_R_NO_BUNDLE, "no bundle set to verify against");
    }
    rc = check_all_structure(chain, &leaf_id, err);
    if (rc != 0) {
        return rc;
    }
    if (spiffeid_td_copy(&leaf_id, td, sizeof(td)) != 0) {
        return fail(err, LY_ERR_INTERNAL, 0, "trust domain does not fit");
    }
    /* BUNDLE-1: the leaf's own trust domain picks the anchors, never the chain's issuers. */
    b = bundle_set_get(set, td);
    if (b == NULL) {
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_NO_BUNDLE,
                             "no trust bundle for trust domain '%s'", td);
    }
    if (bundle_x509_count(b) == 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_EMPTY_BUNDLE,
                             "empty bundle: trust domain '%s' has no X.509 authority", td);
    }
    {
        /* The leaf's own validity first: it names the real problem when every certificate
         * (anchors included) is outside its period at `at`. */
        DecodedCert dc;
        int drc = decode(&dc, chain->certs[0].der, chain->certs[0].len, NO_VERIFY, NULL);

        rc = drc == 0 ? check_time(&dc, "leaf certificate", at, err)
                      : fail(err, LY_ERR_PARSE, X509SVID_R_CORRUPT, "leaf certificate does not "
                                                                    "parse");
        wc_FreeDecodedCert(&dc);
        if (rc != 0) {
            return rc;
        }
    }
    rc = path_validate(chain, b, at, err);
    if (rc != 0 && err != NULL && err->reason == X509SVID_R_UNKNOWN_AUTHORITY) {
        /* Diagnosis only: does the chain lead to another domain's authority instead? */
        size_t i, n = bundle_set_count(set);

        for (i = 0; i < n && i < DIAG_MAX_BUNDLES; i++) {
            const struct bundle *o = bundle_set_at(set, i);

            if (o == NULL || o == b || bundle_x509_count(o) == 0) {
                continue;
            }
            if (path_validate(chain, o, at, NULL) == 0) {
                ly_error_clear(err);
                return ly_error_setx(err, LY_ERR_VERIFY, X509SVID_R_WRONG_TRUST_DOMAIN,
                                     "leaf claims trust domain '%s' but its chain leads to an "
                                     "authority of trust domain '%s'",
                                     td, bundle_trust_domain(o));
            }
        }
    }
    if (rc != 0) {
        return rc;
    }
    *id = leaf_id;
    return 0;
}

/* ---- prepared anchors --------------------------------------------------------------------- */

#define ANCHORS_SEEN_MAX 512 /* verified leaves remembered per anchors object */

struct anchor_td {
    const struct bundle *b;   /* borrowed from the set */
    WOLFSSL_CERT_MANAGER *cm; /* every CA authority of b; NULL: no fast path for this domain */
    int64_t from, until;      /* every CA authority of b is valid within [from, until] */
    uint8_t signer_ok[BUNDLE_MAX_AUTHORITIES]; /* authority i passes check_signer() */
};

struct x509svid_anchors {
    const struct bundle_set *set; /* borrowed */
    struct anchor_td *tds;
    size_t n;
    pthread_mutex_t mu; /* guards the fields below */
    uint8_t seen[ANCHORS_SEEN_MAX][WC_SHA256_DIGEST_SIZE];
    size_t n_seen, next_seen;
    uint64_t hits;
};

/*
 * Load every CA authority of b into one certificate manager, as path_validate() would when all
 * of them are valid at the verification time. Anything unusual (an unreadable validity, a CA
 * wolfSSL will not load, no CA at all) leaves cm NULL: that domain always takes the slow path.
 */
static void anchor_td_prepare(struct anchor_td *t)
{
    size_t i, n = bundle_x509_count(t->b), loaded = 0;
    DecodedCert dc;

    t->from = INT64_MIN;
    t->until = INT64_MAX;
    t->cm = wolfSSL_CertManagerNew();
    if (t->cm == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        size_t alen = 0;
        const uint8_t *der = bundle_x509_authority(t->b, i, &alen);
        int64_t nb = 0, na = 0;
        int ca, readable;

        if (der == NULL || alen == 0 || alen > X509SVID_MAX_CERT_DER) {
            continue; /* path_validate skips these too */
        }
        ca = decode(&dc, der, alen, NO_VERIFY, NULL) == 0 && dc.isCA;
        readable = ca && decoded_time(dc.beforeDate, dc.beforeDateLen, &nb) == 0 &&
                   decoded_time(dc.afterDate, dc.afterDateLen, &na) == 0;
        wc_FreeDecodedCert(&dc);
        if (!ca) {
            continue; /* never an anchor, in either path */
        }
        if (!readable || wolfSSL_CertManagerLoadCABuffer(t->cm, der, (long)alen,
                                                         WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
            break;
        }
        if (i < BUNDLE_MAX_AUTHORITIES) {
            struct ly_error ignore;

            ly_error_clear(&ignore);
            (void)decode(&dc, der, alen, NO_VERIFY, NULL);
            t->signer_ok[i] = check_signer(&dc, 1, &ignore) == 0;
            wc_FreeDecodedCert(&dc);
        }
        t->from = nb > t->from ? nb : t->from;
        t->until = na < t->until ? na : t->until;
        loaded++;
    }
    if (i < n || loaded == 0 || t->from > t->until) {
        wolfSSL_CertManagerFree(t->cm);
        t->cm = NULL;
    }
}

int x509svid_anchors_new(const struct bundle_set *set, struct x509svid_anchors **out,
                         struct ly_error *err)
{
    struct x509svid_anchors *a;
    size_t i;

    ly_error_clear(err);
    *out = NULL;
    if (set == NULL) {
        return fail(err, LY_ERR_USAGE, X509SVID_R_NO_BUNDLE, "no bundle set to verify against");
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return fail(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    a->set = set;
    a->n = bundle_set_count(set);
    a->tds = a->n > 0 ? calloc(a->n, sizeof(*a->tds)) : NULL;
    if ((a->n > 0 && a->tds == NULL) || pthread_mutex_init(&a->mu, NULL) != 0) {
        free(a->tds);
        free(a);
        return fail(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    for (i = 0; i < a->n; i++) {
        a->tds[i].b = bundle_set_at(set, i);
        if (a->tds[i].b != NULL) {
            anchor_td_prepare(&a->tds[i]);
        }
    }
    *out = a;
    return 0;
}

void x509svid_anchors_free(struct x509svid_anchors *a)
{
    size_t i;

    if (a == NULL) {
        return;
    }
    for (i = 0; i < a->n; i++) {
        wolfSSL_CertManagerFree(a->tds[i].cm);
    }
    free(a->tds);
    (void)pthread_mutex_destroy(&a->mu);
    free(a);
}

uint64_t x509svid_anchors_cache_hits(struct x509svid_anchors *a)
{
    uint64_t n;

    pthread_mutex_lock(&a->mu);
    n = a->hits;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static int anchors_seen(struct x509svid_anchors *a, const uint8_t *digest)
{
    size_t i;
    int found = 0;

    pthread_mutex_lock(&a->mu);
    for (i = 0; i < a->n_seen && !found; i++) {
        found = memcmp(a->seen[i], digest, WC_SHA256_DIGEST_SIZE) == 0;
    }
    a->hits += (uint64_t)found;
    pthread_mutex_unlock(&a->mu);
    return found;
}

static void anchors_remember(struct x509svid_anchors *a, const uint8_t *digest)
{
    pthread_mutex_lock(&a->mu);
    memcpy(a->seen[a->next_seen], digest, WC_SHA256_DIGEST_SIZE);
    a->next_seen = (a->next_seen + 1) % ANCHORS_SEEN_MAX;
    if (a->n_seen < ANCHORS_SEEN_MAX) {
        a->n_seen++;
    }
    pthread_mutex_unlock(&a->mu);
}

/*
 * 1 when certificate i (> 0) of the chain is, byte for byte, an authority of t that passes the
 * signer rules: what a client sends when it appends its CA to its chain (OpenSSL does so by
 * default). path_validate() would verify it against itself and add nothing, so the leaf alone
 * decides.
 */
static int is_own_authority(const struct anchor_td *t, const struct x509svid_chain *chain,
                            size_t i)
{
    size_t k, n = bundle_x509_count(t->b);

    for (k = 0; k < n && k < BUNDLE_MAX_AUTHORITIES; k++) {
        size_t alen = 0;
        const uint8_t *der = bundle_x509_authority(t->b, k, &alen);

        if (t->signer_ok[k] && der != NULL && alen == chain->certs[i].len &&
            memcmp(der, chain->certs[i].der, alen) == 0) {
            return 1;
        }
    }
    return 0;
}

int x509svid_verify_anchored(const struct x509svid_chain *chain, struct x509svid_anchors *a,
                             int64_t at, struct spiffeid *id, struct ly_error *err)
{
    const struct anchor_td *t = NULL;
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    struct spiffeid leaf_id;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    DecodedCert dc;
    size_t i;
    int ok;

    ly_error_clear(err);
    if (a == NULL) {
        return fail(err, LY_ERR_USAGE, X509SVID_R_NO_BUNDLE, "no bundle set to verify against");
    }
    if (chain == NULL || chain->n == 0) {
        return x509svid_verify(chain, a->set, at, id, err);
    }
    /* The leaf rules and its validity, on one parse. */
    ok = decode(&dc, chain->certs[0].der, chain->certs[0].len, NO_VERIFY, NULL) == 0 &&
         check_leaf(&dc, &leaf_id, NULL) == 0 && check_time(&dc, "leaf", at, NULL) == 0 &&
         spiffeid_td_copy(&leaf_id, td, sizeof(td)) == 0;
    wc_FreeDecodedCert(&dc);
    for (i = 0; ok && i < a->n && t == NULL; i++) {
        if (a->tds[i].b != NULL && strcmp(bundle_trust_domain(a->tds[i].b), td) == 0) {
            t = &a->tds[i];
        }
    }
    /* BUNDLE-1 and RFC 5280 §6.1.3: the leaf's own domain, every anchor valid at `at`. */
    if (t == NULL || t->cm == NULL || at < t->from || at > t->until) {
        return x509svid_verify(chain, a->set, at, id, err);
    }
    for (i = 1; i < chain->n; i++) {
        if (!is_own_authority(t, chain, i)) {
            return x509svid_verify(chain, a->set, at, id, err); /* real intermediates */
        }
    }
    if (wc_Sha256Hash(chain->certs[0].der, (word32)chain->certs[0].len, digest) != 0) {
        return x509svid_verify(chain, a->set, at, id, err);
    }
    if (!anchors_seen(a, digest)) {
        ok = decode(&dc, chain->certs[0].der, chain->certs[0].len, VERIFY_SKIP_DATE, t->cm) == 0;
        wc_FreeDecodedCert(&dc);
        if (!ok) {
            return x509svid_verify(chain, a->set, at, id, err);
        }
        anchors_remember(a, digest);
    }
    *id = leaf_id;
    return 0;
}

/* ---- info --------------------------------------------------------------------------------- */

int x509svid_cert_info(const uint8_t *der, size_t len, struct x509svid_info *info,
                       struct ly_error *err)
{
    DecodedCert dc;
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    int rc;

    ly_error_clear(err);
    memset(info, 0, sizeof(*info));
    if (der == NULL || len == 0 || len > X509SVID_MAX_CERT_DER) {
        return fail(err, LY_ERR_PARSE, X509SVID_R_TOO_BIG, "certificate is empty or too large");
    }
    rc = decode(&dc, der, len, NO_VERIFY, NULL);
    if (rc != 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                           "not a valid X.509 certificate (wolfSSL %d)", rc);
        goto out;
    }
    if (dc.serialSz <= 0 || dc.serialSz > 20 ||
        decoded_time(dc.beforeDate, dc.beforeDateLen, &info->not_before) != 0 ||
        decoded_time(dc.afterDate, dc.afterDateLen, &info->not_after) != 0 ||
        wc_Sha256Hash(der, (word32)len, digest) != 0) {
        rc = fail(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                  "certificate serial or validity unreadable");
        goto out;
    }
    ly_hex_encode(dc.serial, (size_t)dc.serialSz, info->serial_hex);
    ly_hex_encode(digest, sizeof(digest), info->sha256_hex);
    safe_text(dc.subject, strnlen(dc.subject, sizeof(dc.subject)), info->subject,
              sizeof(info->subject));
    info->is_ca = dc.isCA ? 1 : 0;
    info->has_id = decoded_single_id(&dc, &info->id) == 0;
    rc = 0;
out:
    wc_FreeDecodedCert(&dc);
    return rc;
}

int x509svid_cert_public_key(const uint8_t *der, size_t len, struct ly_buf *spki,
                             struct ly_error *err)
{
    DecodedCert dc;
    uint8_t raw[1024];
    word32 raw_len = sizeof(raw);
    int rc;

    ly_error_clear(err);
    ly_buf_init(spki, sizeof(raw));
    if (der == NULL || len == 0 || len > X509SVID_MAX_CERT_DER) {
        return fail(err, LY_ERR_PARSE, X509SVID_R_TOO_BIG, "certificate is empty or too large");
    }
    rc = decode(&dc, der, len, NO_VERIFY, NULL);
    if (rc == 0) {
        rc = decoded_spki(&dc, raw, &raw_len);
    }
    wc_FreeDecodedCert(&dc);
    if (rc != 0) {
        return fail(err, LY_ERR_PARSE, X509SVID_R_CORRUPT,
                    "certificate or its public key does not parse");
    }
    return ly_buf_append(spki, raw, raw_len, err);
}
