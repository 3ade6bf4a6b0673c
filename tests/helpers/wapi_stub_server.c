/*
 * Test-only Workload API stub: serves the SPIFFE Workload API methods with canned protobuf-c
 * responses over broker/grpc and broker/loop, so the transport can be checked against grpc-js
 * and our own client. Never installed; it issues no real identity.
 *
 * Usage: wapi_stub_server --socket PATH [--deny] [--max-conns N] [--handshake-ms N]
 * Prints "ready" on stdout once listening; logs calls and closes on stderr; SIGTERM or SIGINT
 * stops it gracefully (GOAWAY, open streams end with UNAVAILABLE).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/grpc.h"
#include "../../broker/loop.h"
#include "workloadapi.pb-c.h"

#define STUB_ID "spiffe://example.test/stub/workload"
#define STUB_FED "spiffe://other.test"
#define USAGE "usage: %s --socket PATH [--deny] [--max-conns N] [--handshake-ms N]\n"

struct stream {
    struct stub *stub;
    struct grpc_call *call;
    uint64_t timer;
    int sent;
    struct stream *prev, *next;
};

struct stub {
    struct loop *loop;
    struct grpc_server *srv;
    int deny;
    int stopping;
    struct stream *streams;
};

static int send_pb(struct grpc_call *call, const ProtobufCMessage *m, unsigned flags)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    struct ly_error err;
    int rc;

    ly_error_clear(&err);
    if (buf == NULL) {
        return -1;
    }
    if (protobuf_c_message_pack(m, buf) != n) {
        free(buf);
        return -1;
    }
    rc = grpc_call_send(call, buf, n, flags, &err);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "stub: send failed: %s\n", err.msg);
    }
    return rc;
}

/* The common gate: metadata header, then the deny switch. 0 when the call may go on. */
static int gate(struct grpc_call *call, struct stub *stub)
{
    const char *h = grpc_call_header(call, "workload.spiffe.io");
    const struct grpc_peer *peer = grpc_call_peer(call);

    fprintf(stderr, "stub: call %s pid=%ld uid=%ld conn=%llu\n", grpc_call_path(call),
            (long)peer->pid, (long)peer->uid, (unsigned long long)peer->conn_id);
    if (h == NULL || strcmp(h, "true") != 0) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "security header missing from request");
        return -1;
    }
    if (stub->deny) {
        char msg[128];
        /* Non-ASCII and '%' on purpose: the client must see them decoded (pitfall P4). */
        (void)snprintf(msg, sizeof(msg), "no identity issued for uid %ld (%s)", (long)peer->uid,
                       "caf\xc3\xa9 100% denied");
        grpc_call_finish(call, GRPC_PERMISSION_DENIED, msg);
        return -1;
    }
    return 0;
}

static void stream_gone(struct grpc_call *call, void *arg)
{
    struct stream *s = arg;
    struct stub *stub = s->stub;

    fprintf(stderr, "stub: closed %s after %d messages\n", grpc_call_path(call), s->sent);
    if (s->timer != 0) {
        loop_timer_del(stub->loop, s->timer);
    }
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        stub->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    free(s);
}

static struct stream *stream_new(struct stub *stub, struct grpc_call *call)
{
    struct stream *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return NULL;
    }
    s->stub = stub;
    s->call = call;
    s->next = stub->streams;
    if (stub->streams != NULL) {
        stub->streams->prev = s;
    }
    stub->streams = s;
    grpc_call_set_close_cb(call, stream_gone, s);
    return s;
}

static int x509_push(struct stream *s)
{
    static uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01}; /* not a certificate: a marker */
    static uint8_t key[] = {0x30, 0x03, 0x02, 0x01, 0x02};
    static uint8_t bundle[] = {0x30, 0x03, 0x02, 0x01, 0x03};
    static uint8_t fed[] = {0x30, 0x03, 0x02, 0x01, 0x04};
    X509SVIDResponse resp = X509_SVIDRESPONSE__INIT;
    X509SVID svid = X509_SVID__INIT;
    X509SVID *svids[1] = {&svid};
    X509SVIDResponse__FederatedBundlesEntry fe = X509_SVIDRESPONSE__FEDERATED_BUNDLES_ENTRY__INIT;
    X509SVIDResponse__FederatedBundlesEntry *fes[1] = {&fe};
    char hint[32];

    s->sent++;
    (void)snprintf(hint, sizeof(hint), "stub-%d", s->sent);
    der[4] = (uint8_t)s->sent;
    svid.spiffe_id = (char *)STUB_ID;
    svid.x509_svid.data = der;
    svid.x509_svid.len = sizeof(der);
    svid.x509_svid_key.data = key;
    svid.x509_svid_key.len = sizeof(key);
    svid.bundle.data = bundle;
    svid.bundle.len = sizeof(bundle);
    svid.hint = hint;
    resp.n_svids = 1;
    resp.svids = svids;
    fe.key = (char *)STUB_FED;
    fe.value.data = fed;
    fe.value.len = sizeof(fed);
    resp.n_federated_bundles = 1;
    resp.federated_bundles = fes;
    return send_pb(s->call, &resp.base, GRPC_SEND_REPLACE);
}

static long x509_tick(struct loop *loop, uint64_t id, void *arg)
{
    struct stream *s = arg;

    (void)loop;
    (void)id;
    s->timer = 0;
    if (x509_push(s) != 0) {
        struct grpc_call *call = s->call;
        grpc_call_set_close_cb(call, NULL, NULL);
        stream_gone(call, s);
        grpc_call_finish(call, GRPC_INTERNAL, "stub push failed");
    }
    return LOOP_TIMER_DONE; /* two messages, then the stream just stays open */
}

static int h_x509(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct stub *stub = ctx;
    X509SVIDRequest *req = x509_svidrequest__unpack(NULL, len, msg);
    struct stream *s;

    if (req == NULL) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "undecodable X509SVIDRequest");
        return 0;
    }
    x509_svidrequest__free_unpacked(req, NULL);
    if (gate(call, stub) != 0) {
        return 0;
    }
    s = stream_new(stub, call);
    if (s == NULL) {
        return -1;
    }
    if (x509_push(s) != 0 ||
        loop_timer_add(stub->loop, 1000, x509_tick, s, &s->timer, NULL) != 0) {
        grpc_call_set_close_cb(call, NULL, NULL);
        stream_gone(call, s);
        return -1;
    }
    return 0;
}

static int h_bundles(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    static uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x03};
    struct stub *stub = ctx;
    X509BundlesResponse resp = X509_BUNDLES_RESPONSE__INIT;
    X509BundlesResponse__BundlesEntry e = X509_BUNDLES_RESPONSE__BUNDLES_ENTRY__INIT;
    X509BundlesResponse__BundlesEntry *es[1] = {&e};

    (void)msg;
    (void)len;
    if (gate(call, stub) != 0) {
        return 0;
    }
    if (stream_new(stub, call) == NULL) {
        return -1;
    }
    stub->streams->sent = 1;
    e.key = (char *)"spiffe://example.test";
    e.value.data = der;
    e.value.len = sizeof(der);
    resp.n_bundles = 1;
    resp.bundles = es;
    return send_pb(call, &resp.base, 0) == 0 ? 0 : -1;
}

static int h_jwt_bundles(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    static uint8_t jwks[] = "{\"keys\":[]}";
    struct stub *stub = ctx;
    JWTBundlesResponse resp = JWTBUNDLES_RESPONSE__INIT;
    JWTBundlesResponse__BundlesEntry e = JWTBUNDLES_RESPONSE__BUNDLES_ENTRY__INIT;
    JWTBundlesResponse__BundlesEntry *es[1] = {&e};

    (void)msg;
    (void)len;
    if (gate(call, stub) != 0) {
        return 0;
    }
    if (stream_new(stub, call) == NULL) {
        return -1;
    }
    stub->streams->sent = 1;
    e.key = (char *)"spiffe://example.test";
    e.value.data = jwks;
    e.value.len = sizeof(jwks) - 1;
    resp.n_bundles = 1;
    resp.bundles = es;
    return send_pb(call, &resp.base, 0) == 0 ? 0 : -1;
}

static int h_jwt(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct stub *stub = ctx;
    JWTSVIDRequest *req;
    JWTSVIDResponse resp = JWTSVIDRESPONSE__INIT;
    JWTSVID svid = JWTSVID__INIT;
    JWTSVID *svids[1] = {&svid};
    char token[300];
    int rc;

    if (gate(call, stub) != 0) {
        return 0;
    }
    req = jwtsvidrequest__unpack(NULL, len, msg);
    if (req == NULL) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "undecodable JWTSVIDRequest");
        return 0;
    }
    if (req->n_audience == 0) {
        jwtsvidrequest__free_unpacked(req, NULL);
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "audience must be specified");
        return 0;
    }
    /* A fake token that echoes the audience (cut to fit): enough to check the round trip. */
    (void)snprintf(token, sizeof(token), "stub.%.200s.sig", req->audience[0]);
    svid.spiffe_id = (char *)STUB_ID;
    svid.svid = token;
    svid.hint = (char *)"jwt-hint";
    resp.n_svids = 1;
    resp.svids = svids;
    rc = send_pb(call, &resp.base, 0);
    jwtsvidrequest__free_unpacked(req, NULL);
    if (rc != 0) {
        return -1;
    }
    grpc_call_finish(call, GRPC_OK, NULL);
    return 0;
}

static int h_validate(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct stub *stub = ctx;
    ValidateJWTSVIDRequest *req;
    ValidateJWTSVIDResponse resp = VALIDATE_JWTSVIDRESPONSE__INIT;

    if (gate(call, stub) != 0) {
        return 0;
    }
    req = validate_jwtsvidrequest__unpack(NULL, len, msg);
    if (req == NULL) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, "undecodable ValidateJWTSVIDRequest");
        return 0;
    }
    validate_jwtsvidrequest__free_unpacked(req, NULL);
    resp.spiffe_id = (char *)STUB_ID;
    if (send_pb(call, &resp.base, 0) != 0) {
        return -1;
    }
    grpc_call_finish(call, GRPC_OK, NULL);
    return 0;
}

static long stop_when_idle(struct loop *loop, uint64_t id, void *arg)
{
    struct stub *stub = arg;

    (void)id;
    if (grpc_server_conn_count(stub->srv) == 0) {
        loop_stop(loop);
        return LOOP_TIMER_DONE;
    }
    return 20;
}

static long stop_anyway(struct loop *loop, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    loop_stop(loop);
    return LOOP_TIMER_DONE;
}

static void on_term(struct loop *loop, int signo, void *arg)
{
    struct stub *stub = arg;

    fprintf(stderr, "stub: signal %d, shutting down\n", signo);
    if (stub->stopping) {
        loop_stop(loop);
        return;
    }
    stub->stopping = 1;
    grpc_server_shutdown(stub->srv);
    while (stub->streams != NULL) {
        struct stream *s = stub->streams;
        struct grpc_call *call = s->call;
        grpc_call_set_close_cb(call, NULL, NULL);
        stream_gone(call, s);
        grpc_call_finish(call, GRPC_UNAVAILABLE, "server shutting down");
    }
    if (loop_timer_add(loop, 0, stop_when_idle, stub, NULL, NULL) != 0 ||
        loop_timer_add(loop, 3000, stop_anyway, stub, NULL, NULL) != 0) {
        loop_stop(loop);
    }
}

int main(int argc, char **argv)
{
    static const struct grpc_method methods[] = {
        {"/SpiffeWorkloadAPI/FetchX509SVID", h_x509},
        {"/SpiffeWorkloadAPI/FetchX509Bundles", h_bundles},
        {"/SpiffeWorkloadAPI/FetchJWTSVID", h_jwt},
        {"/SpiffeWorkloadAPI/FetchJWTBundles", h_jwt_bundles},
        {"/SpiffeWorkloadAPI/ValidateJWTSVID", h_validate},
    };
    struct grpc_server_limits lim;
    struct stub stub;
    struct ly_error err;
    const char *path = NULL;
    int i, rc = 1;

    memset(&stub, 0, sizeof(stub));
    memset(&lim, 0, sizeof(lim));
    ly_error_clear(&err);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--deny") == 0) {
            stub.deny = 1;
        } else if (strcmp(argv[i], "--max-conns") == 0 && i + 1 < argc) {
            lim.max_conns = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--handshake-ms") == 0 && i + 1 < argc) {
            lim.handshake_ms = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, USAGE, argv[0]);
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, USAGE, argv[0]);
        return 2;
    }
    if (loop_new(&stub.loop, &err) != 0 ||
        grpc_server_new(stub.loop, methods, sizeof(methods) / sizeof(methods[0]), &stub, &lim,
                        &stub.srv, &err) != 0 ||
        loop_signal_add(stub.loop, SIGTERM, on_term, &stub, &err) != 0 ||
        loop_signal_add(stub.loop, SIGINT, on_term, &stub, &err) != 0 ||
        grpc_server_listen_unix(stub.srv, path, 0666, &err) != 0) {
        fprintf(stderr, "stub: %s\n", err.msg);
        goto out;
    }
    printf("ready\n");
    if (fflush(stdout) != 0) {
        goto out;
    }
    if (loop_run(stub.loop, &err) != 0) {
        fprintf(stderr, "stub: %s\n", err.msg);
        goto out;
    }
    fprintf(stderr, "stub: stopped\n");
    rc = 0;
out:
    grpc_server_free(stub.srv);
    loop_free(stub.loop);
    return rc;
}
