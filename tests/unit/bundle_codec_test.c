/*
 * bundle_codec_test: the SPIFFE bundle, JWKS and PEM codecs against every vector in
 * tests/data/vectors/{spiffebundle,jwtbundle,x509bundle}/ (spec outcome where the spec and
 * go-spiffe differ), write/parse round trips with CA certificates made here, and malformed input.
 * A missing vector file is a failure, never a skip.
 */
#include <wolfssl/options.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include "../../common/ly_b64.h"
#include "../../trust-bundles/bundle_codec.h"

#define TD "example.org"

/* ---- helpers ---------------------------------------------------------------------------- */

static uint8_t *read_vector(const char *rel, size_t *len)
{
    const char *root = getenv("LANYARD_ROOT");
    char path[4096];
    FILE *f;
    uint8_t *data;
    long n;

    if (root == NULL || root[0] == '\0') {
        root = ".";
    }
    if (snprintf(path, sizeof(path), "%s/tests/data/vectors/%s", root, rel) >= (int)sizeof(path)) {
        fail_msg("path too long");
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("missing vector file %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    data = malloc((size_t)n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return data;
}

static json_t *load_expected(const char *rel)
{
    size_t len;
    uint8_t *data = read_vector(rel, &len);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);

    free(data);
    if (doc == NULL) {
        fail_msg("cannot parse %s: %s", rel, jerr.text);
    }
    return doc;
}

static int parse_str(const char *json, struct bundle **b, struct ly_error *err)
{
    return bundle_codec_parse_json(TD, (const uint8_t *)json, strlen(json), b, err);
}

/* Make a self-signed certificate (P-256 or Ed25519), CA or not. Returns DER length. */
static size_t make_cert(int ed25519, int is_ca, const char *cn, uint8_t *der, size_t cap)
{
    Cert cert;
    WC_RNG rng;
    ecc_key ek;
    ed25519_key dk;
    int n;

    assert_int_equal(wc_InitRng(&rng), 0);
    assert_int_equal(wc_InitCert(&cert), 0);
    assert_true(snprintf(cert.subject.commonName, CTC_NAME_SIZE, "%s", cn) > 0);
    assert_true(snprintf(cert.subject.org, CTC_NAME_SIZE, "%s", "lanyard tests") > 0);
    cert.isCA = is_ca;
    cert.selfSigned = 1;
    cert.daysValid = 30;
    assert_int_equal(wc_SetKeyUsage(&cert, is_ca ? "keyCertSign,cRLSign" : "digitalSignature"), 0);
    if (ed25519) {
        cert.sigType = CTC_ED25519;
        assert_int_equal(wc_ed25519_init(&dk), 0);
        assert_int_equal(wc_ed25519_make_key(&rng, ED25519_KEY_SIZE, &dk), 0);
        n = wc_MakeCert_ex(&cert, der, (word32)cap, ED25519_TYPE, &dk, &rng);
        assert_true(n > 0);
        n = wc_SignCert_ex(cert.bodySz, cert.sigType, der, (word32)cap, ED25519_TYPE, &dk, &rng);
        wc_ed25519_free(&dk);
    } else {
        cert.sigType = CTC_SHA256wECDSA;
        assert_int_equal(wc_ecc_init(&ek), 0);
        assert_int_equal(wc_ecc_make_key(&rng, 32, &ek), 0);
        n = wc_MakeCert(&cert, der, (word32)cap, NULL, &ek, &rng);
        assert_true(n > 0);
        n = wc_SignCert(cert.bodySz, cert.sigType, der, (word32)cap, NULL, &ek, &rng);
        wc_ecc_free(&ek);
    }
    assert_true(n > 0);
    wc_FreeRng(&rng);
    return (size_t)n;
}

/* A fresh public key as SPKI DER: 0 = EC P-256, 1 = EC P-384, 2 = RSA 2048, 3 = RSA 1024. */
static size_t make_spki(int kind, uint8_t *der, size_t cap)
{
    WC_RNG rng;
    int n;

    assert_int_equal(wc_InitRng(&rng), 0);
    if (kind <= 1) {
        ecc_key k;
        assert_int_equal(wc_ecc_init(&k), 0);
        assert_int_equal(wc_ecc_make_key(&rng, kind == 0 ? 32 : 48, &k), 0);
        n = wc_EccPublicKeyToDer(&k, der, (word32)cap, 1);
        wc_ecc_free(&k);
    } else {
        RsaKey k;
        assert_int_equal(wc_InitRsaKey(&k, NULL), 0);
        assert_int_equal(wc_MakeRsaKey(&k, kind == 2 ? 2048 : 1024, 65537, &rng), 0);
        n = wc_RsaKeyToPublicDer(&k, der, (word32)cap);
        wc_FreeRsaKey(&k);
    }
    wc_FreeRng(&rng);
    assert_true(n > 0);
    return (size_t)n;
}

static char *b64(const uint8_t *d, size_t n)
{
    struct ly_buf out;
    struct ly_error err = {0};
    size_t len;

    assert_int_equal(ly_b64_encode(d, n, 0, &out, 1 << 20, &err), 0);
    return (char *)ly_buf_steal(&out, &len);
}

/* JSON text of {"keys": [entry]} where entry is the given object (reference stolen). */
static char *doc_with(json_t *entry)
{
    json_t *root = json_pack("{s:[o]}", "keys", entry);
    char *s;

    assert_non_null(root);
    s = json_dumps(root, JSON_COMPACT);
    assert_non_null(s);
    json_decref(root);
    return s;
}

/* An x509-svid entry for a certificate, with the key parameters taken from the certificate. */
static json_t *x509_entry_for(const uint8_t *der, size_t len)
{
    struct bundle *b = NULL;
    struct ly_error err = {0};
    struct ly_buf out;
    json_t *doc;
    json_t *e;

    assert_int_equal(bundle_new(TD, &b, &err), 0);
    assert_int_equal(bundle_add_x509_authority(b, der, len, &err), 0);
    assert_int_equal(bundle_codec_write_json(b, &out, &err), 0);
    doc = json_loadb((const char *)out.data, out.len, 0, NULL);
    assert_non_null(doc);
    e = json_array_get(json_object_get(doc, "keys"), 0);
    json_incref(e);
    json_decref(doc);
    ly_buf_free(&out);
    bundle_free(b);
    return e;
}

/* ---- vectors ---------------------------------------------------------------------------- */

struct spec_outcome {
    const char *file;
    int valid;
    size_t x509;
    size_t jwt;
    int64_t seq; /* -1: absent */
    int64_t hint;
};

/*
 * The SPIFFE-spec outcome of every spiffebundle vector (expected.json "spec_result").
 * spiffebundle_multiple_x509.json: SPEC and go-spiffe DIFFER. X509-SVID §6.2 says to use the
 * first x5c value, so lanyard accepts (1 X.509 CA, 1 JWT key); go-spiffe rejects the bundle.
 * spiffebundle_valid_with_wit.json: the wit-svid entries are an unknown use here (ignored),
 * where go-spiffe counts them as WIT authorities.
 * spiffebundle_missing_kid.json: rejected, as go-spiffe does (the spec allows that choice).
 */
static const struct spec_outcome spiffe_outcomes[] = {
    {"spiffebundle/spiffebundle_valid_1.json", 1, 1, 1, -1, -1},
    {"spiffebundle/spiffebundle_valid_2.json", 1, 1, 6, 1, 60},
    {"spiffebundle/spiffebundle_valid_with_wit.json", 1, 1, 2, 1, 60},
    {"spiffebundle/spiffebundle_missing_kid.json", 0, 0, 0, 0, 0},
    {"spiffebundle/spiffebundle_no_keys.json", 0, 0, 0, 0, 0},
    {"spiffebundle/spiffebundle_multiple_x509.json", 1, 1, 1, -1, -1},
};

static void check_bundle(const struct bundle *b, const struct spec_outcome *o)
{
    uint64_t seq;
    int64_t hint;

    assert_int_equal(bundle_x509_count(b), o->x509);
    assert_int_equal(bundle_jwt_count(b), o->jwt);
    if (o->seq < 0) {
        assert_int_equal(bundle_get_sequence(b, &seq), -1);
    } else {
        assert_int_equal(bundle_get_sequence(b, &seq), 0);
        assert_int_equal(seq, (uint64_t)o->seq);
    }
    if (o->hint < 0) {
        assert_int_equal(bundle_get_refresh_hint(b, &hint), -1);
    } else {
        assert_int_equal(bundle_get_refresh_hint(b, &hint), 0);
        assert_int_equal(hint, o->hint);
    }
}

static void test_spiffebundle_vectors(void **state)
{
    json_t *exp = load_expected("spiffebundle/expected.json");
    json_t *cases = json_object_get(exp, "cases");
    json_t *c;
    size_t i;
    size_t k;

    (void)state;
    assert_int_equal(json_array_size(cases), 6);
    json_array_foreach (cases, i, c) {
        const char *file = json_string_value(json_object_get(c, "file"));
        json_t *go = json_object_get(c, "go_spiffe");
        const struct spec_outcome *o = NULL;
        struct bundle *b = NULL;
        struct ly_error err = {0};
        uint8_t *data;
        size_t len;
        int rc;

        assert_non_null(file);
        for (k = 0; k < sizeof(spiffe_outcomes) / sizeof(spiffe_outcomes[0]); k++) {
            if (strcmp(spiffe_outcomes[k].file, file) == 0) {
                o = &spiffe_outcomes[k];
            }
        }
        if (o == NULL) {
            fail_msg("no spec outcome recorded for vector %s", file);
        }
        data = read_vector(file, &len);
        rc = bundle_codec_parse_json(TD, data, len, &b, &err);
        if (o->valid) {
            if (rc != 0) {
                fail_msg("%s rejected: %s", file, err.msg);
            }
            check_bundle(b, o);
            /* Where go-spiffe also accepts, its JWT count agrees with ours (no WIT support). */
            if (json_is_true(json_object_get(go, "valid"))) {
                assert_int_equal(bundle_jwt_count(b),
                                 json_integer_value(json_object_get(go, "jwt_authorities")));
            }
            bundle_free(b);
            /* parse_auto picks JSON for these. */
            assert_int_equal(bundle_codec_parse_auto(TD, data, len, &b, &err), 0);
            check_bundle(b, o);
            bundle_free(b);
        } else {
            assert_int_equal(rc, LY_ERR_PARSE);
            assert_null(b);
            assert_true(err.msg[0] != '\0');
        }
        free(data);
    }
    json_decref(exp);
}

static void test_spiffebundle_details(void **state)
{
    struct bundle *b = NULL;
    struct ly_error err = {0};
    uint8_t *data;
    size_t len;
    const uint8_t *spki;
    size_t slen;

    (void)state;
    data = read_vector("spiffebundle/spiffebundle_valid_1.json", &len);
    assert_int_equal(bundle_codec_parse_json(TD, data, len, &b, &err), 0);
    assert_string_equal(bundle_jwt_authority(b, 0, &spki, &slen),
                        "C6vs25welZOx6WksNYfbMfiw9l96pMnD");
    assert_true(slen > 0);
    bundle_free(b);
    free(data);

    /* The missing-kid error names entry 1 and the field. */
    data = read_vector("spiffebundle/spiffebundle_missing_kid.json", &len);
    assert_int_equal(bundle_codec_parse_json(TD, data, len, &b, &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "entry 1"));
    assert_non_null(strstr(err.msg, "kid"));
    free(data);

    data = read_vector("spiffebundle/spiffebundle_no_keys.json", &len);
    assert_int_equal(bundle_codec_parse_json(TD, data, len, &b, &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "keys"));
    free(data);

    /* Empty input is rejected (go-spiffe: unexpected end of JSON input). */
    assert_int_equal(bundle_codec_parse_json(TD, (const uint8_t *)"", 0, &b, &err), LY_ERR_PARSE);
    assert_null(b);
}

static void test_jwtbundle_vectors(void **state)
{
    json_t *exp = load_expected("jwtbundle/expected.json");
    json_t *cases = json_object_get(exp, "cases");
    json_t *c;
    size_t i;

    (void)state;
    assert_int_equal(json_array_size(cases), 3);
    json_array_foreach (cases, i, c) {
        const char *file = json_string_value(json_object_get(c, "file"));
        struct bundle *b = NULL;
        struct ly_error err = {0};
        uint8_t *data;
        size_t len;
        int rc;

        assert_non_null(file);
        data = read_vector(file, &len);
        rc = bundle_codec_parse_jwks(TD, data, len, &b, &err);
        if (json_is_true(json_object_get(c, "valid"))) {
            json_t *kids = json_object_get(c, "kids");
            json_t *kid;
            size_t j;
            if (rc != 0) {
                fail_msg("%s rejected: %s", file, err.msg);
            }
            assert_int_equal(bundle_jwt_count(b),
                             json_integer_value(json_object_get(c, "jwt_authorities")));
            assert_int_equal(bundle_x509_count(b), 0);
            json_array_foreach (kids, j, kid) {
                const uint8_t *spki;
                size_t slen;
                assert_int_equal(bundle_jwt_find(b, json_string_value(kid), &spki, &slen), 0);
            }
            bundle_free(b);
        } else {
            /* Missing kid: rejected, as go-spiffe does. */
            assert_int_equal(rc, LY_ERR_PARSE);
            assert_non_null(strstr(err.msg, "entry 1"));
        }
        /* As a SPIFFE bundle these entries have no "use": all ignored (BUNDLE-9). */
        assert_int_equal(bundle_codec_parse_json(TD, data, len, &b, &err), 0);
        assert_int_equal(bundle_jwt_count(b), 0);
        bundle_free(b);
        free(data);
    }
    json_decref(exp);
}

static void test_x509bundle_vectors(void **state)
{
    json_t *exp = load_expected("x509bundle/expected.json");
    json_t *cases = json_object_get(exp, "parse_pem");
    json_t *c;
    size_t i;

    (void)state;
    assert_int_equal(json_array_size(cases), 5);
    json_array_foreach (cases, i, c) {
        const char *file = json_string_value(json_object_get(c, "file"));
        struct bundle *b = NULL;
        struct ly_error err = {0};
        uint8_t *data;
        size_t len;
        int rc;
        int pass;

        assert_non_null(file);
        data = read_vector(file, &len);
        for (pass = 0; pass < 2; pass++) {
            rc = pass == 0 ? bundle_codec_parse_pem(TD, data, len, &b, &err)
                           : bundle_codec_parse_auto(TD, data, len, &b, &err);
            if (json_is_true(json_object_get(c, "valid"))) {
                if (rc != 0) {
                    fail_msg("%s rejected: %s", file, err.msg);
                }
                assert_int_equal(bundle_x509_count(b),
                                 json_integer_value(json_object_get(c, "num_authorities")));
                bundle_free(b);
                b = NULL;
            } else {
                assert_int_equal(rc, LY_ERR_PARSE);
                assert_null(b);
            }
        }
        free(data);
    }
    json_decref(exp);
}

static void test_pem_extra(void **state)
{
    struct bundle *b = NULL;
    struct bundle *b2 = NULL;
    struct ly_error err = {0};
    struct ly_buf pem;
    uint8_t *data;
    size_t len;

    (void)state;
    /* Round trip of the two-certificate file through the PEM writer. */
    data = read_vector("x509bundle/certs.pem", &len);
    assert_int_equal(bundle_codec_parse_pem(TD, data, len, &b, &err), 0);
    assert_int_equal(bundle_codec_write_pem(b, &pem, &err), 0);
    assert_int_equal(bundle_codec_parse_pem(TD, pem.data, pem.len, &b2, &err), 0);
    assert_int_equal(bundle_x509_count(b2), 2);
    ly_buf_free(&pem);
    bundle_free(b2);
    free(data);

    /* The key file is not a certificate bundle. */
    data = read_vector("x509bundle/key.pem", &len);
    assert_int_equal(bundle_codec_parse_pem(TD, data, len, &b2, &err), LY_ERR_PARSE);
    free(data);

    /* Whitespace only is not empty: no CERTIFICATE block. */
    assert_int_equal(bundle_codec_parse_pem(TD, (const uint8_t *)" \n", 2, &b2, &err),
                     LY_ERR_PARSE);

    /* A PEM bundle's certificates can be summarised (RSA test certs, no SPIFFE content). */
    if (bundle_codec_summary_json(b, &pem, &err) != 0) {
        fail_msg("summary: %s", err.msg);
    }
    assert_non_null(strstr((const char *)pem.data, "PEMUTILTEST1"));
    ly_buf_free(&pem);
    bundle_free(b);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void assert_same(const struct bundle *a, const struct bundle *b)
{
    size_t i;
    uint64_t s1;
    uint64_t s2;
    int64_t h1;
    int64_t h2;

    assert_int_equal(bundle_x509_count(a), bundle_x509_count(b));
    for (i = 0; i < bundle_x509_count(a); i++) {
        size_t l1;
        size_t l2;
        const uint8_t *d1 = bundle_x509_authority(a, i, &l1);
        const uint8_t *d2 = bundle_x509_authority(b, i, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(d1, d2, l1);
    }
    assert_int_equal(bundle_jwt_count(a), bundle_jwt_count(b));
    for (i = 0; i < bundle_jwt_count(a); i++) {
        const uint8_t *k1;
        const uint8_t *k2;
        size_t l1;
        size_t l2;
        const char *kid1 = bundle_jwt_authority(a, i, &k1, &l1);
        const char *kid2 = bundle_jwt_authority(b, i, &k2, &l2);
        assert_string_equal(kid1, kid2);
        assert_int_equal(l1, l2);
        assert_memory_equal(k1, k2, l1);
    }
    assert_int_equal(bundle_get_sequence(a, &s1), bundle_get_sequence(b, &s2));
    if (bundle_get_sequence(a, &s1) == 0) {
        assert_int_equal(s1, s2);
    }
    assert_int_equal(bundle_get_refresh_hint(a, &h1), bundle_get_refresh_hint(b, &h2));
    if (bundle_get_refresh_hint(a, &h1) == 0) {
        assert_int_equal(h1, h2);
    }
}

static void test_roundtrip(void **state)
{
    static uint8_t der[4096];
    static uint8_t spki[2048];
    struct bundle *b = NULL;
    struct bundle *b2 = NULL;
    struct bundle *b3 = NULL;
    struct ly_error err = {0};
    struct ly_buf out;
    struct ly_buf out2;
    json_t *doc;
    json_t *keys;
    json_t *e;
    size_t i;
    size_t n;

    (void)state;
    assert_int_equal(bundle_new(TD, &b, &err), 0);
    n = make_cert(0, 1, "lanyard EC CA", der, sizeof(der));
    assert_int_equal(bundle_add_x509_authority(b, der, n, &err), 0);
    n = make_cert(1, 1, "lanyard Ed25519 CA", der, sizeof(der));
    assert_int_equal(bundle_add_x509_authority(b, der, n, &err), 0);
    n = make_spki(0, spki, sizeof(spki));
    assert_int_equal(bundle_add_jwt_authority(b, "ec256", spki, n, &err), 0);
    n = make_spki(1, spki, sizeof(spki));
    assert_int_equal(bundle_add_jwt_authority(b, "ec384", spki, n, &err), 0);
    n = make_spki(2, spki, sizeof(spki));
    assert_int_equal(bundle_add_jwt_authority(b, "rsa2048", spki, n, &err), 0);
    bundle_set_sequence(b, 42);
    bundle_set_refresh_hint(b, 300);

    assert_int_equal(bundle_codec_write_json(b, &out, &err), 0);
    assert_int_equal(bundle_codec_parse_json(TD, out.data, out.len, &b2, &err), 0);
    assert_same(b, b2);
    assert_int_equal(bundle_codec_parse_auto(TD, out.data, out.len, &b3, &err), 0);
    assert_same(b, b3);
    bundle_free(b3);

    /* Deterministic: writing the re-parsed bundle gives the same bytes. */
    assert_int_equal(bundle_codec_write_json(b2, &out2, &err), 0);
    assert_int_equal(out.len, out2.len);
    assert_memory_equal(out.data, out2.data, out.len);

    /* X509-17 / JWT-SVID §6.1 shape: x509 entries have x5c and no kid; jwt ones have kid. */
    doc = json_loadb((const char *)out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "spiffe_sequence")), 42);
    assert_int_equal(json_integer_value(json_object_get(doc, "spiffe_refresh_hint")), 300);
    keys = json_object_get(doc, "keys");
    assert_int_equal(json_array_size(keys), 5);
    json_array_foreach (keys, i, e) {
        const char *use = json_string_value(json_object_get(e, "use"));
        assert_non_null(use);
        if (strcmp(use, "x509-svid") == 0) {
            assert_null(json_object_get(e, "kid"));
            assert_int_equal(json_array_size(json_object_get(e, "x5c")), 1);
        } else {
            assert_string_equal(use, "jwt-svid");
            assert_non_null(json_object_get(e, "kid"));
            assert_null(json_object_get(e, "x5c"));
        }
    }
    e = json_array_get(keys, 0);
    assert_string_equal(json_string_value(json_object_get(e, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(e, "crv")), "P-256");
    e = json_array_get(keys, 1);
    assert_string_equal(json_string_value(json_object_get(e, "kty")), "OKP");
    assert_string_equal(json_string_value(json_object_get(e, "crv")), "Ed25519");
    e = json_array_get(keys, 4);
    assert_string_equal(json_string_value(json_object_get(e, "kty")), "RSA");
    json_decref(doc);

    /* Summary. */
    ly_buf_free(&out2);
    assert_int_equal(bundle_codec_summary_json(b2, &out2, &err), 0);
    doc = json_loadb((const char *)out2.data, out2.len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "trust_domain")), TD);
    assert_int_equal(json_integer_value(json_object_get(doc, "sequence")), 42);
    assert_int_equal(json_integer_value(json_object_get(doc, "refresh_hint")), 300);
    keys = json_object_get(doc, "x509_authorities");
    assert_int_equal(json_array_size(keys), 2);
    assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(keys, 0), "sha256"))),
                     64);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(keys, 1), "subject")),
                           "lanyard Ed25519 CA"));
    keys = json_object_get(doc, "jwt_authorities");
    assert_int_equal(json_array_size(keys), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 2), "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "kid")),
                        "ec256");
    json_decref(doc);

    ly_buf_free(&out);
    ly_buf_free(&out2);
    bundle_free(b2);

    /* An empty bundle with no sequence round-trips to {"keys": []}, and its summary has nulls. */
    bundle_free(b);
    assert_int_equal(bundle_new(TD, &b, &err), 0);
    assert_int_equal(bundle_codec_write_json(b, &out, &err), 0);
    assert_int_equal(bundle_codec_parse_json(TD, out.data, out.len, &b2, &err), 0);
    assert_same(b, b2);
    ly_buf_free(&out);
    assert_int_equal(bundle_codec_summary_json(b2, &out, &err), 0);
    assert_non_null(strstr((const char *)out.data, "\"sequence\": null"));
    ly_buf_free(&out);
    bundle_free(b2);
    bundle_free(b);
}

/* ---- JWK <-> SPKI ----------------------------------------------------------------------- */

static void test_jwk_spki(void **state)
{
    static uint8_t spki[2048];
    struct ly_error err = {0};
    struct ly_buf out;
    json_t *jwk;
    int kind;
    size_t n;

    (void)state;
    for (kind = 0; kind < 3; kind++) {
        n = make_spki(kind, spki, sizeof(spki));
        assert_int_equal(bundle_codec_spki_to_jwk(spki, n, &jwk, &err), 0);
        assert_int_equal(bundle_codec_jwk_to_spki(jwk, &out, &err), 0);
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, spki, n);
        ly_buf_free(&out);
        json_decref(jwk);
    }
    /* RSA below 2048 bits is refused as a JWT authority key. */
    n = make_spki(3, spki, sizeof(spki));
    assert_int_equal(bundle_codec_spki_to_jwk(spki, n, &jwk, &err), 0);
    assert_int_equal(bundle_codec_jwk_to_spki(jwk, &out, &err), LY_ERR_PARSE);
    json_decref(jwk);

    /* Unknown kty / curve: USAGE with the UNSUPPORTED reason. */
    jwk = json_pack("{s:s}", "kty", "oct");
    assert_int_equal(bundle_codec_jwk_to_spki(jwk, &out, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, BUNDLE_CODEC_R_UNSUPPORTED);
    json_decref(jwk);
    jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "secp256k1", "x", "AA", "y", "AA");
    assert_int_equal(bundle_codec_jwk_to_spki(jwk, &out, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, BUNDLE_CODEC_R_UNSUPPORTED);
    json_decref(jwk);
    /* A point that is not on the curve. */
    jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x",
                    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y",
                    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(bundle_codec_jwk_to_spki(jwk, &out, &err), LY_ERR_PARSE);
    json_decref(jwk);
    /* Short coordinates. */
    jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", "AQAB", "y", "AQAB");
    assert_int_equal(bundle_codec_jwk_to_spki(jwk, &out, &err), LY_ERR_PARSE);
    json_decref(jwk);
    /* Garbage DER. */
    assert_int_equal(
        bundle_codec_spki_to_jwk((const uint8_t *)"\x30\x03\x02\x01\x01", 5, &jwk, &err),
        LY_ERR_PARSE);
    assert_null(jwk);
}

/* ---- negatives and ignored entries ------------------------------------------------------ */

static void expect_parse_error(const char *json, const char *needle)
{
    struct bundle *b = NULL;
    struct ly_error err = {0};
    int rc = parse_str(json, &b, &err);

    if (rc != LY_ERR_PARSE) {
        fail_msg("accepted (rc %d): %.200s", rc, json);
    }
    assert_null(b);
    if (needle != NULL && strstr(err.msg, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    }
}

static void test_negatives(void **state)
{
    static uint8_t der[4096];
    static uint8_t spki[2048];
    char buf[8192];
    char *s;
    char *cert64;
    json_t *e;
    json_t *jwk;
    struct ly_error err = {0};
    size_t n;
    struct bundle *b = NULL;
    uint8_t *big;

    (void)state;
    expect_parse_error("not json", "not valid JSON");
    expect_parse_error("[]", NULL);
    expect_parse_error("{}", "keys");
    expect_parse_error("{\"keys\": {}}", "not an array");
    expect_parse_error("{\"keys\": \"x\"}", "not an array");
    expect_parse_error("{\"keys\": [1]}", "entry 0");
    expect_parse_error("{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"kid\": \"a\"}, []]}",
                       "entry 0");
    expect_parse_error("{\"keys\": [], \"keys\": []}", "not valid JSON");
    expect_parse_error("{\"keys\": [], \"spiffe_sequence\": -1}", "spiffe_sequence");
    expect_parse_error("{\"keys\": [], \"spiffe_sequence\": 1.5}", "spiffe_sequence");
    expect_parse_error("{\"keys\": [], \"spiffe_sequence\": 1.0}", "spiffe_sequence");
    expect_parse_error("{\"keys\": [], \"spiffe_sequence\": \"1\"}", "spiffe_sequence");
    expect_parse_error("{\"keys\": [], \"spiffe_sequence\": 18446744073709551615}", NULL);
    expect_parse_error("{\"keys\": [], \"spiffe_refresh_hint\": \"60\"}", "spiffe_refresh_hint");
    expect_parse_error("{\"keys\": [], \"spiffe_refresh_hint\": 0}", "spiffe_refresh_hint");
    expect_parse_error("{\"keys\": [{\"use\": 1, \"kty\": \"EC\"}]}", "use");
    expect_parse_error("{\"keys\": [{\"use\": \"x509-svid\"}]}", "kty");
    expect_parse_error("{\"keys\": [{\"use\": \"x509-svid\", \"kty\": 7}]}", "kty");
    expect_parse_error("{\"keys\": [{\"use\": \"x509-svid\", \"kty\": \"EC\", \"x5c\": \"AA==\"}]}",
                       "x5c");
    expect_parse_error("{\"keys\": [{\"use\": \"x509-svid\", \"kty\": \"EC\", \"x5c\": [1]}]}",
                       "x5c[0]");
    /* Bad base64 (base64url alphabet, whitespace) and a non-certificate. */
    expect_parse_error(
        "{\"keys\": [{\"use\": \"x509-svid\", \"kty\": \"EC\", \"x5c\": [\"_-_-\"]}]}", "x5c[0]");
    expect_parse_error(
        "{\"keys\": [{\"use\": \"x509-svid\", \"kty\": \"EC\", \"x5c\": [\"aGVs bG8=\"]}]}",
        "x5c[0]");
    expect_parse_error(
        "{\"keys\": [{\"use\": \"x509-svid\", \"kty\": \"EC\", \"x5c\": [\"aGVsbG8=\"]}]}",
        "certificate");
    /* NUL inside a JSON string and raw NUL bytes. */
    expect_parse_error(
        "{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"kid\": \"a\\u0000b\"}]}", NULL);
    assert_int_equal(bundle_codec_parse_json(TD, (const uint8_t *)"{\"keys\":[]}\0", 12, &b, &err),
                     LY_ERR_PARSE);
    /* jwt-svid: kid missing / empty / wrong type; bad key. */
    expect_parse_error("{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"crv\": \"P-256\"}]}",
                       "kid");
    expect_parse_error("{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"kid\": \"\"}]}",
                       "kid");
    expect_parse_error("{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"kid\": 5}]}", "kid");
    expect_parse_error("{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"kid\": \"k\", "
                       "\"crv\": \"P-256\"}]}",
                       "entry 0");
    expect_parse_error("{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"kid\": \"k\", "
                       "\"crv\": \"P-999\", \"x\": \"AA\", \"y\": \"AA\"}]}",
                       "P-999");

    /* Duplicate kid. */
    n = make_spki(0, spki, sizeof(spki));
    assert_int_equal(bundle_codec_spki_to_jwk(spki, n, &jwk, &err), 0);
    assert_int_equal(json_object_set_new(jwk, "use", json_string("jwt-svid")), 0);
    assert_int_equal(json_object_set_new(jwk, "kid", json_string("same")), 0);
    e = json_pack("{s:[O,O]}", "keys", jwk, jwk);
    s = json_dumps(e, 0);
    expect_parse_error(s, "duplicate");
    free(s);
    json_decref(e);
    /* RSA 1024 as a JWT authority. */
    json_decref(jwk);
    n = make_spki(3, spki, sizeof(spki));
    assert_int_equal(bundle_codec_spki_to_jwk(spki, n, &jwk, &err), 0);
    assert_int_equal(json_object_set_new(jwk, "use", json_string("jwt-svid")), 0);
    assert_int_equal(json_object_set_new(jwk, "kid", json_string("weak")), 0);
    s = doc_with(jwk);
    expect_parse_error(s, "bits");
    free(s);

    /* x5c that is a certificate but not a CA. */
    n = make_cert(0, 0, "not a CA", der, sizeof(der));
    cert64 = b64(der, n);
    assert_true(
        snprintf(buf, sizeof(buf),
                 "{\"keys\": [{\"use\": \"x509-svid\", \"kty\": \"EC\", \"x5c\": [\"%s\"]}]}",
                 cert64) < (int)sizeof(buf));
    expect_parse_error(buf, "CA");
    free(cert64);

    /* A CA whose JWK parameters describe a different key, or the wrong kty. */
    n = make_cert(0, 1, "CA", der, sizeof(der));
    e = x509_entry_for(der, n);
    {
        json_t *other;
        size_t m = make_spki(0, spki, sizeof(spki));
        assert_int_equal(bundle_codec_spki_to_jwk(spki, m, &other, &err), 0);
        assert_int_equal(json_object_set(e, "x", json_object_get(other, "x")), 0);
        assert_int_equal(json_object_set(e, "y", json_object_get(other, "y")), 0);
        json_decref(other);
    }
    s = doc_with(e);
    expect_parse_error(s, "do not match");
    free(s);
    e = x509_entry_for(der, n);
    assert_int_equal(json_object_set_new(e, "kty", json_string("RSA")), 0);
    s = doc_with(e);
    expect_parse_error(s, "kty");
    free(s);
    /* The same CA entry without key parameters (kty only) is accepted. */
    e = x509_entry_for(der, n);
    assert_int_equal(json_object_del(e, "x"), 0);
    assert_int_equal(json_object_del(e, "y"), 0);
    assert_int_equal(json_object_del(e, "crv"), 0);
    s = doc_with(e);
    assert_int_equal(parse_str(s, &b, &err), 0);
    assert_int_equal(bundle_x509_count(b), 1);
    bundle_free(b);
    free(s);

    /* Oversized input. */
    big = malloc(BUNDLE_CODEC_MAX_INPUT + 1);
    assert_non_null(big);
    memset(big, ' ', BUNDLE_CODEC_MAX_INPUT + 1);
    big[0] = '{';
    assert_int_equal(bundle_codec_parse_json(TD, big, BUNDLE_CODEC_MAX_INPUT + 1, &b, &err),
                     LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "larger"));
    assert_int_equal(bundle_codec_parse_pem(TD, big, BUNDLE_CODEC_MAX_INPUT + 1, &b, &err),
                     LY_ERR_PARSE);
    free(big);

    /* Bad trust domain. */
    assert_int_equal(
        bundle_codec_parse_json("Bad.TD", (const uint8_t *)"{\"keys\":[]}", 11, &b, &err),
        LY_ERR_PARSE);
    /* Messages escape what they echo. */
    expect_parse_error("{\"keys\": [{\"use\": \"jwt-svid\", \"kty\": \"EC\", \"kid\": \"k\", "
                       "\"crv\": \"P-\\u0001\", \"x\": \"AA\", \"y\": \"AA\"}]}",
                       "\\x01");
}

static void test_ignored_entries(void **state)
{
    static uint8_t der[4096];
    char buf[8192];
    char *cert64;
    struct bundle *b = NULL;
    struct ly_error err = {0};
    size_t n;

    (void)state;
    n = make_cert(1, 1, "Ed CA", der, sizeof(der));
    cert64 = b64(der, n);
    /*
     * Each of these is ignored and the bundle stays valid (spec; go-spiffe rejects some):
     * x509-svid without x5c (§9.3), with an empty x5c, unknown kty (§9.4), missing use, unknown
     * use, wrong-case use, wit-svid, OKP jwt-svid key; plus an x5c with two values (§9.2: the
     * first is used), and an unknown top-level member (BUNDLE-3).
     */
    assert_true(snprintf(buf, sizeof(buf),
                         "{\"x-vendor\": 1, \"keys\": ["
                         "{\"use\": \"x509-svid\", \"kty\": \"EC\"},"
                         "{\"use\": \"x509-svid\", \"kty\": \"EC\", \"x5c\": []},"
                         "{\"use\": \"jwt-svid\", \"kty\": \"XYZ\", \"kid\": \"u\"},"
                         "{\"kty\": \"EC\", \"kid\": \"nouse\"},"
                         "{\"use\": \"enc\", \"kty\": \"EC\", \"kid\": \"enc\"},"
                         "{\"use\": \"X509-SVID\", \"kty\": \"EC\", \"x5c\": [\"%s\"]},"
                         "{\"use\": \"wit-svid\", \"kty\": \"EC\", \"kid\": \"wit\"},"
                         "{\"use\": \"jwt-svid\", \"kty\": \"OKP\", \"crv\": \"Ed25519\", "
                         "\"kid\": \"ed\", \"x\": \"AA\"},"
                         "{\"use\": \"x509-svid\", \"kty\": \"OKP\", \"x5c\": [\"%s\", \"junk\"]}"
                         "]}",
                         cert64, cert64) < (int)sizeof(buf));
    if (parse_str(buf, &b, &err) != 0) {
        fail_msg("rejected: %s", err.msg);
    }
    assert_int_equal(bundle_x509_count(b), 1);
    assert_int_equal(bundle_jwt_count(b), 0);
    bundle_free(b);
    free(cert64);

    /* keys: [] is a valid bundle with every key revoked (BUNDLE-6). */
    assert_int_equal(parse_str("{\"keys\": []}", &b, &err), 0);
    assert_int_equal(bundle_x509_count(b) + bundle_jwt_count(b), 0);
    bundle_free(b);
    /* Sequence up to INT64_MAX. */
    assert_int_equal(
        parse_str("{\"keys\": [], \"spiffe_sequence\": 9223372036854775807}", &b, &err), 0);
    bundle_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spiffebundle_vectors),
        cmocka_unit_test(test_spiffebundle_details),
        cmocka_unit_test(test_jwtbundle_vectors),
        cmocka_unit_test(test_x509bundle_vectors),
        cmocka_unit_test(test_pem_extra),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_jwk_spki),
        cmocka_unit_test(test_negatives),
        cmocka_unit_test(test_ignored_entries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
