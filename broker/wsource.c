/*
 * wsource: two threads, each with its own grpc_client connection: one holds FetchX509SVID open,
 * the other FetchJWTBundles. Each message is unpacked, checked and handed to a callback; a
 * broken stream is reopened after a backoff (0.2 s doubling to 5 s) until wsource_stop().
 */
#define _GNU_SOURCE
#include "wsource.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/ly_guard.h"
#include "../common/ly_secret.h"
#include "../svid/spiffeid.h"
#include "../svid/x509svid.h"
#include "../trust-bundles/bundle_codec.h"
#include "grpc.h"
#include "grpc_client.h"
#include "log.h"
#include "workloadapi.pb-c.h"

#define WSOURCE_BACKOFF_MIN_MS 200
#define WSOURCE_BACKOFF_MAX_MS 5000

static const struct grpc_client_md wsource_md[] = {{"workload.spiffe.io", "true"}};

struct wsource {
    struct wsource_config cfg;
    volatile sig_atomic_t stop;
    pthread_t x509_thread;
    pthread_t jwt_thread;
    int x509_started;
    int jwt_started;
};

const char *wsource_td_name(const char *key)
{
    if (key != NULL && strncmp(key, "spiffe://", 9) == 0) {
        return key + 9;
    }
    return key;
}

int wsource_bundle_from_der(const char *td, const uint8_t *der, size_t len, struct bundle **out,
                            struct ly_error *err)
{
    struct x509svid_chain *certs = NULL;
    struct bundle *b = NULL;
    int rc;

    *out = NULL;
    rc = bundle_new(wsource_td_name(td), &b, err);
    if (rc == 0) {
        rc = x509svid_chain_parse(der, len, &certs, err);
    }
    for (size_t i = 0; rc == 0 && i < x509svid_chain_count(certs); i++) {
        size_t n;
        const uint8_t *c = x509svid_chain_cert(certs, i, &n);
        rc = bundle_add_x509_authority(b, c, n, err);
    }
    x509svid_chain_free(certs);
    if (rc < 0) {
        (void)ly_error_wrap(err, "bundle of %.255s", td);
        bundle_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Sleep `ms` in small steps so a stop request is noticed. */
static void backoff_wait(struct wsource *ws, long ms)
{
    while (ms > 0 && !ws->stop) {
        long step = ms > 100 ? 100 : ms;
        nap_ms(step);
        ms -= step;
    }
}

/* ---- X.509 ---------------------------------------------------------------------------------- */

static int x509_update(struct wsource *ws, const X509SVIDResponse *r, struct ly_error *err)
{
    const X509SVID *pick = NULL;
    struct bundle_set *set = NULL;
    struct bundle *b = NULL;
    struct wsource_svid svid;

    LY_ENSURE(r->n_svids > 0, err, LY_ERR_PARSE, "the update holds no SVID");
    for (size_t i = 0; i < r->n_svids; i++) {
        if (ws->cfg.want_id == NULL || strcmp(r->svids[i]->spiffe_id, ws->cfg.want_id) == 0) {
            pick = r->svids[i];
            break;
        }
    }
    if (pick == NULL) {
        return ly_error_setx(err, LY_ERR_POLICY, 0,
                             "none of the %zu SVIDs of this workload is %.255s (first: %.255s)",
                             r->n_svids, ws->cfg.want_id, r->svids[0]->spiffe_id);
    }
    {
        struct spiffeid id;
        char td[SPIFFEID_TD_MAX_LEN + 1];
        LY_GUARD(spiffeid_parse(pick->spiffe_id, strlen(pick->spiffe_id), &id, err));
        LY_ENSURE(spiffeid_td_copy(&id, td, sizeof(td)) == 0, err, LY_ERR_INTERNAL,
                  "trust domain too long");
        LY_GUARD(bundle_set_new(&set, err));
        if (wsource_bundle_from_der(td, pick->bundle.data, pick->bundle.len,
                                    &b, err) < 0 ||
            bundle_set_put(set, b, err) < 0) {
            bundle_set_free(set);
            return err->code;
        }
    }
    for (size_t i = 0; i < r->n_federated_bundles; i++) {
        const X509SVIDResponse__FederatedBundlesEntry *e = r->federated_bundles[i];
        if (wsource_bundle_from_der(e->key, e->value.data, e->value.len, &b, err) < 0 ||
            bundle_set_put(set, b, err) < 0) {
            bundle_set_free(set);
            return err->code;
        }
    }
    svid.spiffe_id = pick->spiffe_id;
    svid.chain_der = pick->x509_svid.data;
    svid.chain_len = pick->x509_svid.len;
    svid.key_der = pick->x509_svid_key.data;
    svid.key_len = pick->x509_svid_key.len;
    if (ws->cfg.on_x509(&svid, set, ws->cfg.arg) < 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, 0, "the update was refused");
    }
    return 0;
}

static int on_x509_msg(const uint8_t *msg, size_t len, void *arg)
{
    struct wsource *ws = arg;
    X509SVIDResponse *r;
    struct ly_error e;

    if (ws->stop) {
        return 1;
    }
    r = x509_svidresponse__unpack(NULL, len, msg);
    if (r == NULL) {
        log_event(LOG_ERROR, "wsource.update_rejected", LOG_STR, "error",
                  "malformed X509SVIDResponse", LOG_END);
        return 1;
    }
    ly_error_clear(&e);
    if (x509_update(ws, r, &e) < 0) {
        log_event(LOG_ERROR, "wsource.update_rejected", LOG_STR, "error", e.msg, LOG_END);
    }
    for (size_t i = 0; i < r->n_svids; i++) {
        ly_wipe(r->svids[i]->x509_svid_key.data, r->svids[i]->x509_svid_key.len);
    }
    x509_svidresponse__free_unpacked(r, NULL);
    return 0;
}

/* ---- JWT bundles ------------------------------------------------------------------------------ */

static int on_jwt_msg(const uint8_t *msg, size_t len, void *arg)
{
    struct wsource *ws = arg;
    JWTBundlesResponse *r;
    struct bundle_set *set = NULL;
    struct ly_error e;
    int rc;

    if (ws->stop) {
        return 1;
    }
    r = jwtbundles_response__unpack(NULL, len, msg);
    if (r == NULL) {
        log_event(LOG_ERROR, "wsource.update_rejected", LOG_STR, "error",
                  "malformed JWTBundlesResponse", LOG_END);
        return 1;
    }
    ly_error_clear(&e);
    rc = bundle_set_new(&set, &e);
    for (size_t i = 0; rc == 0 && i < r->n_bundles; i++) {
        struct bundle *b = NULL;
        const char *td = wsource_td_name(r->bundles[i]->key);
        rc = bundle_codec_parse_jwks(td, r->bundles[i]->value.data, r->bundles[i]->value.len,
                                     &b, &e);
        if (rc == 0) {
            rc = bundle_set_put(set, b, &e);
        }
    }
    jwtbundles_response__free_unpacked(r, NULL);
    if (rc == 0) {
        rc = ws->cfg.on_jwt(set, ws->cfg.arg);
        set = NULL;
        if (rc < 0) {
            (void)ly_error_setx(&e, LY_ERR_VERIFY, 0, "the JWT bundles were refused");
        }
    }
    bundle_set_free(set);
    if (rc < 0) {
        log_event(LOG_ERROR, "wsource.update_rejected", LOG_STR, "error", e.msg, LOG_END);
    }
    return 0;
}

/* ---- threads ---------------------------------------------------------------------------------- */

struct stream_def {
    const char *path;
    const char *name;
    grpc_client_msg_fn on_msg;
};

static void run_stream(struct wsource *ws, const struct stream_def *d)
{
    long backoff = WSOURCE_BACKOFF_MIN_MS;

    while (!ws->stop) {
        struct grpc_client *c = NULL;
        struct grpc_client_status st;
        struct ly_error e;

        ly_error_clear(&e);
        if (grpc_client_connect_unix(ws->cfg.socket_path, &c, &e) == 0) {
            grpc_client_set_interrupt(c, &ws->stop);
            memset(&st, 0, sizeof(st));
            if (grpc_client_call(c, d->path, wsource_md, 1, NULL, 0, 0, d->on_msg, ws, &st,
                                 &e) == 0) {
                if (!ws->stop) {
                    log_event(LOG_WARN, "wsource.stream_ended", LOG_STR, "stream", d->name,
                              LOG_INT, "status", (int64_t)st.status, LOG_STR, "message",
                              st.message, LOG_INT, "retry_ms", (int64_t)backoff, LOG_END);
                }
                if (st.status != GRPC_PERMISSION_DENIED) {
                    backoff = WSOURCE_BACKOFF_MIN_MS;
                }
            } else {
                log_event(LOG_WARN, "wsource.stream_failed", LOG_STR, "stream", d->name,
                          LOG_STR, "error", e.msg, LOG_END);
            }
            grpc_client_free(c);
        } else {
            log_event(LOG_WARN, "wsource.connect_failed", LOG_STR, "socket",
                      ws->cfg.socket_path, LOG_STR, "error", e.msg, LOG_INT, "retry_ms",
                      (int64_t)backoff, LOG_END);
        }
        backoff_wait(ws, backoff);
        backoff = backoff * 2 > WSOURCE_BACKOFF_MAX_MS ? WSOURCE_BACKOFF_MAX_MS : backoff * 2;
    }
}

static void *x509_main(void *arg)
{
    static const struct stream_def d = {"/SpiffeWorkloadAPI/FetchX509SVID", "x509",
                                        on_x509_msg};
    run_stream(arg, &d);
    return NULL;
}

static void *jwt_main(void *arg)
{
    static const struct stream_def d = {"/SpiffeWorkloadAPI/FetchJWTBundles", "jwt_bundles",
                                        on_jwt_msg};
    run_stream(arg, &d);
    return NULL;
}

int wsource_start(const struct wsource_config *cfg, struct wsource **out, struct ly_error *err)
{
    struct wsource *ws;

    *out = NULL;
    LY_ENSURE(cfg->socket_path != NULL && cfg->socket_path[0] != '\0' && cfg->on_x509 != NULL,
              err, LY_ERR_USAGE, "a Workload API socket and an X.509 callback are required");
    ws = calloc(1, sizeof(*ws));
    LY_ENSURE(ws != NULL, err, LY_ERR_NOMEM, "out of memory");
    ws->cfg = *cfg;
    if (pthread_create(&ws->x509_thread, NULL, x509_main, ws) != 0) {
        free(ws);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "cannot start the Workload API thread");
    }
    ws->x509_started = 1;
    if (cfg->on_jwt != NULL) {
        if (pthread_create(&ws->jwt_thread, NULL, jwt_main, ws) != 0) {
            wsource_stop(ws);
            return ly_error_setx(err, LY_ERR_INTERNAL, 0,
                                 "cannot start the JWT bundle thread");
        }
        ws->jwt_started = 1;
    }
    *out = ws;
    return 0;
}

void wsource_stop(struct wsource *ws)
{
    if (ws == NULL) {
        return;
    }
    ws->stop = 1;
    if (ws->x509_started) {
        pthread_join(ws->x509_thread, NULL);
    }
    if (ws->jwt_started) {
        pthread_join(ws->jwt_thread, NULL);
    }
    free(ws);
}
