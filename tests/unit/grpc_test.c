/*
 * Unit tests for broker/grpc and broker/grpc_client in-process: grpc-message percent coding,
 * argument checks, listener errors (long path, non-socket file, stale socket), and a client that
 * hits a closed socket. The wire behaviour is tested with real processes in
 * tests/interop/grpc_transport.sh.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../broker/grpc.h"
#include "../../broker/grpc_client.h"

static void test_percent_encode(void **state)
{
    char out[64];
    (void)state;

    assert_int_equal(grpc_percent_encode("plain text", out, sizeof(out)), 10);
    assert_string_equal(out, "plain text");
    (void)grpc_percent_encode("caf\xc3\xa9 100%\n", out, sizeof(out));
    assert_string_equal(out, "caf%C3%A9 100%25%0A");
    /* Truncation never splits an escape. */
    assert_int_equal(grpc_percent_encode("ab\xc3", out, 5), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(grpc_percent_encode("x", out, 0), 0);
    assert_int_equal(grpc_percent_encode(NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

static void test_percent_decode(void **state)
{
    char out[64];
    const char *in = "caf%C3%a9 100%25 %zz %4";
    (void)state;

    (void)grpc_percent_decode(in, strlen(in), out, sizeof(out));
    assert_string_equal(out, "caf\xc3\xa9 100% %zz %4");
    assert_int_equal(grpc_percent_decode("abcdef", 6, out, 4), 3);
    assert_string_equal(out, "abc");
    /* Only inlen bytes are read: no NUL needed. */
    assert_int_equal(grpc_percent_decode("%41BC", 3, out, sizeof(out)), 1);
    assert_string_equal(out, "A");
}

static int h_noop(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    (void)msg;
    (void)len;
    (void)ctx;
    grpc_call_finish(call, GRPC_OK, NULL);
    return 0;
}

static void test_server_args_and_listen(void **state)
{
    static const struct grpc_method ok[] = {{"/S/M", h_noop}};
    static const struct grpc_method bad[] = {{"no-slash", h_noop}};
    struct loop *loop;
    struct grpc_server *srv;
    struct ly_error err = {0};
    char dir[] = "/tmp/lanyard-grpc-test.XXXXXX";
    char path[256], longpath[200];
    struct stat st;
    int fd;
    (void)state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(loop_new(&loop, NULL), 0);
    ly_error_clear(&err);
    assert_int_equal(grpc_server_new(loop, bad, 1, NULL, NULL, &srv, &err), LY_ERR_USAGE);
    assert_null(srv);
    assert_int_equal(grpc_server_new(loop, ok, 1, NULL, NULL, &srv, NULL), 0);

    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    ly_error_clear(&err);
    assert_int_equal(grpc_server_listen_unix(srv, longpath, 0600, &err), LY_ERR_USAGE);

    /* A regular file at the path is refused and left alone. */
    (void)snprintf(path, sizeof(path), "%s/file", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    ly_error_clear(&err);
    assert_int_equal(grpc_server_listen_unix(srv, path, 0600, &err), LY_ERR_USAGE);
    assert_non_null(strstr(err.msg, "not a socket"));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(unlink(path), 0);

    /* Listening sets the mode; a second listen is refused; free removes the socket file. */
    (void)snprintf(path, sizeof(path), "%s/s.sock", dir);
    assert_int_equal(grpc_server_listen_unix(srv, path, 0600, NULL), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    ly_error_clear(&err);
    assert_int_equal(grpc_server_listen_unix(srv, path, 0600, &err), LY_ERR_USAGE);
    assert_int_equal(grpc_server_conn_count(srv), 0);
    grpc_server_shutdown(srv);
    grpc_server_shutdown(srv);
    assert_int_not_equal(stat(path, &st), 0);
    grpc_server_free(srv);
    grpc_server_free(NULL);
    loop_free(loop);
    assert_int_equal(rmdir(dir), 0);
}

static void test_client_no_server(void **state)
{
    struct grpc_client *c = (struct grpc_client *)1;
    struct ly_error err = {0};
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(grpc_client_connect_unix("/nonexistent/lanyard.sock", &c, &err), LY_ERR_IO);
    assert_null(c);
    ly_error_clear(&err);
    assert_int_equal(grpc_client_connect_unix("", &c, &err), LY_ERR_USAGE);
    grpc_client_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_encode),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_server_args_and_listen),
        cmocka_unit_test(test_client_no_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
