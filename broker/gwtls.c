/*
 * gwtls: wolfSSL contexts built from in-memory SVIDs, swapped under a mutex and reference
 * counted so a rotation never disturbs a connection in progress; the handshake-time X509-SVID
 * check in the verify callback; and blocking socket I/O with timeouts for TLS and plain
 * connections alike. It never loads a trust anchor into wolfSSL and never logs key material.
 */
#define _GNU_SOURCE
#include "gwtls.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../common/ly_b64.h"
#include "../common/ly_buf.h"
#include "../common/ly_secret.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/key.h"
#include "../svid/x509svid.h"
#include "../trust-bundles/bundle.h"

/* An installed identity: one wolfSSL context and the bundles its peers are checked against. */
struct ident {
    atomic_int refs;
    WOLFSSL_CTX *ctx;
    struct bundle_set *bundles;
    struct x509svid_anchors *anchors; /* prepared from bundles, once per identity */
    char self[SPIFFEID_MAX_LEN + 1];
};

struct gwtls {
    enum gwtls_role role;
    pthread_mutex_t mu;
    struct ident *cur;
    uint64_t generation;
};

struct gwtls_conn {
    int fd;
    WOLFSSL *ssl;           /* NULL for a plain connection */
    struct ident *id;       /* the identity the handshake used (a reference) */
    /* Verification, filled by the verify callback during the handshake. */
    int verified;           /* 1 only when lanyard's own X509-SVID check accepted the chain */
    int saw_cert;
    struct ly_error verr;   /* why it was refused */
    const struct spiffeid *want;
    struct spiffeid peer;
    char claimed[SPIFFEID_MAX_LEN + 1];
    uint8_t cert_sha[32];
    char cert_hex[65];
};

static pthread_once_t wolf_once = PTHREAD_ONCE_INIT;
static int wolf_init_rc;

static void wolf_init(void)
{
    wolf_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static void ident_unref(struct ident *id)
{
    if (id == NULL || atomic_fetch_sub(&id->refs, 1) != 1) {
        return;
    }
    wolfSSL_CTX_free(id->ctx);
    x509svid_anchors_free(id->anchors);
    bundle_set_free(id->bundles);
    free(id);
}

int gwtls_new(enum gwtls_role role, struct gwtls **out, struct ly_error *err)
{
    struct gwtls *t;

    *out = NULL;
    if (pthread_once(&wolf_once, wolf_init) != 0 || wolf_init_rc != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "wolfSSL_Init failed");
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "mutex init failed");
    }
    t->role = role;
    *out = t;
    return 0;
}

void gwtls_free(struct gwtls *t)
{
    if (t == NULL) {
        return;
    }
    ident_unref(t->cur);
    t->cur = NULL;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static struct ident *ident_get(struct gwtls *t)
{
    struct ident *id;

    pthread_mutex_lock(&t->mu);
    id = t->cur;
    if (id != NULL) {
        atomic_fetch_add(&id->refs, 1);
    }
    pthread_mutex_unlock(&t->mu);
    return id;
}

int gwtls_ready(struct gwtls *t)
{
    int r;

    pthread_mutex_lock(&t->mu);
    r = t->cur != NULL;
    pthread_mutex_unlock(&t->mu);
    return r;
}

uint64_t gwtls_generation(struct gwtls *t)
{
    uint64_t g;

    pthread_mutex_lock(&t->mu);
    g = t->generation;
    pthread_mutex_unlock(&t->mu);
    return g;
}

void gwtls_self_id(struct gwtls *t, char *out, size_t outsz)
{
    pthread_mutex_lock(&t->mu);
    (void)snprintf(out, outsz, "%s", t->cur != NULL ? t->cur->self : "");
    pthread_mutex_unlock(&t->mu);
}

/* ---- handshake-time verification --------------------------------------------------------- */

/*
 * Verify the whole chain the peer sent (store->certs, leaf first) with lanyard's X509-SVID
 * verifier against the bundle of the leaf's own trust domain (X509-SVID §5, BUNDLE-1).
 * wolfSSL holds no anchors, so its own verdict is always "unknown issuer" and is ignored;
 * this function alone decides, once, when the callback reaches the leaf.
 */
static int verify_chain(struct gwtls_conn *c, WOLFSSL_X509_STORE_CTX *st)
{
    struct x509svid_chain *chain = NULL;
    struct spiffeid id;
    int ok = 0;
    int i;

    c->saw_cert = 1;
    if (st->certs == NULL || st->totalCerts <= 0) {
        (void)ly_error_setx(&c->verr, LY_ERR_VERIFY, GWTLS_R_NO_PEER_CERT,
                            "the peer presented no certificate");
        return 0;
    }
    if (x509svid_chain_new(&chain, &c->verr) < 0) {
        return 0;
    }
    for (i = 0; i < st->totalCerts; i++) {
        if (x509svid_chain_add(chain, st->certs[i].buffer, st->certs[i].length, &c->verr) < 0) {
            c->verr.reason = GWTLS_R_PEER_REJECTED;
            goto out;
        }
    }
    if (x509svid_verify_anchored(chain, c->id->anchors, ly_time_now(), &id, &c->verr) < 0) {
        /* For the log only: what the refused leaf claimed to be. */
        struct ly_error ignore;
        struct spiffeid claimed;

        ly_error_clear(&ignore);
        if (x509svid_check_structure(chain, &claimed, &ignore) == 0) {
            (void)snprintf(c->claimed, sizeof(c->claimed), "%s", claimed.str);
        }
        c->verr.reason = GWTLS_R_PEER_REJECTED;
        goto out;
    }
    if (c->want != NULL && !spiffeid_equal(&id, c->want)) {
        char e1[160], e2[160];
        (void)ly_error_setx(&c->verr, LY_ERR_VERIFY, GWTLS_R_WRONG_PEER_ID,
                            "the server is %s, not the expected %s",
                            ly_text_escape(id.str, id.len, 128, e1, sizeof(e1)),
                            ly_text_escape(c->want->str, c->want->len, 128, e2, sizeof(e2)));
        goto out;
    }
    if (wc_Sha256Hash(st->certs[0].buffer, st->certs[0].length, c->cert_sha) != 0) {
        (void)ly_error_setx(&c->verr, LY_ERR_INTERNAL, GWTLS_R_HANDSHAKE, "SHA-256 failed");
        goto out;
    }
    ly_hex_encode(c->cert_sha, sizeof(c->cert_sha), c->cert_hex);
    c->peer = id;
    c->verified = 1;
    ok = 1;
out:
    x509svid_chain_free(chain);
    return ok;
}

/* 1 when the store's current certificate is the peer's leaf (certs[0]). */
static int current_is_leaf(WOLFSSL_X509_STORE_CTX *st)
{
    const unsigned char *der;
    int len = 0;

    if (st->current_cert == NULL || st->certs == NULL || st->totalCerts <= 0) {
        return 0;
    }
    der = wolfSSL_X509_get_der(st->current_cert, &len);
    return der != NULL && len > 0 && (word32)len == st->certs[0].length &&
           memcmp(der, st->certs[0].buffer, (size_t)len) == 0;
}

static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st)
{
    struct gwtls_conn *c = st != NULL ? st->userCtx : NULL;

    (void)preverify; /* wolfSSL has no anchors: its verdict is always "no signer" */
    if (c == NULL) {
        return 0;
    }
    if (!current_is_leaf(st)) {
        /* Intermediates are judged with the whole chain when the leaf comes. */
        return 1;
    }
    if (c->verified) {
        return 1;
    }
    if (c->saw_cert) {
        return 0; /* already refused once */
    }
    return verify_chain(c, st);
}

/* ---- identities -------------------------------------------------------------------------- */

/* The private key must belong to the leaf: checked here, not left to wolfSSL's CTX check. */
static int key_matches_leaf(const struct x509svid_chain *chain, const uint8_t *key_der,
                            size_t key_len, struct ly_error *err)
{
    struct svid_key *k = NULL;
    struct ly_buf spki;
    size_t n = 0;
    const uint8_t *leaf = x509svid_chain_cert(chain, 0, &n);
    int rc;

    if (leaf == NULL) {
        return ly_error_setx(err, LY_ERR_VERIFY, GWTLS_R_BAD_IDENTITY, "empty SVID chain");
    }
    rc = x509svid_cert_public_key(leaf, n, &spki, err);
    if (rc < 0) {
        return rc;
    }
    rc = svid_key_parse(key_der, key_len, &k, err);
    if (rc == 0 && !svid_key_matches_public(k, spki.data, spki.len)) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, GWTLS_R_BAD_IDENTITY,
                           "the private key does not match the SVID certificate");
    }
    if (rc < 0 && err->reason == 0) {
        err->reason = GWTLS_R_BAD_IDENTITY;
    }
    svid_key_free(k);
    ly_buf_free(&spki);
    return rc;
}

static int build_ctx(enum gwtls_role role, const uint8_t *chain_der, size_t chain_len,
                     const uint8_t *key_der, size_t key_len, WOLFSSL_CTX **out,
                     struct ly_error *err)
{
    struct x509svid_chain *chain = NULL;
    struct ly_buf pem;
    WOLFSSL_CTX *ctx = NULL;
    int groups[2] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1};
    int rc;
    size_t i;

    *out = NULL;
    ly_buf_init(&pem, 1u << 20);
    if (chain_len > INT32_MAX || key_len > INT32_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, GWTLS_R_BAD_IDENTITY, "SVID too large");
    }
    rc = x509svid_chain_parse(chain_der, chain_len, &chain, err);
    for (i = 0; rc == 0 && i < x509svid_chain_count(chain); i++) {
        size_t n;
        const uint8_t *d = x509svid_chain_cert(chain, i, &n);
        rc = ly_pem_append(&pem, "CERTIFICATE", d, n, err);
    }
    if (rc == 0) {
        rc = key_matches_leaf(chain, key_der, key_len, err);
    }
    x509svid_chain_free(chain);
    if (rc < 0) {
        ly_buf_free(&pem);
        return ly_error_wrap(err, "the SVID");
    }
    ctx = wolfSSL_CTX_new(role == GWTLS_SERVER ? wolfTLSv1_3_server_method()
                                               : wolfTLSv1_3_client_method());
    if (ctx == NULL) {
        ly_buf_free(&pem);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "wolfSSL_CTX_new failed");
    }
    if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, pem.data, (long)pem.len) !=
        WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, GWTLS_R_BAD_IDENTITY,
                           "wolfSSL refused the SVID certificate chain");
        goto fail;
    }
    if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, key_der, (long)key_len, WOLFSSL_FILETYPE_ASN1) !=
        WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, GWTLS_R_BAD_IDENTITY,
                           "wolfSSL refused the SVID private key");
        goto fail;
    }
    if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, GWTLS_R_BAD_IDENTITY,
                           "the SVID private key does not match its certificate");
        goto fail;
    }
    /* One send for a whole flight of handshake messages instead of one per message: fewer
     * system calls and TCP segments on both sides. */
    if (wolfSSL_CTX_set_group_messages(ctx) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wolfSSL_CTX_set_group_messages failed");
        goto fail;
    }
    /* X25519 first: the cheapest key exchange this wolfSSL build has (shared/notes). */
    if (wolfSSL_CTX_set_groups(ctx, groups, 2) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wolfSSL_CTX_set_groups failed");
        goto fail;
    }
    if (role == GWTLS_SERVER) {
        /* mTLS is required: no certificate, no connection. No resumption either, so every
         * connection's peer went through verify_cb. */
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                               verify_cb);
        if (wolfSSL_CTX_no_ticket_TLSv13(ctx) != 0) { /* 0 is success here */
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "cannot disable session tickets");
            goto fail;
        }
        (void)wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
    } else {
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, verify_cb);
        (void)wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
    }
    ly_buf_free(&pem);
    *out = ctx;
    return 0;
fail:
    ly_buf_free(&pem);
    wolfSSL_CTX_free(ctx);
    return rc;
}

int gwtls_set_identity(struct gwtls *t, const char *spiffe_id, const uint8_t *chain_der,
                       size_t chain_len, const uint8_t *key_der, size_t key_len,
                       struct bundle_set *bundles, struct ly_error *err)
{
    struct ident *id;
    struct ident *old;
    int rc;

    if (bundles == NULL || spiffe_id == NULL) {
        bundle_set_free(bundles);
        return ly_error_setx(err, LY_ERR_USAGE, GWTLS_R_BAD_IDENTITY, "no bundles or SPIFFE ID");
    }
    id = calloc(1, sizeof(*id));
    if (id == NULL) {
        bundle_set_free(bundles);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    atomic_init(&id->refs, 1);
    id->bundles = bundles;
    rc = x509svid_anchors_new(bundles, &id->anchors, err);
    (void)snprintf(id->self, sizeof(id->self), "%s", spiffe_id);
    if (rc == 0) {
        rc = build_ctx(t->role, chain_der, chain_len, key_der, key_len, &id->ctx, err);
    }
    /* Checking the anchors' signatures and the key left wolfSSL's per-thread ECC tables in this
     * (configuration) thread; connection threads keep theirs and free them in
     * gwtls_thread_done(). */
    wc_ecc_fp_free();
    if (rc < 0) {
        ident_unref(id);
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    old = t->cur;
    t->cur = id;
    t->generation++;
    pthread_mutex_unlock(&t->mu);
    ident_unref(old);
    return 0;
}

/* ---- connections ------------------------------------------------------------------------- */

static struct gwtls_conn *conn_new(int fd)
{
    struct gwtls_conn *c = calloc(1, sizeof(*c));

    if (c != NULL) {
        c->fd = fd;
    }
    return c;
}

static void conn_free(struct gwtls_conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->ssl != NULL) {
        wolfSSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        (void)close(c->fd);
    }
    ident_unref(c->id);
    free(c);
}

int gwtls_conn_set_timeouts(struct gwtls_conn *c, int rcv_ms, int snd_ms)
{
    struct timeval r = {rcv_ms / 1000, (rcv_ms % 1000) * 1000};
    struct timeval s = {snd_ms / 1000, (snd_ms % 1000) * 1000};

    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof(r)) != 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof(s)) != 0) {
        return -1;
    }
    return 0;
}

int gwtls_conn_plain(int fd, struct gwtls_conn **out, struct ly_error *err)
{
    struct gwtls_conn *c = conn_new(fd);

    *out = NULL;
    if (c == NULL) {
        (void)close(fd);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    *out = c;
    return 0;
}

/* The handshake result as an error: the verifier's own message when it refused the peer. */
static int handshake_error(struct gwtls_conn *c, int werr, struct ly_error *err)
{
    char buf[WOLFSSL_MAX_ERROR_SZ];

    if (c->verr.code != 0) {
        *err = c->verr;
        return err->code;
    }
    if (!c->saw_cert && (werr == NO_PEER_CERT || werr == -345)) {
        return ly_error_setx(err, LY_ERR_VERIFY, GWTLS_R_NO_PEER_CERT,
                             "the peer presented no certificate");
    }
    if (werr == WOLFSSL_ERROR_WANT_READ || werr == WOLFSSL_ERROR_WANT_WRITE ||
        werr == SOCKET_ERROR_E) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return ly_error_setx(err, LY_ERR_IO, GWTLS_R_TIMEOUT, "TLS handshake timed out");
        }
    }
    return ly_error_setx(err, LY_ERR_IO, GWTLS_R_HANDSHAKE, "TLS handshake failed: %s (%d)",
                         wolfSSL_ERR_error_string((unsigned long)werr, buf), werr);
}

static int handshake(struct gwtls *t, int fd, const char *sni, const struct spiffeid *want,
                     int timeout_ms, struct gwtls_conn **out, char *claimed, struct ly_error *err)
{
    struct gwtls_conn *c;
    int rc;

    *out = NULL;
    if (claimed != NULL) {
        claimed[0] = '\0';
    }
    c = conn_new(fd);
    if (c == NULL) {
        (void)close(fd);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    c->id = ident_get(t);
    if (c->id == NULL) {
        conn_free(c);
        return ly_error_setx(err, LY_ERR_USAGE, GWTLS_R_NO_IDENTITY, "no SVID yet");
    }
    c->want = want;
    (void)gwtls_conn_set_timeouts(c, timeout_ms, timeout_ms);
    c->ssl = wolfSSL_new(c->id->ctx);
    if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, fd) != WOLFSSL_SUCCESS) {
        conn_free(c);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "wolfSSL_new failed");
    }
    wolfSSL_SetCertCbCtx(c->ssl, c);
    if (t->role == GWTLS_CLIENT) {
        if (sni != NULL && sni[0] != '\0' &&
            wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, sni, (word16)strlen(sni)) !=
                WOLFSSL_SUCCESS) {
            conn_free(c);
            return ly_error_setx(err, LY_ERR_INTERNAL, 0, "cannot set SNI");
        }
        /* One key share, X25519: the server accepts it, so no HelloRetryRequest. */
        (void)wolfSSL_UseKeyShare(c->ssl, WOLFSSL_ECC_X25519);
        rc = wolfSSL_connect(c->ssl);
    } else {
        rc = wolfSSL_accept(c->ssl);
    }
    if (rc != WOLFSSL_SUCCESS) {
        int werr = wolfSSL_get_error(c->ssl, rc);
        rc = handshake_error(c, werr, err);
        if (claimed != NULL) {
            (void)snprintf(claimed, SPIFFEID_MAX_LEN + 1, "%s", c->claimed);
        }
        conn_free(c);
        return rc;
    }
    /* Belt and braces: a handshake that completed without lanyard's verdict is refused. */
    if (!c->verified) {
        rc = c->verr.code != 0
                 ? (*err = c->verr, err->code)
                 : ly_error_setx(err, LY_ERR_VERIFY, GWTLS_R_NO_PEER_CERT,
                                 "the handshake ended without a verified peer certificate");
        if (claimed != NULL) {
            (void)snprintf(claimed, SPIFFEID_MAX_LEN + 1, "%s", c->claimed);
        }
        conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int gwtls_accept(struct gwtls *t, int fd, int timeout_ms, struct gwtls_conn **out,
                 char *claimed, struct ly_error *err)
{
    if (t->role != GWTLS_SERVER) {
        (void)close(fd);
        return ly_error_setx(err, LY_ERR_USAGE, 0, "gwtls_accept on a client configuration");
    }
    return handshake(t, fd, NULL, NULL, timeout_ms, out, claimed, err);
}

int gwtls_connect(struct gwtls *t, int fd, const char *sni, const struct spiffeid *want_server,
                  int timeout_ms, struct gwtls_conn **out, struct ly_error *err)
{
    if (t->role != GWTLS_CLIENT || want_server == NULL) {
        (void)close(fd);
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "gwtls_connect needs a client configuration and a server ID");
    }
    return handshake(t, fd, sni, want_server, timeout_ms, out, NULL, err);
}

static int io_error(int timed_out, const char *what, struct ly_error *err)
{
    if (timed_out) {
        return ly_error_setx(err, LY_ERR_IO, GWTLS_R_TIMEOUT, "%s timed out", what);
    }
    return ly_error_set(err, LY_ERR_IO, GWTLS_R_IO, "%s failed", what);
}

long gwtls_read(struct gwtls_conn *c, void *buf, size_t len, struct ly_error *err)
{
    int n;

    if (len > INT32_MAX) {
        len = INT32_MAX;
    }
    if (c->ssl == NULL) {
        ssize_t r;
        do {
            r = recv(c->fd, buf, len, 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (errno == ECONNRESET) {
                return ly_error_setx(err, LY_ERR_IO, GWTLS_R_CLOSED, "connection reset"), -1;
            }
            return io_error(errno == EAGAIN || errno == EWOULDBLOCK, "read", err), -1;
        }
        return (long)r;
    }
    n = wolfSSL_read(c->ssl, buf, (int)len);
    if (n > 0) {
        return n;
    }
    {
        int e = wolfSSL_get_error(c->ssl, n);
        if (e == WOLFSSL_ERROR_ZERO_RETURN || (n == 0 && e == SOCKET_PEER_CLOSED_E)) {
            return 0;
        }
        if (e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return io_error(1, "TLS read", err), -1;
            }
            if (e == SOCKET_PEER_CLOSED_E) {
                return 0;
            }
        }
        if (e == WOLFSSL_ERROR_WANT_READ) {
            return io_error(1, "TLS read", err), -1;
        }
        {
            char b[WOLFSSL_MAX_ERROR_SZ];
            return ly_error_setx(err, LY_ERR_IO, GWTLS_R_IO, "TLS read failed: %s (%d)",
                                 wolfSSL_ERR_error_string((unsigned long)e, b), e),
                   -1;
        }
    }
}

int gwtls_write_all(struct gwtls_conn *c, const void *buf, size_t len, struct ly_error *err)
{
    const uint8_t *p = buf;

    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        if (c->ssl == NULL) {
            ssize_t w = send(c->fd, p, chunk, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return io_error(errno == EAGAIN || errno == EWOULDBLOCK, "write", err);
            }
            p += w;
            len -= (size_t)w;
        } else {
            int w = wolfSSL_write(c->ssl, p, (int)chunk);
            if (w <= 0) {
                int e = wolfSSL_get_error(c->ssl, w);
                char b[WOLFSSL_MAX_ERROR_SZ];
                if (e == WOLFSSL_ERROR_WANT_WRITE || errno == EAGAIN) {
                    return io_error(1, "TLS write", err);
                }
                return ly_error_setx(err, LY_ERR_IO, GWTLS_R_IO, "TLS write failed: %s (%d)",
                                     wolfSSL_ERR_error_string((unsigned long)e, b), e);
            }
            p += w;
            len -= (size_t)w;
        }
    }
    return 0;
}

int gwtls_pending(struct gwtls_conn *c)
{
    return c->ssl != NULL ? wolfSSL_pending(c->ssl) : 0;
}

int gwtls_fd(const struct gwtls_conn *c)
{
    return c->fd;
}

const struct spiffeid *gwtls_peer_id(const struct gwtls_conn *c)
{
    return c->ssl != NULL && c->verified ? &c->peer : NULL;
}

const uint8_t *gwtls_peer_cert_sha256(const struct gwtls_conn *c)
{
    return c->cert_sha;
}

const char *gwtls_peer_cert_hex(const struct gwtls_conn *c)
{
    return c->cert_hex;
}

const char *gwtls_version(const struct gwtls_conn *c)
{
    return c->ssl != NULL ? wolfSSL_get_version(c->ssl) : "none";
}

const char *gwtls_cipher(const struct gwtls_conn *c)
{
    return c->ssl != NULL ? wolfSSL_get_cipher_name(c->ssl) : "none";
}

void gwtls_thread_warmup(void)
{
    WC_RNG rng;
    ecc_key k;
    byte digest[32] = {0};
    byte sig[ECC_MAX_SIG_SIZE];
    word32 sl = sizeof(sig);
    int ok = 0;

    /* A throwaway key: it only makes wolfSSL build this thread's tables now. */
    if (wc_InitRng(&rng) != 0) {
        return;
    }
    if (wc_ecc_init(&k) == 0) {
        if (wc_ecc_make_key_ex(&rng, 32, &k, ECC_SECP256R1) == 0 &&
            wc_ecc_sign_hash(digest, sizeof(digest), sig, &sl, &rng, &k) == 0) {
            (void)wc_ecc_verify_hash(sig, sl, digest, sizeof(digest), &ok, &k);
        }
        wc_ecc_free(&k);
    }
    (void)wc_FreeRng(&rng);
}

void gwtls_thread_done(void)
{
    wc_ecc_fp_free();
}

void gwtls_close(struct gwtls_conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->ssl != NULL) {
        /* A short send timeout: close_notify must never hold a thread on a stuck peer. */
        (void)gwtls_conn_set_timeouts(c, 200, 200);
        (void)wolfSSL_shutdown(c->ssl);
    }
    conn_free(c);
}
