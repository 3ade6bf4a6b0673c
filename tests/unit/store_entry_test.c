/*
 * Unit tests for the store's registration entries (schema v2): the v1 -> v2 upgrade of a
 * database made by the v1 code path (data kept, one transaction, a failed upgrade changes
 * nothing), add/get/list/delete, duplicate refusal, all-or-nothing writes, the attestation
 * lookup's ALL-selectors rule, and timings with 10,000 entries.
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
#include <time.h>
#include <unistd.h>

#include "../../broker/entry.h"
#include "../../broker/store.h"
#include "../../broker/store_internal.h"

struct fx {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/lanyard-entry-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    (void)snprintf(f->path, sizeof(f->path), "%s/lanyard.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    size_t i;

    for (i = 0; i < 4; i++) {
        (void)snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
        (void)unlink(p);
    }
    (void)rmdir(f->dir);
    free(f);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Run one SQL query on the raw file and return the first column of the first row as int. */
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
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static struct entry *mk(const char *id, const char *s1, const char *s2)
{
    struct entry *e = entry_new();
    struct ly_error err = {0};

    ly_error_clear(&err);
    assert_non_null(e);
    assert_int_equal(entry_set_spiffe_id(e, id, strlen(id), &err), 0);
    assert_int_equal(entry_add_selector(e, s1, strlen(s1), &err), 0);
    if (s2 != NULL) {
        assert_int_equal(entry_add_selector(e, s2, strlen(s2), &err), 0);
    }
    assert_int_equal(entry_validate(e, "ex.test", &err), 0);
    return e;
}

static void test_migrate_v1_to_v2(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct entry *en;
    struct entry **list = NULL;
    size_t n = 0;
    char v[64];

    ly_error_clear(&e);
    /* A v1 database, made by the same code path that made v1 databases. */
    assert_int_equal(store_open_version(f->path, 1, &s, &e), 0);
    assert_int_equal(store_meta_set(s, "trust_domain", "ex.test", &e), 0);
    store_close(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'entry'"),
                     0);
    /* Reopening with the current code upgrades it and keeps the data. */
    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(store_meta_get(s, "trust_domain", v, sizeof(v), &e), 0);
    assert_string_equal(v, "ex.test");
    en = mk("spiffe://ex.test/after-upgrade", "unix:uid:1000", NULL);
    assert_int_equal(store_entry_add(s, en, &e), 0);
    entry_free(en);
    assert_int_equal(store_entry_list(s, &list, &n, &e), 0);
    assert_int_equal(n, 1);
    entry_list_free(list, n);
    store_close(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 4);
    /* Reopening again is a no-op; asking for an older version leaves the newer one alone. */
    assert_int_equal(store_open(f->path, &s, &e), 0);
    store_close(s);
    assert_int_equal(store_open_version(f->path, 1, &s, &e), 0);
    store_close(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 4);
    assert_int_equal(store_open_version(f->path, 5, &s, &e), LY_ERR_USAGE);
    assert_null(s);
    /* A newer schema is refused, not downgraded. */
    raw_exec(f->path, "PRAGMA user_version = 9");
    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), LY_ERR_USAGE);
    assert_non_null(strstr(e.msg, "newer"));
    assert_null(s);
}

static void test_failed_migration_changes_nothing(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(store_open_version(f->path, 1, &s, &e), 0);
    assert_int_equal(store_meta_set(s, "trust_domain", "ex.test", &e), 0);
    store_close(s);
    /* A stray table makes the upgrade fail half-way (after CREATE TABLE entry succeeded). */
    raw_exec(f->path, "CREATE TABLE entry_dns (x INTEGER)");
    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), LY_ERR_IO);
    assert_null(s);
    assert_non_null(strstr(e.msg, "upgrading schema"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'entry'"),
                     0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM meta"), 1);
}

static void test_add_get_list_delete(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct entry *a = mk("spiffe://ex.test/a", "unix:uid:1000", "unix:path:/usr/bin/a");
    struct entry *b = mk("spiffe://ex.test/b", "unix:gid:50", NULL);
    struct entry *dup = mk("spiffe://ex.test/a", "unix:path:/usr/bin/a", "unix:uid:1000");
    struct entry *other_id = mk("spiffe://ex.test/a2", "unix:uid:1000", "unix:path:/usr/bin/a");
    struct entry *got = NULL;
    struct entry **list = NULL;
    size_t n = 0;
    int64_t count = -1;

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(entry_add_dns(a, "z.example", 9, &e), 0);
    assert_int_equal(entry_add_dns(a, "a.example", 9, &e), 0);
    assert_int_equal(entry_add_federates_with(a, "peer.test", 9, &e), 0);
    assert_int_equal(entry_set_hint(a, "front", 5, &e), 0);
    assert_int_equal(entry_set_ttl(a, 600, &e), 0);
    assert_int_equal(store_entry_add(s, a, &e), 0);
    assert_true(entry_id_valid(a->id, strlen(a->id)));
    assert_true(a->created_at > 1600000000);
    assert_int_equal(store_entry_add(s, b, &e), 0);
    assert_string_not_equal(a->id, b->id);
    /* Same SPIFFE ID and same selector set (other order): refused, naming the existing id. */
    assert_int_equal(store_entry_add(s, dup, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, ENTRY_R_DUPLICATE);
    assert_non_null(strstr(e.msg, "already exists"));
    assert_non_null(strstr(e.msg, a->id));
    assert_string_equal(dup->id, "");
    ly_error_clear(&e);
    /* Same selectors, another SPIFFE ID: a different entry. */
    assert_int_equal(store_entry_add(s, other_id, &e), 0);
    assert_int_equal(store_entry_count(s, &count, &e), 0);
    assert_int_equal(count, 3);

    assert_int_equal(store_entry_get(s, a->id, &got, &e), 0);
    assert_string_equal(got->spiffe_id, "spiffe://ex.test/a");
    assert_int_equal(got->ttl, 600);
    assert_string_equal(got->hint, "front");
    assert_int_equal(got->n_selectors, 2);
    assert_int_equal(got->selectors[0].type, ENTRY_SEL_UID);
    assert_string_equal(got->selectors[1].value, "/usr/bin/a");
    assert_int_equal(got->n_dns, 2);
    assert_string_equal(got->dns[0], "z.example"); /* order kept */
    assert_string_equal(got->dns[1], "a.example");
    assert_int_equal(got->n_federates_with, 1);
    assert_int_equal(got->created_at, a->created_at);
    entry_free(got);
    got = NULL;

    assert_int_equal(store_entry_list(s, &list, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0]->id, a->id); /* oldest first */
    assert_string_equal(list[1]->id, b->id);
    assert_string_equal(list[2]->id, other_id->id);
    assert_null(list[1]->hint);
    assert_int_equal(list[1]->n_dns, 0);
    entry_list_free(list, n);

    assert_int_equal(store_entry_delete(s, a->id, &e), 0);
    assert_int_equal(store_entry_delete(s, a->id, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, ENTRY_R_NOT_FOUND);
    ly_error_clear(&e);
    assert_int_equal(store_entry_get(s, a->id, &got, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, ENTRY_R_NOT_FOUND);
    ly_error_clear(&e);
    assert_int_equal(store_entry_get(s, "not-an-id", &got, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, ENTRY_R_BAD_ENTRY_ID);
    ly_error_clear(&e);
    assert_int_equal(store_entry_delete(s, "'; DROP TABLE entry; --", &e), LY_ERR_PARSE);
    ly_error_clear(&e);
    /* The children went with the entry (ON DELETE CASCADE). */
    store_close(s);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entry_selector"), 3);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entry_dns"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entry_federates_with"), 0);
    /* After deleting, the same entry can be registered again. */
    assert_int_equal(store_open(f->path, &s, &e), 0);
    memset(dup->id, 0, sizeof(dup->id));
    assert_int_equal(store_entry_add(s, dup, &e), 0);
    store_close(s);
    entry_free(a);
    entry_free(b);
    entry_free(dup);
    entry_free(other_id);
}

static void test_all_or_nothing(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct entry *a = mk("spiffe://ex.test/a", "unix:uid:7", NULL);
    char **dns = calloc(2, sizeof(char *));

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    /* Two equal DNS names behind the setter's back: the last insert fails... */
    assert_non_null(dns);
    dns[0] = strdup("a.example");
    dns[1] = strdup("a.example");
    a->dns = dns;
    a->n_dns = 2;
    assert_int_equal(store_entry_add(s, a, &e), LY_ERR_IO);
    assert_string_equal(a->id, "");
    /* ...and nothing of the entry remains. */
    store_close(s);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entry"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entry_selector"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entry_dns"), 0);
    /* Inside a caller's transaction the same failure rolls back only the entry (savepoint). */
    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(store_begin(s, &e), 0);
    assert_int_equal(store_meta_set(s, "k", "v", &e), 0);
    assert_int_equal(store_entry_add(s, a, &e), LY_ERR_IO);
    ly_error_clear(&e);
    assert_int_equal(store_commit(s, &e), 0);
    store_close(s);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM meta WHERE key = 'k'"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entry"), 0);
    entry_free(a);
}

/* Facts from selector strings. */
static struct entry_selector *facts(const char *const *v, size_t n)
{
    struct entry_selector *out = calloc(n, sizeof(*out));
    struct ly_error e = {0};
    size_t i;

    assert_non_null(out);
    for (i = 0; i < n; i++) {
        ly_error_clear(&e);
        assert_int_equal(entry_selector_parse(v[i], strlen(v[i]), &out[i], &e), 0);
    }
    return out;
}

static void free_facts(struct entry_selector *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        entry_selector_clear(&v[i]);
    }
    free(v);
}

static void test_match(void **state)
{
    static const char *const w[] = {"unix:uid:1000", "unix:gid:1000", "unix:user:alice",
                                    "unix:path:/usr/bin/mcp", "unix:supplementary_gid:27",
                                    "unix:supplementary_gid:27" /* a repeated fact counts once */};
    static const char *const w2[] = {"unix:uid:1001", "unix:path:/usr/bin/mcp"};
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct entry *byuid = mk("spiffe://ex.test/uid", "unix:uid:1000", NULL);
    struct entry *both = mk("spiffe://ex.test/both", "unix:uid:1000", "unix:path:/usr/bin/mcp");
    struct entry *wrongpath = mk("spiffe://ex.test/wp", "unix:uid:1000", "unix:path:/usr/bin/x");
    struct entry *bypath = mk("spiffe://ex.test/path", "unix:path:/usr/bin/mcp", NULL);
    struct entry *grp = mk("spiffe://ex.test/grp", "unix:supplementary_gid:27", "unix:user:alice");
    struct entry_selector *fa = facts(w, 6);
    struct entry_selector *fb = facts(w2, 2);
    struct entry **m = NULL;
    size_t n = 0;

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(store_entry_add(s, byuid, &e), 0);
    assert_int_equal(store_entry_add(s, both, &e), 0);
    assert_int_equal(store_entry_add(s, wrongpath, &e), 0);
    assert_int_equal(store_entry_add(s, bypath, &e), 0);
    assert_int_equal(store_entry_add(s, grp, &e), 0);
    assert_int_equal(store_entry_match(s, fa, 6, &m, &n, &e), 0);
    assert_int_equal(n, 4);
    assert_string_equal(m[0]->spiffe_id, "spiffe://ex.test/uid");
    assert_string_equal(m[1]->spiffe_id, "spiffe://ex.test/both");
    assert_string_equal(m[2]->spiffe_id, "spiffe://ex.test/path");
    assert_string_equal(m[3]->spiffe_id, "spiffe://ex.test/grp");
    assert_int_equal(m[1]->n_selectors, 2);
    entry_list_free(m, n);
    assert_int_equal(store_entry_match(s, fb, 2, &m, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(m[0]->spiffe_id, "spiffe://ex.test/path");
    entry_list_free(m, n);
    /* No facts, or facts nothing needs: no identity. */
    assert_int_equal(store_entry_match(s, fb, 0, &m, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(m);
    assert_int_equal(store_entry_match(s, fa + 1, 1, &m, &n, &e), 0); /* gid only */
    assert_int_equal(n, 0);
    /* The lookup works inside a caller's transaction too. */
    assert_int_equal(store_begin(s, &e), 0);
    assert_int_equal(store_entry_match(s, fb, 2, &m, &n, &e), 0);
    assert_int_equal(n, 1);
    entry_list_free(m, n);
    assert_int_equal(store_commit(s, &e), 0);
    store_close(s);
    free_facts(fa, 6);
    free_facts(fb, 2);
    entry_free(byuid);
    entry_free(both);
    entry_free(wrongpath);
    entry_free(bypath);
    entry_free(grp);
}

/* 10,000 entries: list and lookup timings (printed; loose bounds so ASan runs pass). */
static void test_ten_thousand(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct entry **list = NULL;
    size_t n = 0;
    double t0;
    double t_add;
    double t_list;
    double t_match;
    double t_worst;
    size_t i;
    int round;

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    t0 = now_ms();
    assert_int_equal(store_begin(s, &e), 0);
    for (i = 0; i < 10000; i++) {
        char id[64];
        char s1[32];
        char s2[64];
        struct entry *en;
        (void)snprintf(id, sizeof(id), "spiffe://ex.test/w/%zu", i);
        /* Half the entries share uid 1000 (each with its own path), half have their own uid. */
        if (i % 2 == 0) {
            (void)snprintf(s1, sizeof(s1), "unix:uid:1000");
            (void)snprintf(s2, sizeof(s2), "unix:path:/srv/bin/w%zu", i);
        } else {
            (void)snprintf(s1, sizeof(s1), "unix:uid:%zu", 20000 + i);
            (void)snprintf(s2, sizeof(s2), "unix:gid:%zu", 20000 + i);
        }
        en = mk(id, s1, s2);
        assert_int_equal(store_entry_add(s, en, &e), 0);
        entry_free(en);
    }
    assert_int_equal(store_commit(s, &e), 0);
    t_add = now_ms() - t0;

    t0 = now_ms();
    assert_int_equal(store_entry_list(s, &list, &n, &e), 0);
    t_list = now_ms() - t0;
    assert_int_equal(n, 10000);
    entry_list_free(list, n);

    /* Typical lookup: a workload whose uid appears in one entry. */
    {
        static const char *const w[] = {"unix:uid:20001", "unix:gid:20001", "unix:user:svc",
                                         "unix:group:svc", "unix:path:/usr/bin/x",
                                         "unix:sha256:0000000000000000000000000000000000000000"
                                         "000000000000000000000000"};
        struct entry_selector *fa = facts(w, 6);
        t0 = now_ms();
        for (round = 0; round < 100; round++) {
            assert_int_equal(store_entry_match(s, fa, 6, &list, &n, &e), 0);
            assert_int_equal(n, 1);
            entry_list_free(list, n);
        }
        t_match = (now_ms() - t0) / 100;
        free_facts(fa, 6);
    }
    /* Worst case: the uid is shared by 5,000 entries; one path matches. */
    {
        static const char *const w[] = {"unix:uid:1000", "unix:gid:1000",
                                        "unix:path:/srv/bin/w4242"};
        struct entry_selector *fa = facts(w, 3);
        t0 = now_ms();
        for (round = 0; round < 20; round++) {
            assert_int_equal(store_entry_match(s, fa, 3, &list, &n, &e), 0);
            assert_int_equal(n, 1);
            assert_string_equal(list[0]->spiffe_id, "spiffe://ex.test/w/4242");
            entry_list_free(list, n);
        }
        t_worst = (now_ms() - t0) / 20;
        free_facts(fa, 3);
    }
    store_close(s);
    printf("# 10000 entries: add (one transaction) %.0f ms, list %.1f ms, lookup %.3f ms "
           "(1 candidate), %.3f ms (5000 candidates share the uid)\n",
           t_add, t_list, t_match, t_worst);
    assert_true(t_list < 5000);
    assert_true(t_match < 50);
    assert_true(t_worst < 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_v1_to_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_get_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_entry", tests, NULL, NULL);
}
