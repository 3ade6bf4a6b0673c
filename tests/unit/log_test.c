/*
 * Unit tests for broker/log: each event is one parseable JSON line, peer text cannot break the
 * line, levels filter, and secret-looking fields never carry their value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/log.h"

/* Run fn with stderr redirected into a pipe; return what it wrote (caller frees). */
static char *capture(void (*fn)(void))
{
    int p[2];
    int saved;
    char *buf = calloc(1, 65536);
    ssize_t n;

    assert_non_null(buf);
    assert_int_equal(pipe(p), 0);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(p[1], STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(p[1]);
    n = read(p[0], buf, 65535);
    assert_true(n >= 0);
    close(p[0]);
    return buf;
}

static void emit_basic(void)
{
    log_set_level(LOG_INFO);
    log_event(LOG_INFO, "svid.issued", LOG_STR, "spiffe_id", "spiffe://example.org/w", LOG_INT,
              "uid", (int64_t)1000, LOG_STR, "kid", "abc", LOG_END);
    log_event(LOG_DEBUG, "dropped", LOG_END);
}

static void test_basic_line(void **state)
{
    char *out = capture(emit_basic);
    json_error_t je;
    json_t *o;
    (void)state;

    assert_non_null(strchr(out, '\n'));
    assert_null(strchr(strchr(out, '\n') + 1, '\n')); /* exactly one line: debug dropped */
    o = json_loads(out, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "svid.issued");
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "spiffe_id")),
                        "spiffe://example.org/w");
    assert_int_equal(json_integer_value(json_object_get(o, "uid")), 1000);
    assert_string_equal(json_string_value(json_object_get(o, "kid")), "abc");
    assert_non_null(json_object_get(o, "ts"));
    json_decref(o);
    free(out);
}

static void emit_hostile(void)
{
    log_event(LOG_WARN, "peer.text", LOG_STR, "path", "/tmp/a\n{\"fake\":1}\xff\xfe", LOG_STR,
              "token", "eyJhbGciOiJFUzI1NiJ9.secret.sig", LOG_STR, "private_key", "MIIB...",
              LOG_STR, "key_type", "ec-p256", LOG_END);
}

static void test_hostile_text_and_secrets(void **state)
{
    char *out = capture(emit_hostile);
    json_error_t je;
    json_t *o;
    (void)state;

    /* One line only, despite the newline in the value. */
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    o = json_loads(out, 0, &je);
    assert_non_null(o);
    assert_non_null(strstr(json_string_value(json_object_get(o, "path")), "/tmp/a"));
    assert_null(strstr(out, "eyJhbGciOiJFUzI1NiJ9"));
    assert_null(strstr(out, "MIIB"));
    assert_non_null(strstr(json_string_value(json_object_get(o, "token")), "refused"));
    assert_string_equal(json_string_value(json_object_get(o, "key_type")), "ec-p256");
    json_decref(o);
    free(out);
}

static void test_level_parse(void **state)
{
    enum log_level l;
    (void)state;

    assert_int_equal(log_level_parse("warn", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse("verbose", &l), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_line),
        cmocka_unit_test(test_hostile_text_and_secrets),
        cmocka_unit_test(test_level_parse),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
