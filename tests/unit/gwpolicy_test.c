/*
 * gwpolicy_test: the gateway's decision state over a real SQLite store. A grant made through a
 * second store connection (as `lanyard consent grant` does) is seen by the next snapshot, a
 * revocation likewise, while a snapshot taken before keeps deciding on what it saw; the store
 * must already exist; and session bindings: bound, another client, another user, workload-only,
 * unknown, dropped, malformed ids, and eviction of the least recently used beyond the cap.
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
#include "../../broker/gwpolicy.h"
#include "../../broker/store.h"
#include "../../common/ly_time.h"

static char dir[] = "/tmp/lanyard-gwpolicy-XXXXXX";
static char db[128];

static struct spiffeid id_of(const char *s)
{
    struct spiffeid id;
    struct ly_error e = {0};
    assert_int_equal(spiffeid_parse(s, strlen(s), &id, &e), 0);
    return id;
}

/* Grant through its own connection, the way the CLI does; returns the record id. */
static void grant(const char *user, const char *client, const char *scope, char *id_out)
{
    struct store *st = NULL;
    struct consent *c = consent_new();
    struct ly_error e = {0};

    assert_non_null(c);
    assert_int_equal(store_open(db, &st, &e), 0);
    assert_int_equal(consent_set_user(c, user, &e), 0);
    assert_int_equal(consent_set_client(c, client, &e), 0);
    assert_int_equal(consent_add_scope(c, scope, &e), 0);
    c->granted_at = ly_time_now();
    memcpy(c->granted_by, "admin", 6);
    assert_int_equal(consent_validate(c, &e), 0);
    assert_int_equal(store_consent_add(st, c, &e), 0);
    if (id_out != NULL) {
        memcpy(id_out, c->id, sizeof(c->id));
    }
    consent_free(c);
    store_close(st);
}

static void revoke(const char *id)
{
    struct store *st = NULL;
    struct ly_error e = {0};
    assert_int_equal(store_open(db, &st, &e), 0);
    assert_int_equal(store_consent_revoke(st, id, &e), 0);
    store_close(st);
}

static void test_missing_store(void **state)
{
    struct gwpolicy *p = NULL;
    struct ly_error e = {0};
    char path[200];
    (void)state;

    (void)snprintf(path, sizeof(path), "%s/none.db", dir);
    ly_error_clear(&e);
    assert_int_equal(gwpolicy_open(path, &p, &e), LY_ERR_IO);
    assert_null(p);
    assert_non_null(strstr(e.msg, "no lanyard store"));
    assert_int_equal(access(path, F_OK), -1); /* never created */
}

static void test_fresh_on_every_snapshot(void **state)
{
    struct gwpolicy *p = NULL;
    struct gwpolicy_snap *s1, *s2, *s3;
    struct gwpolicy_verdict v;
    struct spiffeid a = id_of("spiffe://t.test/client-a");
    struct spiffeid b = id_of("spiffe://t.test/client-b");
    struct ly_error e = {0};
    char rec[CONSENT_ID_HEX_LEN + 1];
    int64_t now = ly_time_now();
    (void)state;

    assert_int_equal(gwpolicy_open(db, &p, &e), 0);
    s1 = gwpolicy_snapshot(p, &e);
    assert_non_null(s1);
    assert_int_equal(gwpolicy_snap_count(s1), 0);
    assert_int_equal(gwpolicy_decide(s1, "alice", &a, "tools", "echo", now, &v), 0);
    assert_int_equal(v.reason, CONSENT_R_NO_RECORD);
    assert_string_equal(v.scope, "tools:echo");
    assert_int_equal(gwpolicy_decide(s1, "alice", &a, CONSENT_OP_PLUMBING, "", now, &v), 0);

    grant("alice", "spiffe://t.test/client-a", "tools:echo", rec);
    s2 = gwpolicy_snapshot(p, &e);
    assert_non_null(s2);
    assert_int_equal(gwpolicy_snap_count(s2), 1);
    assert_int_equal(gwpolicy_decide(s2, "alice", &a, "tools", "echo", now, &v), 1);
    assert_string_equal(v.consent_id, rec);
    assert_int_equal(gwpolicy_decide(s2, "alice", &a, CONSENT_OP_PLUMBING, "", now, &v), 1);
    /* The confused deputy: the same user's consent does not cover another client. */
    assert_int_equal(gwpolicy_decide(s2, "alice", &b, "tools", "echo", now, &v), 0);
    assert_int_equal(gwpolicy_decide(s2, "alice", &a, "tools", "get-env", now, &v), 0);
    assert_int_equal(v.reason, CONSENT_R_SCOPE_NOT_COVERED);
    assert_non_null(strstr(v.text, "tools:get-env"));
    /* The older snapshot still decides on what it saw. */
    assert_int_equal(gwpolicy_decide(s1, "alice", &a, "tools", "echo", now, &v), 0);

    revoke(rec);
    s3 = gwpolicy_snapshot(p, &e);
    assert_non_null(s3);
    assert_int_equal(gwpolicy_decide(s3, "alice", &a, "tools", "echo", now, &v), 0);
    assert_int_equal(gwpolicy_decide(s2, "alice", &a, "tools", "echo", now, &v), 1);
    assert_int_equal(gwpolicy_rebuilds(p), 3);
    /* No change, no rebuild. */
    gwpolicy_release(gwpolicy_snapshot(p, &e));
    assert_int_equal(gwpolicy_rebuilds(p), 3);
    gwpolicy_release(s1);
    gwpolicy_release(s2);
    gwpolicy_release(s3);
    gwpolicy_free(p);
}

static void test_sessions(void **state)
{
    struct gwpolicy *p = NULL;
    struct spiffeid a = id_of("spiffe://t.test/client-a");
    struct spiffeid b = id_of("spiffe://t.test/client-b");
    struct ly_error e = {0};
    char sid[32];
    (void)state;

    assert_int_equal(gwpolicy_open(db, &p, &e), 0);
    assert_int_equal(gwpolicy_session_bind(p, "s-1", 3, &a, "alice", &e), 0);
    assert_int_equal(gwpolicy_session_bind(p, "s-2", 3, &a, NULL, &e), 0);
    assert_int_equal(gwpolicy_session_check(p, "s-1", 3, &a, "alice"), GWPOLICY_SESSION_OK);
    assert_int_equal(gwpolicy_session_check(p, "s-1", 3, &b, "alice"),
                     GWPOLICY_SESSION_OTHER_CLIENT);
    assert_int_equal(gwpolicy_session_check(p, "s-1", 3, &a, "bob"),
                     GWPOLICY_SESSION_OTHER_USER);
    assert_int_equal(gwpolicy_session_check(p, "s-1", 3, &a, NULL), GWPOLICY_SESSION_OTHER_USER);
    assert_int_equal(gwpolicy_session_check(p, "s-2", 3, &a, NULL), GWPOLICY_SESSION_OK);
    assert_int_equal(gwpolicy_session_check(p, "s-2", 3, &a, "alice"),
                     GWPOLICY_SESSION_OTHER_USER);
    assert_int_equal(gwpolicy_session_check(p, "s-3", 3, &a, "alice"), GWPOLICY_SESSION_UNKNOWN);
    assert_int_equal(gwpolicy_session_check(p, "a b", 3, &a, "alice"), GWPOLICY_SESSION_BAD_ID);
    assert_int_equal(gwpolicy_session_check(p, "", 0, &a, "alice"), GWPOLICY_SESSION_BAD_ID);
    assert_int_not_equal(gwpolicy_session_bind(p, "x\ny", 3, &a, "alice", &e), 0);
    gwpolicy_session_drop(p, "s-1", 3);
    assert_int_equal(gwpolicy_session_check(p, "s-1", 3, &a, "alice"), GWPOLICY_SESSION_UNKNOWN);
    assert_int_equal(gwpolicy_session_count(p), 1);
    assert_string_equal(gwpolicy_session_text(GWPOLICY_SESSION_OTHER_CLIENT),
                        "session opened by another client");

    /* Beyond the cap the least recently used goes; a recently checked one stays. */
    for (int i = 0; i < GWPOLICY_MAX_SESSIONS; i++) {
        int n = snprintf(sid, sizeof(sid), "bulk-%d", i);
        assert_int_equal(gwpolicy_session_bind(p, sid, (size_t)n, &b, "carol", &e), 0);
        if (i == 10) {
            /* touch s-2 so it is not the oldest any more */
            assert_int_equal(gwpolicy_session_check(p, "s-2", 3, &a, NULL), GWPOLICY_SESSION_OK);
        }
    }
    assert_int_equal(gwpolicy_session_count(p), GWPOLICY_MAX_SESSIONS);
    assert_int_equal(gwpolicy_session_check(p, "bulk-0", 6, &b, "carol"),
                     GWPOLICY_SESSION_UNKNOWN);
    assert_int_equal(gwpolicy_session_check(p, "s-2", 3, &a, NULL), GWPOLICY_SESSION_OK);
    assert_int_equal(gwpolicy_session_check(p, "bulk-65535", 10, &b, "carol"),
                     GWPOLICY_SESSION_OK);
    gwpolicy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_store),
        cmocka_unit_test(test_fresh_on_every_snapshot),
        cmocka_unit_test(test_sessions),
    };
    struct store *st = NULL;
    struct ly_error e = {0};
    int rc;

    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    (void)snprintf(db, sizeof(db), "%s/lanyard.db", dir);
    if (store_open(db, &st, &e) != 0) {
        fprintf(stderr, "store: %s\n", e.msg);
        return 1;
    }
    store_close(st);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    (void)unlink(db);
    {
        char p[160];
        (void)snprintf(p, sizeof(p), "%s/lanyard.db-wal", dir);
        (void)unlink(p);
        (void)snprintf(p, sizeof(p), "%s/lanyard.db-shm", dir);
        (void)unlink(p);
    }
    (void)rmdir(dir);
    return rc;
}
