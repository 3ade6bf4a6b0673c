/*
 * endpoint: the bundle endpoint server. Non-blocking sockets and wolfSSL driven by the caller's
 * loop through one watch hook, identities as reference-counted wolfSSL contexts (a rotation never
 * touches a connection already accepted), and the request reader and answer builder of
 * endpoint_internal.h. It never blocks, never reads a clock but the wall clock for Date, never
 * requests a client certificate and never logs or keeps key material.
 */
#define _GNU_SOURCE
#include "endpoint.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/ly_b64.h"
#include "../common/ly_buf.h"
#include "../common/ly_secret.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/key.h"
#include "../svid/x509svid.h"
#include "endpoint_internal.h"

/*
 * Forward-secret AEAD suites only. TLS 1.2 peers get ECDHE with ECDSA (which also carries
 * Ed25519 certificates) or RSA; TLS 1.3 needs nothing more.
 */
#define EP_CIPHERS                                                                                 \
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Connections accepted per readiness report, so one busy listener cannot starve the loop. */
#define EP_ACCEPT_BATCH 64
/* Plaintext written per wolfSSL_write call (one TLS record). */
#define EP_WRITE_CHUNK 16384
/* Room for an answer's status line and headers. */
#define EP_ANSWER_HEAD_MAX 512
/* Largest RSA modulus or EC point compared when checking a key against its certificate. */
#define EP_PUB_MAX 1100

/* ---- request reader ---------------------------------------------------------------------- */

static int ascii_ieq(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char x = a[i];
        char y = b[i];
        if (x >= 'A' && x <= 'Z') {
            x = (char)(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (char)(y - 'A' + 'a');
        }
        if (x != y) {
            return 0;
        }
    }
    return 1;
}

static int req_on_url(http_parser *p, const char *at, size_t len)
{
    struct fed_req *r = p->data;

    if (len > FED_REQ_TARGET_MAX - r->target_len) {
        r->bad = 1;
        return 0;
    }
    memcpy(r->target + r->target_len, at, len);
    r->target_len += len;
    r->target[r->target_len] = '\0';
    return 0;
}

static int req_on_field(http_parser *p, const char *at, size_t len)
{
    struct fed_req *r = p->data;

    /* libhttp-parser may split a name over several calls; a value ends the previous name. */
    if (r->in_value) {
        r->in_value = 0;
        r->name_len = 0;
        r->name_long = 0;
    }
    if (len > FED_REQ_NAME_MAX - r->name_len) {
        r->name_long = 1;
        return 0;
    }
    memcpy(r->name + r->name_len, at, len);
    r->name_len += len;
    r->name[r->name_len] = '\0';
    return 0;
}

static int req_on_value(http_parser *p, const char *at, size_t len)
{
    struct fed_req *r = p->data;

    (void)at;
    (void)len;
    /* The first piece of a value (the parser calls this even for an empty one) ends the name. */
    if (!r->in_value) {
        r->in_value = 1;
        if (!r->name_long && r->name_len == 4 && ascii_ieq(r->name, "host", 4)) {
            r->hosts++;
        }
    }
    return 0;
}

static int req_on_headers_complete(http_parser *p)
{
    struct fed_req *r = p->data;

    r->has_body =
        (p->flags & F_CHUNKED) != 0 || (p->content_length > 0 && p->content_length != ULLONG_MAX);
    r->done = 1;
    /* Stop here: the body and anything pipelined after it are never read. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings req_settings = {
    .on_url = req_on_url,
    .on_header_field = req_on_field,
    .on_header_value = req_on_value,
    .on_headers_complete = req_on_headers_complete,
};

void fed_req_init(struct fed_req *r)
{
    memset(r, 0, sizeof(*r));
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
}

int fed_req_feed(struct fed_req *r, const uint8_t *data, size_t len, size_t *used)
{
    size_t room;
    size_t n;
    size_t took;

    if (used != NULL) {
        *used = 0;
    }
    if (r->done) {
        return 1;
    }
    /* A zero length means end of input to libhttp-parser: never pass one. */
    if (len == 0 || data == NULL) {
        return 0;
    }
    room = FED_ENDPOINT_MAX_HEAD - r->fed;
    n = len < room ? len : room;
    took = http_parser_execute(&r->parser, &req_settings, (const char *)data, n);
    if (took > n) {
        took = n;
    }
    r->fed += took;
    if (used != NULL) {
        *used = took;
    }
    if (r->done) {
        return 1;
    }
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || r->fed >= FED_ENDPOINT_MAX_HEAD) {
        r->bad = 1;
        r->done = 1;
        return 1;
    }
    return 0;
}

/* 1 when the target names "/" (origin or absolute form; a query is ignored), 0 when another
 * path, -1 when it does not parse. */
static int target_is_root(const struct fed_req *r)
{
    struct http_parser_url u;

    http_parser_url_init(&u);
    if (r->target_len == 0 || http_parser_parse_url(r->target, r->target_len, 0, &u) != 0) {
        return -1;
    }
    if ((u.field_set & (1u << UF_PATH)) == 0) {
        /* An absolute-form target without a path means "/" (RFC 9112 §3.2.2). */
        return (u.field_set & (1u << UF_HOST)) != 0 ? 1 : 0;
    }
    return u.field_data[UF_PATH].len == 1 && r->target[u.field_data[UF_PATH].off] == '/';
}

int fed_req_status(const struct fed_req *r, int have_bundle)
{
    int root;

    if (!r->done) {
        return -1;
    }
    if (r->bad || r->parser.http_major != 1) {
        return 400;
    }
    /* RFC 9112 §3.2: an HTTP/1.1 request needs exactly one Host; two are refused in any
     * version. */
    if (r->hosts > 1 || (r->parser.http_minor >= 1 && r->hosts != 1)) {
        return 400;
    }
    if (r->parser.method != HTTP_GET && r->parser.method != HTTP_HEAD) {
        return 405;
    }
    /* A bundle request never has a body; one we would not read is refused, not skipped. */
    if (r->has_body) {
        return 400;
    }
    root = target_is_root(r);
    if (root < 0) {
        return 400;
    }
    if (root == 0) {
        return 404;
    }
    return have_bundle ? 200 : 503;
}

int fed_req_is_head(const struct fed_req *r)
{
    return r->done && !r->bad && r->parser.method == HTTP_HEAD;
}

/* ---- answers ----------------------------------------------------------------------------- */

/* An IMF-fixdate (RFC 9110 §5.6.7) for now, or -1 when now is outside years 1970..9999. */
static int http_date(int64_t now, char *out, size_t outsz)
{
    /* 1970-01-01 was a Thursday. */
    static const char *const wdays[7] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int y, mo, d, h, mi, s;
    int n;

    if (now < 0 || now > INT64_C(253402300799) ||
        ly_time_to_utc(now, &y, &mo, &d, &h, &mi, &s) != 0 || mo < 1 || mo > 12) {
        return -1;
    }
    n = snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[(now / 86400) % 7], d,
                 months[mo - 1], y, h, mi, s);
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}

int fed_answer_build(int status, int head, const uint8_t *body, size_t body_len, int64_t now,
                     struct ly_buf *out, struct ly_error *err)
{
    const char *reason;
    const char *text = NULL;
    const char *type = "text/plain; charset=utf-8";
    char date[48];
    int rc;

    ly_buf_init(out, EP_ANSWER_HEAD_MAX + FED_ENDPOINT_MAX_BUNDLE);
    switch (status) {
    case 200:
        reason = "OK";
        type = "application/json";
        break;
    case 400:
        reason = "Bad Request";
        text = "bad request\n";
        break;
    case 404:
        reason = "Not Found";
        text = "not found: the bundle is at /\n";
        break;
    case 405:
        reason = "Method Not Allowed";
        text = "method not allowed: use GET\n";
        break;
    case 503:
        reason = "Service Unavailable";
        text = "no bundle yet\n";
        break;
    default:
        return ly_error_setx(err, LY_ERR_USAGE, 0, "no answer for status %d", status);
    }
    if (text != NULL) {
        body = (const uint8_t *)text;
        body_len = strlen(text);
    } else if ((body == NULL && body_len > 0) || body_len > FED_ENDPOINT_MAX_BUNDLE) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_ENDPOINT_R_TOO_BIG, "bad answer body");
    }
    rc = ly_buf_appendf(out, err, "HTTP/1.1 %d %s\r\n", status, reason);
    if (rc == 0 && http_date(now, date, sizeof(date)) == 0) {
        rc = ly_buf_appendf(out, err, "Date: %s\r\n", date);
    }
    if (rc == 0) {
        rc = ly_buf_appendf(out, err,
                            "Content-Type: %s\r\nContent-Length: %zu\r\n"
                            "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                            type, body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
    }
    if (rc == 0 && !head && body_len > 0) {
        rc = ly_buf_append(out, body, body_len, err);
    }
    return rc;
}

/* ---- identities -------------------------------------------------------------------------- */

/* A TLS identity: one wolfSSL context, shared by the endpoint and the connections using it. */
struct ident {
    int refs; /* the endpoint's reference (while current) plus one per connection */
    WOLFSSL_CTX *ctx;
    char sha256_hex[65];
};

static pthread_once_t wolf_once = PTHREAD_ONCE_INIT;
static int wolf_init_rc;

static void wolf_init(void)
{
    wolf_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static void ident_unref(struct ident *id)
{
    if (id == NULL || --id->refs > 0) {
        return;
    }
    wolfSSL_CTX_free(id->ctx);
    free(id);
}

/*
 * EC keys of any curve wolfSSL knows: the public point is recomputed from the private scalar
 * (a public key stored next to it in the file proves nothing) and compared with the
 * certificate's. 1 match, 0 no match, -1 not an EC key.
 */
static int ec_key_matches(const uint8_t *key, word32 key_len, const uint8_t *spki, word32 spki_len)
{
    ecc_key priv;
    ecc_key pub;
    WC_RNG rng;
    uint8_t a[EP_PUB_MAX];
    uint8_t b[EP_PUB_MAX];
    word32 al = sizeof(a);
    word32 bl = sizeof(b);
    word32 idx = 0;
    int match = 0;

    if (wc_ecc_init(&priv) != 0) {
        return -1;
    }
    if (wc_EccPrivateKeyDecode(key, &idx, &priv, key_len) != 0) {
        wc_ecc_free(&priv);
        return -1;
    }
    if (wc_ecc_init(&pub) != 0) {
        wc_ecc_free(&priv);
        return 0;
    }
    if (wc_InitRng(&rng) == 0) {
        idx = 0;
        /* The RNG blinds the scalar multiplication. */
        match = wc_ecc_make_pub_ex(&priv, NULL, &rng) == 0 &&
                wc_EccPublicKeyDecode(spki, &idx, &pub, spki_len) == 0 && priv.idx == pub.idx &&
                wc_ecc_export_x963(&priv, a, &al) == 0 && wc_ecc_export_x963(&pub, b, &bl) == 0 &&
                al == bl && memcmp(a, b, al) == 0;
        (void)wc_FreeRng(&rng); /* nothing to recover from: the answer is already known */
    }
    wc_ecc_free(&pub);
    wc_ecc_free(&priv);
    return match;
}

/* RSA keys: modulus and exponent compared with the certificate's. Same results. */
static int rsa_key_matches(const uint8_t *key, word32 key_len, const uint8_t *spki, word32 spki_len)
{
    RsaKey priv;
    RsaKey pub;
    uint8_t n1[EP_PUB_MAX], e1[16], n2[EP_PUB_MAX], e2[16];
    word32 n1l = sizeof(n1), e1l = sizeof(e1), n2l = sizeof(n2), e2l = sizeof(e2);
    word32 idx = 0;
    int match;

    if (wc_InitRsaKey(&priv, NULL) != 0) {
        return -1;
    }
    if (wc_RsaPrivateKeyDecode(key, &idx, &priv, key_len) != 0) {
        (void)wc_FreeRsaKey(&priv); /* freeing an unused key cannot fail in a way that matters */
        return -1;
    }
    if (wc_InitRsaKey(&pub, NULL) != 0) {
        (void)wc_FreeRsaKey(&priv);
        return 0;
    }
    idx = 0;
    match = wc_RsaPublicKeyDecode(spki, &idx, &pub, spki_len) == 0 &&
            wc_RsaFlattenPublicKey(&priv, e1, &e1l, n1, &n1l) == 0 &&
            wc_RsaFlattenPublicKey(&pub, e2, &e2l, n2, &n2l) == 0 && n1l == n2l && e1l == e2l &&
            memcmp(n1, n2, n1l) == 0 && memcmp(e1, e2, e1l) == 0;
    (void)wc_FreeRsaKey(&pub);
    (void)wc_FreeRsaKey(&priv);
    return match;
}

/*
 * The key must be the leaf's. wolfSSL_CTX_check_private_key is not enough: this wolfSSL accepts
 * an EC key that belongs to another certificate. P-256 and Ed25519 keys (what lanyard issues) are
 * checked by lanyard's key module; other EC curves and RSA by comparing public keys here.
 */
static int key_matches_leaf(const uint8_t *leaf, size_t leaf_len, const uint8_t *key,
                            size_t key_len, struct ly_error *err)
{
    struct svid_key *k = NULL;
    struct ly_error kerr;
    struct ly_buf spki;
    int match;
    int rc;

    rc = x509svid_cert_public_key(leaf, leaf_len, &spki, err);
    if (rc < 0) {
        if (err != NULL) {
            err->reason = FED_ENDPOINT_R_BAD_CERT;
        }
        ly_buf_free(&spki);
        return ly_error_wrap(err, "the leaf certificate");
    }
    ly_error_clear(&kerr);
    if (svid_key_parse(key, key_len, &k, &kerr) == 0) {
        match = svid_key_matches_public(k, spki.data, spki.len);
        svid_key_free(k);
    } else {
        match = ec_key_matches(key, (word32)key_len, spki.data, (word32)spki.len);
        if (match < 0) {
            match = rsa_key_matches(key, (word32)key_len, spki.data, (word32)spki.len);
        }
    }
    ly_buf_free(&spki);
    if (match < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, FED_ENDPOINT_R_BAD_KEY,
                             "the private key does not parse (unencrypted EC, RSA or Ed25519)");
    }
    if (match == 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, FED_ENDPOINT_R_KEY_MISMATCH,
                             "the private key does not belong to the leaf certificate");
    }
    return 0;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx);
static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx);

/*
 * A server context: TLS 1.2 minimum, forward-secret AEAD suites, no client certificate, no
 * session resumption (every connection is a full handshake with the identity it was accepted
 * with), our own socket callbacks. cert_pem is the chain as PEM, leaf/key DER.
 */
static int ident_new(const uint8_t *cert_pem, size_t cert_len, const uint8_t *leaf, size_t leaf_len,
                     const uint8_t *key, size_t key_len, struct ident **out, struct ly_error *err)
{
    struct ident *id;
    uint8_t sha[WC_SHA256_DIGEST_SIZE];
    int rc;

    *out = NULL;
    if (pthread_once(&wolf_once, wolf_init) != 0 || wolf_init_rc != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "wolfSSL_Init failed");
    }
    if (cert_len > INT_MAX || key_len > INT_MAX || leaf_len > UINT32_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_ENDPOINT_R_TOO_BIG, "identity too large");
    }
    rc = key_matches_leaf(leaf, leaf_len, key, key_len, err);
    if (rc < 0) {
        return rc;
    }
    id = calloc(1, sizeof(*id));
    if (id == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    id->refs = 1;
    id->ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (id->ctx == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "wolfSSL_CTX_new failed");
        goto fail;
    }
    if (wolfSSL_CTX_SetMinVersion(id->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(id->ctx, EP_CIPHERS) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "cannot set the TLS versions or suites");
        goto fail;
    }
    if (wolfSSL_CTX_use_certificate_chain_buffer(id->ctx, cert_pem, (long)cert_len) !=
        WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_PARSE, FED_ENDPOINT_R_BAD_CERT,
                           "wolfSSL refused the certificate chain");
        goto fail;
    }
    if (wolfSSL_CTX_use_PrivateKey_buffer(id->ctx, key, (long)key_len, WOLFSSL_FILETYPE_ASN1) !=
        WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_PARSE, FED_ENDPOINT_R_BAD_KEY,
                           "wolfSSL refused the private key");
        goto fail;
    }
    /* Second opinion only (see key_matches_leaf); it does catch some mismatches. */
    if (wolfSSL_CTX_check_private_key(id->ctx) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, FED_ENDPOINT_R_KEY_MISMATCH,
                           "the private key does not belong to the leaf certificate");
        goto fail;
    }
    /* A public bundle: anyone may fetch it, so no client certificate is asked for. */
    wolfSSL_CTX_set_verify(id->ctx, WOLFSSL_VERIFY_NONE, NULL);
    if (wolfSSL_CTX_no_ticket_TLSv13(id->ctx) != 0 || /* 0 is success here */
        wolfSSL_CTX_NoTicketTLSv12(id->ctx) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "cannot disable session tickets");
        goto fail;
    }
    if (wolfSSL_CTX_set_session_cache_mode(id->ctx, WOLFSSL_SESS_CACHE_OFF) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "cannot disable the session cache");
        goto fail;
    }
    /* A whole handshake flight in one send: fewer segments and wakeups on both sides. */
    if (wolfSSL_CTX_set_group_messages(id->ctx) != WOLFSSL_SUCCESS) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "wolfSSL_CTX_set_group_messages failed");
        goto fail;
    }
    /* Our callbacks: MSG_NOSIGNAL on send, and the connection (not a bare fd) as context. */
    wolfSSL_CTX_SetIORecv(id->ctx, io_recv);
    wolfSSL_CTX_SetIOSend(id->ctx, io_send);
    if (wc_Sha256Hash(leaf, (word32)leaf_len, sha) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 failed");
        goto fail;
    }
    ly_hex_encode(sha, sizeof(sha), id->sha256_hex);
    *out = id;
    return 0;
fail:
    ident_unref(id);
    return rc;
}

/* ---- connections ------------------------------------------------------------------------- */

enum conn_state {
    CONN_HANDSHAKE = 0,
    CONN_READ,     /* reading the request head */
    CONN_WRITE,    /* writing the answer */
    CONN_SHUTDOWN, /* sending close_notify */
};

struct conn {
    struct fed_endpoint *ep; /* not owned */
    int fd;
    int mask; /* what the hook was last told for fd (0: not watched) */
    enum conn_state state;
    WOLFSSL *ssl;
    struct ident *id; /* a reference: the identity it was accepted with */
    struct fed_req req;
    struct ly_buf answer;
    size_t answer_off;
    int status;
    int stamped; /* born_ms is set (by the first tick after accept) */
    uint64_t born_ms;
    struct conn *prev;
    struct conn *next;
};

struct fed_endpoint {
    struct fed_endpoint_hooks hooks;
    int lfd;
    int port;
    struct ident *ident; /* current identity (a reference), NULL until one is set */
    uint8_t *bundle;     /* owned copy, NULL until set */
    size_t bundle_len;
    struct conn *conns;
    size_t n_conns;
    uint64_t served;
    int listen_paused; /* out of descriptors: not watching lfd until the next tick */
};

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct conn *c = ctx;
    ssize_t n;

    (void)ssl;
    if (c == NULL || sz <= 0) {
        return WOLFSSL_CBIO_ERR_GENERAL;
    }
    do {
        n = recv(c->fd, buf, (size_t)sz, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        return (int)n;
    }
    if (n == 0) {
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct conn *c = ctx;
    ssize_t n;

    (void)ssl;
    if (c == NULL || sz <= 0) {
        return WOLFSSL_CBIO_ERR_GENERAL;
    }
    do {
        /* A client that went away must not kill the daemon with SIGPIPE. */
        n = send(c->fd, buf, (size_t)sz, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    }
    if (errno == EPIPE) {
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    }
    return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

/* Unlink, stop watching, free and close. close_notify is sent first when `notify` is set. */
static void conn_close(struct conn *c, int notify)
{
    struct fed_endpoint *ep = c->ep;

    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        ep->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    ep->n_conns--;
    if (c->mask != 0) {
        /* Failing to stop watching an fd we are about to close changes nothing for us. */
        (void)ep->hooks.watch(ep->hooks.arg, c->fd, 0);
    }
    if (c->ssl != NULL) {
        if (notify) {
            /* Best effort on a non-blocking socket: the connection is going either way. */
            (void)wolfSSL_shutdown(c->ssl);
        }
        wolfSSL_free(c->ssl);
    }
    (void)close(c->fd); /* nothing of ours is left unsent that a retry could save */
    ident_unref(c->id);
    ly_buf_free(&c->answer);
    free(c);
}

static int conn_watch(struct conn *c, int mask)
{
    if (c->mask == mask) {
        return 0;
    }
    if (c->ep->hooks.watch(c->ep->hooks.arg, c->fd, mask) != 0) {
        return -1;
    }
    c->mask = mask;
    return 0;
}

/* After a wolfSSL call that did not complete: wait for what it needs, or -1 (give up). */
static int conn_wait(struct conn *c, int ret)
{
    int e = wolfSSL_get_error(c->ssl, ret);

    if (e == WOLFSSL_ERROR_WANT_READ) {
        return conn_watch(c, FED_IO_READ);
    }
    if (e == WOLFSSL_ERROR_WANT_WRITE) {
        return conn_watch(c, FED_IO_WRITE);
    }
    return -1;
}

/* The request is decided: build the whole answer now, so a later bundle change cannot touch it. */
static int conn_answer(struct conn *c)
{
    struct fed_endpoint *ep = c->ep;
    struct ly_error e;

    ly_error_clear(&e);
    c->status = fed_req_status(&c->req, ep->bundle != NULL);
    if (fed_answer_build(c->status, fed_req_is_head(&c->req), ep->bundle, ep->bundle_len,
                         ly_time_now(), &c->answer, &e) < 0) {
        return -1;
    }
    c->answer_off = 0;
    c->state = CONN_WRITE;
    return 0;
}

/*
 * Run the connection as far as it goes without blocking. Returns when it waits on the socket or
 * has been closed (c is then freed).
 */
static void conn_run(struct conn *c)
{
    uint8_t buf[2048];
    int rc;

    for (;;) {
        switch (c->state) {
        case CONN_HANDSHAKE:
            rc = wolfSSL_accept(c->ssl);
            if (rc != WOLFSSL_SUCCESS) {
                if (conn_wait(c, rc) < 0) {
                    conn_close(c, 0);
                }
                return;
            }
            c->state = CONN_READ;
            break;
        case CONN_READ:
            /* Every pass either reads at least one byte of a head capped at
             * FED_ENDPOINT_MAX_HEAD, or leaves: the loop is bounded. */
            rc = wolfSSL_read(c->ssl, buf, (int)sizeof(buf));
            if (rc <= 0) {
                /* The peer closed or failed before a whole request: nothing to answer. */
                if (conn_wait(c, rc) < 0) {
                    conn_close(c, 0);
                }
                return;
            }
            if (fed_req_feed(&c->req, buf, (size_t)rc, NULL) == 1 && conn_answer(c) < 0) {
                conn_close(c, 1);
                return;
            }
            break;
        case CONN_WRITE:
            if (c->answer_off < c->answer.len) {
                size_t left = c->answer.len - c->answer_off;
                int chunk = left > EP_WRITE_CHUNK ? EP_WRITE_CHUNK : (int)left;
                /* On WANT_WRITE the same call is repeated with the same arguments, as
                 * wolfSSL requires. */
                rc = wolfSSL_write(c->ssl, c->answer.data + c->answer_off, chunk);
                if (rc <= 0) {
                    if (conn_wait(c, rc) < 0) {
                        conn_close(c, 0);
                    }
                    return;
                }
                c->answer_off += (size_t)rc;
                break;
            }
            if (c->status == 200) {
                c->ep->served++;
            }
            c->state = CONN_SHUTDOWN;
            break;
        case CONN_SHUTDOWN:
        default:
            rc = wolfSSL_shutdown(c->ssl);
            /* Our close_notify is out (or cannot be): we do not wait for the peer's. */
            if (rc == WOLFSSL_SUCCESS || rc == WOLFSSL_SHUTDOWN_NOT_DONE || conn_wait(c, rc) < 0) {
                conn_close(c, 0);
            }
            return;
        }
    }
}

static void conn_open(struct fed_endpoint *ep, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        (void)close(fd); /* shed the connection: the client retries */
        return;
    }
    c->ep = ep;
    c->fd = fd;
    c->id = ep->ident;
    c->id->refs++;
    ly_buf_init(&c->answer, 0);
    fed_req_init(&c->req);
    c->next = ep->conns;
    if (ep->conns != NULL) {
        ep->conns->prev = c;
    }
    ep->conns = c;
    ep->n_conns++;
    c->ssl = wolfSSL_new(c->id->ctx);
    if (c->ssl == NULL) {
        conn_close(c, 0);
        return;
    }
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    /* The handshake starts on the next readiness report, never inside the accept: so a
     * connection's identity is fixed before any of its TLS bytes is read, and one call never
     * runs a whole exchange for a fast client while others wait. */
    if (conn_watch(c, FED_IO_READ) < 0) {
        conn_close(c, 0);
    }
}

static void accept_batch(struct fed_endpoint *ep)
{
    int i;

    for (i = 0; i < EP_ACCEPT_BATCH; i++) {
        int fd = accept4(ep->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The pending connection stays queued and a level-triggered loop would report
                 * the listener again at once, forever: stop watching it until the next tick. */
                if (ep->hooks.watch(ep->hooks.arg, ep->lfd, 0) == 0) {
                    ep->listen_paused = 1;
                }
            }
            return; /* EAGAIN: drained */
        }
        if (ep->ident == NULL || ep->n_conns >= FED_ENDPOINT_MAX_CONNS) {
            /* Refused at once: nothing to serve with, or too busy. Clients retry later. */
            (void)close(fd);
            continue;
        }
        conn_open(ep, fd);
    }
}

/* ---- the endpoint ------------------------------------------------------------------------ */

int fed_endpoint_new(const struct fed_endpoint_hooks *h, const char *host, int port,
                     struct fed_endpoint **out, struct ly_error *err)
{
    struct fed_endpoint *ep;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int one = 1;
    int rc;

    ly_error_clear(err);
    if (out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "no place for the endpoint");
    }
    *out = NULL;
    if (h == NULL || h->watch == NULL || host == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "the bundle endpoint needs a watch hook");
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    if (port < 0 || port > 65535) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_ENDPOINT_R_ADDRESS,
                             "bundle endpoint port %d is out of range", port);
    }
    sa.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        char esc[80];
        return ly_error_setx(err, LY_ERR_USAGE, FED_ENDPOINT_R_ADDRESS,
                             "bundle endpoint address '%s' is not an IPv4 literal or localhost",
                             ly_text_escape(host, strlen(host), 64, esc, sizeof(esc)));
    }
    ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    ep->hooks = *h;
    ep->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ep->lfd < 0) {
        free(ep);
        return ly_error_set(err, LY_ERR_IO, FED_ENDPOINT_R_LISTEN, "bundle endpoint socket");
    }
    if (setsockopt(ep->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(ep->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ep->lfd, 128) != 0 ||
        getsockname(ep->lfd, (struct sockaddr *)&sa, &sl) != 0) {
        char esc[80];
        rc = ly_error_set(err, LY_ERR_IO, FED_ENDPOINT_R_LISTEN,
                          "cannot listen on %s:%d for the bundle endpoint",
                          ly_text_escape(host, strlen(host), 64, esc, sizeof(esc)), port);
        (void)close(ep->lfd); /* never used */
        free(ep);
        return rc;
    }
    ep->port = ntohs(sa.sin_port);
    if (ep->hooks.watch(ep->hooks.arg, ep->lfd, FED_IO_READ) != 0) {
        (void)close(ep->lfd); /* never watched */
        free(ep);
        return ly_error_setx(err, LY_ERR_IO, FED_ENDPOINT_R_HOOK,
                             "the loop refused the bundle endpoint socket");
    }
    *out = ep;
    return 0;
}

int fed_endpoint_port(const struct fed_endpoint *ep)
{
    return ep->port;
}

static void ident_install(struct fed_endpoint *ep, struct ident *id)
{
    struct ident *old = ep->ident;

    ep->ident = id;
    /* Connections accepted with the old identity hold their own references to it. */
    ident_unref(old);
}

static int identity_args_ok(const uint8_t *cert, size_t cert_len, const uint8_t *key,
                            size_t key_len, struct ly_error *err)
{
    if (cert == NULL || key == NULL || cert_len == 0 || key_len == 0 ||
        cert_len > FED_ENDPOINT_MAX_IDENTITY || key_len > FED_ENDPOINT_MAX_IDENTITY) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_ENDPOINT_R_TOO_BIG,
                             "certificate chain or key is empty or over %u bytes",
                             FED_ENDPOINT_MAX_IDENTITY);
    }
    return 0;
}

int fed_endpoint_set_identity(struct fed_endpoint *ep, const uint8_t *chain_der, size_t chain_len,
                              const uint8_t *key_der, size_t key_len, struct ly_error *err)
{
    struct x509svid_chain *chain = NULL;
    struct ly_buf pem;
    struct ident *id = NULL;
    const uint8_t *leaf;
    size_t leaf_len = 0;
    size_t i;
    int rc;

    ly_error_clear(err);
    rc = identity_args_ok(chain_der, chain_len, key_der, key_len, err);
    if (rc < 0) {
        return rc;
    }
    /* wolfSSL takes a chain as PEM: each DER certificate is re-encoded (no parsing by us). */
    ly_buf_init(&pem, 4 * FED_ENDPOINT_MAX_IDENTITY);
    rc = x509svid_chain_parse(chain_der, chain_len, &chain, err);
    if (rc < 0) {
        if (err != NULL) {
            err->reason = FED_ENDPOINT_R_BAD_CERT;
        }
        goto out;
    }
    for (i = 0; rc == 0 && i < x509svid_chain_count(chain); i++) {
        size_t n = 0;
        const uint8_t *d = x509svid_chain_cert(chain, i, &n);
        rc = ly_pem_append(&pem, "CERTIFICATE", d, n, err);
    }
    leaf = x509svid_chain_cert(chain, 0, &leaf_len);
    if (rc == 0 && leaf == NULL) {
        rc = ly_error_setx(err, LY_ERR_PARSE, FED_ENDPOINT_R_BAD_CERT, "empty certificate chain");
    }
    if (rc == 0) {
        rc = ident_new(pem.data, pem.len, leaf, leaf_len, key_der, key_len, &id, err);
    }
    if (rc == 0) {
        ident_install(ep, id);
    }
out:
    x509svid_chain_free(chain);
    ly_buf_free(&pem);
    return rc;
}

int fed_endpoint_set_identity_pem(struct fed_endpoint *ep, const uint8_t *cert_pem, size_t cert_len,
                                  const uint8_t *key_pem, size_t key_len, struct ly_error *err)
{
    uint8_t *leaf = NULL;
    uint8_t *key = NULL;
    struct ident *id = NULL;
    int leaf_len;
    int kl;
    int rc;

    ly_error_clear(err);
    rc = identity_args_ok(cert_pem, cert_len, key_pem, key_len, err);
    if (rc < 0) {
        return rc;
    }
    /* DER is always shorter than its PEM, so buffers of the PEM's size are enough. */
    leaf = malloc(cert_len);
    key = malloc(key_len);
    if (leaf == NULL || key == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    /* The first CERTIFICATE block is the leaf: decoded for the key check and fingerprint. */
    leaf_len = wc_CertPemToDer(cert_pem, (int)cert_len, leaf, (int)cert_len, CERT_TYPE);
    if (leaf_len <= 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, FED_ENDPOINT_R_BAD_CERT,
                           "no PEM certificate in the certificate chain");
        goto out;
    }
    kl = wc_KeyPemToDer(key_pem, (int)key_len, key, (int)key_len, NULL);
    if (kl <= 0) {
        rc = ly_error_setx(err, LY_ERR_PARSE, FED_ENDPOINT_R_BAD_KEY,
                           "no unencrypted PEM private key");
        goto out;
    }
    rc = ident_new(cert_pem, cert_len, leaf, (size_t)leaf_len, key, (size_t)kl, &id, err);
    if (rc == 0) {
        ident_install(ep, id);
    }
out:
    free(leaf);
    ly_wipe_free(key, key_len);
    return rc;
}

const char *fed_endpoint_cert_sha256(const struct fed_endpoint *ep)
{
    return ep->ident != NULL ? ep->ident->sha256_hex : "";
}

int fed_endpoint_set_bundle(struct fed_endpoint *ep, const uint8_t *json, size_t len,
                            struct ly_error *err)
{
    uint8_t *copy;

    ly_error_clear(err);
    if (json == NULL || len == 0 || len > FED_ENDPOINT_MAX_BUNDLE) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_ENDPOINT_R_TOO_BIG,
                             "bundle is empty or over %u bytes", FED_ENDPOINT_MAX_BUNDLE);
    }
    copy = malloc(len);
    if (copy == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    memcpy(copy, json, len);
    free(ep->bundle);
    ep->bundle = copy;
    ep->bundle_len = len;
    return 0;
}

void fed_endpoint_io(struct fed_endpoint *ep, int fd, int mask)
{
    struct conn *c;

    (void)mask; /* each state knows what it waits for; a spurious report costs one EAGAIN */
    if (ep == NULL || fd < 0) {
        return;
    }
    if (fd == ep->lfd) {
        accept_batch(ep);
        return;
    }
    for (c = ep->conns; c != NULL; c = c->next) {
        if (c->fd == fd) {
            conn_run(c);
            return;
        }
    }
}

void fed_endpoint_tick(struct fed_endpoint *ep, uint64_t now_ms)
{
    struct conn *c;
    struct conn *next;

    if (ep == NULL) {
        return;
    }
    if (ep->listen_paused && ep->hooks.watch(ep->hooks.arg, ep->lfd, FED_IO_READ) == 0) {
        ep->listen_paused = 0;
    }
    for (c = ep->conns; c != NULL; c = next) {
        next = c->next;
        if (!c->stamped) {
            c->stamped = 1;
            c->born_ms = now_ms;
        } else if (now_ms >= c->born_ms && now_ms - c->born_ms >= FED_ENDPOINT_TIMEOUT_MS) {
            /* Too slow: no close_notify, the peer is not keeping up anyway. */
            conn_close(c, 0);
        }
    }
}

uint64_t fed_endpoint_served(const struct fed_endpoint *ep)
{
    return ep->served;
}

size_t fed_endpoint_conns(const struct fed_endpoint *ep)
{
    return ep->n_conns;
}

void fed_endpoint_free(struct fed_endpoint *ep)
{
    if (ep == NULL) {
        return;
    }
    while (ep->conns != NULL) {
        struct conn *c = ep->conns;
        conn_close(c, c->state != CONN_HANDSHAKE);
    }
    if (!ep->listen_paused) {
        /* Failing to stop watching a socket we are about to close changes nothing for us. */
        (void)ep->hooks.watch(ep->hooks.arg, ep->lfd, 0);
    }
    (void)close(ep->lfd); /* a listening socket has nothing to flush */
    ident_unref(ep->ident);
    ep->ident = NULL;
    free(ep->bundle);
    ep->bundle = NULL;
    free(ep);
}
