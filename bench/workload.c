/*
 * workload: Workload API X509-SVID fetch latency of a real `lanyard server` with 200 concurrent
 * client processes, and the server's resident memory with 10,000 registered entries of which
 * 200 have live workloads (streams held open). Anchors measured in the same run: a raw AF_UNIX
 * round trip and one raw wolfSSL ECDSA P-256 signature. It needs root to give each client its own
 * uid; otherwise it says so and measures a reduced setup. Only local Unix sockets are used.
 *
 * Usage: workload [--lanyard PATH] [--think-ms N]   (default PATH: ../lanyard next to this
 * program; --think-ms is the pause between one client's fetches, default 500; 0 = closed loop,
 * which measures saturation: latency is then queueing behind 200 busy clients on 2 cores).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../broker/ca.h"
#include "../broker/entry.h"
#include "../broker/grpc_client.h"
#include "../broker/store.h"

#define TD "bench.test"
#define N_ENTRIES 10000
#define N_CLIENTS 200
#define UID_BASE 30000
#define WARMUP 5
#define ITERS 50
#define CALL_TIMEOUT_MS 10000
#define HOLD_TIMEOUT_MS 60000
#define PHASE_TIMEOUT_S 120.0
#define PING_ROUNDS 4000
#define SIGN_ROUNDS 600
#define SERVER_START_S 15.0

#define REC_RESULTS 1
#define REC_HOLDING 2
#define REC_FAILED 3

/* One record a client writes to the results pipe: small enough for an atomic pipe write. */
struct rec {
    int32_t tag;
    int32_t idx;
    int32_t n;
    int32_t errs;
    uint32_t us[ITERS];
};

static const struct grpc_client_md hdr[] = {{"workload.spiffe.io", "true"}};
static const uint8_t empty_req[1] = {0};

static double mono_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0.0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;

    return x < y ? -1 : (x > y ? 1 : 0);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : (x > y ? 1 : 0);
}

/* Nearest-rank percentile of a sorted array. */
static double pct_u32(const uint32_t *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

    if (n == 0) {
        return 0.0;
    }
    k = k == 0 ? 1 : (k > n ? n : k);
    return (double)v[k - 1];
}

static double pct_dbl(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);

    if (n == 0) {
        return 0.0;
    }
    k = k == 0 ? 1 : (k > n ? n : k);
    return v[k - 1];
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read exactly n bytes before `deadline` (monotonic seconds). 1 ok, 0 EOF, -1 error/timeout. */
static int read_full(int fd, void *p, size_t n, double deadline)
{
    uint8_t *b = p;
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        double left = deadline - mono_now();
        ssize_t r;
        int rc;

        if (left <= 0) {
            return -1;
        }
        rc = poll(&pfd, 1, (int)(left * 1000.0) + 1);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            return -1;
        }
        r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            return got == 0 ? 0 : -1;
        }
        got += (size_t)r;
    }
    return 1;
}

/* VmRSS (or another "Vm*" line) of a process in kB; -1 when unreadable. */
static long proc_status_kb(pid_t pid, const char *key)
{
    char path[64];
    char buf[4096];
    size_t klen = strlen(key);
    ssize_t n;
    int fd;
    char *p;

    if (snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid) >= (int)sizeof(path)) {
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (close(fd) != 0 || n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    p = buf;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            char *end;
            long v = strtol(p + klen + 1, &end, 10);
            return end == p + klen + 1 ? -1 : v;
        }
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    return -1;
}

/* utime + stime of a process in seconds; -1 when unreadable. */
static double proc_cpu_s(pid_t pid)
{
    char path[64];
    char buf[1024];
    unsigned long long ut, st;
    ssize_t n;
    char *p, *end;
    int fd, field;

    if (snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid) >= (int)sizeof(path)) {
        return -1.0;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1.0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (close(fd) != 0 || n <= 0) {
        return -1.0;
    }
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces; fields follow the last ')' */
    if (p == NULL) {
        return -1.0;
    }
    p++;
    /* Fields 14 and 15 (utime, stime); after ')' comes field 3. */
    for (field = 3; field < 14; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL) {
            return -1.0;
        }
    }
    ut = strtoull(p + 1, &end, 10);
    if (end == p + 1) {
        return -1.0;
    }
    st = strtoull(end + 1, &p, 10);
    if (p == end + 1) {
        return -1.0;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* ---- setup --------------------------------------------------------------------------------- */

/* CA and 10,000 entries through the store API, in one transaction, before the server starts. */
static int load_entries(const char *data, uid_t first_uid, double *secs)
{
    struct ca_init_params p = {TD, SVID_KEY_EC_P256, 30 * 86400};
    struct store *st = NULL;
    struct ly_error err;
    char db[PATH_MAX];
    double t0 = mono_now();
    int i, rc = -1;

    ly_error_clear(&err);
    if (ca_init(data, &p, &err) < 0) {
        fprintf(stderr, "workload: ca init: %s\n", err.msg);
        return -1;
    }
    if (snprintf(db, sizeof(db), "%s/lanyard.db", data) >= (int)sizeof(db) ||
        store_open(db, &st, &err) < 0 || store_begin(st, &err) < 0) {
        fprintf(stderr, "workload: store: %s\n", err.msg);
        store_close(st);
        return -1;
    }
    for (i = 0; i < N_ENTRIES; i++) {
        struct entry *e = entry_new();
        char id[96];
        char sel[48];
        unsigned long uid = i == 0 ? (unsigned long)first_uid : (unsigned long)(UID_BASE + i);
        int a, b;

        a = snprintf(id, sizeof(id), "spiffe://" TD "/w/%d", UID_BASE + i);
        b = snprintf(sel, sizeof(sel), "unix:uid:%lu", uid);
        if (e == NULL || a < 0 || a >= (int)sizeof(id) || b < 0 || b >= (int)sizeof(sel) ||
            entry_set_spiffe_id(e, id, (size_t)a, &err) < 0 ||
            entry_add_selector(e, sel, (size_t)b, &err) < 0 || entry_validate(e, TD, &err) < 0 ||
            store_entry_add(st, e, &err) < 0) {
            fprintf(stderr, "workload: entry %d: %s\n", i, err.msg);
            entry_free(e);
            store_rollback(st);
            goto out;
        }
        entry_free(e);
    }
    if (store_commit(st, &err) < 0) {
        fprintf(stderr, "workload: commit: %s\n", err.msg);
        goto out;
    }
    rc = 0;
out:
    store_close(st);
    *secs = mono_now() - t0;
    return rc;
}

static pid_t start_server(const char *lanyard, const char *data, const char *sock,
                          const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0) {
            _exit(127);
        }
        execl(lanyard, lanyard, "--data", data, "server", "--trust-domain", TD,
              "--workload-socket", sock, "--health-listen", "", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* ---- anchors ------------------------------------------------------------------------------- */

/* Round trip of 64 bytes over a connected AF_UNIX stream pair to an echo process. */
static int anchor_unix_rtt(double *p50_us, double *p99_us)
{
    static double rtt[PING_ROUNDS];
    uint8_t buf[64];
    int sv[2];
    pid_t pid;
    int i, rc = 0, status;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        (void)close(sv[0]); /* failure path: nothing more to report */
        (void)close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        (void)close(sv[0]); /* the child only echoes on sv[1] */
        for (i = 0; i < PING_ROUNDS; i++) {
            if (read_full(sv[1], buf, sizeof(buf), mono_now() + 10.0) != 1 ||
                write_all(sv[1], buf, sizeof(buf)) != 0) {
                _exit(1);
            }
        }
        _exit(0);
    }
    (void)close(sv[1]); /* the parent's end is sv[0] */
    memset(buf, 0x5a, sizeof(buf));
    for (i = 0; i < PING_ROUNDS && rc == 0; i++) {
        double t0 = mono_now();
        if (write_all(sv[0], buf, sizeof(buf)) != 0 ||
            read_full(sv[0], buf, sizeof(buf), t0 + 10.0) != 1) {
            rc = -1;
        }
        rtt[i] = (mono_now() - t0) * 1e6;
    }
    (void)close(sv[0]); /* read side done */
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = -1;
    }
    if (rc == 0) {
        qsort(rtt, PING_ROUNDS, sizeof(rtt[0]), cmp_dbl);
        *p50_us = pct_dbl(rtt, PING_ROUNDS, 50);
        *p99_us = pct_dbl(rtt, PING_ROUNDS, 99);
    }
    return rc;
}

/* Median time of one raw wolfSSL ECDSA P-256 signature of a SHA-256 digest. */
static int anchor_sign(double *p50_us)
{
    static double t[SIGN_ROUNDS];
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    uint8_t sig[80];
    WC_RNG rng;
    ecc_key key;
    int i, rc = -1;

    memset(digest, 0x5a, sizeof(digest));
    if (wc_InitRng(&rng) != 0) {
        return -1;
    }
    if (wc_ecc_init(&key) != 0) {
        (void)wc_FreeRng(&rng); /* teardown after failure */
        return -1;
    }
    if (wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0) {
        goto out;
    }
    for (i = 0; i < SIGN_ROUNDS; i++) {
        word32 len = sizeof(sig);
        double t0 = mono_now();
        if (wc_ecc_sign_hash(digest, sizeof(digest), sig, &len, &rng, &key) != 0) {
            goto out;
        }
        t[i] = (mono_now() - t0) * 1e6;
    }
    qsort(t, SIGN_ROUNDS, sizeof(t[0]), cmp_dbl);
    *p50_us = pct_dbl(t, SIGN_ROUNDS, 50);
    rc = 0;
out:
    (void)wc_ecc_free(&key); /* bench teardown: nothing to do on failure */
    (void)wc_FreeRng(&rng);
    return rc;
}

/* ---- clients ------------------------------------------------------------------------------- */

struct first_msg {
    int got;
    double t;
    int hold_fd; /* >= 0: report REC_HOLDING on the first message and keep the stream */
    int idx;
};

static int on_first(const uint8_t *msg, size_t len, void *arg)
{
    struct first_msg *f = arg;

    (void)msg;
    if (f->got == 0) {
        f->t = mono_now();
    }
    f->got++;
    if (len == 0) {
        return 1; /* an X509SVIDResponse always carries at least one SVID */
    }
    if (f->hold_fd >= 0) {
        if (f->got == 1) {
            struct rec r;
            memset(&r, 0, sizeof(r));
            r.tag = REC_HOLDING;
            r.idx = f->idx;
            return write_all(f->hold_fd, &r, sizeof(r)) == 0 ? 0 : 1;
        }
        return 0;
    }
    return 1; /* first message: cancel the stream */
}

/* One fetch: open FetchX509SVID, wait for the first message, cancel. Microseconds, or -1. */
static long fetch_once(struct grpc_client *c)
{
    struct first_msg f = {0, 0.0, -1, 0};
    struct grpc_client_status st;
    struct ly_error err;
    double t0 = mono_now();

    if (grpc_client_call(c, "/SpiffeWorkloadAPI/FetchX509SVID", hdr, 1, empty_req, 0,
                         CALL_TIMEOUT_MS, on_first, &f, &st, &err) != 0 ||
        f.got == 0) {
        return -1;
    }
    return (long)((f.t - t0) * 1e6);
}

static void think(long ms, unsigned *seed)
{
    struct timespec ts;
    long d;

    if (ms <= 0) {
        return;
    }
    /* Uniform in [0, 2*ms) so clients do not fall into lock step; rand_r is a local LCG. */
    *seed = *seed * 1103515245u + 12345u;
    d = (long)((*seed >> 8) % (unsigned)(2 * ms * 1000));
    ts.tv_sec = d / 1000000;
    ts.tv_nsec = (d % 1000000) * 1000;
    (void)nanosleep(&ts, NULL); /* a short or interrupted pause changes nothing */
}

static void client_main(int idx, uid_t uid, const char *sock, int go_fd, int res_fd,
                        long think_ms)
{
    struct grpc_client *c = NULL;
    struct ly_error err;
    struct grpc_client_status st;
    struct first_msg f;
    struct rec r;
    unsigned seed = (unsigned)idx * 2654435761u + 1u;
    char b;
    int i;

    memset(&r, 0, sizeof(r));
    r.tag = REC_FAILED;
    r.idx = idx;
    if (getuid() != uid) {
        gid_t gid = (gid_t)uid;
        if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
            (void)write_all(res_fd, &r, sizeof(r)); /* the parent counts a failed client */
            _exit(1);
        }
    }
    if (grpc_client_connect_unix(sock, &c, &err) != 0) {
        (void)write_all(res_fd, &r, sizeof(r));
        _exit(1);
    }
    /* Start barrier: the parent closes the write end once every client is connected. */
    while (read(go_fd, &b, 1) < 0 && errno == EINTR) {
    }
    for (i = 0; i < WARMUP; i++) {
        if (fetch_once(c) < 0) {
            r.errs++;
        }
        think(think_ms, &seed);
    }
    for (i = 0; i < ITERS; i++) {
        long us = fetch_once(c);
        if (us < 0) {
            r.errs++;
        } else {
            r.us[r.n++] = (uint32_t)us;
        }
        think(think_ms, &seed);
    }
    r.tag = REC_RESULTS;
    if (write_all(res_fd, &r, sizeof(r)) != 0) {
        _exit(1);
    }
    /* Hold one stream open until the parent has read the server's memory and kills us. */
    f.got = 0;
    f.t = 0.0;
    f.hold_fd = res_fd;
    f.idx = idx;
    if (grpc_client_call(c, "/SpiffeWorkloadAPI/FetchX509SVID", hdr, 1, empty_req, 0,
                         HOLD_TIMEOUT_MS, on_first, &f, &st, &err) != 0) {
        grpc_client_free(c);
        _exit(1);
    }
    grpc_client_free(c);
    _exit(0);
}

/* ---- main ---------------------------------------------------------------------------------- */

static int default_lanyard(char *out, size_t outsz)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n <= 0) {
        return -1;
    }
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL) {
        return -1;
    }
    *slash = '\0'; /* $(BUILD)/bench */
    return snprintf(out, outsz, "%s/../lanyard", self) < (int)outsz ? 0 : -1;
}

static void stop_pid(pid_t pid, double grace_s)
{
    double end = mono_now() + grace_s;
    int status;

    if (pid <= 0) {
        return;
    }
    (void)kill(pid, SIGTERM); /* it may already have exited; waitpid tells */
    while (mono_now() < end) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD)) {
            return;
        }
        (void)usleep(10000); /* polling pause */
    }
    (void)kill(pid, SIGKILL);
    (void)waitpid(pid, &status, 0); /* reap; SIGKILL cannot be ignored */
}

int main(int argc, char **argv)
{
    static uint32_t all[N_CLIENTS * ITERS];
    static pid_t kids[N_CLIENTS];
    char lanyard[PATH_MAX];
    char tmp[] = "/tmp/lanyard-bench-XXXXXX";
    char data[PATH_MAX], run[PATH_MAX], sock[PATH_MAX], logp[PATH_MAX];
    int is_root = geteuid() == 0;
    uid_t my_uid = getuid();
    long think_ms = 500; /* paced clients: a realistic fetch rate; 0 = closed loop */
    pid_t server = -1;
    int go[2] = {-1, -1}, res[2] = {-1, -1};
    size_t n_all = 0;
    int n_results = 0, n_holding = 0, n_failed = 0, errs = 0;
    double load_s = 0.0, t0, cpu0, cpu1, wall, ping50 = 0, ping99 = 0, sign50 = 0, deadline;
    long rss_idle, rss_live, hwm;
    int i, rc = 1;

    if (default_lanyard(lanyard, sizeof(lanyard)) != 0) {
        fprintf(stderr, "workload: cannot locate the lanyard binary\n");
        return 1;
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lanyard") == 0 && i + 1 < argc) {
            if (snprintf(lanyard, sizeof(lanyard), "%s", argv[++i]) >= (int)sizeof(lanyard)) {
                return 2;
            }
        } else if (strcmp(argv[i], "--think-ms") == 0 && i + 1 < argc) {
            char *end;
            think_ms = strtol(argv[++i], &end, 10);
            if (*end != '\0' || think_ms < 0 || think_ms > 10000) {
                fprintf(stderr, "workload: --think-ms takes 0..10000\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--lanyard PATH] [--think-ms N]\n", argv[0]);
            return 2;
        }
    }
    if (access(lanyard, X_OK) != 0) {
        fprintf(stderr, "workload: %s is not executable (run `make` first)\n", lanyard);
        return 1;
    }
    if (!is_root) {
        printf("workload: NOT running as root: 200 clients share uid %lu and 1 matching entry; "
               "the figures below are for that reduced setup\n",
               (unsigned long)my_uid);
    }
    if (mkdtemp(tmp) == NULL) {
        perror("workload: mkdtemp");
        return 1;
    }
    /* Clients run as other uids: they must reach the socket (0711 dirs, socket 0666). */
    if (chmod(tmp, 0711) != 0 ||
        snprintf(data, sizeof(data), "%s/data", tmp) >= (int)sizeof(data) ||
        snprintf(run, sizeof(run), "%s/run", tmp) >= (int)sizeof(run) ||
        snprintf(sock, sizeof(sock), "%s/workload.sock", run) >= (int)sizeof(sock) ||
        snprintf(logp, sizeof(logp), "%s/server.log", tmp) >= (int)sizeof(logp) ||
        mkdir(run, 0711) != 0 || chmod(run, 0711) != 0) {
        fprintf(stderr, "workload: cannot prepare %s\n", tmp);
        goto out;
    }
    if (load_entries(data, is_root ? (uid_t)UID_BASE : my_uid, &load_s) != 0) {
        goto out;
    }
    printf("loaded %d entries through the store API in %.2f s\n", N_ENTRIES, load_s);

    if (anchor_sign(&sign50) != 0 || anchor_unix_rtt(&ping50, &ping99) != 0) {
        fprintf(stderr, "workload: anchor measurement failed\n");
        goto out;
    }

    server = start_server(lanyard, data, sock, logp);
    if (server < 0) {
        perror("workload: fork");
        goto out;
    }
    deadline = mono_now() + SERVER_START_S;
    for (;;) {
        struct stat sb;
        int status;
        if (stat(sock, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
            break;
        }
        if (waitpid(server, &status, WNOHANG) == server) {
            fprintf(stderr, "workload: the server exited at start (log: %s)\n", logp);
            server = -1;
            goto out;
        }
        if (mono_now() > deadline) {
            fprintf(stderr, "workload: the server did not listen within %.0f s\n", SERVER_START_S);
            goto out;
        }
        (void)usleep(20000); /* polling pause */
    }
    rss_idle = proc_status_kb(server, "VmRSS");

    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(res, O_CLOEXEC) != 0) {
        perror("workload: pipe");
        goto out;
    }
    for (i = 0; i < N_CLIENTS; i++) {
        kids[i] = fork();
        if (kids[i] < 0) {
            perror("workload: fork");
            goto out;
        }
        if (kids[i] == 0) {
            (void)close(go[1]);  /* the child only waits for EOF on go[0] */
            (void)close(res[0]); /* and only writes results */
            client_main(i, is_root ? (uid_t)(UID_BASE + i) : my_uid, sock, go[0], res[1],
                        think_ms);
            _exit(1);
        }
    }
    /* Let every client connect (and get through the listen backlog) before the start. */
    (void)usleep(500000); /* settling pause; a late client only starts a little later */
    cpu0 = proc_cpu_s(server);
    t0 = mono_now();
    (void)close(go[1]); /* start: every client sees EOF at once */
    go[1] = -1;
    deadline = mono_now() + PHASE_TIMEOUT_S;
    while (n_results + n_failed < N_CLIENTS) {
        struct rec r;
        int k;
        if (read_full(res[0], &r, sizeof(r), deadline) != 1) {
            fprintf(stderr, "workload: clients did not finish within %.0f s\n", PHASE_TIMEOUT_S);
            goto out;
        }
        if (r.tag == REC_FAILED) {
            n_failed++;
        } else if (r.tag == REC_HOLDING) {
            n_holding++;
        } else if (r.tag == REC_RESULTS && r.n >= 0 && r.n <= ITERS) {
            n_results++;
            errs += r.errs;
            for (k = 0; k < r.n; k++) {
                all[n_all++] = r.us[k];
            }
        }
    }
    wall = mono_now() - t0;
    cpu1 = proc_cpu_s(server);
    while (n_holding < n_results) {
        struct rec r;
        if (read_full(res[0], &r, sizeof(r), deadline) != 1) {
            fprintf(stderr, "workload: only %d of %d clients hold a stream\n", n_holding,
                    n_results);
            goto out;
        }
        if (r.tag == REC_HOLDING) {
            n_holding++;
        }
    }
    rss_live = proc_status_kb(server, "VmRSS");
    hwm = proc_status_kb(server, "VmHWM");
    if (n_all == 0 || n_failed > 0 || errs > 0) {
        fprintf(stderr, "workload: %d clients failed, %d fetch errors (server log: %s)\n",
                n_failed, errs, logp);
        goto out;
    }
    qsort(all, n_all, sizeof(all[0]), cmp_u32);
    printf("clients: %d processes%s, %d fetches each after %d warm-up, think time %ld ms%s\n",
           N_CLIENTS, is_root ? " with distinct uids" : " of one uid", ITERS, WARMUP, think_ms,
           think_ms == 0 ? " (closed loop)" : "");
    printf("workload fetch p50: %.2f ms\n", pct_u32(all, n_all, 50) / 1000.0);
    printf("workload fetch p99: %.2f ms (%s)\n", pct_u32(all, n_all, 99) / 1000.0,
           think_ms > 0 ? "target < 5 ms"
                        : "saturation run: no target; latency here is queueing, see throughput");
    printf("workload fetch max: %.2f ms; throughput %.0f fetches/s; server CPU %.1f us/fetch\n",
           (double)all[n_all - 1] / 1000.0, (double)n_all / wall,
           (cpu1 - cpu0) * 1e6 / (double)n_all);
    printf("server RSS: %.1f MB with %d entries, %d live (target < 32 MB)\n",
           (double)rss_live / 1024.0, N_ENTRIES, n_holding);
    printf("server RSS before clients: %.1f MB; peak (VmHWM): %.1f MB\n",
           (double)rss_idle / 1024.0, (double)hwm / 1024.0);
    printf("anchor: AF_UNIX 64-byte round trip p50: %.1f us, p99: %.1f us\n", ping50, ping99);
    printf("anchor: raw wolfSSL ECDSA P-256 sign: %.1f us\n", sign50);
    rc = 0;
out:
    for (i = 0; i < N_CLIENTS; i++) {
        if (kids[i] > 0) {
            (void)kill(kids[i], SIGKILL); /* a client may already have exited */
        }
    }
    for (i = 0; i < N_CLIENTS; i++) {
        if (kids[i] > 0) {
            int status;
            (void)waitpid(kids[i], &status, 0); /* reap */
        }
    }
    stop_pid(server, 10.0);
    if (rc != 0) {
        char line[512];
        FILE *lf = fopen(logp, "r");
        if (lf != NULL) {
            int k = 0;
            while (k++ < 20 && fgets(line, sizeof(line), lf) != NULL) {
                fputs(line, stderr);
            }
            (void)fclose(lf); /* read-only */
        }
    }
    if (go[0] >= 0) {
        (void)close(go[0]); /* teardown */
    }
    if (go[1] >= 0) {
        (void)close(go[1]);
    }
    if (res[0] >= 0) {
        (void)close(res[0]);
    }
    if (res[1] >= 0) {
        (void)close(res[1]);
    }
    if (nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "workload: could not remove %s\n", tmp);
    }
    return rc;
}
