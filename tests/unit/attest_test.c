/*
 * Unit tests for broker/attest: a forked child connects to a Unix socket and the parent attests
 * it. The facts must equal what /proc, getgroups() and an independent SHA-256 (sha256sum) give,
 * also after the child execs another binary; a dead, zombie or vanished peer is refused, and so
 * is a process whose start time no longer matches (the pid-reuse guard).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../broker/attest.h"
#include "../../broker/entry.h"
#include "../../broker/store.h"

struct fx {
    char dir[64];
    char sock[96];
    int lfd;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct sockaddr_un a;

    if (f == NULL) {
        return -1;
    }
    (void)snprintf(f->dir, sizeof(f->dir), "/tmp/lanyard-attest-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    (void)snprintf(f->sock, sizeof(f->sock), "%.63s/w.sock", f->dir);
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    (void)snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->sock);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(f->lfd, 16) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];

    (void)close(f->lfd);
    (void)unlink(f->sock);
    (void)snprintf(p, sizeof(p), "%s/lanyard.db", f->dir);
    (void)unlink(p);
    (void)snprintf(p, sizeof(p), "%s/lanyard.db-wal", f->dir);
    (void)unlink(p);
    (void)snprintf(p, sizeof(p), "%s/lanyard.db-shm", f->dir);
    (void)unlink(p);
    (void)rmdir(f->dir);
    free(f);
    return 0;
}

/* In a child: connect to the socket (not close-on-exec, so an exec'd program keeps it). */
static int child_connect(const char *path)
{
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    (void)snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        _exit(90);
    }
    return fd;
}

/* In a child: wait until the parent closes its end (or 30 s pass). */
static void child_wait_eof(int fd)
{
    char c;

    alarm(30);
    while (read(fd, &c, 1) > 0) {
    }
    _exit(0);
}

static int accept_one(struct fx *f)
{
    int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* SHA-256 of a file by running sha256sum (an independent implementation). */
static void sha256sum_of(const char *path, char out[65])
{
    int p[2];
    pid_t pid;
    char buf[256];
    ssize_t n;
    size_t got = 0;
    int status;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)dup2(p[1], 1);
        (void)close(p[0]);
        execlp("sha256sum", "sha256sum", path, (char *)NULL);
        _exit(127);
    }
    (void)close(p[1]);
    while ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0) {
        got += (size_t)n;
    }
    (void)close(p[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(got >= 64);
    memcpy(out, buf, 64);
    out[64] = '\0';
}

static void readlink_of(pid_t pid, char *out, size_t outsz)
{
    char link[64];
    ssize_t n;

    (void)snprintf(link, sizeof(link), "/proc/%ld/exe", (long)pid);
    n = readlink(link, out, outsz - 1);
    assert_true(n > 0);
    out[n] = '\0';
}

static void reap(pid_t pid)
{
    int status;
    (void)kill(pid, SIGKILL);
    (void)waitpid(pid, &status, 0);
}

static void test_attest_forked_child(void **state)
{
    struct fx *f = *state;
    struct attest_facts *facts = NULL;
    struct ly_error e = {0};
    char exe[PATH_MAX + 1];
    char want[65];
    gid_t groups[256];
    int ng;
    struct passwd *pw;
    struct group *gr;
    pid_t pid;
    int fd;
    int i;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_wait_eof(child_connect(f->sock));
    }
    fd = accept_one(f);
    ly_error_clear(&e);
    assert_int_equal(attest_peer(fd, NULL, &facts, &e), 0);
    assert_int_equal(facts->pid, pid);
    assert_int_equal(facts->uid, getuid());
    assert_int_equal(facts->gid, getgid());
    assert_true(facts->start_time > 0);
    assert_true(facts->pidfd >= 0);
    printf("# pidfd from %s\n", facts->exact_pidfd ? "SO_PEERPIDFD" : "pidfd_open");
    readlink_of(pid, exe, sizeof(exe));
    assert_non_null(facts->exe_path);
    assert_string_equal(facts->exe_path, exe);
    sha256sum_of(exe, want);
    assert_string_equal(facts->sha256_hex, want);
    pw = getpwuid(getuid());
    if (pw != NULL) {
        assert_non_null(facts->user);
        assert_string_equal(facts->user, pw->pw_name);
    }
    gr = getgrgid(getgid());
    if (gr != NULL) {
        assert_non_null(facts->group);
        assert_string_equal(facts->group, gr->gr_name);
    }
    ng = getgroups(256, groups);
    assert_true(ng >= 0);
    assert_int_equal(facts->n_suppl_gids, (size_t)ng);
    for (i = 0; i < ng; i++) {
        assert_int_equal(facts->suppl_gids[i], groups[i]);
    }
    /* Still the same process a moment later. */
    assert_int_equal(attest_recheck(facts, &e), 0);
    (void)close(fd);
    /* After it exits and is reaped, the recheck refuses. */
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    ly_error_clear(&e);
    assert_int_equal(attest_recheck(facts, &e), LY_ERR_IO);
    assert_int_equal(e.reason, ATTEST_R_GONE);
    assert_non_null(strstr(e.msg, "exited"));
    attest_facts_free(facts);
    attest_facts_free(NULL);
}

static void test_attest_exec(void **state)
{
    struct fx *f = *state;
    struct attest_facts *facts = NULL;
    struct ly_error e = {0};
    char sleep_path[PATH_MAX + 1];
    char exe[PATH_MAX + 1];
    char want[65];
    pid_t pid;
    int fd;
    int tries;

    assert_non_null(realpath("/bin/sleep", sleep_path));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)child_connect(f->sock);
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    fd = accept_one(f);
    /* Wait for the exec to complete. */
    for (tries = 0; tries < 500; tries++) {
        readlink_of(pid, exe, sizeof(exe));
        if (strcmp(exe, sleep_path) == 0) {
            break;
        }
        (void)usleep(10000);
    }
    assert_string_equal(exe, sleep_path);
    ly_error_clear(&e);
    assert_int_equal(attest_peer(fd, NULL, &facts, &e), 0);
    assert_int_equal(facts->pid, pid);
    assert_string_equal(facts->exe_path, sleep_path);
    sha256sum_of(sleep_path, want);
    assert_string_equal(facts->sha256_hex, want);
    attest_facts_free(facts);
    facts = NULL;
    /* Options: no hash, or a cap below the binary's size: no sha256 fact, path still there. */
    {
        struct attest_opts o = {.no_sha256 = 1};
        assert_int_equal(attest_peer(fd, &o, &facts, &e), 0);
        assert_string_equal(facts->sha256_hex, "");
        assert_string_equal(facts->exe_path, sleep_path);
        attest_facts_free(facts);
        o.no_sha256 = 0;
        o.max_exe_size = 100;
        assert_int_equal(attest_peer(fd, &o, &facts, &e), 0);
        assert_string_equal(facts->sha256_hex, "");
        attest_facts_free(facts);
    }
    /* With a cache: the same answer, twice. */
    {
        struct attest_cache *c = attest_cache_new(2);
        struct attest_opts o = {.cache = c};
        assert_non_null(c);
        assert_int_equal(attest_peer(fd, &o, &facts, &e), 0);
        assert_string_equal(facts->sha256_hex, want);
        attest_facts_free(facts);
        assert_int_equal(attest_peer(fd, &o, &facts, &e), 0);
        assert_string_equal(facts->sha256_hex, want);
        attest_facts_free(facts);
        attest_cache_free(c);
        attest_cache_free(NULL);
    }
    (void)close(fd);
    reap(pid);
}

static void test_dead_peer(void **state)
{
    struct fx *f = *state;
    struct attest_facts *facts = NULL;
    struct ly_error e = {0};
    pid_t pid;
    int fd;

    /* Exited and reaped before we look: refused. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)child_connect(f->sock);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    fd = accept_one(f);
    ly_error_clear(&e);
    assert_true(attest_peer(fd, NULL, &facts, &e) < 0);
    assert_null(facts);
    assert_true(e.reason == ATTEST_R_GONE || e.reason == ATTEST_R_REUSED);
    printf("# reaped peer: %s\n", e.msg);
    (void)close(fd);

    /* Exited but not reaped (a zombie): refused too. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)child_connect(f->sock);
        _exit(0);
    }
    fd = accept_one(f);
    {
        char path[64];
        char buf[512];
        int tries;
        /* Wait until the child is a zombie. */
        (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        for (tries = 0; tries < 500; tries++) {
            FILE *fp = fopen(path, "r");
            char *rp;
            size_t n;
            assert_non_null(fp);
            n = fread(buf, 1, sizeof(buf) - 1, fp);
            (void)fclose(fp);
            buf[n] = '\0';
            rp = strrchr(buf, ')');
            if (rp != NULL && rp[1] == ' ' && rp[2] == 'Z') {
                break;
            }
            (void)usleep(10000);
        }
    }
    ly_error_clear(&e);
    assert_int_equal(attest_peer(fd, NULL, &facts, &e), LY_ERR_IO);
    assert_int_equal(e.reason, ATTEST_R_GONE);
    assert_null(facts);
    (void)close(fd);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/*
 * The pid-reuse setup: the process that connected exits, but a descendant keeps the connected
 * socket. Attestation must refuse (the pid no longer names the peer) rather than attest whatever
 * process now holds that pid, or the descendant.
 */
static void test_peer_gone_socket_alive(void **state)
{
    struct fx *f = *state;
    struct attest_facts *facts = NULL;
    struct ly_error e = {0};
    pid_t pid;
    int fd;
    int sync[2];
    char c;

    assert_int_equal(pipe(sync), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int s = child_connect(f->sock);
        pid_t g = fork();
        if (g == 0) {
            (void)close(sync[0]);
            if (write(sync[1], "g", 1) != 1) {
                _exit(91);
            }
            child_wait_eof(s); /* the grandchild holds the connection */
        }
        _exit(0);
    }
    (void)close(sync[1]);
    assert_int_equal(read(sync[0], &c, 1), 1);
    (void)close(sync[0]);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    fd = accept_one(f);
    ly_error_clear(&e);
    assert_true(attest_peer(fd, NULL, &facts, &e) < 0);
    assert_null(facts);
    assert_true(e.reason == ATTEST_R_GONE || e.reason == ATTEST_R_REUSED);
    (void)close(fd); /* the grandchild sees EOF and exits (it is reparented, not ours to reap) */
}

static void test_start_time_guard(void **state)
{
    struct fx *f = *state;
    struct attest_facts *facts = NULL;
    struct ly_error e = {0};
    pid_t pid;
    int fd;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_wait_eof(child_connect(f->sock));
    }
    fd = accept_one(f);
    ly_error_clear(&e);
    assert_int_equal(attest_peer(fd, NULL, &facts, &e), 0);
    /* As if the pid now belonged to a process started at another time. */
    facts->start_time += 1;
    assert_int_equal(attest_recheck(facts, &e), LY_ERR_POLICY);
    assert_int_equal(e.reason, ATTEST_R_REUSED);
    facts->start_time -= 1;
    ly_error_clear(&e);
    /* Without a pidfd the start time alone still decides. */
    (void)close(facts->pidfd);
    facts->pidfd = -1;
    assert_int_equal(attest_recheck(facts, &e), 0);
    attest_facts_free(facts);
    (void)close(fd);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(attest_recheck(NULL, &e), LY_ERR_USAGE);
}

static void test_not_a_socket(void **state)
{
    struct attest_facts *facts = NULL;
    struct ly_error e = {0};
    int p[2];
    (void)state;

    assert_int_equal(pipe(p), 0);
    ly_error_clear(&e);
    assert_int_equal(attest_peer(p[0], NULL, &facts, &e), LY_ERR_IO);
    assert_int_equal(e.reason, ATTEST_R_NOT_UNIX);
    assert_null(facts);
    (void)close(p[0]);
    (void)close(p[1]);
}

static void test_selectors_and_match(void **state)
{
    struct fx *f = *state;
    struct attest_facts *facts = NULL;
    struct entry_selector *sel = NULL;
    struct entry **m = NULL;
    struct store *st = NULL;
    struct ly_error e = {0};
    struct ly_buf line;
    char dbpath[160];
    char s_uid[64];
    char s_path[PATH_MAX + 32];
    size_t n = 0;
    size_t i;
    pid_t pid;
    int fd;
    int seen_uid = 0;
    int seen_path = 0;
    int seen_sha = 0;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_wait_eof(child_connect(f->sock));
    }
    fd = accept_one(f);
    ly_error_clear(&e);
    assert_int_equal(attest_peer(fd, NULL, &facts, &e), 0);
    assert_int_equal(attest_facts_selectors(facts, &sel, &n, &e), 0);
    for (i = 0; i < n; i++) {
        /* Every fact is a selector our own parser accepts (round trip through text). */
        struct ly_buf t;
        struct entry_selector back;
        assert_int_equal(entry_selector_format(&sel[i], &t, &e), 0);
        assert_int_equal(entry_selector_parse((const char *)t.data, t.len, &back, &e), 0);
        assert_int_equal(entry_selector_cmp(&back, &sel[i]), 0);
        entry_selector_clear(&back);
        ly_buf_free(&t);
        seen_uid |= sel[i].type == ENTRY_SEL_UID;
        seen_path |= sel[i].type == ENTRY_SEL_PATH;
        seen_sha |= sel[i].type == ENTRY_SEL_SHA256;
    }
    assert_true(seen_uid && seen_path && seen_sha);
    attest_selectors_free(sel, n);
    attest_selectors_free(NULL, 0);
    assert_int_equal(attest_facts_describe(facts, &line, &e), 0);
    printf("# facts: %.300s\n", (const char *)line.data);
    (void)snprintf(s_uid, sizeof(s_uid), "unix:uid:%lu", (unsigned long)getuid());
    assert_non_null(strstr((const char *)line.data, s_uid));
    ly_buf_free(&line);

    /* Entries: uid + this binary's path match; uid + another path does not. */
    (void)snprintf(dbpath, sizeof(dbpath), "%s/lanyard.db", f->dir);
    assert_int_equal(store_open(dbpath, &st, &e), 0);
    (void)snprintf(s_path, sizeof(s_path), "unix:path:%s", facts->exe_path);
    {
        struct entry *a = entry_new();
        struct entry *b = entry_new();
        assert_int_equal(entry_set_spiffe_id(a, "spiffe://ex.test/me", 19, &e), 0);
        assert_int_equal(entry_add_selector(a, s_uid, strlen(s_uid), &e), 0);
        assert_int_equal(entry_add_selector(a, s_path, strlen(s_path), &e), 0);
        assert_int_equal(entry_validate(a, "ex.test", &e), 0);
        assert_int_equal(store_entry_add(st, a, &e), 0);
        assert_int_equal(entry_set_spiffe_id(b, "spiffe://ex.test/other", 22, &e), 0);
        assert_int_equal(entry_add_selector(b, s_uid, strlen(s_uid), &e), 0);
        assert_int_equal(entry_add_selector(b, "unix:path:/no/such/binary", 25, &e), 0);
        assert_int_equal(entry_validate(b, "ex.test", &e), 0);
        assert_int_equal(store_entry_add(st, b, &e), 0);
        entry_free(a);
        entry_free(b);
    }
    assert_int_equal(attest_match(st, facts, &m, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(m[0]->spiffe_id, "spiffe://ex.test/me");
    entry_list_free(m, n);
    store_close(st);
    attest_facts_free(facts);
    (void)close(fd);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_attest_forked_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attest_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_gone_socket_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_time_guard, setup, teardown),
        cmocka_unit_test(test_not_a_socket),
        cmocka_unit_test_setup_teardown(test_selectors_and_match, setup, teardown),
    };
    return cmocka_run_group_tests_name("attest", tests, NULL, NULL);
}
