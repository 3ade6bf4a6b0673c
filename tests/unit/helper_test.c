/*
 * Unit tests for the pure parts of broker/helper: Workload API address parsing (unix:///abs,
 * bare paths; unix://relative, tcp: and other schemes refused), splitting --cmd into argv
 * without a shell, JWT audience file names, signal names and pid-file text. The helper itself
 * runs against a real server in tests/interop/helper.sh.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>

#include "../../broker/helper.h"

static int endpoint(const char *addr, char *out, size_t outsz, struct ly_error *err)
{
    ly_error_clear(err);
    return helper_endpoint_parse(addr, out, outsz, err);
}

static void test_endpoint_ok(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"unix:///run/spire/agent.sock", "/run/spire/agent.sock"},
        {"UNIX:///tmp/x.sock", "/tmp/x.sock"},
        {"unix:/tmp/x.sock", "/tmp/x.sock"},
        {"/tmp/x.sock", "/tmp/x.sock"},
        {"x.sock", "x.sock"},
        {"./dir/x.sock", "./dir/x.sock"},
        {"/tmp/a:b.sock", "/tmp/a:b.sock"},
        {"./unix:x", "./unix:x"},
    };
    struct ly_error err = {0};
    char out[128];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(endpoint(cases[i].in, out, sizeof(out), &err), 0);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_endpoint_refused(void **state)
{
    static const struct {
        const char *in;
        const char *msg;
    } cases[] = {
        {"unix://relative/x.sock", "authority"},
        {"unix://host/tmp/x.sock", "authority"},
        {"unix://", "authority"},
        {"unix:relative.sock", "absolute"},
        {"unix:", "absolute"},
        {"tcp://127.0.0.1:8081", "not supported"},
        {"tcp:127.0.0.1:8081", "not supported"},
        {"TCP://[::1]:8081", "not supported"},
        {"http://localhost/x", "unsupported"},
        {"unix:///tmp/x.sock?q=1", "query"},
        {"unix:///tmp/x.sock#frag", "query"},
        {"unix:///tmp/x%20y.sock", "escapes"},
        {"", "empty"},
    };
    struct ly_error err = {0};
    char out[128];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(endpoint(cases[i].in, out, sizeof(out), &err), LY_ERR_USAGE);
        if (strstr(err.msg, cases[i].msg) == NULL) {
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].in, err.msg, cases[i].msg);
        }
    }
    assert_int_equal(endpoint(NULL, out, sizeof(out), &err), LY_ERR_USAGE);
    /* The output buffer bounds the path; nothing is written past it. */
    assert_int_equal(endpoint("unix:///tmp/a-long-socket-name.sock", out, 8, &err), LY_ERR_USAGE);
    assert_int_equal(endpoint("/tmp/abcdefgh", out, 8, &err), LY_ERR_USAGE);
    assert_int_equal(endpoint("/tmp/ab", out, 8, &err), 0);
    assert_string_equal(out, "/tmp/ab");
}

static void test_argv_split(void **state)
{
    struct ly_error err = {0};
    char **argv = NULL;
    size_t argc = 0;
    char line[HELPER_CMD_MAX + 2];
    size_t i;
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(helper_argv_split("  /bin/echo a  b\tc  ", &argv, &argc, &err), 0);
    assert_int_equal(argc, 4);
    assert_string_equal(argv[0], "/bin/echo");
    assert_string_equal(argv[1], "a");
    assert_string_equal(argv[2], "b");
    assert_string_equal(argv[3], "c");
    assert_null(argv[4]);
    helper_argv_free(argv);

    /* No shell: quotes, $ and ; are ordinary bytes of a word. */
    assert_int_equal(helper_argv_split("sh -c \"a;b\" $HOME", &argv, &argc, &err), 0);
    assert_int_equal(argc, 4);
    assert_string_equal(argv[2], "\"a;b\"");
    assert_string_equal(argv[3], "$HOME");
    helper_argv_free(argv);

    assert_int_equal(helper_argv_split("", &argv, &argc, &err), LY_ERR_USAGE);
    assert_null(argv);
    ly_error_clear(&err);
    assert_int_equal(helper_argv_split(" \t ", &argv, &argc, &err), LY_ERR_USAGE);
    assert_non_null(strstr(err.msg, "empty"));

    /* HELPER_MAX_ARGS words are fine, one more is not. */
    for (i = 0; i < HELPER_MAX_ARGS; i++) {
        line[2 * i] = 'x';
        line[2 * i + 1] = ' ';
    }
    line[2 * HELPER_MAX_ARGS] = '\0';
    ly_error_clear(&err);
    assert_int_equal(helper_argv_split(line, &argv, &argc, &err), 0);
    assert_int_equal(argc, HELPER_MAX_ARGS);
    helper_argv_free(argv);
    line[2 * HELPER_MAX_ARGS] = 'y';
    line[2 * HELPER_MAX_ARGS + 1] = '\0';
    assert_int_equal(helper_argv_split(line, &argv, &argc, &err), LY_ERR_USAGE);
    assert_null(argv);

    memset(line, 'a', HELPER_CMD_MAX + 1);
    line[HELPER_CMD_MAX + 1] = '\0';
    ly_error_clear(&err);
    assert_int_equal(helper_argv_split(line, &argv, &argc, &err), LY_ERR_USAGE);
    assert_non_null(strstr(err.msg, "longer"));
    helper_argv_free(NULL);
}

static void test_audience_filename(void **state)
{
    struct ly_error err = {0};
    char out[sizeof("jwt_svid_.token") + HELPER_AUD_FILE_MAX];
    char long_aud[HELPER_AUD_FILE_MAX + 2];
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(helper_audience_filename("spiffe://example.org/mcp/server", out,
                                              sizeof(out), &err),
                     0);
    assert_string_equal(out, "jwt_svid_spiffe___example.org_mcp_server.token");
    assert_int_equal(helper_audience_filename("api.example-1_x", out, sizeof(out), &err), 0);
    assert_string_equal(out, "jwt_svid_api.example-1_x.token");
    /* Never a path separator, never a way out of the directory. */
    assert_int_equal(helper_audience_filename("../../etc/passwd", out, sizeof(out), &err), 0);
    assert_string_equal(out, "jwt_svid_.._.._etc_passwd.token");
    assert_null(strchr(out, '/'));
    assert_int_equal(helper_audience_filename("caf\xc3\xa9 x\n", out, sizeof(out), &err), 0);
    assert_string_equal(out, "jwt_svid_caf___x_.token");

    assert_int_equal(helper_audience_filename("", out, sizeof(out), &err), LY_ERR_USAGE);
    ly_error_clear(&err);
    assert_int_equal(helper_audience_filename("..", out, sizeof(out), &err), LY_ERR_USAGE);
    ly_error_clear(&err);
    assert_int_equal(helper_audience_filename("/:/", out, sizeof(out), &err), LY_ERR_USAGE);
    memset(long_aud, 'a', HELPER_AUD_FILE_MAX);
    long_aud[HELPER_AUD_FILE_MAX] = '\0';
    ly_error_clear(&err);
    assert_int_equal(helper_audience_filename(long_aud, out, sizeof(out), &err), 0);
    long_aud[HELPER_AUD_FILE_MAX] = 'a';
    long_aud[HELPER_AUD_FILE_MAX + 1] = '\0';
    assert_int_equal(helper_audience_filename(long_aud, out, sizeof(out), &err), LY_ERR_USAGE);
    /* Too small an output buffer is refused, not overrun. */
    ly_error_clear(&err);
    assert_int_equal(helper_audience_filename("abc", out, 10, &err), LY_ERR_USAGE);
}

static void test_signal_parse(void **state)
{
    static const char *const bad[] = {"", "BOGUS", "SIG", "0", "65", "1x", "100", "-1", "SIGKILLX"};
    struct ly_error err = {0};
    int sig = 0;
    size_t i;
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(helper_signal_parse("HUP", &sig, &err), 0);
    assert_int_equal(sig, SIGHUP);
    assert_int_equal(helper_signal_parse("SIGUSR1", &sig, &err), 0);
    assert_int_equal(sig, SIGUSR1);
    assert_int_equal(helper_signal_parse("term", &sig, &err), 0);
    assert_int_equal(sig, SIGTERM);
    assert_int_equal(helper_signal_parse("10", &sig, &err), 0);
    assert_int_equal(sig, 10);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ly_error_clear(&err);
        assert_int_equal(helper_signal_parse(bad[i], &sig, &err), LY_ERR_USAGE);
    }
}

static void test_pid_parse(void **state)
{
    static const char *const bad[] = {"", "0", "-1", "12a", " 12", "99999999999", "\n"};
    struct ly_error err = {0};
    pid_t pid = 0;
    size_t i;
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(helper_pid_parse("4242\n", 5, &pid, &err), 0);
    assert_int_equal(pid, 4242);
    assert_int_equal(helper_pid_parse("7", 1, &pid, &err), 0);
    assert_int_equal(pid, 7);
    /* Only len bytes are read. */
    assert_int_equal(helper_pid_parse("12x", 2, &pid, &err), 0);
    assert_int_equal(pid, 12);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ly_error_clear(&err);
        assert_int_equal(helper_pid_parse(bad[i], strlen(bad[i]), &pid, &err), LY_ERR_PARSE);
    }
}

static void test_run_bad_config(void **state)
{
    struct helper_config cfg;
    struct ly_error err = {0};
    const char *aud[2] = {"a/b", "a:b"};
    (void)state;

    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(helper_run(&cfg, &err), LY_ERR_USAGE);
    cfg.socket_path = "/nonexistent/lanyard.sock";
    cfg.dir = "/nonexistent-dir-for-lanyard-test";
    cfg.signal = SIGHUP;
    assert_int_equal(helper_run(&cfg, &err), LY_ERR_USAGE);
    assert_non_null(strstr(err.msg, "pid"));
    cfg.signal = 0;
    cfg.audiences = aud;
    cfg.n_audiences = 2;
    assert_int_equal(helper_run(&cfg, &err), LY_ERR_USAGE);
    assert_non_null(strstr(err.msg, "share"));
    cfg.n_audiences = 0;
    cfg.cmd = "   ";
    assert_int_equal(helper_run(&cfg, &err), LY_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_ok),       cmocka_unit_test(test_endpoint_refused),
        cmocka_unit_test(test_argv_split),        cmocka_unit_test(test_audience_filename),
        cmocka_unit_test(test_signal_parse),      cmocka_unit_test(test_pid_parse),
        cmocka_unit_test(test_run_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
