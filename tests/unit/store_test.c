/*
 * Unit tests for broker/store: schema creation, file mode, settings, CA / JWT key / SVID records,
 * persistence across reopen, and that a rolled-back transaction leaves nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../broker/store.h"

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
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/lanyard-store-XXXXXX");
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
    static const char *const sfx[] = {"", "-wal", "-shm"};
    size_t i;

    for (i = 0; i < 3; i++) {
        (void)snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
        (void)unlink(p);
    }
    (void)rmdir(f->dir);
    free(f);
    return 0;
}

static void test_open_mode_and_meta(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct stat st;
    char v[64];

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(store_meta_get(s, "trust_domain", v, sizeof(v), &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(store_meta_set(s, "trust_domain", "example.org", &e), 0);
    assert_int_equal(store_meta_set(s, "trust_domain", "example.com", &e), 0);
    assert_int_equal(store_meta_get(s, "trust_domain", v, sizeof(v), &e), 0);
    assert_string_equal(v, "example.com");
    assert_int_equal(store_meta_get(s, "trust_domain", v, 4, &e), LY_ERR_INTERNAL);
    store_close(s);
    store_close(NULL);
}

static void test_records_persist(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    struct store_ca ca;
    struct store_ca *cas = NULL;
    size_t n = 0;
    struct store_jwt_key jk;
    struct store_jwt_key *jks = NULL;
    struct store_svid sv;
    uint8_t der[3] = {0x30, 0x01, 0x00};
    uint8_t spki[2] = {0x30, 0x00};
    int64_t id;
    int64_t count;

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    memset(&ca, 0, sizeof(ca));
    (void)snprintf(ca.key_type, sizeof(ca.key_type), "ec-p256");
    (void)snprintf(ca.key_file, sizeof(ca.key_file), "keys/ca-1.key");
    (void)snprintf(ca.status, sizeof(ca.status), "active");
    ca.cert_der = der;
    ca.cert_len = sizeof(der);
    ca.not_before = 10;
    ca.not_after = 20;
    assert_int_equal(store_ca_add(s, &ca, &id, &e), 0);
    /* A bad status violates the schema's CHECK: a clear database error. */
    (void)snprintf(ca.key_file, sizeof(ca.key_file), "keys/ca-2.key");
    (void)snprintf(ca.status, sizeof(ca.status), "bogus");
    assert_int_equal(store_ca_add(s, &ca, &id, &e), LY_ERR_IO);
    assert_non_null(strstr(e.msg, "database"));
    ly_error_clear(&e);
    memset(&jk, 0, sizeof(jk));
    (void)snprintf(jk.kid, sizeof(jk.kid), "kid-1");
    (void)snprintf(jk.key_file, sizeof(jk.key_file), "keys/jwt-1.key");
    (void)snprintf(jk.status, sizeof(jk.status), "active");
    jk.spki = spki;
    jk.spki_len = sizeof(spki);
    assert_int_equal(store_jwt_key_add(s, &jk, &e), 0);
    memset(&sv, 0, sizeof(sv));
    (void)snprintf(sv.serial_hex, sizeof(sv.serial_hex), "0a0b");
    (void)snprintf(sv.spiffe_id, sizeof(sv.spiffe_id), "spiffe://example.org/w");
    (void)snprintf(sv.sha256_hex, sizeof(sv.sha256_hex), "%064d", 0);
    sv.ca_id = 1;
    assert_int_equal(store_svid_record(s, &sv, &e), 0);
    /* Same serial twice is refused (primary key): no silent overwrite of a record. */
    assert_int_equal(store_svid_record(s, &sv, &e), LY_ERR_IO);
    ly_error_clear(&e);
    store_close(s);

    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(store_ca_list(s, &cas, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cas[0].key_file, "keys/ca-1.key");
    assert_int_equal(cas[0].cert_len, sizeof(der));
    assert_memory_equal(cas[0].cert_der, der, sizeof(der));
    assert_int_equal(cas[0].not_after, 20);
    store_ca_list_free(cas, n);
    assert_int_equal(store_jwt_key_list(s, &jks, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(jks[0].kid, "kid-1");
    store_jwt_key_list_free(jks, n);
    assert_int_equal(store_svid_count(s, &count, &e), 0);
    assert_int_equal(count, 1);
    store_close(s);
}

static void test_rollback(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    char v[16];

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), 0);
    assert_int_equal(store_begin(s, &e), 0);
    assert_int_equal(store_meta_set(s, "k", "v", &e), 0);
    store_rollback(s);
    assert_int_equal(store_meta_get(s, "k", v, sizeof(v), &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(store_begin(s, &e), 0);
    assert_int_equal(store_meta_set(s, "k", "v", &e), 0);
    assert_int_equal(store_commit(s, &e), 0);
    assert_int_equal(store_meta_get(s, "k", v, sizeof(v), &e), 0);
    store_close(s);
}

static void test_open_failures(void **state)
{
    struct store *s = NULL;
    struct ly_error e = {0};
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(store_open("/nonexistent-dir/lanyard.db", &s, &e), LY_ERR_IO);
    assert_null(s);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/lanyard.db"));
}

static void test_not_a_database(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct ly_error e = {0};
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    assert_true(fputs("this is not an SQLite database, just text that is long enough to "
                      "fill a header page................................................\n",
                      fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &s, &e), LY_ERR_IO);
    assert_null(s);
}

/*
 * Several handles in one process and other processes opening and closing the store: every
 * committed write stays visible and durable. (The daemon case that lost writes when store_open
 * opened and closed the file itself is exercised end to end by tests/interop/workload_api.sh.)
 */
static void test_second_handle_keeps_writes(void **state)
{
    struct fx *f = *state;
    struct store *a = NULL;
    struct store *b = NULL;
    struct store *c = NULL;
    struct ly_error e = {0};
    char v[16];
    pid_t pid;
    int status;

    ly_error_clear(&e);
    assert_int_equal(store_open(f->path, &a, &e), 0);
    assert_int_equal(store_open(f->path, &b, &e), 0);
    assert_int_equal(store_meta_set(a, "k1", "v1", &e), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *o = NULL;
        struct ly_error ce = {0};
        ly_error_clear(&ce);
        _exit(store_open(f->path, &o, &ce) == 0 ? (store_close(o), 0) : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* A write after the other process came and went must be visible to yet another process
     * while this one still runs (the daemon's case), and durable. */
    assert_int_equal(store_meta_set(a, "k2", "v2", &e), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *o = NULL;
        struct ly_error ce = {0};
        char cv[16];
        int found;
        ly_error_clear(&ce);
        if (store_open(f->path, &o, &ce) != 0) {
            _exit(2);
        }
        found = store_meta_get(o, "k2", cv, sizeof(cv), &ce) == 0;
        store_close(o);
        _exit(found ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    store_close(a);
    store_close(b);
    assert_int_equal(store_open(f->path, &c, &e), 0);
    assert_int_equal(store_meta_get(c, "k1", v, sizeof(v), &e), 0);
    assert_int_equal(store_meta_get(c, "k2", v, sizeof(v), &e), 0);
    assert_string_equal(v, "v2");
    store_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_mode_and_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test(test_open_failures),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_handle_keeps_writes, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
