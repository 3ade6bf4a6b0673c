/*
 * svidcache: the daemon's X509-SVIDs, one per registration entry that has a live workload (as a
 * SPIRE agent keeps them): minted once per rotation with a fresh key and cached, not minted per
 * fetch, and re-minted before half their lifetime (at 40-45 % of it, with random jitter, so
 * the new SVID reaches streams before the old one is half spent) or at once when another CA
 * takes over. It keeps no SVID for an entry nobody uses.
 * Single-threaded (the daemon's loop); it never logs and never puts key bytes in messages.
 */
#ifndef SVIDCACHE_H
#define SVIDCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"
#include "../svid/key.h"
#include "ca.h"

/* Longest entry id accepted (the store's ids are 32 hex characters). */
#define SVIDCACHE_ENTRY_ID_MAX 64
/* After a failed re-mint the old SVID is kept and the re-mint retried this much later. */
#define SVIDCACHE_RETRY_DELAY 5

struct svidcache;

/*
 * One cached SVID, read-only for callers. Every pointer is borrowed from the cache and stays
 * valid until the next call that may re-mint or drop this entry (svidcache_acquire,
 * svidcache_release, svidcache_drop, svidcache_refresh_due, svidcache_free): copy or send what
 * you need before that. key_der is secret (PKCS#8 DER, what the Workload API sends): never log
 * it; the cache wipes it when the SVID is replaced or dropped.
 */
struct svidcache_svid {
    const char *entry_id;
    const char *spiffe_id;
    const uint8_t *cert_der; /* the chain: the leaf alone (the CA is a root in the bundle) */
    size_t cert_len;
    const uint8_t *key_der;
    size_t key_len;
    int64_t not_before; /* epoch seconds, as in the certificate */
    int64_t not_after;
    int64_t refresh_at; /* not_before + 40..45 % of the life (random jitter) */
    int64_t ca_id;      /* the store id of the CA that signed it */
    uint64_t generation; /* 1 for the first SVID of this entry in the cache, +1 per re-mint */
};

/* What to mint for an entry: all borrowed for the call. */
struct svidcache_request {
    const char *entry_id;  /* at most SVIDCACHE_ENTRY_ID_MAX bytes */
    const char *spiffe_id; /* in the CA's trust domain, with a path */
    const char *const *dns; /* DNS SANs, may be NULL when n_dns is 0 */
    size_t n_dns;
    int64_t ttl; /* seconds, > 0; the CA clamps notAfter to its own */
};

/*
 * A cache minting through `ca` (borrowed: it must outlive the cache) with fresh keys of
 * `key_type`. `idle_keep` is how long (seconds, >= 0) an SVID nobody holds any more is kept for
 * a workload that comes back (0: dropped at the last release); it is never re-minted while idle.
 * Caller frees with svidcache_free().
 */
int svidcache_new(struct ca_state *ca, enum svid_key_type key_type, int64_t idle_keep,
                  struct svidcache **out, struct ly_error *err) LY_MUST_USE;

/* Free every SVID (keys wiped) and the cache. NULL is a no-op. */
void svidcache_free(struct svidcache *c);

/*
 * Get the SVID of req->entry_id for one more user (reference count + 1): the cached one when
 * now < refresh_at, the active CA signed it and the request (ID, DNS names, TTL) is unchanged;
 * otherwise a new one is minted with a fresh key (recorded by the CA). *out is borrowed (see
 * struct svidcache_svid). Every successful acquire needs one svidcache_release(). On failure
 * nothing changes (a cached SVID stays as it was) and no reference is taken.
 */
int svidcache_acquire(struct svidcache *c, const struct svidcache_request *req, int64_t now,
                      const struct svidcache_svid **out, struct ly_error *err) LY_MUST_USE;

/* The cached SVID of an entry without taking a reference (NULL when none). Borrowed. */
const struct svidcache_svid *svidcache_find(const struct svidcache *c, const char *entry_id);

/*
 * One user fewer. At zero the SVID is dropped and its key wiped, at once or after idle_keep.
 * An unknown entry (e.g. already dropped) is a no-op.
 */
void svidcache_release(struct svidcache *c, const char *entry_id, int64_t now);

/* The entry was deleted: drop its SVID now whatever its users. Returns 1 if one was dropped. */
int svidcache_drop(struct svidcache *c, const char *entry_id);

/* When svidcache_refresh_due() next has work (INT64_MAX when the cache is empty). */
int64_t svidcache_next_refresh(const struct svidcache *c);

/*
 * Called once per re-minted SVID, so that open Workload API streams can push it. It must not
 * call back into the cache, except svidcache_find().
 */
typedef void (*svidcache_fn)(void *arg, const struct svidcache_svid *svid);

/*
 * Do what is due at `now`: re-mint every held SVID whose refresh_at has come or whose signer
 * is no longer the active CA (calling `fn`, which may be NULL), and drop idle ones that expired
 * their keep time or would need a re-mint. A failed re-mint keeps the old SVID, retries after
 * SVIDCACHE_RETRY_DELAY, and the first failure is returned after all others were tried.
 */
int svidcache_refresh_due(struct svidcache *c, int64_t now, svidcache_fn fn, void *arg,
                          struct ly_error *err) LY_MUST_USE;

/*
 * Another CA took over (ca_maintain reported CA_CHANGED_SIGNER): every SVID the new CA did not
 * sign becomes due at `now`, so the next svidcache_refresh_due() replaces it promptly.
 */
void svidcache_ca_changed(struct svidcache *c, int64_t now);

/* Number of cached SVIDs (held or idle). */
size_t svidcache_count(const struct svidcache *c);

#endif
