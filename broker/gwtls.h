/*
 * gwtls: the gateway's TLS 1.3 mutual-TLS layer over wolfSSL, and the one place the gateway
 * touches wolfSSL. An identity (the workload's SVID and key, and the X.509 bundles it trusts)
 * becomes a TLS context; gwtls_set_identity() swaps in a new one while connections made with
 * the old one go on with it (rotation without dropping connections). Every peer chain is
 * verified by lanyard's own X509-SVID verifier (svid/x509svid) against the bundle of the peer's
 * own trust domain, inside the handshake, so a peer without a valid SVID never gets a
 * connection; wolfSSL itself is given no trust anchor. Session tickets and the session cache
 * are off: every connection is a full handshake whose peer was verified.
 * Connections are blocking sockets with send/receive timeouts; plain TCP connections share the
 * same I/O calls (gwtls_conn_plain) so the gateway's forwarding code is written once.
 */
#ifndef GWTLS_H
#define GWTLS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"
#include "../svid/spiffeid.h"

struct bundle_set;

enum gwtls_role {
    GWTLS_SERVER = 1, /* accept: the peer is a client that must present an SVID */
    GWTLS_CLIENT,     /* connect: the peer is a server whose SPIFFE ID must be the expected one */
};

/* Reasons (ly_error.reason) of refused handshakes and I/O failures. */
enum gwtls_reason {
    GWTLS_R_NO_IDENTITY = 1, /* no SVID yet */
    GWTLS_R_BAD_IDENTITY,    /* the SVID or key was refused by wolfSSL */
    GWTLS_R_NO_PEER_CERT,    /* the peer presented no certificate */
    GWTLS_R_PEER_REJECTED,   /* the peer's chain is not a valid X509-SVID (message says why) */
    GWTLS_R_WRONG_PEER_ID,   /* client role: the server is not the expected SPIFFE ID */
    GWTLS_R_HANDSHAKE,       /* the handshake failed otherwise (protocol, alert, timeout) */
    GWTLS_R_CLOSED,          /* the peer closed the connection */
    GWTLS_R_TIMEOUT,         /* a read or write timed out */
    GWTLS_R_IO,              /* a socket or TLS error */
};

/* A TLS configuration for one role; holds the current identity. Thread-safe. */
struct gwtls;

/* One connection (TLS or plain). Used by one thread at a time. */
struct gwtls_conn;

/* A new configuration without identity. Free with gwtls_free(). */
int gwtls_new(enum gwtls_role role, struct gwtls **out, struct ly_error *err) LY_MUST_USE;

/*
 * Install an identity: chain_der is the SVID chain (leaf first, concatenated DER), key_der its
 * PKCS#8 DER private key (borrowed; gwtls keeps its own copy inside wolfSSL and wipes every
 * buffer it made), bundles the X.509 bundles peers are verified against (ownership passes to
 * gwtls on success AND failure). The new identity serves new connections at once; connections
 * made before keep theirs until they close. LY_ERR_VERIFY / GWTLS_R_BAD_IDENTITY when wolfSSL
 * refuses the certificate or key, or they do not match. Call it from a thread that serves no
 * connection: it frees the calling thread's ECC tables (see gwtls_thread_warmup).
 */
int gwtls_set_identity(struct gwtls *t, const char *spiffe_id, const uint8_t *chain_der,
                       size_t chain_len, const uint8_t *key_der, size_t key_len,
                       struct bundle_set *bundles, struct ly_error *err) LY_MUST_USE;

/* 1 once an identity is installed. */
int gwtls_ready(struct gwtls *t);
/* The current identity's SPIFFE ID into out ("" when none). */
void gwtls_self_id(struct gwtls *t, char *out, size_t outsz);
/* Identities installed so far (1 for the first SVID; each rotation adds one). */
uint64_t gwtls_generation(struct gwtls *t);

/* Free the configuration. Connections still open keep their identity alive. NULL is a no-op. */
void gwtls_free(struct gwtls *t);

/*
 * Server role: run the handshake on accepted socket fd (gwtls takes fd and closes it on
 * failure) within timeout_ms, verifying the client's X509-SVID. On success *out is the
 * connection; the peer's SPIFFE ID and certificate hash are available from it.
 * Failures: GWTLS_R_NO_PEER_CERT, _PEER_REJECTED (with the verifier's reason in the message),
 * _HANDSHAKE, _NO_IDENTITY. *claimed (may be NULL, size >= SPIFFEID_MAX_LEN + 1) receives the
 * SPIFFE ID the refused leaf claimed when it had a readable one ("" otherwise), for the log.
 */
int gwtls_accept(struct gwtls *t, int fd, int timeout_ms, struct gwtls_conn **out,
                 char *claimed, struct ly_error *err) LY_MUST_USE;

/*
 * Client role: TLS handshake on connected socket fd (taken as above) with SNI `sni` (may be
 * NULL), presenting the current SVID and requiring the server's X509-SVID to verify and to be
 * exactly `want_server` (GWTLS_R_WRONG_PEER_ID otherwise).
 */
int gwtls_connect(struct gwtls *t, int fd, const char *sni, const struct spiffeid *want_server,
                  int timeout_ms, struct gwtls_conn **out, struct ly_error *err) LY_MUST_USE;

/* Wrap a connected plain TCP socket (taken) in a connection. */
int gwtls_conn_plain(int fd, struct gwtls_conn **out, struct ly_error *err) LY_MUST_USE;

/*
 * Read up to len bytes: > 0 bytes read, 0 when the peer closed cleanly, -1 on error or
 * timeout (err filled: GWTLS_R_TIMEOUT, _CLOSED for a reset, _IO). Blocks at most the socket's
 * receive timeout (gwtls_conn_set_timeouts).
 */
long gwtls_read(struct gwtls_conn *c, void *buf, size_t len, struct ly_error *err);
/* Write all len bytes or fail (-1, err filled). */
int gwtls_write_all(struct gwtls_conn *c, const void *buf, size_t len, struct ly_error *err)
    LY_MUST_USE;
/* Bytes already decrypted and buffered inside TLS (read them before polling the socket). */
int gwtls_pending(struct gwtls_conn *c);
/* The socket, for poll(2). */
int gwtls_fd(const struct gwtls_conn *c);
/* Socket send/receive timeouts in milliseconds (0: none). */
int gwtls_conn_set_timeouts(struct gwtls_conn *c, int rcv_ms, int snd_ms);

/* The verified peer (TLS connections; NULL / zeros for plain ones). */
const struct spiffeid *gwtls_peer_id(const struct gwtls_conn *c);
/* SHA-256 of the peer's leaf certificate DER (32 bytes) and its lower-case hex. */
const uint8_t *gwtls_peer_cert_sha256(const struct gwtls_conn *c);
const char *gwtls_peer_cert_hex(const struct gwtls_conn *c);
/* The negotiated protocol and cipher suite names ("TLSv1.3", "TLS13-AES128-GCM-SHA256"). */
const char *gwtls_version(const struct gwtls_conn *c);
const char *gwtls_cipher(const struct gwtls_conn *c);

/*
 * Per-thread ECC state. wolfSSL keeps fixed-point tables per thread (FP_ECC); building them
 * costs a new thread about 5 ms of CPU on its first handshakes. The gateway therefore runs
 * connections on long-lived worker threads that call gwtls_thread_warmup() when they start
 * (one throwaway P-256 sign and verify) and gwtls_thread_done() before they exit (frees the
 * tables, which would otherwise leak with the thread).
 */
void gwtls_thread_warmup(void);
void gwtls_thread_done(void);

/* Send close_notify (TLS) and close the socket. NULL is a no-op. */
void gwtls_close(struct gwtls_conn *c);

#endif
