/*
 * store_internal: hooks for the store's own tests only (never included by other modules): open
 * a database migrated only up to an older schema version, so that upgrades can be tested
 * through the very code path that created older databases.
 */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include "store.h"

/*
 * As store_open(), but migrate a new or older database only up to `version` (1 .. current).
 * A database already at a higher version is left as it is. Caller frees with store_close().
 */
int store_open_version(const char *path, int version, struct store **out, struct ly_error *err)
    LY_MUST_USE;

#endif
