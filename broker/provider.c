/*
 * provider: the broker side of the Workload API. A caller is attested once per stream or call;
 * its entitlement (the entries its facts match) is re-read from the store each time its state
 * is recomputed, so an entry created or deleted takes effect on open streams. It never returns
 * a default identity: no matching entry means LY_ERR_POLICY (PermissionDenied).
 */
#define _GNU_SOURCE
#include "provider.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ly_buf.h"
#include "../common/ly_time.h"
#include "../trust-bundles/bundle.h"
#include "../trust-bundles/bundle_codec.h"
#include "attest.h"
#include "entry.h"
#include "log.h"
#include "store.h"

#define PROVIDER_MAX_IDS 64 /* identities one caller may hold at once */
#define PROVIDER_MAX_FED 64 /* federated trust domains one caller may receive */

struct held {
    char entry_id[ENTRY_ID_HEX_LEN + 1];
    char *spiffe_id;
    char *hint;
    char **fed; /* the entry's federates_with (bare trust domain names) */
    size_t n_fed;
};

/* A federated trust domain's bundle as the Workload API carries it. */
struct fedb {
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char td_id[SPIFFEID_TD_MAX_LEN + 10]; /* "spiffe://td" */
    struct ly_buf x509_der;               /* DER certificates, concatenated */
    struct ly_buf jwks;                   /* JWK Set JSON */
};

struct caller {
    struct provider *p;
    struct attest_facts *facts;
    struct held held[PROVIDER_MAX_IDS];
    size_t n_held;
    struct workload_x509 out[PROVIDER_MAX_IDS];
    struct workload_bundle fed_out[PROVIDER_MAX_FED];     /* federated X.509 bundles */
    struct workload_bundle bundles_out[PROVIDER_MAX_FED + 1]; /* own + federated */
    /*
     * 1 from op_attest until the next op: the entitlement was just read, in the same loop
     * callback (the Workload API attests and sends the first message in one go, and the loop is
     * single-threaded), so that first op need not match the entries a second time.
     */
    int just_matched;
};

struct provider {
    struct ca_state *ca;
    struct svidcache *cache;
    struct store *store;
    struct attest_cache *acache;
    int64_t jwt_ttl;
    size_t n_callers;
    /* Bundles, rebuilt when the CA's authorities change. */
    int dirty;
    char td_id[SPIFFEID_TD_MAX_LEN + 10];
    struct ly_buf x509_der;
    struct ly_buf jwks;
    struct workload_bundle xb;
    struct workload_bundle jb;
    /* Federated bundles from the store, reloaded when federation changed. */
    int fed_dirty;
    struct fedb *fed;
    size_t n_fed;
    /* Tokens of the last jwt_mint (borrowed by the caller until the next call). */
    struct ly_buf tokens[PROVIDER_MAX_IDS];
    struct workload_jwt jwts[PROVIDER_MAX_IDS];
    size_t n_tokens;
};

/* ---- bundles ------------------------------------------------------------------------------- */

/* A bundle's X.509 authorities as concatenated DER and its JWT authorities as a JWK Set. */
static int wire_of(const struct bundle *b, struct ly_buf *x509_der, struct ly_buf *jwks,
                   struct ly_error *err)
{
    json_t *keys = NULL;
    json_t *doc = NULL;
    char *text = NULL;
    size_t i;
    int rc = 0;

    ly_buf_init(x509_der, 4 * 1024 * 1024);
    ly_buf_init(jwks, 4 * 1024 * 1024);
    for (i = 0; i < bundle_x509_count(b) && rc == 0; i++) {
        size_t len = 0;
        const uint8_t *der = bundle_x509_authority(b, i, &len);
        rc = ly_buf_append(x509_der, der, len, err);
    }
    keys = json_array();
    if (rc == 0 && keys == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    /* WAPI-21: a plain JWK Set of the JWT authorities, each with its kid. */
    for (i = 0; i < bundle_jwt_count(b) && rc == 0; i++) {
        const uint8_t *spki = NULL;
        size_t len = 0;
        const char *kid = bundle_jwt_authority(b, i, &spki, &len);
        json_t *jwk = NULL;

        rc = bundle_codec_spki_to_jwk(spki, len, &jwk, err);
        if (rc == 0 && (json_object_set_new(jwk, "kid", json_string(kid)) != 0 ||
                        json_array_append_new(keys, jwk) != 0)) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
    }
    if (rc == 0) {
        doc = json_pack("{s:O}", "keys", keys);
        text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        rc = text != NULL ? ly_buf_append_str(jwks, text, err)
                          : ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    free(text);
    json_decref(doc);
    json_decref(keys);
    return rc;
}

static int rebuild_bundles(struct provider *p, struct ly_error *err)
{
    struct bundle *b = NULL;
    int rc;

    if (!p->dirty) {
        return 0;
    }
    ly_buf_free(&p->x509_der);
    ly_buf_free(&p->jwks);
    rc = ca_bundle(p->ca, ly_time_now(), &b, err);
    if (rc < 0) {
        return rc;
    }
    rc = wire_of(b, &p->x509_der, &p->jwks, err);
    bundle_free(b);
    if (rc < 0) {
        return rc;
    }
    p->xb.td_id = p->td_id;
    p->xb.data = p->x509_der.data;
    p->xb.len = p->x509_der.len;
    p->jb.td_id = p->td_id;
    p->jb.data = p->jwks.data;
    p->jb.len = p->jwks.len;
    p->dirty = 0;
    return 0;
}

void provider_bundle_changed(struct provider *p)
{
    p->dirty = 1;
}

static void fed_clear(struct provider *p)
{
    size_t i;

    for (i = 0; i < p->n_fed; i++) {
        ly_buf_free(&p->fed[i].x509_der);
        ly_buf_free(&p->fed[i].jwks);
    }
    free(p->fed);
    p->fed = NULL;
    p->n_fed = 0;
}

/* Every federated bundle the store holds (fetched, bootstrap or static). */
static int rebuild_federated(struct provider *p, struct ly_error *err)
{
    struct store_fed_bundle *list = NULL;
    size_t n = 0, i;
    int rc;

    if (!p->fed_dirty) {
        return 0;
    }
    rc = store_fed_bundle_list(p->store, &list, &n, err);
    if (rc < 0) {
        return rc;
    }
    fed_clear(p);
    p->fed = n > 0 ? calloc(n, sizeof(*p->fed)) : NULL;
    if (n > 0 && p->fed == NULL) {
        store_fed_bundle_list_free(list, n);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    for (i = 0; i < n; i++) {
        struct fedb *f = &p->fed[p->n_fed];
        struct bundle *b = NULL;
        struct ly_error e;

        ly_error_clear(&e);
        if (bundle_codec_parse_json(list[i].trust_domain, list[i].json, list[i].len, &b, &e) <
                0 ||
            wire_of(b, &f->x509_der, &f->jwks, &e) < 0) {
            /* One unreadable record must not take the others (or the SVIDs) away. */
            log_event(LOG_WARN, "federation.bundle_unusable", LOG_STR, "trust_domain",
                      list[i].trust_domain, LOG_STR, "reason", e.msg, LOG_END);
            ly_buf_free(&f->x509_der);
            ly_buf_free(&f->jwks);
            bundle_free(b);
            continue;
        }
        bundle_free(b);
        (void)snprintf(f->td, sizeof(f->td), "%s", list[i].trust_domain);
        (void)snprintf(f->td_id, sizeof(f->td_id), "spiffe://%s", list[i].trust_domain);
        p->n_fed++;
    }
    store_fed_bundle_list_free(list, n);
    p->fed_dirty = 0;
    return 0;
}

void provider_federation_changed(struct provider *p)
{
    p->fed_dirty = 1;
}

/* Whether one of the caller's entries federates with td. */
static int caller_federates(const struct caller *c, const char *td)
{
    size_t i, j;

    for (i = 0; i < c->n_held; i++) {
        for (j = 0; j < c->held[i].n_fed; j++) {
            if (strcmp(c->held[i].fed[j], td) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/*
 * The federated bundles a caller may receive (those its entries federate with) into out, as
 * X.509 (jwt = 0) or JWT (jwt = 1) bundles. Returns how many.
 */
static size_t caller_fed(struct provider *p, const struct caller *c, int jwt,
                         struct workload_bundle *out, size_t max)
{
    size_t i, k = 0;

    for (i = 0; c != NULL && i < p->n_fed && k < max; i++) {
        if (!caller_federates(c, p->fed[i].td)) {
            continue;
        }
        out[k].td_id = p->fed[i].td_id;
        out[k].data = jwt ? p->fed[i].jwks.data : p->fed[i].x509_der.data;
        out[k].len = jwt ? p->fed[i].jwks.len : p->fed[i].x509_der.len;
        k++;
    }
    return k;
}

/* ---- callers ------------------------------------------------------------------------------- */

static void held_clear(struct provider *p, struct held *h)
{
    size_t i;

    svidcache_release(p->cache, h->entry_id, ly_time_now());
    free(h->spiffe_id);
    free(h->hint);
    for (i = 0; i < h->n_fed; i++) {
        free(h->fed[i]);
    }
    free(h->fed);
    memset(h, 0, sizeof(*h));
}

/* Copy an entry's federates_with into h. 0 or -1 (out of memory). */
static int held_fed(struct held *h, const struct entry *e)
{
    size_t i;

    if (e->n_federates_with == 0) {
        return 0;
    }
    h->fed = calloc(e->n_federates_with, sizeof(*h->fed));
    if (h->fed == NULL) {
        return -1;
    }
    for (i = 0; i < e->n_federates_with; i++) {
        h->fed[i] = strdup(e->federates_with[i]);
        if (h->fed[i] == NULL) {
            return -1;
        }
        h->n_fed++;
    }
    return 0;
}

/*
 * Re-read the caller's entitlement and hold an SVID for each matching entry. New references are
 * taken before old ones are dropped, so a shared SVID is never released and re-minted needlessly.
 */
static int refresh_caller(struct caller *c, struct ly_error *err)
{
    struct provider *p = c->p;
    struct entry **entries = NULL;
    struct held next[PROVIDER_MAX_IDS];
    size_t n = 0;
    size_t k = 0;
    size_t i;
    int64_t now = ly_time_now();
    int rc;

    memset(next, 0, sizeof(next));
    rc = attest_recheck(c->facts, err);
    if (rc < 0) {
        return rc;
    }
    if (!c->facts->have_names) {
        int uses = 1;
        rc = store_entry_uses_names(p->store, &uses, err);
        if (rc == 0 && uses) {
            rc = attest_add_names(c->facts, err);
        }
        if (rc < 0) {
            return rc;
        }
    }
    rc = attest_match(p->store, c->facts, &entries, &n, err);
    if (rc < 0) {
        return rc;
    }
    if (n == 0) {
        entry_list_free(entries, n);
        return ly_error_setx(err, LY_ERR_POLICY, 0,
                             "no identity issued: no registration entry matches this workload "
                             "(uid %lu, pid %ld)",
                             (unsigned long)c->facts->uid, (long)c->facts->pid);
    }
    for (i = 0; i < n && k < PROVIDER_MAX_IDS; i++) {
        const struct svidcache_svid *svid = NULL;
        struct svidcache_request req;

        req.entry_id = entries[i]->id;
        req.spiffe_id = entries[i]->spiffe_id;
        req.dns = (const char *const *)entries[i]->dns;
        req.n_dns = entries[i]->n_dns;
        req.ttl = entries[i]->ttl;
        rc = svidcache_acquire(p->cache, &req, now, &svid, err);
        if (rc < 0) {
            break;
        }
        (void)snprintf(next[k].entry_id, sizeof(next[k].entry_id), "%s", entries[i]->id);
        next[k].spiffe_id = strdup(entries[i]->spiffe_id);
        next[k].hint = entries[i]->hint != NULL ? strdup(entries[i]->hint) : NULL;
        k++;
        if (next[k - 1].spiffe_id == NULL || held_fed(&next[k - 1], entries[i]) < 0) {
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
            break;
        }
    }
    entry_list_free(entries, n);
    if (rc < 0) {
        for (i = 0; i < k; i++) {
            held_clear(p, &next[i]);
        }
        return rc;
    }
    for (i = 0; i < c->n_held; i++) {
        held_clear(p, &c->held[i]);
    }
    memcpy(c->held, next, sizeof(next));
    c->n_held = k;
    return 0;
}

static int op_attest(void *ctx, const struct grpc_peer *peer, void **out, struct ly_error *err)
{
    struct provider *p = ctx;
    struct attest_opts opts;
    struct caller *c;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    c->p = p;
    memset(&opts, 0, sizeof(opts));
    opts.cache = p->acache;
    /* User and group lookups (nss) are most of attestation's cost; skip them when no entry
     * could use them. refresh_caller adds them if such an entry appears later. */
    {
        int uses = 1;
        if (store_entry_uses_names(p->store, &uses, err) < 0) {
            free(c);
            return err->code;
        }
        opts.no_names = !uses;
    }
    rc = attest_peer(peer->fd, &opts, &c->facts, err);
    if (rc == 0) {
        rc = refresh_caller(c, err);
    }
    if (rc < 0) {
        if (c->facts != NULL) {
            struct ly_buf d;
            struct ly_error e2;
            ly_error_clear(&e2);
            if (attest_facts_describe(c->facts, &d, &e2) == 0) {
                log_event(LOG_INFO, "workload.no_identity", LOG_STR, "facts", (char *)d.data,
                          LOG_STR, "reason", err->msg, LOG_END);
                ly_buf_free(&d);
            }
        }
        attest_facts_free(c->facts);
        free(c);
        return rc;
    }
    c->just_matched = 1;
    p->n_callers++;
    *out = c;
    return 0;
}

static void op_release(void *ctx, void *caller)
{
    struct provider *p = ctx;
    struct caller *c = caller;
    size_t i;

    if (c == NULL) {
        return;
    }
    for (i = 0; i < c->n_held; i++) {
        held_clear(p, &c->held[i]);
    }
    attest_facts_free(c->facts);
    free(c);
    p->n_callers--;
}

/*
 * Before answering a caller (NULL: nobody in particular): its entitlement re-read, unless it
 * was just read by op_attest, and this domain's and the federated bundles current.
 */
static int prepare(struct provider *p, struct caller *c, struct ly_error *err)
{
    int rc = 0;

    if (c != NULL) {
        rc = c->just_matched ? 0 : refresh_caller(c, err);
        c->just_matched = 0;
    }
    if (rc == 0) {
        rc = rebuild_bundles(p, err);
    }
    if (rc == 0) {
        rc = rebuild_federated(p, err);
    }
    return rc;
}

static int op_x509(void *ctx, void *caller, const struct workload_x509 **svids, size_t *n,
                   const struct workload_bundle **fed, size_t *n_fed, struct ly_error *err)
{
    struct provider *p = ctx;
    struct caller *c = caller;
    size_t i;
    size_t k = 0;
    int rc;

    rc = prepare(p, c, err);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < c->n_held; i++) {
        const struct svidcache_svid *s = svidcache_find(p->cache, c->held[i].entry_id);
        if (s == NULL) {
            continue;
        }
        c->out[k].spiffe_id = s->spiffe_id;
        c->out[k].chain = s->cert_der;
        c->out[k].chain_len = s->cert_len;
        c->out[k].key = s->key_der;
        c->out[k].key_len = s->key_len;
        c->out[k].bundle = p->xb.data;
        c->out[k].bundle_len = p->xb.len;
        c->out[k].hint = c->held[i].hint != NULL ? c->held[i].hint : "";
        k++;
    }
    if (k == 0) {
        return ly_error_setx(err, LY_ERR_POLICY, 0, "no identity issued to this workload");
    }
    *svids = c->out;
    *n = k;
    *n_fed = caller_fed(p, c, 0, c->fed_out, PROVIDER_MAX_FED);
    *fed = *n_fed > 0 ? c->fed_out : NULL;
    return 0;
}

/*
 * This trust domain's X.509 (jwt = 0) or JWT (jwt = 1) bundle, then those of the trust domains
 * the caller's entries federate with. The caller's entitlement is re-read first (a stream
 * without any entry left ends with PermissionDenied).
 */
static int bundles_of(struct provider *p, struct caller *c, int jwt,
                      const struct workload_bundle **b, size_t *n, struct ly_error *err)
{
    int rc = prepare(p, c, err);

    if (rc < 0) {
        return rc;
    }
    if (c == NULL) {
        *b = jwt ? &p->jb : &p->xb;
        *n = 1;
        return 0;
    }
    c->bundles_out[0] = jwt ? p->jb : p->xb;
    *n = 1 + caller_fed(p, c, jwt, c->bundles_out + 1, PROVIDER_MAX_FED);
    *b = c->bundles_out;
    return 0;
}

static int op_x509_bundles(void *ctx, void *caller, const struct workload_bundle **b, size_t *n,
                           struct ly_error *err)
{
    return bundles_of(ctx, caller, 0, b, n, err);
}

static int op_jwt_bundles(void *ctx, void *caller, const struct workload_bundle **b, size_t *n,
                          struct ly_error *err)
{
    return bundles_of(ctx, caller, 1, b, n, err);
}

static void tokens_clear(struct provider *p)
{
    size_t i;

    for (i = 0; i < p->n_tokens; i++) {
        ly_buf_free(&p->tokens[i]); /* secret buffers: wiped */
    }
    p->n_tokens = 0;
}

static int op_jwt_mint(void *ctx, void *caller, const char *spiffe_id, const char *const *aud,
                       size_t n_aud, const struct workload_jwt **out, size_t *n,
                       struct ly_error *err)
{
    struct provider *p = ctx;
    struct caller *c = caller;
    size_t i;
    int found = 0;
    int rc;

    tokens_clear(p);
    rc = c->just_matched ? 0 : refresh_caller(c, err);
    c->just_matched = 0;
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < c->n_held; i++) {
        struct spiffeid id;

        /* WAPI-20: an empty spiffe_id asks for every identity; a named one must be held. */
        if (spiffe_id[0] != '\0' && strcmp(spiffe_id, c->held[i].spiffe_id) != 0) {
            continue;
        }
        found = 1;
        rc = spiffeid_parse(c->held[i].spiffe_id, strlen(c->held[i].spiffe_id), &id, err);
        if (rc == 0) {
            rc = ca_mint_jwt(p->ca, &id, aud, n_aud, p->jwt_ttl,
                             &p->tokens[p->n_tokens], err);
        }
        if (rc < 0) {
            tokens_clear(p);
            return rc;
        }
        p->jwts[p->n_tokens].spiffe_id = c->held[i].spiffe_id;
        p->jwts[p->n_tokens].token = (const char *)p->tokens[p->n_tokens].data;
        p->jwts[p->n_tokens].hint = c->held[i].hint != NULL ? c->held[i].hint : "";
        p->n_tokens++;
    }
    if (!found) {
        return ly_error_setx(err, LY_ERR_POLICY, 0, "this workload holds no identity '%.128s'",
                             spiffe_id);
    }
    *out = p->jwts;
    *n = p->n_tokens;
    return 0;
}

/* Every federated bundle's JWT authorities into set: a JWT-SVID of a federated domain
 * validates against its own domain's keys (jwtsvid picks the bundle by the subject's domain). */
static int add_federated(struct provider *p, struct bundle_set *set, struct ly_error *err)
{
    size_t i;
    int rc = rebuild_federated(p, err);

    for (i = 0; rc == 0 && i < p->n_fed; i++) {
        struct bundle *b = NULL;

        rc = bundle_codec_parse_jwks(p->fed[i].td, p->fed[i].jwks.data, p->fed[i].jwks.len, &b,
                                     err);
        if (rc == 0) {
            rc = bundle_set_put(set, b, err);
        }
    }
    return rc;
}

static int op_jwt_validate(void *ctx, const char *token, const char *audience,
                           struct jwtsvid_result *res, struct ly_error *err)
{
    struct provider *p = ctx;
    struct bundle_set *set = NULL;
    struct bundle *b = NULL;
    int64_t now = ly_time_now();
    int rc;

    rc = bundle_set_new(&set, err);
    if (rc == 0) {
        rc = ca_bundle(p->ca, now, &b, err);
    }
    if (rc == 0) {
        rc = bundle_set_put(set, b, err);
    }
    if (rc == 0) {
        rc = add_federated(p, set, err);
    }
    if (rc == 0) {
        rc = jwtsvid_validate(token, strlen(token), audience, set, now, JWTSVID_LEEWAY_DEFAULT,
                              res, err);
    }
    bundle_set_free(set);
    return rc;
}

const struct workload_ops provider_ops = {
    .attest = op_attest,
    .release = op_release,
    .x509 = op_x509,
    .x509_bundles = op_x509_bundles,
    .jwt_bundles = op_jwt_bundles,
    .jwt_mint = op_jwt_mint,
    .jwt_validate = op_jwt_validate,
};

/* ---- lifecycle ----------------------------------------------------------------------------- */

int provider_new(struct ca_state *ca, struct svidcache *cache, const char *db_path,
                 int64_t jwt_ttl, struct provider **out, struct ly_error *err)
{
    struct provider *p;
    int n;
    int rc;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    p->ca = ca;
    p->cache = cache;
    p->jwt_ttl = jwt_ttl;
    p->dirty = 1;
    p->fed_dirty = 1;
    ly_buf_init(&p->x509_der, 0);
    ly_buf_init(&p->jwks, 0);
    n = snprintf(p->td_id, sizeof(p->td_id), "spiffe://%s", ca_trust_domain(ca));
    if (n < 0 || (size_t)n >= sizeof(p->td_id)) {
        free(p);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "trust domain too long");
    }
    p->acache = attest_cache_new(0);
    if (p->acache == NULL) {
        free(p);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    rc = store_open(db_path, &p->store, err);
    if (rc < 0) {
        attest_cache_free(p->acache);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

size_t provider_caller_count(const struct provider *p)
{
    return p->n_callers;
}

void provider_free(struct provider *p)
{
    if (p == NULL) {
        return;
    }
    tokens_clear(p);
    fed_clear(p);
    ly_buf_free(&p->x509_der);
    ly_buf_free(&p->jwks);
    attest_cache_free(p->acache);
    store_close(p->store);
    free(p);
}
