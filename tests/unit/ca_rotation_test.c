/*
 * Unit tests for CA rotation in broker/ca: the timeline (prepared and published at 1/2 of the
 * CA's life before it signs, takes over at 5/6, the old CA leaves the bundle only once its SVIDs
 * have expired, each bundle change bumps the sequence), peers holding an older bundle, forced
 * rotation, catching up after downtime, and crash safety of each step. Time is driven explicitly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/ca.h"
#include "../../svid/x509svid.h"
#include "../../trust-bundles/bundle.h"

#define TD "rot.lanyard.test"
#define LIFE 600 /* CA lifetime used by these tests */

struct fx {
    char dir[64];
    struct ca_state *ca;
    int64_t t0; /* the first CA's notBefore */
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

static int count_key_files(const struct fx *f)
{
    char p[128];
    DIR *d;
    struct dirent *e;
    int n = 0;

    (void)snprintf(p, sizeof(p), "%s/keys", f->dir);
    d = opendir(p);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    (void)closedir(d);
    return n;
}

/* Run SQL on the data directory's database through a separate connection (fault injection). */
static void db_exec(const struct fx *f, const char *sql)
{
    char p[128];
    sqlite3 *db = NULL;

    (void)snprintf(p, sizeof(p), "%s/lanyard.db", f->dir);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static struct bundle *get_bundle(struct fx *f, int64_t at)
{
    struct bundle *b = NULL;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(ca_bundle(f->ca, at, &b, &e), 0);
    return b;
}

static uint64_t seq_of(const struct bundle *b)
{
    uint64_t s = 0;

    assert_int_equal(bundle_get_sequence(b, &s), 0);
    return s;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ca_init_params p = {TD, SVID_KEY_EC_P256, LIFE};
    struct ly_error e = {0};
    struct bundle *b = NULL;
    struct x509svid_info info;
    const uint8_t *der;
    size_t len = 0;

    if (f == NULL) {
        return -1;
    }
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/lanyard-rot-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    ly_error_clear(&e);
    if (ca_init(f->dir, &p, &e) < 0 || ca_open(f->dir, &f->ca, &e) < 0 ||
        ca_bundle(f->ca, 0, &b, &e) < 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    der = bundle_x509_authority(b, 0, &len);
    if (der == NULL || x509svid_cert_info(der, len, &info, &e) < 0) {
        return -1;
    }
    f->t0 = info.not_before;
    bundle_free(b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ca_close(f->ca);
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* Mint an X509-SVID at `at` over a fresh key; returns its chain (caller frees). */
static struct x509svid_chain *mint(struct fx *f, const char *path, int64_t ttl, int64_t at,
                                   struct x509svid_info *info)
{
    struct svid_key *key = NULL;
    struct ly_buf spki;
    struct ly_buf cert;
    struct spiffeid id;
    struct x509svid_chain *chain = NULL;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(spiffeid_from_parts(TD, path, &id, &e), 0);
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &key, &e), 0);
    assert_int_equal(svid_key_public_der(key, &spki, &e), 0);
    assert_int_equal(ca_mint_x509_at(f->ca, &id, spki.data, spki.len, ttl, NULL, 0, at, &cert, &e),
                     0);
    assert_int_equal(x509svid_cert_info(cert.data, cert.len, info, &e), 0);
    /* No SVID outlives the CA that signed it. */
    assert_true(info->not_after <= ca_active_not_after(f->ca));
    assert_int_equal(x509svid_chain_new(&chain, &e), 0);
    assert_int_equal(x509svid_chain_add(chain, cert.data, cert.len, &e), 0);
    ly_buf_free(&spki);
    ly_buf_free(&cert);
    svid_key_free(key);
    return chain;
}

/* Verify `chain` at `at` against a copy of `b`; returns 0 or the error's reason. */
static int verify_with(const struct x509svid_chain *chain, const struct bundle *b, int64_t at)
{
    struct bundle_set *set = NULL;
    struct bundle *copy = NULL;
    struct spiffeid id;
    struct ly_error e = {0};
    int rc;

    ly_error_clear(&e);
    assert_int_equal(bundle_set_new(&set, &e), 0);
    assert_int_equal(bundle_clone(b, &copy, &e), 0);
    assert_int_equal(bundle_set_put(set, copy, &e), 0);
    rc = x509svid_verify(chain, set, at, &id, &e);
    bundle_set_free(set);
    return rc == 0 ? 0 : (e.reason != 0 ? e.reason : -1);
}

static int maintain(struct fx *f, int64_t at)
{
    struct ly_error e = {0};
    int changed = -1;

    ly_error_clear(&e);
    if (ca_maintain(f->ca, at, &changed, &e) < 0) {
        fprintf(stderr, "ca_maintain: %s\n", e.msg);
        fail();
    }
    return changed;
}

static void test_timeline(void **state)
{
    struct fx *f = *state;
    const int64_t t0 = f->t0;
    const int64_t half = t0 + LIFE / 2;
    const int64_t takeover = t0 + LIFE - LIFE / 6;
    struct bundle *b0;
    struct bundle *b1;
    struct bundle *b2;
    struct x509svid_chain *early;
    struct x509svid_chain *late_old;
    struct x509svid_chain *during;
    struct x509svid_chain *fresh;
    struct x509svid_info i_early;
    struct x509svid_info i_late;
    struct x509svid_info i_during;
    struct x509svid_info i_fresh;
    int64_t ca1 = ca_active_id(f->ca);
    int64_t ca1_na = ca_active_not_after(f->ca);

    assert_int_equal(ca1_na, t0 + LIFE);
    b0 = get_bundle(f, t0);
    assert_int_equal(bundle_x509_count(b0), 1);
    assert_int_equal(seq_of(b0), 1);
    assert_int_equal(ca_next_event(f->ca, t0), half);

    early = mint(f, "/early", 120, t0 + 10, &i_early);
    late_old = mint(f, "/late", 300, half - 10, &i_late);
    assert_int_equal(i_late.not_after, half + 290);

    /* Nothing is due before 1/2. */
    assert_int_equal(maintain(f, half - 1), 0);
    assert_int_equal(ca_next_event(f->ca, half - 1), half);

    /* 1/2: the next CA is published (sequence + 1) but does not sign. */
    assert_int_equal(maintain(f, half), CA_CHANGED_BUNDLE);
    assert_int_equal(maintain(f, half), 0); /* idempotent */
    b1 = get_bundle(f, half);
    assert_int_equal(bundle_x509_count(b1), 2);
    assert_int_equal(seq_of(b1), 2);
    assert_int_equal(ca_active_id(f->ca), ca1);
    assert_int_equal(ca_next_event(f->ca, half), takeover);
    during = mint(f, "/during", 60, half + 1, &i_during);
    assert_int_equal(verify_with(during, b0, half + 2), 0); /* the old CA signed it */

    /* 5/6: the prepared CA takes over; the bundle's content (and sequence) stays the same. */
    assert_int_equal(maintain(f, takeover - 1), 0);
    assert_int_equal(maintain(f, takeover), CA_CHANGED_SIGNER);
    assert_int_equal(maintain(f, takeover), 0);
    assert_true(ca_active_id(f->ca) != ca1);
    b2 = get_bundle(f, takeover);
    assert_int_equal(bundle_x509_count(b2), 2);
    assert_int_equal(seq_of(b2), 2);
    fresh = mint(f, "/fresh", 60, takeover + 1, &i_fresh);
    assert_int_equal(verify_with(fresh, b1, takeover + 2), 0); /* published before it signed */
    assert_int_equal(verify_with(fresh, b0, takeover + 2), X509SVID_R_UNKNOWN_AUTHORITY);
    /* A peer still holding the first bundle verifies the old CA's SVIDs until they expire. */
    assert_int_equal(verify_with(late_old, b0, takeover + 10), 0);
    assert_int_equal(verify_with(late_old, b2, i_late.not_after), 0);
    assert_int_equal(verify_with(late_old, b0, i_late.not_after + 1), X509SVID_R_EXPIRED);

    /* The old CA stays while its last SVID (not after half + 290) is valid, then leaves. */
    assert_int_equal(ca_next_event(f->ca, takeover), i_late.not_after + 1);
    assert_int_equal(maintain(f, i_late.not_after), 0);
    bundle_free(b2);
    b2 = get_bundle(f, i_late.not_after);
    assert_int_equal(bundle_x509_count(b2), 2);
    assert_int_equal(maintain(f, i_late.not_after + 1), CA_CHANGED_BUNDLE);
    bundle_free(b2);
    b2 = get_bundle(f, i_late.not_after + 1);
    assert_int_equal(bundle_x509_count(b2), 1);
    assert_int_equal(seq_of(b2), 3);
    assert_int_equal(verify_with(fresh, b2, takeover + 2), 0);
    assert_int_equal(verify_with(early, b2, t0 + 20), X509SVID_R_UNKNOWN_AUTHORITY);
    /* The next CA (back-dated 5 s at 1/2) prepares its own successor at its own half-life. */
    assert_int_equal(ca_next_event(f->ca, i_late.not_after + 1), half - 5 + LIFE / 2);

    x509svid_chain_free(early);
    x509svid_chain_free(late_old);
    x509svid_chain_free(during);
    x509svid_chain_free(fresh);
    bundle_free(b0);
    bundle_free(b1);
    bundle_free(b2);
}

/* SVIDs are clamped to their CA's notAfter, so a retired CA can always leave in time. */
static void test_clamped_to_signer(void **state)
{
    struct fx *f = *state;
    struct x509svid_info info;
    struct x509svid_chain *c;
    struct bundle *b;
    int64_t takeover = f->t0 + LIFE - LIFE / 6;

    assert_int_equal(maintain(f, f->t0 + LIFE / 2), CA_CHANGED_BUNDLE);
    c = mint(f, "/long", 3600, takeover - 1, &info);
    assert_int_equal(info.not_after, f->t0 + LIFE);
    assert_int_equal(maintain(f, takeover), CA_CHANGED_SIGNER);
    /* First the new CA's own successor is prepared (at its half-life, 5 s back-dated)... */
    assert_int_equal(ca_next_event(f->ca, takeover), f->t0 + LIFE - 5);
    assert_int_equal(maintain(f, f->t0 + LIFE - 5), CA_CHANGED_BUNDLE);
    /* ...then the old CA leaves when it expires, with the SVID clamped to it. */
    assert_int_equal(ca_next_event(f->ca, f->t0 + LIFE - 5), f->t0 + LIFE);
    b = get_bundle(f, f->t0 + LIFE - 1);
    assert_int_equal(bundle_x509_count(b), 3);
    bundle_free(b);
    assert_int_equal(maintain(f, f->t0 + LIFE), CA_CHANGED_BUNDLE);
    b = get_bundle(f, f->t0 + LIFE);
    assert_int_equal(bundle_x509_count(b), 2);
    assert_int_equal(seq_of(b), 4);
    bundle_free(b);
    x509svid_chain_free(c);
}

static void test_rotate_now(void **state)
{
    struct fx *f = *state;
    struct ly_error e = {0};
    struct x509svid_info info;
    struct x509svid_chain *before;
    struct x509svid_chain *after;
    struct bundle *b0;
    struct bundle *b1;
    struct bundle *b2;
    int64_t ca1 = ca_active_id(f->ca);
    int64_t ca2;
    int64_t now = f->t0 + 30;

    b0 = get_bundle(f, now);
    before = mint(f, "/before", 120, now, &info);
    ly_error_clear(&e);
    assert_int_equal(ca_rotate_now(f->ca, now + 1, &e), 0);
    ca2 = ca_active_id(f->ca);
    assert_true(ca2 != ca1);
    b1 = get_bundle(f, now + 1);
    assert_int_equal(bundle_x509_count(b1), 2);
    assert_int_equal(seq_of(b1), seq_of(b0) + 1);
    after = mint(f, "/after", 120, now + 2, &info);
    assert_int_equal(verify_with(after, b1, now + 3), 0);
    assert_int_equal(verify_with(after, b0, now + 3), X509SVID_R_UNKNOWN_AUTHORITY);
    assert_int_equal(verify_with(before, b1, now + 3), 0);
    /* The old CA stays for its SVID even through a regular pass. */
    assert_int_equal(maintain(f, now + 3), 0);

    /* Once its SVID has expired the old CA leaves (sequence + 1). */
    assert_int_equal(ca_next_event(f->ca, now + 3), now + 120 + 1);
    assert_int_equal(maintain(f, now + 121), CA_CHANGED_BUNDLE);
    /* With a CA already prepared, rotating uses it (it was published already). */
    {
        int64_t prep = ca_next_event(f->ca, now + 121);
        assert_int_equal(maintain(f, prep), CA_CHANGED_BUNDLE);
        b2 = get_bundle(f, prep);
        assert_int_equal(bundle_x509_count(b2), 2);
        assert_int_equal(seq_of(b2), seq_of(b0) + 3);
        assert_int_equal(ca_rotate_now(f->ca, prep + 1, &e), 0);
        assert_true(ca_active_id(f->ca) != ca2);
        bundle_free(b1);
        b1 = get_bundle(f, prep + 1);
        assert_int_equal(seq_of(b1), seq_of(b2));
        assert_int_equal(bundle_x509_count(b1), 2);
        now = prep;
    }

    /* A second handle (the daemon) notices a rotation another process made. */
    {
        struct ca_state *other = NULL;
        int changed = 0;
        assert_int_equal(ca_open(f->dir, &other, &e), 0);
        assert_int_equal(ca_rotate_now(f->ca, now + 5, &e), 0);
        assert_int_equal(ca_maintain(other, now + 5, &changed, &e), 0);
        assert_true((changed & CA_CHANGED_SIGNER) != 0);
        assert_int_equal(ca_active_id(other), ca_active_id(f->ca));
        ca_close(other);
    }
    x509svid_chain_free(before);
    x509svid_chain_free(after);
    bundle_free(b0);
    bundle_free(b1);
    bundle_free(b2);
}

/* The broker was down for longer than the CA's life: it catches up in one pass. */
static void test_catch_up_after_downtime(void **state)
{
    struct fx *f = *state;
    struct x509svid_info info;
    struct x509svid_chain *c;
    struct bundle *b;
    int64_t ca1 = ca_active_id(f->ca);
    int64_t late = f->t0 + LIFE + 100;

    assert_int_equal(maintain(f, late), CA_CHANGED_BUNDLE | CA_CHANGED_SIGNER);
    assert_true(ca_active_id(f->ca) != ca1);
    b = get_bundle(f, late);
    assert_int_equal(bundle_x509_count(b), 1); /* the expired CA is gone */
    assert_int_equal(seq_of(b), 3);            /* published, then the old one dropped */
    c = mint(f, "/back", 60, late + 1, &info);
    assert_int_equal(verify_with(c, b, late + 2), 0);
    x509svid_chain_free(c);
    bundle_free(b);

    /* Prepared late (between 5/6 and the end): it still gets published before it signs. */
    {
        int64_t nb = late - 5;
        int64_t prep = nb + LIFE - 60; /* 90 % of its life */
        int64_t at;
        assert_int_equal(maintain(f, prep), CA_CHANGED_BUNDLE);
        at = ca_next_event(f->ca, prep);
        assert_true(at > prep);
        assert_true(at < nb + LIFE);
        assert_int_equal(maintain(f, at - 1), 0);
        /* Its predecessor signed only SVIDs that have expired: it leaves at once. */
        assert_int_equal(maintain(f, at), CA_CHANGED_SIGNER | CA_CHANGED_BUNDLE);
        b = get_bundle(f, at);
        assert_int_equal(bundle_x509_count(b), 1);
        bundle_free(b);
    }
}

static void test_crash_safety(void **state)
{
    struct fx *f = *state;
    struct ly_error e = {0};
    struct bundle *b;
    struct x509svid_info info;
    struct x509svid_chain *c;
    int changed = 0;
    int64_t half = f->t0 + LIFE / 2;
    int64_t takeover = f->t0 + LIFE - LIFE / 6;
    int64_t ca1 = ca_active_id(f->ca);
    int keys = count_key_files(f);

    /* The transaction that would record the next CA fails after its key file was written. */
    db_exec(f, "CREATE TRIGGER fail_next BEFORE INSERT ON meta WHEN NEW.key = 'ca_next.cert'"
               " BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    ly_error_clear(&e);
    assert_true(ca_maintain(f->ca, half, &changed, &e) < 0);
    assert_non_null(strstr(e.msg, "next CA"));
    assert_int_equal(count_key_files(f), keys); /* the new key file was removed again */
    b = get_bundle(f, half);
    assert_int_equal(bundle_x509_count(b), 1);
    assert_int_equal(seq_of(b), 1);
    bundle_free(b);
    assert_int_equal(ca_next_event(f->ca, half + 3), half + CA_RETRY_DELAY);
    db_exec(f, "DROP TRIGGER fail_next");

    /* A crash between the key file and the transaction leaves an unreferenced file only. */
    {
        char p[160];
        FILE *fp;
        (void)snprintf(p, sizeof(p), "%s/keys/ca-0000000000000000.key", f->dir);
        fp = fopen(p, "w");
        assert_non_null(fp);
        assert_int_equal(fclose(fp), 0);
    }
    assert_int_equal(maintain(f, half), CA_CHANGED_BUNDLE);
    assert_int_equal(count_key_files(f), keys + 2);

    /* The takeover transaction fails: the old CA keeps signing, the next stays prepared. */
    db_exec(f, "CREATE TRIGGER fail_takeover BEFORE UPDATE ON ca"
               " BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    ly_error_clear(&e);
    assert_true(ca_maintain(f->ca, takeover, &changed, &e) < 0);
    assert_int_equal(ca_active_id(f->ca), ca1);
    c = mint(f, "/still-old", 30, takeover + 1, &info);
    x509svid_chain_free(c);
    b = get_bundle(f, takeover);
    assert_int_equal(bundle_x509_count(b), 2);
    assert_int_equal(seq_of(b), 2);
    bundle_free(b);
    {
        /* A fresh handle sees the same, consistent state. */
        struct ca_state *other = NULL;
        assert_int_equal(ca_open(f->dir, &other, &e), 0);
        assert_int_equal(ca_active_id(other), ca1);
        ca_close(other);
    }
    db_exec(f, "DROP TRIGGER fail_takeover");
    assert_int_equal(maintain(f, takeover + 2), CA_CHANGED_SIGNER);
    assert_true(ca_active_id(f->ca) != ca1);
}

/*
 * The daemon's two-phase `ca rotate`: ca_prepare_now() publishes the next CA (sequence + 1)
 * and records its takeover time in the same transaction; ca_maintain() makes it sign only at
 * that time, also from a fresh handle (a restart after a crash between the phases).
 */
static void test_prepare_now(void **state)
{
    struct fx *f = *state;
    struct ly_error e = {0};
    struct x509svid_info info;
    struct x509svid_chain *old_svid;
    struct x509svid_chain *new_svid;
    struct bundle *b0;
    struct bundle *b1;
    struct ca_state *other = NULL;
    int64_t ca1 = ca_active_id(f->ca);
    int64_t now = f->t0 + 30;
    int keys = count_key_files(f);
    int changed = -1;

    b0 = get_bundle(f, now);
    ly_error_clear(&e);
    /* Taking over at once is what ca_rotate_now() is for; here it is refused, nothing done. */
    assert_true(ca_prepare_now(f->ca, now, now, &changed, &e) < 0);
    assert_int_equal(e.code, LY_ERR_USAGE);
    assert_int_equal(ca_takeover_at(f->ca), 0);

    /* The takeover time must land in the same transaction as the next CA, or neither does. */
    db_exec(f, "CREATE TRIGGER fail_at BEFORE INSERT ON meta WHEN NEW.key = 'ca_takeover_at'"
               " BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    ly_error_clear(&e);
    assert_true(ca_prepare_now(f->ca, now, now + 3, &changed, &e) < 0);
    assert_int_equal(count_key_files(f), keys);
    b1 = get_bundle(f, now);
    assert_int_equal(bundle_x509_count(b1), 1);
    assert_int_equal(seq_of(b1), seq_of(b0));
    bundle_free(b1);
    db_exec(f, "DROP TRIGGER fail_at");

    /* Phase 1: published, not signing. */
    ly_error_clear(&e);
    assert_int_equal(ca_prepare_now(f->ca, now, now + 3, &changed, &e), 0);
    assert_int_equal(changed, CA_CHANGED_BUNDLE);
    assert_int_equal(ca_active_id(f->ca), ca1);
    assert_int_equal(ca_takeover_at(f->ca), now + 3);
    assert_int_equal(ca_next_event(f->ca, now), now + 3);
    b1 = get_bundle(f, now);
    assert_int_equal(bundle_x509_count(b1), 2);
    assert_int_equal(seq_of(b1), seq_of(b0) + 1);
    old_svid = mint(f, "/during", 120, now + 1, &info);
    assert_int_equal(verify_with(old_svid, b0, now + 1), 0);
    /* Asking again neither re-publishes nor postpones. */
    assert_int_equal(ca_prepare_now(f->ca, now + 1, now + 10, &changed, &e), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(ca_takeover_at(f->ca), now + 3);

    /* Crash here: a fresh handle finishes the rotation at the recorded time, not before. */
    assert_int_equal(ca_open(f->dir, &other, &e), 0);
    assert_int_equal(ca_next_event(other, now + 2), now + 3);
    assert_int_equal(ca_maintain(other, now + 2, &changed, &e), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(ca_maintain(other, now + 3, &changed, &e), 0);
    assert_int_equal(changed, CA_CHANGED_SIGNER);
    assert_true(ca_active_id(other) != ca1);
    assert_int_equal(ca_takeover_at(other), 0);
    ca_close(other);
    assert_int_equal(maintain(f, now + 3) & CA_CHANGED_SIGNER, CA_CHANGED_SIGNER);
    new_svid = mint(f, "/after", 120, now + 4, &info);
    assert_int_equal(verify_with(new_svid, b1, now + 4), 0); /* held since phase 1 */
    assert_int_equal(verify_with(new_svid, b0, now + 4), X509SVID_R_UNKNOWN_AUTHORITY);
    {
        struct bundle *b2 = get_bundle(f, now + 4); /* the old CA is still published */
        assert_int_equal(verify_with(old_svid, b2, now + 4), 0);
        assert_int_equal(seq_of(b2), seq_of(b1));
        bundle_free(b2);
    }

    /* The forced time was consumed: the next CA is prepared and takes over on schedule. */
    {
        int64_t prep = now + 4;
        int64_t t;
        int i;
        /* Step through the scheduled events (old CAs leaving) until the next CA is prepared. */
        for (i = 0; i < 5 && ca_takeover_at(f->ca) == 0; i++) {
            prep = ca_next_event(f->ca, prep);
            (void)maintain(f, prep);
        }
        t = ca_takeover_at(f->ca);
        assert_true(t > prep + LIFE / 6);
        /* A forced rotation with a CA prepared already only brings the takeover forward. */
        bundle_free(b0);
        b0 = get_bundle(f, prep + 1);
        assert_int_equal(ca_prepare_now(f->ca, prep + 1, prep + 4, &changed, &e), 0);
        assert_int_equal(changed, 0);
        assert_int_equal(ca_takeover_at(f->ca), prep + 4);
        bundle_free(b1);
        b1 = get_bundle(f, prep + 1);
        assert_int_equal(seq_of(b1), seq_of(b0));
        assert_int_equal(maintain(f, prep + 4) & CA_CHANGED_SIGNER, CA_CHANGED_SIGNER);
    }
    x509svid_chain_free(old_svid);
    x509svid_chain_free(new_svid);
    bundle_free(b0);
    bundle_free(b1);
}

/* A data directory made before rotation existed has no list of published CAs. */
static void test_legacy_directory(void **state)
{
    struct fx *f = *state;
    struct bundle *b;

    db_exec(f, "DELETE FROM meta WHERE key = 'bundle_cas'");
    b = get_bundle(f, f->t0 + 1);
    assert_int_equal(bundle_x509_count(b), 1);
    bundle_free(b);
    /* The first pass records the list; the bundle's content is unchanged, so is its sequence. */
    assert_int_equal(maintain(f, f->t0 + 1), 0);
    b = get_bundle(f, f->t0 + 1);
    assert_int_equal(bundle_x509_count(b), 1);
    assert_int_equal(seq_of(b), 1);
    bundle_free(b);
    assert_int_equal(ca_next_event(f->ca, f->t0 + 1), f->t0 + LIFE / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clamped_to_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_after_downtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepare_now, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
