/*
 * ly_secret: wiping, locked allocation and constant-time comparison for secrets. It must not
 * log or copy the bytes it is given.
 */
#define _DEFAULT_SOURCE
#include "ly_secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

void ly_wipe(void *p, size_t n)
{
    if (p == NULL || n == 0) {
        return;
    }
    explicit_bzero(p, n);
}

void ly_wipe_free(void *p, size_t n)
{
    if (p == NULL) {
        return;
    }
    ly_wipe(p, n);
    free(p);
}

static size_t secret_round(size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;

    return ((n + page - 1) / page) * page;
}

void *ly_secret_alloc(size_t n)
{
    size_t sz;
    void *p = NULL;

    if (n == 0 || n > SIZE_MAX / 2) {
        return NULL;
    }
    sz = secret_round(n);
    if (posix_memalign(&p, 4096, sz) != 0) {
        return NULL;
    }
    memset(p, 0, sz);
    /* Best effort: RLIMIT_MEMLOCK may be small for unprivileged users. */
    (void)mlock(p, sz);
    (void)madvise(p, sz, MADV_DONTDUMP);
    return p;
}

void ly_secret_free(void *p, size_t n)
{
    size_t sz;

    if (p == NULL) {
        return;
    }
    sz = secret_round(n);
    ly_wipe(p, sz);
    (void)munlock(p, sz); /* may fail if mlock failed; nothing to undo then */
    (void)madvise(p, sz, MADV_DODUMP);
    free(p);
}

int ly_memeq_ct(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t acc = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        acc |= (uint8_t)(x[i] ^ y[i]);
    }
    return acc == 0;
}

int ly_secret_disable_core_dumps(struct ly_error *err)
{
    struct rlimit rl = {0, 0};

    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        return ly_error_set(err, LY_ERR_INTERNAL, 0, "cannot disable core dumps");
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        return ly_error_set(err, LY_ERR_INTERNAL, 0, "cannot mark process non-dumpable");
    }
    return 0;
}
