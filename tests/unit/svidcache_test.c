/*
 * Unit tests for broker/svidcache: refresh time within 40-45 % of the lifetime, the cached SVID
 * until then and a new one (with a new key) after, re-minting of due SVIDs with a callback,
 * dropping (and wiping) released or deleted entries, idle keep, entry changes, CA takeover and
 * the guarantee that no SVID outlives its CA. Time is driven explicitly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/ca.h"
#include "../../broker/svidcache.h"
#include "../../broker/svidcache_internal.h"
#include "../../svid/x509svid.h"
#include "../../trust-bundles/bundle.h"

#define TD "cache.lanyard.test"
#define LIFE 3600 /* CA lifetime */

struct fx {
    char dir[64];
    struct ca_state *ca;
    struct svidcache *cache;
    int64_t t0;
    /* key free hook */
    int wiped_calls;
    int wiped_nonzero;
    /* refresh callback */
    int pushed;
    uint64_t last_generation;
};

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[512];

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            (void)snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
            rm_rf(p);
        }
        (void)closedir(d);
        (void)rmdir(path);
        return;
    }
    (void)unlink(path);
}

static void on_key_free(void *arg, const uint8_t *key, size_t len)
{
    struct fx *f = arg;
    size_t i;

    f->wiped_calls++;
    for (i = 0; i < len; i++) {
        if (key[i] != 0) {
            f->wiped_nonzero++;
            return;
        }
    }
}

static void on_refresh(void *arg, const struct svidcache_svid *svid)
{
    struct fx *f = arg;

    f->pushed++;
    f->last_generation = svid->generation;
}

static int setup_keep(void **state, int64_t idle_keep)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ca_init_params p = {TD, SVID_KEY_EC_P256, LIFE};
    struct ly_error e = {0};

    if (f == NULL) {
        return -1;
    }
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/lanyard-cache-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    ly_error_clear(&e);
    if (ca_init(f->dir, &p, &e) < 0 || ca_open(f->dir, &f->ca, &e) < 0 ||
        svidcache_new(f->ca, SVID_KEY_EC_P256, idle_keep, &f->cache, &e) < 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    svidcache_set_key_free_hook(f->cache, on_key_free, f);
    f->t0 = ca_active_not_after(f->ca) - LIFE;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_keep(state, 0);
}

static int setup_idle(void **state)
{
    return setup_keep(state, 30);
}

static int teardown(void **state)
{
    struct fx *f = *state;

    svidcache_free(f->cache);
    ca_close(f->ca);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static const struct svidcache_svid *acquire(struct fx *f, const char *entry, int64_t ttl,
                                            int64_t now)
{
    struct svidcache_request req;
    const struct svidcache_svid *s = NULL;
    char id[128];
    struct ly_error e = {0};

    (void)snprintf(id, sizeof(id), "spiffe://" TD "/w/%s", entry);
    memset(&req, 0, sizeof(req));
    req.entry_id = entry;
    req.spiffe_id = id;
    req.ttl = ttl;
    ly_error_clear(&e);
    if (svidcache_acquire(f->cache, &req, now, &s, &e) < 0) {
        fprintf(stderr, "acquire: %s\n", e.msg);
        fail();
    }
    assert_non_null(s);
    return s;
}

/* A private copy of what a stream would have sent. */
struct snap {
    uint8_t cert[2048];
    size_t cert_len;
    uint8_t key[256];
    size_t key_len;
    uint64_t generation;
    int64_t ca_id;
    int64_t refresh_at;
};

static void take(struct snap *s, const struct svidcache_svid *v)
{
    assert_true(v->cert_len <= sizeof(s->cert) && v->key_len <= sizeof(s->key));
    memcpy(s->cert, v->cert_der, v->cert_len);
    s->cert_len = v->cert_len;
    memcpy(s->key, v->key_der, v->key_len);
    s->key_len = v->key_len;
    s->generation = v->generation;
    s->ca_id = v->ca_id;
    s->refresh_at = v->refresh_at;
}

static int verify_now(struct fx *f, const struct svidcache_svid *v, int64_t at)
{
    struct bundle *b = NULL;
    struct bundle_set *set = NULL;
    struct x509svid_chain *chain = NULL;
    struct spiffeid id;
    struct ly_error e = {0};
    int rc;

    ly_error_clear(&e);
    assert_int_equal(ca_bundle(f->ca, at, &b, &e), 0);
    assert_int_equal(bundle_set_new(&set, &e), 0);
    assert_int_equal(bundle_set_put(set, b, &e), 0);
    assert_int_equal(x509svid_chain_parse(v->cert_der, v->cert_len, &chain, &e), 0);
    rc = x509svid_verify(chain, set, at, &id, &e);
    if (rc == 0) {
        assert_string_equal(id.str, v->spiffe_id);
    }
    x509svid_chain_free(chain);
    bundle_set_free(set); /* frees the bundle it took */
    return rc;
}

static void test_refresh_window(void **state)
{
    struct fx *f = *state;
    int64_t now = f->t0 + 10;
    char name[16];
    int64_t min_seen = INT64_MAX;
    int64_t max_seen = 0;
    int i;

    for (i = 0; i < 40; i++) {
        const struct svidcache_svid *s;
        int64_t life;
        int64_t off;
        (void)snprintf(name, sizeof(name), "e%d", i);
        s = acquire(f, name, 600, now);
        life = s->not_after - s->not_before;
        assert_int_equal(life, 600 + X509SVID_LEAF_BACKDATE);
        off = s->refresh_at - s->not_before;
        assert_true(10 * off >= 4 * life);
        /* Clear of half-life (at most 45 %), so the push lands before the old SVID is half spent. */
        assert_true(20 * off <= 9 * life);
        min_seen = off < min_seen ? off : min_seen;
        max_seen = off > max_seen ? off : max_seen;
        assert_int_equal(verify_now(f, s, now), 0);
    }
    /* The jitter is actually random: 40 draws from about 30 values do not all coincide. */
    assert_true(max_seen > min_seen);
    assert_int_equal(svidcache_count(f->cache), 40);
}

static void test_cached_until_refresh(void **state)
{
    struct fx *f = *state;
    int64_t now = f->t0 + 10;
    const struct svidcache_svid *s;
    struct snap first;
    int64_t refresh_at;

    s = acquire(f, "a", 600, now);
    take(&first, s);
    refresh_at = s->refresh_at;
    assert_int_equal(first.generation, 1);
    /* Until refresh_at every fetch gets the very same SVID and key. */
    s = acquire(f, "a", 600, refresh_at - 1);
    assert_int_equal(s->generation, 1);
    assert_memory_equal(s->cert_der, first.cert, first.cert_len);
    assert_int_equal(svidcache_next_refresh(f->cache), refresh_at);
    /* From refresh_at a new SVID with a new key. */
    s = acquire(f, "a", 600, refresh_at);
    assert_int_equal(s->generation, 2);
    assert_true(s->cert_len != first.cert_len ||
                memcmp(s->cert_der, first.cert, first.cert_len) != 0);
    assert_true(s->key_len != first.key_len || memcmp(s->key_der, first.key, first.key_len) != 0);
    assert_true(s->not_before >= refresh_at - X509SVID_LEAF_BACKDATE);
    assert_int_equal(f->wiped_calls, 1); /* the old key went, wiped */
    assert_int_equal(f->wiped_nonzero, 0);
    assert_int_equal(svidcache_count(f->cache), 1);
}

static void test_refresh_due_pushes(void **state)
{
    struct fx *f = *state;
    int64_t now = f->t0 + 10;
    const struct svidcache_svid *s;
    struct snap first;
    struct ly_error e = {0};
    int64_t at;

    s = acquire(f, "a", 600, now);
    take(&first, s);
    (void)acquire(f, "b", 1200, now);
    at = svidcache_next_refresh(f->cache);
    assert_int_equal(at, first.refresh_at);
    ly_error_clear(&e);
    assert_int_equal(svidcache_refresh_due(f->cache, at - 1, on_refresh, f, &e), 0);
    assert_int_equal(f->pushed, 0);
    assert_int_equal(svidcache_refresh_due(f->cache, at, on_refresh, f, &e), 0);
    assert_int_equal(f->pushed, 1);
    assert_int_equal(f->last_generation, 2);
    s = svidcache_find(f->cache, "a");
    assert_non_null(s);
    assert_true(memcmp(s->key_der, first.key, first.key_len) != 0);
    assert_int_equal(verify_now(f, s, at), 0);
    /* "b" (twice the TTL) comes later. */
    assert_true(svidcache_next_refresh(f->cache) > at);
    assert_int_equal(svidcache_find(f->cache, "b")->generation, 1);
}

static void test_release_and_delete_wipe(void **state)
{
    struct fx *f = *state;
    int64_t now = f->t0 + 10;
    struct ly_error e = {0};

    (void)acquire(f, "a", 600, now);
    (void)acquire(f, "a", 600, now); /* a second workload of the same entry */
    svidcache_release(f->cache, "a", now);
    assert_non_null(svidcache_find(f->cache, "a"));
    assert_int_equal(f->wiped_calls, 0);
    svidcache_release(f->cache, "a", now);
    assert_null(svidcache_find(f->cache, "a"));
    assert_int_equal(svidcache_count(f->cache), 0);
    assert_int_equal(f->wiped_calls, 1);
    assert_int_equal(f->wiped_nonzero, 0);
    svidcache_release(f->cache, "a", now); /* unknown now: a no-op */
    svidcache_release(f->cache, "never", now);

    /* A deleted entry loses its SVID whatever its users. */
    (void)acquire(f, "b", 600, now);
    (void)acquire(f, "b", 600, now);
    assert_int_equal(svidcache_drop(f->cache, "b"), 1);
    assert_int_equal(svidcache_drop(f->cache, "b"), 0);
    assert_null(svidcache_find(f->cache, "b"));
    assert_int_equal(f->wiped_calls, 2);
    assert_int_equal(f->wiped_nonzero, 0);
    svidcache_release(f->cache, "b", now);
    assert_int_equal(svidcache_next_refresh(f->cache), INT64_MAX);
    ly_error_clear(&e);
    assert_int_equal(svidcache_refresh_due(f->cache, now + 10000, on_refresh, f, &e), 0);
    assert_int_equal(f->pushed, 0);

    /* Only live entries hold an SVID: 200 of them, half released. */
    {
        char name[16];
        int i;
        for (i = 0; i < 200; i++) {
            (void)snprintf(name, sizeof(name), "live%d", i);
            (void)acquire(f, name, 600, now);
        }
        for (i = 0; i < 200; i += 2) {
            (void)snprintf(name, sizeof(name), "live%d", i);
            svidcache_release(f->cache, name, now);
        }
        assert_int_equal(svidcache_count(f->cache), 100);
        for (i = 1; i < 200; i += 2) {
            (void)snprintf(name, sizeof(name), "live%d", i);
            assert_non_null(svidcache_find(f->cache, name));
        }
    }
    svidcache_free(NULL);
}

static void test_idle_keep(void **state)
{
    struct fx *f = *state;
    int64_t now = f->t0 + 10;
    struct ly_error e = {0};

    (void)acquire(f, "a", 600, now);
    svidcache_release(f->cache, "a", now);
    assert_int_equal(svidcache_count(f->cache), 1);
    assert_int_equal(svidcache_next_refresh(f->cache), now + 30);
    /* A workload that comes back within the keep time gets the same SVID. */
    assert_int_equal(acquire(f, "a", 600, now + 20)->generation, 1);
    svidcache_release(f->cache, "a", now + 20);
    ly_error_clear(&e);
    assert_int_equal(svidcache_refresh_due(f->cache, now + 49, on_refresh, f, &e), 0);
    assert_int_equal(svidcache_count(f->cache), 1);
    assert_int_equal(svidcache_refresh_due(f->cache, now + 50, on_refresh, f, &e), 0);
    assert_int_equal(svidcache_count(f->cache), 0);
    assert_int_equal(f->pushed, 0); /* idle SVIDs are never re-minted */
    assert_int_equal(f->wiped_calls, 1);
    assert_int_equal(f->wiped_nonzero, 0);
}

static void test_entry_change_reminted(void **state)
{
    struct fx *f = *state;
    int64_t now = f->t0 + 10;
    struct svidcache_request req;
    const struct svidcache_svid *s = NULL;
    const char *dns[1] = {"mcp.example.org"};
    struct ly_error e = {0};

    assert_int_equal(acquire(f, "a", 600, now)->generation, 1);
    assert_int_equal(acquire(f, "a", 900, now)->generation, 2); /* TTL changed */
    memset(&req, 0, sizeof(req));
    req.entry_id = "a";
    req.spiffe_id = "spiffe://" TD "/w/a";
    req.ttl = 900;
    req.dns = dns;
    req.n_dns = 1;
    ly_error_clear(&e);
    assert_int_equal(svidcache_acquire(f->cache, &req, now, &s, &e), 0);
    assert_int_equal(s->generation, 3); /* DNS names changed */
    assert_int_equal(svidcache_acquire(f->cache, &req, now, &s, &e), 0);
    assert_int_equal(s->generation, 3);
    /* Another trust domain cannot be minted: the cached SVID stays, no reference is taken. */
    req.spiffe_id = "spiffe://elsewhere.test/w/a";
    assert_int_equal(svidcache_acquire(f->cache, &req, now, &s, &e), LY_ERR_USAGE);
    assert_null(s);
    s = svidcache_find(f->cache, "a");
    assert_non_null(s);
    assert_string_equal(s->spiffe_id, "spiffe://" TD "/w/a");
    assert_int_equal(s->generation, 3);
    /* Bad requests. */
    req.spiffe_id = "spiffe://" TD "/w/a";
    req.ttl = 0;
    ly_error_clear(&e);
    assert_int_equal(svidcache_acquire(f->cache, &req, now, &s, &e), LY_ERR_USAGE);
    req.ttl = 60;
    req.entry_id = "";
    ly_error_clear(&e);
    assert_int_equal(svidcache_acquire(f->cache, &req, now, &s, &e), LY_ERR_USAGE);
}

static void test_ca_takeover(void **state)
{
    struct fx *f = *state;
    int64_t now = f->t0 + 10;
    const struct svidcache_svid *s;
    struct snap a1;
    struct snap b1;
    struct ly_error e = {0};
    int64_t old_ca = ca_active_id(f->ca);

    take(&a1, acquire(f, "a", 600, now));
    take(&b1, acquire(f, "b", 600, now));
    ly_error_clear(&e);
    assert_int_equal(ca_rotate_now(f->ca, now + 1, &e), 0);
    svidcache_ca_changed(f->cache, now + 1);
    assert_true(svidcache_next_refresh(f->cache) <= now + 1);
    assert_int_equal(svidcache_refresh_due(f->cache, now + 1, on_refresh, f, &e), 0);
    assert_int_equal(f->pushed, 2);
    s = svidcache_find(f->cache, "a");
    assert_int_equal(s->ca_id, ca_active_id(f->ca));
    assert_true(s->ca_id != old_ca);
    assert_int_equal(s->generation, 2);
    assert_int_equal(verify_now(f, s, now + 2), 0);
    assert_true(svidcache_next_refresh(f->cache) > now + 1);

    /* Without the notice, a fetch still never returns an SVID of a CA that no longer signs. */
    assert_int_equal(ca_rotate_now(f->ca, now + 3, &e), 0);
    s = acquire(f, "a", 600, now + 3);
    assert_int_equal(s->ca_id, ca_active_id(f->ca));
    assert_int_equal(s->generation, 3);
    /* ...and refresh_due picks up the others on its own. */
    assert_int_equal(svidcache_refresh_due(f->cache, now + 3, on_refresh, f, &e), 0);
    assert_int_equal(svidcache_find(f->cache, "b")->ca_id, ca_active_id(f->ca));
}

/* Near the CA's end SVIDs are clamped to it, and refresh falls due before the CA expires. */
static void test_never_outlives_ca(void **state)
{
    struct fx *f = *state;
    int64_t ca_end = ca_active_not_after(f->ca);
    int64_t now = ca_end - 100;
    const struct svidcache_svid *s;

    s = acquire(f, "a", 3600, now);
    assert_int_equal(s->not_after, ca_end);
    assert_true(s->refresh_at < ca_end);
    assert_true(s->refresh_at > now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refresh_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_until_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_due_pushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_and_delete_wipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_keep, setup_idle, teardown),
        cmocka_unit_test_setup_teardown(test_entry_change_reminted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_outlives_ca, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
