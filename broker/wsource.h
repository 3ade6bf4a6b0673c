/*
 * wsource: a long-lived Workload API client for processes that hold their identity in memory
 * (the gateway). Two background threads keep a FetchX509SVID stream and a FetchJWTBundles
 * stream open on broker/grpc_client, reconnect with backoff when either breaks, and hand every
 * validated update to the caller's callbacks. Nothing is written to disk; the private key is
 * wiped as soon as the callback returns.
 */
#ifndef WSOURCE_H
#define WSOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"
#include "../trust-bundles/bundle.h"

/* One SVID as the Workload API sent it; every pointer is borrowed for the callback only. */
struct wsource_svid {
    const char *spiffe_id;
    const uint8_t *chain_der; /* the leaf first, then intermediates, concatenated DER */
    size_t chain_len;
    const uint8_t *key_der;   /* PKCS#8 DER private key (secret: copy it into secret memory) */
    size_t key_len;
};

/*
 * Called from the X.509 thread with the chosen SVID (the one named by want_id, else the first)
 * and the X.509 bundles it must trust (its own trust domain and every federated one). The
 * callee owns `bundles` and frees it with bundle_set_free(). Return 0 to accept the update;
 * a negative value is logged and the update ignored (the last good one stays in force).
 */
typedef int (*wsource_x509_fn)(const struct wsource_svid *svid, struct bundle_set *bundles,
                               void *arg);
/* Called from the JWT thread with the JWT bundles (owned by the callee, as above). */
typedef int (*wsource_jwt_fn)(struct bundle_set *bundles, void *arg);

struct wsource_config {
    const char *socket_path; /* the Workload API Unix socket */
    const char *want_id;     /* pick this SPIFFE ID when the workload holds several; NULL: first */
    wsource_x509_fn on_x509; /* required */
    wsource_jwt_fn on_jwt;   /* NULL: no JWT bundle stream */
    void *arg;
};

struct wsource;

/* Start the threads. The config's strings are borrowed and must outlive the source. */
int wsource_start(const struct wsource_config *cfg, struct wsource **out, struct ly_error *err)
    LY_MUST_USE;

/* Stop the threads (each notices within GRPC_CLIENT_INTR_POLL_MS) and free. NULL is a no-op. */
void wsource_stop(struct wsource *ws);

/*
 * Pure pieces, exposed for tests: turn concatenated DER certificates into a bundle for `td`
 * (a bare name or "spiffe://name"), and strip an optional "spiffe://" from a bundle map key.
 */
int wsource_bundle_from_der(const char *td, const uint8_t *der, size_t len, struct bundle **out,
                            struct ly_error *err) LY_MUST_USE;
const char *wsource_td_name(const char *key);

#endif
