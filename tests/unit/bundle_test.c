/*
 * bundle_test: the in-memory bundle and bundle set model (trust-bundles/bundle.c): add, remove,
 * dedupe, caps, clone, set put/replace and exact-match lookup. No certificate parsing here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../trust-bundles/bundle.h"

static void test_new(void **state)
{
    struct bundle *b = NULL;
    struct ly_error err = {0};

    (void)state;
    assert_int_equal(bundle_new("example.org", &b, &err), 0);
    assert_string_equal(bundle_trust_domain(b), "example.org");
    bundle_free(b);
    /* A trust domain ID without a path is accepted and stored as the bare name. */
    assert_int_equal(bundle_new("spiffe://example.org", &b, &err), 0);
    assert_string_equal(bundle_trust_domain(b), "example.org");
    bundle_free(b);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_new("spiffe://example.org/w", &b, &err), LY_ERR_PARSE);
    assert_null(b);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_new("Example.org", &b, &err), LY_ERR_PARSE);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_new("", &b, &err), LY_ERR_PARSE);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_new(NULL, &b, &err), LY_ERR_USAGE);
    bundle_free(NULL);
    bundle_set_free(NULL);
}

static void test_x509_authorities(void **state)
{
    static const uint8_t a[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    static const uint8_t a2[] = {0x30, 0x03, 0x02, 0x01, 0x02};
    struct bundle *b = NULL;
    struct ly_error err = {0};
    uint8_t der[4];
    size_t len;
    int i;

    (void)state;
    assert_int_equal(bundle_new("example.org", &b, &err), 0);
    assert_int_equal(bundle_add_x509_authority(b, a, sizeof(a), &err), 0);
    /* Identical DER is a no-op (dedupe). */
    assert_int_equal(bundle_add_x509_authority(b, a, sizeof(a), &err), 0);
    assert_int_equal(bundle_x509_count(b), 1);
    assert_int_equal(bundle_add_x509_authority(b, a2, sizeof(a2), &err), 0);
    assert_int_equal(bundle_x509_count(b), 2);
    assert_memory_equal(bundle_x509_authority(b, 1, &len), a2, sizeof(a2));
    assert_int_equal(len, sizeof(a2));
    assert_null(bundle_x509_authority(b, 2, &len));
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_x509_authority(b, a, 0, &err), LY_ERR_USAGE);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_x509_authority(b, NULL, 3, &err), LY_ERR_USAGE);

    assert_int_equal(bundle_remove_x509_authority(b, a, sizeof(a), &err), 0);
    assert_int_equal(bundle_x509_count(b), 1);
    assert_memory_equal(bundle_x509_authority(b, 0, &len), a2, sizeof(a2));
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_remove_x509_authority(b, a, sizeof(a), &err), LY_ERR_USAGE);
    /* A prefix of a stored DER is a different authority. */
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_remove_x509_authority(b, a2, sizeof(a2) - 1, &err), LY_ERR_USAGE);

    /* Cap: BUNDLE_MAX_AUTHORITIES distinct authorities, then USAGE. */
    for (i = 1; i < BUNDLE_MAX_AUTHORITIES; i++) {
        der[0] = 0xaa;
        der[1] = (uint8_t)i;
        der[2] = (uint8_t)(i >> 8);
        der[3] = 0x55;
        assert_int_equal(bundle_add_x509_authority(b, der, sizeof(der), &err), 0);
    }
    assert_int_equal(bundle_x509_count(b), BUNDLE_MAX_AUTHORITIES);
    der[1] = 0xff;
    der[2] = 0xff;
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_x509_authority(b, der, sizeof(der), &err), LY_ERR_USAGE);
    /* A duplicate is still a no-op at the cap. */
    assert_int_equal(bundle_add_x509_authority(b, a2, sizeof(a2), &err), 0);
    bundle_free(b);
}

static void test_jwt_authorities(void **state)
{
    static const uint8_t k1[] = {1, 2, 3};
    static const uint8_t k2[] = {4, 5, 6, 7};
    char longkid[BUNDLE_KID_MAX + 2];
    struct bundle *b = NULL;
    struct ly_error err = {0};
    const uint8_t *spki;
    size_t len;
    char kid[16];
    int i;

    (void)state;
    assert_int_equal(bundle_new("example.org", &b, &err), 0);
    assert_int_equal(bundle_add_jwt_authority(b, "k1", k1, sizeof(k1), &err), 0);
    assert_int_equal(bundle_add_jwt_authority(b, "k2", k2, sizeof(k2), &err), 0);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_jwt_authority(b, "k1", k2, sizeof(k2), &err), LY_ERR_PARSE);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_jwt_authority(b, "", k2, sizeof(k2), &err), LY_ERR_PARSE);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_jwt_authority(b, NULL, k2, sizeof(k2), &err), LY_ERR_PARSE);
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_jwt_authority(b, "k3", NULL, 0, &err), LY_ERR_USAGE);
    memset(longkid, 'k', sizeof(longkid) - 1);
    longkid[sizeof(longkid) - 1] = '\0';
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_jwt_authority(b, longkid, k1, sizeof(k1), &err), LY_ERR_PARSE);
    longkid[BUNDLE_KID_MAX] = '\0';
    assert_int_equal(bundle_add_jwt_authority(b, longkid, k1, sizeof(k1), &err), 0);
    assert_int_equal(bundle_jwt_count(b), 3);

    assert_int_equal(bundle_jwt_find(b, "k2", &spki, &len), 0);
    assert_int_equal(len, sizeof(k2));
    assert_memory_equal(spki, k2, sizeof(k2));
    /* Exact kid match only. */
    assert_int_equal(bundle_jwt_find(b, "k", &spki, &len), -1);
    assert_int_equal(bundle_jwt_find(b, "K1", &spki, &len), -1);
    assert_int_equal(bundle_jwt_find(b, "k1 ", &spki, &len), -1);
    assert_string_equal(bundle_jwt_authority(b, 0, &spki, &len), "k1");
    assert_null(bundle_jwt_authority(b, 3, &spki, &len));

    for (i = 3; i < BUNDLE_MAX_AUTHORITIES; i++) {
        assert_true(snprintf(kid, sizeof(kid), "x%d", i) > 0);
        assert_int_equal(bundle_add_jwt_authority(b, kid, k1, sizeof(k1), &err), 0);
    }
    ly_error_clear(&err); /* bundle.c keeps the first error set */
    assert_int_equal(bundle_add_jwt_authority(b, "over", k1, sizeof(k1), &err), LY_ERR_USAGE);
    bundle_free(b);
}

static void test_sequence_hint_clone(void **state)
{
    static const uint8_t a[] = {9, 9, 9};
    static const uint8_t k[] = {7, 7};
    struct bundle *b = NULL;
    struct bundle *c = NULL;
    struct ly_error err = {0};
    uint64_t seq;
    int64_t hint;
    const uint8_t *spki;
    size_t len;

    (void)state;
    assert_int_equal(bundle_new("example.org", &b, &err), 0);
    assert_int_equal(bundle_get_sequence(b, &seq), -1);
    assert_int_equal(bundle_get_refresh_hint(b, &hint), -1);
    bundle_set_sequence(b, UINT64_MAX);
    bundle_set_refresh_hint(b, 60);
    assert_int_equal(bundle_add_x509_authority(b, a, sizeof(a), &err), 0);
    assert_int_equal(bundle_add_jwt_authority(b, "kid", k, sizeof(k), &err), 0);

    assert_int_equal(bundle_clone(b, &c, &err), 0);
    bundle_free(b);
    /* The clone owns its own copies. */
    assert_string_equal(bundle_trust_domain(c), "example.org");
    assert_int_equal(bundle_get_sequence(c, &seq), 0);
    assert_true(seq == UINT64_MAX);
    assert_int_equal(bundle_get_refresh_hint(c, &hint), 0);
    assert_int_equal(hint, 60);
    assert_int_equal(bundle_x509_count(c), 1);
    assert_memory_equal(bundle_x509_authority(c, 0, &len), a, sizeof(a));
    assert_int_equal(bundle_jwt_find(c, "kid", &spki, &len), 0);
    assert_memory_equal(spki, k, sizeof(k));
    bundle_free(c);
}

static void test_set(void **state)
{
    static const uint8_t a[] = {1};
    struct bundle_set *set = NULL;
    struct bundle *b = NULL;
    struct ly_error err = {0};
    const struct bundle *got;

    (void)state;
    assert_int_equal(bundle_set_new(&set, &err), 0);
    assert_null(bundle_set_get(set, "example.org"));
    assert_int_equal(bundle_new("example.org", &b, &err), 0);
    assert_int_equal(bundle_set_put(set, b, &err), 0);
    assert_int_equal(bundle_new("evil-example.org", &b, &err), 0);
    assert_int_equal(bundle_set_put(set, b, &err), 0);
    assert_int_equal(bundle_set_count(set), 2);

    /* Exact match only: no suffix, prefix, case or trailing-dot matching. */
    got = bundle_set_get(set, "example.org");
    assert_non_null(got);
    assert_string_equal(bundle_trust_domain(got), "example.org");
    got = bundle_set_get(set, "evil-example.org");
    assert_non_null(got);
    assert_string_equal(bundle_trust_domain(got), "evil-example.org");
    assert_null(bundle_set_get(set, "example.org."));
    assert_null(bundle_set_get(set, "xample.org"));
    assert_null(bundle_set_get(set, "Example.org"));
    assert_null(bundle_set_get(set, "org"));
    assert_null(bundle_set_get(set, NULL));
    assert_null(bundle_set_get(NULL, "example.org"));

    /* Put replaces the bundle of the same trust domain. */
    assert_int_equal(bundle_new("example.org", &b, &err), 0);
    assert_int_equal(bundle_add_x509_authority(b, a, sizeof(a), &err), 0);
    assert_int_equal(bundle_set_put(set, b, &err), 0);
    assert_int_equal(bundle_set_count(set), 2);
    got = bundle_set_get(set, "example.org");
    assert_int_equal(bundle_x509_count(got), 1);
    assert_non_null(bundle_set_at(set, 1));
    assert_null(bundle_set_at(set, 2));

    /* Many trust domains (growth). */
    {
        char td[32];
        int i;
        for (i = 0; i < 40; i++) {
            assert_true(snprintf(td, sizeof(td), "td%d.example", i) > 0);
            assert_int_equal(bundle_new(td, &b, &err), 0);
            assert_int_equal(bundle_set_put(set, b, &err), 0);
        }
        assert_int_equal(bundle_set_count(set), 42);
        assert_non_null(bundle_set_get(set, "td39.example"));
        assert_null(bundle_set_get(set, "td4.exampl"));
    }
    bundle_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new),
        cmocka_unit_test(test_x509_authorities),
        cmocka_unit_test(test_jwt_authorities),
        cmocka_unit_test(test_sequence_hint_clone),
        cmocka_unit_test(test_set),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
