/*
 * fetch: HTTPS GETs of SPIFFE bundle endpoints on libcurl's multi interface, driven by the
 * daemon loop's hooks or by fed_fetch_run(). Every transfer gets the same safe options; this
 * file never logs, never follows a redirect and never reuses a connection or TLS session, so
 * each https_spiffe result carries the chain of its own handshake.
 */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/ly_buf.h"
#include "../svid/x509svid.h"

/* CURLOPT_PROTOCOLS_STR (7.85) and CURLOPT_CAINFO_BLOB (7.77); Debian 12 ships 7.88. */
#if LIBCURL_VERSION_NUM < 0x075500
#error "lanyard needs libcurl 7.85 or later"
#endif
#define FETCH_MIN_CURL 0x075500

struct fed_xfer {
    struct fed_xfer *next;
    CURL *easy;
    uint64_t id;
    enum fed_fetch_auth auth;
    fed_fetch_done_fn done;
    void *arg;
    long timeout_ms;
    long connect_ms;
    uint64_t start_ms;
    struct ly_buf body;  /* the 200 answer, capped at FED_FETCH_MAX_BODY */
    int too_big;         /* the body callback refused bytes past the cap */
    int nomem;           /* the body could not be stored */
    int doomed;          /* the loop could not watch a socket: fail it after this action */
    struct ly_error hook_err;
    char errbuf[CURL_ERROR_SIZE];
};

struct fed_fetch {
    CURLM *multi;
    struct fed_fetch_hooks hooks;
    int has_hooks;
    struct curl_slist *headers; /* shared by every transfer; lives as long as the fetcher */
    struct fed_xfer *xfers;
    size_t n;
    uint64_t next_id;
    int depth; /* nesting of calls that run callbacks */
    int dying; /* fed_fetch_free() ran inside a callback: free when the outer call returns */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0; /* cannot happen for CLOCK_MONOTONIC on Linux; elapsed times would read 0 */
    }
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- transfer bookkeeping ------------------------------------------------------------------- */

static struct fed_xfer *xfer_by_easy(struct fed_fetch *f, const CURL *easy)
{
    struct fed_xfer *x;

    for (x = f->xfers; x != NULL; x = x->next) {
        if (x->easy == easy) {
            return x;
        }
    }
    return NULL;
}

static void xfer_unlink(struct fed_fetch *f, struct fed_xfer *x)
{
    struct fed_xfer **pp;

    for (pp = &f->xfers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            x->next = NULL;
            f->n--;
            return;
        }
    }
}

/* Detach the easy handle from the multi handle and free it (the socket hook sees mask 0). */
static void xfer_release_easy(struct fed_fetch *f, struct fed_xfer *x)
{
    if (x->easy == NULL) {
        return;
    }
    /* Fails only for a handle that is not in the multi handle; it is freed either way. */
    (void)curl_multi_remove_handle(f->multi, x->easy);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
}

static void xfer_free(struct fed_xfer *x)
{
    if (x == NULL) {
        return;
    }
    ly_buf_free(&x->body);
    free(x);
}

/* ---- libcurl callbacks ---------------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct fed_xfer *x = userdata;
    struct ly_error e;
    size_t n = size * nmemb; /* size is always 1 for body data */
    long status = 0;

    ly_error_clear(&e);
    /* Only a 200 answer is used: stop at once instead of reading any other body. */
    if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
        status != 200) {
        return 0;
    }
    /* The hard cap: a body one byte over FED_FETCH_MAX_BODY aborts the transfer. */
    if (n > (size_t)FED_FETCH_MAX_BODY - x->body.len) {
        x->too_big = 1;
        return 0;
    }
    if (ly_buf_append(&x->body, ptr, n, &e) != 0) {
        x->nomem = 1;
        return 0;
    }
    return n;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct fed_fetch *f = userp;
    struct fed_xfer *x;
    int mask = 0;

    (void)socketp;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        mask |= FED_IO_READ;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        mask |= FED_IO_WRITE;
    }
    if (f->hooks.watch(f->hooks.arg, (int)s, mask) == 0 || mask == 0) {
        return 0; /* a failure to stop watching leaves nothing to undo: the fd is closing */
    }
    /*
     * An unwatched socket would stall its transfer until its timeout: fail the transfer right
     * after this libcurl call instead (it cannot be removed from inside libcurl's callback).
     */
    x = xfer_by_easy(f, easy);
    if (x != NULL && !x->doomed) {
        x->doomed = 1;
        (void)ly_error_setx(&x->hook_err, LY_ERR_IO, FED_FETCH_R_IO,
                            "the event loop cannot watch socket %d", (int)s);
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct fed_fetch *f = userp;

    (void)multi;
    f->hooks.timer(f->hooks.arg, timeout_ms < 0 ? -1 : timeout_ms);
    return 0;
}

/* ---- results -------------------------------------------------------------------------------- */

/* libcurl's own words for a failure: its error buffer, or the generic text of the code. */
static const char *curl_detail(const struct fed_xfer *x, CURLcode rc)
{
    return x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc);
}

static int is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Fill e from how the transfer ended; LY_OK (e untouched) for a complete 200 answer. */
static void classify(const struct fed_xfer *x, CURLcode rc, long status, struct ly_error *e)
{
    curl_off_t appconnect = 0;
    long os_errno = 0;

    if (x->nomem) {
        (void)ly_error_setx(e, LY_ERR_NOMEM, FED_FETCH_R_IO, "out of memory storing the answer");
        return;
    }
    /* A non-200 status explains a refused or over-long body better than the refusal does. */
    if ((rc == CURLE_OK || rc == CURLE_WRITE_ERROR || rc == CURLE_FILESIZE_EXCEEDED) &&
        status != 200) {
        if (status == 0) {
            (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_HTTP_STATUS, "no HTTP answer");
        } else if (status >= 300 && status < 400) {
            (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_HTTP_STATUS,
                                "HTTP status %ld (redirects are not followed)", status);
        } else {
            (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_HTTP_STATUS, "HTTP status %ld",
                                status);
        }
        return;
    }
    if (rc == CURLE_OK) {
        return;
    }
    if (rc == CURLE_FILESIZE_EXCEEDED) {
        /* libcurl refuses the announced length before it records it: no number to quote. */
        (void)ly_error_setx(e, LY_ERR_PARSE, FED_FETCH_R_TOO_BIG,
                            "answer larger than %d bytes (announced by its Content-Length)",
                            FED_FETCH_MAX_BODY);
        return;
    }
    if (x->too_big) {
        (void)ly_error_setx(e, LY_ERR_PARSE, FED_FETCH_R_TOO_BIG, "answer larger than %d bytes",
                            FED_FETCH_MAX_BODY);
        return;
    }
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        /* No TLS session yet means the (shorter) connect-phase limit is the one that fired. */
        if (curl_easy_getinfo(x->easy, CURLINFO_APPCONNECT_TIME_T, &appconnect) == CURLE_OK &&
            appconnect == 0 && x->connect_ms < x->timeout_ms) {
            (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_TIMEOUT,
                                "timed out after %ld ms while connecting", x->connect_ms);
        } else {
            (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_TIMEOUT, "timed out after %ld ms",
                                x->timeout_ms);
        }
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_RESOLVE, "%s", curl_detail(x, rc));
        return;
    case CURLE_COULDNT_CONNECT:
        /* libcurl 7.88's text says only "Couldn't connect to server": add the errno's. */
        if (curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
            os_errno > 0 && os_errno <= INT_MAX) {
            errno = (int)os_errno;
            (void)ly_error_set(e, LY_ERR_IO, FED_FETCH_R_CONNECT, "%s", curl_detail(x, rc));
        } else {
            (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_CONNECT, "%s", curl_detail(x, rc));
        }
        return;
    case CURLE_PEER_FAILED_VERIFICATION:
        (void)ly_error_setx(e, LY_ERR_VERIFY, FED_FETCH_R_TLS, "TLS: %s", curl_detail(x, rc));
        return;
    default:
        break;
    }
    if (is_tls_error(rc)) {
        (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_TLS, "TLS: %s", curl_detail(x, rc));
        return;
    }
    (void)ly_error_setx(e, LY_ERR_IO, FED_FETCH_R_IO, "%s", curl_detail(x, rc));
}

/*
 * The chain the server presented, as libcurl reports it (CURLINFO_CERTINFO, leaf first in the
 * server's order, filled even with verification off), decoded from its PEM by wolfSSL through
 * svid/x509svid into concatenated DER.
 */
static int read_chain(struct fed_xfer *x, struct ly_buf *out, size_t *count,
                      struct ly_error *e)
{
    struct curl_certinfo *ci = NULL;
    struct x509svid_chain *chain = NULL;
    struct ly_error pe;
    struct ly_buf pem;
    size_t i;
    int rc = 0;

    ly_error_clear(&pe);
    ly_buf_init(&pem, X509SVID_MAX_INPUT);
    if (curl_easy_getinfo(x->easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
        ci->num_of_certs <= 0) {
        return ly_error_setx(e, LY_ERR_VERIFY, FED_FETCH_R_NO_CHAIN,
                             "the server presented no certificate");
    }
    for (i = 0; rc == 0 && i < (size_t)ci->num_of_certs; i++) {
        const struct curl_slist *s;
        const char *cert = NULL;

        for (s = ci->certinfo[i]; s != NULL; s = s->next) {
            if (strncmp(s->data, "Cert:", 5) == 0) {
                cert = s->data + 5;
                break;
            }
        }
        if (cert == NULL) {
            rc = ly_error_setx(e, LY_ERR_PARSE, FED_FETCH_R_BAD_CHAIN,
                               "presented certificate #%zu has no PEM form", i + 1);
        } else if (ly_buf_append_str(&pem, cert, &pe) != 0 ||
                   ly_buf_append_str(&pem, "\n", &pe) != 0) {
            rc = ly_error_setx(e, pe.code, FED_FETCH_R_BAD_CHAIN,
                               "presented certificate chain: %s", pe.msg);
        }
    }
    if (rc == 0 && x509svid_chain_parse(pem.data, pem.len, &chain, &pe) != 0) {
        rc = ly_error_setx(e, LY_ERR_PARSE, FED_FETCH_R_BAD_CHAIN,
                           "presented certificate chain: %s", pe.msg);
    }
    if (rc == 0 && x509svid_chain_count(chain) != (size_t)ci->num_of_certs) {
        rc = ly_error_setx(e, LY_ERR_PARSE, FED_FETCH_R_BAD_CHAIN,
                           "presented %d certificates, %zu decoded", ci->num_of_certs,
                           x509svid_chain_count(chain));
    }
    for (i = 0; rc == 0 && i < x509svid_chain_count(chain); i++) {
        size_t len = 0;
        const uint8_t *der = x509svid_chain_cert(chain, i, &len);

        if (der == NULL || ly_buf_append(out, der, len, &pe) != 0) {
            rc = ly_error_setx(e, pe.code != LY_OK ? pe.code : LY_ERR_INTERNAL,
                               FED_FETCH_R_BAD_CHAIN, "presented certificate chain: %s",
                               pe.msg[0] != '\0' ? pe.msg : "certificate missing");
        }
    }
    if (rc == 0) {
        *count = x509svid_chain_count(chain);
    }
    x509svid_chain_free(chain);
    ly_buf_free(&pem);
    return rc;
}

/*
 * End a transfer: take it off the list and out of libcurl, build its result, free libcurl's
 * handle, call its callback, then free it. Nothing touches x after the callback, which may
 * start, cancel or free anything. `forced` (may be NULL) replaces libcurl's verdict.
 */
static void finish(struct fed_fetch *f, struct fed_xfer *x, CURLcode rc,
                   const struct ly_error *forced)
{
    struct fed_fetch_result r;
    struct ly_buf chain;

    memset(&r, 0, sizeof(r));
    ly_error_clear(&r.err);
    ly_buf_init(&chain, X509SVID_MAX_INPUT);
    xfer_unlink(f, x);
    /* Fails only for a handle that is not in the multi handle; there is nothing to undo. */
    (void)curl_multi_remove_handle(f->multi, x->easy);
    if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.http_status) != CURLE_OK) {
        r.http_status = 0;
    }
    r.elapsed_ms = (long)(mono_ms() - x->start_ms);
    if (forced != NULL) {
        r.err = *forced;
    } else if (x->doomed) {
        r.err = x->hook_err;
    } else {
        classify(x, rc, r.http_status, &r.err);
    }
    if (r.err.code == LY_OK && x->auth == FED_FETCH_PEER_CHAIN &&
        read_chain(x, &chain, &r.chain_count, &r.err) == 0) {
        r.chain_der = chain.data;
        r.chain_len = chain.len;
    }
    if (r.err.code == LY_OK) {
        r.ok = 1;
        r.body = x->body.data != NULL ? x->body.data : (const uint8_t *)"";
        r.body_len = x->body.len;
    } else {
        r.chain_count = 0;
    }
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    x->done(x->arg, x->id, &r);
    ly_buf_free(&chain);
    xfer_free(x);
}

/* Report (as failed with `why`) every transfer started up to id `upto`; later ones stay. */
static void fail_upto(struct fed_fetch *f, uint64_t upto, const struct ly_error *why)
{
    while (!f->dying) {
        struct fed_xfer *x;

        for (x = f->xfers; x != NULL && x->id > upto; x = x->next) {
        }
        if (x == NULL) {
            return;
        }
        finish(f, x, CURLE_OK, why);
    }
}

/* Run the callbacks of every finished transfer, and of those whose socket was not watched. */
static void process(struct fed_fetch *f)
{
    CURLMsg *m;
    int left = 0;

    while (!f->dying) {
        struct fed_xfer *x;
        CURL *easy;
        CURLcode rc;

        m = curl_multi_info_read(f->multi, &left);
        if (m == NULL) {
            break;
        }
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        /* The message dies with its handle: copy what is needed before finishing it. */
        easy = m->easy_handle;
        rc = m->data.result;
        x = xfer_by_easy(f, easy);
        if (x != NULL) {
            finish(f, x, rc, NULL);
        }
    }
    while (!f->dying) {
        struct fed_xfer *x;

        for (x = f->xfers; x != NULL && !x->doomed; x = x->next) {
        }
        if (x == NULL) {
            break;
        }
        finish(f, x, CURLE_OK, NULL);
    }
}

static int multi_failed(struct fed_fetch *f, CURLMcode mc, struct ly_error *err)
{
    struct ly_error why;

    ly_error_clear(&why);
    (void)ly_error_setx(&why, LY_ERR_INTERNAL, FED_FETCH_R_IO, "libcurl: %s",
                        curl_multi_strerror(mc));
    fail_upto(f, f->next_id - 1, &why);
    return ly_error_setx(err, LY_ERR_INTERNAL, FED_FETCH_R_IO, "libcurl: %s",
                         curl_multi_strerror(mc));
}

/* ---- the fetcher ---------------------------------------------------------------------------- */

static void cancel_all(struct fed_fetch *f)
{
    while (f->xfers != NULL) {
        struct fed_xfer *x = f->xfers;

        xfer_unlink(f, x);
        xfer_release_easy(f, x);
        xfer_free(x);
    }
}

static void destroy(struct fed_fetch *f)
{
    cancel_all(f);
    if (f->multi != NULL) {
        /* Only fails for a bad handle; the fetcher is going away either way. */
        (void)curl_multi_cleanup(f->multi);
        f->multi = NULL;
    }
    if (f->has_hooks) {
        f->hooks.timer(f->hooks.arg, -1);
    }
    curl_slist_free_all(f->headers);
    f->headers = NULL;
    free(f);
}

/* Calls that may run callbacks are bracketed so that a free from a callback waits for them. */
static void enter(struct fed_fetch *f)
{
    f->depth++;
}

static void leave(struct fed_fetch *f)
{
    f->depth--;
    if (f->depth == 0 && f->dying) {
        destroy(f);
    }
}

int fed_fetch_new(const struct fed_fetch_hooks *hooks, struct fed_fetch **out,
                  struct ly_error *err)
{
    const curl_version_info_data *v;
    struct fed_fetch *f;
    int rc;

    ly_error_clear(err);
    if (out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "fed_fetch_new: out is NULL");
    }
    *out = NULL;
    if (hooks != NULL && (hooks->watch == NULL || hooks->timer == NULL)) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "fetch hooks need both a watch and a timer function");
    }
    if (pthread_once(&curl_once, curl_init) != 0 || curl_init_rc != CURLE_OK) {
        return ly_error_setx(err, LY_ERR_INTERNAL, FED_FETCH_R_IO,
                             "libcurl could not be initialised");
    }
    /* The headers decide what this file may use; the library actually loaded must agree. */
    v = curl_version_info(CURLVERSION_NOW);
    if (v == NULL || v->version_num < FETCH_MIN_CURL || (v->features & CURL_VERSION_SSL) == 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, FED_FETCH_R_IO,
                             "libcurl %s is too old or has no TLS (7.85 with TLS needed)",
                             v != NULL ? v->version : "?");
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    f->next_id = 1;
    f->multi = curl_multi_init();
    f->headers = curl_slist_append(NULL, "Accept: application/json");
    if (f->multi == NULL || f->headers == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory (libcurl)");
        goto err;
    }
    if (hooks != NULL) {
        f->hooks = *hooks;
        f->has_hooks = 1;
        if (curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
            curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, FED_FETCH_R_IO,
                               "libcurl refused the socket and timer callbacks");
            goto err;
        }
    }
    *out = f;
    return 0;
err:
    /* No transfer and no timer yet: the hooks have nothing to be told. */
    f->has_hooks = 0;
    destroy(f);
    return rc;
}

void fed_fetch_free(struct fed_fetch *f)
{
    if (f == NULL) {
        return;
    }
    cancel_all(f);
    if (f->depth > 0) {
        f->dying = 1;
        return;
    }
    destroy(f);
}

/* ---- starting a transfer -------------------------------------------------------------------- */

static int check_url(const char *url, struct ly_error *err)
{
    CURLU *u;
    CURLUcode uc;
    char *part = NULL;
    size_t len = strnlen(url, FED_FETCH_MAX_URL + 1);
    int rc = 0;

    if (len == 0 || len > FED_FETCH_MAX_URL) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "the URL is empty or longer than %d bytes", FED_FETCH_MAX_URL);
    }
    u = curl_url();
    if (u == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory (libcurl)");
    }
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        rc = ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST, "not a valid URL: %s",
                           curl_url_strerror(uc));
        goto out;
    }
    /* libcurl lower-cases the scheme, so "HTTPS://" is accepted and "http://" is not. */
    if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK || part == NULL ||
        strcmp(part, "https") != 0) {
        rc = ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                           "only https:// URLs are fetched (got %.16s://)",
                           part != NULL ? part : "?");
        goto out;
    }
    curl_free(part);
    part = NULL;
    /* Credentials in a bundle URL would end up in logs and in every request: refuse them. */
    uc = curl_url_get(u, CURLUPART_USER, &part, 0);
    curl_free(part);
    part = NULL;
    if (uc == CURLUE_NO_USER) {
        uc = curl_url_get(u, CURLUPART_PASSWORD, &part, 0);
        curl_free(part);
        part = NULL;
    }
    if (uc != CURLUE_NO_PASSWORD) {
        rc = ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                           "the URL must not carry a user name or password");
    }
out:
    curl_free(part);
    curl_url_cleanup(u);
    return rc;
}

static int check_request(const struct fed_fetch_request *req, struct ly_error *err)
{
    if (req->url == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST, "no URL");
    }
    if (req->auth != FED_FETCH_WEB && req->auth != FED_FETCH_PEER_CHAIN) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "unknown endpoint authentication %d", (int)req->auth);
    }
    if ((req->ca_pem == NULL) != (req->ca_len == 0)) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "ca_pem and ca_len disagree");
    }
    if (req->ca_pem != NULL && req->auth != FED_FETCH_WEB) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "trust anchors (ca_pem) apply to https_web only");
    }
    if (req->ca_len > FED_FETCH_MAX_CA_PEM) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "ca_pem is larger than %d bytes", FED_FETCH_MAX_CA_PEM);
    }
    if (req->timeout_ms < 0) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "negative timeout %ld ms", req->timeout_ms);
    }
    return check_url(req->url, err);
}

static int opt_check(CURLcode rc, const char *name, struct ly_error *err)
{
    if (rc == CURLE_OK) {
        return 0;
    }
    return ly_error_setx(err, LY_ERR_INTERNAL, FED_FETCH_R_IO, "libcurl refused %s: %s", name,
                         curl_easy_strerror(rc));
}

/* The options every transfer gets; only the two profiles' TLS verification differs. */
static int easy_setup(struct fed_fetch *f, struct fed_xfer *x,
                      const struct fed_fetch_request *req, struct ly_error *err)
{
    const int web = req->auth == FED_FETCH_WEB;
    const struct {
        CURLoption opt;
        long val;
        const char *name;
    } longs[] = {
        {CURLOPT_NOSIGNAL, 1L, "CURLOPT_NOSIGNAL"},
        {CURLOPT_HTTPGET, 1L, "CURLOPT_HTTPGET"},
        {CURLOPT_FOLLOWLOCATION, 0L, "CURLOPT_FOLLOWLOCATION"},
        {CURLOPT_MAXREDIRS, 0L, "CURLOPT_MAXREDIRS"},
        {CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2, "CURLOPT_SSLVERSION"},
        {CURLOPT_TIMEOUT_MS, x->timeout_ms, "CURLOPT_TIMEOUT_MS"},
        {CURLOPT_CONNECTTIMEOUT_MS, x->connect_ms, "CURLOPT_CONNECTTIMEOUT_MS"},
        /* A reused connection or resumed session would carry no certificate to report. */
        {CURLOPT_FRESH_CONNECT, 1L, "CURLOPT_FRESH_CONNECT"},
        {CURLOPT_FORBID_REUSE, 1L, "CURLOPT_FORBID_REUSE"},
        {CURLOPT_SSL_SESSIONID_CACHE, 0L, "CURLOPT_SSL_SESSIONID_CACHE"},
        {CURLOPT_NOPROGRESS, 1L, "CURLOPT_NOPROGRESS"},
        {CURLOPT_SSL_VERIFYPEER, web ? 1L : 0L, "CURLOPT_SSL_VERIFYPEER"},
        {CURLOPT_SSL_VERIFYHOST, web ? 2L : 0L, "CURLOPT_SSL_VERIFYHOST"},
        {CURLOPT_CERTINFO, web ? 0L : 1L, "CURLOPT_CERTINFO"},
    };
    size_t i;

    for (i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
        if (opt_check(curl_easy_setopt(x->easy, longs[i].opt, longs[i].val), longs[i].name,
                      err) != 0) {
            return LY_ERR_INTERNAL;
        }
    }
    if (opt_check(curl_easy_setopt(x->easy, CURLOPT_URL, req->url), "CURLOPT_URL", err) != 0 ||
        opt_check(curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "https"),
                  "CURLOPT_PROTOCOLS_STR", err) != 0 ||
        opt_check(curl_easy_setopt(x->easy, CURLOPT_REDIR_PROTOCOLS_STR, "https"),
                  "CURLOPT_REDIR_PROTOCOLS_STR", err) != 0 ||
        /* The empty string also ignores https_proxy and friends from the environment. */
        opt_check(curl_easy_setopt(x->easy, CURLOPT_PROXY, ""), "CURLOPT_PROXY", err) != 0 ||
        opt_check(curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "lanyard"),
                  "CURLOPT_USERAGENT", err) != 0 ||
        opt_check(curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, f->headers),
                  "CURLOPT_HTTPHEADER", err) != 0 ||
        opt_check(curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf),
                  "CURLOPT_ERRORBUFFER", err) != 0 ||
        opt_check(curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body),
                  "CURLOPT_WRITEFUNCTION", err) != 0 ||
        opt_check(curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x), "CURLOPT_WRITEDATA",
                  err) != 0 ||
        /* Refuses an announced over-long answer before its body; on_body enforces the rest. */
        opt_check(curl_easy_setopt(x->easy, CURLOPT_MAXFILESIZE_LARGE,
                                   (curl_off_t)FED_FETCH_MAX_BODY),
                  "CURLOPT_MAXFILESIZE_LARGE", err) != 0) {
        return LY_ERR_INTERNAL;
    }
    if (req->ca_pem != NULL) {
        /* libcurl copies the blob (CURL_BLOB_COPY) and never writes through the pointer. */
        struct curl_blob blob = {(void *)req->ca_pem, req->ca_len, CURL_BLOB_COPY};

        /*
         * CAINFO_BLOB replaces CURLOPT_CAINFO but not CURLOPT_CAPATH, whose Debian default is
         * /etc/ssl/certs (checked with libcurl 7.88): without clearing it, every system CA
         * would still be trusted next to ca_pem.
         */
        if (opt_check(curl_easy_setopt(x->easy, CURLOPT_CAINFO_BLOB, &blob),
                      "CURLOPT_CAINFO_BLOB", err) != 0 ||
            opt_check(curl_easy_setopt(x->easy, CURLOPT_CAINFO, NULL), "CURLOPT_CAINFO",
                      err) != 0 ||
            opt_check(curl_easy_setopt(x->easy, CURLOPT_CAPATH, NULL), "CURLOPT_CAPATH",
                      err) != 0) {
            return LY_ERR_INTERNAL;
        }
    }
    return 0;
}

int fed_fetch_start(struct fed_fetch *f, const struct fed_fetch_request *req,
                    fed_fetch_done_fn done, void *arg, uint64_t *id, struct ly_error *err)
{
    struct fed_xfer *x;
    CURLMcode mc;
    int rc;

    ly_error_clear(err);
    if (id != NULL) {
        *id = 0;
    }
    if (f == NULL || req == NULL || done == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "fed_fetch_start: missing fetcher, request or callback");
    }
    if (f->dying) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "the fetcher is being freed");
    }
    if (f->n >= FED_FETCH_MAX_ACTIVE) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "more than %d fetches at once", FED_FETCH_MAX_ACTIVE);
    }
    rc = check_request(req, err);
    if (rc != 0) {
        return rc;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    ly_buf_init(&x->body, FED_FETCH_MAX_BODY);
    ly_error_clear(&x->hook_err);
    x->auth = req->auth;
    x->done = done;
    x->arg = arg;
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : FED_FETCH_TIMEOUT_MS;
    x->connect_ms =
        x->timeout_ms < FED_FETCH_CONNECT_TIMEOUT_MS ? x->timeout_ms : FED_FETCH_CONNECT_TIMEOUT_MS;
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory (libcurl)");
        goto err;
    }
    rc = easy_setup(f, x, req, err);
    if (rc != 0) {
        goto err;
    }
    x->id = f->next_id;
    x->start_ms = mono_ms();
    /* Listed first: libcurl may call the hooks from inside curl_multi_add_handle(). */
    x->next = f->xfers;
    f->xfers = x;
    f->n++;
    mc = curl_multi_add_handle(f->multi, x->easy);
    if (mc != CURLM_OK) {
        xfer_unlink(f, x);
        rc = ly_error_setx(err, LY_ERR_INTERNAL, FED_FETCH_R_IO, "libcurl: %s",
                           curl_multi_strerror(mc));
        goto err;
    }
    f->next_id++;
    if (id != NULL) {
        *id = x->id;
    }
    return 0;
err:
    curl_easy_cleanup(x->easy);
    xfer_free(x);
    return rc;
}

void fed_fetch_cancel(struct fed_fetch *f, uint64_t id)
{
    struct fed_xfer *x;

    if (f == NULL || id == 0) {
        return;
    }
    for (x = f->xfers; x != NULL && x->id != id; x = x->next) {
    }
    if (x == NULL) {
        return;
    }
    xfer_unlink(f, x);
    xfer_release_easy(f, x);
    xfer_free(x);
}

size_t fed_fetch_active(const struct fed_fetch *f)
{
    return f != NULL ? f->n : 0;
}

/* ---- driving -------------------------------------------------------------------------------- */

static void socket_action(struct fed_fetch *f, curl_socket_t fd, int ev)
{
    int running = 0;
    CURLMcode mc;

    enter(f);
    mc = curl_multi_socket_action(f->multi, fd, ev, &running);
    /* A stale readiness report for a socket libcurl already closed is harmless. */
    if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET) {
        (void)multi_failed(f, mc, NULL); /* every transfer is reported failed instead */
    } else {
        process(f);
    }
    leave(f);
}

void fed_fetch_socket(struct fed_fetch *f, int fd, int mask)
{
    int ev = 0;

    if (f == NULL || !f->has_hooks || fd < 0) {
        return;
    }
    if (mask & FED_IO_READ) {
        ev |= CURL_CSELECT_IN;
    }
    if (mask & FED_IO_WRITE) {
        ev |= CURL_CSELECT_OUT;
    }
    socket_action(f, (curl_socket_t)fd, ev);
}

void fed_fetch_timeout(struct fed_fetch *f)
{
    if (f == NULL || !f->has_hooks) {
        return;
    }
    socket_action(f, CURL_SOCKET_TIMEOUT, 0);
}

int fed_fetch_run(struct fed_fetch *f, long timeout_ms, struct ly_error *err)
{
    uint64_t deadline = 0;
    int rc = 0;

    ly_error_clear(err);
    if (f == NULL || f->has_hooks) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "fed_fetch_run needs a fetcher without hooks");
    }
    if (f->depth > 0) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_FETCH_R_BAD_REQUEST,
                             "fed_fetch_run called from a fetch callback");
    }
    if (timeout_ms > 0) {
        deadline = mono_ms() + (uint64_t)timeout_ms;
    }
    enter(f);
    while (!f->dying && f->n > 0) {
        int running = 0;
        long wait = 1000; /* libcurl's own timers shorten the wait as needed */
        CURLMcode mc = curl_multi_perform(f->multi, &running);

        if (mc != CURLM_OK) {
            rc = multi_failed(f, mc, err);
            break;
        }
        process(f);
        if (f->dying || f->n == 0) {
            break;
        }
        if (deadline != 0) {
            uint64_t now = mono_ms();
            struct ly_error why;

            if (now >= deadline) {
                ly_error_clear(&why);
                (void)ly_error_setx(&why, LY_ERR_IO, FED_FETCH_R_TIMEOUT,
                                    "timed out after %ld ms", timeout_ms);
                /* Transfers the callbacks start from here on stay for the next run. */
                fail_upto(f, f->next_id - 1, &why);
                break;
            }
            if (deadline - now < (uint64_t)wait) {
                wait = (long)(deadline - now);
            }
        }
        mc = curl_multi_poll(f->multi, NULL, 0, (int)wait, NULL);
        if (mc != CURLM_OK) {
            rc = multi_failed(f, mc, err);
            break;
        }
    }
    leave(f);
    return rc;
}
