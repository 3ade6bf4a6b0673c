/*
 * attest: reads what the kernel knows about a Unix socket's peer. Order matters: the pidfd is
 * taken first, every /proc read comes after it, and the pidfd and start time are checked again
 * last, so that facts gathered about a recycled pid are never returned. It trusts nothing the
 * workload says and never follows a path the workload could swap (the hash is taken through
 * /proc/PID/exe itself).
 */
#define _GNU_SOURCE
#include "attest.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../common/ly_text.h"

/*
 * SO_PEERPIDFD (Linux 6.5) hands over a pidfd for the exact process that connected, closing the
 * pid-reuse window entirely. Older headers lack the constant; its value is 77 on the
 * architectures that use the generic socket numbers.
 */
#if !defined(SO_PEERPIDFD) && (defined(__x86_64__) || defined(__i386__) ||                   \
                               defined(__aarch64__) || defined(__arm__) || defined(__riscv))
#define SO_PEERPIDFD 77
#endif

#define PROC_STAT_MAX 8192              /* /proc/PID/stat is one short line */
#define PROC_STATUS_MAX (1024u * 1024u) /* "Groups:" can list up to 65536 numbers */
#define HASH_CHUNK (64u * 1024u)
#define NAME_BUF_MAX (1024u * 1024u) /* getpwuid_r/getgrgid_r scratch limit */
#define CACHE_DEFAULT 256

struct cache_ent {
    int used;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
    struct timespec ctim;
    char hex[65];
};

struct attest_cache {
    struct cache_ent *v;
    size_t cap;
    size_t next; /* round-robin replacement */
};

struct attest_cache *attest_cache_new(size_t capacity)
{
    struct attest_cache *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->cap = capacity ? capacity : CACHE_DEFAULT;
    c->v = calloc(c->cap, sizeof(*c->v));
    if (c->v == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void attest_cache_free(struct attest_cache *c)
{
    if (c == NULL) {
        return;
    }
    free(c->v);
    c->v = NULL;
    free(c);
}

static int same_file_version(const struct cache_ent *e, const struct stat *st)
{
    return e->used && e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtim.tv_sec == st->st_mtim.tv_sec && e->mtim.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctim.tv_sec == st->st_ctim.tv_sec && e->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

/* Same file, same version (size, modification and change times). */
static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* ---- small readers ----------------------------------------------------------------------- */

/* Read a /proc file (st_size is 0 there, so read until EOF) of at most max bytes. */
static int read_proc_file(const char *path, size_t max, struct ly_buf *out, int *err_no)
{
    char chunk[4096];
    struct ly_error e;
    int fd;

    ly_buf_init(out, max);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err_no = errno;
        return -1;
    }
    ly_error_clear(&e);
    if (ly_buf_append(out, "", 0, &e) < 0) {
        *err_no = ENOMEM;
        (void)close(fd); /* read-only */
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            *err_no = errno;
            break;
        }
        if (n == 0) {
            (void)close(fd); /* read-only */
            return 0;
        }
        if (ly_buf_append(out, chunk, (size_t)n, &e) < 0) {
            *err_no = EFBIG; /* ly_buf_append freed the buffer */
            break;
        }
    }
    (void)close(fd); /* read-only */
    ly_buf_free(out);
    return -1;
}

static int gone_errno(int e)
{
    return e == ENOENT || e == ESRCH;
}

/* Parse an unsigned decimal of at most 20 digits; -1 on anything else or overflow. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > 20) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * Start time (field 22 of /proc/PID/stat, proc(5)) and whether the process is a zombie. The
 * command name (field 2) is in parentheses and may itself hold ')' and spaces, so parsing
 * starts after the LAST ')'.
 */
static int proc_start_time(pid_t pid, uint64_t *start, int *zombie, struct ly_error *err)
{
    char path[64];
    struct ly_buf b;
    const char *p;
    const char *end;
    const char *rparen = NULL;
    int field = 3; /* the field that follows ") " */
    int e = 0;
    int rc;

    rc = snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (rc < 0 || (size_t)rc >= sizeof(path)) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "pid %ld: path too long", (long)pid);
    }
    if (read_proc_file(path, PROC_STAT_MAX, &b, &e) < 0) {
        errno = e;
        if (gone_errno(e)) {
            return ly_error_setx(err, LY_ERR_IO, ATTEST_R_GONE,
                                 "workload process %ld has exited", (long)pid);
        }
        return ly_error_set(err, LY_ERR_IO, ATTEST_R_PROC, "cannot read %s", path);
    }
    for (p = (const char *)b.data; p < (const char *)b.data + b.len; p++) {
        if (*p == ')') {
            rparen = p;
        }
    }
    rc = ly_error_setx(err, LY_ERR_IO, ATTEST_R_PROC, "cannot parse %s", path);
    if (rparen == NULL || rparen + 2 >= (const char *)b.data + b.len || rparen[1] != ' ') {
        goto out;
    }
    p = rparen + 2;
    end = (const char *)b.data + b.len;
    *zombie = (*p == 'Z' || *p == 'X');
    while (p < end) {
        const char *tok_end = memchr(p, ' ', (size_t)(end - p));
        if (tok_end == NULL) {
            tok_end = end;
        }
        if (field == 22) {
            size_t n = (size_t)(tok_end - p);
            while (n > 0 && p[n - 1] == '\n') {
                n--;
            }
            if (parse_u64(p, n, start) == 0) {
                ly_error_clear(err); /* the provisional parse error above */
                rc = 0;
            }
            goto out;
        }
        field++;
        p = tok_end + 1;
    }
out:
    ly_buf_free(&b);
    return rc;
}

/* Now, in the clock ticks /proc/PID/stat start times use (CLOCK_BOOTTIME based). */
static uint64_t boot_ticks_now(void)
{
    struct timespec ts;
    long hz = sysconf(_SC_CLK_TCK);

    if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts) != 0) {
        return UINT64_MAX; /* unknown: the "started after us" check then never fires */
    }
    return (uint64_t)ts.tv_sec * (uint64_t)hz + (uint64_t)ts.tv_nsec / (1000000000u / (uint64_t)hz);
}

/* ---- pidfd ------------------------------------------------------------------------------- */

/* A pidfd for the socket's peer: 1 exact (SO_PEERPIDFD), 0 by pid (pidfd_open), or no pidfd. */
static int open_pidfd(int sock, pid_t pid, int *pidfd, int *exact, struct ly_error *err)
{
    *pidfd = -1;
    *exact = 0;
#ifdef SO_PEERPIDFD
    {
        int fd = -1;
        socklen_t len = sizeof(fd);
        if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0 && len == sizeof(fd) &&
            fd >= 0) {
            *pidfd = fd;
            *exact = 1;
            return 0;
        }
        if (errno == ESRCH) {
            return ly_error_setx(err, LY_ERR_IO, ATTEST_R_GONE,
                                 "workload process %ld has exited", (long)pid);
        }
        /* ENOPROTOOPT/EINVAL: an older kernel; fall back to pidfd_open below. */
    }
#else
    (void)sock;
#endif
#ifdef SYS_pidfd_open
    {
        long fd = syscall(SYS_pidfd_open, (long)pid, 0L);
        if (fd >= 0) {
            *pidfd = (int)fd;
            return 0;
        }
        if (errno == ESRCH) {
            return ly_error_setx(err, LY_ERR_IO, ATTEST_R_GONE,
                                 "workload process %ld has exited", (long)pid);
        }
        if (errno != ENOSYS) {
            return ly_error_set(err, LY_ERR_IO, ATTEST_R_PROC, "pidfd_open(%ld)", (long)pid);
        }
    }
#endif
    return 0; /* no pidfd support: the start time check alone guards against reuse */
}

int attest_recheck(const struct attest_facts *f, struct ly_error *err)
{
    uint64_t start = 0;
    int zombie = 0;
    int rc;

    if (f == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "attest_recheck: NULL facts");
    }
    /* /proc first, pidfd second: if the pidfd still shows the process alive afterwards, the
     * /proc read above was about that very process (a pid is only reused after its reaping). */
    rc = proc_start_time(f->pid, &start, &zombie, err);
    if (rc < 0) {
        return rc;
    }
    if (zombie) {
        return ly_error_setx(err, LY_ERR_IO, ATTEST_R_GONE, "workload process %ld has exited",
                             (long)f->pid);
    }
    if (start != f->start_time) {
        return ly_error_setx(err, LY_ERR_POLICY, ATTEST_R_REUSED,
                             "pid %ld now belongs to another process (start time changed); "
                             "refusing to attest it",
                             (long)f->pid);
    }
    if (f->pidfd >= 0) {
        struct pollfd p = {f->pidfd, POLLIN, 0};
        int n;
        do {
            n = poll(&p, 1, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            return ly_error_set(err, LY_ERR_IO, ATTEST_R_PROC, "poll on pidfd");
        }
        if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            return ly_error_setx(err, LY_ERR_IO, ATTEST_R_GONE,
                                 "workload process %ld has exited", (long)f->pid);
        }
    }
    return 0;
}

/* ---- executable -------------------------------------------------------------------------- */

static int hash_fd(int fd, size_t max, char hex[65], struct ly_error *err)
{
    static const char hx[] = "0123456789abcdef";
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    uint8_t *buf = malloc(HASH_CHUNK);
    wc_Sha256 sha;
    size_t total = 0;
    size_t i;
    int rc = 0;

    if (buf == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (wc_InitSha256(&sha) != 0) {
        free(buf);
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 init failed");
    }
    for (;;) {
        ssize_t n = read(fd, buf, HASH_CHUNK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = ly_error_set(err, LY_ERR_IO, ATTEST_R_PROC, "reading the workload executable");
            break;
        }
        if (n == 0) {
            break;
        }
        total += (size_t)n;
        if (total > max) {
            /* It grew past the cap while we read: no trustworthy hash. */
            rc = ly_error_setx(err, LY_ERR_IO, ATTEST_R_PROC,
                               "workload executable is larger than %zu bytes", max);
            break;
        }
        if (wc_Sha256Update(&sha, buf, (word32)n) != 0) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 update failed");
            break;
        }
    }
    if (rc == 0 && wc_Sha256Final(&sha, digest) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 final failed");
    }
    wc_Sha256Free(&sha);
    free(buf);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < sizeof(digest); i++) {
        hex[2 * i] = hx[digest[i] >> 4];
        hex[2 * i + 1] = hx[digest[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

/* readlink into a malloc'ed string; NULL with errno set on failure (ENAMETOOLONG if cut). */
static char *read_link(const char *path)
{
    char *buf = malloc(PATH_MAX + 1);
    ssize_t n;

    if (buf == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    n = readlink(path, buf, PATH_MAX + 1);
    if (n < 0 || n > PATH_MAX) {
        if (n > PATH_MAX) {
            errno = ENAMETOOLONG;
        }
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/*
 * Path and SHA-256 of the executable. The file is opened through the /proc/PID/exe magic link,
 * which names the inode the process runs even if the path now holds another file; the path is
 * read before and after the open and must not change (an exec in between would pair one
 * binary's path with another's hash). A deleted executable (st_nlink == 0) has no path fact.
 * Permission errors (another user's process, daemon not root) leave both facts out.
 */
static int collect_exe(struct attest_facts *f, const struct attest_opts *o, struct ly_error *err)
{
    size_t max = o->max_exe_size ? o->max_exe_size : ATTEST_DEFAULT_MAX_EXE;
    char link[64];
    char *p1 = NULL;
    char *p2 = NULL;
    struct stat st;
    struct stat st2;
    int fd = -1;
    int rc;

    rc = snprintf(link, sizeof(link), "/proc/%ld/exe", (long)f->pid);
    if (rc < 0 || (size_t)rc >= sizeof(link)) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "pid path too long");
    }
    rc = 0;
    p1 = read_link(link);
    if (p1 == NULL) {
        if (errno == ENOMEM) {
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        return 0; /* EACCES, ENOENT (kernel thread, exiting): no exe facts; recheck decides */
    }
    fd = open(link, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        goto out; /* as above */
    }
    if (fstat(fd, &st) != 0) {
        rc = ly_error_set(err, LY_ERR_IO, ATTEST_R_PROC, "fstat of the workload executable");
        goto out;
    }
    p2 = read_link(link);
    if (p2 == NULL || strcmp(p1, p2) != 0 || stat(link, &st2) != 0 || st2.st_dev != st.st_dev ||
        st2.st_ino != st.st_ino) {
        rc = ly_error_setx(err, LY_ERR_POLICY, ATTEST_R_REUSED,
                           "workload process %ld changed its executable during attestation",
                           (long)f->pid);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        goto out; /* not a regular file: no facts */
    }
    if (st.st_nlink > 0) {
        f->exe_path = p1;
        p1 = NULL;
    }
    if (o->no_sha256 || st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max) {
        goto out;
    }
    if (o->cache != NULL) {
        size_t i;
        for (i = 0; i < o->cache->cap; i++) {
            if (same_file_version(&o->cache->v[i], &st)) {
                memcpy(f->sha256_hex, o->cache->v[i].hex, sizeof(f->sha256_hex));
                goto out;
            }
        }
    }
    rc = hash_fd(fd, max, f->sha256_hex, err);
    if (rc < 0) {
        goto out;
    }
    if (fstat(fd, &st2) != 0 || !same_stat(&st, &st2)) {
        /* The file changed while we hashed it: the digest describes no single version. */
        f->sha256_hex[0] = '\0';
        goto out;
    }
    if (o->cache != NULL) {
        struct cache_ent *c = &o->cache->v[o->cache->next];
        o->cache->next = (o->cache->next + 1) % o->cache->cap;
        c->used = 1;
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        c->size = st.st_size;
        c->mtim = st.st_mtim;
        c->ctim = st.st_ctim;
        memcpy(c->hex, f->sha256_hex, sizeof(c->hex));
    }
out:
    if (fd >= 0) {
        (void)close(fd); /* read-only */
    }
    free(p1);
    free(p2);
    return rc;
}

/* ---- users and groups -------------------------------------------------------------------- */

static long name_buf_start(int which)
{
    long n = sysconf(which);

    return n > 0 && n < (long)NAME_BUF_MAX ? n : 4096;
}

/* The user name of uid: 0 and *out (malloc'ed, NULL when none), or an error. */
static int user_name(uid_t uid, char **out, struct ly_error *err)
{
    size_t sz = (size_t)name_buf_start(_SC_GETPW_R_SIZE_MAX);
    struct passwd pw;
    struct passwd *res = NULL;
    char *buf = NULL;
    int rc;

    *out = NULL;
    for (;;) {
        char *nb = realloc(buf, sz);
        if (nb == NULL) {
            free(buf);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        buf = nb;
        rc = getpwuid_r(uid, &pw, buf, sz, &res);
        if (rc == ERANGE && sz < NAME_BUF_MAX) {
            sz *= 2;
            continue;
        }
        break;
    }
    if (rc == 0 && res != NULL && res->pw_name != NULL) {
        *out = strdup(res->pw_name);
        if (*out == NULL) {
            free(buf);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
    }
    /* rc != 0 (NSS failure) leaves the name out: it can only make a user selector not match. */
    free(buf);
    return 0;
}

static int group_name(gid_t gid, char **out, struct ly_error *err)
{
    size_t sz = (size_t)name_buf_start(_SC_GETGR_R_SIZE_MAX);
    struct group gr;
    struct group *res = NULL;
    char *buf = NULL;
    int rc;

    *out = NULL;
    for (;;) {
        char *nb = realloc(buf, sz);
        if (nb == NULL) {
            free(buf);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        buf = nb;
        rc = getgrgid_r(gid, &gr, buf, sz, &res);
        if (rc == ERANGE && sz < NAME_BUF_MAX) {
            sz *= 2;
            continue;
        }
        break;
    }
    if (rc == 0 && res != NULL && res->gr_name != NULL) {
        *out = strdup(res->gr_name);
        if (*out == NULL) {
            free(buf);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
    }
    free(buf);
    return 0;
}

/*
 * Supplementary groups from the "Groups:" line of /proc/PID/status (proc(5)): decimal gids
 * separated by blanks, ending at the newline. At most ATTEST_MAX_GROUPS are kept; anything
 * malformed is an error rather than a guess.
 */
static int collect_groups(struct attest_facts *f, struct ly_error *err)
{
    static const char key[] = "Groups:";
    char path[64];
    struct ly_buf b;
    const char *p;
    const char *end;
    const char *line = NULL;
    int e = 0;
    int rc;

    rc = snprintf(path, sizeof(path), "/proc/%ld/status", (long)f->pid);
    if (rc < 0 || (size_t)rc >= sizeof(path)) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "pid path too long");
    }
    if (read_proc_file(path, PROC_STATUS_MAX, &b, &e) < 0) {
        errno = e;
        if (gone_errno(e)) {
            return ly_error_setx(err, LY_ERR_IO, ATTEST_R_GONE,
                                 "workload process %ld has exited", (long)f->pid);
        }
        return ly_error_set(err, LY_ERR_IO, ATTEST_R_PROC, "cannot read %s", path);
    }
    end = (const char *)b.data + b.len;
    for (p = (const char *)b.data; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        if ((size_t)(le - p) >= sizeof(key) - 1 && memcmp(p, key, sizeof(key) - 1) == 0) {
            line = p + sizeof(key) - 1;
            end = le;
            break;
        }
        p = nl != NULL ? nl + 1 : end;
    }
    rc = 0;
    if (line == NULL) {
        goto out; /* no Groups line: no supplementary facts */
    }
    f->suppl_gids = calloc(ATTEST_MAX_GROUPS, sizeof(*f->suppl_gids));
    if (f->suppl_gids == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    p = line;
    while (p < end && f->n_suppl_gids < ATTEST_MAX_GROUPS) {
        const char *tok;
        uint64_t g;
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if (p == end) {
            break;
        }
        tok = p;
        while (p < end && *p != ' ' && *p != '\t') {
            p++;
        }
        if (parse_u64(tok, (size_t)(p - tok), &g) < 0 || g > 4294967294u) {
            rc = ly_error_setx(err, LY_ERR_IO, ATTEST_R_PROC, "cannot parse Groups: in %s",
                               path);
            goto out;
        }
        f->suppl_gids[f->n_suppl_gids++] = (gid_t)g;
    }
out:
    ly_buf_free(&b);
    return rc;
}

static int collect_names(struct attest_facts *f, struct ly_error *err)
{
    size_t i;
    int rc;

    if (f->have_names) {
        return 0;
    }
    f->have_names = 1;
    rc = user_name(f->uid, &f->user, err);

    if (rc == 0) {
        rc = group_name(f->gid, &f->group, err);
    }
    if (rc == 0 && f->n_suppl_gids > 0) {
        f->suppl_groups = calloc(f->n_suppl_gids, sizeof(*f->suppl_groups));
        if (f->suppl_groups == NULL) {
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
    }
    for (i = 0; rc == 0 && i < f->n_suppl_gids; i++) {
        char *name = NULL;
        rc = group_name(f->suppl_gids[i], &name, err);
        if (rc == 0 && name != NULL) {
            f->suppl_groups[f->n_suppl_groups++] = name;
        }
    }
    return rc;
}

int attest_add_names(struct attest_facts *f, struct ly_error *err)
{
    return collect_names(f, err);
}

/* ---- the entry point --------------------------------------------------------------------- */

void attest_facts_free(struct attest_facts *f)
{
    size_t i;

    if (f == NULL) {
        return;
    }
    if (f->pidfd >= 0) {
        (void)close(f->pidfd); /* a pidfd has nothing to flush */
        f->pidfd = -1;
    }
    free(f->exe_path);
    free(f->user);
    free(f->group);
    free(f->suppl_gids);
    for (i = 0; i < f->n_suppl_groups; i++) {
        free(f->suppl_groups[i]);
    }
    free(f->suppl_groups);
    free(f);
}

int attest_peer(int fd, const struct attest_opts *opts, struct attest_facts **out,
                struct ly_error *err)
{
    static const struct attest_opts defaults = {.max_exe_size = 0};
    const struct attest_opts *o = opts != NULL ? opts : &defaults;
    uint64_t began = boot_ticks_now();
    struct attest_facts *f = NULL;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int zombie = 0;
    int rc;

    *out = NULL;
    memset(&cred, 0, sizeof(cred));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
        return ly_error_set(err, LY_ERR_IO, ATTEST_R_NOT_UNIX,
                            "cannot read the peer's credentials (SO_PEERCRED)");
    }
    if (cred.pid <= 0) {
        /* The peer lives in a pid namespace we cannot see: nothing can be checked. */
        return ly_error_setx(err, LY_ERR_POLICY, ATTEST_R_NO_PID,
                             "the kernel reports no pid for the peer (another pid namespace?)");
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    f->pidfd = -1;
    f->pid = cred.pid;
    f->uid = cred.uid;
    f->gid = cred.gid;
    rc = open_pidfd(fd, f->pid, &f->pidfd, &f->exact_pidfd, err);
    if (rc < 0) {
        goto err;
    }
    rc = proc_start_time(f->pid, &f->start_time, &zombie, err);
    if (rc < 0) {
        goto err;
    }
    if (zombie) {
        rc = ly_error_setx(err, LY_ERR_IO, ATTEST_R_GONE, "workload process %ld has exited",
                           (long)f->pid);
        goto err;
    }
    /*
     * Without SO_PEERPIDFD the pidfd was opened by number. The peer connected before we were
     * called, so a process that started after that cannot be it: the pid was recycled.
     */
    if (!f->exact_pidfd && f->start_time > began) {
        rc = ly_error_setx(err, LY_ERR_POLICY, ATTEST_R_REUSED,
                           "pid %ld belongs to a process that started after the connection; "
                           "refusing to attest it",
                           (long)f->pid);
        goto err;
    }
    rc = collect_exe(f, o, err);
    if (rc == 0) {
        rc = collect_groups(f, err);
    }
    if (rc == 0 && !o->no_names) {
        rc = collect_names(f, err);
    }
    if (rc == 0) {
        rc = attest_recheck(f, err);
    }
    if (rc < 0) {
        goto err;
    }
    *out = f;
    return 0;
err:
    attest_facts_free(f);
    return rc;
}

/* ---- facts as selectors ------------------------------------------------------------------ */

void attest_selectors_free(struct entry_selector *sel, size_t n)
{
    size_t i;

    if (sel == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        entry_selector_clear(&sel[i]);
    }
    free(sel);
}

static int push_fact(struct entry_selector *v, size_t *n, enum entry_sel_type t, const char *s)
{
    v[*n].value = strdup(s);
    if (v[*n].value == NULL) {
        return -1;
    }
    v[*n].type = t;
    (*n)++;
    return 0;
}

static int push_num(struct entry_selector *v, size_t *n, enum entry_sel_type t, unsigned long x)
{
    char num[24];
    int k = snprintf(num, sizeof(num), "%lu", x);

    if (k < 0 || (size_t)k >= sizeof(num)) {
        return -1;
    }
    return push_fact(v, n, t, num);
}

int attest_facts_selectors(const struct attest_facts *f, struct entry_selector **out, size_t *n,
                           struct ly_error *err)
{
    size_t cap = 6 + f->n_suppl_gids + f->n_suppl_groups;
    struct entry_selector *v = calloc(cap, sizeof(*v));
    size_t k = 0;
    size_t i;
    int bad = 0;

    *out = NULL;
    *n = 0;
    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    bad |= push_num(v, &k, ENTRY_SEL_UID, (unsigned long)f->uid);
    if (f->user != NULL) {
        bad |= push_fact(v, &k, ENTRY_SEL_USER, f->user);
    }
    bad |= push_num(v, &k, ENTRY_SEL_GID, (unsigned long)f->gid);
    if (f->group != NULL) {
        bad |= push_fact(v, &k, ENTRY_SEL_GROUP, f->group);
    }
    for (i = 0; !bad && i < f->n_suppl_gids; i++) {
        bad |= push_num(v, &k, ENTRY_SEL_SUPPL_GID, (unsigned long)f->suppl_gids[i]);
    }
    for (i = 0; !bad && i < f->n_suppl_groups; i++) {
        bad |= push_fact(v, &k, ENTRY_SEL_SUPPL_GROUP, f->suppl_groups[i]);
    }
    if (!bad && f->exe_path != NULL) {
        bad |= push_fact(v, &k, ENTRY_SEL_PATH, f->exe_path);
    }
    if (!bad && f->sha256_hex[0] != '\0') {
        bad |= push_fact(v, &k, ENTRY_SEL_SHA256, f->sha256_hex);
    }
    if (bad) {
        attest_selectors_free(v, k);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    *out = v;
    *n = k;
    return 0;
}

int attest_facts_describe(const struct attest_facts *f, struct ly_buf *out, struct ly_error *err)
{
    struct entry_selector *v = NULL;
    size_t n = 0;
    size_t i;
    int rc;

    ly_buf_init(out, 64 * 1024);
    rc = attest_facts_selectors(f, &v, &n, err);
    if (rc < 0) {
        return rc;
    }
    rc = ly_buf_appendf(out, err, "pid=%ld", (long)f->pid);
    for (i = 0; rc == 0 && i < n; i++) {
        char x[1024];
        rc = ly_buf_appendf(out, err, " unix:%s:%s", entry_sel_type_name(v[i].type),
                            ly_text_escape(v[i].value, strlen(v[i].value), 200, x, sizeof(x)));
    }
    attest_selectors_free(v, n);
    return rc;
}

int attest_match(struct store *s, const struct attest_facts *f, struct entry ***out, size_t *n,
                 struct ly_error *err)
{
    struct entry_selector *v = NULL;
    size_t k = 0;
    int rc;

    *out = NULL;
    *n = 0;
    rc = attest_facts_selectors(f, &v, &k, err);
    if (rc < 0) {
        return rc;
    }
    rc = store_entry_match(s, v, k, out, n, err);
    attest_selectors_free(v, k);
    return rc;
}
