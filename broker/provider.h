/*
 * provider: what the Workload API hands out, decided by the broker. It implements
 * struct workload_ops: attests a caller from the kernel, matches registration entries, takes the
 * callers' X509-SVIDs from the SVID cache (one per entry, shared by every workload of that entry),
 * and serves bundles, JWT-SVIDs and JWT validation. Single-threaded (the daemon's loop).
 */
#ifndef PROVIDER_H
#define PROVIDER_H

#include <stdint.h>

#include "../common/ly_error.h"
#include "ca.h"
#include "svidcache.h"
#include "workload.h"

struct provider;

/* The ops table to pass to workload_new() together with the provider as ctx. */
extern const struct workload_ops provider_ops;

/*
 * A provider over an open CA and SVID cache (both borrowed; they must outlive it) and its own
 * handle on the store at `db_path`; JWT-SVIDs it mints live `jwt_ttl` seconds. Caller frees
 * with provider_free().
 */
int provider_new(struct ca_state *ca, struct svidcache *cache, const char *db_path,
                 int64_t jwt_ttl, struct provider **out, struct ly_error *err) LY_MUST_USE;

/* The CA's authorities changed: rebuild the cached bundles before the next message. */
void provider_bundle_changed(struct provider *p);

/*
 * Federated bundles may have changed in the store (fetched, set or deleted): re-read them
 * before the next message. A caller receives those of the trust domains its entries federate
 * with (X509SVIDResponse.federated_bundles, and next to this domain's in the bundle streams).
 */
void provider_federation_changed(struct provider *p);

/* Number of attested callers currently holding SVIDs (status). */
size_t provider_caller_count(const struct provider *p);

/* Free. NULL is a no-op. Every caller must have been released first. */
void provider_free(struct provider *p);

#endif
