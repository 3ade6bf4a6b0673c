/*
 * ly_guard: the only control-flow macros lanyard allows, for functions that own nothing and can
 * simply return on failure. Functions that allocate use a single `goto err` path instead.
 */
#ifndef LY_GUARD_H
#define LY_GUARD_H

#include "ly_error.h"

/* Propagate a negative return code. */
#define LY_GUARD(expr)                                                                             \
    do {                                                                                           \
        int ly_guard_rc_ = (expr);                                                                 \
        if (ly_guard_rc_ < 0) {                                                                    \
            return ly_guard_rc_;                                                                   \
        }                                                                                          \
    } while (0)

/* Propagate a NULL pointer as LY_ERR_NOMEM unless the callee already set an error. */
#define LY_GUARD_PTR(expr, err)                                                                    \
    do {                                                                                           \
        if ((expr) == NULL) {                                                                      \
            return ly_error_setx((err), LY_ERR_NOMEM, 0, "out of memory");                         \
        }                                                                                          \
    } while (0)

/* Check a condition; on failure set the error (code, reason 0, message) and return the code. */
#define LY_ENSURE(cond, err, code, ...)                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            return ly_error_setx((err), (code), 0, __VA_ARGS__);                                   \
        }                                                                                          \
    } while (0)

#endif
