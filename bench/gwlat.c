/*
 * gwlat: the latency `lanyard gateway` adds to one MCP request on a kept-alive connection, for
 * bench/gateway.sh. It runs a minimal HTTP/1.1 upstream itself (a fixed JSON-RPC answer, so the
 * upstream costs the same in both paths), then times the same tools/call request sent directly
 * to that upstream over plain HTTP and sent through the gateway over mutual TLS with a bearer
 * token, in alternating blocks so outside load hits both alike. Added latency is reported per
 * percentile (through the gateway minus direct).
 *
 * Usage: gwlat --upstream-port PORT --gateway HOST:PORT --server-id ID --cert PEM --key PEM
 *              --bundle PEM --token FILE [--n N]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../broker/gateway.h"
#include "../broker/gwhttp.h"
#include "../broker/gwtls.h"
#include "../common/ly_file.h"
#include "../svid/key.h"
#include "../svid/x509svid.h"
#include "../trust-bundles/bundle.h"

#define BLOCK 500
#define WARMUP 300

#define ANSWER_BODY                                                                             \
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}"
#define ANSWER_BODY_LEN "75"
_Static_assert(sizeof(ANSWER_BODY) - 1 == 75, "ANSWER_BODY_LEN must be the body's length");
static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: " ANSWER_BODY_LEN "\r\n\r\n" ANSWER_BODY;

static double mono_us(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

/* ---- the upstream ---------------------------------------------------------------------------- */

static void *up_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static __thread struct gwhttp_msg m;
    char buf[16384];
    size_t have = 0, off = 0;

    gwhttp_init(&m, HTTP_REQUEST, 1, 1u << 20, NULL, NULL, NULL);
    for (;;) {
        size_t used = 0;
        if (off == have) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0) {
                break;
            }
            have = (size_t)n;
            off = 0;
        }
        if (gwhttp_feed(&m, buf + off, have - off, &used) < 0) {
            break;
        }
        off += used;
        if (m.done) {
            if (send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL) < 0) {
                break;
            }
            gwhttp_next(&m);
        }
    }
    gwhttp_free(&m);
    (void)close(fd);
    return NULL;
}

static void *up_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        int one = 1;
        pthread_t th;
        if (fd < 0) {
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (pthread_create(&th, NULL, up_conn, (void *)(intptr_t)fd) != 0) {
            (void)close(fd);
            continue;
        }
        (void)pthread_detach(th);
    }
    return NULL;
}

static int tcp_to(const char *host, int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0) {
            (void)close(fd);
        }
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* ---- one client -------------------------------------------------------------------------------- */

struct client {
    struct gwtls_conn *io;
    struct gwhttp_msg resp;
    char buf[16384];
    size_t have, off;
    struct ly_buf req;
};

static int roundtrip(struct client *c, struct ly_error *err)
{
    if (gwtls_write_all(c->io, c->req.data, c->req.len, err) < 0) {
        return -1;
    }
    gwhttp_next(&c->resp);
    while (!c->resp.done) {
        size_t used = 0;
        if (c->off == c->have) {
            long n = gwtls_read(c->io, c->buf, sizeof(c->buf), err);
            if (n <= 0) {
                return -1;
            }
            c->have = (size_t)n;
            c->off = 0;
        }
        if (gwhttp_feed(&c->resp, c->buf + c->off, c->have - c->off, &used) < 0) {
            *err = c->resp.err;
            return -1;
        }
        c->off += used;
    }
    if (c->resp.status != 200) {
        return ly_error_setx(err, LY_ERR_VERIFY, 0, "status %d", c->resp.status);
    }
    return 0;
}

static int build_req(struct client *c, const char *host, const char *token, struct ly_error *e)
{
    static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                               "{\"name\":\"echo\",\"arguments\":{\"message\":\"bench\"}}}";
    ly_buf_init(&c->req, 64 * 1024);
    return ly_buf_appendf(&c->req, e,
                          "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          "Accept: application/json, text/event-stream\r\n%s%s%sContent-Length: "
                          "%zu\r\n\r\n%s",
                          host, token != NULL ? "Authorization: Bearer " : "",
                          token != NULL ? token : "", token != NULL ? "\r\n" : "",
                          sizeof(body) - 1, body);
}

static struct gwtls *client_tls(const char *cert, const char *key, const char *bundle,
                                struct ly_error *e)
{
    struct ly_buf cb, kb, bb, chain, pk;
    struct x509svid_chain *ch = NULL, *bch = NULL;
    struct svid_key *k = NULL;
    struct bundle_set *set = NULL;
    struct bundle *b = NULL;
    struct gwtls *t = NULL;
    struct x509svid_info info;
    char td[SPIFFEID_TD_MAX_LEN + 1];

    ly_buf_init(&chain, 1u << 20);
    if (ly_file_read(cert, 1u << 20, 0, &cb, e) < 0 || ly_file_read(key, 1u << 16, 1, &kb, e) < 0 ||
        ly_file_read(bundle, 1u << 20, 0, &bb, e) < 0 ||
        x509svid_chain_parse(cb.data, cb.len, &ch, e) < 0 ||
        x509svid_chain_parse(bb.data, bb.len, &bch, e) < 0 ||
        svid_key_parse(kb.data, kb.len, &k, e) < 0 || svid_key_to_pkcs8_der(k, &pk, e) < 0) {
        return NULL;
    }
    for (size_t i = 0; i < x509svid_chain_count(ch); i++) {
        size_t n;
        const uint8_t *d = x509svid_chain_cert(ch, i, &n);
        if (ly_buf_append(&chain, d, n, e) < 0) {
            return NULL;
        }
    }
    {
        size_t n;
        const uint8_t *d = x509svid_chain_cert(ch, 0, &n);
        if (x509svid_cert_info(d, n, &info, e) < 0 || !info.has_id ||
            spiffeid_td_copy(&info.id, td, sizeof(td)) < 0) {
            return NULL;
        }
    }
    if (bundle_set_new(&set, e) < 0 || bundle_new(td, &b, e) < 0) {
        return NULL;
    }
    for (size_t i = 0; i < x509svid_chain_count(bch); i++) {
        size_t n;
        const uint8_t *d = x509svid_chain_cert(bch, i, &n);
        if (bundle_add_x509_authority(b, d, n, e) < 0) {
            return NULL;
        }
    }
    if (bundle_set_put(set, b, e) < 0 || gwtls_new(GWTLS_CLIENT, &t, e) < 0 ||
        gwtls_set_identity(t, info.id.str, chain.data, chain.len, pk.data, pk.len, set, e) < 0) {
        return NULL;
    }
    return t;
}

int main(int argc, char **argv)
{
    const char *gw = NULL, *server_id = NULL, *cert = NULL, *key = NULL, *bundle = NULL,
               *token_file = NULL;
    int up_port = 0;
    long n = 20000;
    struct ly_error e;
    struct ly_buf tok;
    char gh[256], gp[16];
    int lfd;
    struct sockaddr_in a;
    pthread_t th;
    struct gwtls *t;
    struct spiffeid sid;
    static struct client direct, via;
    double *d_rtt, *g_rtt;
    long nd = 0, ng = 0;
    int one = 1;

    signal(SIGPIPE, SIG_IGN);
    ly_error_clear(&e);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--upstream-port") == 0) {
            up_port = (int)strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--gateway") == 0) {
            gw = argv[i + 1];
        } else if (strcmp(argv[i], "--server-id") == 0) {
            server_id = argv[i + 1];
        } else if (strcmp(argv[i], "--cert") == 0) {
            cert = argv[i + 1];
        } else if (strcmp(argv[i], "--key") == 0) {
            key = argv[i + 1];
        } else if (strcmp(argv[i], "--bundle") == 0) {
            bundle = argv[i + 1];
        } else if (strcmp(argv[i], "--token") == 0) {
            token_file = argv[i + 1];
        } else if (strcmp(argv[i], "--n") == 0) {
            n = strtol(argv[i + 1], NULL, 10);
        }
    }
    if (up_port <= 0 || gw == NULL || server_id == NULL || cert == NULL || key == NULL ||
        bundle == NULL || token_file == NULL || n < BLOCK) {
        fprintf(stderr, "usage: gwlat --upstream-port PORT --gateway HOST:PORT --server-id ID "
                        "--cert PEM --key PEM --bundle PEM --token FILE [--n N]\n");
        return 2;
    }
    /* The upstream first: the gateway connects to it on the first request. */
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)up_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 64) != 0 ||
        pthread_create(&th, NULL, up_main, (void *)(intptr_t)lfd) != 0) {
        fprintf(stderr, "gwlat: cannot listen on 127.0.0.1:%d: %s\n", up_port, strerror(errno));
        return 1;
    }
    if (ly_file_read(token_file, 16384, 1, &tok, &e) < 0) {
        fprintf(stderr, "gwlat: %s\n", e.msg);
        return 1;
    }
    while (tok.len > 0 && (tok.data[tok.len - 1] == '\n' || tok.data[tok.len - 1] == '\r')) {
        tok.data[--tok.len] = '\0';
    }
    if (gateway_parse_listen(gw, gh, sizeof(gh), gp, sizeof(gp), &e) < 0 ||
        spiffeid_parse(server_id, strlen(server_id), &sid, &e) < 0) {
        fprintf(stderr, "gwlat: %s\n", e.msg);
        return 2;
    }
    t = client_tls(cert, key, bundle, &e);
    if (t == NULL) {
        fprintf(stderr, "gwlat: client identity: %s\n", e.msg);
        return 1;
    }
    gwtls_thread_warmup();
    {
        int fd = tcp_to("127.0.0.1", up_port);
        if (fd < 0 || gwtls_conn_plain(fd, &direct.io, &e) < 0) {
            fprintf(stderr, "gwlat: upstream: %s\n", strerror(errno));
            return 1;
        }
        fd = tcp_to(gh, (int)strtol(gp, NULL, 10));
        if (fd < 0 || gwtls_connect(t, fd, NULL, &sid, 10000, &via.io, &e) < 0) {
            fprintf(stderr, "gwlat: gateway: %s\n", fd < 0 ? strerror(errno) : e.msg);
            return 1;
        }
    }
    if (build_req(&direct, "127.0.0.1", NULL, &e) < 0 ||
        build_req(&via, gw, (const char *)tok.data, &e) < 0) {
        return 1;
    }
    gwhttp_init(&direct.resp, HTTP_RESPONSE, 0, 0, NULL, NULL, NULL);
    gwhttp_init(&via.resp, HTTP_RESPONSE, 0, 0, NULL, NULL, NULL);
    for (int i = 0; i < WARMUP; i++) {
        if (roundtrip(&direct, &e) < 0 || roundtrip(&via, &e) < 0) {
            fprintf(stderr, "gwlat: warm-up request failed: %s\n", e.msg);
            return 1;
        }
    }
    d_rtt = calloc((size_t)n, sizeof(double));
    g_rtt = calloc((size_t)n, sizeof(double));
    if (d_rtt == NULL || g_rtt == NULL) {
        return 1;
    }
    while (nd < n) {
        for (int i = 0; i < BLOCK && nd < n; i++) {
            double t0 = mono_us();
            if (roundtrip(&direct, &e) < 0) {
                fprintf(stderr, "gwlat: direct request failed: %s\n", e.msg);
                return 1;
            }
            d_rtt[nd++] = mono_us() - t0;
        }
        for (int i = 0; i < BLOCK && ng < n; i++) {
            double t0 = mono_us();
            if (roundtrip(&via, &e) < 0) {
                fprintf(stderr, "gwlat: request through the gateway failed: %s\n", e.msg);
                return 1;
            }
            g_rtt[ng++] = mono_us() - t0;
        }
    }
    qsort(d_rtt, (size_t)nd, sizeof(double), cmp_dbl);
    qsort(g_rtt, (size_t)ng, sizeof(double), cmp_dbl);
    printf("request round trip, direct to the upstream (plain HTTP, kept alive): p50 %.0f us, "
           "p99 %.0f us (%ld requests)\n",
           pct(d_rtt, (size_t)nd, 0.50), pct(d_rtt, (size_t)nd, 0.99), nd);
    printf("request round trip through lanyard gateway (mTLS, token, consent, audit): p50 %.0f "
           "us, p99 %.0f us (%ld requests)\n",
           pct(g_rtt, (size_t)ng, 0.50), pct(g_rtt, (size_t)ng, 0.99), ng);
    printf("latency added by the gateway: p50 %.0f us (target < 100), p99 %.0f us (target < "
           "500)\n",
           pct(g_rtt, (size_t)ng, 0.50) - pct(d_rtt, (size_t)nd, 0.50),
           pct(g_rtt, (size_t)ng, 0.99) - pct(d_rtt, (size_t)nd, 0.99));
    gwtls_close(via.io);
    gwtls_close(direct.io);
    gwtls_free(t);
    ly_buf_free(&tok);
    return 0;
}
