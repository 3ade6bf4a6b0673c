/*
 * ly_error: the single error convention of lanyard. A fallible function returns 0 on success
 * or a negative LY_ERR_* category code, and fills the caller's struct ly_error with the same
 * code, an optional module-specific reason and a human-readable message. It must never carry
 * secret material: callers put SPIFFE IDs and fingerprints in messages, never keys or tokens.
 */
#ifndef LY_ERROR_H
#define LY_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define LY_MUST_USE __attribute__((warn_unused_result))
#define LY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LY_MUST_USE
#define LY_PRINTF(a, b)
#endif

/* Error categories (s2n-style). The CLI maps each to a documented exit code. */
enum ly_err {
    LY_OK = 0,
    LY_ERR_NOMEM = -1,    /* allocation failed */
    LY_ERR_IO = -2,       /* file, socket or database I/O failed */
    LY_ERR_PARSE = -3,    /* input is malformed or off-spec */
    LY_ERR_VERIFY = -4,   /* input is well-formed but not trusted / not valid */
    LY_ERR_POLICY = -5,   /* consent or scope denial */
    LY_ERR_USAGE = -6,    /* the caller asked for something impossible or refused */
    LY_ERR_INTERNAL = -7, /* a library call failed unexpectedly */
};

#define LY_ERROR_MSG_MAX 256

/*
 * The error carrier. `code` is an enum ly_err value, `reason` a stable, module-specific
 * sub-code (0 when none; tests assert on it), `sys_errno` the errno captured by
 * ly_error_set(), and `msg` a NUL-terminated message.
 */
struct ly_error {
    int code;
    int reason;
    int sys_errno;
    char msg[LY_ERROR_MSG_MAX];
};

/* Reset an error to LY_OK with an empty message. NULL is a no-op. */
void ly_error_clear(struct ly_error *err);

/*
 * Set an error without errno; returns `code` so callers can `return ly_error_setx(...)`.
 * A NULL `err` is allowed (the code is still returned). If `err` already holds an error,
 * it is NOT overwritten: the first, most specific message wins.
 */
int ly_error_setx(struct ly_error *err, int code, int reason, const char *fmt, ...)
    LY_PRINTF(4, 5);

/* As ly_error_setx(), but appends ": strerror(errno)" and records errno. */
int ly_error_set(struct ly_error *err, int code, int reason, const char *fmt, ...)
    LY_PRINTF(4, 5);

/*
 * Prefix the current message with context ("loading CA: <old msg>"). Keeps code and reason.
 * Returns err->code (or LY_ERR_INTERNAL when err is NULL).
 */
int ly_error_wrap(struct ly_error *err, const char *fmt, ...) LY_PRINTF(2, 3);

/* A short static name for a category code ("parse error", ...). Never NULL. */
const char *ly_strerror(int code);

/* The CLI exit code for a category: 0 ok, 1 rejected/invalid, 2 usage, 3 internal or I/O. */
int ly_error_exit_code(int code);

#endif
