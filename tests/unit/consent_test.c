/*
 * Unit tests for broker/consent and the consent part of broker/store: the scope accept/reject
 * table with reasons, time windows, and the decision table (allow, no record, the confused
 * deputy, ID-15 case, expiry, windows across midnight, source trust domain, the resource
 * prefix boundary, '*'), and an index rebuilt from the store after a revocation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/consent.h"
#include "../../broker/store.h"

static void test_scope_table(void **state)
{
    static const struct {
        const char *s;
        int reason; /* 0 = accepted */
    } t[] = {
        {"*", 0},
        {"tools:echo", 0},
        {"tools:get-weather_v2.1", 0},
        {"prompts:simple_prompt", 0},
        {"resources:file:///data/", 0},
        {"resources:https://ex.test/a?b=c", 0},
        {"", CONSENT_R_SCOPE_EMPTY},
        {"tools", CONSENT_R_SCOPE_KIND},
        {"tool:echo", CONSENT_R_SCOPE_KIND},
        {"TOOLS:echo", CONSENT_R_SCOPE_KIND},
        {"**", CONSENT_R_SCOPE_KIND},
        {"tools:", CONSENT_R_SCOPE_NAME},
        {"tools:*", CONSENT_R_SCOPE_WILDCARD},
        {"resources:file:///*", CONSENT_R_SCOPE_WILDCARD},
        {"tools:a b", CONSENT_R_SCOPE_NAME},
        {"tools:ech\xc3\xb6", CONSENT_R_SCOPE_NAME},
        {"prompts:x:y", CONSENT_R_SCOPE_NAME},
        {"resources:", CONSENT_R_SCOPE_NAME},
        {"resources:/data/", CONSENT_R_SCOPE_NAME},
        {"resources:file:///a b", CONSENT_R_SCOPE_NAME},
        {"resources:1file:///", CONSENT_R_SCOPE_NAME},
    };
    struct consent_scope sc;
    struct ly_error e = {0};
    char big[200];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rc;
        ly_error_clear(&e);
        rc = consent_scope_parse(t[i].s, strlen(t[i].s), &sc, &e);
        if (t[i].reason == 0) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, LY_ERR_PARSE);
            assert_int_equal(e.reason, t[i].reason);
            assert_true(e.msg[0] != '\0');
        }
    }
    /* An embedded NUL, and a tool name one byte over the cap. */
    ly_error_clear(&e);
    assert_int_equal(consent_scope_parse("tools:a\0b", 9, &sc, &e), LY_ERR_PARSE);
    memcpy(big, "tools:", 6);
    memset(big + 6, 'a', CONSENT_NAME_MAX + 1);
    ly_error_clear(&e);
    assert_int_equal(consent_scope_parse(big, 6 + CONSENT_NAME_MAX, &sc, &e), 0);
    assert_int_equal(consent_scope_parse(big, 6 + CONSENT_NAME_MAX + 1, &sc, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, CONSENT_R_SCOPE_NAME);
}

static void test_window_and_user(void **state)
{
    struct ly_error e = {0};
    int a;
    int b;
    char big[CONSENT_USER_MAX + 2];

    (void)state;
    ly_error_clear(&e);
    assert_int_equal(consent_window_parse("09:00-18:00", &a, &b, &e), 0);
    assert_int_equal(a, 540);
    assert_int_equal(b, 1080);
    assert_int_equal(consent_window_parse("22:00-06:00", &a, &b, &e), 0);
    assert_int_equal(consent_window_parse("9:00-18:00", &a, &b, &e), LY_ERR_PARSE);
    assert_int_equal(consent_window_parse("24:00-01:00", &a, &b, &e), LY_ERR_PARSE);
    assert_int_equal(consent_window_parse("09:60-10:00", &a, &b, &e), LY_ERR_PARSE);
    assert_int_equal(consent_window_parse("09:00-09:00", &a, &b, &e), LY_ERR_PARSE);
    assert_int_equal(consent_window_parse("09:00-18:00Z", &a, &b, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, CONSENT_R_BAD_WINDOW);
    assert_int_equal(consent_user_validate("alice", &e), 0);
    assert_int_equal(consent_user_validate("", &e), LY_ERR_PARSE);
    assert_int_equal(consent_user_validate("a\nb", &e), LY_ERR_PARSE);
    memset(big, 'u', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(consent_user_validate(big, &e), LY_ERR_PARSE);
    big[CONSENT_USER_MAX] = '\0';
    assert_int_equal(consent_user_validate(big, &e), 0);
}

/* A record; scopes separated by spaces; tds likewise (NULL = none). */
static struct consent *mk(const char *id, const char *user, const char *client,
                          const char *scopes, int64_t expires, const char *window,
                          const char *tds)
{
    struct consent *c = consent_new();
    struct ly_error e = {0};
    char buf[512];
    char *p;
    char *sp;

    ly_error_clear(&e);
    assert_non_null(c);
    memcpy(c->id, id, strlen(id) + 1);
    assert_int_equal(consent_set_user(c, user, &e), 0);
    assert_int_equal(consent_set_client(c, client, &e), 0);
    assert_true(strlen(scopes) < sizeof(buf));
    memcpy(buf, scopes, strlen(scopes) + 1);
    for (p = buf; p != NULL; p = sp) {
        sp = strchr(p, ' ');
        if (sp != NULL) {
            *sp++ = '\0';
        }
        assert_int_equal(consent_add_scope(c, p, &e), 0);
    }
    if (tds != NULL) {
        memcpy(buf, tds, strlen(tds) + 1);
        for (p = buf; p != NULL; p = sp) {
            sp = strchr(p, ' ');
            if (sp != NULL) {
                *sp++ = '\0';
            }
            assert_int_equal(consent_add_source_td(c, p, &e), 0);
        }
    }
    if (window != NULL) {
        assert_int_equal(consent_set_window(c, window, &e), 0);
    }
    c->granted_at = 1000;
    c->expires_at = expires;
    memcpy(c->granted_by, "admin", 6);
    assert_int_equal(consent_validate(c, &e), 0);
    return c;
}

static struct spiffeid id_of(const char *s)
{
    struct spiffeid id;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(spiffeid_parse(s, strlen(s), &id, &e), 0);
    return id;
}

#define A "spiffe://ex.test/agent/a"
#define B "spiffe://ex.test/agent/b"
#define NOON (int64_t)(1767225600 + 12 * 3600) /* 2026-01-01 12:00 UTC */

static void test_decision_table(void **state)
{
    struct consent *r[6];
    struct consent_index *idx = NULL;
    struct consent_decision d;
    struct ly_error e = {0};
    struct spiffeid a = id_of(A);
    struct spiffeid b = id_of(B);
    struct spiffeid a_case = id_of("spiffe://ex.test/agent/A");
    struct spiffeid other_td = id_of("spiffe://other.test/agent/c");
    char msg[256];
    size_t i;

    (void)state;
    ly_error_clear(&e);
    r[0] = mk("00000000000000000000000000000001", "alice", A,
              "tools:echo prompts:greet resources:file:///data/", 0, NULL, NULL);
    r[1] = mk("00000000000000000000000000000002", "alice", A, "tools:old", NOON - 1, NULL,
              NULL);
    r[2] = mk("00000000000000000000000000000003", "bob", A, "tools:night", 0, "22:00-06:00",
              NULL);
    r[3] = mk("00000000000000000000000000000004", "bob", A, "tools:day", 0, "09:00-18:00",
              NULL);
    r[4] = mk("00000000000000000000000000000005", "carol", "spiffe://other.test/agent/c", "*",
              0, NULL, "ex.test");
    r[5] = mk("00000000000000000000000000000006", NULL, B, "tools:sweep", NOON + 60, NULL,
              NULL);
    assert_int_equal(consent_index_build(r, 6, &idx, &e), 0);
    assert_int_equal(consent_index_count(idx), 6);
    for (i = 0; i < 6; i++) {
        consent_free(r[i]); /* the index keeps its own copy */
    }

    /* Allowed, with the record that allowed it. */
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "echo", NOON, &d), 1);
    assert_int_equal(d.allow, 1);
    assert_int_equal(d.reason, CONSENT_R_NONE);
    assert_string_equal(d.record_id, "00000000000000000000000000000001");
    assert_int_equal(consent_decide(idx, "alice", &a, "prompts", "greet", NOON, &d), 1);
    /* No record for the user. */
    assert_int_equal(consent_decide(idx, "mallory", &a, "tools", "echo", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_NO_RECORD);
    /* The confused deputy: alice consented to A, not to B. */
    assert_int_equal(consent_decide(idx, "alice", &b, "tools", "echo", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_NO_RECORD);
    /* ID-15: a client path differing only in case is another client. */
    assert_int_equal(consent_decide(idx, "alice", &a_case, "tools", "echo", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_NO_RECORD);
    /* Scope not covered names the missing scope; kinds do not mix. */
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "rm", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_SCOPE_NOT_COVERED);
    assert_non_null(strstr(consent_decision_describe(&d, msg, sizeof(msg)), "tools:rm"));
    assert_int_equal(consent_decide(idx, "alice", &a, "prompts", "echo", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_SCOPE_NOT_COVERED);
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "ech", NOON, &d), 0);
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "echo2", NOON, &d), 0);
    /* Expired (expires_at <= now), naming the record. */
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "old", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_EXPIRED);
    assert_string_equal(d.record_id, "00000000000000000000000000000002");
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "old", NOON - 2, &d), 1);
    /* Resource prefix: a plain byte prefix, so /data/ never covers /database. */
    assert_int_equal(
        consent_decide(idx, "alice", &a, "resources", "file:///data/x.txt", NOON, &d), 1);
    assert_int_equal(consent_decide(idx, "alice", &a, "resources", "file:///data/", NOON, &d),
                     1);
    assert_int_equal(
        consent_decide(idx, "alice", &a, "resources", "file:///database", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_SCOPE_NOT_COVERED);
    assert_int_equal(consent_decide(idx, "alice", &a, "resources", "file:///data", NOON, &d),
                     0);
    /* Windows, including one that wraps midnight; start inclusive, end exclusive. */
    assert_int_equal(consent_decide(idx, "bob", &a, "tools", "day", NOON, &d), 1);
    assert_int_equal(consent_decide(idx, "bob", &a, "tools", "night", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_OUTSIDE_WINDOW);
    assert_int_equal(consent_decide(idx, "bob", &a, "tools", "night", NOON + 11 * 3600, &d),
                     1); /* 23:00 */
    assert_int_equal(consent_decide(idx, "bob", &a, "tools", "night", NOON + 14 * 3600, &d),
                     1); /* 02:00 next day */
    assert_int_equal(
        consent_decide(idx, "bob", &a, "tools", "night", NOON + 18 * 3600 - 60, &d),
        1); /* 05:59 */
    assert_int_equal(consent_decide(idx, "bob", &a, "tools", "night", NOON + 18 * 3600, &d),
                     0); /* 06:00 */
    assert_int_equal(consent_decide(idx, "bob", &a, "tools", "day", NOON - 3 * 3600, &d),
                     1); /* 09:00 */
    assert_int_equal(consent_decide(idx, "bob", &a, "tools", "day", NOON + 6 * 3600, &d),
                     0); /* 18:00 */
    assert_int_equal(d.reason, CONSENT_R_OUTSIDE_WINDOW);
    /* '*' covers everything, and the source trust domain condition applies to it. */
    assert_int_equal(consent_decide_from(idx, "carol", &other_td, "ex.test", "resources",
                                         "https://anything/", NOON, &d),
                     1);
    assert_int_equal(consent_decide_from(idx, "carol", &other_td, "ex.test", "tools", "any",
                                         NOON, &d),
                     1);
    assert_int_equal(consent_decide(idx, "carol", &other_td, "tools", "any", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_SOURCE_TD);
    assert_int_equal(consent_decide_from(idx, "carol", &other_td, "ex.test.evil", "tools",
                                         "any", NOON, &d),
                     0);
    assert_int_equal(d.reason, CONSENT_R_SOURCE_TD);
    /* Workload-only grants match only requests with no user, and not an empty user. */
    assert_int_equal(consent_decide(idx, NULL, &b, "tools", "sweep", NOON, &d), 1);
    assert_int_equal(consent_decide(idx, "", &b, "tools", "sweep", NOON, &d), 0);
    assert_int_equal(consent_decide(idx, "alice", &b, "tools", "sweep", NOON, &d), 0);
    assert_int_equal(consent_decide(idx, NULL, &a, "tools", "echo", NOON, &d), 0);
    assert_int_equal(consent_decide(idx, NULL, &b, "tools", "sweep", NOON + 60, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_EXPIRED);
    /* Malformed requests are denied. */
    assert_int_equal(consent_decide(idx, "alice", &a, "tool", "echo", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_BAD_REQUEST);
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "", NOON, &d), 0);
    assert_int_equal(consent_decide(NULL, "alice", &a, "tools", "echo", NOON, &d), 0);
    consent_index_free(idx);
    consent_index_free(NULL);
}

static void test_record_validation(void **state)
{
    struct consent *c = consent_new();
    struct ly_error e = {0};
    size_t i;
    char s[32];

    (void)state;
    ly_error_clear(&e);
    assert_int_equal(consent_set_client(c, "spiffe://ex.test/A/../b", &e), LY_ERR_PARSE);
    ly_error_clear(&e);
    assert_int_equal(consent_set_client(c, "spiffe://EX.test/a", &e), LY_ERR_PARSE);
    ly_error_clear(&e);
    assert_int_equal(consent_set_client(c, "spiffe://ex.test", &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, CONSENT_R_BAD_CLIENT);
    ly_error_clear(&e);
    assert_int_equal(consent_set_client(c, A, &e), 0);
    memcpy(c->granted_by, "admin", 6);
    assert_int_equal(consent_set_user(c, "alice", &e), 0);
    assert_int_equal(consent_validate(c, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, CONSENT_R_NO_SCOPES);
    for (i = 0; i < CONSENT_MAX_SCOPES; i++) {
        assert_true(snprintf(s, sizeof(s), "tools:t%zu", i) > 0);
        assert_int_equal(consent_add_scope(c, s, &e), 0);
    }
    assert_int_equal(consent_add_scope(c, "tools:t0", &e), 0); /* duplicate: ignored */
    ly_error_clear(&e);
    assert_int_equal(consent_add_scope(c, "tools:one-more", &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, CONSENT_R_TOO_MANY_SCOPES);
    ly_error_clear(&e);
    c->granted_at = 100;
    c->expires_at = 100;
    assert_int_equal(consent_validate(c, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, CONSENT_R_BAD_EXPIRY);
    consent_free(c);
    consent_free(NULL);
}

static void test_store_and_rebuild(void **state)
{
    char dir[] = "/tmp/lanyard-consent-XXXXXX";
    char path[128];
    struct store *s = NULL;
    struct consent *c1;
    struct consent *c2;
    struct consent **list = NULL;
    struct consent_index *idx = NULL;
    struct consent_decision d;
    struct spiffeid a = id_of(A);
    struct ly_error e = {0};
    size_t n = 0;
    char id1[CONSENT_ID_HEX_LEN + 1];

    (void)state;
    ly_error_clear(&e);
    assert_non_null(mkdtemp(dir));
    assert_true(snprintf(path, sizeof(path), "%s/lanyard.db", dir) > 0);
    assert_int_equal(store_open(path, &s, &e), 0);
    c1 = mk("", "alice", A, "tools:echo", 0, "09:00-18:00", "ex.test other.test");
    c2 = mk("", NULL, A, "tools:echo", 0, NULL, NULL);
    assert_int_equal(store_consent_add(s, c1, &e), 0);
    assert_int_equal(store_consent_add(s, c2, &e), 0);
    assert_int_equal(strlen(c1->id), CONSENT_ID_HEX_LEN);
    memcpy(id1, c1->id, sizeof(id1));
    assert_int_equal(store_consent_list(s, NULL, NULL, &list, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(consent_index_build(list, n, &idx, &e), 0);
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "echo", NOON, &d), 1);
    assert_string_equal(d.record_id, id1);
    consent_index_free(idx);
    consent_list_free(list, n);
    /* Filters and round-trip of every field. */
    assert_int_equal(store_consent_list(s, "alice", A, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->id, id1);
    assert_int_equal(list[0]->n_source_tds, 2);
    assert_int_equal(list[0]->window_start, 540);
    assert_string_equal(list[0]->scopes[0], "tools:echo");
    consent_list_free(list, n);
    assert_int_equal(store_consent_list(s, NULL, B, &list, &n, &e), 0);
    assert_int_equal(n, 0);
    /* Revoke by id, rebuild: alice is denied now; bad and unknown ids refused. */
    assert_int_equal(store_consent_revoke(s, id1, &e), 0);
    assert_int_equal(store_consent_revoke(s, id1, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, CONSENT_R_NOT_FOUND);
    ly_error_clear(&e);
    assert_int_equal(store_consent_revoke(s, "xyz", &e), LY_ERR_PARSE);
    ly_error_clear(&e);
    assert_int_equal(store_consent_list(s, NULL, NULL, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(consent_index_build(list, n, &idx, &e), 0);
    consent_list_free(list, n);
    assert_int_equal(consent_decide(idx, "alice", &a, "tools", "echo", NOON, &d), 0);
    assert_int_equal(d.reason, CONSENT_R_NO_RECORD);
    assert_int_equal(consent_decide(idx, NULL, &a, "tools", "echo", NOON, &d), 1);
    consent_index_free(idx);
    /* Revoke by pair (workload-only). */
    assert_int_equal(store_consent_revoke_pair(s, NULL, A, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_consent_revoke_pair(s, NULL, A, &n, &e), LY_ERR_USAGE);
    consent_free(c1);
    consent_free(c2);
    store_close(s);
    assert_int_equal(unlink(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_table),
        cmocka_unit_test(test_window_and_user),
        cmocka_unit_test(test_decision_table),
        cmocka_unit_test(test_record_validation),
        cmocka_unit_test(test_store_and_rebuild),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
