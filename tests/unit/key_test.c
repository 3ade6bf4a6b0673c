/*
 * key_test: unit tests for svid/key: generation, PKCS#8 and SEC1 loading, PEM/DER round trips,
 * refusal of RSA, other curves, corrupt and truncated input, and signatures checked by wolfCrypt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../../common/ly_file.h"
#include "../../svid/key_internal.h"

static void read_vector(const char *rel, struct ly_buf *out)
{
    char path[512];
    const char *root = getenv("LANYARD_ROOT");
    struct ly_error err = {0};

    assert_true(snprintf(path, sizeof(path), "%s/tests/data/vectors/%s", root ? root : ".", rel) <
                (int)sizeof(path));
    ly_error_clear(&err);
    assert_int_equal(ly_file_read(path, LY_FILE_MAX_DEFAULT, 0, out, &err), 0);
}

static void roundtrip(enum svid_key_type type)
{
    struct svid_key *k = NULL;
    struct svid_key *k2 = NULL;
    struct svid_key *k3 = NULL;
    struct ly_buf der, pem, pub, pub2, pub3;
    struct ly_error err = {0};

    assert_int_equal(svid_key_generate(type, &k, &err), 0);
    assert_int_equal(svid_key_get_type(k), type);
    assert_int_equal(svid_key_to_pkcs8_der(k, &der, &err), 0);
    assert_true(der.secret);
    assert_int_equal(svid_key_to_pkcs8_pem(k, &pem, &err), 0);
    assert_true(pem.secret);
    assert_memory_equal(pem.data, "-----BEGIN PRIVATE KEY-----\n", 28);
    assert_int_equal(svid_key_parse(der.data, der.len, &k2, &err), 0);
    assert_int_equal(svid_key_parse(pem.data, pem.len, &k3, &err), 0);
    assert_int_equal(svid_key_get_type(k2), type);
    assert_int_equal(svid_key_get_type(k3), type);
    assert_int_equal(svid_key_public_der(k, &pub, &err), 0);
    assert_int_equal(svid_key_public_der(k2, &pub2, &err), 0);
    assert_int_equal(svid_key_public_der(k3, &pub3, &err), 0);
    assert_int_equal(pub.len, pub2.len);
    assert_memory_equal(pub.data, pub2.data, pub.len);
    assert_memory_equal(pub.data, pub3.data, pub.len);
    assert_int_equal(svid_key_matches_public(k2, pub.data, pub.len), 1);
    /* Re-encoding gives the same PKCS#8 bytes. */
    {
        struct ly_buf der2;

        assert_int_equal(svid_key_to_pkcs8_der(k3, &der2, &err), 0);
        assert_int_equal(der2.len, der.len);
        assert_memory_equal(der2.data, der.data, der.len);
        ly_buf_free(&der2);
    }
    ly_buf_free(&der);
    ly_buf_free(&pem);
    ly_buf_free(&pub);
    ly_buf_free(&pub2);
    ly_buf_free(&pub3);
    svid_key_free(k);
    svid_key_free(k2);
    svid_key_free(k3);
}

static void test_roundtrip_p256(void **state)
{
    (void)state;
    roundtrip(SVID_KEY_EC_P256);
}

static void test_roundtrip_ed25519(void **state)
{
    (void)state;
    roundtrip(SVID_KEY_ED25519);
}

static void test_type_names(void **state)
{
    enum svid_key_type t;
    struct ly_error err = {0};

    (void)state;
    assert_int_equal(svid_key_type_parse("ec-p256", &t, &err), 0);
    assert_int_equal(t, SVID_KEY_EC_P256);
    assert_int_equal(svid_key_type_parse("ed25519", &t, &err), 0);
    assert_int_equal(t, SVID_KEY_ED25519);
    assert_int_equal(svid_key_type_parse("rsa", &t, &err), LY_ERR_USAGE);
    assert_non_null(strstr(err.msg, "ec-p256"));
    assert_string_equal(svid_key_type_name(SVID_KEY_ED25519), "ed25519");
    svid_key_free(NULL);
}

static void test_vectors(void **state)
{
    struct ly_buf b;
    struct svid_key *k = NULL;
    struct ly_error err = {0};

    (void)state;
    read_vector("x509svid/key-pkcs8-ecdsa.pem", &b);
    assert_int_equal(svid_key_parse(b.data, b.len, &k, &err), 0);
    assert_int_equal(svid_key_get_type(k), SVID_KEY_EC_P256);
    svid_key_free(k);
    ly_buf_free(&b);

    /* Key before certificate and certificate before key in one PEM file both load. */
    read_vector("x509svid/good-key-and-cert.pem", &b);
    assert_int_equal(svid_key_parse(b.data, b.len, &k, &err), 0);
    svid_key_free(k);
    ly_buf_free(&b);
    read_vector("x509svid/good-cert-and-key.pem", &b);
    assert_int_equal(svid_key_parse(b.data, b.len, &k, &err), 0);
    svid_key_free(k);
    ly_buf_free(&b);

    read_vector("x509svid/key-pkcs8-rsa.pem", &b);
    assert_int_equal(svid_key_parse(b.data, b.len, &k, &err), LY_ERR_PARSE);
    assert_null(k);
    assert_non_null(strstr(err.msg, "RSA private keys are not supported"));
    ly_buf_free(&b);

    read_vector("x509svid/corrupt-key.pem", &b);
    assert_int_equal(svid_key_parse(b.data, b.len, &k, &err), LY_ERR_PARSE);
    assert_null(k);
    ly_buf_free(&b);

    read_vector("x509svid/not-pem", &b);
    assert_int_equal(svid_key_parse(b.data, b.len, &k, &err), LY_ERR_PARSE);
    assert_null(k);
    ly_buf_free(&b);

    /* A certificate-only PEM holds no private key. */
    read_vector("x509svid/good-leaf-only.pem", &b);
    assert_int_equal(svid_key_parse(b.data, b.len, &k, &err), LY_ERR_PARSE);
    ly_buf_free(&b);

    assert_int_equal(svid_key_parse((const uint8_t *)"", 0, &k, &err), LY_ERR_PARSE);
}

static void test_truncated_der(void **state)
{
    struct svid_key *k = NULL;
    struct svid_key *k2 = NULL;
    struct ly_buf der;
    struct ly_error err = {0};
    size_t cut;

    (void)state;
    for (int t = SVID_KEY_EC_P256; t <= SVID_KEY_ED25519; t++) {
        assert_int_equal(svid_key_generate((enum svid_key_type)t, &k, &err), 0);
        assert_int_equal(svid_key_to_pkcs8_der(k, &der, &err), 0);
        for (cut = 1; cut < der.len; cut++) {
            assert_int_not_equal(svid_key_parse(der.data, cut, &k2, &err), 0);
            assert_null(k2);
        }
        /* Embedded garbage after the key is not a key either. */
        der.data[der.len / 2] ^= 0xff;
        if (svid_key_parse(der.data, der.len, &k2, &err) == 0) {
            /* A flipped private-scalar byte can still decode; it must then be a different key. */
            struct ly_buf p1;

            assert_int_equal(svid_key_public_der(k, &p1, &err), 0);
            assert_int_equal(svid_key_matches_public(k2, p1.data, p1.len), 0);
            ly_buf_free(&p1);
            svid_key_free(k2);
            k2 = NULL;
        }
        ly_buf_free(&der);
        svid_key_free(k);
        k = NULL;
    }
}

static void test_sec1_pem_and_other_curve(void **state)
{
    WC_RNG rng;
    ecc_key ec;
    uint8_t der[512];
    uint8_t pem[1024];
    word32 n = sizeof(der);
    int dlen, plen;
    struct svid_key *k = NULL;
    struct ly_error err = {0};

    (void)state;
    assert_int_equal(wc_InitRng(&rng), 0);
    assert_int_equal(wc_ecc_init(&ec), 0);
    assert_int_equal(wc_ecc_make_key_ex(&rng, 32, &ec, ECC_SECP256R1), 0);
    dlen = wc_EccKeyToDer(&ec, der, sizeof(der));
    assert_true(dlen > 0);
    plen = wc_DerToPem(der, (word32)dlen, pem, sizeof(pem), ECC_PRIVATEKEY_TYPE);
    assert_true(plen > 0);
    assert_memory_equal(pem, "-----BEGIN EC PRIVATE KEY-----", 30);
    assert_int_equal(svid_key_parse(pem, (size_t)plen, &k, &err), 0);
    assert_int_equal(svid_key_get_type(k), SVID_KEY_EC_P256);
    svid_key_free(k);
    k = NULL;
    wc_ecc_free(&ec);

    /* P-384 in PKCS#8: refused, naming the curve rule. */
    assert_int_equal(wc_ecc_init(&ec), 0);
    assert_int_equal(wc_ecc_make_key_ex(&rng, 48, &ec, ECC_SECP384R1), 0);
    assert_true(wc_EccKeyToPKCS8(&ec, der, &n) > 0);
    assert_int_equal(svid_key_parse(der, n, &k, &err), LY_ERR_PARSE);
    assert_null(k);
    assert_non_null(strstr(err.msg, "P-256"));
    plen = wc_DerToPem(der, n, pem, sizeof(pem), PKCS8_PRIVATEKEY_TYPE);
    assert_true(plen > 0);
    assert_int_equal(svid_key_parse(pem, (size_t)plen, &k, &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "P-256"));
    wc_ecc_free(&ec);
    wc_FreeRng(&rng);
}

static void test_sign_verify(void **state)
{
    static const uint8_t msg[] = "lanyard signs this";
    struct svid_key *k = NULL;
    struct svid_key *other = NULL;
    struct ly_buf sig, pub;
    struct ly_error err = {0};
    int ok = 0;

    (void)state;
    /* P-256: DER signature over SHA-256, and the raw R||S JWS form. */
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &k, &err), 0);
    assert_int_equal(svid_key_sign(k, msg, sizeof(msg), &sig, &err), 0);
    {
        uint8_t digest[WC_SHA256_DIGEST_SIZE];
        uint8_t der[80];
        word32 dlen = sizeof(der);

        assert_int_equal(wc_Sha256Hash(msg, sizeof(msg), digest), 0);
        assert_int_equal(wc_ecc_verify_hash(sig.data, (word32)sig.len, digest, sizeof(digest), &ok,
                                            &k->u.ec),
                         0);
        assert_int_equal(ok, 1);
        ly_buf_free(&sig);
        assert_int_equal(svid_key_sign_jws(k, msg, sizeof(msg), &sig, &err), 0);
        assert_int_equal(sig.len, 64);
        assert_int_equal(wc_ecc_rs_raw_to_sig(sig.data, 32, sig.data + 32, 32, der, &dlen), 0);
        ok = 0;
        assert_int_equal(wc_ecc_verify_hash(der, dlen, digest, sizeof(digest), &ok, &k->u.ec), 0);
        assert_int_equal(ok, 1);
        ly_buf_free(&sig);
    }
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &other, &err), 0);
    assert_int_equal(svid_key_public_der(other, &pub, &err), 0);
    assert_int_equal(svid_key_matches_public(k, pub.data, pub.len), 0);
    ly_buf_free(&pub);
    svid_key_free(other);
    svid_key_free(k);

    /* Ed25519: 64-byte pure signature; JWS refused. */
    assert_int_equal(svid_key_generate(SVID_KEY_ED25519, &k, &err), 0);
    assert_int_equal(svid_key_sign(k, msg, sizeof(msg), &sig, &err), 0);
    assert_int_equal(sig.len, 64);
    ok = 0;
    assert_int_equal(wc_ed25519_verify_msg(sig.data, (word32)sig.len, msg, sizeof(msg), &ok,
                                           &k->u.ed),
                     0);
    assert_int_equal(ok, 1);
    ly_buf_free(&sig);
    assert_int_equal(svid_key_sign_jws(k, msg, sizeof(msg), &sig, &err), LY_ERR_USAGE);
    ly_buf_free(&sig);
    /* An EC public key never matches an Ed25519 key. */
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &other, &err), 0);
    assert_int_equal(svid_key_public_der(other, &pub, &err), 0);
    assert_int_equal(svid_key_matches_public(k, pub.data, pub.len), 0);
    assert_int_equal(svid_key_matches_public(k, pub.data, pub.len - 1), 0);
    ly_buf_free(&pub);
    svid_key_free(other);
    svid_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_p256),
        cmocka_unit_test(test_roundtrip_ed25519),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_truncated_der),
        cmocka_unit_test(test_sec1_pem_and_other_curve),
        cmocka_unit_test(test_sign_verify),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
