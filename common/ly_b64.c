/*
 * ly_b64: strict base64/base64url. Table-driven and constant in its checks: a decoder here
 * accepts exactly one encoding of each byte string, so signatures over encoded text cannot be
 * malleated by alternative spellings.
 */
#include "ly_b64.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ly_b64_encode(const uint8_t *in, size_t len, int url, struct ly_buf *out, size_t max,
                  struct ly_error *err)
{
    const char *tab = url ? b64_url : b64_std;
    size_t i;
    char q[4];
    int rc;

    ly_buf_init(out, max);
    rc = ly_buf_append(out, "", 0, err); /* an empty input still yields a valid "" */
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        q[0] = tab[(v >> 18) & 63];
        q[1] = tab[(v >> 12) & 63];
        q[2] = tab[(v >> 6) & 63];
        q[3] = tab[v & 63];
        rc = ly_buf_append(out, q, 4, err);
        if (rc < 0) {
            return rc;
        }
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        q[0] = tab[(v >> 18) & 63];
        q[1] = tab[(v >> 12) & 63];
        q[2] = '=';
        q[3] = '=';
        rc = ly_buf_append(out, q, url ? 2 : 4, err);
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        q[0] = tab[(v >> 18) & 63];
        q[1] = tab[(v >> 12) & 63];
        q[2] = tab[(v >> 6) & 63];
        q[3] = '=';
        rc = ly_buf_append(out, q, url ? 3 : 4, err);
    }
    return rc;
}

static int b64_val(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (url) {
        return c == '-' ? 62 : (c == '_' ? 63 : -1);
    }
    return c == '+' ? 62 : (c == '/' ? 63 : -1);
}

int ly_b64_decode(const char *in, size_t len, int url, int secret, struct ly_buf *out,
                  size_t max, struct ly_error *err)
{
    size_t body = len;
    size_t pad = 0;
    size_t i;
    uint32_t acc = 0;
    int bits = 0;
    int rc;
    const char *what = url ? "base64url" : "base64";

    if (secret) {
        ly_buf_init_secret(out, max);
    } else {
        ly_buf_init(out, max);
    }
    rc = ly_buf_append(out, "", 0, err);
    if (rc < 0) {
        return rc;
    }
    if (!url) {
        if (len % 4 != 0) {
            ly_buf_free(out);
            return ly_error_setx(err, LY_ERR_PARSE, 0, "%s length %zu is not a multiple of 4",
                                 what, len);
        }
        while (body > 0 && pad < 2 && in[body - 1] == '=') {
            body--;
            pad++;
        }
    } else if (len % 4 == 1) {
        ly_buf_free(out);
        return ly_error_setx(err, LY_ERR_PARSE, 0, "%s length %zu is impossible", what, len);
    }
    for (i = 0; i < body; i++) {
        int v = b64_val((unsigned char)in[i], url);
        if (v < 0) {
            ly_buf_free(out);
            return ly_error_setx(err, LY_ERR_PARSE, 0, "invalid %s character at offset %zu",
                                 what, i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            uint8_t byte;
            bits -= 8;
            byte = (uint8_t)((acc >> bits) & 0xff);
            rc = ly_buf_append(out, &byte, 1, err);
            if (rc < 0) {
                return rc;
            }
        }
    }
    /* Leftover bits must be zero: otherwise two spellings would decode to the same bytes. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        ly_buf_free(out);
        return ly_error_setx(err, LY_ERR_PARSE, 0, "%s has non-zero trailing bits", what);
    }
    if (!url && pad > 0 && ((body % 4) + pad) != 4) {
        ly_buf_free(out);
        return ly_error_setx(err, LY_ERR_PARSE, 0, "%s padding is wrong", what);
    }
    acc = 0;
    return 0;
}

int ly_pem_append(struct ly_buf *out, const char *label, const uint8_t *der, size_t len,
                  struct ly_error *err)
{
    struct ly_buf b64;
    size_t i;
    int rc;

    rc = ly_b64_encode(der, len, 0, &b64, out->max, err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_buf_appendf(out, err, "-----BEGIN %s-----\n", label);
    for (i = 0; rc == 0 && i < b64.len; i += 64) {
        size_t n = b64.len - i < 64 ? b64.len - i : 64;
        rc = ly_buf_append(out, b64.data + i, n, err);
        if (rc == 0) {
            rc = ly_buf_append(out, "\n", 1, err);
        }
    }
    if (rc == 0) {
        rc = ly_buf_appendf(out, err, "-----END %s-----\n", label);
    }
    ly_buf_free(&b64);
    return rc;
}
