/*
 * helper: `lanyard helper`. One thread: a FetchX509SVID stream on broker/grpc_client, whose
 * message callback validates the update, writes the files (common/ly_file) and notifies the
 * workload; JWT-SVIDs are fetched on a second short-lived connection and refreshed at half
 * their lifetime by giving the stream a deadline and reopening it (the server re-sends the
 * same state, which is recognised and not rewritten).
 */
#define _GNU_SOURCE
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/ly_b64.h"
#include "../common/ly_buf.h"
#include "../common/ly_file.h"
#include "../common/ly_guard.h"
#include "../common/ly_secret.h"
#include "../common/ly_time.h"
#include "../svid/key.h"
#include "../svid/spiffeid.h"
#include "../svid/x509svid.h"
#include "grpc.h"
#include "grpc_client.h"
#include "log.h"
#include "workloadapi.pb-c.h"

#define HELPER_MAX_SVIDS 16
#define HELPER_MAX_FED 32
#define HELPER_CALL_TIMEOUT_MS 10000   /* FetchJWTSVID, and the first answer with --once */
#define HELPER_ONCE_CONNECT_MS 10000   /* --once keeps trying to connect this long */
#define HELPER_CMD_TIMEOUT_MS 30000
#define HELPER_JWT_RETRY_MS 5000
#define HELPER_JWT_MIN_REFRESH_MS 1000
#define HELPER_PEM_MAX (2u * 1024u * 1024u)

static const struct grpc_client_md wapi_md[] = {{"workload.spiffe.io", "true"}};

static volatile sig_atomic_t helper_stop;

/* ---- pure pieces -------------------------------------------------------------------------- */

static int is_scheme_char(char ch, int first)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
        return 1;
    }
    return !first && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.');
}

static int copy_path(const char *p, char *out, size_t outsz, struct ly_error *err)
{
    size_t n = strlen(p);

    LY_ENSURE(n > 0, err, LY_ERR_USAGE, "empty Workload API socket path");
    LY_ENSURE(n < outsz, err, LY_ERR_USAGE, "Workload API socket path too long (%zu bytes)", n);
    memcpy(out, p, n + 1);
    return 0;
}

int helper_endpoint_parse(const char *addr, char *out, size_t outsz, struct ly_error *err)
{
    size_t i = 0;
    const char *rest;

    LY_ENSURE(addr != NULL && addr[0] != '\0', err, LY_ERR_USAGE,
              "empty Workload API address");
    while (is_scheme_char(addr[i], i == 0)) {
        i++;
    }
    /* No "scheme:" prefix, or a path that merely contains ':' after a '/' : a bare path. */
    if (i == 0 || addr[i] != ':' || addr[0] == '/' || addr[0] == '.') {
        return copy_path(addr, out, outsz, err);
    }
    rest = addr + i + 1;
    if (i == 3 && strncasecmp(addr, "tcp", 3) == 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "tcp: Workload API addresses are not supported; use unix:///PATH");
    }
    LY_ENSURE(i == 4 && strncasecmp(addr, "unix", 4) == 0, err, LY_ERR_USAGE,
              "unsupported Workload API address scheme '%.*s' (use unix:///PATH)",
              (int)(i > 16 ? 16 : i), addr);
    LY_ENSURE(strpbrk(rest, "?#%") == NULL, err, LY_ERR_USAGE,
              "unix: Workload API address must not have a query, fragment or %% escapes");
    if (strncmp(rest, "//", 2) == 0) {
        rest += 2;
        LY_ENSURE(rest[0] == '/', err, LY_ERR_USAGE,
                  "unix:// Workload API address has an authority; the path must be absolute "
                  "(unix:///PATH)");
    }
    LY_ENSURE(rest[0] == '/', err, LY_ERR_USAGE,
              "unix: Workload API address needs an absolute path (unix:///PATH)");
    return copy_path(rest, out, outsz, err);
}

void helper_argv_free(char **argv)
{
    size_t i;

    if (argv == NULL) {
        return;
    }
    for (i = 0; argv[i] != NULL; i++) {
        free(argv[i]);
    }
    free(argv);
}

int helper_argv_split(const char *line, char ***argv_out, size_t *argc_out, struct ly_error *err)
{
    char **argv;
    size_t n = 0;
    const char *p = line;

    *argv_out = NULL;
    *argc_out = 0;
    LY_ENSURE(line != NULL && strlen(line) <= HELPER_CMD_MAX, err, LY_ERR_USAGE,
              "command line longer than %d bytes", HELPER_CMD_MAX);
    argv = calloc(HELPER_MAX_ARGS + 1, sizeof(*argv));
    LY_GUARD_PTR(argv, err);
    for (;;) {
        size_t len = 0;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        while (p[len] != '\0' && p[len] != ' ' && p[len] != '\t') {
            len++;
        }
        if (n == HELPER_MAX_ARGS) {
            helper_argv_free(argv);
            return ly_error_setx(err, LY_ERR_USAGE, 0, "command has more than %d words",
                                 HELPER_MAX_ARGS);
        }
        argv[n] = strndup(p, len);
        if (argv[n] == NULL) {
            helper_argv_free(argv);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        n++;
        p += len;
    }
    if (n == 0) {
        free(argv);
        return ly_error_setx(err, LY_ERR_USAGE, 0, "empty command");
    }
    *argv_out = argv;
    *argc_out = n;
    return 0;
}

int helper_audience_filename(const char *aud, char *out, size_t outsz, struct ly_error *err)
{
    static const char pre[] = "jwt_svid_";
    static const char suf[] = ".token";
    size_t n = aud != NULL ? strlen(aud) : 0;
    size_t i;
    int meaningful = 0;

    LY_ENSURE(n > 0, err, LY_ERR_USAGE, "empty JWT audience");
    LY_ENSURE(n <= HELPER_AUD_FILE_MAX, err, LY_ERR_USAGE,
              "JWT audience longer than %d bytes", HELPER_AUD_FILE_MAX);
    LY_ENSURE(outsz >= sizeof(pre) - 1 + n + sizeof(suf), err, LY_ERR_USAGE,
              "file name buffer too small");
    memcpy(out, pre, sizeof(pre) - 1);
    for (i = 0; i < n; i++) {
        char ch = aud[i];
        int keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        out[sizeof(pre) - 1 + i] = keep ? ch : '_';
        if (keep && ch != '.' && ch != '_') {
            meaningful = 1;
        }
    }
    memcpy(out + sizeof(pre) - 1 + n, suf, sizeof(suf));
    LY_ENSURE(meaningful, err, LY_ERR_USAGE,
              "JWT audience has no letters or digits to name its file");
    return 0;
}

int helper_signal_parse(const char *s, int *out, struct ly_error *err)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"TERM", SIGTERM},
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}, {"CONT", SIGCONT},
    };
    const char *p = s;
    size_t i;
    int v = 0;

    LY_ENSURE(s != NULL && s[0] != '\0', err, LY_ERR_USAGE, "empty signal name");
    if (s[0] >= '0' && s[0] <= '9') {
        for (i = 0; s[i] != '\0'; i++) {
            LY_ENSURE(s[i] >= '0' && s[i] <= '9' && i < 2, err, LY_ERR_USAGE,
                      "bad signal number '%.16s'", s);
            v = v * 10 + (s[i] - '0');
        }
        LY_ENSURE(v >= 1 && v <= 64, err, LY_ERR_USAGE, "bad signal number '%.16s'", s);
        *out = v;
        return 0;
    }
    if (strncasecmp(p, "SIG", 3) == 0) {
        p += 3;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(p, names[i].name) == 0) {
            *out = names[i].sig;
            return 0;
        }
    }
    return ly_error_setx(err, LY_ERR_USAGE, 0,
                         "unknown signal '%.16s' (HUP INT QUIT TERM USR1 USR2 WINCH CONT or a "
                         "number)",
                         s);
}

int helper_pid_parse(const char *s, size_t len, pid_t *out, struct ly_error *err)
{
    size_t i = 0;
    long long v = 0;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (s[i] - '0');
        LY_ENSURE(v <= INT_MAX, err, LY_ERR_PARSE, "pid out of range");
        i++;
    }
    LY_ENSURE(i > 0 && v > 0, err, LY_ERR_PARSE, "not a pid (a positive decimal number)");
    for (; i < len; i++) {
        LY_ENSURE(s[i] == '\n' || s[i] == ' ' || s[i] == '\t' || s[i] == '\r', err,
                  LY_ERR_PARSE, "not a pid (a positive decimal number)");
    }
    *out = (pid_t)v;
    return 0;
}

/* ---- state ---------------------------------------------------------------------------------- */

struct helper {
    const struct helper_config *cfg;
    char **argv;                        /* the --cmd, split */
    char jwt_files[HELPER_MAX_AUDIENCES][sizeof("jwt_svid_.token") + HELPER_AUD_FILE_MAX];
    struct ly_buf last;                 /* secret: the last applied X509SVIDResponse bytes */
    char default_id[SPIFFEID_MAX_LEN + 1];
    size_t n_svids_written;
    char fed[HELPER_MAX_FED][SPIFFEID_TD_MAX_LEN + 1];
    size_t n_fed;
    int64_t jwt_refresh_at;             /* monotonic ms; 0: JWT-SVIDs not fetched yet */
    unsigned stream_msgs;               /* messages received on the current stream */
    int64_t stream_deadline;            /* monotonic ms when the current stream ends; 0: never */
    int reopen;                         /* the stream was ended to give it a (new) deadline */
    int done;                           /* --once: the files are written */
    int fatal;                          /* an error that ends the run (code in err) */
    struct ly_error err;
};

/* One SVID ready to be written: PEM text, checked. */
struct prepared {
    struct ly_buf certs;    /* leaf first, PEM */
    struct ly_buf key;      /* secret: PKCS#8 PEM */
    struct ly_buf combined; /* secret: certs + key */
    struct x509svid_info leaf;
};

static void on_stop_signal(int sig)
{
    (void)sig;
    helper_stop = 1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail with a valid pointer */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep up to ms, waking early when a stop signal arrives. */
static void nap(long ms)
{
    while (ms > 0 && !helper_stop) {
        long step = ms > 50 ? 50 : ms;
        struct timespec ts = {0, step * 1000000L};
        (void)nanosleep(&ts, NULL); /* EINTR only shortens the nap */
        ms -= step;
    }
}

static int path_join(char *out, size_t outsz, const char *dir, const char *name,
                     struct ly_error *err)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);

    LY_ENSURE(n > 0 && (size_t)n < outsz, err, LY_ERR_USAGE, "path too long under %.64s", dir);
    return 0;
}

static int fsync_dir(const char *dir, struct ly_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) != 0) {
        int rc = ly_error_set(err, LY_ERR_IO, 0, "cannot fsync directory %s", dir);
        if (fd >= 0) {
            (void)close(fd); /* already failing */
        }
        return rc;
    }
    (void)close(fd); /* read-only directory descriptor */
    return 0;
}

/* ---- PEM ------------------------------------------------------------------------------------ */


/* Concatenated DER certificates (as the Workload API sends them) to PEM, in order. */
static int certs_to_pem(const uint8_t *der, size_t len, struct ly_buf *out, struct ly_error *err)
{
    struct x509svid_chain *chain = NULL;
    size_t i;
    int rc;

    ly_buf_init(out, HELPER_PEM_MAX);
    LY_ENSURE(len > 0, err, LY_ERR_PARSE, "no certificates");
    rc = x509svid_chain_parse(der, len, &chain, err);
    for (i = 0; rc == 0 && i < x509svid_chain_count(chain); i++) {
        size_t n;
        const uint8_t *c = x509svid_chain_cert(chain, i, &n);
        rc = ly_pem_append(out, "CERTIFICATE", c, n, err);
    }
    x509svid_chain_free(chain);
    if (rc < 0) {
        ly_buf_free(out);
    }
    return rc;
}

static void prepared_free(struct prepared *p)
{
    ly_buf_free(&p->certs);
    ly_buf_free(&p->key);
    ly_buf_free(&p->combined);
}

/* Check one SVID (chain parses, key parses and matches the leaf) and build its files. */
static int prepare_svid(const X509SVID *s, struct prepared *p, struct ly_error *err)
{
    struct x509svid_chain *chain = NULL;
    struct svid_key *key = NULL;
    struct ly_buf spki;
    const uint8_t *leaf;
    size_t leaf_len = 0;
    int rc;

    ly_buf_init(&p->certs, HELPER_PEM_MAX);
    ly_buf_init_secret(&p->key, HELPER_PEM_MAX);
    ly_buf_init_secret(&p->combined, HELPER_PEM_MAX);
    ly_buf_init(&spki, 4096);
    rc = x509svid_chain_parse(s->x509_svid.data, s->x509_svid.len, &chain, err);
    if (rc < 0) {
        (void)ly_error_wrap(err, "certificate chain");
        goto out;
    }
    leaf = x509svid_chain_cert(chain, 0, &leaf_len);
    rc = x509svid_cert_info(leaf, leaf_len, &p->leaf, err);
    if (rc == 0) {
        rc = x509svid_cert_public_key(leaf, leaf_len, &spki, err);
    }
    if (rc == 0) {
        rc = svid_key_parse(s->x509_svid_key.data, s->x509_svid_key.len, &key, err);
        if (rc < 0) {
            (void)ly_error_wrap(err, "private key");
        }
    }
    if (rc == 0 && !svid_key_matches_public(key, spki.data, spki.len)) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, 0,
                           "the private key does not match the leaf certificate (%s)",
                           p->leaf.sha256_hex);
    }
    if (rc == 0) {
        ly_buf_free(&p->key);
        rc = svid_key_to_pkcs8_pem(key, &p->key, err);
    }
    for (size_t i = 0; rc == 0 && i < x509svid_chain_count(chain); i++) {
        size_t n;
        const uint8_t *c = x509svid_chain_cert(chain, i, &n);
        rc = ly_pem_append(&p->certs, "CERTIFICATE", c, n, err);
    }
    if (rc == 0) {
        rc = ly_buf_append(&p->combined, p->certs.data, p->certs.len, err);
    }
    if (rc == 0) {
        rc = ly_buf_append(&p->combined, p->key.data, p->key.len, err);
    }
out:
    ly_buf_free(&spki);
    svid_key_free(key);
    x509svid_chain_free(chain);
    if (rc < 0) {
        prepared_free(p);
    }
    return rc;
}

/*
 * Write a key and certificate pair as BASE.key and BASE.pem: both are first written complete
 * and durable under staging names, then renamed key first, certificate second, back to back.
 */
static int write_pair(const char *dir, const char *base, const struct prepared *p,
                      struct ly_error *err)
{
    char name[64];
    char key_next[PATH_MAX], pem_next[PATH_MAX], key_path[PATH_MAX], pem_path[PATH_MAX];

    LY_ENSURE(snprintf(name, sizeof(name), ".%s.key.next", base) < (int)sizeof(name), err,
              LY_ERR_INTERNAL, "name too long");
    LY_GUARD(path_join(key_next, sizeof(key_next), dir, name, err));
    LY_ENSURE(snprintf(name, sizeof(name), ".%s.pem.next", base) < (int)sizeof(name), err,
              LY_ERR_INTERNAL, "name too long");
    LY_GUARD(path_join(pem_next, sizeof(pem_next), dir, name, err));
    LY_ENSURE(snprintf(name, sizeof(name), "%s.key", base) < (int)sizeof(name), err,
              LY_ERR_INTERNAL, "name too long");
    LY_GUARD(path_join(key_path, sizeof(key_path), dir, name, err));
    LY_ENSURE(snprintf(name, sizeof(name), "%s.pem", base) < (int)sizeof(name), err,
              LY_ERR_INTERNAL, "name too long");
    LY_GUARD(path_join(pem_path, sizeof(pem_path), dir, name, err));

    LY_GUARD(ly_file_write_atomic(key_next, p->key.data, p->key.len, 0600, 0, err));
    LY_GUARD(ly_file_write_atomic(pem_next, p->certs.data, p->certs.len, 0644, 0, err));
    if (rename(key_next, key_path) != 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "cannot rename into %s", key_path);
    }
    if (rename(pem_next, pem_path) != 0) {
        return ly_error_set(err, LY_ERR_IO, 0,
                            "cannot rename into %s (%s is already the new key)", pem_path,
                            key_path);
    }
    return fsync_dir(dir, err);
}

static int write_file(const char *dir, const char *name, const struct ly_buf *b, mode_t mode,
                      struct ly_error *err)
{
    char path[PATH_MAX];

    LY_GUARD(path_join(path, sizeof(path), dir, name, err));
    return ly_file_write_atomic(path, b->data, b->len, mode, 0, err);
}

static void unlink_in(const char *dir, const char *name)
{
    char path[PATH_MAX];

    if (path_join(path, sizeof(path), dir, name, NULL) == 0 && unlink(path) != 0 &&
        errno != ENOENT) {
        log_event(LOG_WARN, "helper.unlink_failed", LOG_STR, "path", path, LOG_END);
    }
}

/* Federated bundles: federated/TD.pem for each, and stale ones (from earlier updates) removed. */
static int write_federated(struct helper *h, const X509SVIDResponse *r, struct ly_error *err)
{
    char fdir[PATH_MAX];
    char names[HELPER_MAX_FED][SPIFFEID_TD_MAX_LEN + 1];
    char file[SPIFFEID_TD_MAX_LEN + 8];
    size_t n = 0, i, j;

    LY_ENSURE(r->n_federated_bundles <= HELPER_MAX_FED, err, LY_ERR_PARSE,
              "more than %d federated bundles", HELPER_MAX_FED);
    LY_GUARD(path_join(fdir, sizeof(fdir), h->cfg->dir, "federated", err));
    if (r->n_federated_bundles > 0) {
        LY_GUARD(ly_file_mkdir_p(fdir, 0755, err));
    }
    for (i = 0; i < r->n_federated_bundles; i++) {
        const X509SVIDResponse__FederatedBundlesEntry *e = r->federated_bundles[i];
        struct ly_buf pem;
        int rc;

        LY_GUARD(spiffeid_parse_trust_domain(e->key, strlen(e->key), names[n], sizeof(names[n]),
                                             err));
        rc = certs_to_pem(e->value.data, e->value.len, &pem, err);
        if (rc < 0) {
            return ly_error_wrap(err, "federated bundle of %s", names[n]);
        }
        if (snprintf(file, sizeof(file), "%s.pem", names[n]) >= (int)sizeof(file)) {
            ly_buf_free(&pem);
            return ly_error_setx(err, LY_ERR_INTERNAL, 0, "name too long");
        }
        rc = write_file(fdir, file, &pem, 0644, err);
        ly_buf_free(&pem);
        LY_GUARD(rc);
        n++;
    }
    for (i = 0; i < h->n_fed; i++) {
        int still = 0;
        for (j = 0; j < n; j++) {
            still |= strcmp(h->fed[i], names[j]) == 0;
        }
        if (!still && snprintf(file, sizeof(file), "%s.pem", h->fed[i]) < (int)sizeof(file)) {
            unlink_in(fdir, file);
        }
    }
    memcpy(h->fed, names, sizeof(names[0]) * n);
    h->n_fed = n;
    return 0;
}

/* ---- JWT-SVIDs ---------------------------------------------------------------------------- */

/* The exp claim of a token (not verified: only to schedule the refresh). */
static int jwt_exp(const char *tok, int64_t *exp)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
    struct ly_buf payload;
    json_t *o, *v;
    int rc = -1;

    if (d2 == NULL ||
        ly_b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), 1, 0, &payload, 64 * 1024, NULL) < 0) {
        return -1;
    }
    o = json_loadb((const char *)payload.data, payload.len, 0, NULL);
    v = json_object_get(o, "exp");
    if (json_is_integer(v)) {
        *exp = (int64_t)json_integer_value(v);
        rc = 0;
    } else if (json_is_real(v)) {
        *exp = (int64_t)json_real_value(v);
        rc = 0;
    }
    json_decref(o);
    ly_buf_free(&payload);
    return rc;
}

static int fetch_one_jwt(struct helper *h, struct grpc_client *c, size_t i, int64_t *refresh_in,
                         struct ly_error *err)
{
    const char *aud = h->cfg->audiences[i];
    JWTSVIDRequest req = JWTSVIDREQUEST__INIT;
    JWTSVIDResponse *resp = NULL;
    struct grpc_client_status st;
    struct ly_buf reqb, respb;
    int64_t exp = 0;
    int rc;

    req.n_audience = 1;
    req.audience = (char **)(uintptr_t)&aud;
    req.spiffe_id = h->default_id;
    ly_buf_init(&reqb, 64 * 1024);
    ly_buf_init_secret(&respb, 64 * 1024);
    rc = ly_buf_reserve(&reqb, jwtsvidrequest__get_packed_size(&req), err);
    if (rc < 0) {
        goto out;
    }
    reqb.len = jwtsvidrequest__pack(&req, reqb.data);
    rc = grpc_client_unary(c, "/SpiffeWorkloadAPI/FetchJWTSVID", wapi_md, 1, reqb.data, reqb.len,
                           HELPER_CALL_TIMEOUT_MS, &respb, &st, err);
    if (rc < 0) {
        goto out;
    }
    if (st.status != GRPC_OK) {
        rc = ly_error_setx(err, st.status == GRPC_PERMISSION_DENIED ? LY_ERR_POLICY : LY_ERR_IO,
                           0, "FetchJWTSVID for audience '%.64s': gRPC status %d: %.128s", aud,
                           st.status, st.message);
        goto out;
    }
    resp = jwtsvidresponse__unpack(NULL, respb.len, respb.data);
    if (resp == NULL || resp->n_svids == 0 || resp->svids[0]->svid[0] == '\0') {
        rc = ly_error_setx(err, LY_ERR_PARSE, 0, "FetchJWTSVID: malformed or empty response");
        goto out;
    }
    {
        struct ly_buf tok;
        const char *t = resp->svids[0]->svid;
        ly_buf_init_secret(&tok, 64 * 1024);
        rc = ly_buf_append(&tok, t, strlen(t), err);
        if (rc == 0) {
            rc = write_file(h->cfg->dir, h->jwt_files[i], &tok, 0600, err);
        }
        ly_buf_free(&tok);
    }
    if (rc < 0) {
        goto out;
    }
    if (jwt_exp(resp->svids[0]->svid, &exp) == 0 && exp > ly_time_now()) {
        *refresh_in = (exp - ly_time_now()) * 1000 / 2;
    } else {
        *refresh_in = HELPER_JWT_RETRY_MS;
    }
    log_event(LOG_INFO, "helper.jwt_written", LOG_STR, "spiffe_id", resp->svids[0]->spiffe_id,
              LOG_STR, "audience", aud, LOG_STR, "file", h->jwt_files[i], LOG_INT, "exp",
              (int64_t)exp, LOG_END);
out:
    if (resp != NULL) {
        for (size_t k = 0; k < resp->n_svids; k++) {
            ly_wipe(resp->svids[k]->svid, strlen(resp->svids[k]->svid));
        }
        jwtsvidresponse__free_unpacked(resp, NULL);
    }
    ly_buf_free(&reqb);
    ly_buf_free(&respb);
    return rc;
}

/* Fetch every audience's JWT-SVID on a fresh connection and schedule the next refresh. */
static int fetch_jwts(struct helper *h, struct ly_error *err)
{
    struct grpc_client *c = NULL;
    int64_t next = INT64_MAX;
    size_t i;
    int rc;

    if (h->cfg->n_audiences == 0) {
        return 0;
    }
    rc = grpc_client_connect_unix(h->cfg->socket_path, &c, err);
    for (i = 0; rc == 0 && i < h->cfg->n_audiences; i++) {
        int64_t in = 0;
        rc = fetch_one_jwt(h, c, i, &in, err);
        if (rc == 0 && in < next) {
            next = in;
        }
    }
    grpc_client_free(c);
    if (rc < 0) {
        h->jwt_refresh_at = mono_ms() + HELPER_JWT_RETRY_MS;
        log_event(LOG_WARN, "helper.jwt_failed", LOG_STR, "error", err->msg, LOG_INT,
                  "retry_ms", (int64_t)HELPER_JWT_RETRY_MS, LOG_END);
        return rc;
    }
    h->jwt_refresh_at = mono_ms() + (next < HELPER_JWT_MIN_REFRESH_MS ? HELPER_JWT_MIN_REFRESH_MS
                                                                       : next);
    return 0;
}

/* ---- notification ------------------------------------------------------------------------- */

static void run_cmd(struct helper *h)
{
    long timeout = h->cfg->cmd_timeout_ms > 0 ? h->cfg->cmd_timeout_ms : HELPER_CMD_TIMEOUT_MS;
    int64_t deadline = mono_ms() + timeout;
    int status = 0;
    pid_t pid, w;

    pid = fork();
    if (pid < 0) {
        log_event(LOG_ERROR, "helper.cmd_failed", LOG_STR, "program", h->argv[0], LOG_STR,
                  "error", strerror(errno), LOG_END);
        return;
    }
    if (pid == 0) {
        sigset_t none;
        /* Only async-signal-safe calls until exec. */
        (void)signal(SIGTERM, SIG_DFL);
        (void)signal(SIGINT, SIG_DFL);
        (void)signal(SIGPIPE, SIG_DFL);
        (void)sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(h->argv[0], h->argv);
        _exit(127);
    }
    for (;;) {
        w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) {
            break;
        }
        if (mono_ms() >= deadline) {
            (void)kill(pid, SIGKILL); /* it is our child: cannot fail but for ESRCH */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            log_event(LOG_ERROR, "helper.cmd_timeout", LOG_STR, "program", h->argv[0], LOG_INT,
                      "timeout_ms", (int64_t)timeout, LOG_END);
            return;
        }
        {
            struct timespec ts = {0, 20 * 1000000L};
            (void)nanosleep(&ts, NULL); /* EINTR only shortens the wait */
        }
    }
    if (w == pid && WIFEXITED(status)) {
        log_event(WEXITSTATUS(status) == 0 ? LOG_INFO : LOG_WARN, "helper.cmd_done", LOG_STR,
                  "program", h->argv[0], LOG_INT, "exit", (int64_t)WEXITSTATUS(status),
                  LOG_END);
    } else {
        log_event(LOG_WARN, "helper.cmd_done", LOG_STR, "program", h->argv[0], LOG_INT,
                  "signal", (int64_t)(w == pid && WIFSIGNALED(status) ? WTERMSIG(status) : -1),
                  LOG_END);
    }
}

static void send_signal(struct helper *h)
{
    pid_t pid = h->cfg->pid;
    struct ly_error e;

    ly_error_clear(&e);
    if (h->cfg->pid_file != NULL) {
        struct ly_buf b;
        if (ly_file_read(h->cfg->pid_file, 64, 0, &b, &e) < 0 ||
            helper_pid_parse((const char *)b.data, b.len, &pid, &e) < 0) {
            ly_buf_free(&b);
            log_event(LOG_ERROR, "helper.signal_failed", LOG_STR, "pid_file", h->cfg->pid_file,
                      LOG_STR, "error", e.msg, LOG_END);
            return;
        }
        ly_buf_free(&b);
    }
    if (kill(pid, h->cfg->signal) != 0) {
        log_event(LOG_ERROR, "helper.signal_failed", LOG_INT, "pid", (int64_t)pid, LOG_INT,
                  "signal", (int64_t)h->cfg->signal, LOG_STR, "error", strerror(errno), LOG_END);
        return;
    }
    log_event(LOG_INFO, "helper.signalled", LOG_INT, "pid", (int64_t)pid, LOG_INT, "signal",
              (int64_t)h->cfg->signal, LOG_END);
}

static void notify(struct helper *h)
{
    if (h->argv != NULL) {
        run_cmd(h);
    }
    if (h->cfg->signal != 0) {
        send_signal(h);
    }
}

/* ---- applying an update ------------------------------------------------------------------- */

/* Validate everything first, then write: a bad update leaves the last good files in place. */
static int apply(struct helper *h, const X509SVIDResponse *r, struct ly_error *err)
{
    struct prepared p[HELPER_MAX_SVIDS];
    struct ly_buf bundle;
    size_t n = 0, i;
    int id_changed;
    int rc = 0;

    ly_buf_init(&bundle, HELPER_PEM_MAX);
    LY_ENSURE(r->n_svids > 0, err, LY_ERR_PARSE, "the response holds no X509-SVID");
    LY_ENSURE(r->n_svids <= HELPER_MAX_SVIDS, err, LY_ERR_PARSE, "more than %d X509-SVIDs",
              HELPER_MAX_SVIDS);
    for (i = 0; i < r->n_svids; i++) {
        rc = prepare_svid(r->svids[i], &p[i], err);
        if (rc < 0) {
            (void)ly_error_wrap(err, "X509-SVID %zu (%.256s)", i, r->svids[i]->spiffe_id);
            goto out;
        }
        n++;
    }
    rc = certs_to_pem(r->svids[0]->bundle.data, r->svids[0]->bundle.len, &bundle, err);
    if (rc < 0) {
        (void)ly_error_wrap(err, "trust bundle");
        goto out;
    }
    /* Trust first (a new CA must be trusted before an SVID it signed appears), then the SVID. */
    rc = write_file(h->cfg->dir, "bundle.pem", &bundle, 0644, err);
    if (rc == 0) {
        rc = write_federated(h, r, err);
    }
    if (rc == 0) {
        rc = write_file(h->cfg->dir, "svid_bundle.pem", &p[0].combined, 0600, err);
    }
    if (rc == 0) {
        rc = write_pair(h->cfg->dir, "svid", &p[0], err);
    }
    for (i = 1; rc == 0 && i < n; i++) {
        char base[32];
        (void)snprintf(base, sizeof(base), "svid_%zu", i); /* fits: 16 SVIDs at most */
        rc = write_pair(h->cfg->dir, base, &p[i], err);
    }
    if (rc < 0) {
        goto out;
    }
    for (i = n; i < h->n_svids_written; i++) {
        char name[32];
        (void)snprintf(name, sizeof(name), "svid_%zu.pem", i); /* fits */
        unlink_in(h->cfg->dir, name);
        (void)snprintf(name, sizeof(name), "svid_%zu.key", i); /* fits */
        unlink_in(h->cfg->dir, name);
    }
    h->n_svids_written = n;
    id_changed = strcmp(h->default_id, r->svids[0]->spiffe_id) != 0;
    (void)snprintf(h->default_id, sizeof(h->default_id), "%s", r->svids[0]->spiffe_id);
    log_event(LOG_INFO, "helper.updated", LOG_STR, "spiffe_id", r->svids[0]->spiffe_id, LOG_STR,
              "serial", p[0].leaf.serial_hex, LOG_STR, "sha256", p[0].leaf.sha256_hex, LOG_INT,
              "not_after", p[0].leaf.not_after, LOG_INT, "svids", (int64_t)n, LOG_INT,
              "federated", (int64_t)r->n_federated_bundles, LOG_STR, "dir", h->cfg->dir,
              LOG_END);
    if (h->cfg->n_audiences > 0 && (h->jwt_refresh_at == 0 || id_changed)) {
        struct ly_error je;
        ly_error_clear(&je);
        if (fetch_jwts(h, &je) < 0 && h->cfg->once) {
            *err = je;
            rc = je.code;
            goto out;
        }
    }
out:
    for (i = 0; i < n; i++) {
        prepared_free(&p[i]);
    }
    ly_buf_free(&bundle);
    return rc;
}

/* Per-message callback of the FetchX509SVID stream. Non-zero cancels the stream. */
static int on_x509(const uint8_t *msg, size_t len, void *arg)
{
    struct helper *h = arg;
    X509SVIDResponse *r;
    struct ly_error e;
    int rc;

    h->stream_msgs++;
    if (helper_stop) {
        return 1;
    }
    if (h->last.len == len && len > 0 && ly_memeq_ct(h->last.data, msg, len)) {
        /* The server re-sent the state already on disk (a reopened stream). */
        if (h->cfg->once) {
            h->done = 1;
            return 1;
        }
        return 0;
    }
    r = x509_svidresponse__unpack(NULL, len, msg);
    if (r == NULL) {
        log_event(LOG_ERROR, "helper.update_rejected", LOG_STR, "error",
                  "malformed X509SVIDResponse", LOG_END);
        return 1; /* a server that sends garbage: reconnect */
    }
    ly_error_clear(&e);
    rc = apply(h, r, &e);
    for (size_t i = 0; i < r->n_svids; i++) {
        ly_wipe(r->svids[i]->x509_svid_key.data, r->svids[i]->x509_svid_key.len);
    }
    x509_svidresponse__free_unpacked(r, NULL);
    if (rc < 0) {
        log_event(LOG_ERROR, "helper.update_rejected", LOG_STR, "error", e.msg, LOG_END);
        if (h->cfg->once) {
            h->fatal = 1;
            h->err = e;
            return 1;
        }
        return 0; /* keep the last good files; the next update may be fine */
    }
    ly_buf_reset(&h->last);
    if (ly_buf_append(&h->last, msg, len, NULL) < 0) {
        ly_buf_init_secret(&h->last, GRPC_CLIENT_MAX_MESSAGE); /* only dedup is lost */
    }
    notify(h);
    if (h->cfg->once) {
        h->done = 1;
        return 1;
    }
    if (h->jwt_refresh_at != 0 &&
        (h->stream_deadline == 0 || h->jwt_refresh_at < h->stream_deadline)) {
        /* JWT-SVIDs were just fetched: reopen the stream with their refresh as its deadline. */
        h->reopen = 1;
        return 1;
    }
    return 0;
}

/* ---- the loop ------------------------------------------------------------------------------ */

static int setup(struct helper *h, const struct helper_config *cfg, struct ly_error *err)
{
    size_t argc = 0, i, j;

    memset(h, 0, sizeof(*h));
    h->cfg = cfg;
    ly_buf_init_secret(&h->last, GRPC_CLIENT_MAX_MESSAGE);
    LY_ENSURE(cfg->socket_path != NULL && cfg->socket_path[0] != '\0', err, LY_ERR_USAGE,
              "no Workload API socket");
    LY_ENSURE(cfg->dir != NULL && cfg->dir[0] != '\0', err, LY_ERR_USAGE,
              "no output directory");
    LY_ENSURE(cfg->n_audiences <= HELPER_MAX_AUDIENCES, err, LY_ERR_USAGE,
              "more than %d JWT audiences", HELPER_MAX_AUDIENCES);
    LY_ENSURE(cfg->signal == 0 || cfg->pid > 0 || cfg->pid_file != NULL, err, LY_ERR_USAGE,
              "a signal needs a pid or a pid file");
    for (i = 0; i < cfg->n_audiences; i++) {
        LY_GUARD(helper_audience_filename(cfg->audiences[i], h->jwt_files[i],
                                          sizeof(h->jwt_files[i]), err));
        for (j = 0; j < i; j++) {
            LY_ENSURE(strcmp(h->jwt_files[i], h->jwt_files[j]) != 0, err, LY_ERR_USAGE,
                      "JWT audiences '%.64s' and '%.64s' would share the file %s",
                      cfg->audiences[j], cfg->audiences[i], h->jwt_files[i]);
        }
    }
    if (cfg->cmd != NULL) {
        LY_GUARD(helper_argv_split(cfg->cmd, &h->argv, &argc, err));
    }
    return ly_file_mkdir_p(cfg->dir, 0755, err);
}

static int install_signals(struct ly_error *err)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: blocking calls return EINTR */
    LY_ENSURE(sigemptyset(&sa.sa_mask) == 0 && sigaction(SIGTERM, &sa, NULL) == 0 &&
                  sigaction(SIGINT, &sa, NULL) == 0,
              err, LY_ERR_INTERNAL, "cannot install signal handlers");
    sa.sa_handler = SIG_IGN;
    LY_ENSURE(sigaction(SIGPIPE, &sa, NULL) == 0, err, LY_ERR_INTERNAL,
              "cannot ignore SIGPIPE");
    return 0;
}

/* How long the next stream may stay open: until the JWT refresh, or for --once the answer. */
static long stream_timeout(const struct helper *h)
{
    int64_t left;

    if (h->cfg->once) {
        return HELPER_CALL_TIMEOUT_MS;
    }
    if (h->cfg->n_audiences == 0 || h->jwt_refresh_at == 0) {
        return 0;
    }
    left = h->jwt_refresh_at - mono_ms();
    return left < 1 ? 1 : (long)left;
}

/*
 * One connection: streams until it breaks. Returns 1 to reconnect, 0 when done (stop, --once
 * finished), or a negative error that ends the run.
 */
static int serve_connection(struct helper *h, struct grpc_client *c, long *backoff,
                            struct ly_error *err)
{
    for (;;) {
        struct grpc_client_status st;
        struct ly_error e;
        int rc;

        long timeout = stream_timeout(h);

        ly_error_clear(&e);
        h->stream_msgs = 0;
        h->reopen = 0;
        h->stream_deadline = timeout > 0 ? mono_ms() + timeout : 0;
        rc = grpc_client_call(c, "/SpiffeWorkloadAPI/FetchX509SVID", wapi_md, 1, NULL, 0,
                              timeout, on_x509, h, &st, &e);
        if (rc < 0) {
            log_event(LOG_WARN, "helper.stream_failed", LOG_STR, "error", e.msg, LOG_END);
            return 1;
        }
        if (h->stream_msgs > 0) {
            *backoff = HELPER_BACKOFF_MIN_MS;
        }
        if (h->fatal) {
            *err = h->err;
            return err->code != 0 ? err->code : LY_ERR_INTERNAL;
        }
        if (helper_stop || (h->cfg->once && h->done)) {
            return 0;
        }
        if (h->reopen) {
            if (grpc_client_is_dead(c)) {
                return 1;
            }
            continue;
        }
        switch (st.status) {
        case GRPC_DEADLINE_EXCEEDED:
            if (h->cfg->once) {
                return ly_error_setx(err, LY_ERR_IO, 0,
                                     "no answer from the Workload API within %d ms",
                                     HELPER_CALL_TIMEOUT_MS);
            }
            /* The JWT-SVID refresh is due; failures are logged and retried by fetch_jwts. */
            (void)fetch_jwts(h, &e);
            if (grpc_client_is_dead(c)) {
                return 1;
            }
            continue;
        case GRPC_PERMISSION_DENIED:
            if (h->cfg->once) {
                return ly_error_setx(err, LY_ERR_POLICY, 0,
                                     "no identity for this process: the Workload API answered "
                                     "PermissionDenied (%.128s)",
                                     st.message);
            }
            log_event(LOG_WARN, "helper.denied", LOG_STR, "message", st.message, LOG_INT,
                      "retry_ms", (int64_t)*backoff, LOG_END);
            return 1;
        case GRPC_INVALID_ARGUMENT:
            return ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "the Workload API answered InvalidArgument (%.128s)",
                                 st.message);
        default:
            log_event(LOG_WARN, "helper.stream_ended", LOG_INT, "status", (int64_t)st.status,
                      LOG_STR, "message", st.message, LOG_INT, "retry_ms", (int64_t)*backoff,
                      LOG_END);
            return 1;
        }
    }
}

int helper_run(const struct helper_config *cfg, struct ly_error *err)
{
    struct helper h;
    long backoff = HELPER_BACKOFF_MIN_MS;
    int64_t once_deadline = mono_ms() + HELPER_ONCE_CONNECT_MS;
    unsigned connects = 0;
    int rc;

    ly_error_clear(err);
    helper_stop = 0;
    rc = setup(&h, cfg, err);
    if (rc == 0) {
        rc = install_signals(err);
    }
    if (rc < 0) {
        goto out;
    }
    log_event(LOG_INFO, "helper.started", LOG_STR, "socket", cfg->socket_path, LOG_STR, "dir",
              cfg->dir, LOG_INT, "audiences", (int64_t)cfg->n_audiences, LOG_END);
    while (!helper_stop) {
        struct grpc_client *c = NULL;
        struct ly_error e;

        ly_error_clear(&e);
        if (grpc_client_connect_unix(cfg->socket_path, &c, &e) < 0) {
            if (e.code == LY_ERR_USAGE) {
                *err = e;
                rc = e.code;
                goto out;
            }
            log_event(LOG_WARN, "helper.connect_failed", LOG_STR, "error", e.msg, LOG_INT,
                      "retry_ms", (int64_t)backoff, LOG_END);
            if (cfg->once && mono_ms() + backoff > once_deadline) {
                rc = ly_error_setx(err, LY_ERR_IO, 0, "cannot reach the Workload API: %s",
                                   e.msg);
                goto out;
            }
        } else {
            log_event(LOG_INFO, connects++ == 0 ? "helper.connected" : "helper.reconnected",
                      LOG_STR, "socket", cfg->socket_path, LOG_END);
            grpc_client_set_interrupt(c, &helper_stop);
            rc = serve_connection(&h, c, &backoff, err);
            grpc_client_free(c);
            if (rc <= 0) {
                goto out;
            }
            rc = 0;
            if (cfg->once && mono_ms() + backoff > once_deadline) {
                rc = ly_error_setx(err, LY_ERR_IO, 0, "the Workload API gave no SVID");
                goto out;
            }
        }
        nap(backoff);
        backoff = backoff * 2 > HELPER_BACKOFF_MAX_MS ? HELPER_BACKOFF_MAX_MS : backoff * 2;
    }
    rc = 0;
out:
    if (rc == 0) {
        log_event(LOG_INFO, "helper.stopped", LOG_STR, "dir", cfg->dir != NULL ? cfg->dir : "",
                  LOG_END);
    }
    helper_argv_free(h.argv);
    ly_buf_free(&h.last);
    return rc;
}
