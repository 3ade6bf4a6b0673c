/*
 * loop: the daemon's single-threaded event loop (ae-sized, on Linux epoll): file events, timers
 * on the monotonic clock in milliseconds, and signals delivered as ordinary events (signalfd).
 * It knows nothing of TLS, SQLite, gRPC or SPIFFE, and its callbacks must never block.
 */
#ifndef LOOP_H
#define LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ly_error.h"

struct loop;

/* Event masks for file events; a callback receives the subset that is ready. */
#define LOOP_READABLE 0x1
#define LOOP_WRITABLE 0x2

/* Return value of a timer callback that does not want to run again. */
#define LOOP_TIMER_DONE (-1)

/* Largest number of file descriptors (fd values) the loop will watch. */
#define LOOP_MAX_FD 65536

/*
 * A file event callback: `mask` holds the ready events (LOOP_READABLE and/or LOOP_WRITABLE). An
 * error or hang-up on the fd is reported as the whole registered mask (LOOP_READABLE when the
 * mask is 0), so the owner's next read or write sees the failure.
 */
typedef void (*loop_file_fn)(struct loop *loop, int fd, int mask, void *arg);

/*
 * A timer callback. Return LOOP_TIMER_DONE to drop the timer, or a delay in milliseconds (>= 0)
 * to run it again that long after now (a re-armable timer).
 */
typedef long (*loop_timer_fn)(struct loop *loop, uint64_t id, void *arg);

/* A signal callback, run from the loop (not from a signal handler), so it may do anything. */
typedef void (*loop_signal_fn)(struct loop *loop, int signo, void *arg);

/*
 * Create a loop. Returns 0 and the loop in *out (caller frees with loop_free), or a negative
 * LY_ERR_* with err set. Not thread-safe: a loop and every object it drives belong to one thread.
 */
int loop_new(struct loop **out, struct ly_error *err) LY_MUST_USE;

/*
 * Free the loop and its timers. It does not close watched fds (their owners do). Signals added
 * with loop_signal_add stay blocked, so a late one cannot kill the process during cleanup. NULL
 * is a no-op. Never call it from a callback of the same loop.
 */
void loop_free(struct loop *loop);

/*
 * Watch `fd` for `mask` (LOOP_READABLE|LOOP_WRITABLE; 0 registers the fd with no interest) and
 * call cb(loop, fd, ready, arg). Replaces any earlier registration of the fd. The fd stays owned
 * by the caller, who must loop_fd_del it before closing it. LY_ERR_USAGE for a bad fd or mask.
 */
int loop_fd_add(struct loop *loop, int fd, int mask, loop_file_fn cb, void *arg,
                struct ly_error *err) LY_MUST_USE;

/* Change the interest mask of a watched fd. LY_ERR_USAGE if the fd is not watched. */
int loop_fd_mask(struct loop *loop, int fd, int mask, struct ly_error *err) LY_MUST_USE;

/*
 * Stop watching `fd`. Safe from any callback, including the fd's own: a pending event for it in
 * the current iteration is dropped, even if the fd number is reused at once. Unknown fd: no-op.
 */
void loop_fd_del(struct loop *loop, int fd);

/*
 * Add a timer that fires once after `ms` milliseconds (0 = at the next iteration) and then as its
 * callback's return value says. Its id (never 0, never reused) is stored in *id when id is not
 * NULL. Timers that are due together fire in deadline order, ties in creation order.
 */
int loop_timer_add(struct loop *loop, long ms, loop_timer_fn cb, void *arg, uint64_t *id,
                   struct ly_error *err) LY_MUST_USE;

/*
 * Cancel a timer. Safe from any callback, including the timer's own (its return value is then
 * ignored). An unknown or already finished id is a no-op.
 */
void loop_timer_del(struct loop *loop, uint64_t id);

/*
 * Deliver `signo` through the loop: the signal is blocked for the calling thread (call this before
 * starting other threads) and read from a signalfd, so cb runs from loop_run, never from a
 * signal handler. One callback per signal; adding again replaces it.
 */
int loop_signal_add(struct loop *loop, int signo, loop_signal_fn cb, void *arg,
                    struct ly_error *err) LY_MUST_USE;

/*
 * Run until loop_stop. Returns 0 after a stop, or a negative LY_ERR_* if epoll itself failed.
 * Each iteration waits for the earliest timer or an fd event, then runs fd callbacks, then due
 * timers.
 */
int loop_run(struct loop *loop, struct ly_error *err) LY_MUST_USE;

/*
 * Run one iteration, waiting at most `max_wait_ms` (-1: until an event or timer). Returns the
 * number of callbacks run, or a negative LY_ERR_* on an epoll failure. For tests and for callers
 * that interleave the loop with other work.
 */
int loop_run_once(struct loop *loop, long max_wait_ms, struct ly_error *err) LY_MUST_USE;

/* Make loop_run return after the current iteration. Safe from any callback. */
void loop_stop(struct loop *loop);

/* The loop's cached monotonic clock in milliseconds, refreshed each iteration. */
uint64_t loop_now_ms(const struct loop *loop);

#endif
