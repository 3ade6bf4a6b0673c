/*
 * fedsync: the daemon's federation work on its loop: the bundle endpoint, one scheduled fetch
 * per relationship, and the store as the record of what was accepted. It never blocks: fetches
 * run on libcurl's multi interface through federation/fetch's hooks, the endpoint through
 * federation/endpoint's. A refused or failed fetch changes nothing but the relationship's
 * status and its next try.
 */
#define _GNU_SOURCE
#include "fedsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ly_buf.h"
#include "../common/ly_file.h"
#include "../common/ly_time.h"
#include "../federation/endpoint.h"
#include "../federation/fetch.h"
#include "../svid/key.h"
#include "../trust-bundles/bundle_codec.h"
#include "config.h"
#include "log.h"

#define FEDSYNC_MAX_WAITERS 8
#define FEDSYNC_MAX_PEM (256 * 1024)

struct waiter {
    fedsync_done_fn done;
    void *arg;
};

/* One relationship: its configuration from the store and what the daemon knows at run time. */
struct rel {
    struct store_fed_relation r; /* owns r.ca_pem */
    enum fed_profile profile;
    struct spiffeid endpoint_id;  /* https_spiffe */
    struct bundle *current;       /* the bundle held (bootstrap or last good), or NULL */
    int64_t next_at;              /* epoch seconds of the next fetch */
    unsigned failures;            /* consecutive failed or refused fetches */
    uint64_t fetch_id;            /* in flight, or 0 */
    char last_error[LY_ERROR_MSG_MAX];
    int seen;                     /* mark for reloads */
    struct waiter waiters[FEDSYNC_MAX_WAITERS];
    size_t n_waiters;
};

struct fedsync {
    struct loop *loop;
    struct ca_state *ca;
    struct store *store;
    struct fedsync_config cfg;
    fedsync_changed_fn changed;
    void *arg;
    struct fed_fetch *fetch;
    uint64_t fetch_timer;
    struct fed_endpoint *ep;
    int64_t ep_renew_at;   /* https_spiffe: when the endpoint's SVID is renewed */
    struct rel **rels;
    size_t n_rels;
    int64_t data_version;
    int have_version;
    uint64_t fed_digest; /* of the federated bundles in the store, as last seen */
};

static uint64_t fed_digest(struct fedsync *f);

static void rel_free(struct fedsync *f, struct rel *r)
{
    size_t i;

    if (r == NULL) {
        return;
    }
    if (r->fetch_id != 0) {
        fed_fetch_cancel(f->fetch, r->fetch_id);
    }
    for (i = 0; i < r->n_waiters; i++) {
        r->waiters[i].done(r->waiters[i].arg, 0, "the federation relationship was deleted");
    }
    store_fed_relation_clear(&r->r);
    bundle_free(r->current);
    free(r);
}

static void answer_waiters(struct rel *r, int ok, const char *msg)
{
    struct waiter w[FEDSYNC_MAX_WAITERS];
    size_t i, n = r->n_waiters;

    /* Copied first: a callback may start another refresh of the same relationship. */
    memcpy(w, r->waiters, n * sizeof(w[0]));
    r->n_waiters = 0;
    for (i = 0; i < n; i++) {
        w[i].done(w[i].arg, ok, msg);
    }
}

/* ---- the loop's side of federation/fetch --------------------------------------------------- */

static void on_fetch_fd(struct loop *loop, int fd, int mask, void *arg)
{
    struct fedsync *f = arg;

    (void)loop;
    fed_fetch_socket(f->fetch, fd, mask);
}

/* Both federation modules ask for fds the same way; mask 0 stops watching. */
static int watch_fd(struct fedsync *f, int fd, int mask, loop_file_fn cb)
{
    struct ly_error e;

    ly_error_clear(&e);
    if (mask == 0) {
        loop_fd_del(f->loop, fd);
        return 0;
    }
    return loop_fd_add(f->loop, fd, mask, cb, f, &e) < 0 ? -1 : 0;
}

static int hook_watch(void *arg, int fd, int mask)
{
    return watch_fd(arg, fd, mask, on_fetch_fd);
}

static long on_fetch_timer(struct loop *loop, uint64_t id, void *arg)
{
    struct fedsync *f = arg;

    (void)loop;
    (void)id;
    f->fetch_timer = 0;
    fed_fetch_timeout(f->fetch);
    return LOOP_TIMER_DONE;
}

static void hook_timer(void *arg, long ms)
{
    struct fedsync *f = arg;
    struct ly_error e;

    if (f->fetch_timer != 0) {
        loop_timer_del(f->loop, f->fetch_timer);
        f->fetch_timer = 0;
    }
    if (ms >= 0) {
        ly_error_clear(&e);
        if (loop_timer_add(f->loop, ms, on_fetch_timer, f, &f->fetch_timer, &e) < 0) {
            f->fetch_timer = 0;
        }
    }
}

/* ---- the endpoint ----------------------------------------------------------------------------- */

/* The handle is looked up at each event: the listening socket is watched from inside
 * fed_endpoint_new(), before f->ep is set. */
static void on_endpoint_fd(struct loop *loop, int fd, int mask, void *arg)
{
    struct fedsync *f = arg;

    (void)loop;
    if (f->ep != NULL) {
        fed_endpoint_io(f->ep, fd, mask);
    }
}

static int hook_ep_watch(void *arg, int fd, int mask)
{
    return watch_fd(arg, fd, mask, on_endpoint_fd);
}

/* The body the endpoint serves: this trust domain's bundle as SPIFFE bundle JSON. */
static int publish_bundle(struct fedsync *f, struct ly_error *err)
{
    struct bundle *b = NULL;
    struct ly_buf json;
    int rc;

    if (f->ep == NULL) {
        return 0;
    }
    ly_buf_init(&json, BUNDLE_CODEC_MAX_OUTPUT);
    rc = ca_bundle(f->ca, ly_time_now(), &b, err);
    if (rc == 0) {
        rc = bundle_codec_write_json(b, &json, err);
    }
    if (rc == 0) {
        rc = fed_endpoint_set_bundle(f->ep, json.data, json.len, err);
    }
    bundle_free(b);
    ly_buf_free(&json);
    return rc;
}

/* https_spiffe: an SVID for spiffe://TD/lanyard/server, minted (and recorded) by our CA. */
static int endpoint_svid(struct fedsync *f, int64_t now, struct ly_error *err)
{
    struct svid_key *key = NULL;
    struct ly_buf spki, cert, pkcs8;
    struct spiffeid id;
    int rc;

    ly_buf_init(&spki, 0);
    ly_buf_init(&cert, 0);
    ly_buf_init_secret(&pkcs8, 0);
    rc = spiffeid_from_parts(ca_trust_domain(f->ca), FEDSYNC_ENDPOINT_PATH, &id, err);
    if (rc == 0) {
        rc = svid_key_generate(SVID_KEY_EC_P256, &key, err);
    }
    if (rc == 0) {
        rc = svid_key_public_der(key, &spki, err);
    }
    if (rc == 0) {
        rc = ca_mint_x509(f->ca, &id, spki.data, spki.len, FEDSYNC_ENDPOINT_SVID_TTL, NULL, 0,
                          &cert, err);
    }
    if (rc == 0) {
        rc = svid_key_to_pkcs8_der(key, &pkcs8, err);
    }
    if (rc == 0) {
        rc = fed_endpoint_set_identity(f->ep, cert.data, cert.len, pkcs8.data, pkcs8.len, err);
    }
    if (rc == 0) {
        f->ep_renew_at = now + FEDSYNC_ENDPOINT_SVID_TTL / 2;
        log_event(LOG_INFO, "federation.endpoint_svid", LOG_STR, "spiffe_id", id.str, LOG_INT,
                  "renew_at", f->ep_renew_at, LOG_END);
    }
    svid_key_free(key);
    ly_buf_free(&spki);
    ly_buf_free(&cert);
    ly_buf_free(&pkcs8); /* secret: wiped */
    return rc;
}

/* https_web: the operator's certificate chain and key files. */
static int endpoint_web_identity(struct fedsync *f, struct ly_error *err)
{
    struct ly_buf cert, key;
    int rc;

    rc = ly_file_read(f->cfg.web_cert, FEDSYNC_MAX_PEM, 0, &cert, err);
    if (rc < 0) {
        return ly_error_wrap(err, "--web-cert");
    }
    rc = ly_file_read(f->cfg.web_key, FEDSYNC_MAX_PEM, 1, &key, err);
    if (rc < 0) {
        ly_buf_free(&cert);
        return ly_error_wrap(err, "--web-key");
    }
    rc = fed_endpoint_set_identity_pem(f->ep, cert.data, cert.len, key.data, key.len, err);
    if (rc < 0) {
        (void)ly_error_wrap(err, "web certificate %s and key %s", f->cfg.web_cert,
                            f->cfg.web_key);
    }
    ly_buf_free(&cert);
    ly_buf_free(&key); /* secret: wiped */
    return rc;
}

static int endpoint_start(struct fedsync *f, struct ly_error *err)
{
    struct fed_endpoint_hooks h = {f, hook_ep_watch};
    char host[64];
    int port;
    int rc;

    rc = config_parse_listen(f->cfg.endpoint_listen, host, sizeof(host), &port, err);
    if (rc < 0) {
        return ly_error_wrap(err, "bundle endpoint address");
    }
    rc = fed_endpoint_new(&h, host, port, &f->ep, err);
    if (rc < 0) {
        return rc;
    }
    rc = f->cfg.endpoint_profile == FED_PROFILE_HTTPS_WEB ? endpoint_web_identity(f, err)
                                                          : endpoint_svid(f, ly_time_now(), err);
    if (rc == 0) {
        rc = publish_bundle(f, err);
    }
    if (rc == 0) {
        log_event(LOG_INFO, "federation.endpoint_listening", LOG_STR, "address",
                  f->cfg.endpoint_listen, LOG_INT, "port", (int64_t)fed_endpoint_port(f->ep),
                  LOG_STR, "profile", fed_profile_name(f->cfg.endpoint_profile), LOG_END);
    }
    return rc;
}

void fedsync_bundle_changed(struct fedsync *f, int signer)
{
    struct ly_error e;

    ly_error_clear(&e);
    if (f->ep == NULL) {
        return;
    }
    if (publish_bundle(f, &e) < 0) {
        log_event(LOG_ERROR, "federation.endpoint_bundle_failed", LOG_STR, "reason", e.msg,
                  LOG_END);
    }
    if (signer && f->cfg.endpoint_profile == FED_PROFILE_HTTPS_SPIFFE) {
        f->ep_renew_at = 0; /* re-issued by the new CA at the next tick */
    }
}

void fedsync_reload(struct fedsync *f)
{
    struct ly_error e;

    ly_error_clear(&e);
    if (f->ep == NULL || f->cfg.endpoint_profile != FED_PROFILE_HTTPS_WEB) {
        return;
    }
    if (endpoint_web_identity(f, &e) < 0) {
        log_event(LOG_ERROR, "federation.endpoint_reload_failed", LOG_STR, "reason", e.msg,
                  LOG_END);
        return;
    }
    log_event(LOG_INFO, "federation.endpoint_reloaded", LOG_STR, "cert", f->cfg.web_cert,
              LOG_END);
}

/* ---- fetching ------------------------------------------------------------------------------- */

static struct rel *rel_find(struct fedsync *f, const char *td)
{
    size_t i;

    for (i = 0; i < f->n_rels; i++) {
        if (strcmp(f->rels[i]->r.trust_domain, td) == 0) {
            return f->rels[i];
        }
    }
    return NULL;
}

static int64_t rel_hint(const struct rel *r)
{
    int64_t hint = 0;

    if (r->current == NULL || bundle_get_refresh_hint(r->current, &hint) < 0) {
        return 0;
    }
    return hint;
}

static void rel_status(struct fedsync *f, struct rel *r, int64_t now, int ok, const char *msg)
{
    struct ly_error e;

    ly_error_clear(&e);
    if (store_fed_relation_status(f->store, r->r.trust_domain, now, ok, ok ? "" : msg, &e) < 0 &&
        e.reason != STORE_FED_R_NOT_FOUND) { /* deleted meanwhile: the next tick drops it */
        log_event(LOG_WARN, "federation.status_not_recorded", LOG_STR, "trust_domain",
                  r->r.trust_domain, LOG_STR, "reason", e.msg, LOG_END);
    }
}

/* A failed or refused fetch: keep the last good bundle, try again later. */
static void rel_failed(struct fedsync *f, struct rel *r, int64_t now, const char *event,
                       const char *msg)
{
    uint64_t seq = 0;
    int64_t delay;

    r->failures++;
    (void)snprintf(r->last_error, sizeof(r->last_error), "%s", msg);
    delay = fed_backoff(r->failures, rel_hint(r));
    r->next_at = now + delay;
    log_event(LOG_WARN, event, LOG_STR, "trust_domain", r->r.trust_domain, LOG_STR, "url",
              r->r.url, LOG_STR, "reason", msg, LOG_INT, "kept_sequence",
              r->current != NULL && bundle_get_sequence(r->current, &seq) == 0 ? (int64_t)seq
                                                                                 : -1,
              LOG_INT, "retry_in_seconds", delay, LOG_END);
    rel_status(f, r, now, 0, msg);
    answer_waiters(r, 0, msg);
}

static int store_bundle(struct fedsync *f, struct rel *r, const struct bundle *b, int64_t now,
                        struct ly_error *err)
{
    struct store_fed_bundle sb;
    struct ly_buf json;
    uint64_t seq = 0;
    int64_t hint = 0;
    int rc;

    ly_buf_init(&json, BUNDLE_CODEC_MAX_OUTPUT);
    rc = bundle_codec_write_json(b, &json, err);
    if (rc < 0) {
        return rc;
    }
    memset(&sb, 0, sizeof(sb));
    (void)snprintf(sb.trust_domain, sizeof(sb.trust_domain), "%s", r->r.trust_domain);
    sb.json = json.data;
    sb.len = json.len;
    sb.sequence = bundle_get_sequence(b, &seq) == 0 ? (int64_t)seq : -1;
    sb.refresh_hint = bundle_get_refresh_hint(b, &hint) == 0 ? hint : -1;
    (void)snprintf(sb.source, sizeof(sb.source), "endpoint");
    sb.updated_at = now;
    rc = store_fed_bundle_put(f->store, &sb, err);
    ly_buf_free(&json);
    return rc;
}

static void on_fetched(void *arg, uint64_t id, const struct fed_fetch_result *res)
{
    struct fedsync *f = arg;
    struct rel *r = NULL;
    struct fed_check chk;
    struct bundle *b = NULL;
    struct ly_error e;
    int64_t now = ly_time_now();
    int changed = 0;
    size_t i;
    char msg[LY_ERROR_MSG_MAX + 64];

    for (i = 0; i < f->n_rels && r == NULL; i++) {
        if (f->rels[i]->fetch_id == id) {
            r = f->rels[i];
        }
    }
    if (r == NULL) {
        return; /* the relationship went away meanwhile */
    }
    r->fetch_id = 0;
    if (!res->ok) {
        rel_failed(f, r, now, "federation.fetch_failed", res->err.msg);
        return;
    }
    memset(&chk, 0, sizeof(chk));
    chk.trust_domain = r->r.trust_domain;
    chk.profile = r->profile;
    chk.endpoint_id = r->profile == FED_PROFILE_HTTPS_SPIFFE ? &r->endpoint_id : NULL;
    chk.current = r->current;
    chk.body = res->body;
    chk.body_len = res->body_len;
    chk.peer_chain = res->chain_der;
    chk.peer_chain_len = res->chain_len;
    chk.now = now;
    ly_error_clear(&e);
    if (fed_check_bundle(&chk, &b, &changed, &e) < 0) {
        rel_failed(f, r, now, "federation.bundle_refused", e.msg);
        return;
    }
    if (changed && store_bundle(f, r, b, now, &e) < 0) {
        bundle_free(b);
        rel_failed(f, r, now, "federation.bundle_not_stored", e.msg);
        return;
    }
    bundle_free(r->current);
    r->current = b;
    r->failures = 0;
    r->next_at = now + fed_next_refresh(rel_hint(r));
    {
        uint64_t seq = 0;
        int64_t s = bundle_get_sequence(b, &seq) == 0 ? (int64_t)seq : -1;

        log_event(changed ? LOG_INFO : LOG_DEBUG,
                  changed ? "federation.bundle_updated" : "federation.bundle_unchanged", LOG_STR,
                  "trust_domain", r->r.trust_domain, LOG_INT, "sequence", s, LOG_INT,
                  "x509_authorities", (int64_t)bundle_x509_count(b), LOG_INT,
                  "jwt_authorities", (int64_t)bundle_jwt_count(b), LOG_INT, "next_in_seconds",
                  r->next_at - now, LOG_INT, "fetch_ms", (int64_t)res->elapsed_ms, LOG_END);
        (void)snprintf(msg, sizeof(msg), "%s: bundle %s (sequence %lld, %zu X.509 and %zu JWT "
                                         "authorities)",
                       r->r.trust_domain, changed ? "updated" : "unchanged", (long long)s,
                       bundle_x509_count(b), bundle_jwt_count(b));
    }
    rel_status(f, r, now, 1, "");
    if (changed) {
        f->fed_digest = fed_digest(f);
        f->changed(f->arg);
    }
    answer_waiters(r, 1, msg);
}

static void rel_start(struct fedsync *f, struct rel *r, int64_t now)
{
    struct fed_fetch_request req;
    struct ly_error e;

    memset(&req, 0, sizeof(req));
    req.url = r->r.url;
    req.auth = r->profile == FED_PROFILE_HTTPS_SPIFFE ? FED_FETCH_PEER_CHAIN : FED_FETCH_WEB;
    req.ca_pem = r->r.ca_pem;
    req.ca_len = r->r.ca_len;
    ly_error_clear(&e);
    if (fed_fetch_start(f->fetch, &req, on_fetched, f, &r->fetch_id, &e) < 0) {
        r->fetch_id = 0;
        rel_failed(f, r, now, "federation.fetch_failed", e.msg);
    }
}

/* ---- relationships from the store ---------------------------------------------------------- */

/* The bundle the store holds for td (bootstrap, last fetched, or static), or NULL. */
static struct bundle *stored_bundle(struct fedsync *f, const char *td)
{
    struct store_fed_bundle sb;
    struct bundle *b = NULL;
    struct ly_error e;
    int found = 0;

    ly_error_clear(&e);
    memset(&sb, 0, sizeof(sb));
    if (store_fed_bundle_get(f->store, td, &sb, &found, &e) < 0 || !found) {
        return NULL;
    }
    if (bundle_codec_parse_json(td, sb.json, sb.len, &b, &e) < 0) {
        log_event(LOG_WARN, "federation.stored_bundle_unreadable", LOG_STR, "trust_domain", td,
                  LOG_STR, "reason", e.msg, LOG_END);
        b = NULL;
    }
    store_fed_bundle_clear(&sb);
    return b;
}

static int same_config(const struct store_fed_relation *a, const struct store_fed_relation *b)
{
    return strcmp(a->url, b->url) == 0 && strcmp(a->profile, b->profile) == 0 &&
           strcmp(a->endpoint_id, b->endpoint_id) == 0 && a->ca_len == b->ca_len &&
           (a->ca_len == 0 || memcmp(a->ca_pem, b->ca_pem, a->ca_len) == 0);
}

static struct rel *rel_new(struct fedsync *f, struct store_fed_relation *src, int64_t now)
{
    struct rel *r = calloc(1, sizeof(*r));
    struct ly_error e;

    if (r == NULL) {
        return NULL;
    }
    ly_error_clear(&e);
    r->r = *src; /* takes over ca_pem */
    memset(src, 0, sizeof(*src));
    if (fed_profile_parse(r->r.profile, &r->profile, &e) < 0 ||
        (r->profile == FED_PROFILE_HTTPS_SPIFFE &&
         spiffeid_parse(r->r.endpoint_id, strlen(r->r.endpoint_id), &r->endpoint_id, &e) < 0)) {
        log_event(LOG_ERROR, "federation.relationship_unusable", LOG_STR, "trust_domain",
                  r->r.trust_domain, LOG_STR, "reason", e.msg, LOG_END);
        store_fed_relation_clear(&r->r);
        free(r);
        return NULL;
    }
    r->current = stored_bundle(f, r->r.trust_domain);
    r->next_at = now; /* fetch at once */
    return r;
}

/* Bring the relationships in line with the store: new ones start, deleted ones stop. */
static void reload(struct fedsync *f, int64_t now)
{
    struct store_fed_relation *list = NULL;
    struct rel **next;
    struct ly_error e;
    size_t n = 0, i, k = 0;

    ly_error_clear(&e);
    if (store_fed_relation_list(f->store, &list, &n, &e) < 0) {
        log_event(LOG_ERROR, "federation.reload_failed", LOG_STR, "reason", e.msg, LOG_END);
        return;
    }
    next = n > 0 ? calloc(n, sizeof(*next)) : NULL;
    if (n > 0 && next == NULL) {
        store_fed_relation_list_free(list, n);
        return;
    }
    for (i = 0; i < f->n_rels; i++) {
        f->rels[i]->seen = 0;
    }
    for (i = 0; i < n; i++) {
        struct rel *r = rel_find(f, list[i].trust_domain);

        if (r != NULL && same_config(&r->r, &list[i])) {
            struct bundle *stored = stored_bundle(f, r->r.trust_domain);

            /* Keep the run-time state; pick up a bundle someone else stored meanwhile. */
            if (stored != NULL && !fed_bundle_same(stored, r->current)) {
                bundle_free(r->current);
                r->current = stored;
            } else {
                bundle_free(stored);
            }
            r->seen = 1;
            next[k++] = r;
            continue;
        }
        if (r != NULL) {
            r->seen = 0; /* changed configuration: replaced below */
        }
        r = rel_new(f, &list[i], now);
        if (r != NULL) {
            r->seen = 2; /* new */
            next[k++] = r;
            log_event(LOG_INFO, "federation.relationship", LOG_STR, "trust_domain",
                      r->r.trust_domain, LOG_STR, "url", r->r.url, LOG_STR, "profile",
                      r->r.profile, LOG_STR, "endpoint_id", r->r.endpoint_id, LOG_END);
        }
    }
    for (i = 0; i < f->n_rels; i++) {
        if (f->rels[i]->seen == 0) {
            log_event(LOG_INFO, "federation.relationship_removed", LOG_STR, "trust_domain",
                      f->rels[i]->r.trust_domain, LOG_END);
            rel_free(f, f->rels[i]);
        }
    }
    free(f->rels);
    f->rels = next;
    f->n_rels = k;
    store_fed_relation_list_free(list, n);
}

/*
 * A digest of what the store holds as federated bundles (trust domain, source, sequence, size,
 * update time). Anything in this process and others writes the store (SVID records, consent),
 * and only a change here concerns the Workload API's streams.
 */
static uint64_t fed_digest(struct fedsync *f)
{
    struct store_fed_bundle *list = NULL;
    struct ly_error e;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t n = 0, i, k;

    ly_error_clear(&e);
    if (store_fed_bundle_list(f->store, &list, &n, &e) < 0) {
        return 0; /* unknown: treat as changed */
    }
    for (i = 0; i < n; i++) {
        int64_t v[4] = {list[i].sequence, list[i].updated_at, (int64_t)list[i].len,
                        list[i].refresh_hint};
        const unsigned char *p = (const unsigned char *)list[i].trust_domain;

        for (; *p != '\0'; p++) {
            h = (h ^ *p) * 1099511628211ULL;
        }
        for (p = (const unsigned char *)list[i].source; *p != '\0'; p++) {
            h = (h ^ *p) * 1099511628211ULL;
        }
        for (k = 0; k < sizeof(v); k++) {
            h = (h ^ ((const unsigned char *)v)[k]) * 1099511628211ULL;
        }
    }
    store_fed_bundle_list_free(list, n);
    return h;
}

/* ---- the tick ------------------------------------------------------------------------------- */

void fedsync_tick(struct fedsync *f, int64_t now)
{
    struct ly_error e;
    int64_t v = 0;
    size_t i;

    ly_error_clear(&e);
    if (store_data_version(f->store, &v, &e) == 0 && (!f->have_version || v != f->data_version)) {
        uint64_t d;

        f->data_version = v;
        f->have_version = 1;
        reload(f, now);
        d = fed_digest(f);
        if (d != f->fed_digest || d == 0) {
            f->fed_digest = d;
            f->changed(f->arg); /* a static bundle set or deleted, a relationship deleted */
        }
    }
    for (i = 0; i < f->n_rels; i++) {
        struct rel *r = f->rels[i];

        if (r->fetch_id == 0 && now >= r->next_at) {
            rel_start(f, r, now);
        }
    }
    if (f->ep != NULL) {
        if (f->cfg.endpoint_profile == FED_PROFILE_HTTPS_SPIFFE && now >= f->ep_renew_at) {
            ly_error_clear(&e);
            if (endpoint_svid(f, now, &e) < 0) {
                f->ep_renew_at = now + 10; /* keep serving the current one; retry soon */
                log_event(LOG_ERROR, "federation.endpoint_svid_failed", LOG_STR, "reason", e.msg,
                          LOG_END);
            }
        }
        fed_endpoint_tick(f->ep, loop_now_ms(f->loop));
    }
}

int fedsync_refresh(struct fedsync *f, const char *td, fedsync_done_fn done, void *arg,
                    struct ly_error *err)
{
    struct rel *r = rel_find(f, td);

    if (r == NULL) {
        /* It may have been added a moment ago by another process. */
        reload(f, ly_time_now());
        r = rel_find(f, td);
    }
    if (r == NULL) {
        /* An unknown name is invalid input (exit 1), as for `federation show`. */
        return ly_error_setx(err, LY_ERR_PARSE, STORE_FED_R_NOT_FOUND,
                             "no federation relationship for %.255s", td);
    }
    if (r->n_waiters >= FEDSYNC_MAX_WAITERS) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "too many refreshes of %.255s at once", td);
    }
    if (r->fetch_id == 0) {
        rel_start(f, r, ly_time_now());
        if (r->fetch_id == 0) {
            /* Refused before any I/O (logged and recorded by rel_failed): answer now, never
             * through the callback, which must not run inside the caller's request. */
            return ly_error_setx(err, LY_ERR_IO, 0, "the fetch of %.255s could not start: %s",
                                 td, r->last_error);
        }
    }
    r->waiters[r->n_waiters].done = done;
    r->waiters[r->n_waiters].arg = arg;
    r->n_waiters++;
    return 0;
}

void fedsync_forget(struct fedsync *f, void *arg)
{
    size_t i, j;

    for (i = 0; f != NULL && i < f->n_rels; i++) {
        struct rel *r = f->rels[i];

        for (j = 0; j < r->n_waiters;) {
            if (r->waiters[j].arg == arg) {
                r->waiters[j] = r->waiters[--r->n_waiters];
            } else {
                j++;
            }
        }
    }
}

int fedsync_endpoint_port(const struct fedsync *f)
{
    return f != NULL && f->ep != NULL ? fed_endpoint_port(f->ep) : 0;
}

uint64_t fedsync_endpoint_served(const struct fedsync *f)
{
    return f != NULL && f->ep != NULL ? fed_endpoint_served(f->ep) : 0;
}

size_t fedsync_relation_count(const struct fedsync *f)
{
    return f != NULL ? f->n_rels : 0;
}

/* ---- one refresh without the daemon --------------------------------------------------------- */

struct offline {
    int done;
    int ok;
    char msg[LY_ERROR_MSG_MAX + 64];
};

static void offline_done(void *arg, int ok, const char *message)
{
    struct offline *o = arg;

    o->done = 1;
    o->ok = ok;
    (void)snprintf(o->msg, sizeof(o->msg), "%s", message);
}

static void offline_changed(void *arg)
{
    (void)arg; /* no stream to tell: the store is the record */
}

int fedsync_refresh_offline(struct store *store, const char *td, long timeout_ms, char *msg,
                            size_t msgsz, struct ly_error *err)
{
    struct fedsync *f = calloc(1, sizeof(*f));
    struct offline o;
    int rc;

    memset(&o, 0, sizeof(o));
    if (f == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    f->store = store;
    f->changed = offline_changed;
    rc = fed_fetch_new(NULL, &f->fetch, err);
    if (rc == 0) {
        reload(f, ly_time_now());
        rc = fedsync_refresh(f, td, offline_done, &o, err);
    }
    if (rc == 0) {
        rc = fed_fetch_run(f->fetch, timeout_ms, err);
    }
    if (rc == 0 && !o.done) {
        rc = ly_error_setx(err, LY_ERR_IO, 0, "the fetch of %.255s did not finish", td);
    }
    if (rc == 0 && !o.ok) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, 0, "%s", o.msg);
    }
    if (rc == 0) {
        (void)snprintf(msg, msgsz, "%s", o.msg);
    }
    fedsync_free(f);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int fedsync_new(struct loop *loop, struct ca_state *ca, struct store *store,
                const struct fedsync_config *cfg, fedsync_changed_fn changed, void *arg,
                struct fedsync **out, struct ly_error *err)
{
    struct fedsync *f;
    struct fed_fetch_hooks hooks;
    int rc;

    *out = NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    f->loop = loop;
    f->ca = ca;
    f->store = store;
    f->cfg = *cfg;
    f->changed = changed;
    f->arg = arg;
    hooks.arg = f;
    hooks.watch = hook_watch;
    hooks.timer = hook_timer;
    rc = fed_fetch_new(&hooks, &f->fetch, err);
    if (rc == 0 && cfg->endpoint_listen != NULL && cfg->endpoint_listen[0] != '\0') {
        rc = endpoint_start(f, err);
    }
    if (rc < 0) {
        fedsync_free(f);
        return rc;
    }
    fedsync_tick(f, ly_time_now());
    *out = f;
    return 0;
}

void fedsync_free(struct fedsync *f)
{
    size_t i;

    if (f == NULL) {
        return;
    }
    for (i = 0; i < f->n_rels; i++) {
        rel_free(f, f->rels[i]);
    }
    free(f->rels);
    fed_fetch_free(f->fetch);
    if (f->fetch_timer != 0 && f->loop != NULL) {
        loop_timer_del(f->loop, f->fetch_timer);
    }
    fed_endpoint_free(f->ep);
    free(f);
}
