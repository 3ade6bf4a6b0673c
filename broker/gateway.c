/*
 * gateway: `lanyard gateway`. The main thread gets the workload's SVID over the Workload API
 * (broker/wsource), listens, and starts one thread per accepted connection; each thread
 * handshakes (broker/gwtls), then reads requests with libhttp-parser (broker/gwhttp), decides
 * them (server mode: token, session binding, consent, audit) and forwards them to the upstream
 * over a kept-alive connection of its own, streaming the response back as it arrives. It never
 * forwards a bearer token upstream and never logs one.
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../common/ly_buf.h"
#include "../common/ly_file.h"
#include "../common/ly_secret.h"
#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/spiffeid.h"
#include "../trust-bundles/bundle.h"
#include "audit.h"
#include "gwhttp.h"
#include "gwpolicy.h"
#include "gwtls.h"
#include "log.h"
#include "mcp.h"
#include "token.h"
#include "wsource.h"

#define IO_BUF 16384
#define WBUF_MAX (64u * 1024u)
#define FILTER_MAX (16u * 1024u * 1024u) /* largest list response the gateway filters */
#define POLL_STEP_MS 250
#define READ_TIMEOUT_MS (30 * 1000)   /* one blocking read once poll said readable */
#define WRITE_TIMEOUT_MS (60 * 1000)
#define CONNECT_TIMEOUT_MS (5 * 1000)
#define HEAD_TIMEOUT_MS (30 * 1000)   /* a request head must arrive within this once started */
#define UPSTREAM_HEAD_TIMEOUT_MS (300 * 1000)
#define AUDIT_SYNC_MS 100
#define SVID_WAIT_LOG_MS 5000
#define GW_QUEUE_SLOTS 256
#define NO_CERT_ID "(no verified client certificate)"

/* ---- shared state ------------------------------------------------------------------------- */

/* The JWT bundles tokens are checked against, reference counted so a swap never races a check. */
struct jwtset {
    atomic_int refs;
    uint64_t gen;
    struct bundle_set *set;
};

struct gw {
    const struct gateway_config *cfg;
    struct gwtls *tls;
    struct wsource *ws;
    volatile sig_atomic_t *stop;

    /* upstream */
    int up_tls;
    char up_host[256];
    char up_port[16];
    char up_authority[300];
    struct addrinfo *up_addrs;
    struct spiffeid server_id; /* client mode */

    /* listener (client mode: the accepted Host/Origin values) */
    char listen_port[16];

    /* server mode */
    struct gwpolicy *policy;
    pthread_mutex_t audit_mu;
    struct audit_log *audit;
    int audit_broken;
    pthread_mutex_t jwt_mu;
    struct jwtset *jwt;
    uint64_t jwt_gen;

    /* client mode: the token file, re-read when it changes */
    pthread_mutex_t tok_mu;
    struct ly_buf tok;
    struct timespec tok_mtime;
    ino_t tok_ino;
    off_t tok_size;

    atomic_int conns;
    atomic_ulong requests;

    /* worker pool */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    int queue[GW_QUEUE_SLOTS];
    int q_head, q_len;
    int idle, busy, workers;
};

static void jwtset_unref(struct jwtset *j)
{
    if (j == NULL || atomic_fetch_sub(&j->refs, 1) != 1) {
        return;
    }
    bundle_set_free(j->set);
    free(j);
}

static struct jwtset *jwtset_get(struct gw *g)
{
    struct jwtset *j;

    pthread_mutex_lock(&g->jwt_mu);
    j = g->jwt;
    if (j != NULL) {
        atomic_fetch_add(&j->refs, 1);
    }
    pthread_mutex_unlock(&g->jwt_mu);
    return j;
}

/* ---- pure helpers -------------------------------------------------------------------------- */

int gateway_parse_listen(const char *s, char *host, size_t hostsz, char *port, size_t portsz,
                         struct ly_error *err)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    char *end = NULL;
    unsigned long p;

    if (s == NULL || s[0] == '\0') {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "empty address: expected HOST:PORT");
    }
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':') {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "address '%.100s': expected [IPv6]:PORT", s);
        }
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL) {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "address '%.100s': expected HOST:PORT ([v6]:PORT for IPv6)", s);
        }
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "address '%.100s': bad host", s);
    }
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p == 0 || p > 65535 ||
        colon[1] == '+' || colon[1] == '-' || colon[1] == ' ') {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "address '%.100s': the port must be 1..65535", s);
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (snprintf(port, portsz, "%lu", p) >= (int)portsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "port too long");
    }
    return 0;
}

int gateway_parse_upstream(const char *url, int *tls, char *host, size_t hostsz, char *port,
                           size_t portsz, char *authority, size_t authsz, struct ly_error *err)
{
    struct http_parser_url u;
    size_t len;
    int n;

    if (url == NULL || url[0] == '\0') {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "empty upstream URL");
    }
    len = strlen(url);
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
        !(u.field_set & (1 << UF_HOST))) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "upstream '%.200s' is not an absolute http:// or https:// URL", url);
    }
    if (u.field_set & ((1 << UF_USERINFO) | (1 << UF_QUERY) | (1 << UF_FRAGMENT))) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "upstream '%.200s': no user info, query or fragment allowed", url);
    }
    if ((u.field_set & (1 << UF_PATH)) &&
        !(u.field_data[UF_PATH].len == 1 && url[u.field_data[UF_PATH].off] == '/')) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "upstream '%.200s': give only scheme, host and port (requests keep "
                             "their own path)",
                             url);
    }
    {
        const char *sc = url + u.field_data[UF_SCHEMA].off;
        size_t sl = u.field_data[UF_SCHEMA].len;
        if (sl == 4 && strncasecmp(sc, "http", 4) == 0) {
            *tls = 0;
        } else if (sl == 5 && strncasecmp(sc, "https", 5) == 0) {
            *tls = 1;
        } else {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "upstream '%.200s': the scheme must be http or https", url);
        }
    }
    if (u.field_data[UF_HOST].len >= hostsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "upstream host too long");
    }
    memcpy(host, url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    host[u.field_data[UF_HOST].len] = '\0';
    n = snprintf(port, portsz, "%u",
                 (u.field_set & (1 << UF_PORT)) ? u.port : (*tls ? 443u : 80u));
    if (n < 0 || (size_t)n >= portsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "port too long");
    }
    n = strchr(host, ':') != NULL ? snprintf(authority, authsz, "[%s]:%s", host, port)
                                  : snprintf(authority, authsz, "%s:%s", host, port);
    if (n < 0 || (size_t)n >= authsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "upstream authority too long");
    }
    return 0;
}

int gateway_bearer(const char *v, size_t len, const char **tok, size_t *toklen)
{
    size_t i = 6;

    *tok = NULL;
    *toklen = 0;
    if (len < 8 || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t')) {
        return -1;
    }
    while (i < len && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    while (len > i && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
        len--;
    }
    if (i >= len) {
        return -1;
    }
    /* RFC 6750 §2.1 b64token: the characters a JWT uses and a few more, nothing else. */
    for (size_t k = i; k < len; k++) {
        unsigned char ch = (unsigned char)v[k];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/' ||
              ch == '=')) {
            return -1;
        }
    }
    *tok = v + i;
    *toklen = len - i;
    return 0;
}

/* ---- one side of a connection: buffered reads, buffered writes ----------------------------- */

struct side {
    struct gwtls_conn *io;
    char in[IO_BUF];
    size_t in_len, in_off;
    struct ly_buf out; /* pending output, flushed by side_flush */
};

/* Wait until s is readable (TLS-buffered bytes count), up to timeout_ms; 1 ready, 0 timeout. */
static int side_wait(struct side *s, int timeout_ms, volatile sig_atomic_t *stop)
{
    int waited = 0;

    if (s->in_off < s->in_len || gwtls_pending(s->io) > 0) {
        return 1;
    }
    for (;;) {
        struct pollfd p = {gwtls_fd(s->io), POLLIN, 0};
        int step = timeout_ms - waited < POLL_STEP_MS ? timeout_ms - waited : POLL_STEP_MS;
        int r = poll(&p, 1, step < 0 ? 0 : step);
        if (r > 0) {
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            return 1; /* let the read report it */
        }
        waited += step;
        if ((stop != NULL && *stop) || waited >= timeout_ms) {
            return 0;
        }
    }
}

/* Read more bytes into s->in (only when it is drained). >0 bytes, 0 peer closed, -1 error. */
static long side_fill(struct side *s, struct ly_error *err)
{
    long n;

    if (s->in_off < s->in_len) {
        return (long)(s->in_len - s->in_off);
    }
    s->in_off = s->in_len = 0;
    n = gwtls_read(s->io, s->in, sizeof(s->in), err);
    if (n > 0) {
        s->in_len = (size_t)n;
    }
    return n;
}

static int side_put(struct side *s, const void *data, size_t len, struct ly_error *err)
{
    if (s->out.len + len > WBUF_MAX && s->out.len > 0) {
        int rc = gwtls_write_all(s->io, s->out.data, s->out.len, err);
        ly_buf_reset(&s->out);
        if (rc < 0) {
            return rc;
        }
    }
    if (len > WBUF_MAX) {
        return gwtls_write_all(s->io, data, len, err);
    }
    return ly_buf_append(&s->out, data, len, err);
}

static int side_putf(struct side *s, struct ly_error *err, const char *fmt, ...) LY_PRINTF(3, 4);
static int side_putf(struct side *s, struct ly_error *err, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "header line too long");
    }
    return side_put(s, tmp, (size_t)n, err);
}

static int side_flush(struct side *s, struct ly_error *err)
{
    int rc = 0;

    if (s->out.len > 0) {
        rc = gwtls_write_all(s->io, s->out.data, s->out.len, err);
        ly_buf_reset(&s->out);
    }
    return rc;
}

static void side_close(struct side *s)
{
    gwtls_close(s->io);
    s->io = NULL;
    s->in_len = s->in_off = 0;
    ly_buf_reset(&s->out);
}

/* ---- per connection ------------------------------------------------------------------------- */

struct conn {
    struct gw *g;
    struct side down; /* the client */
    struct side up;   /* the upstream (io NULL when not connected) */
    struct gwhttp_msg req;
    struct gwhttp_msg resp;
    const struct spiffeid *peer; /* server mode: the verified client */
    char cert_hex[65];
    /* one-entry token cache: signature results depend only on the bytes and the bundles */
    int tok_cached;
    uint8_t tok_sha[32];
    uint64_t tok_gen;
    struct token_claims claims;
    int close_after; /* close the client connection after this response */
    int accepted_fd; /* the socket, until the connection's thread wraps it */
};

/* What the current request needs from the response path. */
struct fwd {
    int filter;                 /* filter list results */
    struct mcp_msg *msg;        /* the parsed body (filter ids and kinds) */
    struct gwpolicy_snap *snap; /* consent used for filtering */
    const char *user;
    int bind_session;           /* an initialize: bind the session the upstream opens */
    int drop_session;           /* a DELETE: forget the session when it succeeds */
    const char *sid;
    size_t sid_len;
    /* response state */
    int mode;
    int status;
    int wrote_head;
    int client_gone;
    struct ly_buf collect;
    struct mcp_sse sse;
    int sse_on;
    struct ly_error err;
};

enum { MODE_LENGTH = 1, MODE_CHUNKED, MODE_CLOSE, MODE_FILTER_JSON, MODE_FILTER_SSE, MODE_NONE };

static int http10(const struct gwhttp_msg *m)
{
    return m->parser.http_major == 1 && m->parser.http_minor == 0;
}

/* A gateway-made answer: JSON-RPC error body, status, optional WWW-Authenticate. */
static int send_error(struct conn *c, int status, const json_t *id, int code, const char *msg,
                      const char *www_auth)
{
    struct ly_error e;
    json_t *body = json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error",
                             "code", code, "message", msg);
    char *txt;
    size_t n;
    int rc;

    if (body == NULL) {
        body = json_pack("{s:s, s:n, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", "error", "code",
                         code, "message", "error");
    }
    txt = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (txt == NULL) {
        return -1;
    }
    n = strlen(txt);
    ly_error_clear(&e);
    rc = side_putf(&c->down, &e,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                   status, http_status_str((enum http_status)status), n,
                   www_auth != NULL ? "WWW-Authenticate: " : "", www_auth != NULL ? www_auth : "",
                   www_auth != NULL ? "\r\n" : "", c->close_after ? "Connection: close\r\n" : "");
    if (rc == 0) {
        rc = side_put(&c->down, txt, n, &e);
    }
    if (rc == 0) {
        rc = side_flush(&c->down, &e);
    }
    free(txt);
    return rc;
}

/* Read one message from side s into m; 0 done, 1 the peer closed before a new message, -1 error. */
static int read_msg(struct conn *c, struct side *s, struct gwhttp_msg *m, int idle_ms,
                    struct ly_error *err)
{
    int first = 1;

    while (!m->done) {
        size_t used = 0;
        long n;

        if (s->in_off < s->in_len) {
            if (gwhttp_feed(m, s->in + s->in_off, s->in_len - s->in_off, &used) < 0) {
                *err = m->err;
                return -1;
            }
            s->in_off += used;
            continue;
        }
        if (!side_wait(s, m->started ? HEAD_TIMEOUT_MS : idle_ms, c->g->stop)) {
            if (!m->started) {
                return 1;
            }
            return ly_error_setx(err, LY_ERR_IO, 0, "timed out inside a message");
        }
        n = side_fill(s, err);
        if (n < 0) {
            return m->started ? -1 : 1;
        }
        if (n == 0) {
            if (!m->started) {
                return 1;
            }
            if (gwhttp_eof(m) < 0) {
                *err = m->err;
                return -1;
            }
            return 0;
        }
        first = 0;
    }
    (void)first;
    return 0;
}

/* ---- audit -------------------------------------------------------------------------------- */

static int audit_decision(struct conn *c, const char *user, const char *method,
                          const char *target, int allow, const char *reason,
                          const char *consent_id)
{
    struct gw *g = c->g;
    struct audit_event ev;
    struct ly_error e;
    int rc;

    if (g->audit == NULL) {
        return 0; /* client mode */
    }
    memset(&ev, 0, sizeof(ev));
    ev.client_id = c->peer != NULL ? c->peer->str : NO_CERT_ID;
    ev.cert_sha256 = c->cert_hex[0] != '\0' ? c->cert_hex : NULL;
    ev.user = user;
    ev.method = method;
    ev.target = target;
    ev.decision = allow ? "allow" : "deny";
    ev.reason = reason;
    ev.consent_id = consent_id != NULL && consent_id[0] != '\0' ? consent_id : NULL;
    ly_error_clear(&e);
    pthread_mutex_lock(&g->audit_mu);
    rc = audit_append(g->audit, &ev, &e);
    if (rc < 0 && e.reason == AUDIT_R_FIELD) {
        /* A target the log refuses (not UTF-8, too long): keep the decision, drop the value. */
        ev.target = "(unprintable target)";
        ly_error_clear(&e);
        rc = audit_append(g->audit, &ev, &e);
    }
    pthread_mutex_unlock(&g->audit_mu);
    if (rc < 0) {
        log_event(LOG_ERROR, "gateway.audit_failed", LOG_STR, "error", e.msg, LOG_END);
    }
    return rc;
}

/* ---- tokens --------------------------------------------------------------------------------- */

/*
 * Who the user is: 0 with *user set (NULL for a workload-only request), or -1 after a 401 was
 * sent and audited.
 */
static int authenticate(struct conn *c, const char *method, const char **user)
{
    struct gw *g = c->g;
    size_t vl = 0;
    const char *v = gwhttp_get(&c->req, "authorization", &vl);
    const char *tok;
    size_t tl;
    struct ly_error e;
    char www[256];
    const char *why;
    uint8_t sha[32];
    struct jwtset *js;
    int rc;

    *user = NULL;
    ly_error_clear(&e);
    if (gwhttp_count(&c->req, "authorization") > 1) {
        why = "more than one Authorization header";
        goto refuse;
    }
    if (v == NULL) {
        if (g->cfg->allow_no_user) {
            return 0;
        }
        why = "missing bearer token";
        (void)snprintf(www, sizeof(www), "Bearer realm=\"lanyard\"");
        (void)audit_decision(c, NULL, method, NULL, 0, why, NULL);
        (void)send_error(c, 401, NULL, GATEWAY_RPC_UNAUTHORIZED, "a bearer token is required",
                         www);
        return -1;
    }
    if (gateway_bearer(v, vl, &tok, &tl) < 0) {
        why = "Authorization is not a Bearer token";
        goto refuse;
    }
    if (tl > TOKEN_MAX_LEN) {
        why = "token too long";
        goto refuse;
    }
    if (wc_Sha256Hash((const byte *)tok, (word32)tl, sha) != 0) {
        why = "internal error";
        goto refuse;
    }
    js = jwtset_get(g);
    if (js == NULL) {
        why = "no JWT bundle received yet";
        goto refuse;
    }
    if (!(c->tok_cached && c->tok_gen == js->gen && ly_memeq_ct(sha, c->tok_sha, 32))) {
        c->tok_cached = 0;
        rc = token_verify_signed(tok, tl, js->set, &c->claims, &e);
        if (rc < 0) {
            jwtset_unref(js);
            why = token_reason_name(e.reason);
            goto refuse_detail;
        }
        memcpy(c->tok_sha, sha, 32);
        c->tok_gen = js->gen;
        c->tok_cached = 1;
    }
    jwtset_unref(js);
    rc = token_check(&c->claims, g->cfg->audience, c->peer, gwtls_peer_cert_sha256(c->down.io),
                     ly_time_now(), g->cfg->token_leeway, &e);
    if (rc < 0) {
        why = token_reason_name(e.reason);
        goto refuse_detail;
    }
    *user = c->claims.user;
    return 0;
refuse_detail:
    log_event(LOG_INFO, "gateway.token_refused", LOG_STR, "client_id", c->peer->str, LOG_STR,
              "reason", why, LOG_STR, "detail", e.msg, LOG_END);
refuse:
    (void)snprintf(www, sizeof(www),
                   "Bearer realm=\"lanyard\", error=\"invalid_token\", error_description=\"%s\"",
                   why);
    (void)audit_decision(c, NULL, method, NULL, 0, why, NULL);
    {
        char m[160];
        (void)snprintf(m, sizeof(m), "invalid bearer token: %s", why);
        (void)send_error(c, 401, NULL, GATEWAY_RPC_UNAUTHORIZED, m, www);
    }
    return -1;
}

/* ---- forwarding ----------------------------------------------------------------------------- */

static int tcp_connect(struct gw *g, int *fd_out, struct ly_error *err)
{
    struct addrinfo *a;
    int last = 0;

    for (a = g->up_addrs; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        a->ai_protocol);
        int one = 1;
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            (void)close(fd);
            continue;
        }
        {
            struct pollfd p = {fd, POLLOUT, 0};
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1 ||
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
                last = soerr != 0 ? soerr : ETIMEDOUT;
                (void)close(fd);
                continue;
            }
        }
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
            last = errno;
            (void)close(fd);
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        *fd_out = fd;
        return 0;
    }
    errno = last;
    return ly_error_set(err, LY_ERR_IO, 0, "cannot connect to the upstream %s", g->up_authority);
}

/* The kept-alive upstream connection is still usable: not closed by the upstream meanwhile. */
static int upstream_alive(struct conn *c)
{
    struct pollfd p;

    if (c->up.io == NULL) {
        return 0;
    }
    p.fd = gwtls_fd(c->up.io);
    p.events = POLLIN;
    p.revents = 0;
    /* Readable while idle means a close (or garbage): either way, start afresh. */
    return poll(&p, 1, 0) == 0 && gwtls_pending(c->up.io) == 0;
}

static int upstream_open(struct conn *c, struct ly_error *err)
{
    struct gw *g = c->g;
    int fd = -1;
    int rc;

    if (upstream_alive(c)) {
        return 0;
    }
    if (c->up.io != NULL) {
        side_close(&c->up);
    }
    rc = tcp_connect(g, &fd, err);
    if (rc < 0) {
        return rc;
    }
    if (g->up_tls) {
        int is_ip = strchr(g->up_host, ':') != NULL || inet_addr(g->up_host) != INADDR_NONE;
        rc = gwtls_connect(g->tls, fd, is_ip ? NULL : g->up_host, &g->server_id,
                           GATEWAY_HANDSHAKE_TIMEOUT_MS, &c->up.io, err);
        if (rc < 0) {
            log_event(LOG_WARN, "gateway.upstream_refused", LOG_STR, "upstream",
                      g->up_authority, LOG_STR, "error", err->msg, LOG_END);
            return rc;
        }
    } else {
        rc = gwtls_conn_plain(fd, &c->up.io, err);
        if (rc < 0) {
            return rc;
        }
    }
    (void)gwtls_conn_set_timeouts(c->up.io, READ_TIMEOUT_MS, WRITE_TIMEOUT_MS);
    c->up.in_len = c->up.in_off = 0;
    return 0;
}

/* The client-mode token: the file's current contents (re-read when it changes). */
static int client_token(struct gw *g, struct ly_buf *out, struct ly_error *err)
{
    struct stat st;
    int rc = 0;

    if (g->cfg->token_file == NULL) {
        return 0;
    }
    pthread_mutex_lock(&g->tok_mu);
    if (stat(g->cfg->token_file, &st) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, 0, "token file %.200s", g->cfg->token_file);
        goto out;
    }
    if (g->tok.len == 0 || st.st_ino != g->tok_ino || st.st_size != g->tok_size ||
        st.st_mtim.tv_sec != g->tok_mtime.tv_sec || st.st_mtim.tv_nsec != g->tok_mtime.tv_nsec) {
        struct ly_buf b;
        size_t n;
        rc = ly_file_read(g->cfg->token_file, TOKEN_MAX_LEN + 2, 1, &b, err);
        if (rc < 0) {
            goto out;
        }
        n = b.len;
        while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' || b.data[n - 1] == ' ')) {
            n--;
        }
        {
            const char *t;
            size_t tl;
            char hdr[16 + TOKEN_MAX_LEN];
            int hn = snprintf(hdr, sizeof(hdr), "Bearer %.*s", (int)n, (const char *)b.data);
            if (n == 0 || hn < 0 || (size_t)hn >= sizeof(hdr) ||
                gateway_bearer(hdr, (size_t)hn, &t, &tl) < 0) {
                ly_wipe(hdr, sizeof(hdr));
                ly_buf_free(&b);
                rc = ly_error_setx(err, LY_ERR_PARSE, 0,
                                   "token file %.200s does not hold one bearer token",
                                   g->cfg->token_file);
                goto out;
            }
            ly_wipe(hdr, sizeof(hdr));
        }
        ly_buf_free(&g->tok);
        ly_buf_init_secret(&g->tok, TOKEN_MAX_LEN + 2);
        rc = ly_buf_append(&g->tok, b.data, n, err);
        ly_buf_free(&b);
        if (rc < 0) {
            goto out;
        }
        g->tok_ino = st.st_ino;
        g->tok_size = st.st_size;
        g->tok_mtime = st.st_mtim;
    }
    rc = ly_buf_append(out, g->tok.data, g->tok.len, err);
out:
    pthread_mutex_unlock(&g->tok_mu);
    return rc;
}

/* Headers never copied from the client to the upstream. */
static int header_dropped(struct conn *c, size_t i)
{
    int server = !c->g->cfg->client_mode;
    size_t nl;
    const char *name = gwhttp_name(&c->req, i, &nl);

    if (gwhttp_is_hop(&c->req, i) || gwhttp_name_is(&c->req, i, "host") ||
        gwhttp_name_is(&c->req, i, "expect")) {
        return 1;
    }
    /* Identity headers are the gateway's own: a client can never set them. */
    if (nl >= strlen(GATEWAY_HDR_PREFIX) &&
        strncasecmp(name, GATEWAY_HDR_PREFIX, strlen(GATEWAY_HDR_PREFIX)) == 0) {
        return 1;
    }
    /* No token passthrough (MCP authorization: the token was issued for this gateway). */
    if (server && (gwhttp_name_is(&c->req, i, "authorization") ||
                   gwhttp_name_is(&c->req, i, "accept-encoding"))) {
        return 1;
    }
    return 0;
}

static int send_request(struct conn *c, const char *consent_id, const char *user,
                        struct ly_error *err)
{
    struct gw *g = c->g;
    struct side *u = &c->up;
    const char *m = http_method_str((enum http_method)c->req.method);
    int rc;

    rc = side_putf(u, err, "%s %s HTTP/1.1\r\nHost: %s\r\n", m, gwhttp_url(&c->req),
                   g->up_authority);
    for (size_t i = 0; rc == 0 && i < c->req.n; i++) {
        size_t nl, vl;
        const char *name, *val;
        if (header_dropped(c, i)) {
            continue;
        }
        name = gwhttp_name(&c->req, i, &nl);
        val = gwhttp_value(&c->req, i, &vl);
        rc = side_put(u, name, nl, err);
        rc = rc == 0 ? side_put(u, ": ", 2, err) : rc;
        rc = rc == 0 ? side_put(u, val, vl, err) : rc;
        rc = rc == 0 ? side_put(u, "\r\n", 2, err) : rc;
    }
    if (rc == 0 && !g->cfg->client_mode) {
        rc = side_putf(u, err, "%s: %s\r\n%s: %s\r\n", GATEWAY_HDR_CLIENT, c->peer->str,
                       GATEWAY_HDR_CERT, c->cert_hex);
        if (rc == 0 && user != NULL) {
            rc = side_putf(u, err, "%s: %s\r\n", GATEWAY_HDR_USER, user);
        }
        if (rc == 0 && consent_id != NULL && consent_id[0] != '\0') {
            rc = side_putf(u, err, "%s: %s\r\n", GATEWAY_HDR_CONSENT, consent_id);
        }
    }
    if (rc == 0 && g->cfg->client_mode && gwhttp_get(&c->req, "authorization", NULL) == NULL &&
        g->cfg->token_file != NULL) {
        struct ly_buf t;
        ly_buf_init_secret(&t, TOKEN_MAX_LEN + 2);
        rc = client_token(g, &t, err);
        if (rc == 0 && t.len > 0) {
            rc = side_put(u, "Authorization: Bearer ", 22, err);
            rc = rc == 0 ? side_put(u, t.data, t.len, err) : rc;
            rc = rc == 0 ? side_put(u, "\r\n", 2, err) : rc;
        }
        ly_buf_free(&t);
    }
    if (rc == 0 && (c->req.body.len > 0 || c->req.method == HTTP_POST)) {
        rc = side_putf(u, err, "Content-Length: %zu\r\n", c->req.body.len);
    }
    rc = rc == 0 ? side_put(u, "\r\n", 2, err) : rc;
    if (rc == 0 && c->req.body.len > 0) {
        rc = side_put(u, c->req.body.data, c->req.body.len, err);
    }
    if (rc == 0) {
        rc = side_flush(u, err);
    }
    /* The output buffer may hold the token: never leave it lying in memory. */
    if (u->out.data != NULL) {
        ly_wipe(u->out.data, u->out.cap);
    }
    return rc;
}

/* Write a chunk of body to the client in the response's framing. */
static int body_out(struct conn *c, struct fwd *f, const char *data, size_t len)
{
    struct side *d = &c->down;
    int rc = 0;

    if (len == 0) {
        return 0;
    }
    if (f->mode == MODE_CHUNKED || f->mode == MODE_FILTER_SSE) {
        rc = side_putf(d, &f->err, "%zx\r\n", len);
        rc = rc == 0 ? side_put(d, data, len, &f->err) : rc;
        rc = rc == 0 ? side_put(d, "\r\n", 2, &f->err) : rc;
    } else {
        rc = side_put(d, data, len, &f->err);
    }
    return rc;
}

static int filter_allow(enum mcp_op op, const char *target, void *arg)
{
    struct conn *c = ((void **)arg)[0];
    struct fwd *f = ((void **)arg)[1];
    struct gwpolicy_verdict v;

    return gwpolicy_decide(f->snap, f->user, c->peer, mcp_op_kind(op), target, ly_time_now(),
                           &v);
}

/* Filter one JSON-RPC text against every list request of the body; *out set when changed. */
static int filter_text(struct conn *c, struct fwd *f, const char *txt, size_t len,
                       struct ly_buf *out, int *changed)
{
    void *arg[2] = {c, f};
    struct ly_buf cur;
    int rc = 0;

    *changed = 0;
    ly_buf_init(&cur, FILTER_MAX);
    for (size_t i = 0; i < f->msg->n; i++) {
        const struct mcp_item *it = &f->msg->items[i];
        struct ly_buf next;
        int ch = 0;
        if (it->kind != MCP_KIND_REQUEST || it->list == MCP_LIST_NONE) {
            continue;
        }
        ly_buf_init(&next, FILTER_MAX);
        rc = mcp_filter_list(*changed ? (const char *)cur.data : txt, *changed ? cur.len : len,
                             it->id, it->list, filter_allow, arg, &next, &ch, &f->err);
        if (rc < 0) {
            ly_buf_free(&next);
            break;
        }
        if (ch) {
            ly_buf_free(&cur);
            cur = next;
            *changed = 1;
        } else {
            ly_buf_free(&next);
        }
    }
    if (rc == 0 && *changed) {
        *out = cur;
    } else {
        ly_buf_free(&cur);
    }
    return rc;
}

static int on_sse_event(const struct mcp_sse_event *ev, void *arg)
{
    void **a = arg;
    struct conn *c = a[0];
    struct fwd *f = a[1];
    struct ly_buf filtered, rebuilt;
    int changed = 0;
    int rc;

    if (!ev->has_data) {
        return body_out(c, f, ev->raw, ev->raw_len);
    }
    rc = filter_text(c, f, ev->data, ev->data_len, &filtered, &changed);
    if (rc < 0) {
        return rc;
    }
    if (!changed) {
        return body_out(c, f, ev->raw, ev->raw_len);
    }
    ly_buf_init(&rebuilt, FILTER_MAX + 4096);
    rc = mcp_sse_rebuild(ev, (const char *)filtered.data, filtered.len, &rebuilt, &f->err);
    ly_buf_free(&filtered);
    if (rc == 0) {
        rc = body_out(c, f, (const char *)rebuilt.data, rebuilt.len);
    }
    ly_buf_free(&rebuilt);
    return rc;
}

/* 1 when the response's Content-Type is `type` (parameters ignored). */
static int ctype_is(const struct gwhttp_msg *m, const char *type)
{
    size_t l = 0;
    const char *v = gwhttp_get(m, "content-type", &l);
    size_t tl = strlen(type);

    while (v != NULL && l > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        l--;
    }
    return v != NULL && l >= tl && strncasecmp(v, type, tl) == 0 &&
           (l == tl || v[tl] == ';' || v[tl] == ' ');
}

/*
 * The upstream's status line and end-to-end headers, as the client gets them (hop-by-hop
 * headers and Content-Length are the gateway's own to write, after these).
 */
static int put_status_and_headers(struct side *d, const struct gwhttp_msg *m,
                                  struct ly_error *err)
{
    int rc = side_putf(d, err, "HTTP/1.1 %d %s\r\n", m->status,
                       http_status_str((enum http_status)m->status));

    for (size_t i = 0; rc == 0 && i < m->n; i++) {
        size_t nl, vl;
        const char *name, *val;

        if (gwhttp_is_hop(m, i)) {
            continue;
        }
        name = gwhttp_name(m, i, &nl);
        val = gwhttp_value(m, i, &vl);
        rc = side_put(d, name, nl, err);
        rc = rc == 0 ? side_put(d, ": ", 2, err) : rc;
        rc = rc == 0 ? side_put(d, val, vl, err) : rc;
        rc = rc == 0 ? side_put(d, "\r\n", 2, err) : rc;
    }
    return rc;
}

static int on_resp_head(struct gwhttp_msg *m, void *arg)
{
    void **a = arg;
    struct conn *c = a[0];
    struct fwd *f = a[1];
    struct side *d = &c->down;
    int rc;

    f->status = m->status;
    if (m->status >= 100 && m->status < 200) {
        return 0; /* interim answers are not forwarded; the parser reads the real one next */
    }
    if (f->filter && m->status >= 200 && m->status < 300) {
        size_t el = 0;
        const char *enc = gwhttp_get(m, "content-encoding", &el);
        if (enc != NULL && !(el == 8 && strncasecmp(enc, "identity", 8) == 0)) {
            (void)ly_error_setx(&f->err, LY_ERR_USAGE, 0,
                                "the upstream encoded a list response (%.*s): cannot filter it",
                                (int)(el > 40 ? 40 : el), enc);
            return -1;
        }
        if (ctype_is(m, "application/json")) {
            f->mode = MODE_FILTER_JSON;
            ly_buf_init(&f->collect, FILTER_MAX);
            return 0; /* head written once the body is filtered */
        }
        if (ctype_is(m, "text/event-stream")) {
            f->mode = MODE_FILTER_SSE;
        }
    }
    if (f->mode == 0) {
        if (m->status == 204 || m->status == 304) {
            f->mode = MODE_NONE;
        } else if (m->has_length && !m->chunked) {
            f->mode = MODE_LENGTH;
        } else {
            f->mode = http10(&c->req) ? MODE_CLOSE : MODE_CHUNKED;
        }
    }
    rc = put_status_and_headers(d, m, &f->err);
    if (rc == 0) {
        switch (f->mode) {
        case MODE_LENGTH:
            rc = side_putf(d, &f->err, "Content-Length: %llu\r\n",
                           (unsigned long long)m->length);
            break;
        case MODE_CHUNKED:
        case MODE_FILTER_SSE:
            rc = side_putf(d, &f->err, "Transfer-Encoding: chunked\r\n");
            break;
        case MODE_CLOSE:
            c->close_after = 1;
            break;
        default:
            break;
        }
    }
    if (rc == 0 && c->close_after) {
        rc = side_putf(d, &f->err, "Connection: close\r\n");
    }
    rc = rc == 0 ? side_put(d, "\r\n", 2, &f->err) : rc;
    /* Flush the head at once: an event stream may stay silent for a long time. */
    rc = rc == 0 ? side_flush(d, &f->err) : rc;
    f->wrote_head = 1;
    if (f->mode == MODE_FILTER_SSE) {
        mcp_sse_init(&f->sse, 0, on_sse_event, arg);
        f->sse_on = 1;
    }
    return rc < 0 ? -1 : 0;
}

static int on_resp_body(struct gwhttp_msg *m, const char *data, size_t len, void *arg)
{
    void **a = arg;
    struct conn *c = a[0];
    struct fwd *f = a[1];

    (void)m;
    if (f->status >= 100 && f->status < 200) {
        return 0;
    }
    switch (f->mode) {
    case MODE_FILTER_JSON:
        return ly_buf_append(&f->collect, data, len, &f->err) < 0 ? -1 : 0;
    case MODE_FILTER_SSE:
        return mcp_sse_feed(&f->sse, data, len, &f->err) < 0 ? -1 : 0;
    default:
        return body_out(c, f, data, len) < 0 ? -1 : 0;
    }
}

/* Send the collected, filtered JSON list response. */
static int finish_filtered_json(struct conn *c, struct fwd *f)
{
    struct gwhttp_msg *m = &c->resp;
    struct side *d = &c->down;
    struct ly_buf out;
    int changed = 0;
    const char *body;
    size_t blen;
    int rc;

    rc = filter_text(c, f, (const char *)f->collect.data, f->collect.len, &out, &changed);
    if (rc < 0) {
        return rc;
    }
    body = changed ? (const char *)out.data : (const char *)f->collect.data;
    blen = changed ? out.len : f->collect.len;
    rc = put_status_and_headers(d, m, &f->err);
    rc = rc == 0 ? side_putf(d, &f->err, "Content-Length: %zu\r\n%s\r\n", blen,
                             c->close_after ? "Connection: close\r\n" : "")
                 : rc;
    rc = rc == 0 ? side_put(d, body, blen, &f->err) : rc;
    f->wrote_head = 1;
    if (changed) {
        ly_buf_free(&out);
    }
    return rc;
}

/*
 * Wait for upstream bytes while watching the client: a client that closes (or resets) ends the
 * exchange, which for an event stream is how MCP cancels. Bytes a client pipelines meanwhile
 * stay in its buffer for the next request. 1 upstream readable, 0 client gone or stop, -1 timeout.
 */
static int wait_upstream(struct conn *c, int timeout_ms)
{
    int waited = 0;

    for (;;) {
        struct pollfd p[2];
        int nfds = 1;
        int step;
        int r;

        if (c->up.in_off < c->up.in_len || gwtls_pending(c->up.io) > 0) {
            return 1;
        }
        p[0].fd = gwtls_fd(c->up.io);
        p[0].events = POLLIN;
        p[0].revents = 0;
        if (c->down.in_off >= c->down.in_len) {
            p[1].fd = gwtls_fd(c->down.io);
            p[1].events = POLLIN;
            p[1].revents = 0;
            nfds = 2;
        }
        step = timeout_ms - waited < POLL_STEP_MS ? timeout_ms - waited : POLL_STEP_MS;
        r = poll(p, (nfds_t)nfds, step < 0 ? 0 : step);
        if (r < 0 && errno != EINTR) {
            return 1;
        }
        if (r > 0 && nfds == 2 && p[1].revents != 0) {
            struct ly_error e;
            long n;
            ly_error_clear(&e);
            n = side_fill(&c->down, &e);
            if (n <= 0) {
                return 0; /* the client went away */
            }
        }
        if (r > 0 && p[0].revents != 0) {
            return 1;
        }
        if (*c->g->stop) {
            return 0;
        }
        if (r == 0) {
            waited += step;
            if (waited >= timeout_ms) {
                return -1;
            }
        }
    }
}

/*
 * Forward the current request and stream the answer back. 0 when an answer (the upstream's or
 * a gateway error) went out and the client connection may continue; -1 to close it.
 */
static int forward(struct conn *c, struct fwd *f, const char *consent_id, const char *user)
{
    struct gw *g = c->g;
    void *arg[2] = {c, f};
    int rc;

    ly_error_clear(&f->err);
    if (upstream_open(c, &f->err) < 0 || send_request(c, consent_id, user, &f->err) < 0) {
        log_event(LOG_WARN, "gateway.upstream_failed", LOG_STR, "upstream", g->up_authority,
                  LOG_STR, "error", f->err.msg, LOG_END);
        if (c->up.io != NULL) {
            side_close(&c->up);
        }
        return send_error(c, 502, NULL, GATEWAY_RPC_UPSTREAM, "the upstream is unreachable",
                          NULL) < 0
                   ? -1
                   : 0;
    }
    gwhttp_init(&c->resp, HTTP_RESPONSE, 0, 0, on_resp_head, on_resp_body, arg);
    for (;;) {
        size_t used = 0;
        long n;
        int w;

        /* A 1xx interim answer completes a parser message: read on to the final one. */
        if (c->resp.done) {
            if (c->resp.status >= 100 && c->resp.status < 200 && c->resp.status != 101) {
                gwhttp_next(&c->resp);
                f->mode = 0;
                continue;
            }
            break;
        }
        if (c->up.in_off < c->up.in_len) {
            if (gwhttp_feed(&c->resp, c->up.in + c->up.in_off, c->up.in_len - c->up.in_off,
                            &used) < 0) {
                if (f->err.code == 0) {
                    f->err = c->resp.err;
                }
                rc = -1;
                goto fail;
            }
            c->up.in_off += used;
            /* Stream as it comes: whatever this read produced goes to the client now. */
            if (f->wrote_head && side_flush(&c->down, &f->err) < 0) {
                f->client_gone = 1;
                rc = -1;
                goto fail;
            }
            continue;
        }
        w = wait_upstream(c, UPSTREAM_HEAD_TIMEOUT_MS);
        if (w == 0) {
            f->client_gone = 1;
            rc = -1;
            goto fail;
        }
        if (w < 0) {
            (void)ly_error_setx(&f->err, LY_ERR_IO, 0, "the upstream did not answer in time");
            rc = -1;
            goto fail;
        }
        n = side_fill(&c->up, &f->err);
        if (n < 0) {
            rc = -1;
            goto fail;
        }
        if (n == 0) {
            if (gwhttp_eof(&c->resp) < 0) {
                if (f->err.code == 0) {
                    f->err = c->resp.err;
                }
                rc = -1;
                goto fail;
            }
            side_close(&c->up);
        }
    }
    /* Complete. */
    rc = 0;
    if (f->mode == MODE_FILTER_JSON) {
        rc = finish_filtered_json(c, f);
    } else if (f->mode == MODE_FILTER_SSE) {
        size_t pl = 0;
        const char *pend = mcp_sse_pending(&f->sse, &pl);
        rc = body_out(c, f, pend, pl);
    }
    if (rc == 0 && (f->mode == MODE_CHUNKED || f->mode == MODE_FILTER_SSE)) {
        rc = side_put(&c->down, "0\r\n\r\n", 5, &f->err);
    }
    if (rc == 0) {
        rc = side_flush(&c->down, &f->err);
    }
    if (rc < 0) {
        f->client_gone = 1;
        goto fail;
    }
    if (!c->resp.keep_alive && c->up.io != NULL) {
        side_close(&c->up);
    }
    if (c->up.io != NULL && c->up.in_off < c->up.in_len) {
        side_close(&c->up); /* bytes after the response: never reuse such a connection */
    }
    if (f->mode == MODE_CLOSE) {
        c->close_after = 1;
    }
    /* Sessions: bind what initialize opened, forget what DELETE (or the upstream) ended. */
    if (g->policy != NULL) {
        size_t sl = 0;
        const char *sid = gwhttp_get(&c->resp, "mcp-session-id", &sl);
        if (f->bind_session && f->status >= 200 && f->status < 300 && sid != NULL) {
            struct ly_error e;
            ly_error_clear(&e);
            if (gwpolicy_session_bind(g->policy, sid, sl, c->peer, f->user, &e) < 0) {
                log_event(LOG_WARN, "gateway.session_not_bound", LOG_STR, "error", e.msg,
                          LOG_END);
            }
        }
        if (f->sid != NULL && ((f->drop_session && f->status >= 200 && f->status < 300) ||
                               f->status == 404)) {
            gwpolicy_session_drop(g->policy, f->sid, f->sid_len);
        }
    }
    return 0;
fail:
    if (f->sse_on) {
        mcp_sse_free(&f->sse);
        f->sse_on = 0;
    }
    if (c->up.io != NULL) {
        side_close(&c->up);
    }
    if (f->client_gone) {
        return -1;
    }
    log_event(LOG_WARN, "gateway.upstream_failed", LOG_STR, "upstream", g->up_authority,
              LOG_STR, "error", f->err.msg, LOG_END);
    if (!f->wrote_head) {
        (void)send_error(c, 502, NULL, GATEWAY_RPC_UPSTREAM, "the upstream failed", NULL);
    }
    return -1; /* a half-sent response can only be ended by closing */
}

static void fwd_free(struct fwd *f)
{
    if (f->sse_on) {
        mcp_sse_free(&f->sse);
        f->sse_on = 0;
    }
    ly_buf_free(&f->collect);
}

/* ---- server mode: one request ------------------------------------------------------------- */

static const char *audit_method_of(const struct mcp_item *it)
{
    return it->kind == MCP_KIND_RESPONSE ? "(response)" : it->method;
}

static const char *rpc_message_for(const struct gwpolicy_verdict *v, char *buf, size_t bufsz)
{
    if (v->reason == CONSENT_R_SCOPE_NOT_COVERED && v->scope[0] != '\0') {
        char e[200];
        (void)snprintf(buf, bufsz, "forbidden: consent does not grant scope %s",
                       ly_text_escape(v->scope, strlen(v->scope), 160, e, sizeof(e)));
    } else {
        (void)snprintf(buf, bufsz, "forbidden: %s", v->text);
    }
    return buf;
}

/* A scope safe to quote in WWW-Authenticate (RFC 6750 scope-token characters). */
static int scope_quotable(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\') {
            return 0;
        }
    }
    return 1;
}

static int deny_consent(struct conn *c, const struct mcp_item *it,
                        const struct gwpolicy_verdict *v)
{
    char msg[512];
    char www[600];

    (void)rpc_message_for(v, msg, sizeof(msg));
    if (v->scope[0] != '\0' && scope_quotable(v->scope) && strlen(v->scope) < 400) {
        (void)snprintf(www, sizeof(www),
                       "Bearer realm=\"lanyard\", error=\"insufficient_scope\", scope=\"%.400s\"",
                       v->scope);
    } else {
        (void)snprintf(www, sizeof(www), "Bearer realm=\"lanyard\", error=\"insufficient_scope\"");
    }
    return send_error(c, 403, it != NULL ? it->id : NULL, GATEWAY_RPC_FORBIDDEN, msg, www);
}

static const char *http_audit_method(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return "GET (event stream)";
    case HTTP_DELETE:
        return "DELETE (end session)";
    default:
        return http_method_str((enum http_method)m);
    }
}

static int serve_request(struct conn *c)
{
    struct gw *g = c->g;
    struct fwd f;
    struct mcp_msg msg;
    struct gwpolicy_snap *snap = NULL;
    struct gwpolicy_verdict v;
    struct ly_error e;
    const char *user = NULL;
    const char *hmethod = http_audit_method(c->req.method);
    const char *sid;
    size_t sl = 0;
    char consent_id[CONSENT_ID_HEX_LEN + 1] = "";
    int64_t now = ly_time_now();
    int rc = 0;

    memset(&f, 0, sizeof(f));
    memset(&msg, 0, sizeof(msg));
    ly_error_clear(&e);

    if (c->req.method != HTTP_POST && c->req.method != HTTP_GET &&
        c->req.method != HTTP_DELETE) {
        (void)audit_decision(c, NULL, hmethod, NULL, 0, "HTTP method not allowed", NULL);
        return send_error(c, 405, NULL, MCP_RPC_INVALID_REQUEST,
                          "only POST, GET and DELETE reach an MCP server through lanyard", NULL);
    }
    if (gwhttp_url(&c->req)[0] != '/') {
        c->close_after = 1;
        return send_error(c, 400, NULL, MCP_RPC_INVALID_REQUEST,
                          "the request target must be a path", NULL);
    }
    if (authenticate(c, c->req.method == HTTP_POST ? "POST" : hmethod, &user) < 0) {
        return 0;
    }
    f.user = user;

    /* Sessions are bound to the client and user that opened them. */
    if (gwhttp_count(&c->req, "mcp-session-id") > 1) {
        return send_error(c, 400, NULL, MCP_RPC_INVALID_REQUEST,
                          "more than one Mcp-Session-Id header", NULL);
    }
    sid = gwhttp_get(&c->req, "mcp-session-id", &sl);
    if (sid != NULL) {
        enum gwpolicy_session s = gwpolicy_session_check(g->policy, sid, sl, c->peer, user);
        if (s != GWPOLICY_SESSION_OK) {
            (void)audit_decision(c, user, hmethod, NULL, 0, gwpolicy_session_text(s), NULL);
            if (s == GWPOLICY_SESSION_UNKNOWN) {
                return send_error(c, 404, NULL, GATEWAY_RPC_SESSION, "session not found", NULL);
            }
            if (s == GWPOLICY_SESSION_BAD_ID) {
                return send_error(c, 400, NULL, MCP_RPC_INVALID_REQUEST, "malformed session id",
                                  NULL);
            }
            {
                char m[128];
                (void)snprintf(m, sizeof(m), "forbidden: %s", gwpolicy_session_text(s));
                return send_error(c, 403, NULL, GATEWAY_RPC_FORBIDDEN, m, NULL);
            }
        }
        f.sid = sid;
        f.sid_len = sl;
    }

    snap = gwpolicy_snapshot(g->policy, &e);
    if (snap == NULL) {
        log_event(LOG_ERROR, "gateway.store_failed", LOG_STR, "error", e.msg, LOG_END);
        (void)audit_decision(c, user, hmethod, NULL, 0, "consent store unavailable", NULL);
        return send_error(c, 503, NULL, GATEWAY_RPC_FORBIDDEN,
                          "consent store unavailable: refusing", NULL);
    }
    f.snap = snap;

    if (c->req.method == HTTP_POST) {
        size_t ml = 0, nl = 0;
        const char *mh = gwhttp_get(&c->req, "mcp-method", &ml);
        const char *nh = gwhttp_get(&c->req, "mcp-name", &nl);

        if (mcp_parse((const char *)c->req.body.data, c->req.body.len, &msg, &e) < 0) {
            (void)audit_decision(c, user, "POST", NULL, 0, "malformed JSON-RPC", NULL);
            rc = send_error(c, 400, NULL,
                            e.reason == MCP_R_JSON ? MCP_RPC_PARSE_ERROR
                                                   : MCP_RPC_INVALID_REQUEST,
                            e.msg, NULL);
            goto out;
        }
        if (gwhttp_count(&c->req, "mcp-method") > 1 || gwhttp_count(&c->req, "mcp-name") > 1 ||
            mcp_check_headers(&msg, mh, ml, nh, nl, &e) < 0) {
            if (e.code == 0) {
                (void)ly_error_setx(&e, LY_ERR_PARSE, MCP_R_HEADER_MISMATCH,
                                    "Mcp-Method or Mcp-Name given more than once");
            }
            (void)audit_decision(c, user, msg.n > 0 && msg.items[0].method != NULL
                                              ? msg.items[0].method
                                              : "POST",
                                 msg.n > 0 ? msg.items[0].target : NULL, 0,
                                 "Mcp-Method/Mcp-Name header does not match the body", NULL);
            rc = send_error(c, 400, msg.n == 1 ? msg.items[0].id : NULL,
                            MCP_RPC_HEADER_MISMATCH, e.msg, NULL);
            goto out;
        }
        /* Every message of the body must be allowed; the first refusal answers for all. */
        for (size_t i = 0; i < msg.n; i++) {
            const struct mcp_item *it = &msg.items[i];
            const char *kind = mcp_op_kind(it->op);
            if (kind == NULL) {
                char m[200];
                char esc[140];
                (void)snprintf(m, sizeof(m), "forbidden: method %s is not known to lanyard",
                               ly_text_escape(it->method, strlen(it->method), 100, esc,
                                              sizeof(esc)));
                (void)audit_decision(c, user, it->method, NULL, 0, "unknown method", NULL);
                rc = send_error(c, 403, it->id, GATEWAY_RPC_FORBIDDEN, m, NULL);
                goto out;
            }
            (void)gwpolicy_decide(snap, user, c->peer, kind, it->target, now, &v);
            if (audit_decision(c, user, audit_method_of(it), it->target, v.allow, v.text,
                               v.consent_id) < 0 &&
                v.allow) {
                /* An allow that cannot be recorded is not given. */
                rc = send_error(c, 503, it->id, GATEWAY_RPC_FORBIDDEN,
                                "audit log unavailable: refusing", NULL);
                goto out;
            }
            if (!v.allow) {
                log_event(LOG_INFO, "gateway.denied", LOG_STR, "client_id", c->peer->str,
                          LOG_STR, "user", user != NULL ? user : "(none)", LOG_STR, "method",
                          audit_method_of(it), LOG_STR, "reason", v.text, LOG_END);
                rc = deny_consent(c, it, &v);
                goto out;
            }
            if (i == 0 || consent_id[0] == '\0') {
                (void)snprintf(consent_id, sizeof(consent_id), "%s", v.consent_id);
            }
            if (it->list != MCP_LIST_NONE) {
                f.filter = 1;
            }
            if (it->kind == MCP_KIND_REQUEST && strcmp(it->method, "initialize") == 0) {
                f.bind_session = 1;
            }
        }
        f.msg = &msg;
    } else {
        (void)gwpolicy_decide(snap, user, c->peer, CONSENT_OP_PLUMBING, "", now, &v);
        if (audit_decision(c, user, hmethod, NULL, v.allow, v.text, v.consent_id) < 0 &&
            v.allow) {
            rc = send_error(c, 503, NULL, GATEWAY_RPC_FORBIDDEN,
                            "audit log unavailable: refusing", NULL);
            goto out;
        }
        if (!v.allow) {
            rc = deny_consent(c, NULL, &v);
            goto out;
        }
        (void)snprintf(consent_id, sizeof(consent_id), "%s", v.consent_id);
        f.drop_session = c->req.method == HTTP_DELETE;
    }
    rc = forward(c, &f, consent_id, user);
out:
    fwd_free(&f);
    mcp_msg_free(&msg);
    gwpolicy_release(snap);
    return rc;
}

/* ---- client mode: one request --------------------------------------------------------------- */

/* Host and Origin must name this loopback listener: DNS rebinding must not borrow our SVID. */
static int local_origin_ok(struct conn *c, const char *v, size_t len, int with_scheme)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
    char want[64];

    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        int n = snprintf(want, sizeof(want), "%s%s:%s", with_scheme ? "http://" : "", hosts[i],
                         c->g->listen_port);
        if (n > 0 && (size_t)n == len && strncasecmp(v, want, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static int client_request(struct conn *c)
{
    struct fwd f;
    size_t hl = 0, ol = 0;
    const char *host = gwhttp_get(&c->req, "host", &hl);
    const char *origin = gwhttp_get(&c->req, "origin", &ol);
    int rc;

    memset(&f, 0, sizeof(f));
    if (host == NULL || gwhttp_count(&c->req, "host") != 1 || !local_origin_ok(c, host, hl, 0)) {
        return send_error(c, 403, NULL, MCP_RPC_INVALID_REQUEST,
                          "forbidden: Host must name this loopback listener (DNS rebinding "
                          "protection)",
                          NULL);
    }
    if (origin != NULL && !local_origin_ok(c, origin, ol, 1)) {
        return send_error(c, 403, NULL, MCP_RPC_INVALID_REQUEST,
                          "forbidden: Origin is not this loopback listener", NULL);
    }
    if (gwhttp_url(&c->req)[0] != '/') {
        c->close_after = 1;
        return send_error(c, 400, NULL, MCP_RPC_INVALID_REQUEST,
                          "the request target must be a path", NULL);
    }
    rc = forward(c, &f, NULL, NULL);
    fwd_free(&f);
    return rc;
}

/* ---- connection threads -------------------------------------------------------------------- */

static int on_req_head(struct gwhttp_msg *m, void *arg)
{
    struct conn *c = arg;
    size_t l = 0;
    const char *ex = gwhttp_get(m, "expect", &l);

    /* Answer 100-continue ourselves: the body is read here, before anything goes upstream. */
    if (ex != NULL && l == 12 && strncasecmp(ex, "100-continue", 12) == 0 && !http10(m)) {
        struct ly_error e;
        ly_error_clear(&e);
        if (side_put(&c->down, "HTTP/1.1 100 Continue\r\n\r\n", 25, &e) < 0 ||
            side_flush(&c->down, &e) < 0) {
            return -1;
        }
    }
    return 0;
}

static void conn_loop(struct conn *c)
{
    struct gw *g = c->g;

    for (;;) {
        struct ly_error e;
        int rc;

        ly_error_clear(&e);
        gwhttp_next(&c->req);
        rc = read_msg(c, &c->down, &c->req, g->cfg->idle_timeout_ms, &e);
        if (rc == 1) {
            return; /* closed, idle, or stopping */
        }
        if (rc < 0) {
            int status = e.reason == GWHTTP_R_BODY_TOO_BIG   ? 413
                         : e.reason == GWHTTP_R_HEAD_TOO_BIG ? 431
                                                             : 400;
            c->close_after = 1;
            if (e.reason != 0 && e.code == LY_ERR_PARSE) {
                (void)send_error(c, status, NULL, MCP_RPC_INVALID_REQUEST, e.msg, NULL);
            }
            return;
        }
        atomic_fetch_add(&g->requests, 1);
        if (!c->req.keep_alive) {
            c->close_after = 1;
        }
        rc = g->cfg->client_mode ? client_request(c) : serve_request(c);
        if (rc < 0 || c->close_after || *g->stop) {
            return;
        }
    }
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct gw *g = c->g;
    struct ly_error e;
    int fd = c->accepted_fd;

    c->accepted_fd = -1;
    ly_error_clear(&e);
    if (!g->cfg->client_mode) {
        char claimed[SPIFFEID_MAX_LEN + 1];
        struct gwtls_conn *tc = NULL;

        if (gwtls_accept(g->tls, fd, GATEWAY_HANDSHAKE_TIMEOUT_MS, &tc, claimed, &e) < 0) {
            log_event(LOG_INFO, "gateway.handshake_refused", LOG_STR, "claimed_id",
                      claimed[0] != '\0' ? claimed : "(none)", LOG_STR, "error", e.msg,
                      LOG_END);
            if (e.reason == GWTLS_R_NO_PEER_CERT || e.reason == GWTLS_R_PEER_REJECTED) {
                char reason[LY_ERROR_MSG_MAX + 32];
                (void)snprintf(reason, sizeof(reason), "mTLS refused: %s", e.msg);
                (void)audit_decision(c, NULL, "tls-handshake",
                                     claimed[0] != '\0' ? claimed : NULL, 0, reason, NULL);
            }
            goto out;
        }
        c->down.io = tc;
        c->peer = gwtls_peer_id(tc);
        (void)snprintf(c->cert_hex, sizeof(c->cert_hex), "%s", gwtls_peer_cert_hex(tc));
        log_event(LOG_DEBUG, "gateway.connected", LOG_STR, "client_id", c->peer->str, LOG_STR,
                  "cert_sha256", c->cert_hex, LOG_STR, "cipher", gwtls_cipher(tc), LOG_END);
    } else if (gwtls_conn_plain(fd, &c->down.io, &e) < 0) {
        goto out;
    }
    (void)gwtls_conn_set_timeouts(c->down.io, READ_TIMEOUT_MS, WRITE_TIMEOUT_MS);
    conn_loop(c);
out:
    if (c->up.io != NULL) {
        side_close(&c->up);
    }
    if (c->down.io != NULL) {
        side_close(&c->down);
    }
    gwhttp_free(&c->req);
    gwhttp_free(&c->resp);
    ly_buf_free(&c->down.out);
    ly_buf_free(&c->up.out);
    ly_wipe(&c->claims, sizeof(c->claims));
    free(c);
    atomic_fetch_sub(&g->conns, 1);
    return NULL;
}

/*
 * Worker threads. Connections are handed to long-lived workers (a thread's first handshakes
 * would otherwise pay for wolfSSL's per-thread ECC tables, see gwtls_thread_warmup()): an idle
 * worker takes the next accepted socket; when none is idle a new one starts, up to
 * --max-conns; workers beyond GW_MIN_WORKERS leave after GW_WORKER_IDLE_S without work.
 */
#define GW_MIN_WORKERS 4
#define GW_WORKER_IDLE_S 60
#define GW_QUEUE GW_QUEUE_SLOTS

static void serve_fd(struct gw *g, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    int one = 1;

    if (c == NULL) {
        (void)close(fd);
        return;
    }
    c->g = g;
    c->accepted_fd = fd;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ly_buf_init(&c->down.out, WBUF_MAX + 1024);
    /* Upstream output may carry the client-mode token: wiped on every growth and free. */
    ly_buf_init_secret(&c->up.out, WBUF_MAX + TOKEN_MAX_LEN + 1024);
    gwhttp_init(&c->req, HTTP_REQUEST, 1, g->cfg->max_body, on_req_head, NULL, c);
    atomic_fetch_add(&g->conns, 1);
    (void)conn_main(c);
}

static void *worker_main(void *arg)
{
    struct gw *g = arg;

    gwtls_thread_warmup();
    pthread_mutex_lock(&g->pool_mu);
    for (;;) {
        int fd;
        while (g->q_len == 0 && !*g->stop) {
            struct timespec until;
            int r;
            (void)clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += GW_WORKER_IDLE_S;
            g->idle++;
            r = pthread_cond_timedwait(&g->pool_cv, &g->pool_mu, &until);
            g->idle--;
            if (r == ETIMEDOUT && g->q_len == 0 && g->workers > GW_MIN_WORKERS) {
                goto leave;
            }
        }
        if (*g->stop && g->q_len == 0) {
            goto leave;
        }
        fd = g->queue[g->q_head];
        g->q_head = (g->q_head + 1) % GW_QUEUE;
        g->q_len--;
        g->busy++;
        pthread_mutex_unlock(&g->pool_mu);
        serve_fd(g, fd);
        pthread_mutex_lock(&g->pool_mu);
        g->busy--;
    }
leave:
    g->workers--;
    pthread_cond_broadcast(&g->pool_cv);
    pthread_mutex_unlock(&g->pool_mu);
    gwtls_thread_done();
    return NULL;
}

/* Start one worker; pool_mu held. */
static int spawn_worker(struct gw *g)
{
    pthread_attr_t at;
    pthread_t th;
    int rc = -1;

    if (pthread_attr_init(&at) != 0) {
        return -1;
    }
    if (pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 &&
        pthread_attr_setstacksize(&at, 1024u * 1024u) == 0 &&
        pthread_create(&th, &at, worker_main, g) == 0) {
        g->workers++;
        rc = 0;
    }
    (void)pthread_attr_destroy(&at);
    return rc;
}

/* Hand an accepted socket to a worker, or refuse it when --max-conns are busy. */
static void dispatch(struct gw *g, int fd)
{
    pthread_mutex_lock(&g->pool_mu);
    if (g->busy + g->q_len >= g->cfg->max_conns || g->q_len >= GW_QUEUE) {
        pthread_mutex_unlock(&g->pool_mu);
        log_event(LOG_WARN, "gateway.too_many_connections", LOG_INT, "max",
                  (int64_t)g->cfg->max_conns, LOG_END);
        (void)close(fd);
        return;
    }
    g->queue[(g->q_head + g->q_len) % GW_QUEUE] = fd;
    g->q_len++;
    if (g->idle < g->q_len && g->workers < g->cfg->max_conns + GW_MIN_WORKERS &&
        spawn_worker(g) < 0 && g->workers == 0) {
        g->q_len--;
        pthread_mutex_unlock(&g->pool_mu);
        (void)close(fd);
        return;
    }
    pthread_cond_signal(&g->pool_cv);
    pthread_mutex_unlock(&g->pool_mu);
}

/* ---- identity updates from the Workload API ------------------------------------------------- */

static int on_x509(const struct wsource_svid *svid, struct bundle_set *bundles, void *arg)
{
    struct gw *g = arg;
    struct ly_error e;
    size_t nb = bundle_set_count(bundles);

    ly_error_clear(&e);
    if (gwtls_set_identity(g->tls, svid->spiffe_id, svid->chain_der, svid->chain_len,
                           svid->key_der, svid->key_len, bundles, &e) < 0) {
        log_event(LOG_ERROR, "gateway.svid_refused", LOG_STR, "spiffe_id", svid->spiffe_id,
                  LOG_STR, "error", e.msg, LOG_END);
        return -1;
    }
    log_event(LOG_INFO, "gateway.svid_updated", LOG_STR, "spiffe_id", svid->spiffe_id, LOG_INT,
              "generation", (int64_t)gwtls_generation(g->tls), LOG_INT, "trust_domains",
              (int64_t)nb, LOG_END);
    return 0;
}

static int on_jwt(struct bundle_set *bundles, void *arg)
{
    struct gw *g = arg;
    struct jwtset *j = calloc(1, sizeof(*j));
    struct jwtset *old;

    if (j == NULL) {
        bundle_set_free(bundles);
        return -1;
    }
    /* Reading the JWK Set checked its EC points, which leaves wolfSSL's per-thread ECC tables
     * in this Workload API thread: it serves no connection, so they go at once. */
    gwtls_thread_done();
    atomic_init(&j->refs, 1);
    j->set = bundles;
    pthread_mutex_lock(&g->jwt_mu);
    j->gen = ++g->jwt_gen;
    old = g->jwt;
    g->jwt = j;
    pthread_mutex_unlock(&g->jwt_mu);
    jwtset_unref(old);
    log_event(LOG_INFO, "gateway.jwt_bundles_updated", LOG_INT, "trust_domains",
              (int64_t)bundle_set_count(bundles), LOG_INT, "generation", (int64_t)j->gen,
              LOG_END);
    return 0;
}

/* ---- start and stop ------------------------------------------------------------------------- */

static volatile sig_atomic_t gw_stop;

static void on_signal(int sig)
{
    (void)sig;
    gw_stop = 1;
}

static int loopback_addr(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

static int open_listener(struct gw *g, int *out, struct ly_error *err)
{
    char host[256], port[16];
    struct addrinfo hints, *res = NULL, *a;
    int fd = -1;
    int rc;

    rc = gateway_parse_listen(g->cfg->listen, host, sizeof(host), port, sizeof(port), err);
    if (rc < 0) {
        return ly_error_wrap(err, "--listen");
    }
    (void)snprintf(g->listen_port, sizeof(g->listen_port), "%s", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "--listen %.200s: %s", g->cfg->listen,
                             gai_strerror(rc));
    }
    for (a = res; a != NULL; a = a->ai_next) {
        int one = 1;
        if (g->cfg->client_mode && !loopback_addr(a->ai_addr)) {
            freeaddrinfo(res);
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "--listen %.200s: client mode listens on loopback only (it "
                                 "lends this workload's identity to whoever connects)",
                                 g->cfg->listen);
        }
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 512) == 0) {
            break;
        }
        rc = errno;
        (void)close(fd);
        fd = -1;
        errno = rc;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "cannot listen on %.200s", g->cfg->listen);
    }
    *out = fd;
    return 0;
}

static int resolve_upstream(struct gw *g, struct ly_error *err)
{
    struct addrinfo hints;
    int rc;

    rc = gateway_parse_upstream(g->cfg->upstream, &g->up_tls, g->up_host, sizeof(g->up_host),
                                g->up_port, sizeof(g->up_port), g->up_authority,
                                sizeof(g->up_authority), err);
    if (rc < 0) {
        return ly_error_wrap(err, "--upstream");
    }
    if (g->cfg->client_mode && !g->up_tls) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "--upstream: client mode speaks mutual TLS: use https://");
    }
    if (!g->cfg->client_mode && g->up_tls) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "--upstream: server mode forwards plain HTTP to the MCP server "
                             "next to it: use http://");
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(g->up_host, g->up_port, &hints, &g->up_addrs);
    if (rc != 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "--upstream %.200s: %s", g->cfg->upstream,
                             gai_strerror(rc));
    }
    return 0;
}

static int check_config(const struct gateway_config *cfg, struct ly_error *err)
{
    if (cfg->listen == NULL || cfg->upstream == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "--listen and --upstream are required");
    }
    if (cfg->socket_path == NULL || cfg->socket_path[0] == '\0') {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "no Workload API socket");
    }
    if (cfg->client_mode) {
        if (cfg->server_id == NULL) {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "client mode needs --server-id: the SPIFFE ID the server "
                                 "gateway must present");
        }
        if (cfg->audience != NULL || cfg->allow_no_user) {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "--audience and --allow-no-user belong to server mode");
        }
    } else {
        if (cfg->audience == NULL || cfg->audience[0] == '\0') {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "server mode needs --audience: the aud its tokens must carry");
        }
        if (cfg->server_id != NULL || cfg->token_file != NULL) {
            return ly_error_setx(err, LY_ERR_USAGE, 0,
                                 "--server-id and --token-file belong to client mode (--client)");
        }
        if (strlen(cfg->audience) > TOKEN_AUD_MAX) {
            return ly_error_setx(err, LY_ERR_USAGE, 0, "--audience is over %d bytes",
                                 TOKEN_AUD_MAX);
        }
        if (cfg->store_path == NULL || cfg->audit_path == NULL) {
            return ly_error_setx(err, LY_ERR_USAGE, 0, "server mode needs a store and audit log");
        }
    }
    if (cfg->token_leeway < 0 || cfg->token_leeway > GATEWAY_LEEWAY_MAX) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "--token-leeway must be 0..%d seconds",
                             GATEWAY_LEEWAY_MAX);
    }
    if (cfg->max_body == 0 || cfg->max_body > 64u * 1024u * 1024u) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "--max-body must be 1 byte to 64 MiB");
    }
    if (cfg->max_conns <= 0 || cfg->max_conns > 65536) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "--max-conns must be 1..65536");
    }
    if (cfg->idle_timeout_ms < 1000) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "--idle-timeout must be at least 1s");
    }
    return 0;
}

static void gw_free(struct gw *g)
{
    wsource_stop(g->ws);
    g->ws = NULL;
    if (g->audit != NULL) {
        struct ly_error e;
        ly_error_clear(&e);
        if (audit_sync(g->audit, &e) < 0) {
            log_event(LOG_ERROR, "gateway.audit_failed", LOG_STR, "error", e.msg, LOG_END);
        }
        audit_close(g->audit);
        g->audit = NULL;
    }
    gwpolicy_free(g->policy);
    gwtls_free(g->tls);
    jwtset_unref(g->jwt);
    if (g->up_addrs != NULL) {
        freeaddrinfo(g->up_addrs);
    }
    ly_buf_free(&g->tok);
    pthread_mutex_destroy(&g->audit_mu);
    pthread_mutex_destroy(&g->jwt_mu);
    pthread_mutex_destroy(&g->tok_mu);
    pthread_mutex_destroy(&g->pool_mu);
    pthread_cond_destroy(&g->pool_cv);
    free(g);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int gateway_run(const struct gateway_config *cfg, struct ly_error *err)
{
    struct gw *g;
    struct wsource_config wc;
    struct sigaction sa;
    int lfd = -1;
    int rc;
    long waited = 0;

    rc = check_config(cfg, err);
    if (rc < 0) {
        return rc;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    g->cfg = cfg;
    g->stop = &gw_stop;
    gw_stop = 0;
    pthread_mutex_init(&g->audit_mu, NULL);
    pthread_mutex_init(&g->jwt_mu, NULL);
    pthread_mutex_init(&g->tok_mu, NULL);
    pthread_mutex_init(&g->pool_mu, NULL);
    pthread_cond_init(&g->pool_cv, NULL);
    ly_buf_init_secret(&g->tok, TOKEN_MAX_LEN + 2);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);

    rc = resolve_upstream(g, err);
    if (rc == 0 && cfg->client_mode) {
        rc = spiffeid_parse(cfg->server_id, strlen(cfg->server_id), &g->server_id, err);
        if (rc == 0 && spiffeid_is_root(&g->server_id)) {
            rc = ly_error_setx(err, LY_ERR_USAGE, 0,
                               "--server-id must name a workload (a SPIFFE ID with a path)");
        }
        if (rc < 0) {
            (void)ly_error_wrap(err, "--server-id");
        }
    }
    if (rc == 0 && cfg->want_id != NULL) {
        struct spiffeid want;
        rc = spiffeid_parse(cfg->want_id, strlen(cfg->want_id), &want, err);
        if (rc < 0) {
            (void)ly_error_wrap(err, "--id");
        }
    }
    if (rc == 0 && !cfg->client_mode) {
        rc = gwpolicy_open(cfg->store_path, &g->policy, err);
        if (rc == 0) {
            rc = audit_open(cfg->audit_path, &g->audit, err);
            if (rc < 0) {
                (void)ly_error_wrap(err, "audit log %.200s", cfg->audit_path);
            } else {
                /* Records are written before each answer; fsync follows every 100 ms. */
                audit_defer_sync(g->audit, 1);
            }
        }
    }
    if (rc == 0) {
        rc = gwtls_new(cfg->client_mode ? GWTLS_CLIENT : GWTLS_SERVER, &g->tls, err);
    }
    if (rc == 0) {
        rc = open_listener(g, &lfd, err);
    }
    if (rc == 0) {
        memset(&wc, 0, sizeof(wc));
        wc.socket_path = cfg->socket_path;
        wc.want_id = cfg->want_id;
        wc.on_x509 = on_x509;
        wc.on_jwt = cfg->client_mode ? NULL : on_jwt;
        wc.arg = g;
        rc = wsource_start(&wc, &g->ws, err);
    }
    if (rc < 0) {
        if (lfd >= 0) {
            (void)close(lfd);
        }
        gw_free(g);
        return rc;
    }

    pthread_mutex_lock(&g->pool_mu);
    for (int i = 0; i < GW_MIN_WORKERS; i++) {
        if (spawn_worker(g) < 0) {
            break;
        }
    }
    pthread_mutex_unlock(&g->pool_mu);

    /* No identity, no listening: wait for the first SVID (and, for tokens, JWT bundles). */
    while (!gw_stop) {
        int have_jwt;
        pthread_mutex_lock(&g->jwt_mu);
        have_jwt = cfg->client_mode || g->jwt != NULL;
        pthread_mutex_unlock(&g->jwt_mu);
        if (gwtls_ready(g->tls) && have_jwt) {
            break;
        }
        if (waited % SVID_WAIT_LOG_MS == 0) {
            log_event(LOG_INFO, "gateway.waiting_for_svid", LOG_STR, "socket", cfg->socket_path,
                      LOG_STR, "id", cfg->want_id != NULL ? cfg->want_id : "(first)", LOG_END);
        }
        nap_ms(100);
        waited += 100;
    }
    if (!gw_stop) {
        char self[SPIFFEID_MAX_LEN + 1];
        gwtls_self_id(g->tls, self, sizeof(self));
        log_event(LOG_INFO, "gateway.listening", LOG_STR, "mode",
                  cfg->client_mode ? "client" : "server", LOG_STR, "listen", cfg->listen,
                  LOG_STR, "upstream", g->up_authority, LOG_STR, "spiffe_id", self, LOG_STR,
                  cfg->client_mode ? "server_id" : "audience",
                  cfg->client_mode ? cfg->server_id : cfg->audience, LOG_END);
        if (cfg->ready_fd >= 0) {
            ssize_t w = write(cfg->ready_fd, "ready\n", 6);
            (void)w;
            (void)close(cfg->ready_fd);
        }
    }

    while (!gw_stop) {
        struct pollfd p = {lfd, POLLIN, 0};
        int r = poll(&p, 1, AUDIT_SYNC_MS);
        if (g->audit != NULL) {
            struct ly_error e;
            ly_error_clear(&e);
            pthread_mutex_lock(&g->audit_mu);
            if (audit_sync(g->audit, &e) < 0 && !g->audit_broken) {
                g->audit_broken = 1;
                log_event(LOG_ERROR, "gateway.audit_failed", LOG_STR, "error", e.msg, LOG_END);
            }
            pthread_mutex_unlock(&g->audit_mu);
        }
        if (r <= 0) {
            continue;
        }
        for (;;) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) {
                break;
            }
            /* Blocking sockets from here on (each connection has its own thread). */
            if (fcntl(fd, F_SETFL, 0) != 0) {
                (void)close(fd);
                continue;
            }
            dispatch(g, fd);
            if (p.revents == 0) {
                break;
            }
        }
    }
    (void)close(lfd);
    log_event(LOG_INFO, "gateway.stopping", LOG_INT, "open_connections",
              (int64_t)atomic_load(&g->conns), LOG_INT, "requests",
              (int64_t)atomic_load(&g->requests), LOG_END);
    /* Workers notice the stop within a poll step; give them a moment. */
    pthread_mutex_lock(&g->pool_mu);
    pthread_cond_broadcast(&g->pool_cv);
    pthread_mutex_unlock(&g->pool_mu);
    for (int i = 0; i < 50; i++) {
        int left;
        pthread_mutex_lock(&g->pool_mu);
        left = g->workers;
        pthread_mutex_unlock(&g->pool_mu);
        if (left == 0) {
            break;
        }
        nap_ms(100);
    }
    pthread_mutex_lock(&g->pool_mu);
    rc = g->workers;
    pthread_mutex_unlock(&g->pool_mu);
    if (rc == 0) {
        gw_free(g);
    } else {
        /* Workers still hold g: sync the audit log and leave the rest to process exit. */
        pthread_mutex_lock(&g->audit_mu);
        if (g->audit != NULL) {
            struct ly_error e;
            ly_error_clear(&e);
            if (audit_sync(g->audit, &e) < 0) {
                log_event(LOG_ERROR, "gateway.audit_failed", LOG_STR, "error", e.msg, LOG_END);
            }
        }
        pthread_mutex_unlock(&g->audit_mu);
    }
    return 0;
}
