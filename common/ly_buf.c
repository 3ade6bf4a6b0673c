/*
 * ly_buf: bounded growable buffers and a bounds-checked cursor. It never reads or writes past
 * the limits it was given, and wipes secret buffers on every reallocation and free.
 */
#include "ly_buf.h"
#include "ly_secret.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ly_buf_init(struct ly_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->secret = 0;
}

void ly_buf_init_secret(struct ly_buf *b, size_t max)
{
    ly_buf_init(b, max);
    b->secret = 1;
}

void ly_buf_free(struct ly_buf *b)
{
    if (b == NULL) {
        return;
    }
    if (b->data != NULL && b->secret) {
        ly_wipe(b->data, b->cap);
    }
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ly_buf_reset(struct ly_buf *b)
{
    if (b->data != NULL) {
        if (b->secret) {
            ly_wipe(b->data, b->cap);
        }
        b->data[0] = '\0';
    }
    b->len = 0;
}

static int buf_reserve(struct ly_buf *b, size_t extra, struct ly_error *err)
{
    size_t need;
    size_t ncap;
    uint8_t *nd;

    if (extra > b->max || b->len > b->max - extra) {
        ly_buf_free(b);
        return ly_error_setx(err, LY_ERR_USAGE, 0, "data too big (limit %zu bytes)", b->max);
    }
    need = b->len + extra + 1; /* +1 keeps a terminating NUL */
    if (need <= b->cap) {
        return 0;
    }
    ncap = b->cap ? b->cap : 64;
    while (ncap < need) {
        ncap = (ncap > SIZE_MAX / 2) ? need : ncap * 2;
    }
    nd = malloc(ncap);
    if (nd == NULL) {
        ly_buf_free(b);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (b->data != NULL) {
        memcpy(nd, b->data, b->len);
        if (b->secret) {
            ly_wipe(b->data, b->cap);
        }
        free(b->data);
    }
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int ly_buf_reserve(struct ly_buf *b, size_t extra, struct ly_error *err)
{
    return buf_reserve(b, extra, err);
}

int ly_buf_append(struct ly_buf *b, const void *data, size_t len, struct ly_error *err)
{
    int rc = buf_reserve(b, len, err);

    if (rc < 0) {
        return rc;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int ly_buf_append_str(struct ly_buf *b, const char *s, struct ly_error *err)
{
    return ly_buf_append(b, s, strlen(s), err);
}

int ly_buf_appendf(struct ly_buf *b, struct ly_error *err, const char *fmt, ...)
{
    va_list ap;
    int n;
    int rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        ly_buf_free(b);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "formatting failed");
    }
    rc = buf_reserve(b, (size_t)n, err);
    if (rc < 0) {
        return rc;
    }
    va_start(ap, fmt);
    n = vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        ly_buf_free(b);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "formatting failed");
    }
    b->len += (size_t)n;
    return 0;
}

uint8_t *ly_buf_steal(struct ly_buf *b, size_t *len)
{
    uint8_t *d = b->data;

    if (len != NULL) {
        *len = b->len;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

void ly_cursor_init(struct ly_cursor *c, const void *data, size_t len)
{
    c->p = data;
    c->left = len;
}

int ly_cursor_read(struct ly_cursor *c, void *out, size_t n)
{
    if (n > c->left) {
        return -1;
    }
    if (out != NULL && n > 0) {
        memcpy(out, c->p, n);
    }
    c->p += n;
    c->left -= n;
    return 0;
}

int ly_cursor_read_u8(struct ly_cursor *c, uint8_t *v)
{
    return ly_cursor_read(c, v, 1);
}

int ly_cursor_read_u32be(struct ly_cursor *c, uint32_t *v)
{
    uint8_t b[4];

    if (ly_cursor_read(c, b, 4) < 0) {
        return -1;
    }
    *v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    return 0;
}
