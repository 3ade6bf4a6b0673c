/*
 * endpoint: the SPIFFE bundle endpoint server of this trust domain: HTTPS (TLS 1.2 or 1.3 by
 * wolfSSL, server authentication only) that answers `GET /` with the current bundle JSON, one
 * request per connection. It owns no event loop: the caller's loop drives it through hooks, and
 * it never blocks, never asks a client for a certificate and never serves anything but the bundle.
 */
#ifndef FED_ENDPOINT_H
#define FED_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"

/* Readiness masks, the same values as the daemon loop's LOOP_READABLE / LOOP_WRITABLE. */
#ifndef FED_IO_READ
#define FED_IO_READ 0x1
#define FED_IO_WRITE 0x2
#endif

/* Connections open at once; the next ones are accepted and closed at once. */
#define FED_ENDPOINT_MAX_CONNS 256
/* A connection must finish TLS, its request and our answer within this (monotonic ms). */
#define FED_ENDPOINT_TIMEOUT_MS 10000
/* Largest request head (request line and headers) read; a longer one gets 400. */
#define FED_ENDPOINT_MAX_HEAD 8192
/* Largest bundle body fed_endpoint_set_bundle() accepts. */
#define FED_ENDPOINT_MAX_BUNDLE (1024u * 1024u)
/* Largest certificate chain or private key (DER or PEM) the identity setters accept. */
#define FED_ENDPOINT_MAX_IDENTITY (256u * 1024u)

/* Reasons (ly_error.reason) of refused calls. */
enum fed_endpoint_reason {
    FED_ENDPOINT_R_ADDRESS = 1,  /* host is not an IPv4 literal or "localhost", or bad port */
    FED_ENDPOINT_R_LISTEN,       /* socket, bind or listen failed */
    FED_ENDPOINT_R_HOOK,         /* the watch hook refused the listening socket */
    FED_ENDPOINT_R_BAD_CERT,     /* the certificate chain does not parse or wolfSSL refused it */
    FED_ENDPOINT_R_BAD_KEY,      /* the private key does not parse, or is of an unknown type */
    FED_ENDPOINT_R_KEY_MISMATCH, /* the private key is not the leaf certificate's key */
    FED_ENDPOINT_R_TOO_BIG,      /* a bundle or identity over its cap, or empty */
};

/*
 * How the caller's loop drives the endpoint. watch(arg, fd, mask) starts, changes or (mask 0)
 * stops watching fd for FED_IO_* and returns 0, or -1 when it cannot (the endpoint then drops
 * that connection). It is called from inside fed_endpoint_new/io/tick/free, so it must not call
 * back into the endpoint; a mask-0 call always comes before the endpoint closes the fd. When a
 * watched fd is ready the loop calls fed_endpoint_io(ep, fd, ready_mask); an error or hang-up
 * may be reported as any mask (the next read or write sees it).
 */
struct fed_endpoint_hooks {
    void *arg;
    int (*watch)(void *arg, int fd, int mask);
};

/*
 * One bundle endpoint. Not thread-safe: every call on one endpoint, including the hooks it
 * makes, belongs to the thread that runs its loop.
 */
struct fed_endpoint;

/*
 * Listen on host:port: host is an IPv4 literal (such as "0.0.0.0" or "127.0.0.1") or
 * "localhost" (127.0.0.1); port 0 picks a free port (see fed_endpoint_port). The hooks are
 * copied; h->arg is borrowed until fed_endpoint_free. With no identity yet every connection is
 * closed as soon as it is accepted; with no bundle yet requests get 503. On success *out is the
 * endpoint (caller frees with fed_endpoint_free). LY_ERR_USAGE (FED_ENDPOINT_R_ADDRESS) for a
 * bad address, LY_ERR_IO (FED_ENDPOINT_R_LISTEN, with errno) when it cannot bind or listen.
 */
int fed_endpoint_new(const struct fed_endpoint_hooks *h, const char *host, int port,
                     struct fed_endpoint **out, struct ly_error *err) LY_MUST_USE;

/* The port it listens on (the one picked when port 0 was asked). */
int fed_endpoint_port(const struct fed_endpoint *ep);

/*
 * Install the TLS identity from DER: chain_der is the certificate chain (concatenated DER, leaf
 * first), key_der the leaf's private key as PKCS#8 DER (SEC1 and PKCS#1 DER are read too; key
 * types as for the PEM variant). Both are borrowed for the call; the endpoint keeps only what
 * wolfSSL copied, and every copy of the key it makes is wiped. The key must be the leaf's
 * (checked by comparing public keys: LY_ERR_VERIFY / FED_ENDPOINT_R_KEY_MISMATCH). New
 * connections use the new identity at once; connections already accepted keep theirs until they
 * close. On failure the previous identity stays. For https_spiffe, with the endpoint's own
 * (rotated) X509-SVID.
 */
int fed_endpoint_set_identity(struct fed_endpoint *ep, const uint8_t *chain_der, size_t chain_len,
                              const uint8_t *key_der, size_t key_len,
                              struct ly_error *err) LY_MUST_USE;

/*
 * As fed_endpoint_set_identity, from PEM text: a certificate chain file's contents (leaf first)
 * and a private key file's contents (PKCS#8 "PRIVATE KEY", "EC PRIVATE KEY" or "RSA PRIVATE
 * KEY"; unencrypted). Keys may be EC (any curve wolfSSL knows), RSA or Ed25519. For https_web,
 * with an operator's web certificate: its chain is not verified here (clients do that).
 */
int fed_endpoint_set_identity_pem(struct fed_endpoint *ep, const uint8_t *cert_pem, size_t cert_len,
                                  const uint8_t *key_pem, size_t key_len,
                                  struct ly_error *err) LY_MUST_USE;

/*
 * SHA-256 of the current identity's leaf certificate DER in lower-case hex (64 characters), or
 * "" when none: for logs and status. Borrowed until the next set_identity call or free.
 */
const char *fed_endpoint_cert_sha256(const struct fed_endpoint *ep);

/*
 * The body to serve (the trust domain's SPIFFE bundle JSON; not checked here), copied. Answers
 * already being written keep the body they started with; later requests get this one. 1 to
 * FED_ENDPOINT_MAX_BUNDLE bytes (LY_ERR_USAGE / FED_ENDPOINT_R_TOO_BIG otherwise; the previous
 * body stays).
 */
int fed_endpoint_set_bundle(struct fed_endpoint *ep, const uint8_t *json, size_t len,
                            struct ly_error *err) LY_MUST_USE;

/*
 * The loop reports that fd (the listening socket or a connection) is ready for `mask`. Accepts,
 * runs TLS, reads the request and writes the answer as far as the sockets allow without
 * blocking, then tells the hook what it waits on next. Unknown fds are ignored. Answers, checked
 * in this order: 400 for a malformed request (libhttp-parser refused it, a head over
 * FED_ENDPOINT_MAX_HEAD, a target over 1 KiB, not HTTP/1.x, two Host fields, or HTTP/1.1 without
 * one); 405 (Allow: GET, HEAD) for any other method; 400 for a GET or HEAD with a body; 404 for a
 * path other than "/" (a query is ignored); 503 while no bundle is set; else 200 with the bundle
 * (Content-Type: application/json). Every answer has Date (from the wall clock), Content-Length,
 * Connection: close and Cache-Control: no-store (a peer must fetch the bundle fresh when its
 * refresh hint says, never from a cache), and is followed by close_notify and close.
 */
void fed_endpoint_io(struct fed_endpoint *ep, int fd, int mask);

/*
 * Called by the daemon about every 500 ms with the monotonic time in ms. A connection is first
 * stamped by the tick after its accept, and closed by the first tick FED_ENDPOINT_TIMEOUT_MS or
 * more after that stamp: so it lives at least the timeout, at most the timeout plus one tick.
 * When accept ran out of file descriptors the listener was unwatched (so the loop does not spin
 * on it); the tick watches it again.
 */
void fed_endpoint_tick(struct fed_endpoint *ep, uint64_t now_ms);

/* 200 answers (GET and HEAD) written in full so far. */
uint64_t fed_endpoint_served(const struct fed_endpoint *ep);

/* Connections open now (handshaking, reading or answering). */
size_t fed_endpoint_conns(const struct fed_endpoint *ep);

/*
 * Stop watching and close the listening socket and every connection (best-effort close_notify
 * for those past their handshake), and free everything. NULL is a no-op.
 */
void fed_endpoint_free(struct fed_endpoint *ep);

#endif
