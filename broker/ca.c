/*
 * ca: creates and loads the trust domain's authorities. Ordering keeps a crash harmless: key
 * files are written first under fresh unique names (0600, atomic, never replacing anything),
 * then one store transaction records them; if the transaction fails the new key files are
 * removed, and the store alone decides what exists. It never logs or returns key bytes.
 */
#define _GNU_SOURCE
#include "ca.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "../common/ly_b64.h"
#include "../common/ly_file.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/jwtsvid.h"
#include "../svid/x509svid.h"
#include "store.h"

#define CA_PATH_MAX 4096

/* At most this many CAs are published at once (the meta list and the bundle stay small). */
#define CA_MAX_PUBLISHED 16
/* The meta key listing the `ca` ids published in the bundle (the next CA is always published). */
#define CA_META_PUBLISHED "bundle_cas"
/*
 * The meta key holding when a forced rotation's prepared CA takes over (epoch seconds; see
 * ca_prepare_now). Written and removed only in the transactions that prepare the next CA or
 * make it take over, so it never outlives the CA it schedules.
 */
#define CA_META_TAKEOVER "ca_takeover_at"

struct ca_state {
    char data_dir[CA_PATH_MAX];
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct store *store;
    struct x509svid_ca *signer; /* the active CA, ready to mint; borrows ca_key */
    struct svid_key *ca_key;
    int64_t ca_id;
    int64_t ca_not_after;
    struct svid_key *jwt_key;
    char kid[128];
    int64_t refresh_hint;
    uint64_t sequence;
    int64_t next_event;         /* when ca_maintain is next due; INT64_MAX for never */
    int schedule_ok;            /* 0 after a failed maintenance: retry soon */
    int64_t failed_at;
    int64_t takeover_at;        /* when the prepared CA takes over; 0 when none is prepared */
};

static int path_join(char *out, size_t outsz, const char *dir, const char *name,
                     struct ly_error *err)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= outsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "path too long under %.64s", dir);
    }
    return 0;
}

/* Write a private key as PKCS#8 PEM to DATA/keys/<prefix>-<random>.key; name goes to rel. */
static int write_key_file(const char *data_dir, const char *prefix, const struct svid_key *key,
                          char *rel, size_t relsz, struct ly_error *err)
{
    char keys_dir[CA_PATH_MAX];
    char path[CA_PATH_MAX];
    uint8_t rnd[8];
    char rhex[17];
    struct ly_buf pem;
    int n;
    int rc;

    rc = path_join(keys_dir, sizeof(keys_dir), data_dir, "keys", err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_file_mkdir_p(keys_dir, 0700, err);
    if (rc < 0) {
        return rc;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        return ly_error_set(err, LY_ERR_INTERNAL, 0, "getrandom failed");
    }
    ly_hex_encode(rnd, sizeof(rnd), rhex);
    n = snprintf(rel, relsz, "keys/%s-%s.key", prefix, rhex);
    if (n < 0 || (size_t)n >= relsz) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "key file name too long");
    }
    rc = path_join(path, sizeof(path), data_dir, rel, err);
    if (rc < 0) {
        return rc;
    }
    rc = svid_key_to_pkcs8_pem(key, &pem, err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_file_write_atomic(path, pem.data, pem.len, 0600, LY_FILE_NO_REPLACE, err);
    ly_buf_free(&pem);
    return rc;
}

static void remove_key_file(const char *data_dir, const char *rel)
{
    char path[CA_PATH_MAX];

    if (rel[0] == '\0' || path_join(path, sizeof(path), data_dir, rel, NULL) < 0) {
        return;
    }
    (void)unlink(path); /* cleanup after a failed init: the store never referenced it */
}

static int load_key_file(const char *data_dir, const char *rel, struct svid_key **out,
                         struct ly_error *err)
{
    char path[CA_PATH_MAX];
    struct ly_buf pem;
    int rc;

    rc = path_join(path, sizeof(path), data_dir, rel, err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_file_read(path, 64 * 1024, 1, &pem, err);
    if (rc < 0) {
        return rc;
    }
    rc = svid_key_parse(pem.data, pem.len, out, err);
    ly_buf_free(&pem);
    if (rc < 0) {
        (void)ly_error_wrap(err, "key file %s", path);
    }
    return rc;
}

/* kid: base64url of the first 16 bytes of SHA-256(SPKI): stable, unique per key. */
static int make_kid(const uint8_t *spki, size_t len, char *kid, size_t kidsz,
                    struct ly_error *err)
{
    uint8_t h[WC_SHA256_DIGEST_SIZE];
    struct ly_buf b;
    int rc;

    if (len > 0xffffffffu || wc_Sha256Hash(spki, (word32)len, h) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 failed");
    }
    rc = ly_b64_encode(h, 16, 1, &b, 64, err);
    if (rc < 0) {
        return rc;
    }
    if (b.len + 1 > kidsz) {
        ly_buf_free(&b);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "kid too long");
    }
    memcpy(kid, b.data, b.len + 1);
    ly_buf_free(&b);
    return 0;
}

static int open_store(const char *data_dir, struct store **out, struct ly_error *err)
{
    char path[CA_PATH_MAX];
    int rc = path_join(path, sizeof(path), data_dir, "lanyard.db", err);

    if (rc < 0) {
        return rc;
    }
    return store_open(path, out, err);
}

/* ---- rotation state ---------------------------------------------------------------------- */

/*
 * Make `row` this handle's signer: load its key file, check it matches the certificate and
 * swap it in. On failure the current signer stays as it was.
 */
static int load_signer(struct ca_state *ca, const struct store_ca *row, struct ly_error *err)
{
    struct svid_key *key = NULL;
    struct x509svid_ca *signer = NULL;
    int rc;

    rc = load_key_file(ca->data_dir, row->key_file, &key, err);
    if (rc < 0) {
        return rc;
    }
    /* The signer borrows the key and checks that it matches the certificate. */
    rc = x509svid_ca_new(row->cert_der, row->cert_len, key, &signer, err);
    if (rc < 0) {
        (void)ly_error_wrap(err, "loading CA %lld", (long long)row->id);
        svid_key_free(key);
        return rc;
    }
    x509svid_ca_free(ca->signer);
    svid_key_free(ca->ca_key);
    ca->signer = signer;
    ca->ca_key = key;
    ca->ca_id = row->id;
    ca->ca_not_after = x509svid_ca_not_after(signer);
    return 0;
}

/* What the store says about the X.509 CAs, read fresh for every decision. */
struct rot {
    struct store_ca *cas; /* newest first */
    size_t n_cas;
    const struct store_ca *active; /* points into cas */
    struct store_ca next;          /* the prepared next CA, when has_next */
    int has_next;
    int64_t published[CA_MAX_PUBLISHED]; /* `ca` ids in the bundle */
    size_t n_published;
    int recorded; /* 0: a data directory from before rotation, list derived from validity */
    uint64_t sequence;
    int64_t forced_at; /* a forced rotation's takeover time; 0 when none is recorded */
};

static void rot_free(struct rot *r)
{
    store_ca_list_free(r->cas, r->n_cas);
    free(r->next.cert_der);
    memset(r, 0, sizeof(*r));
}

static int parse_u64(const char *v, uint64_t *out)
{
    char *end = NULL;
    unsigned long long x;

    if (v[0] < '0' || v[0] > '9') {
        return -1;
    }
    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = (uint64_t)x;
    return 0;
}

/* Parse "3,2" into ids; -1 when malformed or too long. */
static int parse_published(const char *v, int64_t *ids, size_t *n)
{
    char num[24];
    size_t k = 0;
    uint64_t x;

    *n = 0;
    if (v[0] == '\0') {
        return 0;
    }
    for (;;) {
        size_t len = strcspn(v, ",");
        if (len == 0 || len >= sizeof(num) || *n == CA_MAX_PUBLISHED) {
            return -1;
        }
        memcpy(num, v, len);
        num[len] = '\0';
        if (parse_u64(num, &x) < 0 || x > (uint64_t)INT64_MAX) {
            return -1;
        }
        ids[k++] = (int64_t)x;
        *n = k;
        if (v[len] == '\0') {
            return 0;
        }
        v += len + 1;
    }
}

static int is_published(const struct rot *r, int64_t id)
{
    size_t i;

    for (i = 0; i < r->n_published; i++) {
        if (r->published[i] == id) {
            return 1;
        }
    }
    return 0;
}

static int rot_load(struct ca_state *ca, int64_t now, struct rot *r, struct ly_error *err)
{
    char buf[CA_MAX_PUBLISHED * 24];
    struct ly_error probe;
    size_t i;
    int rc;

    memset(r, 0, sizeof(*r));
    rc = store_meta_get(ca->store, "bundle_sequence", buf, sizeof(buf), err);
    if (rc < 0) {
        return rc;
    }
    if (parse_u64(buf, &r->sequence) < 0) {
        return ly_error_setx(err, LY_ERR_IO, 0, "database: bad bundle sequence");
    }
    rc = store_ca_list(ca->store, &r->cas, &r->n_cas, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < r->n_cas && r->active == NULL; i++) {
        if (strcmp(r->cas[i].status, "active") == 0) {
            r->active = &r->cas[i];
        }
    }
    if (r->active == NULL) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "no active CA recorded in %s", ca->data_dir);
        goto fail;
    }
    rc = store_ca_next_get(ca->store, &r->next, &r->has_next, err);
    if (rc < 0) {
        goto fail;
    }
    ly_error_clear(&probe);
    rc = store_meta_get(ca->store, CA_META_TAKEOVER, buf, sizeof(buf), &probe);
    if (rc == 0) {
        uint64_t at = 0;
        if (parse_u64(buf, &at) < 0 || at == 0 || at > (uint64_t)INT64_MAX) {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: bad CA takeover time");
            goto fail;
        }
        r->forced_at = (int64_t)at;
    } else if (probe.code != LY_ERR_USAGE) {
        rc = ly_error_setx(err, probe.code, 0, "%s", probe.msg);
        goto fail;
    }
    ly_error_clear(&probe);
    rc = store_meta_get(ca->store, CA_META_PUBLISHED, buf, sizeof(buf), &probe);
    if (rc == 0) {
        if (parse_published(buf, r->published, &r->n_published) < 0) {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: bad list of published CAs");
            goto fail;
        }
        r->recorded = 1;
        return 0;
    }
    if (probe.code != LY_ERR_USAGE) {
        rc = ly_error_setx(err, probe.code, 0, "%s", probe.msg);
        goto fail;
    }
    /* Written before rotation existed: every CA still valid was published. */
    for (i = 0; i < r->n_cas && r->n_published < CA_MAX_PUBLISHED; i++) {
        if (r->cas[i].not_after > now) {
            r->published[r->n_published++] = r->cas[i].id;
        }
    }
    return 0;
fail:
    rot_free(r);
    return rc;
}

/* 1/2 of the active CA's life: when the next CA is prepared. */
static int64_t prepare_time(const struct store_ca *active)
{
    int64_t life = active->not_after - active->not_before;

    return active->not_before + life / 2;
}

/*
 * 5/6 of the active CA's life: when the next CA takes over; if it was prepared late, halfway
 * between its preparation and the old CA's end, so it is published for a while before it signs.
 * A forced rotation (ca_prepare_now) may bring that forward to the time it recorded.
 */
static int64_t takeover_time(const struct rot *r)
{
    const struct store_ca *active = r->active;
    const struct store_ca *next = &r->next;
    int64_t life = active->not_after - active->not_before;
    int64_t at = active->not_before + (life - life / 6);
    int64_t lead = next->not_before + life / 3;
    int64_t half = next->not_before + (active->not_after - next->not_before) / 2;
    int64_t late = lead < half ? lead : half;
    int64_t natural = late > at ? late : at;

    return r->forced_at > 0 && r->forced_at < natural ? r->forced_at : natural;
}

/*
 * The `ca` ids the bundle should publish at `now`: the active CA, plus each published retired
 * CA that still vouches for an unexpired SVID. *drop_at gets the earliest time one of those
 * retired CAs may leave (INT64_MAX when none).
 */
static int wanted_published(struct ca_state *ca, const struct rot *r, int64_t now, int64_t *ids,
                            size_t *n, int64_t *drop_at, struct ly_error *err)
{
    size_t i;
    int rc;

    *n = 0;
    *drop_at = INT64_MAX;
    for (i = 0; i < r->n_cas; i++) {
        const struct store_ca *c = &r->cas[i];
        int64_t until = 0;
        int found = 0;

        if (c == r->active) {
            ids[(*n)++] = c->id;
            continue;
        }
        if (!is_published(r, c->id) || c->not_after <= now) {
            continue; /* gone already, or its certificate can no longer vouch for anything */
        }
        rc = store_svid_max_not_after(ca->store, c->id, &until, &found, err);
        if (rc < 0) {
            return rc;
        }
        /* RFC 5280 §4.1.2.5: notAfter itself is still inside the validity period. */
        if (!found || until < now) {
            continue;
        }
        if (*n == CA_MAX_PUBLISHED) {
            return ly_error_setx(err, LY_ERR_INTERNAL, 0, "too many published CAs");
        }
        ids[(*n)++] = c->id;
        /* It leaves after its last SVID expires, or when it expires itself if that is sooner. */
        if (until + 1 < *drop_at) {
            *drop_at = until + 1;
        }
        if (c->not_after < *drop_at) {
            *drop_at = c->not_after;
        }
    }
    return 0;
}

static int same_ids(const int64_t *a, size_t na, const struct rot *r)
{
    size_t i;

    if (na != r->n_published) {
        return 0;
    }
    for (i = 0; i < na; i++) {
        if (!is_published(r, a[i])) {
            return 0;
        }
    }
    return 1;
}

/* Record the published list (inside the caller's transaction). */
static int write_published(struct ca_state *ca, const int64_t *ids, size_t n,
                           struct ly_error *err)
{
    char buf[CA_MAX_PUBLISHED * 24];
    size_t off = 0;
    size_t i;

    buf[0] = '\0';
    for (i = 0; i < n; i++) {
        int k = snprintf(buf + off, sizeof(buf) - off, "%s%lld", i ? "," : "", (long long)ids[i]);
        if (k < 0 || (size_t)k >= sizeof(buf) - off) {
            return ly_error_setx(err, LY_ERR_INTERNAL, 0, "published CA list too long");
        }
        off += (size_t)k;
    }
    return store_meta_set(ca->store, CA_META_PUBLISHED, buf, err);
}

/* Bump the bundle sequence inside the caller's transaction; the new value goes to *seq. */
static int bump_sequence(struct ca_state *ca, uint64_t *seq, struct ly_error *err)
{
    char buf[32];
    uint64_t v;
    int rc = store_meta_get(ca->store, "bundle_sequence", buf, sizeof(buf), err);

    if (rc < 0) {
        return rc;
    }
    if (parse_u64(buf, &v) < 0 || v == UINT64_MAX) {
        return ly_error_setx(err, LY_ERR_IO, 0, "database: bad bundle sequence");
    }
    v++;
    (void)snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v); /* fits */
    rc = store_meta_set(ca->store, "bundle_sequence", buf, err);
    if (rc == 0) {
        *seq = v;
    }
    return rc;
}

/* Recompute when ca_maintain is next due, from the store (read-only). */
static int refresh_schedule(struct ca_state *ca, int64_t now, struct ly_error *err)
{
    struct rot r;
    int64_t ids[CA_MAX_PUBLISHED];
    size_t n;
    int64_t ev;
    int64_t drop_at;
    int rc;

    rc = rot_load(ca, now, &r, err);
    if (rc < 0) {
        return rc;
    }
    ca->sequence = r.sequence;
    ca->takeover_at = r.has_next ? takeover_time(&r) : 0;
    ev = r.has_next ? takeover_time(&r) : prepare_time(r.active);
    rc = wanted_published(ca, &r, now, ids, &n, &drop_at, err);
    if (rc == 0) {
        /* A retired CA whose SVIDs have all expired is due to leave at once. */
        if (!r.recorded || !same_ids(ids, n, &r)) {
            drop_at = now;
        }
        ca->next_event = drop_at < ev ? drop_at : ev;
        ca->schedule_ok = 1;
    }
    rot_free(&r);
    return rc;
}

int ca_init(const char *data_dir, const struct ca_init_params *p, struct ly_error *err)
{
    struct store *st = NULL;
    struct svid_key *ca_key = NULL;
    struct svid_key *jwt_key = NULL;
    struct ly_buf cert;
    struct ly_buf spki;
    struct x509svid_info info;
    struct store_ca rec;
    struct store_jwt_key jrec;
    char existing[SPIFFEID_TD_MAX_LEN + 1];
    char seq[32];
    int64_t now = ly_time_now();
    int64_t id;
    int in_tx = 0;
    int rc;

    ly_buf_init(&cert, 0);
    ly_buf_init(&spki, 0);
    memset(&rec, 0, sizeof(rec));
    memset(&jrec, 0, sizeof(jrec));
    if (p->ttl < CA_MIN_TTL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "CA lifetime must be at least %d s",
                             CA_MIN_TTL);
    }
    rc = ly_file_mkdir_p(data_dir, 0700, err);
    if (rc < 0) {
        return rc;
    }
    rc = open_store(data_dir, &st, err);
    if (rc < 0) {
        return rc;
    }
    {
        struct ly_error probe;
        ly_error_clear(&probe);
        if (store_meta_get(st, "trust_domain", existing, sizeof(existing), &probe) == 0) {
            rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                               "%s already holds the CA of trust domain %s; refusing to "
                               "overwrite it",
                               data_dir, existing);
            goto out;
        }
        if (probe.code != LY_ERR_USAGE) {
            rc = ly_error_setx(err, probe.code, 0, "%s", probe.msg);
            goto out;
        }
    }
    /* 1. Keys and certificate in memory. */
    rc = svid_key_generate(p->key_type, &ca_key, err);
    if (rc < 0) {
        goto out;
    }
    rc = x509svid_ca_create(ca_key, p->trust_domain, now, p->ttl, &cert, err);
    if (rc < 0) {
        goto out;
    }
    rc = x509svid_cert_info(cert.data, cert.len, &info, err);
    if (rc < 0) {
        goto out;
    }
    rc = svid_key_generate(SVID_KEY_EC_P256, &jwt_key, err);
    if (rc < 0) {
        goto out;
    }
    rc = svid_key_public_der(jwt_key, &spki, err);
    if (rc < 0) {
        goto out;
    }
    rc = make_kid(spki.data, spki.len, jrec.kid, sizeof(jrec.kid), err);
    if (rc < 0) {
        goto out;
    }
    /* 2. Key files, under fresh names that nothing references yet. */
    rc = write_key_file(data_dir, "ca", ca_key, rec.key_file, sizeof(rec.key_file), err);
    if (rc < 0) {
        goto out;
    }
    rc = write_key_file(data_dir, "jwt", jwt_key, jrec.key_file, sizeof(jrec.key_file), err);
    if (rc < 0) {
        goto out;
    }
    /* 3. One transaction makes them real. */
    rc = store_begin(st, err);
    if (rc < 0) {
        goto out;
    }
    in_tx = 1;
    (void)snprintf(rec.key_type, sizeof(rec.key_type), "%s", svid_key_type_name(p->key_type));
    (void)snprintf(rec.status, sizeof(rec.status), "active");
    rec.cert_der = cert.data;
    rec.cert_len = cert.len;
    rec.not_before = info.not_before;
    rec.not_after = info.not_after;
    rc = store_ca_add(st, &rec, &id, err);
    if (rc < 0) {
        goto out;
    }
    (void)snprintf(jrec.status, sizeof(jrec.status), "active");
    jrec.spki = spki.data;
    jrec.spki_len = spki.len;
    jrec.created_at = now;
    rc = store_jwt_key_add(st, &jrec, err);
    if (rc < 0) {
        goto out;
    }
    (void)snprintf(seq, sizeof(seq), "%lld", (long long)id);
    rc = store_meta_set(st, CA_META_PUBLISHED, seq, err);
    if (rc < 0) {
        goto out;
    }
    (void)snprintf(seq, sizeof(seq), "1");
    rc = store_meta_set(st, "bundle_sequence", seq, err);
    if (rc == 0) {
        rc = store_meta_set(st, "trust_domain", p->trust_domain, err);
    }
    if (rc < 0) {
        goto out;
    }
    rc = store_commit(st, err);
    if (rc < 0) {
        goto out;
    }
    in_tx = 0;
out:
    if (in_tx) {
        store_rollback(st);
    }
    if (rc < 0) {
        remove_key_file(data_dir, rec.key_file);
        remove_key_file(data_dir, jrec.key_file);
    }
    ly_buf_free(&cert);
    ly_buf_free(&spki);
    svid_key_free(ca_key);
    svid_key_free(jwt_key);
    store_close(st);
    return rc;
}

int ca_open(const char *data_dir, struct ca_state **out, struct ly_error *err)
{
    struct ca_state *ca;
    struct store_ca *cas = NULL;
    size_t n_cas = 0;
    struct store_jwt_key *jks = NULL;
    size_t n_jks = 0;
    char buf[64];
    size_t i;
    int rc;

    *out = NULL;
    if (!ly_file_exists(data_dir)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "no data directory at %s; run 'lanyard ca init --trust-domain TD' "
                             "first (or pass --data DIR)",
                             data_dir);
    }
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    rc = snprintf(ca->data_dir, sizeof(ca->data_dir), "%s", data_dir);
    if (rc < 0 || (size_t)rc >= sizeof(ca->data_dir)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0, "data directory path too long");
        goto fail;
    }
    rc = open_store(data_dir, &ca->store, err);
    if (rc < 0) {
        goto fail;
    }
    rc = store_meta_get(ca->store, "trust_domain", ca->td, sizeof(ca->td), err);
    if (rc < 0) {
        ly_error_clear(err);
        rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                           "%s has no trust domain yet; run 'lanyard ca init --trust-domain TD'",
                           data_dir);
        goto fail;
    }
    ca->refresh_hint = CA_DEFAULT_REFRESH_HINT;
    rc = store_meta_get(ca->store, "bundle_sequence", buf, sizeof(buf), err);
    if (rc < 0) {
        goto fail;
    }
    {
        char *end = NULL;
        unsigned long long v = strtoull(buf, &end, 10);
        if (end == buf || *end != '\0') {
            rc = ly_error_setx(err, LY_ERR_IO, 0, "database: bad bundle sequence");
            goto fail;
        }
        ca->sequence = (uint64_t)v;
    }
    rc = store_ca_list(ca->store, &cas, &n_cas, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < n_cas; i++) {
        if (strcmp(cas[i].status, "active") == 0) {
            break;
        }
    }
    if (i == n_cas) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "no active CA recorded in %s", data_dir);
        goto fail;
    }
    rc = load_signer(ca, &cas[i], err);
    if (rc < 0) {
        goto fail;
    }
    rc = store_jwt_key_list(ca->store, &jks, &n_jks, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < n_jks; i++) {
        if (strcmp(jks[i].status, "active") == 0) {
            break;
        }
    }
    if (i == n_jks) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "no active JWT key recorded in %s", data_dir);
        goto fail;
    }
    rc = load_key_file(data_dir, jks[i].key_file, &ca->jwt_key, err);
    if (rc < 0) {
        goto fail;
    }
    if (!svid_key_matches_public(ca->jwt_key, jks[i].spki, jks[i].spki_len)) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "JWT key file %s does not match its record",
                           jks[i].key_file);
        goto fail;
    }
    (void)snprintf(ca->kid, sizeof(ca->kid), "%s", jks[i].kid);
    rc = refresh_schedule(ca, ly_time_now(), err);
    if (rc < 0) {
        goto fail;
    }
    store_ca_list_free(cas, n_cas);
    store_jwt_key_list_free(jks, n_jks);
    *out = ca;
    return 0;
fail:
    store_ca_list_free(cas, n_cas);
    store_jwt_key_list_free(jks, n_jks);
    ca_close(ca);
    return rc;
}

void ca_close(struct ca_state *ca)
{
    if (ca == NULL) {
        return;
    }
    x509svid_ca_free(ca->signer);
    svid_key_free(ca->ca_key);
    svid_key_free(ca->jwt_key);
    store_close(ca->store);
    free(ca);
}

void ca_set_refresh_hint(struct ca_state *ca, int64_t seconds)
{
    if (seconds > 0) {
        ca->refresh_hint = seconds;
    }
}

const char *ca_trust_domain(const struct ca_state *ca)
{
    return ca->td;
}

int ca_bundle(struct ca_state *ca, int64_t now, struct bundle **out, struct ly_error *err)
{
    struct bundle *b = NULL;
    struct rot r;
    struct store_jwt_key *jks = NULL;
    size_t n_jks = 0;
    size_t i;
    int rc;

    *out = NULL;
    rc = rot_load(ca, now, &r, err);
    if (rc < 0) {
        return rc;
    }
    rc = bundle_new(ca->td, &b, err);
    if (rc < 0) {
        goto fail;
    }
    /* Newest first: the prepared next CA, then the published `ca` rows by descending id. */
    if (r.has_next && r.next.not_after > now) {
        rc = bundle_add_x509_authority(b, r.next.cert_der, r.next.cert_len, err);
        if (rc < 0) {
            goto fail;
        }
    }
    for (i = 0; i < r.n_cas; i++) {
        /* An expired CA can no longer vouch for anything: leave it out. */
        if (!is_published(&r, r.cas[i].id) || r.cas[i].not_after <= now) {
            continue;
        }
        rc = bundle_add_x509_authority(b, r.cas[i].cert_der, r.cas[i].cert_len, err);
        if (rc < 0) {
            goto fail;
        }
    }
    rc = store_jwt_key_list(ca->store, &jks, &n_jks, err);
    if (rc < 0) {
        goto fail;
    }
    for (i = 0; i < n_jks; i++) {
        rc = bundle_add_jwt_authority(b, jks[i].kid, jks[i].spki, jks[i].spki_len, err);
        if (rc < 0) {
            goto fail;
        }
    }
    ca->sequence = r.sequence;
    bundle_set_sequence(b, r.sequence);
    bundle_set_refresh_hint(b, ca->refresh_hint);
    rot_free(&r);
    store_jwt_key_list_free(jks, n_jks);
    *out = b;
    return 0;
fail:
    rot_free(&r);
    store_jwt_key_list_free(jks, n_jks);
    bundle_free(b);
    return rc;
}

int ca_mint_x509(struct ca_state *ca, const struct spiffeid *id, const uint8_t *spki,
                 size_t spki_len, int64_t ttl, const char *const *dns, size_t n_dns,
                 struct ly_buf *cert_der, struct ly_error *err)
{
    return ca_mint_x509_at(ca, id, spki, spki_len, ttl, dns, n_dns, ly_time_now(), cert_der,
                           err);
}

int ca_mint_x509_at(struct ca_state *ca, const struct spiffeid *id, const uint8_t *spki,
                    size_t spki_len, int64_t ttl, const char *const *dns, size_t n_dns,
                    int64_t now, struct ly_buf *cert_der, struct ly_error *err)
{
    struct x509svid_info info;
    struct store_svid rec;
    int rc;

    ly_buf_init(cert_der, 0);
    if (!spiffeid_member_of(id, ca->td)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "%s is not in trust domain %s; this CA only issues identities "
                             "of its own trust domain",
                             id->str, ca->td);
    }
    rc = x509svid_mint(ca->signer, id, spki, spki_len, dns, n_dns, now, ttl, cert_der, err);
    if (rc < 0) {
        return rc;
    }
    rc = x509svid_cert_info(cert_der->data, cert_der->len, &info, err);
    if (rc < 0) {
        goto fail;
    }
    memset(&rec, 0, sizeof(rec));
    (void)snprintf(rec.serial_hex, sizeof(rec.serial_hex), "%s", info.serial_hex);
    (void)snprintf(rec.spiffe_id, sizeof(rec.spiffe_id), "%s", id->str);
    (void)snprintf(rec.sha256_hex, sizeof(rec.sha256_hex), "%s", info.sha256_hex);
    rec.not_after = info.not_after;
    rec.ca_id = ca->ca_id;
    rec.issued_at = now;
    /* Recorded before it is handed out: nothing issued goes unrecorded. */
    rc = store_svid_record(ca->store, &rec, err);
    if (rc < 0) {
        goto fail;
    }
    return 0;
fail:
    ly_buf_free(cert_der);
    return rc;
}

int ca_mint_jwt(struct ca_state *ca, const struct spiffeid *id, const char *const *aud,
                size_t n_aud, int64_t ttl, struct ly_buf *out, struct ly_error *err)
{
    if (!spiffeid_member_of(id, ca->td)) {
        ly_buf_init_secret(out, 0);
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "%s is not in trust domain %s; this broker only issues identities "
                             "of its own trust domain",
                             id->str, ca->td);
    }
    return jwtsvid_mint(ca->jwt_key, ca->kid, id, aud, n_aud, ly_time_now(), ttl, out, err);
}

/* ---- CA rotation ------------------------------------------------------------------------- */

/* Record (or, with at == 0, remove) a forced takeover time inside the caller's transaction. */
static int write_takeover(struct ca_state *ca, int64_t at, struct ly_error *err)
{
    char buf[32];

    if (at <= 0) {
        return store_meta_delete(ca->store, CA_META_TAKEOVER, err);
    }
    (void)snprintf(buf, sizeof(buf), "%lld", (long long)at); /* fits */
    return store_meta_set(ca->store, CA_META_TAKEOVER, buf, err);
}

/*
 * Prepare the next CA at `now`: same key type and lifetime as the active one. Its key file is
 * written first under a fresh name; one transaction then records it in the next-CA slot, bumps
 * the bundle sequence and records `takeover_at` (0: the regular schedule, and any stale forced
 * time is removed). If that fails the key file is removed again.
 */
static int step_prepare(struct ca_state *ca, const struct rot *r, int64_t now,
                        int64_t takeover_at, struct ly_error *err)
{
    struct svid_key *key = NULL;
    struct ly_buf cert;
    struct x509svid_info info;
    struct store_ca rec;
    enum svid_key_type type;
    int64_t life = r->active->not_after - r->active->not_before;
    uint64_t seq = 0;
    int in_tx = 0;
    int rc;

    ly_buf_init(&cert, 0);
    memset(&rec, 0, sizeof(rec));
    if (life <= 0) {
        return ly_error_setx(err, LY_ERR_IO, 0, "database: CA %lld has no lifetime",
                             (long long)r->active->id);
    }
    rc = svid_key_type_parse(r->active->key_type, &type, err);
    if (rc < 0) {
        return rc;
    }
    rc = svid_key_generate(type, &key, err);
    if (rc < 0) {
        goto out;
    }
    /*
     * Back-dated as leaves are, so a peer whose clock is a little behind accepts it as soon as
     * it signs (which matters when `ca rotate` makes it sign at once).
     */
    rc = x509svid_ca_create(key, ca->td, now - X509SVID_LEAF_BACKDATE, life, &cert, err);
    if (rc == 0) {
        rc = x509svid_cert_info(cert.data, cert.len, &info, err);
    }
    if (rc < 0) {
        goto out;
    }
    rc = write_key_file(ca->data_dir, "ca", key, rec.key_file, sizeof(rec.key_file), err);
    if (rc < 0) {
        goto out;
    }
    (void)snprintf(rec.key_type, sizeof(rec.key_type), "%s", svid_key_type_name(type));
    rec.cert_der = cert.data;
    rec.cert_len = cert.len;
    rec.not_before = info.not_before;
    rec.not_after = info.not_after;
    rc = store_begin(ca->store, err);
    if (rc < 0) {
        goto out;
    }
    in_tx = 1;
    rc = store_ca_next_put(ca->store, &rec, err);
    if (rc == 0) {
        rc = bump_sequence(ca, &seq, err);
    }
    if (rc == 0 && !r->recorded) {
        rc = write_published(ca, r->published, r->n_published, err);
    }
    if (rc == 0) {
        rc = write_takeover(ca, takeover_at, err);
    }
    if (rc == 0) {
        rc = store_commit(ca->store, err);
    }
    if (rc < 0) {
        goto out;
    }
    in_tx = 0;
    ca->sequence = seq;
out:
    if (in_tx) {
        store_rollback(ca->store);
    }
    if (rc < 0) {
        remove_key_file(ca->data_dir, rec.key_file);
        (void)ly_error_wrap(err, "preparing the next CA");
    }
    ly_buf_free(&cert);
    svid_key_free(key);
    return rc;
}

/*
 * The prepared CA takes over: its key is loaded and checked first (nothing changes if that
 * fails), then one transaction records it as the active `ca` row, retires the old one, empties
 * the slot and adds it to the published list (the bundle's content does not change). Only
 * after the commit does this handle sign with it.
 */
static int step_takeover(struct ca_state *ca, const struct rot *r, struct ly_error *err)
{
    struct svid_key *key = NULL;
    struct x509svid_ca *signer = NULL;
    struct store_ca rec;
    int64_t ids[CA_MAX_PUBLISHED];
    size_t n = r->n_published;
    int64_t id = 0;
    int in_tx = 0;
    int rc;

    rc = load_key_file(ca->data_dir, r->next.key_file, &key, err);
    if (rc < 0) {
        goto out;
    }
    rc = x509svid_ca_new(r->next.cert_der, r->next.cert_len, key, &signer, err);
    if (rc < 0) {
        goto out;
    }
    if (n == CA_MAX_PUBLISHED) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "too many published CAs");
        goto out;
    }
    memcpy(ids, r->published, n * sizeof(ids[0]));
    rec = r->next;
    (void)snprintf(rec.status, sizeof(rec.status), "active");
    rc = store_begin(ca->store, err);
    if (rc < 0) {
        goto out;
    }
    in_tx = 1;
    rc = store_ca_add(ca->store, &rec, &id, err);
    if (rc == 0) {
        rc = store_ca_set_status(ca->store, r->active->id, "retired", err);
    }
    if (rc == 0) {
        rc = store_ca_next_clear(ca->store, err);
    }
    if (rc == 0) {
        ids[n++] = id;
        rc = write_published(ca, ids, n, err);
    }
    if (rc == 0) {
        rc = write_takeover(ca, 0, err); /* the forced rotation, if any, is done */
    }
    if (rc == 0) {
        rc = store_commit(ca->store, err);
    }
    if (rc < 0) {
        goto out;
    }
    in_tx = 0;
    x509svid_ca_free(ca->signer);
    svid_key_free(ca->ca_key);
    ca->signer = signer;
    ca->ca_key = key;
    ca->ca_id = id;
    ca->ca_not_after = x509svid_ca_not_after(signer);
    signer = NULL;
    key = NULL;
out:
    if (in_tx) {
        store_rollback(ca->store);
    }
    if (rc < 0) {
        (void)ly_error_wrap(err, "switching to the next CA");
    }
    x509svid_ca_free(signer);
    svid_key_free(key);
    return rc;
}

/*
 * Drop retired CAs whose SVIDs have all expired from the published list (sequence + 1), and
 * record the list for a data directory from before rotation. *dropped is 1 when the bundle
 * changed.
 */
static int step_prune(struct ca_state *ca, const struct rot *r, int64_t now, int *dropped,
                      struct ly_error *err)
{
    int64_t ids[CA_MAX_PUBLISHED];
    size_t n;
    int64_t drop_at;
    uint64_t seq = ca->sequence;
    int differ;
    int rc;

    *dropped = 0;
    rc = wanted_published(ca, r, now, ids, &n, &drop_at, err);
    if (rc < 0) {
        return rc;
    }
    differ = !same_ids(ids, n, r);
    if (!differ && r->recorded) {
        return 0;
    }
    rc = store_begin(ca->store, err);
    if (rc < 0) {
        return rc;
    }
    rc = write_published(ca, ids, n, err);
    if (rc == 0 && differ) {
        rc = bump_sequence(ca, &seq, err);
    }
    if (rc == 0) {
        rc = store_commit(ca->store, err);
    }
    if (rc < 0) {
        store_rollback(ca->store);
        return ly_error_wrap(err, "removing retired CAs from the bundle");
    }
    ca->sequence = seq;
    *dropped = differ;
    return 0;
}

/* Adopt what another process may have changed: the sequence, and which CA signs. */
static int sync_active(struct ca_state *ca, const struct rot *r, int *changed,
                       struct ly_error *err)
{
    int rc;

    if (r->sequence != ca->sequence) {
        ca->sequence = r->sequence;
        *changed |= CA_CHANGED_BUNDLE;
    }
    if (r->active->id != ca->ca_id) {
        rc = load_signer(ca, r->active, err);
        if (rc < 0) {
            return rc;
        }
        *changed |= CA_CHANGED_SIGNER;
    }
    return 0;
}

/* What a rotation pass is asked to do beyond the regular schedule. */
enum rot_mode {
    ROT_SCHEDULED, /* ca_maintain: only the steps that are due */
    ROT_NOW,       /* ca_rotate_now: prepare and take over at once */
    ROT_PREPARE,   /* ca_prepare_now: prepare now, take over at a recorded time */
};

/* Bring a recorded forced takeover time forward to `at` (never later), in one transaction. */
static int step_schedule_takeover(struct ca_state *ca, const struct rot *r, int64_t at,
                                  struct ly_error *err)
{
    int rc;

    if (r->forced_at > 0 && r->forced_at <= at) {
        return 0; /* an earlier `ca rotate` already asked for sooner */
    }
    rc = store_begin(ca->store, err);
    if (rc < 0) {
        return rc;
    }
    rc = write_takeover(ca, at, err);
    if (rc == 0) {
        rc = store_commit(ca->store, err);
    }
    if (rc < 0) {
        store_rollback(ca->store);
        return ly_error_wrap(err, "scheduling the next CA's takeover");
    }
    return 0;
}

static int maintain(struct ca_state *ca, int64_t now, enum rot_mode mode, int64_t takeover_at,
                    int *changed, struct ly_error *err)
{
    struct rot r;
    int dropped = 0;
    int rc;

    rc = rot_load(ca, now, &r, err);
    if (rc < 0) {
        return rc;
    }
    rc = sync_active(ca, &r, changed, err);
    if (rc < 0) {
        goto out;
    }
    if (!r.has_next && (mode != ROT_SCHEDULED || now >= prepare_time(r.active))) {
        rc = step_prepare(ca, &r, now, mode == ROT_PREPARE ? takeover_at : 0, err);
        if (rc < 0) {
            goto out;
        }
        *changed |= CA_CHANGED_BUNDLE;
        rot_free(&r);
        rc = rot_load(ca, now, &r, err);
        if (rc < 0) {
            return rc;
        }
    } else if (r.has_next && mode == ROT_PREPARE) {
        /* Published already (at 1/2 of the CA's life): only the takeover is brought forward. */
        rc = step_schedule_takeover(ca, &r, takeover_at, err);
        if (rc < 0) {
            goto out;
        }
        rot_free(&r);
        rc = rot_load(ca, now, &r, err);
        if (rc < 0) {
            return rc;
        }
    }
    /* In ROT_PREPARE mode only a takeover that is due anyway (the old CA expired) happens. */
    if (r.has_next && (mode == ROT_NOW || now >= takeover_time(&r))) {
        rc = step_takeover(ca, &r, err);
        if (rc < 0) {
            goto out;
        }
        *changed |= CA_CHANGED_SIGNER;
        rot_free(&r);
        rc = rot_load(ca, now, &r, err);
        if (rc < 0) {
            return rc;
        }
    }
    /* A forced rotation keeps the old CA published; the next regular run prunes. */
    if (mode == ROT_SCHEDULED) {
        rc = step_prune(ca, &r, now, &dropped, err);
        if (rc < 0) {
            goto out;
        }
        if (dropped) {
            *changed |= CA_CHANGED_BUNDLE;
        }
    }
out:
    rot_free(&r);
    return rc;
}

/* Run a rotation pass and keep the schedule honest whatever happened. */
static int maintain_and_schedule(struct ca_state *ca, int64_t now, enum rot_mode mode,
                                 int64_t takeover_at, int *changed, struct ly_error *err)
{
    int rc = maintain(ca, now, mode, takeover_at, changed, err);

    if (rc == 0) {
        rc = refresh_schedule(ca, now, err);
    }
    if (rc < 0) {
        ca->schedule_ok = 0;
        ca->failed_at = now;
    }
    return rc;
}

int ca_maintain(struct ca_state *ca, int64_t now, int *changed, struct ly_error *err)
{
    *changed = 0;
    return maintain_and_schedule(ca, now, ROT_SCHEDULED, 0, changed, err);
}

int ca_rotate_now(struct ca_state *ca, int64_t now, struct ly_error *err)
{
    int changed = 0;

    return maintain_and_schedule(ca, now, ROT_NOW, 0, &changed, err);
}

int ca_prepare_now(struct ca_state *ca, int64_t now, int64_t takeover_at, int *changed,
                   struct ly_error *err)
{
    *changed = 0;
    if (takeover_at <= now) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "the next CA must take over after it is published, not at once");
    }
    return maintain_and_schedule(ca, now, ROT_PREPARE, takeover_at, changed, err);
}

int64_t ca_takeover_at(const struct ca_state *ca)
{
    return ca->takeover_at;
}

int64_t ca_next_event(const struct ca_state *ca, int64_t now)
{
    if (!ca->schedule_ok) {
        /* After a failure, retry soon (counted from the failure, not from each call). */
        int64_t base = ca->failed_at < now ? ca->failed_at : now;
        return base + CA_RETRY_DELAY;
    }
    return ca->next_event;
}

int64_t ca_active_id(const struct ca_state *ca)
{
    return ca->ca_id;
}

int64_t ca_active_not_after(const struct ca_state *ca)
{
    return ca->ca_not_after;
}
