/*
 * relation_test: the acceptance rules for fetched foreign bundles, on real CAs and SVIDs minted
 * here: a good bundle (and whether it changed), garbage, an empty bundle, a bundle of another
 * domain, a lower sequence, and for https_spiffe the endpoint's chain (the expected ID, another
 * ID, an unknown CA, no bundle to check it with, a rotated CA followed once fetched); and the
 * refresh and backoff schedule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../common/ly_time.h"
#include "../../federation/relation.h"
#include "../../svid/key.h"
#include "../../svid/x509svid.h"
#include "../../trust-bundles/bundle.h"
#include "../../trust-bundles/bundle_codec.h"

struct auth {
    struct svid_key *key;
    struct ly_buf cert;
    struct x509svid_ca *ca;
};

static int64_t now;

static void auth_make(struct auth *a, const char *td)
{
    struct ly_error err = {0};

    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &a->key, &err), 0);
    assert_int_equal(x509svid_ca_create(a->key, td, now, 86400, &a->cert, &err), 0);
    assert_int_equal(x509svid_ca_new(a->cert.data, a->cert.len, a->key, &a->ca, &err), 0);
}

static void auth_free(struct auth *a)
{
    x509svid_ca_free(a->ca);
    ly_buf_free(&a->cert);
    svid_key_free(a->key);
}

/* A leaf for id signed by `by` (DER in out). */
static void leaf_make(struct auth *by, const char *id, struct ly_buf *out)
{
    struct ly_error err = {0};
    struct svid_key *k = NULL;
    struct ly_buf spki;
    struct spiffeid sid;

    assert_int_equal(spiffeid_parse(id, strlen(id), &sid, &err), 0);
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &k, &err), 0);
    assert_int_equal(svid_key_public_der(k, &spki, &err), 0);
    assert_int_equal(x509svid_mint(by->ca, &sid, spki.data, spki.len, NULL, 0, now, 600, out, &err),
                     0);
    ly_buf_free(&spki);
    svid_key_free(k);
}

/* A bundle of td with the given CAs and sequence (seq < 0: none). */
static struct bundle *bundle_of(const char *td, struct auth *a1, struct auth *a2, int64_t seq)
{
    struct ly_error err = {0};
    struct bundle *b = NULL;

    assert_int_equal(bundle_new(td, &b, &err), 0);
    if (a1 != NULL) {
        assert_int_equal(bundle_add_x509_authority(b, a1->cert.data, a1->cert.len, &err), 0);
    }
    if (a2 != NULL) {
        assert_int_equal(bundle_add_x509_authority(b, a2->cert.data, a2->cert.len, &err), 0);
    }
    if (seq >= 0) {
        bundle_set_sequence(b, (uint64_t)seq);
    }
    bundle_set_refresh_hint(b, 60);
    return b;
}

static void json_of(const struct bundle *b, struct ly_buf *out)
{
    struct ly_error err = {0};

    assert_int_equal(bundle_codec_write_json(b, out, &err), 0);
}

/* Run one web-profile check of body against current. */
static int check_web(const struct bundle *current, const struct ly_buf *body, struct bundle **out,
                     int *changed, struct ly_error *err)
{
    struct fed_check c;

    memset(&c, 0, sizeof(c));
    c.trust_domain = "b.test";
    c.profile = FED_PROFILE_HTTPS_WEB;
    c.current = current;
    c.body = body->data;
    c.body_len = body->len;
    c.now = now;
    ly_error_clear(err);
    return fed_check_bundle(&c, out, changed, err);
}

static void test_web_rules(void **state)
{
    struct auth b1, b2, a1;
    struct bundle *cur, *next, *other, *got = NULL;
    struct ly_buf body;
    struct ly_error err = {0};
    int changed = -1;

    (void)state;
    auth_make(&b1, "b.test");
    auth_make(&b2, "b.test");
    auth_make(&a1, "a.test");
    cur = bundle_of("b.test", &b1, NULL, 3);

    /* The same bundle again: accepted, unchanged. */
    json_of(cur, &body);
    assert_int_equal(check_web(cur, &body, &got, &changed, &err), 0);
    assert_int_equal(changed, 0);
    assert_true(fed_bundle_same(cur, got));
    bundle_free(got);
    ly_buf_free(&body);

    /* A rotation: next CA added, sequence + 1: accepted, changed. */
    next = bundle_of("b.test", &b1, &b2, 4);
    json_of(next, &body);
    assert_int_equal(check_web(cur, &body, &got, &changed, &err), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(bundle_x509_count(got), 2);
    bundle_free(got);
    /* And with nothing held yet (first fetch of a web relationship). */
    assert_int_equal(check_web(NULL, &body, &got, &changed, &err), 0);
    assert_int_equal(changed, 1);
    bundle_free(got);
    ly_buf_free(&body);

    /* A lower sequence: an old or replayed bundle. */
    {
        struct bundle *old = bundle_of("b.test", &b1, &b2, 2);

        json_of(old, &body);
        assert_int_not_equal(check_web(cur, &body, &got, &changed, &err), 0);
        assert_int_equal(err.reason, FED_R_STALE_SEQUENCE);
        assert_non_null(strstr(err.msg, "lower"));
        assert_null(got);
        ly_buf_free(&body);
        bundle_free(old);
    }

    /* Another domain's bundle served for b.test. */
    other = bundle_of("a.test", &a1, NULL, 9);
    json_of(other, &body);
    assert_int_not_equal(check_web(cur, &body, &got, &changed, &err), 0);
    assert_int_equal(err.reason, FED_R_WRONG_DOMAIN);
    assert_non_null(strstr(err.msg, "spiffe://a.test"));
    ly_buf_free(&body);
    bundle_free(other);

    /* Garbage, and an empty bundle. */
    {
        static const char *bad[] = {"<html>nope</html>", "{\"keys\": 5}", "", "{}"};
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct ly_buf g;

            ly_buf_init(&g, 1024);
            assert_int_equal(ly_buf_append_str(&g, bad[i], &err), 0);
            assert_int_not_equal(check_web(cur, &g, &got, &changed, &err), 0);
            assert_int_equal(err.reason, FED_R_GARBAGE);
            assert_non_null(strstr(err.msg, "not a SPIFFE bundle"));
            ly_buf_free(&g);
        }
        {
            struct bundle *empty = bundle_of("b.test", NULL, NULL, 7);

            json_of(empty, &body);
            assert_int_not_equal(check_web(cur, &body, &got, &changed, &err), 0);
            assert_int_equal(err.reason, FED_R_EMPTY);
            ly_buf_free(&body);
            bundle_free(empty);
        }
    }
    bundle_free(next);
    bundle_free(cur);
    auth_free(&b1);
    auth_free(&b2);
    auth_free(&a1);
}

static int check_spiffe(const struct bundle *current, const struct ly_buf *body,
                        const struct ly_buf *chain, const char *want, struct ly_error *err,
                        int *changed)
{
    struct fed_check c;
    struct spiffeid id;
    struct bundle *got = NULL;
    int rc;

    assert_int_equal(spiffeid_parse(want, strlen(want), &id, err), 0);
    memset(&c, 0, sizeof(c));
    c.trust_domain = "b.test";
    c.profile = FED_PROFILE_HTTPS_SPIFFE;
    c.endpoint_id = &id;
    c.current = current;
    c.body = body->data;
    c.body_len = body->len;
    c.peer_chain = chain->data;
    c.peer_chain_len = chain->len;
    c.now = now;
    ly_error_clear(err);
    rc = fed_check_bundle(&c, &got, changed, err);
    bundle_free(got);
    return rc;
}

static void test_spiffe_endpoint(void **state)
{
    struct auth b1, b2, evil;
    struct bundle *cur, *rotated;
    struct ly_buf body, ep1, ep2, imp, other_id;
    struct ly_error err = {0};
    int changed = 0;
    const char *want = "spiffe://b.test/lanyard/server";

    (void)state;
    auth_make(&b1, "b.test");
    auth_make(&b2, "b.test");
    auth_make(&evil, "b.test"); /* same trust domain name, unknown key */
    cur = bundle_of("b.test", &b1, NULL, 1);
    rotated = bundle_of("b.test", &b1, &b2, 2);
    json_of(rotated, &body);
    leaf_make(&b1, want, &ep1);
    leaf_make(&b2, want, &ep2);
    leaf_make(&evil, want, &imp);
    leaf_make(&b1, "spiffe://b.test/something/else", &other_id);

    assert_int_equal(check_spiffe(cur, &body, &ep1, want, &err, &changed), 0);
    assert_int_equal(changed, 1);
    /* Another SPIFFE ID of the right domain. */
    assert_int_not_equal(check_spiffe(cur, &body, &other_id, want, &err, &changed), 0);
    assert_int_equal(err.reason, FED_R_ENDPOINT_ID);
    assert_non_null(strstr(err.msg, "something/else"));
    /* The right ID from a CA the bundle does not hold. */
    assert_int_not_equal(check_spiffe(cur, &body, &imp, want, &err, &changed), 0);
    assert_int_equal(err.reason, FED_R_ENDPOINT_UNTRUSTED);
    /* Signed by the next CA: unknown until its bundle was fetched, trusted afterwards. */
    assert_int_not_equal(check_spiffe(cur, &body, &ep2, want, &err, &changed), 0);
    assert_int_equal(err.reason, FED_R_ENDPOINT_UNTRUSTED);
    assert_int_equal(check_spiffe(rotated, &body, &ep2, want, &err, &changed), 0);
    assert_int_equal(changed, 0);
    /* Nothing to authenticate with. */
    assert_int_not_equal(check_spiffe(NULL, &body, &ep1, want, &err, &changed), 0);
    assert_int_equal(err.reason, FED_R_ENDPOINT_UNTRUSTED);
    assert_non_null(strstr(err.msg, "bootstrap"));
    /* No certificate at all. */
    {
        struct ly_buf none;

        ly_buf_init(&none, 16);
        assert_int_not_equal(check_spiffe(cur, &body, &none, want, &err, &changed), 0);
        assert_int_equal(err.reason, FED_R_ENDPOINT_UNTRUSTED);
        ly_buf_free(&none);
    }
    ly_buf_free(&body);
    ly_buf_free(&ep1);
    ly_buf_free(&ep2);
    ly_buf_free(&imp);
    ly_buf_free(&other_id);
    bundle_free(cur);
    bundle_free(rotated);
    auth_free(&b1);
    auth_free(&b2);
    auth_free(&evil);
}

static void test_schedule_and_names(void **state)
{
    struct ly_error err = {0};
    enum fed_profile p;

    (void)state;
    assert_int_equal(fed_next_refresh(300), 75);
    assert_int_equal(fed_next_refresh(2), 1);
    assert_int_equal(fed_next_refresh(0), FED_REFRESH_HINT_DEFAULT / 4);
    assert_int_equal(fed_next_refresh(-5), FED_REFRESH_HINT_DEFAULT / 4);
    assert_int_equal(fed_backoff(1, 300), 1);
    assert_int_equal(fed_backoff(2, 300), 2);
    assert_int_equal(fed_backoff(5, 300), 16);
    assert_int_equal(fed_backoff(20, 300), 75); /* never slower than a normal refresh */
    assert_int_equal(fed_backoff(20, 100000), FED_BACKOFF_MAX);
    assert_int_equal(fed_backoff(3, 8), 2);
    assert_int_equal(fed_profile_parse("https_web", &p, &err), 0);
    assert_int_equal(p, FED_PROFILE_HTTPS_WEB);
    assert_string_equal(fed_profile_name(p), "https_web");
    assert_int_equal(fed_profile_parse("https_spiffe", &p, &err), 0);
    assert_string_equal(fed_profile_name(p), "https_spiffe");
    assert_int_not_equal(fed_profile_parse("http", &p, &err), 0);
    assert_non_null(strstr(err.msg, "https_web"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_web_rules),
        cmocka_unit_test(test_spiffe_endpoint),
        cmocka_unit_test(test_schedule_and_names),
    };

    now = ly_time_now();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
