/*
 * Unit tests for common/: the error carrier, bounded buffers and cursor, base64/base64url,
 * RFC 3339 and durations, atomic files and secret helpers. Each parser gets its malformed cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/ly_b64.h"
#include "../../common/ly_buf.h"
#include "../../common/ly_error.h"
#include "../../common/ly_file.h"
#include "../../common/ly_secret.h"
#include "../../common/ly_text.h"
#include "../../common/ly_time.h"

static void test_error_first_wins(void **state)
{
    struct ly_error e = {0};
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(ly_error_setx(&e, LY_ERR_PARSE, 7, "specific %d", 1), LY_ERR_PARSE);
    assert_int_equal(ly_error_setx(&e, LY_ERR_INTERNAL, 0, "vague"), LY_ERR_PARSE);
    assert_string_equal(e.msg, "specific 1");
    assert_int_equal(e.reason, 7);
    assert_int_equal(ly_error_wrap(&e, "ctx"), LY_ERR_PARSE);
    assert_string_equal(e.msg, "ctx: specific 1");
    assert_int_equal(ly_error_setx(NULL, LY_ERR_IO, 0, "x"), LY_ERR_IO);
    assert_int_equal(ly_error_exit_code(LY_OK), 0);
    assert_int_equal(ly_error_exit_code(LY_ERR_VERIFY), 1);
    assert_int_equal(ly_error_exit_code(LY_ERR_PARSE), 1);
    assert_int_equal(ly_error_exit_code(LY_ERR_POLICY), 1);
    assert_int_equal(ly_error_exit_code(LY_ERR_USAGE), 2);
    assert_int_equal(ly_error_exit_code(LY_ERR_IO), 3);
    assert_int_equal(ly_error_exit_code(LY_ERR_INTERNAL), 3);
    assert_string_equal(ly_strerror(LY_ERR_VERIFY), "verification failed");
}

static void test_error_wrap_truncates(void **state)
{
    struct ly_error e = {0};
    char big[400];
    (void)state;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ly_error_clear(&e);
    (void)ly_error_setx(&e, LY_ERR_PARSE, 0, "%s", big);
    assert_int_equal(strlen(e.msg), LY_ERROR_MSG_MAX - 1);
    (void)ly_error_wrap(&e, "%s", big);
    assert_int_equal(strlen(e.msg), LY_ERROR_MSG_MAX - 1);
}

static void test_buf_limits(void **state)
{
    struct ly_buf b;
    struct ly_error e = {0};
    (void)state;

    ly_error_clear(&e);
    ly_buf_init(&b, 8);
    assert_int_equal(ly_buf_append(&b, "1234", 4, &e), 0);
    assert_int_equal(ly_buf_appendf(&b, &e, "%d", 5678), 0);
    assert_int_equal(b.len, 8);
    assert_string_equal((char *)b.data, "12345678");
    /* Exceeding max fails and frees, as the header promises. */
    assert_int_equal(ly_buf_append(&b, "9", 1, &e), LY_ERR_USAGE);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    ly_buf_free(&b);
    ly_buf_free(NULL);
}

static void test_cursor(void **state)
{
    static const uint8_t d[] = {0x01, 0x00, 0x00, 0x01, 0x00, 0xff};
    struct ly_cursor c;
    uint8_t u8;
    uint32_t u32;
    (void)state;

    ly_cursor_init(&c, d, sizeof(d));
    assert_int_equal(ly_cursor_read_u8(&c, &u8), 0);
    assert_int_equal(u8, 1);
    assert_int_equal(ly_cursor_read_u32be(&c, &u32), 0);
    assert_int_equal(u32, 0x00000100u);
    assert_int_equal(ly_cursor_read_u32be(&c, &u32), -1); /* only one byte left */
    assert_int_equal(ly_cursor_read_u8(&c, &u8), 0);
    assert_int_equal(u8, 0xff);
    assert_int_equal(ly_cursor_read(&c, NULL, 1), -1);
}

static void b64_roundtrip(const char *in, const char *std, const char *url)
{
    struct ly_buf o;
    struct ly_buf d;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(ly_b64_encode((const uint8_t *)in, strlen(in), 0, &o, 1024, &e), 0);
    assert_string_equal((char *)o.data, std);
    assert_int_equal(ly_b64_decode((char *)o.data, o.len, 0, 0, &d, 1024, &e), 0);
    assert_int_equal(d.len, strlen(in));
    assert_memory_equal(d.data, in, d.len);
    ly_buf_free(&o);
    ly_buf_free(&d);
    assert_int_equal(ly_b64_encode((const uint8_t *)in, strlen(in), 1, &o, 1024, &e), 0);
    assert_string_equal((char *)o.data, url);
    assert_int_equal(ly_b64_decode((char *)o.data, o.len, 1, 1, &d, 1024, &e), 0);
    assert_int_equal(d.len, strlen(in));
    assert_memory_equal(d.data, in, d.len);
    ly_buf_free(&o);
    ly_buf_free(&d);
}

static void test_b64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 §10 test vectors. */
    b64_roundtrip("", "", "");
    b64_roundtrip("f", "Zg==", "Zg");
    b64_roundtrip("fo", "Zm8=", "Zm8");
    b64_roundtrip("foo", "Zm9v", "Zm9v");
    b64_roundtrip("foob", "Zm9vYg==", "Zm9vYg");
    b64_roundtrip("fooba", "Zm9vYmE=", "Zm9vYmE");
    b64_roundtrip("foobar", "Zm9vYmFy", "Zm9vYmFy");
    b64_roundtrip("\xfb\xff", "+/8=", "-_8");
}

static void expect_b64_reject(const char *s, int url)
{
    struct ly_buf d;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(ly_b64_decode(s, strlen(s), url, 0, &d, 1024, &e), LY_ERR_PARSE);
    assert_true(strlen(e.msg) > 0);
    assert_null(d.data);
}

static void test_b64_rejects(void **state)
{
    (void)state;
    expect_b64_reject("Zg=", 0);    /* length not multiple of 4 */
    expect_b64_reject("Zg", 0);     /* std requires padding */
    expect_b64_reject("Zh==", 0);   /* non-zero trailing bits */
    expect_b64_reject("Z g=", 0);   /* whitespace */
    expect_b64_reject("Zm9v\n", 0); /* newline */
    expect_b64_reject("-_8=", 0);   /* url alphabet in std */
    expect_b64_reject("Zg==", 1);   /* padding in base64url */
    expect_b64_reject("+/8", 1);    /* std alphabet in url */
    expect_b64_reject("Z", 1);      /* impossible length */
    expect_b64_reject("Zh", 1);     /* non-zero trailing bits */
    expect_b64_reject("Z===", 0);   /* too much padding */
}

static void test_b64_max(void **state)
{
    struct ly_buf d;
    struct ly_error e = {0};
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(ly_b64_decode("Zm9vYmFy", 8, 0, 0, &d, 5, &e), LY_ERR_USAGE);
}

static void test_rfc3339(void **state)
{
    struct ly_error e = {0};
    int64_t t;
    char buf[32];
    (void)state;

    ly_error_clear(&e);
    assert_int_equal(ly_time_parse_rfc3339("1970-01-01T00:00:00Z", &t, &e), 0);
    assert_int_equal(t, 0);
    assert_int_equal(ly_time_parse_rfc3339("2026-11-22T10:00:00Z", &t, &e), 0);
    assert_int_equal(t, 1795341600);
    assert_int_equal(ly_time_parse_rfc3339("2026-11-22T12:00:00.123+02:00", &t, &e), 0);
    assert_int_equal(t, 1795341600);
    assert_int_equal(ly_time_parse_rfc3339("2024-02-29T00:00:00Z", &t, &e), 0);
    assert_int_equal(ly_time_format_rfc3339(1795341600, buf, sizeof(buf), &e), 0);
    assert_string_equal(buf, "2026-11-22T10:00:00Z");
    assert_int_equal(ly_time_format_rfc3339(951782400, buf, sizeof(buf), &e), 0);
    assert_string_equal(buf, "2000-02-29T00:00:00Z");
    assert_int_equal(ly_time_format_rfc3339(0, buf, 5, &e), LY_ERR_USAGE);
}

static void test_rfc3339_rejects(void **state)
{
    static const char *bad[] = {
        "",
        "2026-11-22",
        "2026-11-22T10:00:00",        /* no zone */
        "2026-11-22 10:00:00Z",       /* space */
        "2026-13-01T00:00:00Z",       /* month */
        "2025-02-29T00:00:00Z",       /* not a leap year */
        "2026-11-22T24:00:00Z",       /* hour */
        "2026-11-22T10:00:00Zjunk",   /* trailing */
        "2026-11-22T10:00:00.Z",      /* empty fraction */
        "2026-11-22T10:00:00+0200",   /* offset without colon */
        "26-11-22T10:00:00Z",
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ly_error e = {0};
        int64_t t;
        ly_error_clear(&e);
        assert_int_equal(ly_time_parse_rfc3339(bad[i], &t, &e), LY_ERR_PARSE);
        assert_true(strlen(e.msg) > 0);
    }
}

static void test_duration(void **state)
{
    static const struct {
        const char *s;
        int64_t v;
    } good[] = {{"90s", 90}, {"15m", 900}, {"1h", 3600}, {"7d", 604800}, {"1h30m", 5400},
                {"1d1h1m1s", 90061}};
    static const char *bad[] = {"", "10", "h", "1x", "-5m", "0s", "1h 30m", "99999999999999999999s"};
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct ly_error e = {0};
        int64_t v;
        ly_error_clear(&e);
        assert_int_equal(ly_duration_parse(good[i].s, &v, &e), 0);
        assert_int_equal(v, good[i].v);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ly_error e = {0};
        int64_t v;
        ly_error_clear(&e);
        assert_int_equal(ly_duration_parse(bad[i], &v, &e), LY_ERR_PARSE);
    }
}

static void test_file_atomic(void **state)
{
    char dir[] = "/tmp/lanyard-unit-XXXXXX";
    char path[256];
    char link_path[300];
    struct ly_error e = {0};
    struct ly_buf b;
    struct stat st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    (void)snprintf(path, sizeof(path), "%s/sub/key.pem", dir);
    ly_error_clear(&e);
    {
        char sub[256];
        (void)snprintf(sub, sizeof(sub), "%s/sub", dir);
        assert_int_equal(ly_file_mkdir_p(sub, 0700, &e), 0);
    }
    assert_int_equal(ly_file_write_atomic(path, "secret", 6, 0600, 0, &e), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ly_file_read(path, 100, 1, &b, &e), 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "secret", 6);
    ly_buf_free(&b);
    /* NO_REPLACE refuses and leaves the original intact. */
    assert_int_equal(ly_file_write_atomic(path, "other!", 6, 0600, LY_FILE_NO_REPLACE, &e),
                     LY_ERR_USAGE);
    ly_error_clear(&e);
    assert_int_equal(ly_file_read(path, 100, 0, &b, &e), 0);
    assert_memory_equal(b.data, "secret", 6);
    ly_buf_free(&b);
    /* Replace works; too-big read refused; symlinks are not followed. */
    assert_int_equal(ly_file_write_atomic(path, "new", 3, 0644, 0, &e), 0);
    assert_int_equal(ly_file_read(path, 2, 0, &b, &e), LY_ERR_USAGE);
    ly_error_clear(&e);
    (void)snprintf(link_path, sizeof(link_path), "%s/link", dir);
    assert_int_equal(symlink(path, link_path), 0);
    assert_int_equal(ly_file_read(link_path, 100, 0, &b, &e), LY_ERR_IO);
    ly_error_clear(&e);
    assert_int_equal(ly_file_read(dir, 100, 0, &b, &e) < 0, 1);
    ly_error_clear(&e);
    /* Missing directory: clear I/O error, no stray file. */
    assert_int_equal(ly_file_write_atomic("/nonexistent-dir/x", "a", 1, 0600, 0, &e), LY_ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/x"));
    (void)unlink(link_path);
    (void)unlink(path);
    {
        char sub[256];
        (void)snprintf(sub, sizeof(sub), "%s/sub", dir);
        assert_int_equal(rmdir(sub), 0); /* proves no temp file was left behind */
    }
    assert_int_equal(rmdir(dir), 0);
}

static void test_secret(void **state)
{
    uint8_t *p;
    uint8_t a[4] = {1, 2, 3, 4};
    uint8_t b[4] = {1, 2, 3, 5};
    (void)state;

    p = ly_secret_alloc(100);
    assert_non_null(p);
    assert_int_equal(p[99], 0);
    memset(p, 0xaa, 100);
    ly_secret_free(p, 100);
    ly_secret_free(NULL, 0);
    assert_int_equal(ly_memeq_ct(a, a, 4), 1);
    assert_int_equal(ly_memeq_ct(a, b, 4), 0);
    assert_int_equal(ly_memeq_ct(a, b, 3), 1);
    ly_wipe(a, sizeof(a));
    assert_int_equal(a[0] | a[1] | a[2] | a[3], 0);
}

static void test_text(void **state)
{
    char out[32];
    char tiny[6];
    (void)state;

    assert_string_equal(ly_text_escape("ab c", 4, 10, out, sizeof(out)), "ab c");
    assert_string_equal(ly_text_escape("a\nb'\\", 5, 10, out, sizeof(out)),
                        "a\\x0ab\\x27\\x5c");
    assert_string_equal(ly_text_escape("abcdefgh", 8, 3, out, sizeof(out)), "abc...");
    /* A NUL inside the counted length is shown, not treated as the end. */
    assert_string_equal(ly_text_escape("a\0b", 3, 10, out, sizeof(out)), "a\\x00b");
    /* Never past outsz, always terminated. */
    assert_string_equal(ly_text_escape("\x01\x02\x03", 3, 10, tiny, sizeof(tiny)), "...");
    assert_string_equal(ly_text_escape("abcdefgh", 8, 8, tiny, sizeof(tiny)), "ab...");
    {
        static const uint8_t b[4] = {0x00, 0x0f, 0xa5, 0xff};
        char hx[9];
        ly_hex_encode(b, sizeof(b), hx);
        assert_string_equal(hx, "000fa5ff");
        ly_hex_encode(b, 0, hx);
        assert_string_equal(hx, "");
    }
    assert_int_equal(ly_text_is_pem((const uint8_t *)" \n-----BEGIN X", 15), 1);
    assert_int_equal(ly_text_is_pem((const uint8_t *)"-----BEGI", 9), 0);
    assert_int_equal(ly_text_is_pem((const uint8_t *)"\x30\x82", 2), 0);
    assert_int_equal(ly_text_is_blank((const uint8_t *)" \t\r\n", 4), 1);
    assert_int_equal(ly_text_is_blank((const uint8_t *)"", 0), 1);
    assert_int_equal(ly_text_is_blank((const uint8_t *)" x", 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_first_wins), cmocka_unit_test(test_error_wrap_truncates),
        cmocka_unit_test(test_buf_limits),       cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_b64_vectors),      cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_b64_max),          cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_rfc3339_rejects),  cmocka_unit_test(test_duration),
        cmocka_unit_test(test_file_atomic),      cmocka_unit_test(test_secret),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
