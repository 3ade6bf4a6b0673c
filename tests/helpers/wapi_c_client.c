/*
 * Test-only Workload API client on broker/grpc_client: runs one scenario against a server and
 * prints one line of key=value results for tests/interop/grpc_transport.sh to check. Never
 * installed.
 *
 * Usage: wapi_c_client SOCKET x509|jwt|nohdr|unknown|big|timeout|reuse|maxconns
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../broker/grpc_client.h"
#include "workloadapi.pb-c.h"

static const struct grpc_client_md hdr[] = {{"workload.spiffe.io", "true"}};

struct x509_seen {
    int n;
    long long t[2];
    char hint[2][32];
    char id[128];
};

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail with a valid pointer */
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_x509(const uint8_t *msg, size_t len, void *arg)
{
    struct x509_seen *s = arg;
    X509SVIDResponse *r = x509_svidresponse__unpack(NULL, len, msg);

    if (r == NULL || r->n_svids != 1 || s->n >= 2) {
        x509_svidresponse__free_unpacked(r, NULL);
        return 1;
    }
    s->t[s->n] = now_ms();
    (void)snprintf(s->hint[s->n], sizeof(s->hint[0]), "%s", r->svids[0]->hint);
    (void)snprintf(s->id, sizeof(s->id), "%s", r->svids[0]->spiffe_id);
    s->n++;
    x509_svidresponse__free_unpacked(r, NULL);
    return s->n == 2 ? 1 : 0; /* two messages, then cancel */
}

static int count_msg(const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

/* A packed JWTSVIDRequest for one audience; caller frees. */
static uint8_t *jwt_req(const char *aud, size_t *len)
{
    JWTSVIDRequest req = JWTSVIDREQUEST__INIT;
    char *auds[1];
    uint8_t *buf;

    auds[0] = (char *)(uintptr_t)aud;
    req.n_audience = 1;
    req.audience = auds;
    *len = jwtsvidrequest__get_packed_size(&req);
    buf = malloc(*len);
    if (buf != NULL) {
        (void)jwtsvidrequest__pack(&req, buf); /* writes exactly *len bytes */
    }
    return buf;
}

static int jwt_call(struct grpc_client *c, const char *aud, int with_hdr,
                    struct grpc_client_status *st, char *svid, size_t svidsz)
{
    struct ly_error err;
    struct ly_buf resp;
    size_t len;
    uint8_t *req = jwt_req(aud, &len);
    int rc;

    ly_error_clear(&err);
    ly_buf_init(&resp, 1 << 20);
    if (req == NULL) {
        return -1;
    }
    rc = grpc_client_unary(c, "/SpiffeWorkloadAPI/FetchJWTSVID", hdr, with_hdr ? 1 : 0, req, len,
                           5000, &resp, st, &err);
    free(req);
    if (rc != 0) {
        fprintf(stderr, "call failed: %s\n", err.msg);
    } else if (st->status == 0 && svid != NULL) {
        JWTSVIDResponse *r = jwtsvidresponse__unpack(NULL, resp.len, resp.data);
        (void)snprintf(svid, svidsz, "%s", r != NULL && r->n_svids == 1 ? r->svids[0]->svid : "?");
        jwtsvidresponse__free_unpacked(r, NULL);
    }
    ly_buf_free(&resp);
    return rc;
}

static int connect_or_die(const char *sock, struct grpc_client **c)
{
    struct ly_error err;

    ly_error_clear(&err);
    if (grpc_client_connect_unix(sock, c, &err) != 0) {
        printf("connect=fail msg=%s\n", err.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct grpc_client *c = NULL;
    struct grpc_client_status st;
    struct ly_error err;
    const char *sock, *mode;
    char svid[512];
    int rc = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET MODE\n", argv[0]);
        return 2;
    }
    sock = argv[1];
    mode = argv[2];
    ly_error_clear(&err);
    if (connect_or_die(sock, &c) != 0) {
        return 1;
    }
    if (strcmp(mode, "x509") == 0) {
        struct x509_seen s;
        memset(&s, 0, sizeof(s));
        if (grpc_client_call(c, "/SpiffeWorkloadAPI/FetchX509SVID", hdr, 1, NULL, 0, 10000,
                             on_x509, &s, &st, &err) == 0) {
            printf("msgs=%d gap_ms=%lld id=%s hint1=%s hint2=%s status=%d\n", s.n,
                   s.n == 2 ? s.t[1] - s.t[0] : -1, s.id, s.hint[0], s.hint[1], st.status);
            rc = 0;
        }
    } else if (strcmp(mode, "jwt") == 0 || strcmp(mode, "nohdr") == 0) {
        svid[0] = '\0';
        if (jwt_call(c, "spiffe://example.test/db", strcmp(mode, "jwt") == 0, &st, svid,
                     sizeof(svid)) == 0) {
            printf("status=%d svid=%s message=%s\n", st.status, svid, st.message);
            rc = 0;
        }
    } else if (strcmp(mode, "unknown") == 0) {
        if (grpc_client_call(c, "/SpiffeWorkloadAPI/Nope", hdr, 1, NULL, 0, 5000, NULL, NULL,
                             &st, &err) == 0) {
            printf("status=%d message=%s\n", st.status, st.message);
            rc = 0;
        }
    } else if (strcmp(mode, "big") == 0) {
        char *aud = malloc(100 * 1024 + 1);
        if (aud != NULL) {
            memset(aud, 'x', 100 * 1024);
            aud[100 * 1024] = '\0';
            if (jwt_call(c, aud, 1, &st, NULL, 0) == 0) {
                printf("status=%d message=%s\n", st.status, st.message);
                rc = 0;
            }
            free(aud);
        }
    } else if (strcmp(mode, "timeout") == 0) {
        int n = 0;
        long long t0 = now_ms();
        if (grpc_client_call(c, "/SpiffeWorkloadAPI/FetchX509Bundles", hdr, 1, NULL, 0, 300,
                             count_msg, &n, &st, &err) == 0) {
            printf("msgs=%d status=%d elapsed_ms=%lld\n", n, st.status, now_ms() - t0);
            rc = 0;
        }
    } else if (strcmp(mode, "reuse") == 0) {
        int ok = 0, i;
        for (i = 0; i < 3; i++) {
            if (jwt_call(c, "spiffe://example.test/db", 1, &st, svid, sizeof(svid)) == 0 &&
                st.status == 0) {
                ok++;
            }
        }
        printf("ok_calls=%d\n", ok);
        rc = 0;
    } else if (strcmp(mode, "maxconns") == 0) {
        /* The server runs with --max-conns 2: c is one, c2 the other, c3 is over the cap. The
         * server accepts and closes c3 at once, so either the preface or the call fails. */
        struct grpc_client *c2 = NULL, *c3 = NULL;
        struct grpc_client_status st2, st3;
        struct timespec pause = {0, 200 * 1000 * 1000};
        char third[16] = "closed";
        if (connect_or_die(sock, &c2) == 0 && jwt_call(c2, "a", 1, &st2, NULL, 0) == 0) {
            ly_error_clear(&err);
            if (grpc_client_connect_unix(sock, &c3, &err) == 0 &&
                jwt_call(c3, "a", 1, &st3, NULL, 0) == 0) {
                (void)snprintf(third, sizeof(third), "%d", st3.status);
            }
            grpc_client_free(c2);
            c2 = NULL;
            grpc_client_free(c3);
            c3 = NULL;
            (void)nanosleep(&pause, NULL); /* let the server see the close; EINTR is fine */
            if (connect_or_die(sock, &c3) == 0 && jwt_call(c3, "a", 1, &st, NULL, 0) == 0) {
                printf("second=%d third=%s after_close=%d\n", st2.status, third, st.status);
                rc = 0;
            }
        }
        grpc_client_free(c2);
        grpc_client_free(c3);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        rc = 2;
    }
    grpc_client_free(c);
    return rc;
}
