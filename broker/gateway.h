/*
 * gateway: `lanyard gateway`, the mutual-TLS policy enforcement point in front of an MCP server
 * (streamable HTTP transport), and its client mode.
 *
 * Server mode terminates TLS 1.3 with the workload's own SVID (from the Workload API, rotated in
 * memory), verifies every client chain as an X509-SVID against the bundle of the client's trust
 * domain, and on every HTTP request validates the bearer token (broker/token), reads the
 * JSON-RPC message (broker/mcp), decides against the consent registry (broker/consent, read
 * from the store and refreshed whenever the store changes), records the decision in the audit
 * log (broker/audit) and forwards allowed requests to the upstream over HTTP/1.1 with the
 * token removed and the verified identity in X-Lanyard-* headers. Responses stream through;
 * tools/list, prompts/list and resources/list results are filtered to what the client may use.
 *
 * Client mode listens on loopback for plain HTTP from an unmodified MCP client and forwards
 * each request over mutual TLS with the workload's SVID to a server-mode gateway whose SPIFFE
 * ID must be --server-id.
 *
 * One thread per connection with blocking sockets and poll(2); the shared state lives in
 * broker/gwtls (TLS contexts, X.509 bundles), broker/gwpolicy (consent index, sessions), the
 * JWT bundles (reference counted here) and the audit log (one mutex).
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"

#define GATEWAY_MAX_BODY_DEFAULT (1024u * 1024u)
#define GATEWAY_MAX_CONNS_DEFAULT 1024
#define GATEWAY_IDLE_TIMEOUT_DEFAULT_MS (120 * 1000)
#define GATEWAY_HANDSHAKE_TIMEOUT_MS (10 * 1000)
#define GATEWAY_LEEWAY_MAX 300

/* Identity headers the gateway sets on forwarded requests (and drops from incoming ones). */
#define GATEWAY_HDR_PREFIX "X-Lanyard-"
#define GATEWAY_HDR_CLIENT "X-Lanyard-Client-Id"
#define GATEWAY_HDR_CERT "X-Lanyard-Client-Cert-Sha256"
#define GATEWAY_HDR_USER "X-Lanyard-User"
#define GATEWAY_HDR_CONSENT "X-Lanyard-Consent-Id"

/* JSON-RPC error codes of the gateway's own answers. */
#define GATEWAY_RPC_FORBIDDEN (-32003)        /* consent refused */
#define GATEWAY_RPC_UNAUTHORIZED (-32001)     /* token missing or invalid (HTTP 401) */
#define GATEWAY_RPC_HEADER_MISMATCH (-32020)  /* Mcp-Method / Mcp-Name vs the body */
#define GATEWAY_RPC_SESSION (-32001)          /* unknown session (with HTTP 404) */
#define GATEWAY_RPC_UPSTREAM (-32603)         /* the upstream failed (HTTP 502/504) */

struct gateway_config {
    int client_mode;
    const char *listen;      /* HOST:PORT */
    const char *upstream;    /* http://HOST:PORT (server mode) or https://HOST:PORT (client) */
    const char *audience;    /* server mode: the aud every token must carry */
    const char *want_id;     /* --id: which of the workload's SVIDs to use (NULL: the first) */
    const char *server_id;   /* client mode: the SPIFFE ID the upstream must present */
    const char *socket_path; /* the Workload API socket */
    const char *store_path;  /* server mode: the SQLite store holding consent records */
    const char *audit_path;  /* server mode: the audit log */
    const char *token_file;  /* client mode: bearer token added when a request has none */
    int allow_no_user;       /* server mode: no token = a workload-only (--no-user) request */
    int64_t token_leeway;    /* server mode: clock skew allowed on token exp/nbf (seconds) */
    size_t max_body;         /* request body cap (bytes) */
    int max_conns;           /* concurrent connections */
    int idle_timeout_ms;     /* a kept-alive connection with no request for this long is closed */
    int ready_fd;            /* >= 0: write "ready\n" here once listening (tests), then close */
};

/*
 * Run until SIGTERM or SIGINT. Returns 0 after a clean stop, or a negative LY_ERR_* when the
 * gateway cannot start (bad listen address or upstream URL, store or audit log unusable).
 * Waits for the first SVID before listening.
 */
int gateway_run(const struct gateway_config *cfg, struct ly_error *err) LY_MUST_USE;

/*
 * Pure pieces, exposed for tests. Parse "HOST:PORT" ("[v6]:PORT" too) into host and port;
 * parse an upstream URL (scheme http or https, host, optional port, no user info, path "/" or
 * empty) into scheme TLS flag, host, port and the authority to send as Host.
 */
int gateway_parse_listen(const char *s, char *host, size_t hostsz, char *port, size_t portsz,
                         struct ly_error *err) LY_MUST_USE;
int gateway_parse_upstream(const char *url, int *tls, char *host, size_t hostsz, char *port,
                           size_t portsz, char *authority, size_t authsz, struct ly_error *err)
    LY_MUST_USE;
/* The bearer token of an Authorization value ("Bearer" case-insensitive, then one space or more). */
int gateway_bearer(const char *v, size_t len, const char **tok, size_t *toklen);

#endif
