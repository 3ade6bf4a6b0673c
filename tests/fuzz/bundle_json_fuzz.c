/*
 * bundle_json_fuzz: libFuzzer target for the bundle codecs. Whatever parses (JSON or PEM, picked
 * as `lanyard bundle parse` does) must write back and re-parse to the same authorities, kids,
 * sequence and refresh hint, and must summarise. Deterministic: no clock, no randomness.
 * Target functions: bundle_codec_parse_auto, bundle_codec_parse_json, bundle_codec_parse_pem,
 * bundle_codec_write_json, bundle_codec_write_pem, bundle_codec_summary_json.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../trust-bundles/bundle_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_or_abort(const struct bundle *a, const struct bundle *b)
{
    size_t i;
    uint64_t s1 = 0;
    uint64_t s2 = 0;
    int64_t h1 = 0;
    int64_t h2 = 0;

    if (bundle_x509_count(a) != bundle_x509_count(b) ||
        bundle_jwt_count(a) != bundle_jwt_count(b) ||
        bundle_get_sequence(a, &s1) != bundle_get_sequence(b, &s2) || s1 != s2 ||
        bundle_get_refresh_hint(a, &h1) != bundle_get_refresh_hint(b, &h2) || h1 != h2) {
        abort();
    }
    for (i = 0; i < bundle_x509_count(a); i++) {
        size_t l1 = 0;
        size_t l2 = 0;
        const uint8_t *d1 = bundle_x509_authority(a, i, &l1);
        const uint8_t *d2 = bundle_x509_authority(b, i, &l2);
        if (l1 != l2 || memcmp(d1, d2, l1) != 0) {
            abort();
        }
    }
    for (i = 0; i < bundle_jwt_count(a); i++) {
        const uint8_t *k1 = NULL;
        const uint8_t *k2 = NULL;
        size_t l1 = 0;
        size_t l2 = 0;
        const char *kid1 = bundle_jwt_authority(a, i, &k1, &l1);
        const char *kid2 = bundle_jwt_authority(b, i, &k2, &l2);
        if (strcmp(kid1, kid2) != 0 || l1 != l2 || memcmp(k1, k2, l1) != 0) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bundle *b = NULL;
    struct bundle *b2 = NULL;
    struct ly_error err;
    struct ly_buf out;
    size_t i = 0;
    int json;

    while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) {
        i++;
    }
    json = i < size && data[i] == '{';
    if (bundle_codec_parse_auto("example.org", data, size, &b, &err) != 0) {
        if (b != NULL || err.code == LY_OK || err.msg[0] == '\0') {
            abort();
        }
        /* The plain JWKS reader sees the same bytes too. */
        if (bundle_codec_parse_jwks("example.org", data, size, &b2, &err) == 0) {
            bundle_free(b2);
        }
        return 0;
    }
    if (json) {
        if (bundle_codec_write_json(b, &out, &err) != 0 ||
            bundle_codec_parse_json("example.org", out.data, out.len, &b2, &err) != 0) {
            abort();
        }
    } else {
        if (bundle_codec_write_pem(b, &out, &err) != 0 ||
            bundle_codec_parse_pem("example.org", out.data, out.len, &b2, &err) != 0) {
            abort();
        }
    }
    same_or_abort(b, b2);
    ly_buf_free(&out);
    if (bundle_codec_summary_json(b, &out, &err) != 0) {
        abort();
    }
    ly_buf_free(&out);
    bundle_free(b2);
    bundle_free(b);
    return 0;
}
