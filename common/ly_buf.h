/*
 * ly_buf: a bounded, growable byte buffer (with a hard maximum set at init, as curl's dynbuf)
 * and a cursor reader that cannot read past the end. All untrusted bytes pass through these.
 * Buffers that may hold secrets are wiped on free when flagged; this module does no I/O.
 */
#ifndef LY_BUF_H
#define LY_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "ly_error.h"

struct ly_buf {
    uint8_t *data; /* owned; NUL-terminated past len for convenience (not counted in len) */
    size_t len;
    size_t cap;
    size_t max;    /* appends past this fail with LY_ERR_USAGE ("too big") */
    int secret;    /* when set, every reallocation and free wipes the old memory */
};

/* Initialise an empty buffer that may grow to `max` bytes. Never fails. */
void ly_buf_init(struct ly_buf *b, size_t max);

/* As ly_buf_init(), and mark the contents secret (wiped on growth and free). */
void ly_buf_init_secret(struct ly_buf *b, size_t max);

/* Append bytes. On failure (NOMEM, or USAGE when exceeding max) the buffer is freed. */
int ly_buf_append(struct ly_buf *b, const void *data, size_t len, struct ly_error *err)
    LY_MUST_USE;

/* Append a NUL-terminated string (without its NUL). Same failure rules. */
int ly_buf_append_str(struct ly_buf *b, const char *s, struct ly_error *err) LY_MUST_USE;

/* Append formatted text. Same failure rules. */
int ly_buf_appendf(struct ly_buf *b, struct ly_error *err, const char *fmt, ...) LY_MUST_USE
    LY_PRINTF(3, 4);

/*
 * Make room for `extra` more bytes (plus the trailing NUL) without changing len, so a caller can
 * write directly at data + len. Same failure rules as ly_buf_append.
 */
int ly_buf_reserve(struct ly_buf *b, size_t extra, struct ly_error *err) LY_MUST_USE;

/* Drop contents but keep the allocation (wiped if secret). */
void ly_buf_reset(struct ly_buf *b);

/* Free the memory (wiped if secret) and reset fields. NULL is a no-op. */
void ly_buf_free(struct ly_buf *b);

/*
 * Take ownership of the data: returns the pointer (NUL-terminated) and its length in *len, and
 * leaves the buffer empty. The caller frees with free() (or ly_wipe_free for secrets).
 */
uint8_t *ly_buf_steal(struct ly_buf *b, size_t *len);

/* A read-only cursor over borrowed bytes. */
struct ly_cursor {
    const uint8_t *p;
    size_t left;
};

void ly_cursor_init(struct ly_cursor *c, const void *data, size_t len);
/* Read exactly n bytes into out (or skip when out is NULL); -1 if fewer remain. */
int ly_cursor_read(struct ly_cursor *c, void *out, size_t n) LY_MUST_USE;
/* Big-endian unsigned reads; -1 if too few bytes remain. */
int ly_cursor_read_u8(struct ly_cursor *c, uint8_t *v) LY_MUST_USE;
int ly_cursor_read_u32be(struct ly_cursor *c, uint32_t *v) LY_MUST_USE;

#endif
