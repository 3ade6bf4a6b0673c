/*
 * endpoint_test: the bundle endpoint over real sockets and real TLS, driven by a small poll()
 * loop in this thread and checked with clients lanyard did not write (curl and openssl s_client,
 * run with posix_spawn) plus a non-blocking wolfSSL client for the cases an outside client cannot
 * time: a request in tiny writes and an identity swap mid-handshake. Certificates are minted here
 * with lanyard's own library (RSA and P-384 ones, as an operator would bring, with the openssl
 * tool). Also: the request reader's answer table, 503/404/405/400, key mismatches, the
 * connection limit, the timeout, running out of descriptors, a refusing hook, and free.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "../../common/ly_b64.h"
#include "../../common/ly_file.h"
#include "../../common/ly_time.h"
#include "../../federation/endpoint.h"
#include "../../federation/endpoint_internal.h"
#include "../../svid/key.h"
#include "../../svid/spiffeid.h"
#include "../../svid/x509svid.h"

extern char **environ;

#define T_MAXFD 4096
#define T_DEADLINE_MS 10000

/* ---- fixtures ---------------------------------------------------------------------------- */

struct cred {
    struct ly_buf chain; /* DER, leaf then CA */
    struct ly_buf key;   /* PKCS#8 DER */
    struct ly_buf chain_pem;
    struct ly_buf key_pem;
    char sha[65]; /* leaf SHA-256 hex */
};

static struct svid_key *ca_key;
static struct ly_buf ca_cert;
static struct x509svid_ca *ca;
static struct cred S1, S2, ED;
static char dir[64];
static char ca_pem_path[128];

static void leaf_sha(const uint8_t *der, size_t len, char out[65])
{
    struct x509svid_info info;
    struct ly_error err = {0};

    assert_int_equal(x509svid_cert_info(der, len, &info, &err), 0);
    (void)snprintf(out, 65, "%s", info.sha256_hex);
}

static void cred_make(struct cred *c, enum svid_key_type type, const char *id)
{
    struct ly_error err = {0};
    struct svid_key *k = NULL;
    struct ly_buf spki, leaf;
    struct spiffeid sid;
    const char *dns[1] = {"localhost"};

    assert_int_equal(spiffeid_parse(id, strlen(id), &sid, &err), 0);
    assert_int_equal(svid_key_generate(type, &k, &err), 0);
    assert_int_equal(svid_key_public_der(k, &spki, &err), 0);
    /* A DNS SAN too: curl and s_client check the host name they dialled. */
    assert_int_equal(
        x509svid_mint(ca, &sid, spki.data, spki.len, dns, 1, ly_time_now(), 3600, &leaf, &err), 0);
    ly_buf_init(&c->chain, 1u << 20);
    assert_int_equal(ly_buf_append(&c->chain, leaf.data, leaf.len, &err), 0);
    assert_int_equal(ly_buf_append(&c->chain, ca_cert.data, ca_cert.len, &err), 0);
    ly_buf_init(&c->chain_pem, 1u << 20);
    assert_int_equal(ly_pem_append(&c->chain_pem, "CERTIFICATE", leaf.data, leaf.len, &err), 0);
    assert_int_equal(ly_pem_append(&c->chain_pem, "CERTIFICATE", ca_cert.data, ca_cert.len, &err),
                     0);
    assert_int_equal(svid_key_to_pkcs8_der(k, &c->key, &err), 0);
    assert_int_equal(svid_key_to_pkcs8_pem(k, &c->key_pem, &err), 0);
    leaf_sha(leaf.data, leaf.len, c->sha);
    ly_buf_free(&leaf);
    ly_buf_free(&spki);
    svid_key_free(k);
}

static void cred_free(struct cred *c)
{
    ly_buf_free(&c->chain);
    ly_buf_free(&c->key);
    ly_buf_free(&c->chain_pem);
    ly_buf_free(&c->key_pem);
}

static void path_of(char *out, size_t outsz, const char *name)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < outsz);
}

static void file_put(const char *name, const void *data, size_t len)
{
    struct ly_error err = {0};
    char p[160];

    path_of(p, sizeof(p), name);
    assert_int_equal(ly_file_write_atomic(p, data, len, 0600, 0, &err), 0);
}

static void file_get(const char *name, struct ly_buf *out)
{
    struct ly_error err = {0};
    char p[160];

    path_of(p, sizeof(p), name);
    if (ly_file_read(p, 8u << 20, 0, out, &err) != 0) {
        fail_msg("reading %s: %s", name, err.msg);
    }
}

/* ---- a poll loop standing in for the daemon's ------------------------------------------- */

struct tloop {
    int mask[T_MAXFD];
    int maxfd;
    int refuse_fd; /* the hook fails for this fd (-1: none) */
    int lfd;       /* the endpoint's listener */
};

static struct tloop L;

static int t_watch(void *arg, int fd, int mask)
{
    struct tloop *l = arg;

    if (fd < 0 || fd >= T_MAXFD || fd == l->refuse_fd) {
        return -1;
    }
    l->mask[fd] = mask;
    if (fd > l->maxfd) {
        l->maxfd = fd;
    }
    return 0;
}

static const struct fed_endpoint_hooks hooks = {.arg = &L, .watch = t_watch};

static int watched(void)
{
    int n = 0;

    for (int fd = 0; fd <= L.maxfd; fd++) {
        n += L.mask[fd] != 0;
    }
    return n;
}

/* The endpoint's side of its only connection (the watched fd that is not the listener). */
static int conn_fd(void)
{
    for (int fd = 0; fd <= L.maxfd; fd++) {
        if (L.mask[fd] != 0 && fd != L.lfd) {
            return fd;
        }
    }
    return -1;
}

/* Connections waiting to write (their socket buffer is full). */
static int write_waits(void)
{
    int n = 0;

    for (int fd = 0; fd <= L.maxfd; fd++) {
        n += L.mask[fd] == FED_IO_WRITE;
    }
    return n;
}

/* One loop iteration: poll what the endpoint watches, report what is ready. */
static void drive(struct fed_endpoint *ep, int timeout_ms)
{
    static struct pollfd p[T_MAXFD];
    nfds_t n = 0;

    for (int fd = 0; fd <= L.maxfd; fd++) {
        if (L.mask[fd] != 0) {
            p[n].fd = fd;
            p[n].events = (short)(((L.mask[fd] & FED_IO_READ) ? POLLIN : 0) |
                                  ((L.mask[fd] & FED_IO_WRITE) ? POLLOUT : 0));
            p[n].revents = 0;
            n++;
        }
    }
    if (poll(p, n, timeout_ms) <= 0) {
        return;
    }
    for (nfds_t i = 0; i < n; i++) {
        int fd = p[i].fd;
        int m = 0;
        if (p[i].revents == 0 || L.mask[fd] == 0) {
            continue; /* closed by an earlier report of this round */
        }
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            m |= FED_IO_READ;
        }
        if (p[i].revents & POLLOUT) {
            m |= FED_IO_WRITE;
        }
        fed_endpoint_io(ep, fd, m);
    }
}

static int64_t ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drive until fed_endpoint_conns() == want (or the deadline: the assertion then fails). */
static void drive_until_conns(struct fed_endpoint *ep, size_t want)
{
    int64_t start = ms_now();

    while (fed_endpoint_conns(ep) != want && ms_now() < start + T_DEADLINE_MS) {
        drive(ep, 5);
    }
    if (fed_endpoint_conns(ep) != want) {
        fail_msg("%zu connections after %lld ms, want %zu (watched fds %d, served %llu)",
                 fed_endpoint_conns(ep), (long long)(ms_now() - start), want, watched(),
                 (unsigned long long)fed_endpoint_served(ep));
    }
}

static struct fed_endpoint *endpoint(int with_identity, int with_bundle)
{
    struct ly_error err = {0};
    struct fed_endpoint *ep = NULL;

    memset(&L, 0, sizeof(L));
    L.refuse_fd = -1;
    if (fed_endpoint_new(&hooks, "127.0.0.1", 0, &ep, &err) != 0) {
        fail_msg("fed_endpoint_new: %s", err.msg);
    }
    assert_true(fed_endpoint_port(ep) > 0);
    assert_string_equal(fed_endpoint_cert_sha256(ep), "");
    assert_int_equal(watched(), 1);
    for (int fd = 0; fd <= L.maxfd; fd++) {
        if (L.mask[fd] != 0) {
            L.lfd = fd;
        }
    }
    if (with_identity) {
        assert_int_equal(fed_endpoint_set_identity(ep, S1.chain.data, S1.chain.len, S1.key.data,
                                                   S1.key.len, &err),
                         0);
        assert_string_equal(fed_endpoint_cert_sha256(ep), S1.sha);
    }
    if (with_bundle) {
        static const char b[] = "{\"keys\":[],\"spiffe_sequence\":1}";
        assert_int_equal(fed_endpoint_set_bundle(ep, (const uint8_t *)b, strlen(b), &err), 0);
    }
    return ep;
}

static void endpoint_free(struct fed_endpoint *ep)
{
    fed_endpoint_free(ep);
    assert_int_equal(watched(), 0);
}

/* ---- outside clients (curl, openssl s_client) -------------------------------------------- */

static pid_t spawn(const char *const argv[], const char *in_name, const char *out_name,
                   const char *err_name)
{
    posix_spawn_file_actions_t fa;
    char in[160], out[160], errp[160];
    pid_t pid = -1;

    if (in_name != NULL) {
        path_of(in, sizeof(in), in_name);
    } else {
        (void)snprintf(in, sizeof(in), "/dev/null");
    }
    path_of(out, sizeof(out), out_name);
    path_of(errp, sizeof(errp), err_name);
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    (void)posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Drive the endpoint until the child exits; returns its exit status (-1: killed/timeout). */
static int drive_until_exit(struct fed_endpoint *ep, pid_t pid)
{
    int64_t end = ms_now() + T_DEADLINE_MS;
    int st = 0;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        if (ms_now() > end) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &st, 0);
            return -1;
        }
        drive(ep, 5);
    }
}

struct curl_result {
    int rc;
    int code;
    struct ly_buf body; /* the body, or the headers with head=1 */
};

/* curl [extra...] https://localhost:port<path> against the CA in ca.pem. */
static void curl_run(struct fed_endpoint *ep, const char *path, const char *cafile,
                     const char *const *extra, struct curl_result *res)
{
    char url[128], resolve[64], out[160], port[16];
    const char *argv[32];
    int n = 0;
    struct ly_buf code;

    (void)snprintf(port, sizeof(port), "%d", fed_endpoint_port(ep));
    (void)snprintf(url, sizeof(url), "https://localhost:%s%s", port, path);
    (void)snprintf(resolve, sizeof(resolve), "localhost:%s:127.0.0.1", port);
    path_of(out, sizeof(out), "curl.body");
    argv[n++] = "curl";
    argv[n++] = "-q";
    argv[n++] = "-sS";
    argv[n++] = "--noproxy";
    argv[n++] = "*";
    argv[n++] = "--max-time";
    argv[n++] = "8";
    argv[n++] = "--resolve";
    argv[n++] = resolve;
    argv[n++] = "--cacert";
    argv[n++] = cafile;
    argv[n++] = "-o";
    argv[n++] = out;
    argv[n++] = "-w";
    argv[n++] = "%{http_code}";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        argv[n++] = extra[i];
    }
    argv[n++] = url;
    argv[n] = NULL;
    (void)unlink(out);
    file_put("curl.body", "", 0);
    res->rc = drive_until_exit(ep, spawn(argv, NULL, "curl.out", "curl.err"));
    file_get("curl.out", &code);
    res->code = 0;
    for (size_t i = 0; i < code.len && code.data[i] >= '0' && code.data[i] <= '9'; i++) {
        res->code = res->code * 10 + (code.data[i] - '0');
    }
    ly_buf_free(&code);
    file_get("curl.body", &res->body);
    if (res->rc != 0) {
        struct ly_buf e;
        file_get("curl.err", &e);
        print_message("curl exited %d: %s\n", res->rc, (const char *)e.data);
        ly_buf_free(&e);
    }
}

/* Hex SHA-256 of the first certificate in PEM text (what s_client printed). */
static void first_cert_sha(const struct ly_buf *text, char out[65])
{
    static const char b[] = "-----BEGIN CERTIFICATE-----";
    static const char e[] = "-----END CERTIFICATE-----";
    const char *s = memmem(text->data, text->len, b, strlen(b));
    const char *t;
    struct ly_buf b64, der;
    struct ly_error err = {0};

    assert_non_null(s);
    s += strlen(b);
    t = memmem(s, text->len - (size_t)(s - (const char *)text->data), e, strlen(e));
    assert_non_null(t);
    ly_buf_init(&b64, 1u << 16);
    for (; s < t; s++) {
        if (*s != '\n' && *s != '\r') {
            assert_int_equal(ly_buf_append(&b64, s, 1, &err), 0);
        }
    }
    assert_int_equal(ly_b64_decode((const char *)b64.data, b64.len, 0, 0, &der, 1u << 16, &err), 0);
    leaf_sha(der.data, der.len, out);
    ly_buf_free(&der);
    ly_buf_free(&b64);
}

/*
 * openssl s_client: sends a GET from req.txt, prints the server certificate and the answer.
 * If accepted_then is set, the endpoint is driven only until it accepted the connection, then
 * accepted_then(ep) runs (accepted, no TLS byte read yet: the endpoint starts the handshake on
 * the connection's own readiness report, never inside the accept), then the rest.
 */
static void s_client_run(struct fed_endpoint *ep, void (*accepted_then)(struct fed_endpoint *),
                         char sha[65], struct ly_buf *out)
{
    char connect[64];
    const char *argv[] = {"openssl",  "s_client",    "-connect",
                          connect,    "-servername", "localhost",
                          "-CAfile",  ca_pem_path,   "-verify_return_error",
                          "-ign_eof", NULL};
    static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    size_t before = fed_endpoint_conns(ep);
    pid_t pid;

    (void)snprintf(connect, sizeof(connect), "127.0.0.1:%d", fed_endpoint_port(ep));
    file_put("req.txt", req, strlen(req));
    pid = spawn(argv, "req.txt", "s_client.out", "s_client.err");
    if (accepted_then != NULL) {
        int64_t end = ms_now() + T_DEADLINE_MS;
        while (fed_endpoint_conns(ep) == before && ms_now() < end) {
            int st = 0;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                struct ly_buf e;
                file_get("s_client.err", &e);
                fail_msg("s_client exited (status %d) before it was accepted: %s", st,
                         (const char *)e.data);
            }
            drive(ep, 5);
        }
        assert_int_equal(fed_endpoint_conns(ep), before + 1);
        accepted_then(ep);
    }
    assert_int_equal(drive_until_exit(ep, pid), 0);
    file_get("s_client.out", out);
    first_cert_sha(out, sha);
    assert_non_null(memmem(out->data, out->len, "Verify return code: 0 (ok)", 26));
}

/* ---- a non-blocking wolfSSL client, stepped between loop iterations ----------------------- */

struct tcli {
    int fd;
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    const char *req;
    size_t req_len;
    size_t sent;
    int tiny;  /* one byte per TLS record, at most 5 bytes per send() */
    int state; /* 0 handshake, 1 writing, 2 reading, 3 closed by the server, -1 failed */
    char resp[2u << 20];
    size_t resp_len;
    char peer[65];
};

static int tiny_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct tcli *c = ctx;
    ssize_t n;

    (void)ssl;
    n = send(c->fd, buf, (size_t)(sz < 5 ? sz : 5), MSG_NOSIGNAL);
    if (n < 0) {
        return errno == EAGAIN ? WOLFSSL_CBIO_ERR_WANT_WRITE : WOLFSSL_CBIO_ERR_GENERAL;
    }
    return (int)n;
}

/* Connect to the endpoint; rcvbuf > 0 shrinks the receive buffer first (a slow reader). */
static int tcp_connect_rcvbuf(int port, int rcvbuf)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    if (rcvbuf > 0) {
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static int tcp_connect(int port)
{
    return tcp_connect_rcvbuf(port, 0);
}

static struct tcli *tcli_new_rcvbuf(struct fed_endpoint *ep, const char *req, int tiny, int rcvbuf)
{
    struct tcli *c = calloc(1, sizeof(*c));
    int one = 1;

    assert_non_null(c);
    c->req = req;
    c->req_len = strlen(req);
    c->tiny = tiny;
    c->fd = tcp_connect_rcvbuf(fed_endpoint_port(ep), rcvbuf);
    assert_int_equal(fcntl(c->fd, F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
    c->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    assert_non_null(c->ctx);
    assert_int_equal(wolfSSL_CTX_load_verify_buffer(c->ctx, ca_cert.data, (long)ca_cert.len,
                                                    WOLFSSL_FILETYPE_ASN1),
                     WOLFSSL_SUCCESS);
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
    if (tiny) {
        wolfSSL_CTX_SetIOSend(c->ctx, tiny_send);
    }
    c->ssl = wolfSSL_new(c->ctx);
    assert_non_null(c->ssl);
    assert_int_equal(wolfSSL_set_fd(c->ssl, c->fd), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_check_domain_name(c->ssl, "localhost"), WOLFSSL_SUCCESS);
    if (tiny) {
        wolfSSL_SetIOWriteCtx(c->ssl, c);
    }
    return c;
}

static struct tcli *tcli_new(struct fed_endpoint *ep, const char *req, int tiny)
{
    return tcli_new_rcvbuf(ep, req, tiny, 0);
}

static void tcli_free(struct tcli *c)
{
    wolfSSL_free(c->ssl);
    wolfSSL_CTX_free(c->ctx);
    (void)close(c->fd);
    free(c);
}

static void tcli_step(struct tcli *c)
{
    for (;;) {
        int rc;
        int e;
        switch (c->state) {
        case 0:
            rc = wolfSSL_connect(c->ssl);
            if (rc == WOLFSSL_SUCCESS) {
                WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(c->ssl);
                int len = 0;
                const unsigned char *der = x != NULL ? wolfSSL_X509_get_der(x, &len) : NULL;
                assert_non_null(der);
                leaf_sha(der, (size_t)len, c->peer);
                wolfSSL_X509_free(x);
                c->state = 1;
                continue;
            }
            break;
        case 1:
            if (c->sent == c->req_len) {
                c->state = 2;
                continue;
            }
            rc = wolfSSL_write(c->ssl, c->req + c->sent, c->tiny ? 1 : (int)(c->req_len - c->sent));
            if (rc > 0) {
                c->sent += (size_t)rc;
                continue;
            }
            break;
        case 2:
            rc = wolfSSL_read(c->ssl, c->resp + c->resp_len,
                              (int)(sizeof(c->resp) - 1 - c->resp_len));
            if (rc > 0) {
                c->resp_len += (size_t)rc;
                c->resp[c->resp_len] = '\0';
                continue;
            }
            break;
        default:
            return;
        }
        e = wolfSSL_get_error(c->ssl, rc);
        if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
            return;
        }
        /* After the answer, the server's close (close_notify or EOF) ends the exchange. */
        c->state = c->state == 2 ? 3 : -1;
        return;
    }
}

static void tcli_run(struct fed_endpoint *ep, struct tcli *c)
{
    int64_t end = ms_now() + T_DEADLINE_MS;

    while (c->state >= 0 && c->state < 3 && ms_now() < end) {
        tcli_step(c);
        drive(ep, 2);
    }
    assert_int_equal(c->state, 3);
}

/* The status of a raw answer ("HTTP/1.1 NNN ..."). */
static int status_of(const char *resp)
{
    if (strncmp(resp, "HTTP/1.1 ", 9) != 0) {
        return -1;
    }
    return (resp[9] - '0') * 100 + (resp[10] - '0') * 10 + (resp[11] - '0');
}

static const char *body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    return p != NULL ? p + 4 : "";
}

/* ---- the request reader, without TLS ----------------------------------------------------- */

static int req_status(const char *raw, size_t len, size_t step, int have_bundle, int *head)
{
    struct fed_req r;
    size_t off = 0;
    int done = 0;

    fed_req_init(&r);
    assert_int_equal(fed_req_status(&r, 1), -1);
    while (off < len && !done) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        done = fed_req_feed(&r, (const uint8_t *)raw + off, n, &used);
        assert_true(used <= n);
        off += n;
    }
    if (!done) {
        return 0;
    }
    *head = fed_req_is_head(&r);
    return fed_req_status(&r, have_bundle);
}

static void test_request_table(void **state)
{
    static const struct {
        const char *raw;
        int bundle;
        int want;
        int head;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, 200, 0},
        {"GET / HTTP/1.0\r\n\r\n", 1, 200, 0},
        {"HEAD / HTTP/1.1\r\nhOsT: x\r\n\r\n", 1, 200, 1},
        {"GET /?fresh=1 HTTP/1.1\r\nHost: x\r\n\r\n", 1, 200, 0},
        {"GET https://bundle.example/ HTTP/1.1\r\nHost: bundle.example\r\n\r\n", 1, 200, 0},
        {"GET https://bundle.example HTTP/1.1\r\nHost: bundle.example\r\n\r\n", 1, 200, 0},
        {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 1, 200, 0},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 503, 0},
        {"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 503, 1},
        {"GET /bundle HTTP/1.1\r\nHost: x\r\n\r\n", 1, 404, 0},
        {"GET // HTTP/1.1\r\nHost: x\r\n\r\n", 1, 404, 0},
        {"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n", 1, 404, 1},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 1, 405, 0},
        {"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 1, 405, 0},
        {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 1, 405, 0},
        {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 1, 405, 0},
        {"GET / HTTP/1.1\r\n\r\n", 1, 400, 0},                       /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1, 400, 0}, /* two */
        {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 1, 400, 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 1, 400, 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1, 400, 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 1, 400, 0},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 1, 400, 0},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1, 400, 0},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1, 400, 0}, /* TLS spoken to HTTP */
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", 1, 400, 0},
        {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 1, 400, 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nX-Long-Name-Beyond-The-Kept-Part: 1\r\n\r\n", 1, 200, 0},
        {"GET / HTTP/1.1\r\nHostile: 1\r\nHost: x\r\n\r\n", 1, 200, 0},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\n\r\n", 1, 200, 0}, /* pipelined */
    };
    size_t steps[] = {1, 2, 3, 7, 4096};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            int head = -1;
            int got =
                req_status(cases[i].raw, strlen(cases[i].raw), steps[s], cases[i].bundle, &head);
            if (cases[i].raw[0] == '\x16') {
                got = req_status(cases[i].raw, 11, steps[s], cases[i].bundle, &head);
            }
            if (got != cases[i].want || head != cases[i].head) {
                fail_msg("case %zu step %zu: status %d head %d, want %d head %d", i, steps[s], got,
                         head, cases[i].want, cases[i].head);
            }
        }
    }
}

static void test_request_limits(void **state)
{
    static char raw[3 * FED_ENDPOINT_MAX_HEAD];
    struct fed_req r;
    size_t used = 0;
    int head = 0;
    int n;

    (void)state;
    /* A head that never ends is refused at the cap, and nothing past the cap is read. */
    n = snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: x\r\n");
    while ((size_t)n + 8 < sizeof(raw)) {
        memcpy(raw + n, "X: 1\r\n", 6);
        n += 6;
    }
    fed_req_init(&r);
    assert_int_equal(fed_req_feed(&r, (const uint8_t *)raw, (size_t)n, &used), 1);
    assert_true(used <= FED_ENDPOINT_MAX_HEAD);
    assert_int_equal(fed_req_status(&r, 1), 400);
    assert_int_equal(fed_req_feed(&r, (const uint8_t *)raw, 10, &used), 1);
    assert_int_equal(used, 0);
    /* Just under the cap is fine. */
    n = snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    memset(raw + n, 'a', FED_ENDPOINT_MAX_HEAD - (size_t)n - 4);
    memcpy(raw + FED_ENDPOINT_MAX_HEAD - 4, "\r\n\r\n", 4);
    assert_int_equal(req_status(raw, FED_ENDPOINT_MAX_HEAD, 1000, 1, &head), 200);
    /* A target over FED_REQ_TARGET_MAX. */
    n = snprintf(raw, sizeof(raw), "GET /?");
    memset(raw + n, 'q', FED_REQ_TARGET_MAX);
    n += FED_REQ_TARGET_MAX;
    n += snprintf(raw + n, sizeof(raw) - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(req_status(raw, (size_t)n, 100, 1, &head), 400);
    /* Zero-length feeds are not an end of input. */
    fed_req_init(&r);
    assert_int_equal(fed_req_feed(&r, (const uint8_t *)"GET", 0, &used), 0);
    assert_int_equal(fed_req_feed(&r, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18, &used), 1);
    assert_int_equal(fed_req_status(&r, 1), 200);
}

static void test_answer_build(void **state)
{
    struct ly_error err = {0};
    struct ly_buf a;
    static const uint8_t body[] = "{\"keys\":[]}";
    const int statuses[] = {200, 400, 404, 405, 503};

    (void)state;
    /* 2026-11-22T10:00:00Z was a Sunday. */
    assert_int_equal(fed_answer_build(200, 0, body, 11, 1795341600, &a, &err), 0);
    assert_non_null(memmem(a.data, a.len, "Date: Sun, 22 Nov 2026 10:00:00 GMT\r\n", 37));
    assert_non_null(memmem(a.data, a.len, "Content-Type: application/json\r\n", 32));
    assert_non_null(memmem(a.data, a.len, "Content-Length: 11\r\n", 20));
    assert_non_null(memmem(a.data, a.len, "Cache-Control: no-store\r\n", 25));
    assert_int_equal(memcmp(a.data + a.len - 15, "\r\n\r\n{\"keys\":[]}", 15), 0);
    ly_buf_free(&a);
    /* HEAD: the same headers, no body. */
    assert_int_equal(fed_answer_build(200, 1, body, 11, 0, &a, &err), 0);
    assert_non_null(memmem(a.data, a.len, "Content-Length: 11\r\n", 20));
    assert_int_equal(memcmp(a.data + a.len - 4, "\r\n\r\n", 4), 0);
    ly_buf_free(&a);
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char line[16];
        assert_int_equal(fed_answer_build(statuses[i], 0, NULL, 0, -5, &a, &err), 0);
        (void)snprintf(line, sizeof(line), "HTTP/1.1 %d ", statuses[i]);
        assert_int_equal(memcmp(a.data, line, 13), 0);
        assert_null(memmem(a.data, a.len, "Date:", 5)); /* no usable clock: no Date */
        assert_int_equal(memmem(a.data, a.len, "Allow: GET, HEAD\r\n", 18) != NULL,
                         statuses[i] == 405);
        ly_buf_free(&a);
    }
    assert_int_equal(fed_answer_build(302, 0, NULL, 0, 0, &a, &err), LY_ERR_USAGE);
    ly_buf_free(&a);
}

/* ---- over TLS ---------------------------------------------------------------------------- */

static void test_get_head_and_errors(void **state)
{
    struct ly_error err = {0};
    struct fed_endpoint *ep = endpoint(1, 0);
    struct curl_result r;
    static const char *const head[] = {"-I", NULL};
    static const char *const del[] = {"-X", "DELETE", NULL};
    static const char *const tls12[] = {"--tlsv1.2", "--tls-max", "1.2", NULL};
    static const char *const tls13[] = {"--tlsv1.3", NULL};
    char bundle[4096];
    char cl[64];
    int n;

    (void)state;
    /* No bundle yet: 503. */
    curl_run(ep, "/", ca_pem_path, NULL, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 503);
    assert_int_equal(r.body.len, strlen("no bundle yet\n"));
    ly_buf_free(&r.body);
    assert_int_equal(fed_endpoint_served(ep), 0);

    n = snprintf(bundle, sizeof(bundle),
                 "{\"keys\":[{\"use\":\"x509-svid\",\"kty\":\"EC\",\"crv\":\"P-256\"}],"
                 "\"spiffe_refresh_hint\":300,\"spiffe_sequence\":7,\"pad\":\"");
    memset(bundle + n, 'z', 3000);
    n += 3000;
    n += snprintf(bundle + n, sizeof(bundle) - (size_t)n, "\"}");
    assert_int_equal(fed_endpoint_set_bundle(ep, (const uint8_t *)bundle, (size_t)n, &err), 0);

    /* 200: the body byte for byte, TLS 1.3 and TLS 1.2. */
    curl_run(ep, "/", ca_pem_path, tls13, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 200);
    assert_int_equal(r.body.len, (size_t)n);
    assert_memory_equal(r.body.data, bundle, (size_t)n);
    ly_buf_free(&r.body);
    curl_run(ep, "/", ca_pem_path, tls12, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 200);
    assert_int_equal(r.body.len, (size_t)n);
    assert_memory_equal(r.body.data, bundle, (size_t)n);
    ly_buf_free(&r.body);
    assert_int_equal(fed_endpoint_served(ep), 2);

    /* HEAD: the headers of the 200, no body. */
    curl_run(ep, "/", ca_pem_path, head, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 200);
    (void)snprintf(cl, sizeof(cl), "Content-Length: %d\r\n", n);
    assert_non_null(memmem(r.body.data, r.body.len, cl, strlen(cl)));
    assert_non_null(memmem(r.body.data, r.body.len, "Content-Type: application/json", 30));
    assert_null(memmem(r.body.data, r.body.len, "spiffe_sequence", 15));
    ly_buf_free(&r.body);
    assert_int_equal(fed_endpoint_served(ep), 3);

    curl_run(ep, "/nope", ca_pem_path, NULL, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 404);
    ly_buf_free(&r.body);
    curl_run(ep, "/", ca_pem_path, del, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 405);
    ly_buf_free(&r.body);

    /* A new bundle serves the next request. */
    assert_int_equal(fed_endpoint_set_bundle(ep, (const uint8_t *)"{\"keys\":[]}", 11, &err), 0);
    curl_run(ep, "/?again", ca_pem_path, NULL, &r);
    assert_int_equal(r.code, 200);
    assert_int_equal(r.body.len, 11);
    assert_memory_equal(r.body.data, "{\"keys\":[]}", 11);
    ly_buf_free(&r.body);
    assert_int_equal(fed_endpoint_served(ep), 4);
    assert_int_equal(fed_endpoint_conns(ep), 0);

    /* Refused bundles leave the current one. */
    assert_int_equal(fed_endpoint_set_bundle(ep, (const uint8_t *)"", 0, &err), LY_ERR_USAGE);
    assert_int_equal(fed_endpoint_set_bundle(ep, NULL, 5, &err), LY_ERR_USAGE);
    endpoint_free(ep);
}

/* Loopback send buffers grow to megabytes: pin the endpoint's one small so writes block. */
static void small_sndbuf(int fd)
{
    int sz = 4096;

    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
}

static void test_large_bundle(void **state)
{
    struct ly_error err = {0};
    struct fed_endpoint *ep = endpoint(1, 0);
    struct curl_result r;
    size_t len = 700 * 1024;
    uint8_t *big = malloc(len);
    struct tcli *c;
    const char *body;
    int64_t end;
    int blocked = 0;

    (void)state;
    assert_non_null(big);
    for (size_t i = 0; i < len; i++) {
        big[i] = (uint8_t)('a' + i % 26);
    }
    big[0] = '"';
    big[len - 1] = '"';
    assert_int_equal(fed_endpoint_set_bundle(ep, big, len, &err), 0);
    curl_run(ep, "/", ca_pem_path, NULL, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 200);
    assert_int_equal(r.body.len, len);
    assert_memory_equal(r.body.data, big, len);
    ly_buf_free(&r.body);

    /* A reader with a tiny receive buffer, stepped once per ten loop turns: the answer goes out
     * through many WANT_WRITE waits, and arrives whole. */
    c = tcli_new_rcvbuf(ep, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 0, 4096);
    drive_until_conns(ep, 1);
    small_sndbuf(conn_fd());
    end = ms_now() + T_DEADLINE_MS;
    while (c->state >= 0 && c->state < 3 && ms_now() < end) {
        tcli_step(c);
        for (int i = 0; i < 10; i++) {
            drive(ep, 0);
            blocked += write_waits();
        }
    }
    assert_int_equal(c->state, 3);
    assert_true(blocked > 0);
    assert_int_equal(status_of(c->resp), 200);
    body = body_of(c->resp);
    assert_int_equal(c->resp_len - (size_t)(body - c->resp), len);
    assert_memory_equal(body, big, len);
    tcli_free(c);

    /* A reader that never reads: the answer stalls, and the tick drops it. */
    c = tcli_new_rcvbuf(ep, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 0, 4096);
    drive_until_conns(ep, 1);
    small_sndbuf(conn_fd());
    end = ms_now() + T_DEADLINE_MS;
    while (c->state < 2 && ms_now() < end) {
        tcli_step(c);
        drive(ep, 2);
    }
    while (write_waits() == 0 && ms_now() < end) {
        drive(ep, 2);
    }
    assert_int_equal(write_waits(), 1);
    fed_endpoint_tick(ep, 0);
    fed_endpoint_tick(ep, FED_ENDPOINT_TIMEOUT_MS);
    assert_int_equal(fed_endpoint_conns(ep), 0);
    assert_int_equal(fed_endpoint_served(ep), 2);
    tcli_free(c);
    free(big);
    endpoint_free(ep);
}

static void test_garbage_and_tiny_writes(void **state)
{
    struct fed_endpoint *ep = endpoint(1, 1);
    struct tcli *c;

    (void)state;
    c = tcli_new(ep, "\x01\x02 this is not http\r\n\r\n", 0);
    tcli_run(ep, c);
    assert_string_equal(c->peer, S1.sha);
    assert_int_equal(status_of(c->resp), 400);
    assert_string_equal(body_of(c->resp), "bad request\n");
    tcli_free(c);

    c = tcli_new(ep, "GET / HTTP/1.1\r\n\r\n", 0);
    tcli_run(ep, c);
    assert_int_equal(status_of(c->resp), 400);
    tcli_free(c);

    /* Every handshake byte in sends of at most 5 bytes, the request one byte per record. */
    c = tcli_new(ep, "GET / HTTP/1.1\r\nHost: localhost:1\r\nUser-Agent: tiny\r\n\r\n", 1);
    tcli_run(ep, c);
    assert_int_equal(status_of(c->resp), 200);
    assert_string_equal(body_of(c->resp), "{\"keys\":[],\"spiffe_sequence\":1}");
    assert_non_null(strstr(c->resp, "\r\nConnection: close\r\n"));
    tcli_free(c);
    assert_int_equal(fed_endpoint_served(ep), 1);
    assert_int_equal(fed_endpoint_conns(ep), 0);
    endpoint_free(ep);
}

static void swap_to_s2(struct fed_endpoint *ep)
{
    struct ly_error err = {0};

    assert_int_equal(
        fed_endpoint_set_identity(ep, S2.chain.data, S2.chain.len, S2.key.data, S2.key.len, &err),
        0);
    assert_string_equal(fed_endpoint_cert_sha256(ep), S2.sha);
}

static void test_identity_swap(void **state)
{
    struct fed_endpoint *ep = endpoint(1, 1);
    struct tcli *c;
    struct ly_buf out;
    char sha[65];
    int64_t end;

    (void)state;
    assert_string_not_equal(S1.sha, S2.sha);
    /* Our client: ClientHello sent, the server's flight back, then the swap. */
    c = tcli_new(ep, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 0);
    drive_until_conns(ep, 1);
    tcli_step(c);
    assert_int_equal(c->state, 0);
    end = ms_now() + T_DEADLINE_MS;
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1 || ms_now() > end) {
            break;
        }
        drive(ep, 2);
    }
    assert_int_equal(c->state, 0);
    swap_to_s2(ep);
    tcli_run(ep, c);
    assert_string_equal(c->peer, S1.sha);
    assert_int_equal(status_of(c->resp), 200);
    tcli_free(c);
    /* A new connection gets the new certificate, as an outside client sees it. */
    s_client_run(ep, NULL, sha, &out);
    assert_string_equal(sha, S2.sha);
    assert_non_null(memmem(out.data, out.len, "HTTP/1.1 200 OK", 15));
    ly_buf_free(&out);

    endpoint_free(ep);
}

static void swap_to_s1(struct fed_endpoint *ep)
{
    struct ly_error err = {0};

    assert_int_equal(
        fed_endpoint_set_identity(ep, S1.chain.data, S1.chain.len, S1.key.data, S1.key.len, &err),
        0);
}

static void test_identity_swap_outside_client(void **state)
{
    struct fed_endpoint *ep = endpoint(1, 1);
    struct ly_buf out;
    char sha[65];

    (void)state;
    swap_to_s2(ep);
    s_client_run(ep, swap_to_s1, sha, &out);
    assert_string_equal(sha, S2.sha); /* accepted before the swap: the old identity */
    assert_non_null(memmem(out.data, out.len, "HTTP/1.1 200 OK", 15));
    ly_buf_free(&out);
    assert_string_equal(fed_endpoint_cert_sha256(ep), S1.sha);
    s_client_run(ep, NULL, sha, &out);
    assert_string_equal(sha, S1.sha);
    ly_buf_free(&out);
    assert_int_equal(fed_endpoint_served(ep), 2);
    endpoint_free(ep);
}

/* openssl req: a self-signed certificate for localhost with a key of `alg` in name.{crt,key}. */
static void openssl_selfsigned(const char *name, const char *const *alg)
{
    char crt[160], key[160], base[64];
    const char *argv[24];
    int n = 0;

    (void)snprintf(base, sizeof(base), "%s.crt", name);
    path_of(crt, sizeof(crt), base);
    (void)snprintf(base, sizeof(base), "%s.key", name);
    path_of(key, sizeof(key), base);
    argv[n++] = "openssl";
    argv[n++] = "req";
    argv[n++] = "-x509";
    for (size_t i = 0; alg[i] != NULL; i++) {
        argv[n++] = alg[i];
    }
    argv[n++] = "-nodes";
    argv[n++] = "-keyout";
    argv[n++] = key;
    argv[n++] = "-out";
    argv[n++] = crt;
    argv[n++] = "-subj";
    argv[n++] = "/CN=localhost";
    argv[n++] = "-addext";
    argv[n++] = "subjectAltName=DNS:localhost";
    argv[n++] = "-days";
    argv[n++] = "1";
    argv[n] = NULL;
    {
        pid_t pid = spawn(argv, NULL, "openssl.out", "openssl.err");
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

static void test_pem_identities(void **state)
{
    struct ly_error err = {0};
    struct fed_endpoint *ep = endpoint(0, 1);
    struct curl_result r;
    struct ly_buf rc1, rk1, rc2, rk2, ec1, ek1, ec2, ek2;
    static const char *const rsa[] = {"-newkey", "rsa:2048", NULL};
    static const char *const p384[] = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384",
                                       NULL};
    static const char *const tls12[] = {"--tlsv1.2", "--tls-max", "1.2", NULL};
    char path[160];

    (void)state;
    /* Ed25519, minted by lanyard, from PEM. */
    assert_int_equal(fed_endpoint_set_identity_pem(ep, ED.chain_pem.data, ED.chain_pem.len,
                                                   ED.key_pem.data, ED.key_pem.len, &err),
                     0);
    assert_string_equal(fed_endpoint_cert_sha256(ep), ED.sha);
    curl_run(ep, "/", ca_pem_path, NULL, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 200);
    assert_memory_equal(r.body.data, "{\"keys\":[],\"spiffe_sequence\":1}", r.body.len);
    ly_buf_free(&r.body);

    /* RSA and P-384 from the openssl tool, as an operator's web certificate would be. */
    openssl_selfsigned("rsa1", rsa);
    openssl_selfsigned("rsa2", rsa);
    openssl_selfsigned("p384a", p384);
    openssl_selfsigned("p384b", p384);
    file_get("rsa1.crt", &rc1);
    file_get("rsa1.key", &rk1);
    file_get("rsa2.crt", &rc2);
    file_get("rsa2.key", &rk2);
    file_get("p384a.crt", &ec1);
    file_get("p384a.key", &ek1);
    file_get("p384b.crt", &ec2);
    file_get("p384b.key", &ek2);
    assert_int_equal(fed_endpoint_set_identity_pem(ep, rc1.data, rc1.len, rk2.data, rk2.len, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, FED_ENDPOINT_R_KEY_MISMATCH);
    assert_int_equal(fed_endpoint_set_identity_pem(ep, ec1.data, ec1.len, ek2.data, ek2.len, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, FED_ENDPOINT_R_KEY_MISMATCH);
    assert_int_equal(fed_endpoint_set_identity_pem(ep, rc1.data, rc1.len, ek1.data, ek1.len, &err),
                     LY_ERR_VERIFY);
    assert_string_equal(fed_endpoint_cert_sha256(ep), ED.sha); /* unchanged */

    assert_int_equal(fed_endpoint_set_identity_pem(ep, rc1.data, rc1.len, rk1.data, rk1.len, &err),
                     0);
    path_of(path, sizeof(path), "rsa1.crt");
    curl_run(ep, "/", path, tls12, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.code, 200);
    ly_buf_free(&r.body);
    curl_run(ep, "/", path, NULL, &r);
    assert_int_equal(r.code, 200);
    ly_buf_free(&r.body);

    assert_int_equal(fed_endpoint_set_identity_pem(ep, ec1.data, ec1.len, ek1.data, ek1.len, &err),
                     0);
    path_of(path, sizeof(path), "p384a.crt");
    curl_run(ep, "/", path, tls12, &r);
    assert_int_equal(r.code, 200);
    ly_buf_free(&r.body);

    /* Not PEM, or no key at all. */
    assert_int_equal(
        fed_endpoint_set_identity_pem(ep, S1.chain.data, S1.chain.len, rk1.data, rk1.len, &err),
        LY_ERR_PARSE);
    assert_int_equal(err.reason, FED_ENDPOINT_R_BAD_CERT);
    assert_int_equal(fed_endpoint_set_identity_pem(ep, rc1.data, rc1.len, rc1.data, rc1.len, &err),
                     LY_ERR_PARSE);
    assert_int_equal(err.reason, FED_ENDPOINT_R_BAD_KEY);
    ly_buf_free(&rc1);
    ly_buf_free(&rk1);
    ly_buf_free(&rc2);
    ly_buf_free(&rk2);
    ly_buf_free(&ec1);
    ly_buf_free(&ek1);
    ly_buf_free(&ec2);
    ly_buf_free(&ek2);
    endpoint_free(ep);
}

static void test_identity_refused(void **state)
{
    struct ly_error err = {0};
    struct fed_endpoint *ep = endpoint(1, 1);
    static const uint8_t junk[] = "not a certificate";

    (void)state;
    /* S1's chain with S2's key: both P-256, the case this wolfSSL's own check lets through. */
    assert_int_equal(
        fed_endpoint_set_identity(ep, S1.chain.data, S1.chain.len, S2.key.data, S2.key.len, &err),
        LY_ERR_VERIFY);
    assert_int_equal(err.reason, FED_ENDPOINT_R_KEY_MISMATCH);
    assert_int_equal(fed_endpoint_set_identity_pem(ep, S1.chain_pem.data, S1.chain_pem.len,
                                                   S2.key_pem.data, S2.key_pem.len, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, FED_ENDPOINT_R_KEY_MISMATCH);
    assert_int_equal(
        fed_endpoint_set_identity(ep, S1.chain.data, S1.chain.len, ED.key.data, ED.key.len, &err),
        LY_ERR_VERIFY);
    assert_int_equal(
        fed_endpoint_set_identity(ep, junk, sizeof(junk), S1.key.data, S1.key.len, &err),
        LY_ERR_PARSE);
    assert_int_equal(err.reason, FED_ENDPOINT_R_BAD_CERT);
    assert_int_equal(
        fed_endpoint_set_identity(ep, S1.chain.data, S1.chain.len, junk, sizeof(junk), &err),
        LY_ERR_PARSE);
    assert_int_equal(err.reason, FED_ENDPOINT_R_BAD_KEY);
    assert_int_equal(fed_endpoint_set_identity(ep, S1.chain.data, 0, S1.key.data, S1.key.len, &err),
                     LY_ERR_USAGE);
    assert_int_equal(fed_endpoint_set_identity(ep, S1.chain.data, FED_ENDPOINT_MAX_IDENTITY + 1,
                                               S1.key.data, S1.key.len, &err),
                     LY_ERR_USAGE);
    assert_string_equal(fed_endpoint_cert_sha256(ep), S1.sha);
    /* The PEM of lanyard's own SVID works too. */
    assert_int_equal(fed_endpoint_set_identity_pem(ep, S2.chain_pem.data, S2.chain_pem.len,
                                                   S2.key_pem.data, S2.key_pem.len, &err),
                     0);
    assert_string_equal(fed_endpoint_cert_sha256(ep), S2.sha);
    endpoint_free(ep);
}

static int peer_closed(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char b;

    if (poll(&p, 1, 2000) != 1) {
        return 0;
    }
    return recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

static void test_no_identity_and_bad_args(void **state)
{
    struct ly_error err = {0};
    struct fed_endpoint *ep = endpoint(0, 1);
    struct fed_endpoint *other = NULL;
    struct fed_endpoint_hooks nohook = {.arg = NULL, .watch = NULL};
    int fd;

    (void)state;
    fd = tcp_connect(fed_endpoint_port(ep));
    drive(ep, 100);
    assert_true(peer_closed(fd));
    assert_int_equal(fed_endpoint_conns(ep), 0);
    (void)close(fd);

    assert_int_equal(fed_endpoint_new(&hooks, "example.org", 0, &other, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, FED_ENDPOINT_R_ADDRESS);
    assert_int_equal(fed_endpoint_new(&hooks, "127.0.0.1", 70000, &other, &err), LY_ERR_USAGE);
    assert_int_equal(fed_endpoint_new(&nohook, "127.0.0.1", 0, &other, &err), LY_ERR_USAGE);
    /* The port is taken. */
    assert_int_equal(fed_endpoint_new(&hooks, "localhost", fed_endpoint_port(ep), &other, &err),
                     LY_ERR_IO);
    assert_int_equal(err.reason, FED_ENDPOINT_R_LISTEN);
    assert_null(other);
    endpoint_free(ep);
    fed_endpoint_free(NULL);
}

static void test_timeout(void **state)
{
    struct fed_endpoint *ep = endpoint(1, 1);
    int a, b;

    (void)state;
    a = tcp_connect(fed_endpoint_port(ep));
    drive_until_conns(ep, 1);
    fed_endpoint_tick(ep, 1000); /* stamps a */
    b = tcp_connect(fed_endpoint_port(ep));
    drive_until_conns(ep, 2);
    fed_endpoint_tick(ep, 1500); /* stamps b */
    fed_endpoint_tick(ep, 1000 + FED_ENDPOINT_TIMEOUT_MS - 1);
    assert_int_equal(fed_endpoint_conns(ep), 2);
    fed_endpoint_tick(ep, 1000 + FED_ENDPOINT_TIMEOUT_MS);
    assert_int_equal(fed_endpoint_conns(ep), 1);
    assert_true(peer_closed(a));
    fed_endpoint_tick(ep, 1500 + FED_ENDPOINT_TIMEOUT_MS);
    assert_int_equal(fed_endpoint_conns(ep), 0);
    assert_true(peer_closed(b));
    assert_int_equal(watched(), 1); /* the listener only */
    (void)close(a);
    (void)close(b);
    endpoint_free(ep);
}

static void test_too_many_and_free(void **state)
{
    static int fds[FED_ENDPOINT_MAX_CONNS + 1];
    struct fed_endpoint *ep = endpoint(1, 1);
    struct tcli *c;
    int extra;

    (void)state;
    for (int i = 0; i < FED_ENDPOINT_MAX_CONNS; i++) {
        fds[i] = tcp_connect(fed_endpoint_port(ep));
        drive_until_conns(ep, (size_t)i + 1);
    }
    extra = tcp_connect(fed_endpoint_port(ep));
    drive(ep, 50);
    assert_true(peer_closed(extra));
    (void)close(extra);
    assert_int_equal(fed_endpoint_conns(ep), FED_ENDPOINT_MAX_CONNS);
    /* One leaves: its slot is free again. */
    (void)close(fds[0]);
    drive_until_conns(ep, FED_ENDPOINT_MAX_CONNS - 1);
    fds[0] = tcp_connect(fed_endpoint_port(ep));
    drive_until_conns(ep, FED_ENDPOINT_MAX_CONNS);
    /* Make room for one that gets past its handshake, then free with everything open. */
    (void)close(fds[1]);
    drive_until_conns(ep, FED_ENDPOINT_MAX_CONNS - 1);
    c = tcli_new(ep, "GET / HTTP/1.1\r\nHost: localhost\r\n", 0); /* head never ends */
    for (int i = 0; i < 200 && c->state < 2; i++) {
        tcli_step(c);
        drive(ep, 2);
    }
    assert_int_equal(c->state, 2);
    endpoint_free(ep);
    tcli_step(c);
    assert_int_equal(c->state, 3); /* close_notify or EOF, and no answer */
    assert_int_equal(c->resp_len, 0);
    tcli_free(c);
    for (int i = 0; i < FED_ENDPOINT_MAX_CONNS; i++) {
        if (i != 1) {
            assert_true(peer_closed(fds[i]));
            (void)close(fds[i]);
        }
    }
}

static void test_hook_refuses(void **state)
{
    struct ly_error err = {0};
    struct fed_endpoint *ep = endpoint(1, 1);
    struct fed_endpoint *other = NULL;
    int fd;

    (void)state;
    /* The hook cannot watch the next connection: it is dropped, not leaked. */
    fd = tcp_connect(fed_endpoint_port(ep));
    L.refuse_fd = socket(AF_INET, SOCK_STREAM, 0); /* the lowest free number: accept's next */
    assert_true(L.refuse_fd >= 0);
    (void)close(L.refuse_fd);
    drive(ep, 100);
    assert_int_equal(fed_endpoint_conns(ep), 0);
    assert_true(peer_closed(fd));
    (void)close(fd);
    L.refuse_fd = -1;
    endpoint_free(ep);

    /* A listener the hook refuses: no endpoint. */
    memset(&L, 0, sizeof(L));
    L.refuse_fd = -1;
    {
        struct fed_endpoint_hooks h = {.arg = &L, .watch = t_watch};
        int probe = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(probe >= 0);
        L.refuse_fd = probe; /* the next socket gets this number */
        (void)close(probe);
        assert_int_equal(fed_endpoint_new(&h, "127.0.0.1", 0, &other, &err), LY_ERR_IO);
        assert_int_equal(err.reason, FED_ENDPOINT_R_HOOK);
        assert_null(other);
    }
}

static void test_out_of_descriptors(void **state)
{
    struct fed_endpoint *ep = endpoint(1, 1);
    struct rlimit old, low;
    int lfd = -1;
    int fd, fd2, probe;
    int64_t end;

    (void)state;
    for (int i = 0; i <= L.maxfd; i++) {
        if (L.mask[i] != 0) {
            lfd = i;
        }
    }
    assert_true(lfd >= 0);
    fd = tcp_connect(fed_endpoint_port(ep)); /* queued: the kernel finished the TCP handshake */
    probe = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(probe >= 0);
    (void)close(probe);
    /* No descriptor from the lowest free one up: accept fails with EMFILE. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)probe;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
        (void)close(fd);
        endpoint_free(ep);
        skip();
    }
    fed_endpoint_io(ep, lfd, FED_IO_READ);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(L.mask[lfd], 0); /* unwatched, so the loop does not spin on it */
    assert_int_equal(fed_endpoint_conns(ep), 0);
    fed_endpoint_tick(ep, 1);
    assert_int_equal(L.mask[lfd], FED_IO_READ);
    /* Accepting again. (Under valgrind, whose descriptor limit is its own, the queued
     * connection was closed by valgrind itself: only the new one is then accepted.) */
    fd2 = tcp_connect(fed_endpoint_port(ep));
    end = ms_now() + T_DEADLINE_MS;
    while (fed_endpoint_conns(ep) == 0 && ms_now() < end) {
        drive(ep, 5);
    }
    assert_true(fed_endpoint_conns(ep) >= 1);
    (void)close(fd);
    (void)close(fd2);
    drive_until_conns(ep, 0);
    endpoint_free(ep);
}

/* ---- setup ------------------------------------------------------------------------------- */

static int setup(void **state)
{
    struct ly_error err = {0};
    struct ly_buf pem;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    (void)snprintf(dir, sizeof(dir), "/tmp/ly-endpoint-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    if (svid_key_generate(SVID_KEY_EC_P256, &ca_key, &err) != 0 ||
        x509svid_ca_create(ca_key, "endpoint.test", ly_time_now(), 86400, &ca_cert, &err) != 0 ||
        x509svid_ca_new(ca_cert.data, ca_cert.len, ca_key, &ca, &err) != 0) {
        return -1;
    }
    cred_make(&S1, SVID_KEY_EC_P256, "spiffe://endpoint.test/bundle");
    cred_make(&S2, SVID_KEY_EC_P256, "spiffe://endpoint.test/bundle");
    cred_make(&ED, SVID_KEY_ED25519, "spiffe://endpoint.test/bundle-ed");
    ly_buf_init(&pem, 1u << 16);
    if (ly_pem_append(&pem, "CERTIFICATE", ca_cert.data, ca_cert.len, &err) != 0) {
        return -1;
    }
    file_put("ca.pem", pem.data, pem.len);
    ly_buf_free(&pem);
    path_of(ca_pem_path, sizeof(ca_pem_path), "ca.pem");
    return 0;
}

static int teardown(void **state)
{
    static const char *const names[] = {
        "ca.pem",       "curl.body",   "curl.out",    "curl.err",  "req.txt",   "s_client.out",
        "s_client.err", "openssl.out", "openssl.err", "rsa1.crt",  "rsa1.key",  "rsa2.crt",
        "rsa2.key",     "p384a.crt",   "p384a.key",   "p384b.crt", "p384b.key",
    };
    char p[160];

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        path_of(p, sizeof(p), names[i]);
        (void)unlink(p); /* some were never made */
    }
    (void)rmdir(dir);
    cred_free(&S1);
    cred_free(&S2);
    cred_free(&ED);
    x509svid_ca_free(ca);
    ly_buf_free(&ca_cert);
    svid_key_free(ca_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_answer_build),
        cmocka_unit_test(test_get_head_and_errors),
        cmocka_unit_test(test_large_bundle),
        cmocka_unit_test(test_garbage_and_tiny_writes),
        cmocka_unit_test(test_identity_swap),
        cmocka_unit_test(test_identity_swap_outside_client),
        cmocka_unit_test(test_pem_identities),
        cmocka_unit_test(test_identity_refused),
        cmocka_unit_test(test_no_identity_and_bad_args),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_too_many_and_free),
        cmocka_unit_test(test_hook_refuses),
        cmocka_unit_test(test_out_of_descriptors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
