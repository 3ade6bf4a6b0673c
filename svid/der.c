/*
 * der: DER encoding for the certificates lanyard issues. Length fields are written as a
 * 3-byte placeholder and shrunk to minimal form when the value closes. This file must never
 * grow a decoder: reading DER is wolfSSL's job (see x509svid.c).
 */
#include "der.h"

#include <string.h>

#include "../common/ly_time.h"

/* A constructed value's placeholder: 0x82 LL LL covers up to 65535 content bytes. */
#define DER_PLACEHOLDER 3

static size_t len_size(size_t len)
{
    if (len < 0x80) {
        return 1;
    }
    if (len <= 0xff) {
        return 2;
    }
    if (len <= 0xffff) {
        return 3;
    }
    return 4;
}

static void len_write(uint8_t *p, size_t len)
{
    if (len < 0x80) {
        p[0] = (uint8_t)len;
    } else if (len <= 0xff) {
        p[0] = 0x81;
        p[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        p[0] = 0x82;
        p[1] = (uint8_t)(len >> 8);
        p[2] = (uint8_t)len;
    } else {
        p[0] = 0x83;
        p[1] = (uint8_t)(len >> 16);
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
    }
}

int der_begin(struct ly_buf *b, uint8_t tag, size_t *mark, struct ly_error *err)
{
    static const uint8_t zero[DER_PLACEHOLDER] = {0};

    *mark = b->len;
    if (ly_buf_append(b, &tag, 1, err) != 0) {
        return err != NULL ? err->code : LY_ERR_NOMEM;
    }
    return ly_buf_append(b, zero, sizeof(zero), err);
}

int der_end(struct ly_buf *b, size_t mark, struct ly_error *err)
{
    size_t start = mark + 1 + DER_PLACEHOLDER;
    size_t content;
    size_t ls;

    if (mark >= b->len || start > b->len) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "DER encoder: unbalanced value");
    }
    content = b->len - start;
    if (content > 0xffff) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "DER value longer than 65535 bytes");
    }
    ls = len_size(content);
    /* Shrink the placeholder: move the content left so the length field is minimal. */
    if (ls < DER_PLACEHOLDER) {
        memmove(b->data + mark + 1 + ls, b->data + start, content);
        b->len -= DER_PLACEHOLDER - ls;
        b->data[b->len] = 0;
    }
    len_write(b->data + mark + 1, content);
    return 0;
}

int der_put_tlv(struct ly_buf *b, uint8_t tag, const void *data, size_t len,
                struct ly_error *err)
{
    uint8_t hdr[5];
    size_t ls;

    if (len > 0xffffff) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "DER value too long");
    }
    hdr[0] = tag;
    ls = len_size(len);
    len_write(hdr + 1, len);
    if (ly_buf_append(b, hdr, 1 + ls, err) != 0) {
        return err != NULL ? err->code : LY_ERR_NOMEM;
    }
    if (len == 0) {
        return 0;
    }
    return ly_buf_append(b, data, len, err);
}

int der_put_raw(struct ly_buf *b, const void *data, size_t len, struct ly_error *err)
{
    return ly_buf_append(b, data, len, err);
}

int der_put_uint(struct ly_buf *b, const uint8_t *be, size_t len, struct ly_error *err)
{
    uint8_t tmp[64];
    size_t n = 0;

    while (len > 1 && be[0] == 0) {
        be++;
        len--;
    }
    if (len == 0 || len + 1 > sizeof(tmp)) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "DER integer of %zu bytes not supported", len);
    }
    if (be[0] & 0x80) {
        tmp[n++] = 0;
    }
    memcpy(tmp + n, be, len);
    return der_put_tlv(b, DER_INTEGER, tmp, n + len, err);
}

int der_put_small_uint(struct ly_buf *b, unsigned v, struct ly_error *err)
{
    uint8_t be[4];

    be[0] = (uint8_t)(v >> 24);
    be[1] = (uint8_t)(v >> 16);
    be[2] = (uint8_t)(v >> 8);
    be[3] = (uint8_t)v;
    return der_put_uint(b, be, sizeof(be), err);
}

int der_put_bool(struct ly_buf *b, int v, struct ly_error *err)
{
    uint8_t c = v ? 0xff : 0x00;

    return der_put_tlv(b, DER_BOOLEAN, &c, 1, err);
}

int der_put_bits(struct ly_buf *b, unsigned unused, const uint8_t *data, size_t len,
                 struct ly_error *err)
{
    uint8_t u = (uint8_t)unused;
    uint8_t hdr[5];
    size_t ls;

    if (unused > 7 || (len == 0 && unused != 0) || len > 0xfffe) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "bad DER bit string");
    }
    hdr[0] = DER_BIT_STRING;
    ls = len_size(len + 1);
    len_write(hdr + 1, len + 1);
    if (ly_buf_append(b, hdr, 1 + ls, err) != 0 || ly_buf_append(b, &u, 1, err) != 0) {
        return err != NULL ? err->code : LY_ERR_NOMEM;
    }
    return len == 0 ? 0 : ly_buf_append(b, data, len, err);
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + (v / 10) % 10);
    p[1] = (char)('0' + v % 10);
}

int der_put_time(struct ly_buf *b, int64_t t, struct ly_error *err)
{
    int y, mo, d, h, mi, s;
    char txt[16];
    size_t n = 0;

    if (ly_time_to_utc(t, &y, &mo, &d, &h, &mi, &s) != 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "time %lld cannot be encoded in a certificate",
                             (long long)t);
    }
    if (y >= 1950 && y <= 2049) {
        put2(txt, y % 100);
        n = 2;
    } else {
        put2(txt, y / 100);
        put2(txt + 2, y % 100);
        n = 4;
    }
    put2(txt + n, mo);
    put2(txt + n + 2, d);
    put2(txt + n + 4, h);
    put2(txt + n + 6, mi);
    put2(txt + n + 8, s);
    txt[n + 10] = 'Z';
    return der_put_tlv(b, n == 2 ? DER_UTC_TIME : DER_GENERALIZED_TIME, txt, n + 11, err);
}
