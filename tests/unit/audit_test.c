/*
 * Unit tests for broker/audit: append and scan round trip, reopening continues the chain, the
 * filter, and every tamper case reported with its own reason (an edited byte, a deleted record,
 * two swapped records, a truncated final record, appended garbage), plus refusal of token- and
 * key-like values and of a group-readable log.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the headers above first. */
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../broker/audit.h"
#include "../../common/ly_buf.h"
#include "../../common/ly_file.h"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    memcpy(f->dir, "/tmp/audit_test.XXXXXX", sizeof("/tmp/audit_test.XXXXXX"));
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    if (snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir) >= (int)sizeof(f->path)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    (void)unlink(f->path);
    (void)rmdir(f->dir);
    free(f);
    return 0;
}

static void fill_event(struct audit_event *ev, unsigned i)
{
    static char target[32];

    memset(ev, 0, sizeof(*ev));
    (void)snprintf(target, sizeof(target), "tool-%u", i);
    ev->time = 1800000000 + (int64_t)i * 60;
    ev->client_id = i % 2 == 0 ? "spiffe://example.org/a" : "spiffe://example.org/b";
    ev->cert_sha256 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    ev->user = i % 3 == 0 ? NULL : "alice";
    ev->method = "tools/call";
    ev->target = target;
    ev->decision = i % 2 == 0 ? "allow" : "deny";
    ev->reason = "test";
    ev->consent_id = i % 2 == 0 ? "c1" : NULL;
}

static void append_n(const char *path, unsigned first, unsigned n)
{
    struct audit_log *log = NULL;
    struct ly_error e = {0};
    unsigned i;

    ly_error_clear(&e);
    assert_int_equal(audit_open(path, &log, &e), 0);
    for (i = first; i < first + n; i++) {
        struct audit_event ev;
        fill_event(&ev, i);
        assert_int_equal(audit_append(log, &ev, &e), 0);
    }
    audit_close(log);
}

static void read_all(const char *path, struct ly_buf *b)
{
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(ly_file_read(path, AUDIT_MAX_FILE, 0, b, &e), 0);
}

static void write_all(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* Offset of record k (0-based) in an audit file. */
static size_t rec_off(const uint8_t *d, size_t len, unsigned k)
{
    size_t off = 0;

    while (k-- > 0) {
        uint32_t l = ((uint32_t)d[off] << 24) | ((uint32_t)d[off + 1] << 16) |
                     ((uint32_t)d[off + 2] << 8) | d[off + 3];
        off += 4 + l;
        assert_true(off <= len);
    }
    return off;
}

struct seen {
    uint64_t seqs[64];
    size_t n;
};

static int collect(const struct audit_record *r, void *arg)
{
    struct seen *s = arg;

    if (s->n < 64) {
        s->seqs[s->n++] = r->seq;
    }
    return 0;
}

static void test_roundtrip_and_reopen(void **state)
{
    struct fixture *f = *state;
    struct audit_scan_info info;
    struct seen s;
    struct ly_error e = {0};
    struct stat sb;
    struct audit_log *log = NULL;

    append_n(f->path, 0, 5);
    append_n(f->path, 5, 5); /* reopen continues seq and prev */
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    memset(&s, 0, sizeof(s));
    ly_error_clear(&e);
    assert_int_equal(audit_scan(f->path, NULL, collect, &s, &info, &e), 0);
    assert_int_equal(info.records, 10);
    assert_int_equal(info.last_seq, 10);
    assert_int_equal(s.n, 10);
    assert_int_equal(s.seqs[0], 1);
    assert_int_equal(s.seqs[9], 10);
    assert_int_equal(audit_open(f->path, &log, &e), 0);
    assert_int_equal(audit_next_seq(log), 11);
    audit_close(log);
    audit_close(NULL);
}

static void test_filter(void **state)
{
    struct fixture *f = *state;
    struct audit_filter flt;
    struct seen s;
    struct ly_error e = {0};

    append_n(f->path, 0, 12);
    memset(&flt, 0, sizeof(flt));
    flt.decision = "deny";
    flt.user = "alice";
    memset(&s, 0, sizeof(s));
    ly_error_clear(&e);
    assert_int_equal(audit_scan(f->path, &flt, collect, &s, NULL, &e), 0);
    /* deny = odd i; user alice = i not divisible by 3: i in {1,5,7,11} -> seq 2,6,8,12 */
    assert_int_equal(s.n, 4);
    assert_int_equal(s.seqs[0], 2);
    assert_int_equal(s.seqs[3], 12);
    memset(&flt, 0, sizeof(flt));
    flt.since = 1800000000 + 10 * 60;
    flt.client_id = "spiffe://example.org/a";
    memset(&s, 0, sizeof(s));
    assert_int_equal(audit_scan(f->path, &flt, collect, &s, NULL, &e), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.seqs[0], 11);
}

/* Scan a modified copy and check the reason and the seq the error names. */
static void expect_broken(const uint8_t *d, size_t len, int reason, uint64_t seq, const char *words)
{
    struct audit_scan_info info;
    struct ly_error e = {0};
    char needle[32];

    ly_error_clear(&e);
    assert_int_equal(audit_scan_mem(d, len, NULL, NULL, NULL, &info, &e), LY_ERR_VERIFY);
    assert_int_equal(e.reason, reason);
    assert_int_equal(info.broken_seq, seq);
    (void)snprintf(needle, sizeof(needle), "seq %u", (unsigned)seq);
    if (strstr(e.msg, needle) == NULL || strstr(e.msg, words) == NULL) {
        fail_msg("message '%s' lacks '%s' or '%s'", e.msg, needle, words);
    }
}

static void test_tamper(void **state)
{
    struct fixture *f = *state;
    struct ly_buf b;
    uint8_t *c;
    size_t o3, o4, o5, o6;
    struct audit_log *log = NULL;
    struct ly_error e = {0};
    const char *t;

    append_n(f->path, 0, 8);
    read_all(f->path, &b);
    c = malloc(b.len + 16);
    assert_non_null(c);
    o3 = rec_off(b.data, b.len, 3);
    o4 = rec_off(b.data, b.len, 4);
    o5 = rec_off(b.data, b.len, 5);
    o6 = rec_off(b.data, b.len, 6);

    /* One byte edited inside record seq 4's target text ("tool-3" -> "tool-9"). */
    memcpy(c, b.data, b.len);
    t = memmem(c + o3, o4 - o3, "tool-3", 6);
    assert_non_null(t);
    c[(size_t)((const uint8_t *)t - c) + 5] = '9';
    expect_broken(c, b.len, AUDIT_R_HASH, 4, "edited");

    /* Record seq 5 deleted. */
    memcpy(c, b.data, o4);
    memcpy(c + o4, b.data + o5, b.len - o5);
    expect_broken(c, b.len - (o5 - o4), AUDIT_R_SEQ_GAP, 5, "deleted");

    /* Records seq 5 and seq 6 swapped. */
    memcpy(c, b.data, o4);
    memcpy(c + o4, b.data + o5, o6 - o5);
    memcpy(c + o4 + (o6 - o5), b.data + o4, o5 - o4);
    memcpy(c + o6, b.data + o6, b.len - o6);
    expect_broken(c, b.len, AUDIT_R_SEQ_GAP, 5, "moved");

    /* Truncated in the middle of the last record (seq 8). */
    expect_broken(b.data, b.len - 7, AUDIT_R_TRUNCATED, 8, "truncated");

    /* Garbage appended: a plausible length with junk, a stray byte, an oversized length. */
    memcpy(c, b.data, b.len);
    memcpy(c + b.len, "\x00\x00\x00\x04junk", 8);
    expect_broken(c, b.len + 8, AUDIT_R_RECORD, 9, "not a valid record");
    expect_broken(c, b.len + 1, AUDIT_R_TRUNCATED, 9, "truncated");
    memcpy(c + b.len, "\xff\xff\xff\xff", 4);
    expect_broken(c, b.len + 4, AUDIT_R_FRAMING, 9, "bad framing");

    /* Records deleted from the head: the file starts at seq 4. */
    expect_broken(b.data + o3, b.len - o3, AUDIT_R_SEQ_GAP, 1, "deleted");

    /* A truncated file is never appended to: open fails and names the record. */
    write_all(f->path, b.data, b.len - 7);
    ly_error_clear(&e);
    assert_int_equal(audit_open(f->path, &log, &e), LY_ERR_VERIFY);
    assert_int_equal(e.reason, AUDIT_R_TRUNCATED);
    assert_null(log);
    {
        struct stat sb;
        assert_int_equal(stat(f->path, &sb), 0);
        assert_int_equal((size_t)sb.st_size, b.len - 7); /* left untouched */
    }
    free(c);
    ly_buf_free(&b);
}

static void test_refusals(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    struct audit_event ev;
    struct ly_error e = {0};
    struct stat sb;
    static const char *const bad[] = {
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "Bearer eyJhbGciOiJFUzI1NiJ9",
        "token=eyJhbGci",
        "-----BEGIN CERTIFICATE-----",
        "x -----BEGIN EC PRIVATE KEY----- y",
        "bearer abc",
    };
    size_t i;

    ly_error_clear(&e);
    assert_int_equal(audit_open(f->path, &log, &e), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fill_event(&ev, 1);
        if (i % 3 == 0) {
            ev.user = bad[i];
        } else if (i % 3 == 1) {
            ev.reason = bad[i];
        } else {
            ev.target = bad[i];
        }
        ly_error_clear(&e);
        assert_int_equal(audit_append(log, &ev, &e), LY_ERR_USAGE);
        assert_int_equal(e.reason, AUDIT_R_SECRET);
        assert_null(strstr(e.msg, "eyJ"));
        assert_null(strstr(e.msg, "BEGIN"));
    }
    /* Malformed events are refused too. */
    fill_event(&ev, 1);
    ev.decision = "maybe";
    ly_error_clear(&e);
    assert_int_equal(audit_append(log, &ev, &e), LY_ERR_USAGE);
    assert_int_equal(e.reason, AUDIT_R_FIELD);
    fill_event(&ev, 1);
    ev.cert_sha256 = "abc";
    ly_error_clear(&e);
    assert_int_equal(audit_append(log, &ev, &e), LY_ERR_USAGE);
    fill_event(&ev, 1);
    ev.client_id = NULL;
    ly_error_clear(&e);
    assert_int_equal(audit_append(log, &ev, &e), LY_ERR_USAGE);
    assert_int_equal(audit_next_seq(log), 1);
    audit_close(log);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(audit_value_is_secret("spiffe://example.org/keyJ"), 0);
    assert_int_equal(audit_value_is_secret(NULL), 0);

    /* A group-readable log is refused. */
    assert_int_equal(chmod(f->path, 0640), 0);
    ly_error_clear(&e);
    assert_int_equal(audit_open(f->path, &log, &e), LY_ERR_USAGE);
    assert_null(log);
}

static void test_symlink_refused(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    struct ly_error e = {0};
    char link[160];

    append_n(f->path, 0, 1);
    assert_true(snprintf(link, sizeof(link), "%s/link.log", f->dir) < (int)sizeof(link));
    assert_int_equal(symlink(f->path, link), 0);
    ly_error_clear(&e);
    assert_int_equal(audit_open(link, &log, &e), LY_ERR_IO);
    ly_error_clear(&e);
    assert_int_equal(audit_scan(link, NULL, NULL, NULL, NULL, &e), LY_ERR_IO);
    assert_int_equal(unlink(link), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
