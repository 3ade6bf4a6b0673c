/*
 * svidcache: per-entry X509-SVIDs in a small hash table keyed by entry id. An item costs its
 * strings, its certificate (~0.5 KB) and its PKCS#8 key in locked secret memory; only entries
 * with a live workload (or idle within idle_keep) have one. It must not log or copy key bytes.
 */
#define _GNU_SOURCE
#include "svidcache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../common/ly_buf.h"
#include "../common/ly_secret.h"
#include "../svid/spiffeid.h"
#include "../svid/x509svid.h"
#include "svidcache_internal.h"

#define SVIDCACHE_MIN_BUCKETS 64

struct item {
    struct svidcache_svid pub; /* the callers' view; its pointers point into this item */
    struct item *next;         /* hash chain */
    char *entry_id;
    char *spiffe_id;
    char **dns;
    size_t n_dns;
    int64_t ttl;
    uint8_t *key; /* ly_secret_alloc'ed */
    size_t key_len;
    uint8_t *cert;
    size_t cert_len;
    unsigned refs;
    int64_t idle_until; /* when refs == 0: dropped at this time */
};

struct svidcache {
    struct ca_state *ca; /* borrowed */
    enum svid_key_type key_type;
    int64_t idle_keep;
    struct item **buckets;
    size_t n_buckets; /* a power of two */
    size_t count;
    void (*key_free_hook)(void *arg, const uint8_t *key, size_t len);
    void *hook_arg;
};

/* FNV-1a: entry ids are the daemon's own, not attacker-chosen, so a simple hash will do. */
static size_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    while (*s != '\0') {
        h ^= (uint8_t)*s++;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

static void free_key(struct svidcache *c, uint8_t *key, size_t len)
{
    if (key == NULL) {
        return;
    }
    ly_wipe(key, len);
    if (c->key_free_hook != NULL) {
        c->key_free_hook(c->hook_arg, key, len);
    }
    ly_secret_free(key, len);
}

static void free_dns(char **dns, size_t n)
{
    size_t i;

    if (dns == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(dns[i]);
    }
    free(dns);
}

static void item_free(struct svidcache *c, struct item *it)
{
    if (it == NULL) {
        return;
    }
    free_key(c, it->key, it->key_len);
    free(it->cert);
    free(it->entry_id);
    free(it->spiffe_id);
    free_dns(it->dns, it->n_dns);
    free(it);
}

int svidcache_new(struct ca_state *ca, enum svid_key_type key_type, int64_t idle_keep,
                  struct svidcache **out, struct ly_error *err)
{
    struct svidcache *c;

    *out = NULL;
    if (ca == NULL || idle_keep < 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "svidcache: needs a CA and idle_keep >= 0");
    }
    if (key_type != SVID_KEY_EC_P256 && key_type != SVID_KEY_ED25519) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "svidcache: unknown key type");
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    c->buckets = calloc(SVIDCACHE_MIN_BUCKETS, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    c->n_buckets = SVIDCACHE_MIN_BUCKETS;
    c->ca = ca;
    c->key_type = key_type;
    c->idle_keep = idle_keep;
    *out = c;
    return 0;
}

void svidcache_free(struct svidcache *c)
{
    size_t i;

    if (c == NULL) {
        return;
    }
    for (i = 0; i < c->n_buckets; i++) {
        struct item *it = c->buckets[i];
        while (it != NULL) {
            struct item *nx = it->next;
            item_free(c, it);
            it = nx;
        }
    }
    free(c->buckets);
    free(c);
}

void svidcache_set_key_free_hook(struct svidcache *c,
                                 void (*hook)(void *arg, const uint8_t *key, size_t len),
                                 void *arg)
{
    c->key_free_hook = hook;
    c->hook_arg = arg;
}

static struct item **slot_of(const struct svidcache *c, const char *entry_id)
{
    struct item **p = &c->buckets[hash_id(entry_id) & (c->n_buckets - 1)];

    while (*p != NULL && strcmp((*p)->entry_id, entry_id) != 0) {
        p = &(*p)->next;
    }
    return p;
}

/* Double the table when it is fuller than one item per bucket; failure only costs speed. */
static void maybe_grow(struct svidcache *c)
{
    size_t n = c->n_buckets * 2;
    struct item **nb;
    size_t i;

    if (c->count < c->n_buckets || n > SIZE_MAX / sizeof(*nb)) {
        return;
    }
    nb = calloc(n, sizeof(*nb));
    if (nb == NULL) {
        return;
    }
    for (i = 0; i < c->n_buckets; i++) {
        struct item *it = c->buckets[i];
        while (it != NULL) {
            struct item *nx = it->next;
            size_t h = hash_id(it->entry_id) & (n - 1);
            it->next = nb[h];
            nb[h] = it;
            it = nx;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->n_buckets = n;
}

static void unlink_item(struct svidcache *c, struct item **slot)
{
    struct item *it = *slot;

    *slot = it->next;
    c->count--;
    item_free(c, it);
}

/*
 * refresh_at = not_before + life/2 - jitter with jitter uniform in [life/20, life/10] (so between
 * 40 % and 45 % of the life), from the kernel's CSPRNG so that many SVIDs minted together
 * (a CA takeover) do not all come due in the same second again. The upper bound stays clear of
 * half-life so that the new SVID reaches open streams before the old one is half spent, even
 * with the daemon's tick and whole-second clocks in between.
 */
static int pick_refresh(int64_t nb, int64_t na, int64_t now, int64_t *out, struct ly_error *err)
{
    int64_t life = na - nb;
    int64_t hi = life / 2 - (life + 19) / 20;
    int64_t lo = (2 * life + 4) / 5;
    uint64_t r;
    int64_t at;

    if (life <= 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "svidcache: minted SVID has no lifetime");
    }
    if (hi < 1) {
        hi = 1;
    }
    if (lo > hi) {
        lo = hi;
    }
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        return ly_error_set(err, LY_ERR_INTERNAL, 0, "getrandom failed");
    }
    at = nb + hi - (int64_t)(r % (uint64_t)(hi - lo + 1));
    /* A tiny TTL must not make the SVID due again at once (the loop would spin). */
    if (at <= now) {
        at = now + 1 < na ? now + 1 : na;
    }
    *out = at;
    return 0;
}

/* Mint a fresh key and SVID for `it` and swap them in; on failure `it` is unchanged. */
static int mint_into(struct svidcache *c, struct item *it, int64_t now, struct ly_error *err)
{
    struct spiffeid id;
    struct svid_key *key = NULL;
    struct ly_buf spki;
    struct ly_buf cert;
    struct ly_buf pkcs8;
    struct x509svid_info info;
    uint8_t *key_copy = NULL;
    int64_t ca_id = ca_active_id(c->ca);
    int64_t refresh_at = 0;
    int rc;

    ly_buf_init(&spki, 0);
    ly_buf_init(&cert, 0);
    ly_buf_init_secret(&pkcs8, 0);
    rc = spiffeid_parse(it->spiffe_id, strlen(it->spiffe_id), &id, err);
    if (rc < 0) {
        return rc;
    }
    rc = svid_key_generate(c->key_type, &key, err);
    if (rc == 0) {
        rc = svid_key_public_der(key, &spki, err);
    }
    if (rc == 0) {
        rc = ca_mint_x509_at(c->ca, &id, spki.data, spki.len, it->ttl,
                             (const char *const *)it->dns, it->n_dns, now, &cert, err);
    }
    if (rc == 0) {
        rc = x509svid_cert_info(cert.data, cert.len, &info, err);
    }
    if (rc == 0) {
        rc = pick_refresh(info.not_before, info.not_after, now, &refresh_at, err);
    }
    if (rc == 0) {
        rc = svid_key_to_pkcs8_der(key, &pkcs8, err);
    }
    if (rc < 0) {
        goto out;
    }
    key_copy = ly_secret_alloc(pkcs8.len);
    if (key_copy == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    memcpy(key_copy, pkcs8.data, pkcs8.len);
    free_key(c, it->key, it->key_len);
    free(it->cert);
    it->key = key_copy;
    it->key_len = pkcs8.len;
    it->cert = ly_buf_steal(&cert, &it->cert_len);
    it->pub.entry_id = it->entry_id;
    it->pub.spiffe_id = it->spiffe_id;
    it->pub.cert_der = it->cert;
    it->pub.cert_len = it->cert_len;
    it->pub.key_der = it->key;
    it->pub.key_len = it->key_len;
    it->pub.not_before = info.not_before;
    it->pub.not_after = info.not_after;
    it->pub.refresh_at = refresh_at;
    it->pub.ca_id = ca_id;
    it->pub.generation++;
out:
    ly_buf_free(&spki);
    ly_buf_free(&cert);
    ly_buf_free(&pkcs8);
    svid_key_free(key);
    return rc;
}

static int same_request(const struct item *it, const struct svidcache_request *req)
{
    size_t i;

    if (strcmp(it->spiffe_id, req->spiffe_id) != 0 || it->ttl != req->ttl ||
        it->n_dns != req->n_dns) {
        return 0;
    }
    for (i = 0; i < req->n_dns; i++) {
        if (strcmp(it->dns[i], req->dns[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Copy the request's ID, DNS names and TTL into `it`; on failure `it` is unchanged. */
static int set_request(struct item *it, const struct svidcache_request *req,
                       struct ly_error *err)
{
    char *sid = dup_str(req->spiffe_id);
    char **dns = NULL;
    size_t i;

    if (sid == NULL) {
        goto nomem;
    }
    if (req->n_dns > 0) {
        dns = calloc(req->n_dns, sizeof(*dns));
        if (dns == NULL) {
            goto nomem;
        }
        for (i = 0; i < req->n_dns; i++) {
            dns[i] = dup_str(req->dns[i]);
            if (dns[i] == NULL) {
                goto nomem;
            }
        }
    }
    free(it->spiffe_id);
    free_dns(it->dns, it->n_dns);
    it->spiffe_id = sid;
    it->dns = dns;
    it->n_dns = req->n_dns;
    it->ttl = req->ttl;
    return 0;
nomem:
    free(sid);
    free_dns(dns, req->n_dns);
    return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
}

static int check_request(const struct svidcache_request *req, struct ly_error *err)
{
    size_t i;

    if (req->entry_id == NULL || req->entry_id[0] == '\0' ||
        strlen(req->entry_id) > SVIDCACHE_ENTRY_ID_MAX || req->spiffe_id == NULL ||
        req->ttl <= 0 || req->n_dns > X509SVID_MAX_DNS || (req->n_dns > 0 && req->dns == NULL)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "svidcache: invalid request");
    }
    for (i = 0; i < req->n_dns; i++) {
        if (req->dns[i] == NULL) {
            return ly_error_setx(err, LY_ERR_USAGE, 0, "svidcache: invalid request");
        }
    }
    return 0;
}

int svidcache_acquire(struct svidcache *c, const struct svidcache_request *req, int64_t now,
                      const struct svidcache_svid **out, struct ly_error *err)
{
    struct item **slot;
    struct item *it;
    struct item saved;
    int rc;

    *out = NULL;
    rc = check_request(req, err);
    if (rc < 0) {
        return rc;
    }
    slot = slot_of(c, req->entry_id);
    it = *slot;
    if (it != NULL) {
        if (now < it->pub.refresh_at && it->pub.ca_id == ca_active_id(c->ca) &&
            same_request(it, req)) {
            it->refs++;
            *out = &it->pub;
            return 0;
        }
        if (same_request(it, req)) {
            rc = mint_into(c, it, now, err);
        } else {
            /* The entry changed: mint for the new request, keep the old one if that fails. */
            saved = *it;
            it->spiffe_id = NULL;
            it->dns = NULL;
            it->n_dns = 0;
            rc = set_request(it, req, err);
            if (rc == 0) {
                rc = mint_into(c, it, now, err);
            }
            if (rc < 0) {
                free(it->spiffe_id);
                free_dns(it->dns, it->n_dns);
                it->spiffe_id = saved.spiffe_id;
                it->dns = saved.dns;
                it->n_dns = saved.n_dns;
                it->ttl = saved.ttl;
                return rc;
            }
            free(saved.spiffe_id);
            free_dns(saved.dns, saved.n_dns);
        }
        if (rc < 0) {
            return rc;
        }
        it->refs++;
        *out = &it->pub;
        return 0;
    }
    it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    it->entry_id = dup_str(req->entry_id);
    if (it->entry_id == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto fail;
    }
    rc = set_request(it, req, err);
    if (rc == 0) {
        rc = mint_into(c, it, now, err);
    }
    if (rc < 0) {
        goto fail;
    }
    it->refs = 1;
    it->next = NULL;
    *slot = it;
    c->count++;
    maybe_grow(c);
    *out = &it->pub;
    return 0;
fail:
    item_free(c, it);
    return rc;
}

const struct svidcache_svid *svidcache_find(const struct svidcache *c, const char *entry_id)
{
    struct item *it = *slot_of(c, entry_id);

    return it != NULL ? &it->pub : NULL;
}

void svidcache_release(struct svidcache *c, const char *entry_id, int64_t now)
{
    struct item **slot = slot_of(c, entry_id);
    struct item *it = *slot;

    if (it == NULL || it->refs == 0) {
        return;
    }
    if (--it->refs > 0) {
        return;
    }
    if (c->idle_keep == 0) {
        unlink_item(c, slot);
        return;
    }
    it->idle_until = now + c->idle_keep;
}

int svidcache_drop(struct svidcache *c, const char *entry_id)
{
    struct item **slot = slot_of(c, entry_id);

    if (*slot == NULL) {
        return 0;
    }
    unlink_item(c, slot);
    return 1;
}

int64_t svidcache_next_refresh(const struct svidcache *c)
{
    int64_t next = INT64_MAX;
    size_t i;

    for (i = 0; i < c->n_buckets; i++) {
        const struct item *it;
        for (it = c->buckets[i]; it != NULL; it = it->next) {
            int64_t at = it->pub.refresh_at;
            if (it->refs == 0 && it->idle_until < at) {
                at = it->idle_until;
            }
            if (at < next) {
                next = at;
            }
        }
    }
    return next;
}

int svidcache_refresh_due(struct svidcache *c, int64_t now, svidcache_fn fn, void *arg,
                          struct ly_error *err)
{
    int64_t active = ca_active_id(c->ca);
    int first_rc = 0;
    size_t i;

    for (i = 0; i < c->n_buckets; i++) {
        struct item **slot = &c->buckets[i];
        while (*slot != NULL) {
            struct item *it = *slot;
            int due = now >= it->pub.refresh_at || it->pub.ca_id != active;
            int rc;

            if (it->refs == 0 && (due || now >= it->idle_until)) {
                unlink_item(c, slot); /* nobody holds it: never re-mint for no one */
                continue;
            }
            if (due) {
                struct ly_error e;
                ly_error_clear(&e);
                rc = mint_into(c, it, now, &e);
                if (rc < 0) {
                    /* The old SVID is still valid for a while: keep it, try again soon. */
                    it->pub.refresh_at = now + SVIDCACHE_RETRY_DELAY;
                    if (first_rc == 0) {
                        first_rc = ly_error_setx(err, e.code, e.reason,
                                                 "re-issuing the SVID of entry %s: %s",
                                                 it->entry_id, e.msg);
                    }
                } else if (fn != NULL) {
                    fn(arg, &it->pub);
                }
            }
            slot = &it->next;
        }
    }
    return first_rc;
}

void svidcache_ca_changed(struct svidcache *c, int64_t now)
{
    int64_t active = ca_active_id(c->ca);
    size_t i;

    for (i = 0; i < c->n_buckets; i++) {
        struct item *it;
        for (it = c->buckets[i]; it != NULL; it = it->next) {
            if (it->pub.ca_id != active && it->pub.refresh_at > now) {
                it->pub.refresh_at = now;
            }
        }
    }
}

size_t svidcache_count(const struct svidcache *c)
{
    return c->count;
}
