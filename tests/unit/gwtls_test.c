/*
 * gwtls_test: the gateway's TLS layer over socketpairs with real handshakes. It mints its own
 * trust domains, and checks: mutual TLS with the peer's SPIFFE ID and certificate hash; a
 * client without a certificate, with an SVID of an unknown trust domain, or with a leaf of one
 * domain signed by another domain's CA, each refused in the handshake with its own reason; the
 * client role refusing a server whose SPIFFE ID is not the expected one; and a rotation that
 * leaves an open connection working while new ones use the new SVID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "../../broker/gwtls.h"
#include "../../common/ly_time.h"
#include "../../svid/key.h"
#include "../../svid/x509svid.h"
#include "../../trust-bundles/bundle.h"

struct auth {
    char td[64];
    struct svid_key *key;
    struct ly_buf cert;
    struct x509svid_ca *ca;
};

struct svid {
    char id[128];
    struct ly_buf cert;
    struct ly_buf key; /* PKCS#8 DER */
};

static struct auth A, B;

static void auth_make(struct auth *a, const char *td)
{
    struct ly_error err = {0};
    (void)snprintf(a->td, sizeof(a->td), "%s", td);
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &a->key, &err), 0);
    assert_int_equal(x509svid_ca_create(a->key, td, ly_time_now(), 86400, &a->cert, &err), 0);
    assert_int_equal(x509svid_ca_new(a->cert.data, a->cert.len, a->key, &a->ca, &err), 0);
}

static void auth_free(struct auth *a)
{
    x509svid_ca_free(a->ca);
    ly_buf_free(&a->cert);
    svid_key_free(a->key);
}

/* An SVID for id minted by `by`. */
static void svid_make(struct svid *s, struct auth *by, const char *id)
{
    struct ly_error err = {0};
    struct svid_key *k = NULL;
    struct ly_buf spki;
    struct spiffeid sid;

    (void)snprintf(s->id, sizeof(s->id), "%s", id);
    assert_int_equal(spiffeid_parse(id, strlen(id), &sid, &err), 0);
    assert_int_equal(svid_key_generate(SVID_KEY_EC_P256, &k, &err), 0);
    assert_int_equal(svid_key_public_der(k, &spki, &err), 0);
    assert_int_equal(
        x509svid_mint(by->ca, &sid, spki.data, spki.len, NULL, 0, ly_time_now(), 3600, &s->cert,
                      &err),
        0);
    assert_int_equal(svid_key_to_pkcs8_der(k, &s->key, &err), 0);
    ly_buf_free(&spki);
    svid_key_free(k);
}

static void svid_free(struct svid *s)
{
    ly_buf_free(&s->cert);
    ly_buf_free(&s->key);
}

/* Bundles holding the CAs of the given authorities. */
static struct bundle_set *bundles_of(struct auth *a1, struct auth *a2)
{
    struct ly_error err = {0};
    struct bundle_set *set = NULL;
    struct auth *as[2] = {a1, a2};

    assert_int_equal(bundle_set_new(&set, &err), 0);
    for (int i = 0; i < 2; i++) {
        struct bundle *b = NULL;
        if (as[i] == NULL) {
            continue;
        }
        assert_int_equal(bundle_new(as[i]->td, &b, &err), 0);
        assert_int_equal(bundle_add_x509_authority(b, as[i]->cert.data, as[i]->cert.len, &err), 0);
        assert_int_equal(bundle_set_put(set, b, &err), 0);
    }
    return set;
}

static struct gwtls *config(enum gwtls_role role, struct svid *s, struct bundle_set *set)
{
    struct ly_error err = {0};
    struct gwtls *t = NULL;

    assert_int_equal(gwtls_new(role, &t, &err), 0);
    assert_false(gwtls_ready(t));
    if (s != NULL) {
        int rc_ = gwtls_set_identity(t, s->id, s->cert.data, s->cert.len, s->key.data,
                                     s->key.len, set, &err);
        if (rc_ != 0) {
            fail_msg("set_identity: %s", err.msg);
        }
        assert_true(gwtls_ready(t));
    } else {
        bundle_set_free(set);
    }
    return t;
}

/* The server side of a pair, run in a thread. */
struct srv {
    struct gwtls *t;
    int fd;
    int rc;
    struct ly_error err;
    char claimed[SPIFFEID_MAX_LEN + 1];
    char peer[SPIFFEID_MAX_LEN + 1];
    char hex[65];
    int echo; /* read one line and echo it back */
};

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    struct gwtls_conn *c = NULL;

    s->rc = gwtls_accept(s->t, s->fd, 5000, &c, s->claimed, &s->err);
    if (s->rc == 0) {
        const struct spiffeid *p = gwtls_peer_id(c);
        (void)snprintf(s->peer, sizeof(s->peer), "%s", p != NULL ? p->str : "");
        (void)snprintf(s->hex, sizeof(s->hex), "%s", gwtls_peer_cert_hex(c));
        if (s->echo) {
            char buf[64];
            struct ly_error e = {0};
            long n = gwtls_read(c, buf, sizeof(buf), &e);
            if (n > 0 && gwtls_write_all(c, buf, (size_t)n, &e) < 0) {
                s->rc = -100;
            }
        }
        gwtls_close(c);
    }
    gwtls_thread_done();
    return NULL;
}

/* Handshake a gwtls client config against a gwtls server config; returns the client's rc. */
static int pair(struct gwtls *server, struct gwtls *client, const char *want, struct srv *s,
                struct ly_error *cerr)
{
    int sv[2];
    pthread_t th;
    struct spiffeid w;
    struct gwtls_conn *c = NULL;
    int rc;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(s, 0, sizeof(*s));
    s->t = server;
    s->fd = sv[0];
    s->echo = 1;
    assert_int_equal(pthread_create(&th, NULL, srv_main, s), 0);
    assert_int_equal(spiffeid_parse(want, strlen(want), &w, cerr), 0);
    rc = gwtls_connect(client, sv[1], NULL, &w, 5000, &c, cerr);
    if (rc == 0) {
        char buf[16];
        struct ly_error e = {0};
        long n;
        /* TLS 1.3: a client refused by the server learns it on its first read. */
        if (gwtls_write_all(c, "ping\n", 5, &e) < 0) {
            rc = -1;
        } else {
            n = gwtls_read(c, buf, sizeof(buf), &e);
            rc = (n == 5 && memcmp(buf, "ping\n", 5) == 0) ? 0 : -1;
        }
        gwtls_close(c);
    }
    pthread_join(th, NULL);
    return rc;
}

static void test_mutual_tls(void **state)
{
    struct svid srv_svid, cli_svid;
    struct srv s;
    struct ly_error err = {0};
    (void)state;

    svid_make(&srv_svid, &A, "spiffe://a.test/gateway");
    svid_make(&cli_svid, &A, "spiffe://a.test/client");
    struct gwtls *st = config(GWTLS_SERVER, &srv_svid, bundles_of(&A, NULL));
    struct gwtls *ct = config(GWTLS_CLIENT, &cli_svid, bundles_of(&A, NULL));
    assert_int_equal(pair(st, ct, "spiffe://a.test/gateway", &s, &err), 0);
    assert_int_equal(s.rc, 0);
    assert_string_equal(s.peer, "spiffe://a.test/client");
    assert_int_equal(strlen(s.hex), 64);

    /* The client role refuses a server that is not the expected SPIFFE ID. */
    assert_int_not_equal(pair(st, ct, "spiffe://a.test/other", &s, &err), 0);
    assert_int_equal(err.reason, GWTLS_R_WRONG_PEER_ID);
    assert_non_null(strstr(err.msg, "spiffe://a.test/gateway"));
    assert_int_not_equal(s.rc, 0);
    gwtls_free(st);
    gwtls_free(ct);
    svid_free(&srv_svid);
    svid_free(&cli_svid);
}

static void test_unknown_trust_domain(void **state)
{
    struct svid srv_svid, cli_svid, forged;
    struct srv s;
    struct ly_error err = {0};
    (void)state;

    svid_make(&srv_svid, &A, "spiffe://a.test/gateway");
    svid_make(&cli_svid, &B, "spiffe://b.test/client");
    /* The server trusts only a.test: b.test's client is refused in the handshake. */
    struct gwtls *st = config(GWTLS_SERVER, &srv_svid, bundles_of(&A, NULL));
    struct gwtls *ct = config(GWTLS_CLIENT, &cli_svid, bundles_of(&A, &B));
    assert_int_not_equal(pair(st, ct, "spiffe://a.test/gateway", &s, &err), 0);
    assert_int_not_equal(s.rc, 0);
    assert_int_equal(s.err.reason, GWTLS_R_PEER_REJECTED);
    assert_non_null(strstr(s.err.msg, "b.test"));
    assert_string_equal(s.claimed, "spiffe://b.test/client");
    gwtls_free(st);

    /* A leaf of a.test signed by a rogue CA that also calls itself a.test: refused. */
    struct auth rogue;
    auth_make(&rogue, "a.test");
    svid_make(&forged, &rogue, "spiffe://a.test/client");
    auth_free(&rogue);
    st = config(GWTLS_SERVER, &srv_svid, bundles_of(&A, &B));
    gwtls_free(ct);
    ct = config(GWTLS_CLIENT, &forged, bundles_of(&A, &B));
    assert_int_not_equal(pair(st, ct, "spiffe://a.test/gateway", &s, &err), 0);
    assert_int_equal(s.err.reason, GWTLS_R_PEER_REJECTED);
    assert_string_equal(s.claimed, "spiffe://a.test/client");
    gwtls_free(st);
    gwtls_free(ct);
    svid_free(&srv_svid);
    svid_free(&cli_svid);
    svid_free(&forged);
}

static void test_no_client_cert(void **state)
{
    struct svid srv_svid;
    struct srv s;
    int sv[2];
    pthread_t th;
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    char buf[8];
    (void)state;

    svid_make(&srv_svid, &A, "spiffe://a.test/gateway");
    struct gwtls *st = config(GWTLS_SERVER, &srv_svid, bundles_of(&A, NULL));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&s, 0, sizeof(s));
    s.t = st;
    s.fd = sv[0];
    assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
    /* A bare wolfSSL client with no certificate at all. */
    ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    assert_non_null(ctx);
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    ssl = wolfSSL_new(ctx);
    assert_non_null(ssl);
    assert_int_equal(wolfSSL_set_fd(ssl, sv[1]), WOLFSSL_SUCCESS);
    (void)wolfSSL_connect(ssl);
    (void)wolfSSL_write(ssl, "x", 1);
    assert_true(wolfSSL_read(ssl, buf, sizeof(buf)) <= 0);
    pthread_join(th, NULL);
    assert_int_not_equal(s.rc, 0);
    assert_int_equal(s.err.reason, GWTLS_R_NO_PEER_CERT);
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    close(sv[1]);
    gwtls_free(st);
    svid_free(&srv_svid);
}

/* A connection made before a rotation keeps working after it; new ones get the new SVID. */
static void test_rotation(void **state)
{
    struct svid s1, s2, cli;
    struct ly_error err = {0};
    struct spiffeid w;
    int sv[2];
    pthread_t th;
    struct srv s;
    struct gwtls_conn *c = NULL;
    char buf[16];
    (void)state;

    svid_make(&s1, &A, "spiffe://a.test/gateway");
    svid_make(&s2, &A, "spiffe://a.test/gateway");
    svid_make(&cli, &A, "spiffe://a.test/client");
    struct gwtls *st = config(GWTLS_SERVER, &s1, bundles_of(&A, NULL));
    struct gwtls *ct = config(GWTLS_CLIENT, &cli, bundles_of(&A, NULL));
    assert_int_equal(gwtls_generation(st), 1);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&s, 0, sizeof(s));
    s.t = st;
    s.fd = sv[0];
    s.echo = 1;
    assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
    assert_int_equal(spiffeid_parse("spiffe://a.test/gateway", 23, &w, &err), 0);
    assert_int_equal(gwtls_connect(ct, sv[1], NULL, &w, 5000, &c, &err), 0);
    /* Rotate both sides while the connection is open. */
    assert_int_equal(gwtls_set_identity(st, s2.id, s2.cert.data, s2.cert.len, s2.key.data,
                                        s2.key.len, bundles_of(&A, NULL), &err),
                     0);
    assert_int_equal(gwtls_generation(st), 2);
    assert_int_equal(gwtls_write_all(c, "after\n", 6, &err), 0);
    assert_int_equal(gwtls_read(c, buf, sizeof(buf), &err), 6);
    assert_memory_equal(buf, "after\n", 6);
    gwtls_close(c);
    pthread_join(th, NULL);
    assert_int_equal(s.rc, 0);
    /* A new connection verifies against the new identity. */
    assert_int_equal(pair(st, ct, "spiffe://a.test/gateway", &s, &err), 0);

    /* A key that does not match the certificate is refused and the old identity stays. */
    assert_int_not_equal(gwtls_set_identity(st, s2.id, s2.cert.data, s2.cert.len, s1.key.data,
                                            s1.key.len, bundles_of(&A, NULL), &err),
                         0);
    assert_int_equal(err.reason, GWTLS_R_BAD_IDENTITY);
    assert_int_equal(gwtls_generation(st), 2);
    assert_int_equal(pair(st, ct, "spiffe://a.test/gateway", &s, &err), 0);
    gwtls_free(st);
    gwtls_free(ct);
    svid_free(&s1);
    svid_free(&s2);
    svid_free(&cli);
}

static void test_no_identity(void **state)
{
    struct gwtls *st = config(GWTLS_SERVER, NULL, NULL);
    struct ly_error err = {0};
    struct gwtls_conn *c = NULL;
    int sv[2];
    (void)state;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_not_equal(gwtls_accept(st, sv[0], 100, &c, NULL, &err), 0);
    assert_int_equal(err.reason, GWTLS_R_NO_IDENTITY);
    close(sv[1]);
    gwtls_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_unknown_trust_domain),
        cmocka_unit_test(test_no_client_cert),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_no_identity),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    auth_make(&A, "a.test");
    auth_make(&B, "b.test");
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    auth_free(&A);
    auth_free(&B);
    gwtls_thread_done();
    return rc;
}
