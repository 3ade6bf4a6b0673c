/*
 * fedsync: federation inside `lanyard server`. It serves this trust domain's bundle on the
 * bundle endpoint (federation/endpoint; https_web with the operator's certificate, or
 * https_spiffe with an SVID the daemon mints for itself), keeps the bundle of every federation
 * relationship fresh (federation/fetch on the daemon's loop, judged by federation/relation),
 * records what it accepts in the store, and tells the daemon when federated bundles may have
 * changed so Workload API streams (and gateways through them) get them at once. It keeps the
 * last good bundle whenever an endpoint is down or serves something it refuses. Single-threaded
 * (the daemon's loop); it logs only non-secret facts.
 */
#ifndef FEDSYNC_H
#define FEDSYNC_H

#include <stdint.h>

#include "../common/ly_error.h"
#include "../federation/relation.h"
#include "ca.h"
#include "loop.h"
#include "store.h"

/* The SPIFFE ID path of the daemon's own SVID on an https_spiffe bundle endpoint. */
#define FEDSYNC_ENDPOINT_PATH "/lanyard/server"
/* Lifetime of that SVID; it is renewed at half-life and whenever another CA takes over. */
#define FEDSYNC_ENDPOINT_SVID_TTL 3600

struct fedsync_config {
    const char *endpoint_listen;       /* "host:port"; NULL or "" serves no bundle endpoint */
    enum fed_profile endpoint_profile; /* of the endpoint served here */
    const char *web_cert;              /* https_web: PEM certificate chain file */
    const char *web_key;               /* https_web: PEM private key file */
};

struct fedsync;

/* Called when federated bundles (or anything else another process wrote) may have changed. */
typedef void (*fedsync_changed_fn)(void *arg);

/*
 * Start federation on `loop`: bind the bundle endpoint when configured (LY_ERR_IO when it
 * cannot; LY_ERR_USAGE for unusable web certificate files) and load the relationships from
 * `store`. ca, store and loop are borrowed and must outlive the handle. Free with
 * fedsync_free().
 */
int fedsync_new(struct loop *loop, struct ca_state *ca, struct store *store,
                const struct fedsync_config *cfg, fedsync_changed_fn changed, void *arg,
                struct fedsync **out, struct ly_error *err) LY_MUST_USE;

/*
 * The daemon's periodic step (every half second): notice what other processes wrote to the
 * store (relationships added or deleted, static bundles), start the fetches that are due,
 * renew the endpoint's SVID, and drop stalled endpoint connections.
 */
void fedsync_tick(struct fedsync *f, int64_t now);

/* This trust domain's bundle changed (CA rotation): serve the new one. `signer` is 1 when
 * another CA took over, so the endpoint's SVID is re-issued by it. */
void fedsync_bundle_changed(struct fedsync *f, int signer);

/* Re-read the https_web certificate and key files (SIGHUP). Errors are logged; the old
 * certificate stays in use. */
void fedsync_reload(struct fedsync *f);

/*
 * Fetch the bundle of trust domain `td` now (`lanyard federation refresh`). done(arg, ok,
 * message) runs once, from the loop, when the fetch was judged (message says what happened).
 * LY_ERR_PARSE (STORE_FED_R_NOT_FOUND) when there is no relationship for td.
 */
typedef void (*fedsync_done_fn)(void *arg, int ok, const char *message);
int fedsync_refresh(struct fedsync *f, const char *td, fedsync_done_fn done, void *arg,
                    struct ly_error *err) LY_MUST_USE;

/*
 * `lanyard federation refresh` without a running server: fetch TD's bundle once, blocking for
 * at most timeout_ms, judge it and record it in `store` exactly as the daemon would. On
 * success 0 and a one-line summary in msg; otherwise LY_ERR_PARSE (no relationship),
 * LY_ERR_IO (fetch failed) or LY_ERR_VERIFY/LY_ERR_PARSE (bundle refused), the last good
 * bundle kept.
 */
int fedsync_refresh_offline(struct store *store, const char *td, long timeout_ms, char *msg,
                            size_t msgsz, struct ly_error *err) LY_MUST_USE;

/* Forget every pending refresh callback whose arg is `arg` (its requester went away). */
void fedsync_forget(struct fedsync *f, void *arg);

/* The bundle endpoint's bound port (0 when none), and 200 answers served so far. */
int fedsync_endpoint_port(const struct fedsync *f);
uint64_t fedsync_endpoint_served(const struct fedsync *f);
/* Relationships known. */
size_t fedsync_relation_count(const struct fedsync *f);

/* Stop serving and fetching, and free. NULL is a no-op. */
void fedsync_free(struct fedsync *f);

#endif
