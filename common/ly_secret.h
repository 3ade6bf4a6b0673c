/*
 * ly_secret: memory for keys and tokens. Secret allocations are mlock'ed and excluded from core
 * dumps where the kernel allows, wiped before free, and compared in constant time. This module
 * never copies a secret anywhere but the caller's buffers.
 */
#ifndef LY_SECRET_H
#define LY_SECRET_H

#include <stddef.h>

#include "ly_error.h"

/* Overwrite n bytes with zeros in a way the compiler cannot elide. NULL is a no-op. */
void ly_wipe(void *p, size_t n);

/* Wipe n bytes then free(p). NULL is a no-op. */
void ly_wipe_free(void *p, size_t n);

/*
 * Allocate n zeroed bytes for a secret: page-aligned, mlock'ed and MADV_DONTDUMP when
 * possible (best effort: failure to lock is not an error). Returns NULL when out of memory.
 * Free only with ly_secret_free(p, n), passing the same n.
 */
void *ly_secret_alloc(size_t n) LY_MUST_USE;
void ly_secret_free(void *p, size_t n);

/* Constant-time equality of two n-byte regions: 1 equal, 0 different. */
int ly_memeq_ct(const void *a, const void *b, size_t n) LY_MUST_USE;

/* Disable core dumps for this process (daemon and CLI call this at start). */
int ly_secret_disable_core_dumps(struct ly_error *err) LY_MUST_USE;

#endif
