/*
 * svidcache_internal: a hook for the cache's own tests only (never included by other modules),
 * so a test can see that a dropped or replaced SVID's key was wiped before its memory was freed.
 */
#ifndef SVIDCACHE_INTERNAL_H
#define SVIDCACHE_INTERNAL_H

#include "svidcache.h"

/*
 * Call `hook` with every private key buffer the cache releases, after wiping it and before
 * freeing it. NULL removes the hook.
 */
void svidcache_set_key_free_hook(struct svidcache *c,
                                 void (*hook)(void *arg, const uint8_t *key, size_t len),
                                 void *arg);

#endif
