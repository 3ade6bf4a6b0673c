/*
 * Unit tests for broker/loop: timer order and re-arming, fd readiness, deleting fds and timers
 * from inside callbacks (including a reused fd number), stop, and signal delivery via signalfd.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/loop.h"

struct rec {
    struct loop *loop;
    int order[16];
    int n;
    int count;
    uint64_t other; /* a timer id to delete */
    int fds[2];
};

static long t_record(struct loop *loop, uint64_t id, void *arg)
{
    struct rec *r = arg;
    (void)loop;
    if (r->n < 16) {
        r->order[r->n++] = (int)id;
    }
    return LOOP_TIMER_DONE;
}

static long t_stop(struct loop *loop, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    loop_stop(loop);
    return LOOP_TIMER_DONE;
}

static void test_timers_in_order(void **state)
{
    struct loop *loop;
    struct rec r;
    uint64_t a, b, c, s;
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(loop_new(&loop, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 30, t_record, &r, &c, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 10, t_record, &r, &a, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 20, t_record, &r, &b, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 60, t_stop, NULL, &s, NULL), 0);
    assert_int_equal(loop_run(loop, NULL), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.order[0], (int)a);
    assert_int_equal(r.order[1], (int)b);
    assert_int_equal(r.order[2], (int)c);
    assert_true(a != 0 && b != a && c != b);
    loop_free(loop);
}

static long t_rearm(struct loop *loop, uint64_t id, void *arg)
{
    struct rec *r = arg;
    (void)id;
    if (++r->count == 3) {
        loop_stop(loop);
        return LOOP_TIMER_DONE;
    }
    return 5;
}

static void test_timer_rearm_and_timing(void **state)
{
    struct loop *loop;
    struct rec r;
    uint64_t t0;
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(loop_new(&loop, NULL), 0);
    t0 = loop_now_ms(loop);
    assert_int_equal(loop_timer_add(loop, 5, t_rearm, &r, NULL, NULL), 0);
    assert_int_equal(loop_run(loop, NULL), 0);
    assert_int_equal(r.count, 3);
    assert_true(loop_now_ms(loop) - t0 >= 15);
    loop_free(loop);
}

static long t_del_other(struct loop *loop, uint64_t id, void *arg)
{
    struct rec *r = arg;
    (void)id;
    loop_timer_del(loop, r->other);
    loop_timer_del(loop, id); /* deleting itself: the return value is then ignored */
    r->count++;
    return 0;
}

static void test_timer_delete_in_callback(void **state)
{
    struct loop *loop;
    struct rec r;
    uint64_t first;
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(loop_new(&loop, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 1, t_del_other, &r, &first, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 1, t_record, &r, &r.other, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 40, t_stop, NULL, NULL, NULL), 0);
    assert_int_equal(loop_run(loop, NULL), 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.n, 0);   /* the deleted timer never fired */
    loop_timer_del(loop, first); /* already gone: a no-op */
    loop_timer_del(loop, 999);
    loop_free(loop);
}

static void on_read(struct loop *loop, int fd, int mask, void *arg)
{
    struct rec *r = arg;
    char c;
    assert_true(mask & LOOP_READABLE);
    assert_int_equal(read(fd, &c, 1), 1);
    r->order[r->n++] = c;
    loop_stop(loop);
}

static void on_write(struct loop *loop, int fd, int mask, void *arg)
{
    struct rec *r = arg;
    (void)fd;
    assert_int_equal(mask, LOOP_WRITABLE);
    r->count++;
    loop_stop(loop);
}

static void test_fd_readiness(void **state)
{
    struct loop *loop;
    struct rec r;
    int p[2];
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(pipe(p), 0);
    assert_int_equal(loop_new(&loop, NULL), 0);
    assert_int_equal(loop_fd_add(loop, p[0], LOOP_READABLE, on_read, &r, NULL), 0);
    /* Nothing to read: one bounded iteration runs no callback. */
    assert_int_equal(loop_run_once(loop, 10, NULL), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(loop_run(loop, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.order[0], 'x');
    /* Writable interest on the write end; no interest on the read end. */
    assert_int_equal(loop_fd_mask(loop, p[0], 0, NULL), 0);
    assert_int_equal(loop_fd_add(loop, p[1], LOOP_WRITABLE, on_write, &r, NULL), 0);
    assert_int_equal(loop_run(loop, NULL), 0);
    assert_int_equal(r.count, 1);
    loop_fd_del(loop, p[1]);
    assert_int_equal(loop_fd_mask(loop, 1000, LOOP_READABLE, NULL), LY_ERR_USAGE);
    assert_int_equal(loop_fd_add(loop, -1, LOOP_READABLE, on_read, &r, NULL), LY_ERR_USAGE);
    loop_fd_del(loop, p[0]);
    loop_fd_del(loop, p[0]);
    loop_free(loop);
    close(p[0]);
    close(p[1]);
}

static void on_never(struct loop *loop, int fd, int mask, void *arg)
{
    struct rec *r = arg;
    (void)loop;
    (void)fd;
    (void)mask;
    r->count += 100;
}

/* Both pipes are readable in the same iteration; the first callback deletes and closes the
 * other fd and opens a new pipe that reuses its number: the stale event must be dropped. */
static void on_first(struct loop *loop, int fd, int mask, void *arg)
{
    struct rec *r = arg;
    int victim = (fd == r->fds[0]) ? r->fds[1] : r->fds[0];
    int np[2];
    (void)mask;

    r->count++;
    r->order[0] = fd;
    loop_fd_del(loop, fd);
    loop_fd_del(loop, victim);
    assert_int_equal(close(victim), 0);
    assert_int_equal(pipe(np), 0);
    /* The new read end likely reuses `victim`'s number; register it, unreadable. */
    assert_int_equal(loop_fd_add(loop, np[0], LOOP_READABLE, on_never, r, NULL), 0);
    r->fds[0] = np[0];
    r->fds[1] = np[1];
}

static void test_fd_delete_in_callback(void **state)
{
    struct loop *loop;
    struct rec r;
    int a[2], b[2];
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    r.fds[0] = a[0];
    r.fds[1] = b[0];
    assert_int_equal(loop_new(&loop, NULL), 0);
    assert_int_equal(loop_fd_add(loop, a[0], LOOP_READABLE, on_first, &r, NULL), 0);
    assert_int_equal(loop_fd_add(loop, b[0], LOOP_READABLE, on_first, &r, NULL), 0);
    assert_int_equal(write(a[1], "a", 1), 1);
    assert_int_equal(write(b[1], "b", 1), 1);
    assert_int_equal(loop_run_once(loop, 100, NULL), 1);
    assert_int_equal(r.count, 1);
    assert_int_equal(loop_run_once(loop, 10, NULL), 0);
    assert_int_equal(r.count, 1);
    loop_fd_del(loop, r.fds[0]);
    loop_free(loop);
    close(r.order[0]); /* the fd whose callback ran; the other was closed by it */
    close(r.fds[0]);
    close(r.fds[1]);
    close(a[1]);
    close(b[1]);
}

static void on_sig(struct loop *loop, int signo, void *arg)
{
    struct rec *r = arg;
    r->order[r->n++] = signo;
    if (r->n == 2) {
        loop_stop(loop);
    }
}

static long t_raise(struct loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    (void)arg;
    assert_int_equal(raise(SIGUSR2), 0);
    return LOOP_TIMER_DONE;
}

static void test_signal_delivery(void **state)
{
    struct loop *loop;
    struct rec r;
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(loop_new(&loop, NULL), 0);
    assert_int_equal(loop_signal_add(loop, SIGUSR1, on_sig, &r, NULL), 0);
    assert_int_equal(loop_signal_add(loop, SIGUSR2, on_sig, &r, NULL), 0);
    assert_int_equal(loop_signal_add(loop, SIGKILL, on_sig, &r, NULL), LY_ERR_USAGE);
    /* Delivered while blocked: stays pending until the loop reads it. */
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_int_equal(loop_timer_add(loop, 5, t_raise, NULL, NULL, NULL), 0);
    assert_int_equal(loop_timer_add(loop, 2000, t_stop, NULL, NULL, NULL), 0);
    assert_int_equal(loop_run(loop, NULL), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.order[0], SIGUSR1);
    assert_int_equal(r.order[1], SIGUSR2);
    loop_free(loop);
    loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_timer_rearm_and_timing),
        cmocka_unit_test(test_timer_delete_in_callback),
        cmocka_unit_test(test_fd_readiness),
        cmocka_unit_test(test_fd_delete_in_callback),
        cmocka_unit_test(test_signal_delivery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
