/*
 * Unit tests for broker/admin: CBOR round trips of request/response shapes, and the strict
 * decoder's refusals (hand-made CBOR bytes: indefinite lengths, tags, floats, byte strings,
 * oversized declarations, deep nesting, bad keys, truncation, trailing bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../broker/admin.h"

static void test_roundtrip(void **state)
{
    json_t *v = json_pack("{s:s, s:{s:s, s:[s,s], s:i, s:i, s:b, s:n, s:{}}}", "op",
                          "entry.create", "args", "id", "spiffe://example.org/w", "selectors",
                          "unix:uid:1000", "unix:path:/usr/bin/x", "ttl", 3600, "neg", -5,
                          "flag", 1, "nothing", "empty");
    struct ly_buf b;
    struct ly_error e = {0};
    json_t *back = NULL;
    (void)state;

    ly_error_clear(&e);
    assert_non_null(v);
    assert_int_equal(admin_cbor_encode(v, &b, &e), 0);
    assert_int_equal(admin_cbor_decode(b.data, b.len, &back, &e), 0);
    assert_true(json_equal(v, back));
    json_decref(back);
    ly_buf_free(&b);
    json_decref(v);
}

static void test_int_edges(void **state)
{
    json_t *v = json_pack("[I,I,I,I]", (json_int_t)INT64_MAX, (json_int_t)INT64_MIN,
                          (json_int_t)0, (json_int_t)-1);
    struct ly_buf b;
    struct ly_error e = {0};
    json_t *back = NULL;
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(admin_cbor_encode(v, &b, &e), 0);
    assert_int_equal(admin_cbor_decode(b.data, b.len, &back, &e), 0);
    assert_true(json_equal(v, back));
    json_decref(back);
    ly_buf_free(&b);
    json_decref(v);
}

static void test_encode_refuses_real(void **state)
{
    json_t *v = json_pack("{s:f}", "x", 1.5);
    struct ly_buf b;
    struct ly_error e = {0};
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(admin_cbor_encode(v, &b, &e), LY_ERR_USAGE);
    json_decref(v);
}

struct bad {
    const char *name;
    const char *bytes;
    size_t len;
    int reason;
};

#define B(s) s, sizeof(s) - 1

static void test_decode_rejects(void **state)
{
    static const struct bad cases[] = {
        {"empty", B(""), ADMIN_R_MALFORMED},
        {"indefinite map", B("\xbf\x61\x61\x01\xff"), ADMIN_R_UNSUPPORTED},
        {"indefinite array", B("\x9f\x01\xff"), ADMIN_R_UNSUPPORTED},
        {"indefinite text", B("\x7f\x61\x61\xff"), ADMIN_R_UNSUPPORTED},
        {"tag", B("\xc1\x01"), ADMIN_R_UNSUPPORTED},
        {"float", B("\xf9\x3c\x00"), ADMIN_R_UNSUPPORTED},
        {"double", B("\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00"), ADMIN_R_UNSUPPORTED},
        {"byte string", B("\x42\x01\x02"), ADMIN_R_UNSUPPORTED},
        {"undefined", B("\xf7"), ADMIN_R_UNSUPPORTED},
        {"integer key", B("\xa1\x01\x02"), ADMIN_R_UNSUPPORTED},
        {"huge array declared", B("\x9b\x00\x00\x00\x01\x00\x00\x00\x00\x01"), ADMIN_R_LIMIT},
        {"array longer than input", B("\x98\x20\x01\x02"), ADMIN_R_LIMIT},
        {"map longer than input", B("\xb8\x20\x61\x61\x01"), ADMIN_R_LIMIT},
        {"uint above int64", B("\x1b\x80\x00\x00\x00\x00\x00\x00\x00"), ADMIN_R_LIMIT},
        {"truncated text", B("\x65\x61\x62"), ADMIN_R_MALFORMED},
        {"truncated map", B("\xa2\x61\x61\x01\x61\x62"), ADMIN_R_MALFORMED},
        {"trailing bytes", B("\x01\x02"), ADMIN_R_MALFORMED},
        {"duplicate key", B("\xa2\x61\x61\x01\x61\x61\x02"), ADMIN_R_MALFORMED},
        {"invalid utf-8", B("\x62\xc3\x28"), ADMIN_R_MALFORMED},
        {"nul in text", B("\x63\x61\x00\x62"), ADMIN_R_MALFORMED},
        {"reserved additional info", B("\x1c"), ADMIN_R_MALFORMED},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ly_error e = {0};
        json_t *out = (json_t *)1;
        int rc;

        ly_error_clear(&e);
        rc = admin_cbor_decode((const uint8_t *)cases[i].bytes, cases[i].len, &out, &e);
        if (rc != LY_ERR_PARSE || e.reason != cases[i].reason || out != NULL) {
            fail_msg("case '%s': rc %d reason %d (want %d) msg '%s'", cases[i].name, rc, e.reason,
                     cases[i].reason, e.msg);
        }
    }
}

static void test_depth_limit(void **state)
{
    uint8_t buf[64];
    size_t i;
    struct ly_error e = {0};
    json_t *out = NULL;
    (void)state;

    for (i = 0; i < 40; i++) {
        buf[i] = 0x81; /* array of one element, nested 40 deep */
    }
    buf[40] = 0x01;
    ly_error_clear(&e);
    assert_int_equal(admin_cbor_decode(buf, 41, &out, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, ADMIN_R_LIMIT);
    /* Within the cap it decodes. */
    for (i = 0; i < ADMIN_MAX_DEPTH; i++) {
        buf[i] = 0x81;
    }
    buf[ADMIN_MAX_DEPTH] = 0x01;
    ly_error_clear(&e);
    assert_int_equal(admin_cbor_decode(buf, ADMIN_MAX_DEPTH + 1, &out, &e), 0);
    json_decref(out);
}

static void test_frames_and_requests(void **state)
{
    json_t *v = json_pack("{s:s}", "op", "status");
    struct ly_buf f;
    struct ly_error e = {0};
    size_t flen;
    const char *op;
    const json_t *args;
    json_t *bad;
    static const uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(admin_frame_encode(v, &f, &e), 0);
    assert_int_equal(admin_frame_check(f.data, 3, &flen, &e), 0);
    assert_int_equal(flen, 0);
    assert_int_equal(admin_frame_check(f.data, f.len - 1, &flen, &e), 0);
    assert_int_equal(flen, 0);
    assert_int_equal(admin_frame_check(f.data, f.len, &flen, &e), 0);
    assert_int_equal(flen, f.len);
    assert_int_equal(admin_frame_check(big, 4, &flen, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, ADMIN_R_LIMIT);
    assert_int_equal(admin_request_parse(v, &op, &args, &e), 0);
    assert_string_equal(op, "status");
    assert_null(args);
    bad = json_pack("{s:s}", "op", "Entry.Create");
    assert_int_equal(admin_request_parse(bad, &op, &args, &e), LY_ERR_PARSE);
    json_decref(bad);
    bad = json_pack("{s:s, s:[]}", "op", "status", "args");
    assert_int_equal(admin_request_parse(bad, &op, &args, &e), LY_ERR_PARSE);
    json_decref(bad);
    bad = json_pack("[s]", "status");
    assert_int_equal(admin_request_parse(bad, &op, &args, &e), LY_ERR_PARSE);
    json_decref(bad);
    ly_buf_free(&f);
    json_decref(v);
}

static void test_call_without_server(void **state)
{
    struct ly_error e = {0};
    json_t *res = NULL;
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(admin_call("/nonexistent/admin.sock", "status", NULL, 500, &res, &e),
                     LY_ERR_IO);
    assert_null(res);
    assert_non_null(strstr(e.msg, "/nonexistent/admin.sock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),          cmocka_unit_test(test_int_edges),
        cmocka_unit_test(test_encode_refuses_real), cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_depth_limit),        cmocka_unit_test(test_frames_and_requests),
        cmocka_unit_test(test_call_without_server),
    };
    return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
