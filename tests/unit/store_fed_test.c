/*
 * Unit tests for the store's federation tables (schema v4): relationships (add/get/list/delete,
 * fetch status), federated bundles (put/get/list/delete/replace), the invariants between the
 * two (bootstrap and endpoint bundles only with their relationship, static ones only without),
 * all-or-nothing writes, the v3 -> v4 upgrade keeping entries and consent, and the NULL and
 * malformed-argument edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/consent.h"
#include "../../broker/entry.h"
#include "../../broker/store.h"
#include "../../broker/store_internal.h"

struct fx {
    char dir[64];
    char path[128];
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ly_error e = {0};

    if (f == NULL) {
        return -1;
    }
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/lanyard-fed-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    (void)snprintf(f->path, sizeof(f->path), "%s/lanyard.db", f->dir);
    ly_error_clear(&e);
    if (store_open(f->path, &f->s, &e) < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* For the upgrade test: no store opened yet. */
static int setup_empty(void **state)
{
    int rc = setup(state);
    struct fx *f;

    if (rc == 0) {
        f = *state;
        store_close(f->s);
        f->s = NULL;
        (void)unlink(f->path);
    }
    return rc;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    size_t i;

    store_close(f->s);
    for (i = 0; i < 4; i++) {
        (void)snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
        (void)unlink(p);
    }
    (void)rmdir(f->dir);
    free(f);
    return 0;
}

static int raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
    }
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static struct store_fed_relation web_rel(const char *td, const char *url)
{
    struct store_fed_relation r;

    memset(&r, 0, sizeof(r));
    (void)snprintf(r.trust_domain, sizeof(r.trust_domain), "%s", td);
    (void)snprintf(r.url, sizeof(r.url), "%s", url);
    (void)snprintf(r.profile, sizeof(r.profile), "https_web");
    return r;
}

static struct store_fed_relation spiffe_rel(const char *td, const char *url, const char *eid)
{
    struct store_fed_relation r = web_rel(td, url);

    (void)snprintf(r.profile, sizeof(r.profile), "https_spiffe");
    (void)snprintf(r.endpoint_id, sizeof(r.endpoint_id), "%s", eid);
    return r;
}

/* A bundle row borrowing json (a string literal). */
static struct store_fed_bundle mk_bundle(const char *td, const char *json, const char *source,
                                         int64_t seq)
{
    struct store_fed_bundle b;

    memset(&b, 0, sizeof(b));
    (void)snprintf(b.trust_domain, sizeof(b.trust_domain), "%s", td);
    b.json = (uint8_t *)(uintptr_t)json;
    b.len = strlen(json);
    b.sequence = seq;
    b.refresh_hint = seq < 0 ? -1 : 300;
    (void)snprintf(b.source, sizeof(b.source), "%s", source);
    return b;
}

/* The stored bundle of td: asserts it exists and has this JSON and source. */
static void expect_bundle(struct store *s, const char *td, const char *json, const char *source)
{
    struct store_fed_bundle got;
    struct ly_error e = {0};
    int found = -1;

    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_get(s, td, &got, &found, &e), 0);
    assert_int_equal(found, 1);
    assert_string_equal(got.trust_domain, td);
    assert_int_equal(got.len, strlen(json));
    assert_memory_equal(got.json, json, got.len);
    assert_int_equal(got.json[got.len], '\0'); /* NUL-terminated past len */
    assert_string_equal(got.source, source);
    assert_true(got.updated_at > 0);
    store_fed_bundle_clear(&got);
    assert_null(got.json);
    assert_int_equal(got.len, 0);
}

static void expect_no_bundle(struct store *s, const char *td)
{
    struct store_fed_bundle got;
    struct ly_error e = {0};
    int found = -1;

    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_get(s, td, &got, &found, &e), 0);
    assert_int_equal(found, 0);
    assert_null(got.json);
}

static void test_relation_add_get_list_delete(void **state)
{
    struct fx *f = *state;
    static const char ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    struct store_fed_relation a = web_rel("a.test", "https://a.example/bundle");
    struct store_fed_relation b =
        spiffe_rel("b.test", "https://b.example:8443/b", "spiffe://b.test/bundle-server");
    struct store_fed_bundle boot = mk_bundle("b.test", "{\"keys\":[]}", "ignored", 7);
    struct store_fed_relation got;
    struct store_fed_relation *list = NULL;
    struct ly_error e = {0};
    size_t n = 99;
    int found = -1;

    ly_error_clear(&e);
    a.ca_pem = (uint8_t *)(uintptr_t)ca;
    a.ca_len = sizeof(ca) - 1;
    a.created_at = 1000;
    /* Fetch state given by the caller is ignored: a new relationship was never fetched. */
    a.last_attempt_at = 5;
    (void)snprintf(a.last_error, sizeof(a.last_error), "stale");
    assert_int_equal(store_fed_relation_add(f->s, &b, &boot, &e), 0);
    assert_int_equal(store_fed_relation_add(f->s, &a, NULL, &e), 0);

    assert_int_equal(store_fed_relation_get(f->s, "a.test", &got, &found, &e), 0);
    assert_int_equal(found, 1);
    assert_string_equal(got.url, "https://a.example/bundle");
    assert_string_equal(got.profile, "https_web");
    assert_string_equal(got.endpoint_id, "");
    assert_int_equal(got.ca_len, sizeof(ca) - 1);
    assert_memory_equal(got.ca_pem, ca, got.ca_len);
    assert_int_equal(got.created_at, 1000);
    assert_int_equal(got.last_attempt_at, 0);
    assert_int_equal(got.last_success_at, 0);
    assert_string_equal(got.last_error, "");
    store_fed_relation_clear(&got);
    assert_null(got.ca_pem);
    assert_int_equal(got.ca_len, 0);

    assert_int_equal(store_fed_relation_get(f->s, "b.test", &got, &found, &e), 0);
    assert_int_equal(found, 1);
    assert_string_equal(got.endpoint_id, "spiffe://b.test/bundle-server");
    assert_null(got.ca_pem);
    assert_true(got.created_at > 0); /* 0 given: now */
    store_fed_relation_clear(&got);
    /* The bootstrap bundle went in with it, with source "bootstrap" whatever it said. */
    expect_bundle(f->s, "b.test", "{\"keys\":[]}", "bootstrap");
    expect_no_bundle(f->s, "a.test");

    assert_int_equal(store_fed_relation_get(f->s, "c.test", &got, &found, &e), 0);
    assert_int_equal(found, 0);
    assert_null(got.ca_pem);

    assert_int_equal(store_fed_relation_list(f->s, &list, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].trust_domain, "a.test"); /* by trust domain */
    assert_string_equal(list[1].trust_domain, "b.test");
    assert_memory_equal(list[0].ca_pem, ca, list[0].ca_len);
    store_fed_relation_list_free(list, n);

    /* Delete takes the bundle with it; a second delete is refused as absent. */
    assert_int_equal(store_fed_relation_delete(f->s, "b.test", &e), 0);
    expect_no_bundle(f->s, "b.test");
    assert_int_equal(store_fed_relation_get(f->s, "b.test", &got, &found, &e), 0);
    assert_int_equal(found, 0);
    assert_int_equal(store_fed_relation_delete(f->s, "b.test", &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_NOT_FOUND);
    assert_non_null(strstr(e.msg, "b.test"));
    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_list(f->s, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    store_fed_relation_list_free(list, n);
}

static void test_duplicate_add_changes_nothing(void **state)
{
    struct fx *f = *state;
    struct store_fed_relation r =
        spiffe_rel("b.test", "https://b.example/one", "spiffe://b.test/one");
    struct store_fed_relation again =
        spiffe_rel("b.test", "https://b.example/two", "spiffe://b.test/two");
    struct store_fed_bundle boot1 = mk_bundle("b.test", "{\"keys\":[1]}", "bootstrap", 1);
    struct store_fed_bundle boot2 = mk_bundle("b.test", "{\"keys\":[2]}", "bootstrap", 2);
    struct store_fed_relation got;
    struct ly_error e = {0};
    int found = 0;

    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_add(f->s, &r, &boot1, &e), 0);
    assert_int_equal(store_fed_relation_add(f->s, &again, &boot2, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_EXISTS);
    assert_non_null(strstr(e.msg, "b.test"));
    assert_non_null(strstr(e.msg, "already exists"));
    ly_error_clear(&e);
    /* The existing relationship and its bundle are untouched. */
    assert_int_equal(store_fed_relation_get(f->s, "b.test", &got, &found, &e), 0);
    assert_int_equal(found, 1);
    assert_string_equal(got.url, "https://b.example/one");
    assert_string_equal(got.endpoint_id, "spiffe://b.test/one");
    store_fed_relation_clear(&got);
    expect_bundle(f->s, "b.test", "{\"keys\":[1]}", "bootstrap");
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM fed_relation"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM fed_bundle"), 1);
}

static void test_failed_bundle_write_rolls_back_relation(void **state)
{
    struct fx *f = *state;
    struct store_fed_relation r = spiffe_rel("b.test", "https://b.example/", "spiffe://b.test/x");
    struct store_fed_bundle boot = mk_bundle("b.test", "{\"keys\":[]}", "bootstrap", 1);
    struct store_fed_relation got;
    struct ly_error e = {0};
    int found = 1;

    ly_error_clear(&e);
    /* The bundle insert fails after the relationship row went in: nothing may stay. */
    raw_exec(f->path, "CREATE TRIGGER no_bundle BEFORE INSERT ON fed_bundle "
                      "BEGIN SELECT RAISE(ABORT, 'bundle refused by test'); END");
    assert_int_equal(store_fed_relation_add(f->s, &r, &boot, &e), LY_ERR_IO);
    assert_non_null(strstr(e.msg, "bundle refused by test"));
    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_get(f->s, "b.test", &got, &found, &e), 0);
    assert_int_equal(found, 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM fed_relation"), 0);
    raw_exec(f->path, "DROP TRIGGER no_bundle");
    /* The same add works once the obstacle is gone: the failure left no half state. */
    assert_int_equal(store_fed_relation_add(f->s, &r, &boot, &e), 0);
    expect_bundle(f->s, "b.test", "{\"keys\":[]}", "bootstrap");
}

static void test_add_inside_caller_transaction(void **state)
{
    struct fx *f = *state;
    struct store_fed_relation r = web_rel("w.test", "https://w.example/");
    struct store_fed_relation got;
    struct ly_error e = {0};
    int found = 1;

    ly_error_clear(&e);
    assert_int_equal(store_begin(f->s, &e), 0);
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), 0);
    store_rollback(f->s);
    assert_int_equal(store_fed_relation_get(f->s, "w.test", &got, &found, &e), 0);
    assert_int_equal(found, 0);
    assert_int_equal(store_begin(f->s, &e), 0);
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), 0);
    assert_int_equal(store_commit(f->s, &e), 0);
    assert_int_equal(store_fed_relation_get(f->s, "w.test", &got, &found, &e), 0);
    assert_int_equal(found, 1);
    store_fed_relation_clear(&got);
}

static void test_relation_status(void **state)
{
    struct fx *f = *state;
    struct store_fed_relation r = web_rel("s.test", "https://s.example/");
    struct store_fed_relation got;
    struct ly_error e = {0};
    char longmsg[400];
    int found = 0;
    size_t i;

    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), 0);
    /* A failure before any success: error kept, no success time. */
    assert_int_equal(store_fed_relation_status(f->s, "s.test", 100, 0, "connect refused", &e), 0);
    assert_int_equal(store_fed_relation_get(f->s, "s.test", &got, &found, &e), 0);
    assert_int_equal(got.last_attempt_at, 100);
    assert_int_equal(got.last_success_at, 0);
    assert_string_equal(got.last_error, "connect refused");
    store_fed_relation_clear(&got);
    /* Success clears the error and sets the success time. */
    assert_int_equal(store_fed_relation_status(f->s, "s.test", 200, 1, "ignored", &e), 0);
    assert_int_equal(store_fed_relation_get(f->s, "s.test", &got, &found, &e), 0);
    assert_int_equal(got.last_attempt_at, 200);
    assert_int_equal(got.last_success_at, 200);
    assert_string_equal(got.last_error, "");
    store_fed_relation_clear(&got);
    /* A later failure keeps last_success_at; NULL error still records a failure. */
    assert_int_equal(store_fed_relation_status(f->s, "s.test", 300, 0, NULL, &e), 0);
    assert_int_equal(store_fed_relation_get(f->s, "s.test", &got, &found, &e), 0);
    assert_int_equal(got.last_attempt_at, 300);
    assert_int_equal(got.last_success_at, 200);
    assert_string_equal(got.last_error, "failed (no reason given)");
    store_fed_relation_clear(&got);
    assert_int_equal(store_fed_relation_status(f->s, "s.test", 301, 0, "", &e), 0);
    assert_int_equal(store_fed_relation_get(f->s, "s.test", &got, &found, &e), 0);
    assert_string_equal(got.last_error, "failed (no reason given)");
    store_fed_relation_clear(&got);
    /* An over-long error is cut to 255 bytes, never inside a UTF-8 character. */
    for (i = 0; i + 2 < sizeof(longmsg); i += 2) {
        longmsg[i] = (char)0xC3; /* "é" */
        longmsg[i + 1] = (char)0xA9;
    }
    longmsg[i] = '\0';
    assert_int_equal(store_fed_relation_status(f->s, "s.test", 400, 0, longmsg, &e), 0);
    assert_int_equal(store_fed_relation_get(f->s, "s.test", &got, &found, &e), 0);
    assert_int_equal(strlen(got.last_error), 254);
    assert_int_equal((unsigned char)got.last_error[253], 0xA9);
    assert_int_equal(got.last_success_at, 200);
    store_fed_relation_clear(&got);
    /* An absent relationship (deleted while a fetch ran) is reported. */
    assert_int_equal(store_fed_relation_status(f->s, "gone.test", 500, 1, NULL, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_NOT_FOUND);
    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_status(f->s, NULL, 500, 1, NULL, &e), LY_ERR_USAGE);
}

static void test_bundle_put_get_list_delete_replace(void **state)
{
    struct fx *f = *state;
    struct store_fed_bundle s1 = mk_bundle("x.test", "{\"keys\":[\"x1\"]}", "static", -1);
    struct store_fed_bundle s2 = mk_bundle("x.test", "{\"keys\":[\"x2\"]}", "static", 4);
    struct store_fed_bundle y = mk_bundle("y.test", "{\"keys\":[\"y\"]}", "static", 9);
    struct store_fed_bundle got;
    struct store_fed_bundle *list = NULL;
    struct ly_error e = {0};
    size_t n = 99;
    int found = 0;

    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_list(f->s, &list, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(list);
    s1.updated_at = 1234;
    assert_int_equal(store_fed_bundle_put(f->s, &s1, &e), 0);
    assert_int_equal(store_fed_bundle_get(f->s, "x.test", &got, &found, &e), 0);
    assert_int_equal(found, 1);
    assert_int_equal(got.sequence, -1);
    assert_int_equal(got.refresh_hint, -1);
    assert_int_equal(got.updated_at, 1234);
    store_fed_bundle_clear(&got);
    /* Put again: replaced, not duplicated. */
    assert_int_equal(store_fed_bundle_put(f->s, &s2, &e), 0);
    assert_int_equal(store_fed_bundle_get(f->s, "x.test", &got, &found, &e), 0);
    assert_int_equal(got.sequence, 4);
    assert_int_equal(got.refresh_hint, 300);
    assert_true(got.updated_at > 1234); /* 0 given: now */
    store_fed_bundle_clear(&got);
    expect_bundle(f->s, "x.test", "{\"keys\":[\"x2\"]}", "static");
    assert_int_equal(store_fed_bundle_put(f->s, &y, &e), 0);
    assert_int_equal(store_fed_bundle_list(f->s, &list, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].trust_domain, "x.test");
    assert_string_equal(list[1].trust_domain, "y.test");
    assert_int_equal(list[1].sequence, 9);
    assert_memory_equal(list[1].json, "{\"keys\":[\"y\"]}", list[1].len);
    store_fed_bundle_list_free(list, n);
    assert_int_equal(store_fed_bundle_delete(f->s, "x.test", &e), 0);
    expect_no_bundle(f->s, "x.test");
    assert_int_equal(store_fed_bundle_delete(f->s, "x.test", &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_NOT_FOUND);
    assert_non_null(strstr(e.msg, "x.test"));
    ly_error_clear(&e);
    expect_bundle(f->s, "y.test", "{\"keys\":[\"y\"]}", "static");
}

static void test_bundle_relationship_invariants(void **state)
{
    struct fx *f = *state;
    struct store_fed_relation r = spiffe_rel("r.test", "https://r.example/", "spiffe://r.test/e");
    struct store_fed_relation w = web_rel("w.test", "https://w.example/");
    struct store_fed_relation got;
    struct store_fed_bundle boot = mk_bundle("r.test", "{\"boot\":1}", "bootstrap", 1);
    struct store_fed_bundle fetched = mk_bundle("r.test", "{\"fetched\":2}", "endpoint", 2);
    struct store_fed_bundle stat = mk_bundle("r.test", "{\"static\":1}", "static", 1);
    struct store_fed_bundle orphan = mk_bundle("none.test", "{}", "endpoint", 1);
    struct store_fed_bundle wstat = mk_bundle("w.test", "{\"static\":1}", "static", 1);
    struct ly_error e = {0};
    int found = 1;

    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_add(f->s, &r, &boot, &e), 0);
    /* A static bundle for a fetched trust domain is refused, naming where it comes from. */
    assert_int_equal(store_fed_bundle_put(f->s, &stat, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_CONFLICT);
    assert_non_null(strstr(e.msg, "r.test is fetched from https://r.example/"));
    assert_non_null(strstr(e.msg, "delete the relationship first"));
    ly_error_clear(&e);
    expect_bundle(f->s, "r.test", "{\"boot\":1}", "bootstrap");
    /* A fetched bundle replaces the bootstrap one. */
    assert_int_equal(store_fed_bundle_put(f->s, &fetched, &e), 0);
    expect_bundle(f->s, "r.test", "{\"fetched\":2}", "endpoint");
    /* Its bundle cannot be deleted on its own. */
    assert_int_equal(store_fed_bundle_delete(f->s, "r.test", &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_CONFLICT);
    ly_error_clear(&e);
    expect_bundle(f->s, "r.test", "{\"fetched\":2}", "endpoint");
    /* A fetch that lands after the relationship is gone cannot bring the bundle back. */
    assert_int_equal(store_fed_relation_delete(f->s, "r.test", &e), 0);
    assert_int_equal(store_fed_bundle_put(f->s, &fetched, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_NOT_FOUND);
    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_put(f->s, &orphan, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    expect_no_bundle(f->s, "r.test");
    /* Without the relationship a static bundle is fine... */
    assert_int_equal(store_fed_bundle_put(f->s, &stat, &e), 0);
    /* ...and a relationship over a static bundle is refused, adding nothing. */
    assert_int_equal(store_fed_bundle_put(f->s, &wstat, &e), 0);
    assert_int_equal(store_fed_relation_add(f->s, &w, NULL, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, STORE_FED_R_CONFLICT);
    assert_non_null(strstr(e.msg, "static"));
    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_get(f->s, "w.test", &got, &found, &e), 0);
    assert_int_equal(found, 0);
    expect_bundle(f->s, "w.test", "{\"static\":1}", "static");
}

static void test_malformed_arguments(void **state)
{
    struct fx *f = *state;
    struct store_fed_relation r;
    struct store_fed_relation got;
    struct store_fed_relation *rl = NULL;
    struct store_fed_bundle b;
    struct store_fed_bundle bg;
    struct ly_error e = {0};
    uint8_t byte = 'x';
    size_t n = 0;
    int found = 7;

    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_add(f->s, NULL, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = web_rel("Bad_TD", "https://x.example/");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    assert_non_null(strstr(e.msg, "not a bare trust domain"));
    ly_error_clear(&e);
    r = web_rel("spiffe://x.test", "https://x.example/");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = web_rel("", "https://x.example/");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = web_rel("x.test", "http://x.example/");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    assert_non_null(strstr(e.msg, "https://"));
    ly_error_clear(&e);
    r = web_rel("x.test", "https://");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = web_rel("x.test", "https://x.example/");
    (void)snprintf(r.profile, sizeof(r.profile), "https_other");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = web_rel("x.test", "https://x.example/");
    (void)snprintf(r.endpoint_id, sizeof(r.endpoint_id), "spiffe://x.test/e");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = spiffe_rel("x.test", "https://x.example/", "");
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = spiffe_rel("x.test", "https://x.example/", "spiffe://x.test/e");
    r.ca_pem = &byte;
    r.ca_len = 1;
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = web_rel("x.test", "https://x.example/");
    r.ca_pem = NULL;
    r.ca_len = 5; /* length without bytes */
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    r = web_rel("x.test", "https://x.example/");
    memset(r.url, 'a', sizeof(r.url)); /* not terminated */
    assert_int_equal(store_fed_relation_add(f->s, &r, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    /* A bootstrap bundle of another trust domain, or an empty one. */
    r = spiffe_rel("x.test", "https://x.example/", "spiffe://x.test/e");
    b = mk_bundle("y.test", "{}", "bootstrap", 1);
    assert_int_equal(store_fed_relation_add(f->s, &r, &b, &e), LY_ERR_USAGE);
    assert_non_null(strstr(e.msg, "y.test"));
    ly_error_clear(&e);
    b = mk_bundle("x.test", "", "bootstrap", 1);
    assert_int_equal(store_fed_relation_add(f->s, &r, &b, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    /* None of these left anything behind. */
    assert_int_equal(store_fed_relation_list(f->s, &rl, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(rl);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM fed_bundle"), 0);

    /* Bundles. */
    assert_int_equal(store_fed_bundle_put(f->s, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    b = mk_bundle("x.test", "{}", "static", 1);
    b.json = NULL;
    assert_int_equal(store_fed_bundle_put(f->s, &b, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    b = mk_bundle("x.test", "{}", "static", 1);
    b.len = 0;
    assert_int_equal(store_fed_bundle_put(f->s, &b, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    b = mk_bundle("x.test", "{}", "fetched", 1);
    assert_int_equal(store_fed_bundle_put(f->s, &b, &e), LY_ERR_USAGE);
    assert_non_null(strstr(e.msg, "source"));
    ly_error_clear(&e);
    b = mk_bundle("x.test", "{}", "static", -2);
    assert_int_equal(store_fed_bundle_put(f->s, &b, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    b = mk_bundle("X.test", "{}", "static", 1);
    assert_int_equal(store_fed_bundle_put(f->s, &b, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    b = mk_bundle("x.test", "{}", "static", 1);
    b.len = STORE_FED_JSON_MAX + 1u;
    assert_int_equal(store_fed_bundle_put(f->s, &b, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM fed_bundle"), 0);

    /* NULL trust domains and free/clear of nothing. */
    assert_int_equal(store_fed_relation_get(f->s, NULL, &got, &found, &e), LY_ERR_USAGE);
    assert_int_equal(found, 0);
    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_get(f->s, NULL, &bg, &found, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(store_fed_relation_delete(f->s, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_delete(f->s, NULL, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_delete(f->s, "", &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(store_fed_bundle_get(f->s, "", &bg, &found, &e), 0);
    assert_int_equal(found, 0);
    store_fed_relation_clear(NULL);
    store_fed_bundle_clear(NULL);
    store_fed_relation_list_free(NULL, 0);
    store_fed_bundle_list_free(NULL, 3);
}

static void test_schema_checks_hold_against_raw_sql(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = NULL;

    /* The CHECK constraints refuse what the API refuses, even for a writer that bypasses it. */
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO fed_relation(trust_domain, url, profile,"
                                      " created_at) VALUES ('a.test', 'https://a/', 'ftp', 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO fed_relation(trust_domain, url, profile,"
                                      " created_at) VALUES ('a.test', 'http://a/', 'https_web', 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO fed_relation(trust_domain, url, profile,"
                                      " created_at) VALUES ('a.test', 'https://a/', "
                                      "'https_spiffe', 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO fed_bundle(trust_domain, json, source,"
                                      " updated_at) VALUES ('a.test', X'7B7D', 'fetched', 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static struct entry *mk_entry(const char *id, const char *sel)
{
    struct entry *en = entry_new();
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_non_null(en);
    assert_int_equal(entry_set_spiffe_id(en, id, strlen(id), &e), 0);
    assert_int_equal(entry_add_selector(en, sel, strlen(sel), &e), 0);
    assert_int_equal(entry_add_federates_with(en, "peer.test", 9, &e), 0);
    assert_int_equal(entry_validate(en, "ex.test", &e), 0);
    return en;
}

static void test_upgrade_from_v3(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct entry *en = mk_entry("spiffe://ex.test/w", "unix:uid:1000");
    struct entry **entries = NULL;
    struct consent *c = consent_new();
    struct consent **grants = NULL;
    struct store_fed_relation r = web_rel("peer.test", "https://peer.example/bundle");
    struct store_fed_relation got;
    size_t n = 0;
    int found = 0;
    char v[64];

    ly_error_clear(&e);
    /* A v3 database with an entry and a consent record, made by the v3 code path. */
    assert_int_equal(store_open_version(f->path, 3, &s, &e), 0);
    assert_int_equal(store_meta_set(s, "trust_domain", "ex.test", &e), 0);
    assert_int_equal(store_entry_add(s, en, &e), 0);
    assert_non_null(c);
    assert_int_equal(consent_set_user(c, "alice", &e), 0);
    assert_int_equal(consent_set_client(c, "spiffe://ex.test/agent", &e), 0);
    assert_int_equal(consent_add_scope(c, "tools:echo", &e), 0);
    memcpy(c->granted_by, "admin", 6);
    c->granted_at = 100;
    assert_int_equal(store_consent_add(s, c, &e), 0);
    store_close(s);
    s = NULL;
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 3);
    assert_int_equal(
        raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'fed_relation'"), 0);

    /* The current code upgrades it in place and keeps everything. */
    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 4);
    assert_int_equal(store_meta_get(s, "trust_domain", v, sizeof(v), &e), 0);
    assert_string_equal(v, "ex.test");
    assert_int_equal(store_entry_list(s, &entries, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(entries[0]->id, en->id);
    assert_int_equal(entries[0]->n_federates_with, 1);
    assert_string_equal(entries[0]->federates_with[0], "peer.test");
    entry_list_free(entries, n);
    assert_int_equal(store_consent_list(s, "alice", NULL, &grants, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(grants[0]->id, c->id);
    assert_string_equal(grants[0]->scopes[0], "tools:echo");
    consent_list_free(grants, n);
    /* The new tables work. */
    assert_int_equal(store_fed_relation_add(s, &r, NULL, &e), 0);
    assert_int_equal(store_fed_relation_get(s, "peer.test", &got, &found, &e), 0);
    assert_int_equal(found, 1);
    store_fed_relation_clear(&got);
    store_close(s);
    s = NULL;
    /* Asking for v3 again leaves v4 alone; v5 does not exist. */
    assert_int_equal(store_open_version(f->path, 3, &s, &e), 0);
    store_close(s);
    s = NULL;
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 4);
    assert_int_equal(store_open_version(f->path, 5, &s, &e), LY_ERR_USAGE);
    assert_null(s);
    entry_free(en);
    consent_free(c);
}

static void test_failed_upgrade_to_v4_changes_nothing(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(store_open_version(f->path, 3, &s, &e), 0);
    assert_int_equal(store_meta_set(s, "trust_domain", "ex.test", &e), 0);
    store_close(s);
    s = NULL;
    /* A stray table makes step v4 fail after fed_relation was created. */
    raw_exec(f->path, "CREATE TABLE fed_bundle (x INTEGER)");
    assert_int_equal(store_open(f->path, &s, &e), LY_ERR_IO);
    assert_null(s);
    assert_non_null(strstr(e.msg, "upgrading schema"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 3);
    assert_int_equal(
        raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'fed_relation'"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM meta"), 1);
}

static void test_data_version_sees_other_connection(void **state)
{
    struct fx *f = *state;
    struct store *other = NULL;
    struct store_fed_bundle b = mk_bundle("v.test", "{}", "static", 1);
    struct ly_error e = {0};
    int64_t v1 = 0;
    int64_t v2 = 0;
    int64_t v3 = 0;

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &other, &e), 0);
    assert_int_equal(store_data_version(f->s, &v1, &e), 0);
    assert_int_equal(store_data_version(f->s, &v2, &e), 0);
    assert_true(v1 == v2);
    /* `lanyard bundle set` in another process: the daemon's handle notices. */
    assert_int_equal(store_fed_bundle_put(other, &b, &e), 0);
    assert_int_equal(store_data_version(f->s, &v3, &e), 0);
    assert_true(v3 != v2);
    store_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relation_add_get_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_add_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_bundle_write_rolls_back_relation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_inside_caller_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relation_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_put_get_list_delete_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_relationship_invariants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_checks_hold_against_raw_sql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_v3, setup_empty, teardown),
        cmocka_unit_test_setup_teardown(test_failed_upgrade_to_v4_changes_nothing, setup_empty,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_data_version_sees_other_connection, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
