/*
 * ly_error: fills the shared error carrier. It formats messages only; it never logs and never
 * exits, and it keeps the first error set so a vaguer caller cannot mask the real cause.
 */
#include "ly_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ly_error_clear(struct ly_error *err)
{
    if (err == NULL) {
        return;
    }
    err->code = LY_OK;
    err->reason = 0;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

static int error_vset(struct ly_error *err, int code, int reason, int with_errno,
                      const char *fmt, va_list ap)
{
    int saved = errno;

    if (err == NULL) {
        return code;
    }
    /* Never overwrite a more specific message set deeper in the call stack. */
    if (err->code != LY_OK) {
        return err->code;
    }
    err->code = code;
    err->reason = reason;
    err->sys_errno = with_errno ? saved : 0;
    if (vsnprintf(err->msg, sizeof(err->msg), fmt, ap) < 0) {
        (void)snprintf(err->msg, sizeof(err->msg), "%s", ly_strerror(code));
    }
    if (with_errno) {
        size_t len = strlen(err->msg);
        char ebuf[128];
        const char *estr = ebuf;
        /* strerror_r (GNU flavour with _GNU_SOURCE, XSI otherwise): keep it reentrant. */
#if defined(_GNU_SOURCE)
        estr = strerror_r(saved, ebuf, sizeof(ebuf));
#else
        if (strerror_r(saved, ebuf, sizeof(ebuf)) != 0) {
            (void)snprintf(ebuf, sizeof(ebuf), "errno %d", saved);
        }
#endif
        if (len < sizeof(err->msg) - 1) {
            /* Truncation of the errno suffix is acceptable: the message stays terminated. */
            (void)snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", estr);
        }
    }
    return code;
}

int ly_error_setx(struct ly_error *err, int code, int reason, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = error_vset(err, code, reason, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int ly_error_set(struct ly_error *err, int code, int reason, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = error_vset(err, code, reason, 1, fmt, ap);
    va_end(ap);
    return rc;
}

int ly_error_wrap(struct ly_error *err, const char *fmt, ...)
{
    char prefix[LY_ERROR_MSG_MAX];
    char old[LY_ERROR_MSG_MAX];
    va_list ap;
    int n;

    if (err == NULL) {
        return LY_ERR_INTERNAL;
    }
    va_start(ap, fmt);
    n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return err->code;
    }
    memcpy(old, err->msg, sizeof(old));
    {
        /* Concatenate "prefix: old", truncating (still terminated) when too long. */
        size_t cap = sizeof(err->msg) - 1;
        size_t pl = strlen(prefix);
        size_t ol = strlen(old);
        size_t pos = 0;

        if (pl > cap) {
            pl = cap;
        }
        memcpy(err->msg, prefix, pl);
        pos = pl;
        if (pos + 2 <= cap) {
            memcpy(err->msg + pos, ": ", 2);
            pos += 2;
        }
        if (ol > cap - pos) {
            ol = cap - pos;
        }
        memcpy(err->msg + pos, old, ol);
        err->msg[pos + ol] = '\0';
    }
    return err->code;
}

const char *ly_strerror(int code)
{
    switch (code) {
    case LY_OK:
        return "ok";
    case LY_ERR_NOMEM:
        return "out of memory";
    case LY_ERR_IO:
        return "I/O error";
    case LY_ERR_PARSE:
        return "invalid input";
    case LY_ERR_VERIFY:
        return "verification failed";
    case LY_ERR_POLICY:
        return "denied by policy";
    case LY_ERR_USAGE:
        return "usage error";
    case LY_ERR_INTERNAL:
        return "internal error";
    default:
        return "unknown error";
    }
}

int ly_error_exit_code(int code)
{
    switch (code) {
    case LY_OK:
        return 0;
    case LY_ERR_PARSE:
    case LY_ERR_VERIFY:
    case LY_ERR_POLICY:
        return 1;
    case LY_ERR_USAGE:
        return 2;
    case LY_ERR_NOMEM:
    case LY_ERR_IO:
    case LY_ERR_INTERNAL:
    default:
        return 3;
    }
}
