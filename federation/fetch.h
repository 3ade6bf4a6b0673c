/*
 * fetch: the HTTPS client of SPIFFE bundle endpoints, on libcurl's multi interface, and the one
 * place in lanyard that uses libcurl. It downloads bounded answers and reports, per transfer,
 * the body, the HTTP status and (for https_spiffe) the certificate chain the server presented;
 * it does not parse bundles, verify SVIDs or log anything: its caller does all three.
 *
 * Ownership and threading: a struct fed_fetch and every transfer it runs belong to one thread
 * (the daemon's loop thread, or the CLI's only thread); nothing here is thread-safe, and no
 * call blocks except fed_fetch_run(). Requests are copied by fed_fetch_start(); results are
 * borrowed for the duration of the callback that receives them.
 */
#ifndef FED_FETCH_H
#define FED_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"

/* Readiness bits for the watch hook and fed_fetch_socket(): the daemon loop's values. */
#define FED_IO_READ 0x1  /* = LOOP_READABLE */
#define FED_IO_WRITE 0x2 /* = LOOP_WRITABLE */

/* Largest answer body accepted (= BUNDLE_CODEC_MAX_INPUT); larger answers are refused. */
#define FED_FETCH_MAX_BODY (1024 * 1024)
/* Default whole-transfer timeout, and the cap on the connect phase (TCP + TLS handshake). */
#define FED_FETCH_TIMEOUT_MS 10000
#define FED_FETCH_CONNECT_TIMEOUT_MS 5000
/* Longest URL accepted, largest ca_pem, and most transfers one fetcher runs at once. */
#define FED_FETCH_MAX_URL 2048
#define FED_FETCH_MAX_CA_PEM (1024 * 1024)
#define FED_FETCH_MAX_ACTIVE 256

/* How the server is authenticated (the SPIFFE federation profiles). */
enum fed_fetch_auth {
    /*
     * https_web: libcurl verifies the server's certificate chain (against the system's CAs, or
     * against ca_pem only when it is given) and the URL's host name; an unverified server
     * fails the transfer.
     */
    FED_FETCH_WEB = 1,
    /*
     * https_spiffe: libcurl does NOT verify the server; the result carries the certificate
     * chain the server presented, which the caller MUST verify (as an X509-SVID with the
     * expected SPIFFE ID) before it uses the body. Nothing secret is sent (a GET without
     * credentials or cookies), so checking after the transfer is as safe as checking during
     * the handshake.
     */
    FED_FETCH_PEER_CHAIN = 2,
};

/* Stable reasons (struct ly_error.reason) of refused requests and failed transfers. */
enum fed_fetch_reason {
    FED_FETCH_R_BAD_REQUEST = 1, /* LY_ERR_USAGE: not an https:// URL, bad options, too many */
    FED_FETCH_R_RESOLVE,         /* LY_ERR_IO: the host name does not resolve */
    FED_FETCH_R_CONNECT,         /* LY_ERR_IO: TCP connect failed (message names the errno) */
    FED_FETCH_R_TLS,             /* LY_ERR_VERIFY (server not trusted) or _IO (handshake) */
    FED_FETCH_R_TIMEOUT,         /* LY_ERR_IO: "timed out after N ms" */
    FED_FETCH_R_HTTP_STATUS,     /* LY_ERR_IO: an answer other than 200 (redirects too) */
    FED_FETCH_R_TOO_BIG,         /* LY_ERR_PARSE: body over FED_FETCH_MAX_BODY */
    FED_FETCH_R_NO_CHAIN,        /* LY_ERR_VERIFY: PEER_CHAIN, no certificate was reported */
    FED_FETCH_R_BAD_CHAIN,       /* LY_ERR_PARSE: a presented certificate does not decode */
    FED_FETCH_R_IO,              /* LY_ERR_IO (or _NOMEM, _INTERNAL): other transfer failure */
};

/*
 * How the daemon's loop drives a fetcher (libcurl's socket and timer callbacks). The hooks
 * are called from inside fed_fetch_* calls, including fed_fetch_free(), and must not call
 * back into the fetcher: they only record what to watch and when to call fed_fetch_timeout().
 */
struct fed_fetch_hooks {
    void *arg; /* passed to both hooks; borrowed, must outlive the fetcher */
    /*
     * Start or change watching fd for the FED_IO_* bits in mask, and call fed_fetch_socket()
     * when it is ready; mask 0: stop watching it (it is about to be closed). Returns 0 or -1;
     * a transfer whose socket cannot be watched fails with FED_FETCH_R_IO.
     */
    int (*watch)(void *arg, int fd, int mask);
    /*
     * Call fed_fetch_timeout() once, ms milliseconds from now (0: at the next iteration, not
     * from inside this hook), replacing any earlier request; ms -1: cancel it.
     */
    void (*timer)(void *arg, long ms);
};

struct fed_fetch_request {
    const char *url; /* https:// only, no user:password; anything else LY_ERR_USAGE. Copied. */
    enum fed_fetch_auth auth;
    /*
     * FED_FETCH_WEB only: trust anchors (PEM) used INSTEAD of the system's CAs; NULL (and
     * ca_len 0) for the system store. Copied. Refused with FED_FETCH_PEER_CHAIN.
     */
    const uint8_t *ca_pem;
    size_t ca_len;
    long timeout_ms; /* whole transfer; 0: FED_FETCH_TIMEOUT_MS; negative: LY_ERR_USAGE */
};

/* The outcome of one transfer. Every pointer is borrowed until the callback returns. */
struct fed_fetch_result {
    int ok;              /* 1: HTTP 200, complete body within FED_FETCH_MAX_BODY (and a chain) */
    struct ly_error err; /* when !ok: what failed, e.g. "TLS: SSL certificate problem: ...",
                          * "HTTP status 404", "answer larger than 1048576 bytes",
                          * "timed out after 400 ms", "Failed to connect to 127.0.0.1 port
                          * 8443 after 0 ms: Couldn't connect to server: Connection refused" */
    long http_status;    /* last HTTP status received; 0 when no answer */
    const uint8_t *body; /* ok: the body, NUL-terminated past body_len; NULL otherwise */
    size_t body_len;
    const uint8_t *chain_der; /* PEER_CHAIN and ok: the presented certificates as concatenated
                               * DER, leaf first, in the server's order; NULL otherwise */
    size_t chain_len;
    size_t chain_count;
    long elapsed_ms; /* from fed_fetch_start() to the end of the transfer */
};

/*
 * Called exactly once per transfer that is not cancelled, from fed_fetch_socket(),
 * fed_fetch_timeout() or fed_fetch_run(). It may call fed_fetch_start(), fed_fetch_cancel()
 * (of other transfers; its own id is already gone) and fed_fetch_free() (the fetcher is then
 * freed when the outer call returns, and no further callback runs).
 */
typedef void (*fed_fetch_done_fn)(void *arg, uint64_t id, const struct fed_fetch_result *r);

struct fed_fetch;

/*
 * Create a fetcher. hooks (copied; NULL for blocking use through fed_fetch_run()) must have
 * both functions. Returns 0 and *out (caller frees with fed_fetch_free()), or LY_ERR_USAGE,
 * LY_ERR_NOMEM or LY_ERR_INTERNAL (libcurl could not be initialised).
 */
int fed_fetch_new(const struct fed_fetch_hooks *hooks, struct fed_fetch **out,
                  struct ly_error *err) LY_MUST_USE;

/*
 * Cancel every transfer without calling its callback (the watch hook is told to stop watching
 * their sockets and the timer is cancelled), then free. With hooks, call it before the loop
 * the hooks point into goes away. NULL is a no-op.
 */
void fed_fetch_free(struct fed_fetch *f);

/*
 * Start a GET of req->url (nothing is sent or connected before the loop or fed_fetch_run()
 * drives the fetcher). done(arg, id, result) runs once at its end unless it is cancelled;
 * arg is borrowed. *id (may be NULL) receives the transfer's id: never 0, never reused by this
 * fetcher. Returns 0, or LY_ERR_USAGE (FED_FETCH_R_BAD_REQUEST: bad URL or options, more than
 * FED_FETCH_MAX_ACTIVE transfers), LY_ERR_NOMEM, LY_ERR_INTERNAL (a libcurl option was
 * refused), all before any I/O and without a callback.
 */
int fed_fetch_start(struct fed_fetch *f, const struct fed_fetch_request *req,
                    fed_fetch_done_fn done, void *arg, uint64_t *id, struct ly_error *err)
    LY_MUST_USE;

/* Stop a transfer; its callback never runs. Unknown or finished ids are a no-op. */
void fed_fetch_cancel(struct fed_fetch *f, uint64_t id);

/* Transfers started and not yet finished or cancelled. */
size_t fed_fetch_active(const struct fed_fetch *f);

/*
 * With hooks: the loop saw fd ready for the FED_IO_* bits in mask (an error or hang-up may be
 * reported as the whole watched mask). Finished transfers' callbacks run inside. A stale fd is
 * ignored. A no-op for a fetcher without hooks.
 */
void fed_fetch_socket(struct fed_fetch *f, int fd, int mask);

/* With hooks: the timer requested through the timer hook fired. Callbacks may run inside. */
void fed_fetch_timeout(struct fed_fetch *f);

/*
 * Blocking use (the CLI, tests), for a fetcher without hooks: drive every started transfer,
 * and those its callbacks start, to completion (callbacks run inside), or until timeout_ms
 * passes (<= 0: no overall limit, each transfer still has its own timeout); transfers left
 * then are ended and reported as "timed out after <timeout_ms> ms" (any that those callbacks
 * start stay queued for a later run). Returns 0 when done, LY_ERR_USAGE with hooks or from a
 * callback, or LY_ERR_INTERNAL when libcurl fails (every transfer is then reported failed).
 */
int fed_fetch_run(struct fed_fetch *f, long timeout_ms, struct ly_error *err) LY_MUST_USE;

#endif
