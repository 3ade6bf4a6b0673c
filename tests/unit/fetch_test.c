/*
 * fetch_test: the bundle endpoint fetcher against real HTTPS servers on loopback: a wolfSSL
 * server thread presenting an X509-SVID minted in-process, a socket that listens and never
 * answers, and one that refuses connections. It checks both ways of driving the fetcher (the
 * loop's hooks, with a small poll() loop, and fed_fetch_run), both authentication profiles,
 * every failure's reason and message, the body cap, cancellation, re-entrant callbacks and
 * freeing with transfers in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "../../common/ly_b64.h"
#include "../../common/ly_time.h"
#include "../../federation/fetch.h"
#include "../../svid/key.h"
#include "../../svid/spiffeid.h"
#include "../../svid/x509svid.h"
#include "../../trust-bundles/bundle.h"

#define TD_A "fed-a.test"
#define TD_B "fed-b.test"
#define ENDPOINT_ID "spiffe://fed-a.test/bundle-endpoint"
#define BUNDLE_BODY "{\"keys\":[],\"spiffe_sequence\":7}"

/* ---- fixtures: two trust domains, the endpoint's SVID, three loopback sockets --------------- */

struct fixture {
    struct svid_key *key_a, *key_b, *leaf_key;
    struct ly_buf ca_a, ca_b, leaf; /* DER */
    struct ly_buf leaf_key_der;     /* PKCS#8 */
    struct ly_buf chain_pem;        /* leaf then CA A: what the server presents */
    struct ly_buf want_chain;       /* the same as concatenated DER */
    struct ly_buf ca_a_pem, ca_b_pem;
    WOLFSSL_CTX *ctx;
    int tls_fd, tls_port;
    int silent_fd, silent_port;   /* listens, never accepts: the TLS handshake never starts */
    int refused_fd, refused_port; /* bound, not listening: connections are refused */
    pthread_t th;
    atomic_int stop;
};

static struct fixture T;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int loopback_socket(int do_listen, int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (do_listen) {
        assert_int_equal(listen(fd, 64), 0);
    }
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- the HTTPS server: one connection at a time, fixed answers by path ---------------------- */

static uint8_t filler[16384];

static int send_all(WOLFSSL *ssl, const void *p, size_t len)
{
    const uint8_t *b = p;

    while (len > 0) {
        int chunk = len > sizeof(filler) ? (int)sizeof(filler) : (int)len;
        int n = wolfSSL_write(ssl, b, chunk);
        if (n <= 0) {
            return -1; /* the client gave up (body cap, cancel): expected in several tests */
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

static void send_filler(WOLFSSL *ssl, size_t len)
{
    while (len > 0) {
        size_t chunk = len > sizeof(filler) ? sizeof(filler) : len;
        if (send_all(ssl, filler, chunk) != 0) {
            return;
        }
        len -= chunk;
    }
}

static void answer(WOLFSSL *ssl, const char *req, size_t req_len)
{
    char head[512];
    char path[128] = "";
    const char *sp;
    int n = -1;

    if (strncmp(req, "GET ", 4) == 0 && (sp = strchr(req + 4, ' ')) != NULL &&
        (size_t)(sp - (req + 4)) < sizeof(path)) {
        memcpy(path, req + 4, (size_t)(sp - (req + 4)));
        path[sp - (req + 4)] = '\0';
    }
    if (strcmp(path, "/bundle") == 0) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(BUNDLE_BODY), BUNDLE_BODY);
    } else if (strcmp(path, "/headers") == 0) {
        /* Echo the request so the test can see what the fetcher sent. */
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     req_len);
        if (n > 0 && send_all(ssl, head, (size_t)n) == 0) {
            (void)send_all(ssl, req, req_len);
        }
        return;
    } else if (strcmp(path, "/redirect") == 0) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 302 Found\r\nLocation: /bundle\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/exact") == 0) {
        /* No Content-Length: only the body callback's cap can stop it. */
        n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        if (n > 0 && send_all(ssl, head, (size_t)n) == 0) {
            send_filler(ssl, FED_FETCH_MAX_BODY + (strcmp(path, "/big") == 0 ? 1 : 0));
        }
        return;
    } else if (strcmp(path, "/big-cl") == 0) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
                     FED_FETCH_MAX_BODY + 1);
        if (n > 0 && send_all(ssl, head, (size_t)n) == 0) {
            send_filler(ssl, FED_FETCH_MAX_BODY + 1);
        }
        return;
    } else {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                     "not found");
    }
    if (n > 0 && (size_t)n < sizeof(head)) {
        (void)send_all(ssl, head, (size_t)n);
    }
}

static void serve_one(int fd)
{
    struct timeval tv = {3, 0};
    char req[4096];
    size_t len = 0;
    WOLFSSL *ssl;

    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ssl = wolfSSL_new(T.ctx);
    if (ssl == NULL) {
        return;
    }
    if (wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS || wolfSSL_accept(ssl) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl); /* the client hung up during the handshake (cancel, free) */
        return;
    }
    while (len < sizeof(req) - 1) {
        int n = wolfSSL_read(ssl, req + len, (int)(sizeof(req) - 1 - len));
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL) {
            answer(ssl, req, len);
            break;
        }
    }
    (void)wolfSSL_shutdown(ssl);
    wolfSSL_free(ssl);
}

static void *server_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&T.stop)) {
        struct pollfd p = {T.tls_fd, POLLIN, 0};
        int c;

        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        c = accept(T.tls_fd, NULL, NULL);
        if (c >= 0) {
            serve_one(c);
            close(c);
        }
    }
    /* wolfSSL keeps ECC tables per thread (FP_ECC); they leak with the thread otherwise. */
    wc_ecc_fp_free();
    return NULL;
}

static void mint_authority(const char *td, struct svid_key **key, struct ly_buf *cert,
                           struct ly_buf *pem)
{
    struct ly_error err = {0};

    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, key, &err), 0);
    assert_int_equal(x509svid_ca_create(*key, td, ly_time_now(), 86400, cert, &err), 0);
    ly_buf_init(pem, 1 << 20);
    assert_int_equal(ly_pem_append(pem, "CERTIFICATE", cert->data, cert->len, &err), 0);
}

static int group_setup(void **state)
{
    struct ly_error err = {0};
    struct x509svid_ca *ca = NULL;
    struct ly_buf spki;
    struct spiffeid sid;
    const char *dns[] = {"localhost"};

    (void)state;
    memset(filler, 'a', sizeof(filler));
    assert_int_equal(wolfSSL_Init(), WOLFSSL_SUCCESS);
    mint_authority(TD_A, &T.key_a, &T.ca_a, &T.ca_a_pem);
    mint_authority(TD_B, &T.key_b, &T.ca_b, &T.ca_b_pem);

    /* The endpoint's SVID: a SPIFFE ID plus the DNS name the https_web tests use. */
    assert_int_equal(x509svid_ca_new(T.ca_a.data, T.ca_a.len, T.key_a, &ca, &err), 0);
    assert_int_equal(spiffeid_parse(ENDPOINT_ID, strlen(ENDPOINT_ID), &sid, &err), 0);
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &T.leaf_key, &err), 0);
    assert_int_equal(svid_key_public_der(T.leaf_key, &spki, &err), 0);
    assert_int_equal(x509svid_mint(ca, &sid, spki.data, spki.len, dns, 1, ly_time_now(), 3600,
                                   &T.leaf, &err),
                     0);
    assert_int_equal(svid_key_to_pkcs8_der(T.leaf_key, &T.leaf_key_der, &err), 0);
    ly_buf_free(&spki);
    x509svid_ca_free(ca);

    ly_buf_init(&T.chain_pem, 1 << 20);
    ly_buf_init(&T.want_chain, 1 << 20);
    assert_int_equal(ly_pem_append(&T.chain_pem, "CERTIFICATE", T.leaf.data, T.leaf.len, &err),
                     0);
    assert_int_equal(ly_pem_append(&T.chain_pem, "CERTIFICATE", T.ca_a.data, T.ca_a.len, &err),
                     0);
    assert_int_equal(ly_buf_append(&T.want_chain, T.leaf.data, T.leaf.len, &err), 0);
    assert_int_equal(ly_buf_append(&T.want_chain, T.ca_a.data, T.ca_a.len, &err), 0);

    T.ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    assert_non_null(T.ctx);
    assert_int_equal(
        wolfSSL_CTX_use_certificate_chain_buffer(T.ctx, T.chain_pem.data, (long)T.chain_pem.len),
        WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_use_PrivateKey_buffer(T.ctx, T.leaf_key_der.data,
                                                       (long)T.leaf_key_der.len,
                                                       WOLFSSL_FILETYPE_ASN1),
                     WOLFSSL_SUCCESS);

    T.tls_fd = loopback_socket(1, &T.tls_port);
    T.silent_fd = loopback_socket(1, &T.silent_port);
    T.refused_fd = loopback_socket(0, &T.refused_port);
    atomic_store(&T.stop, 0);
    assert_int_equal(pthread_create(&T.th, NULL, server_main, NULL), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    atomic_store(&T.stop, 1);
    pthread_join(T.th, NULL);
    close(T.tls_fd);
    close(T.silent_fd);
    close(T.refused_fd);
    wolfSSL_CTX_free(T.ctx);
    ly_buf_free(&T.ca_a);
    ly_buf_free(&T.ca_b);
    ly_buf_free(&T.leaf);
    ly_buf_free(&T.leaf_key_der);
    ly_buf_free(&T.chain_pem);
    ly_buf_free(&T.want_chain);
    ly_buf_free(&T.ca_a_pem);
    ly_buf_free(&T.ca_b_pem);
    svid_key_free(T.key_a);
    svid_key_free(T.key_b);
    svid_key_free(T.leaf_key);
    (void)wolfSSL_Cleanup();
    return 0;
}

/* ---- what a callback saw -------------------------------------------------------------------- */

struct got {
    int calls;
    uint64_t id;
    int ok;
    struct ly_error err;
    long status;
    int body_null;
    struct ly_buf body;
    struct ly_buf chain;
    size_t chain_count;
    long elapsed;
    /* Re-entrancy: what the callback does to the fetcher. */
    struct fed_fetch *f;
    const struct fed_fetch_request *start_req; /* start this from the callback */
    struct got *start_got;
    uint64_t cancel_id; /* cancel this from the callback */
    int free_fetcher;   /* free the fetcher from the callback */
};

static void got_init(struct got *g)
{
    memset(g, 0, sizeof(*g));
    ly_buf_init(&g->body, 2 * FED_FETCH_MAX_BODY);
    ly_buf_init(&g->chain, 1 << 20);
}

static void got_free(struct got *g)
{
    ly_buf_free(&g->body);
    ly_buf_free(&g->chain);
}

static void on_done(void *arg, uint64_t id, const struct fed_fetch_result *r)
{
    struct got *g = arg;
    struct ly_error e = {0};

    g->calls++;
    g->id = id;
    g->ok = r->ok;
    g->err = r->err;
    g->status = r->http_status;
    g->body_null = r->body == NULL;
    g->elapsed = r->elapsed_ms;
    g->chain_count = r->chain_count;
    if (r->body_len > 0) {
        assert_int_equal(ly_buf_append(&g->body, r->body, r->body_len, &e), 0);
    }
    if (r->chain_len > 0) {
        assert_int_equal(ly_buf_append(&g->chain, r->chain_der, r->chain_len, &e), 0);
    }
    if (g->start_req != NULL) {
        assert_int_equal(fed_fetch_start(g->f, g->start_req, on_done, g->start_got, NULL, &e), 0);
    }
    if (g->cancel_id != 0) {
        fed_fetch_cancel(g->f, g->cancel_id);
    }
    if (g->free_fetcher) {
        fed_fetch_free(g->f);
    }
}

static void url_of(char *out, size_t outsz, const char *host, int port, const char *path)
{
    int n = snprintf(out, outsz, "https://%s:%d%s", host, port, path);
    assert_true(n > 0 && (size_t)n < outsz);
}

/* One blocking fetch through fed_fetch_run(). */
static void fetch_one(const char *host, int port, const char *path, enum fed_fetch_auth auth,
                      const struct ly_buf *ca, long timeout_ms, struct got *g)
{
    struct ly_error err = {0};
    struct fed_fetch *f = NULL;
    struct fed_fetch_request req;
    char url[256];
    uint64_t id = 0;

    url_of(url, sizeof(url), host, port, path);
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.auth = auth;
    req.ca_pem = ca != NULL ? ca->data : NULL;
    req.ca_len = ca != NULL ? ca->len : 0;
    req.timeout_ms = timeout_ms;
    got_init(g);
    assert_int_equal(fed_fetch_new(NULL, &f, &err), 0);
    assert_int_equal(fed_fetch_start(f, &req, on_done, g, &id, &err), 0);
    assert_true(id != 0);
    assert_int_equal(fed_fetch_active(f), 1);
    assert_int_equal(fed_fetch_run(f, 20000, &err), 0);
    assert_int_equal(fed_fetch_active(f), 0);
    assert_int_equal(g->calls, 1);
    assert_true(g->id == id);
    fed_fetch_free(f);
}

/* ---- a poll() loop standing in for the daemon's loop ---------------------------------------- */

#define TLOOP_MAX 64

struct tloop {
    int fd[TLOOP_MAX];
    int mask[TLOOP_MAX];
    size_t n;
    int timer_armed;
    uint64_t timer_at;
    int watch_calls;
    int timer_calls;
    int fail_watch;
    struct fed_fetch *f;
};

static int t_watch(void *arg, int fd, int mask)
{
    struct tloop *l = arg;
    size_t i;

    l->watch_calls++;
    for (i = 0; i < l->n && l->fd[i] != fd; i++) {
    }
    if (mask == 0) {
        if (i < l->n) {
            l->fd[i] = l->fd[l->n - 1];
            l->mask[i] = l->mask[l->n - 1];
            l->n--;
        }
        return 0;
    }
    if (l->fail_watch || (i == l->n && l->n == TLOOP_MAX)) {
        return -1;
    }
    if (i == l->n) {
        l->n++;
    }
    l->fd[i] = fd;
    l->mask[i] = mask;
    return 0;
}

static void t_timer(void *arg, long ms)
{
    struct tloop *l = arg;

    l->timer_calls++;
    l->timer_armed = ms >= 0;
    l->timer_at = now_ms() + (ms > 0 ? (uint64_t)ms : 0);
}

static struct fed_fetch *tloop_fetcher(struct tloop *l)
{
    struct ly_error err = {0};
    struct fed_fetch_hooks hooks = {l, t_watch, t_timer};

    memset(l, 0, sizeof(*l));
    hooks.arg = l;
    assert_int_equal(fed_fetch_new(&hooks, &l->f, &err), 0);
    return l->f;
}

/* Run the loop until *counter reaches want or max_ms pass. */
static void tloop_pump(struct tloop *l, const int *counter, int want, long max_ms)
{
    uint64_t end = now_ms() + (uint64_t)max_ms;

    while ((counter == NULL || *counter < want) && now_ms() < end) {
        struct pollfd p[TLOOP_MAX];
        size_t n = l->n, i;
        long wait = 20;

        for (i = 0; i < n; i++) {
            p[i].fd = l->fd[i];
            p[i].events = (short)(((l->mask[i] & FED_IO_READ) ? POLLIN : 0) |
                                  ((l->mask[i] & FED_IO_WRITE) ? POLLOUT : 0));
            p[i].revents = 0;
        }
        if (l->timer_armed) {
            uint64_t now = now_ms();
            long left = l->timer_at > now ? (long)(l->timer_at - now) : 0;
            wait = left < wait ? left : wait;
        }
        assert_true(poll(p, n, (int)wait) >= 0);
        for (i = 0; i < n; i++) {
            int mask = 0;
            if (p[i].revents & POLLIN) {
                mask |= FED_IO_READ;
            }
            if (p[i].revents & POLLOUT) {
                mask |= FED_IO_WRITE;
            }
            if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                mask |= FED_IO_READ | FED_IO_WRITE;
            }
            if (mask != 0) {
                fed_fetch_socket(l->f, p[i].fd, mask);
            }
        }
        if (l->timer_armed && now_ms() >= l->timer_at) {
            l->timer_armed = 0;
            fed_fetch_timeout(l->f);
        }
    }
}

static void req_init(struct fed_fetch_request *req, const char *url, enum fed_fetch_auth auth,
                     const struct ly_buf *ca, long timeout_ms)
{
    memset(req, 0, sizeof(*req));
    req->url = url;
    req->auth = auth;
    req->ca_pem = ca != NULL ? ca->data : NULL;
    req->ca_len = ca != NULL ? ca->len : 0;
    req->timeout_ms = timeout_ms;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* A 200 through the hooks: nothing happens before the loop runs, and every fd is released. */
static void test_hooks_ok(void **state)
{
    struct ly_error err = {0};
    struct tloop l;
    struct fed_fetch *f = tloop_fetcher(&l);
    struct fed_fetch_request req;
    struct got g;
    char url[256];
    uint64_t id = 0;

    (void)state;
    got_init(&g);
    url_of(url, sizeof(url), "localhost", T.tls_port, "/bundle");
    req_init(&req, url, FED_FETCH_WEB, &T.ca_a_pem, 5000);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, &id, &err), 0);
    assert_int_equal(fed_fetch_active(f), 1);
    assert_int_equal(l.watch_calls, 0); /* no I/O before the loop drives it */
    assert_true(l.timer_armed);         /* libcurl asked to be run soon */

    tloop_pump(&l, &g.calls, 1, 5000);
    assert_int_equal(g.calls, 1);
    assert_true(g.id == id);
    if (!g.ok) {
        fail_msg("fetch failed: %s", g.err.msg);
    }
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body.len, strlen(BUNDLE_BODY));
    assert_memory_equal(g.body.data, BUNDLE_BODY, strlen(BUNDLE_BODY));
    assert_int_equal(g.chain.len, 0); /* https_web reports no chain */
    assert_true(g.elapsed >= 0 && g.elapsed < 5000);
    assert_int_equal(fed_fetch_active(f), 0);
    assert_true(l.watch_calls > 0);
    assert_int_equal(l.n, 0); /* the connection is not kept: its socket was unwatched */

    fed_fetch_free(f);
    assert_false(l.timer_armed);
    got_free(&g);
}

/* The same through fed_fetch_run(), and what the fetcher sends. */
static void test_run_ok_and_request_headers(void **state)
{
    struct got g;

    (void)state;
    fetch_one("localhost", T.tls_port, "/bundle", FED_FETCH_WEB, &T.ca_a_pem, 0, &g);
    if (!g.ok) {
        fail_msg("fetch failed: %s", g.err.msg);
    }
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body.len, strlen(BUNDLE_BODY));
    assert_memory_equal(g.body.data, BUNDLE_BODY, strlen(BUNDLE_BODY));
    got_free(&g);

    fetch_one("localhost", T.tls_port, "/headers", FED_FETCH_WEB, &T.ca_a_pem, 0, &g);
    assert_true(g.ok);
    assert_non_null(strstr((const char *)g.body.data, "GET /headers HTTP/1.1\r\n"));
    assert_non_null(strstr((const char *)g.body.data, "\r\nUser-Agent: lanyard\r\n"));
    assert_non_null(strstr((const char *)g.body.data, "\r\nAccept: application/json\r\n"));
    assert_null(strstr((const char *)g.body.data, "Authorization"));
    assert_null(strstr((const char *)g.body.data, "Cookie"));
    got_free(&g);
}

/* https_web: only the given CA is trusted, not the system's and not another domain's. */
static void test_web_untrusted(void **state)
{
    struct got g;

    (void)state;
    fetch_one("localhost", T.tls_port, "/bundle", FED_FETCH_WEB, &T.ca_b_pem, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.err.code, LY_ERR_VERIFY);
    assert_int_equal(g.err.reason, FED_FETCH_R_TLS);
    assert_true(strncmp(g.err.msg, "TLS: ", 5) == 0);
    assert_non_null(strstr(g.err.msg, "certificate"));
    assert_int_equal(g.status, 0);
    assert_true(g.body_null);
    got_free(&g);

    /* The system store does not know lanyard's private CA. */
    fetch_one("localhost", T.tls_port, "/bundle", FED_FETCH_WEB, NULL, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.err.code, LY_ERR_VERIFY);
    assert_int_equal(g.err.reason, FED_FETCH_R_TLS);
    got_free(&g);
}

/* https_web: the right CA but a URL host the certificate does not name. */
static void test_web_host_mismatch(void **state)
{
    struct got g;

    (void)state;
    fetch_one("127.0.0.1", T.tls_port, "/bundle", FED_FETCH_WEB, &T.ca_a_pem, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.err.code, LY_ERR_VERIFY);
    assert_int_equal(g.err.reason, FED_FETCH_R_TLS);
    assert_non_null(strstr(g.err.msg, "127.0.0.1"));
    got_free(&g);
}

/* https_spiffe: the exact chain the server sent, usable by the X509-SVID verifier. */
static void test_peer_chain(void **state)
{
    struct ly_error err = {0};
    struct x509svid_chain *chain = NULL;
    struct bundle_set *set = NULL;
    struct bundle *b = NULL;
    struct spiffeid id;
    struct got g;

    (void)state;
    fetch_one("127.0.0.1", T.tls_port, "/bundle", FED_FETCH_PEER_CHAIN, NULL, 0, &g);
    if (!g.ok) {
        fail_msg("fetch failed: %s", g.err.msg);
    }
    assert_int_equal(g.body.len, strlen(BUNDLE_BODY));
    assert_int_equal(g.chain_count, 2);
    assert_int_equal(g.chain.len, T.want_chain.len);
    assert_memory_equal(g.chain.data, T.want_chain.data, T.want_chain.len);

    /* What the caller must do next: verify it as the expected SVID. */
    assert_int_equal(x509svid_chain_parse(g.chain.data, g.chain.len, &chain, &err), 0);
    assert_int_equal(bundle_set_new(&set, &err), 0);
    assert_int_equal(bundle_new(TD_A, &b, &err), 0);
    assert_int_equal(bundle_add_x509_authority(b, T.ca_a.data, T.ca_a.len, &err), 0);
    assert_int_equal(bundle_set_put(set, b, &err), 0);
    assert_int_equal(x509svid_verify(chain, set, ly_time_now(), &id, &err), 0);
    assert_string_equal(id.str, ENDPOINT_ID);
    bundle_set_free(set);
    x509svid_chain_free(chain);
    got_free(&g);
}

/* Answers other than 200 fail with their status; redirects are not followed. */
static void test_http_status(void **state)
{
    struct got g;

    (void)state;
    fetch_one("localhost", T.tls_port, "/missing", FED_FETCH_WEB, &T.ca_a_pem, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.status, 404);
    assert_int_equal(g.err.code, LY_ERR_IO);
    assert_int_equal(g.err.reason, FED_FETCH_R_HTTP_STATUS);
    assert_string_equal(g.err.msg, "HTTP status 404");
    assert_true(g.body_null);
    got_free(&g);

    fetch_one("127.0.0.1", T.tls_port, "/redirect", FED_FETCH_PEER_CHAIN, NULL, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.status, 302);
    assert_int_equal(g.err.reason, FED_FETCH_R_HTTP_STATUS);
    assert_non_null(strstr(g.err.msg, "302"));
    assert_int_equal(g.chain.len, 0); /* no chain without a usable answer */
    got_free(&g);
}

/* The body cap: one byte over fails (announced or not), exactly the cap passes. */
static void test_body_cap(void **state)
{
    struct got g;

    (void)state;
    fetch_one("127.0.0.1", T.tls_port, "/big", FED_FETCH_PEER_CHAIN, NULL, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.err.code, LY_ERR_PARSE);
    assert_int_equal(g.err.reason, FED_FETCH_R_TOO_BIG);
    assert_non_null(strstr(g.err.msg, "answer larger than 1048576 bytes"));
    assert_true(g.body_null);
    got_free(&g);

    fetch_one("127.0.0.1", T.tls_port, "/big-cl", FED_FETCH_PEER_CHAIN, NULL, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.err.reason, FED_FETCH_R_TOO_BIG);
    assert_non_null(strstr(g.err.msg, "1048576"));
    assert_non_null(strstr(g.err.msg, "Content-Length"));
    got_free(&g);

    fetch_one("127.0.0.1", T.tls_port, "/exact", FED_FETCH_PEER_CHAIN, NULL, 0, &g);
    if (!g.ok) {
        fail_msg("fetch failed: %s", g.err.msg);
    }
    assert_int_equal(g.body.len, FED_FETCH_MAX_BODY);
    assert_int_equal(g.body.data[FED_FETCH_MAX_BODY - 1], 'a');
    got_free(&g);
}

static void test_connection_refused(void **state)
{
    struct got g;

    (void)state;
    fetch_one("127.0.0.1", T.refused_port, "/bundle", FED_FETCH_PEER_CHAIN, NULL, 0, &g);
    assert_false(g.ok);
    assert_int_equal(g.err.code, LY_ERR_IO);
    assert_int_equal(g.err.reason, FED_FETCH_R_CONNECT);
    assert_non_null(strstr(g.err.msg, "Connection refused"));
    assert_int_equal(g.status, 0);
    got_free(&g);
}

/* A server that accepts and never answers: the transfer's timeout, then fed_fetch_run's. */
static void test_timeouts(void **state)
{
    struct ly_error err = {0};
    struct fed_fetch *f = NULL;
    struct fed_fetch_request req;
    struct got g;
    char url[256];
    uint64_t t0;

    (void)state;
    fetch_one("127.0.0.1", T.silent_port, "/bundle", FED_FETCH_PEER_CHAIN, NULL, 400, &g);
    assert_false(g.ok);
    assert_int_equal(g.err.code, LY_ERR_IO);
    assert_int_equal(g.err.reason, FED_FETCH_R_TIMEOUT);
    assert_non_null(strstr(g.err.msg, "timed out after 400 ms"));
    assert_true(g.elapsed >= 390 && g.elapsed < 3000);
    got_free(&g);

    got_init(&g);
    url_of(url, sizeof(url), "127.0.0.1", T.silent_port, "/bundle");
    req_init(&req, url, FED_FETCH_PEER_CHAIN, NULL, 10000);
    assert_int_equal(fed_fetch_new(NULL, &f, &err), 0);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), 0);
    t0 = now_ms();
    assert_int_equal(fed_fetch_run(f, 300, &err), 0);
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(fed_fetch_active(f), 0);
    assert_int_equal(g.calls, 1);
    assert_false(g.ok);
    assert_int_equal(g.err.reason, FED_FETCH_R_TIMEOUT);
    assert_string_equal(g.err.msg, "timed out after 300 ms");
    fed_fetch_free(f);
    got_free(&g);
}

/* Bad requests are refused before libcurl is even asked to do anything. */
static void test_bad_requests(void **state)
{
    struct ly_error err = {0};
    struct tloop l;
    struct fed_fetch *f = tloop_fetcher(&l);
    struct fed_fetch_request req;
    struct got g;
    char longurl[FED_FETCH_MAX_URL + 64];
    char url[256];
    const char *bad_urls[] = {
        "http://localhost/bundle",  "ftp://localhost/bundle", "", "not a url",
        "https://user:pw@localhost/bundle", "https://user@localhost/bundle",
        "file:///etc/passwd",
    };
    size_t i;
    uint64_t id = 99;

    (void)state;
    got_init(&g);
    for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        req_init(&req, bad_urls[i], FED_FETCH_PEER_CHAIN, NULL, 0);
        assert_int_equal(fed_fetch_start(f, &req, on_done, &g, &id, &err), LY_ERR_USAGE);
        assert_int_equal(err.reason, FED_FETCH_R_BAD_REQUEST);
        assert_true(id == 0);
    }
    req_init(&req, "http://localhost/bundle", FED_FETCH_WEB, NULL, 0);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, &id, &err), LY_ERR_USAGE);
    assert_non_null(strstr(err.msg, "https://"));

    memset(longurl, 'a', sizeof(longurl) - 1);
    memcpy(longurl, "https://", 8);
    longurl[sizeof(longurl) - 1] = '\0';
    req_init(&req, longurl, FED_FETCH_WEB, NULL, 0);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), LY_ERR_USAGE);

    url_of(url, sizeof(url), "localhost", T.tls_port, "/bundle");
    req_init(&req, NULL, FED_FETCH_WEB, NULL, 0);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), LY_ERR_USAGE);
    req_init(&req, url, (enum fed_fetch_auth)0, NULL, 0);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), LY_ERR_USAGE);
    req_init(&req, url, FED_FETCH_PEER_CHAIN, &T.ca_a_pem, 0); /* anchors with https_spiffe */
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), LY_ERR_USAGE);
    req_init(&req, url, FED_FETCH_WEB, &T.ca_a_pem, 0);
    req.ca_len = 0;
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), LY_ERR_USAGE);
    req_init(&req, url, FED_FETCH_WEB, NULL, -1);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), LY_ERR_USAGE);
    req_init(&req, url, FED_FETCH_WEB, NULL, 0);
    assert_int_equal(fed_fetch_start(f, &req, NULL, &g, NULL, &err), LY_ERR_USAGE);
    assert_int_equal(fed_fetch_start(NULL, &req, on_done, &g, NULL, &err), LY_ERR_USAGE);
    /* fed_fetch_run is for fetchers without hooks. */
    assert_int_equal(fed_fetch_run(f, 100, &err), LY_ERR_USAGE);

    assert_int_equal(fed_fetch_active(f), 0);
    assert_int_equal(l.watch_calls, 0);
    assert_int_equal(l.timer_calls, 0);
    tloop_pump(&l, NULL, 0, 50);
    assert_int_equal(g.calls, 0);
    fed_fetch_free(f);

    /* Hooks need both functions. */
    {
        struct fed_fetch_hooks half = {NULL, t_watch, NULL};
        assert_int_equal(fed_fetch_new(&half, &f, &err), LY_ERR_USAGE);
        assert_null(f);
    }
    got_free(&g);
}

/* A cancelled transfer never calls back; another one in flight is not disturbed. */
static void test_cancel(void **state)
{
    struct ly_error err = {0};
    struct tloop l;
    struct fed_fetch *f = tloop_fetcher(&l);
    struct fed_fetch_request rs, rb;
    struct got gs, gb;
    char us[256], ub[256];
    uint64_t ids = 0, idb = 0;

    (void)state;
    got_init(&gs);
    got_init(&gb);
    url_of(us, sizeof(us), "127.0.0.1", T.silent_port, "/bundle");
    url_of(ub, sizeof(ub), "localhost", T.tls_port, "/bundle");
    req_init(&rs, us, FED_FETCH_PEER_CHAIN, NULL, 5000);
    req_init(&rb, ub, FED_FETCH_WEB, &T.ca_a_pem, 5000);
    assert_int_equal(fed_fetch_start(f, &rs, on_done, &gs, &ids, &err), 0);
    assert_int_equal(fed_fetch_start(f, &rb, on_done, &gb, &idb, &err), 0);
    assert_true(ids != idb);
    tloop_pump(&l, NULL, 0, 100); /* the silent one is connected and waits for a handshake */
    assert_int_equal(gs.calls, 0);
    fed_fetch_cancel(f, ids);
    fed_fetch_cancel(f, ids);      /* twice: no-op */
    fed_fetch_cancel(f, 0xdead);   /* unknown: no-op */
    tloop_pump(&l, &gb.calls, 1, 5000);
    assert_int_equal(gb.calls, 1);
    assert_true(gb.ok);
    tloop_pump(&l, NULL, 0, 100);
    assert_int_equal(gs.calls, 0);
    assert_int_equal(fed_fetch_active(f), 0);
    assert_int_equal(l.n, 0);
    fed_fetch_free(f);
    got_free(&gs);
    got_free(&gb);
}

/* Two transfers at once, a callback that starts a third, one that cancels another. */
static void test_concurrent_and_reentrant(void **state)
{
    struct ly_error err = {0};
    struct fed_fetch *f = NULL;
    struct fed_fetch_request r1, r3, rs, rm;
    struct got g1, g2, g3, gs, gm;
    char u1[256], u3[256], us[256], um[256];
    uint64_t id1 = 0, id2 = 0, ids = 0;
    uint64_t t0;

    (void)state;
    got_init(&g1);
    got_init(&g2);
    got_init(&g3);
    got_init(&gs);
    got_init(&gm);
    url_of(u1, sizeof(u1), "127.0.0.1", T.tls_port, "/bundle");
    url_of(u3, sizeof(u3), "localhost", T.tls_port, "/bundle");
    req_init(&r1, u1, FED_FETCH_PEER_CHAIN, NULL, 0);
    req_init(&r3, u3, FED_FETCH_WEB, &T.ca_a_pem, 0);
    assert_int_equal(fed_fetch_new(NULL, &f, &err), 0);
    g1.f = f;
    g1.start_req = &r3; /* the first callback starts a third transfer */
    g1.start_got = &g3;
    assert_int_equal(fed_fetch_start(f, &r1, on_done, &g1, &id1, &err), 0);
    assert_int_equal(fed_fetch_start(f, &r1, on_done, &g2, &id2, &err), 0);
    assert_int_equal(fed_fetch_active(f), 2);
    assert_true(id1 != id2);
    assert_int_equal(fed_fetch_run(f, 10000, &err), 0);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g3.calls, 1);
    assert_true(g1.ok && g2.ok && g3.ok);
    assert_true(g3.id != id1 && g3.id != id2);
    /* Each https_spiffe transfer reports the chain of its own handshake. */
    assert_int_equal(g1.chain.len, T.want_chain.len);
    assert_memory_equal(g1.chain.data, T.want_chain.data, T.want_chain.len);
    assert_int_equal(g2.chain.len, T.want_chain.len);
    assert_memory_equal(g2.chain.data, T.want_chain.data, T.want_chain.len);

    /* The 404's callback cancels the transfer that would otherwise wait 8 s for its timeout. */
    url_of(us, sizeof(us), "127.0.0.1", T.silent_port, "/bundle");
    url_of(um, sizeof(um), "127.0.0.1", T.tls_port, "/missing");
    req_init(&rs, us, FED_FETCH_PEER_CHAIN, NULL, 8000);
    req_init(&rm, um, FED_FETCH_PEER_CHAIN, NULL, 0);
    assert_int_equal(fed_fetch_start(f, &rs, on_done, &gs, &ids, &err), 0);
    gm.f = f;
    gm.cancel_id = ids;
    assert_int_equal(fed_fetch_start(f, &rm, on_done, &gm, NULL, &err), 0);
    t0 = now_ms();
    assert_int_equal(fed_fetch_run(f, 10000, &err), 0);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(gm.calls, 1);
    assert_int_equal(gm.status, 404);
    assert_int_equal(gs.calls, 0);
    assert_int_equal(fed_fetch_active(f), 0);
    fed_fetch_free(f);
    got_free(&g1);
    got_free(&g2);
    got_free(&g3);
    got_free(&gs);
    got_free(&gm);
}

/* Freeing with transfers in flight: no callback, every socket unwatched, timer cancelled. */
static void test_free_with_active(void **state)
{
    struct ly_error err = {0};
    struct tloop l;
    struct fed_fetch *f = tloop_fetcher(&l);
    struct fed_fetch_request rs, rb;
    struct got g[3];
    char us[256], ub[256];
    int i;

    (void)state;
    url_of(us, sizeof(us), "127.0.0.1", T.silent_port, "/bundle");
    url_of(ub, sizeof(ub), "localhost", T.tls_port, "/big");
    req_init(&rs, us, FED_FETCH_PEER_CHAIN, NULL, 5000);
    req_init(&rb, ub, FED_FETCH_WEB, &T.ca_a_pem, 5000);
    for (i = 0; i < 3; i++) {
        got_init(&g[i]);
        assert_int_equal(fed_fetch_start(f, i < 2 ? &rs : &rb, on_done, &g[i], NULL, &err), 0);
    }
    tloop_pump(&l, NULL, 0, 150);
    assert_true(fed_fetch_active(f) >= 2);
    assert_true(l.n > 0); /* sockets are open and watched */
    fed_fetch_free(f);
    assert_int_equal(l.n, 0);
    assert_false(l.timer_armed);
    assert_int_equal(g[0].calls, 0);
    assert_int_equal(g[1].calls, 0);
    for (i = 0; i < 3; i++) {
        got_free(&g[i]);
    }
}

/* A callback may free the fetcher: the rest is cancelled and nothing else calls back. */
static void test_free_from_callback(void **state)
{
    struct ly_error err = {0};
    struct fed_fetch *f = NULL;
    struct fed_fetch_request rs, rm;
    struct got gs, gm;
    char us[256], um[256];
    uint64_t t0;

    (void)state;
    got_init(&gs);
    got_init(&gm);
    url_of(us, sizeof(us), "127.0.0.1", T.silent_port, "/bundle");
    url_of(um, sizeof(um), "127.0.0.1", T.tls_port, "/missing");
    req_init(&rs, us, FED_FETCH_PEER_CHAIN, NULL, 8000);
    req_init(&rm, um, FED_FETCH_PEER_CHAIN, NULL, 0);
    assert_int_equal(fed_fetch_new(NULL, &f, &err), 0);
    assert_int_equal(fed_fetch_start(f, &rs, on_done, &gs, NULL, &err), 0);
    gm.f = f;
    gm.free_fetcher = 1;
    assert_int_equal(fed_fetch_start(f, &rm, on_done, &gm, NULL, &err), 0);
    t0 = now_ms();
    assert_int_equal(fed_fetch_run(f, 10000, &err), 0); /* f is gone after this */
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(gm.calls, 1);
    assert_int_equal(gs.calls, 0);
    got_free(&gs);
    got_free(&gm);
}

/* A socket the loop cannot watch fails its transfer at once instead of stalling it. */
static void test_watch_failure(void **state)
{
    struct ly_error err = {0};
    struct tloop l;
    struct fed_fetch *f = tloop_fetcher(&l);
    struct fed_fetch_request req;
    struct got g;
    char url[256];

    (void)state;
    got_init(&g);
    l.fail_watch = 1;
    url_of(url, sizeof(url), "localhost", T.tls_port, "/bundle");
    req_init(&req, url, FED_FETCH_WEB, &T.ca_a_pem, 5000);
    assert_int_equal(fed_fetch_start(f, &req, on_done, &g, NULL, &err), 0);
    tloop_pump(&l, &g.calls, 1, 2000);
    assert_int_equal(g.calls, 1);
    assert_false(g.ok);
    assert_int_equal(g.err.code, LY_ERR_IO);
    assert_int_equal(g.err.reason, FED_FETCH_R_IO);
    assert_non_null(strstr(g.err.msg, "cannot watch socket"));
    assert_true(g.elapsed < 2000);
    assert_int_equal(fed_fetch_active(f), 0);
    fed_fetch_free(f);
    got_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_ok),
        cmocka_unit_test(test_run_ok_and_request_headers),
        cmocka_unit_test(test_web_untrusted),
        cmocka_unit_test(test_web_host_mismatch),
        cmocka_unit_test(test_peer_chain),
        cmocka_unit_test(test_http_status),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_concurrent_and_reentrant),
        cmocka_unit_test(test_free_with_active),
        cmocka_unit_test(test_free_from_callback),
        cmocka_unit_test(test_watch_failure),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
