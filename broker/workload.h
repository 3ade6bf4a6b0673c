/*
 * workload: the SPIFFE Workload API service (workloadapi.proto) on top of the grpc transport.
 * It speaks the protocol: the `workload.spiffe.io: true` header, protobuf messages, streams that
 * carry the complete current state and are re-sent whenever it changes, and the status codes of
 * the standard (InvalidArgument, PermissionDenied, Unavailable, Unimplemented). What a caller is
 * entitled to comes from the broker through `struct workload_ops`; this module never decides
 * identity itself and never logs key or token bytes.
 */
#ifndef WORKLOAD_H
#define WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"
#include "../svid/jwtsvid.h"
#include "grpc.h"

/* One X509-SVID for the caller; every pointer borrowed until the next ops call. */
struct workload_x509 {
    const char *spiffe_id;
    const uint8_t *chain; /* DER certificates concatenated, leaf first */
    size_t chain_len;
    const uint8_t *key;   /* PKCS#8 DER private key (secret) */
    size_t key_len;
    const uint8_t *bundle; /* DER CA certificates of the SVID's trust domain, concatenated */
    size_t bundle_len;
    const char *hint;      /* "" when none */
};

/* One bundle keyed by trust domain ID ("spiffe://example.org"); borrowed like above. */
struct workload_bundle {
    const char *td_id;
    const uint8_t *data; /* DER certificates (X.509) or JWKS JSON (JWT) */
    size_t len;
};

/* One JWT-SVID; borrowed like above. The token is secret. */
struct workload_jwt {
    const char *spiffe_id;
    const char *token;
    const char *hint;
};

/*
 * What the broker provides. `caller` is the broker's handle for an attested workload. Return
 * codes: 0; LY_ERR_POLICY when the caller is not (or no longer) entitled → PermissionDenied;
 * LY_ERR_USAGE for a bad request argument → InvalidArgument; LY_ERR_VERIFY for a token that
 * does not validate → InvalidArgument; anything else → Unavailable.
 */
struct workload_ops {
    int (*attest)(void *ctx, const struct grpc_peer *peer, void **caller, struct ly_error *err);
    void (*release)(void *ctx, void *caller);
    /* The caller's X509-SVIDs (at least one) and the federated X.509 bundles it may use. */
    int (*x509)(void *ctx, void *caller, const struct workload_x509 **svids, size_t *n,
                const struct workload_bundle **federated, size_t *n_fed, struct ly_error *err);
    /* X.509 bundles: this trust domain's and the federated ones. */
    int (*x509_bundles)(void *ctx, void *caller, const struct workload_bundle **b, size_t *n,
                        struct ly_error *err);
    /* JWT bundles (JWKS JSON): this trust domain's and the federated ones. */
    int (*jwt_bundles)(void *ctx, void *caller, const struct workload_bundle **b, size_t *n,
                       struct ly_error *err);
    /* JWT-SVIDs for `spiffe_id` ("" for every identity of the caller) and the audiences. */
    int (*jwt_mint)(void *ctx, void *caller, const char *spiffe_id, const char *const *aud,
                    size_t n_aud, const struct workload_jwt **out, size_t *n,
                    struct ly_error *err);
    /* Validate a JWT-SVID for an audience; fills res (caller frees with jwtsvid_result_free). */
    int (*jwt_validate)(void *ctx, const char *token, const char *audience,
                        struct jwtsvid_result *res, struct ly_error *err);
};

struct workload;

/*
 * Create the service and its gRPC server on `loop`, listening on the Unix socket `path` (mode
 * 0666: any local process may ask; attestation decides what it gets). ops and ctx are borrowed
 * and must outlive the service. Free with workload_free().
 */
int workload_new(struct loop *loop, const char *path, const struct workload_ops *ops, void *ctx,
                 struct workload **out, struct ly_error *err) LY_MUST_USE;

/*
 * Something changed (an SVID was rotated, a bundle or an entry changed): every open stream
 * recomputes its state and sends it if it differs from what it sent last. Streams whose caller
 * is no longer entitled end with PermissionDenied.
 */
void workload_notify(struct workload *w);

/* Number of open streams (status and tests). */
size_t workload_stream_count(const struct workload *w);

/* Stop accepting, end streams (Unavailable, so clients reconnect) and free. NULL is a no-op. */
void workload_free(struct workload *w);

#endif
