/*
 * ly_text: escaping for messages and PEM/blank sniffing. It must never copy more than the
 * caller's buffer holds, whatever the input.
 */
#include "ly_text.h"

#include <string.h>

const char *ly_text_escape(const char *s, size_t len, size_t cap, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    size_t o = 0;

    if (outsz == 0) {
        return out;
    }
    for (i = 0; i < len && i < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') ? 1 : 4;

        if (o + need + 3 >= outsz) {
            break; /* keep room for "..." and the NUL */
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    if (i < len && o + 4 <= outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

void ly_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static size_t skip_space(const uint8_t *data, size_t len)
{
    size_t i = 0;

    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) {
        i++;
    }
    return i;
}

int ly_text_is_pem(const uint8_t *data, size_t len)
{
    static const char begin[] = "-----BEGIN";
    size_t i = skip_space(data, len);

    return len - i >= sizeof(begin) - 1 && memcmp(data + i, begin, sizeof(begin) - 1) == 0;
}

int ly_text_is_blank(const uint8_t *data, size_t len)
{
    return skip_space(data, len) == len;
}
