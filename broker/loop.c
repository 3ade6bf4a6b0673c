/*
 * loop: epoll-based event loop with fd events, monotonic millisecond timers (a list kept sorted
 * by deadline) and signals read from a signalfd. It holds no protocol knowledge and never blocks
 * except in epoll_wait.
 */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 128
#define LOOP_MAX_SIGNO 64

struct loop_file {
    loop_file_fn cb;
    void *arg;
    int mask;
    int used;
    uint32_t gen; /* bumped on every add/del, so a stale event of a reused fd is dropped */
};

struct loop_timer {
    uint64_t id;
    uint64_t when; /* monotonic ms */
    uint64_t pass; /* timer pass in which it was armed: it never fires in that same pass */
    loop_timer_fn cb;
    void *arg;
    struct loop_timer *next;
};

struct loop_sig {
    loop_signal_fn cb;
    void *arg;
};

struct loop {
    int epfd;
    struct loop_file *files; /* LOOP_MAX_FD entries, indexed by fd; calloc'd, so unused pages
                                are never touched and cost no resident memory */
    struct loop_timer *timers; /* sorted by when; equal deadlines in arming order */
    struct loop_timer *running;
    int running_deleted;
    uint64_t next_id;
    uint64_t pass;
    uint64_t now;
    int sigfd;
    sigset_t sigs;
    struct loop_sig sig[LOOP_MAX_SIGNO + 1];
    int stop;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux. */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int loop_new(struct loop **out, struct ly_error *err)
{
    struct loop *loop = calloc(1, sizeof(*loop));

    *out = NULL;
    if (loop == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    loop->sigfd = -1;
    loop->next_id = 1;
    loop->now = mono_ms();
    sigemptyset(&loop->sigs);
    loop->files = calloc(LOOP_MAX_FD, sizeof(*loop->files));
    loop->epfd = loop->files != NULL ? epoll_create1(EPOLL_CLOEXEC) : -1;
    if (loop->epfd < 0) {
        (void)ly_error_set(err, loop->files != NULL ? LY_ERR_IO : LY_ERR_NOMEM, 0, "loop_new");
        free(loop->files);
        free(loop);
        return err != NULL ? err->code : LY_ERR_IO;
    }
    *out = loop;
    return 0;
}

void loop_free(struct loop *loop)
{
    struct loop_timer *t, *next;

    if (loop == NULL) {
        return;
    }
    for (t = loop->timers; t != NULL; t = next) {
        next = t->next;
        free(t);
    }
    /* Both fds are only read: nothing can be lost on close. */
    if (loop->sigfd >= 0) {
        (void)close(loop->sigfd);
    }
    (void)close(loop->epfd);
    free(loop->files);
    free(loop);
}

static int fd_ctl(struct loop *loop, int op, int fd, struct ly_error *err)
{
    struct epoll_event ev;
    int mask = loop->files[fd].mask;

    memset(&ev, 0, sizeof(ev));
    ev.events = ((mask & LOOP_READABLE) ? (uint32_t)EPOLLIN : 0u) |
                ((mask & LOOP_WRITABLE) ? (uint32_t)EPOLLOUT : 0u);
    ev.data.u64 = ((uint64_t)loop->files[fd].gen << 32) | (uint32_t)fd;
    if (epoll_ctl(loop->epfd, op, fd, &ev) != 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "epoll_ctl fd %d", fd);
    }
    return 0;
}

int loop_fd_add(struct loop *loop, int fd, int mask, loop_file_fn cb, void *arg,
                struct ly_error *err)
{
    struct loop_file *f;
    int was_used;

    if (fd < 0 || fd >= LOOP_MAX_FD || cb == NULL || (mask & ~(LOOP_READABLE | LOOP_WRITABLE))) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "loop_fd_add: bad fd %d or mask", fd);
    }
    f = &loop->files[fd];
    was_used = f->used;
    f->cb = cb;
    f->arg = arg;
    f->mask = mask;
    f->gen++;
    f->used = 1;
    if (fd_ctl(loop, was_used ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, err) != 0) {
        f->used = 0;
        return err != NULL ? err->code : LY_ERR_IO;
    }
    return 0;
}

int loop_fd_mask(struct loop *loop, int fd, int mask, struct ly_error *err)
{
    if (fd < 0 || fd >= LOOP_MAX_FD || !loop->files[fd].used ||
        (mask & ~(LOOP_READABLE | LOOP_WRITABLE))) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "loop_fd_mask: fd %d not watched", fd);
    }
    if (loop->files[fd].mask == mask) {
        return 0;
    }
    loop->files[fd].mask = mask;
    return fd_ctl(loop, EPOLL_CTL_MOD, fd, err);
}

void loop_fd_del(struct loop *loop, int fd)
{
    if (fd < 0 || fd >= LOOP_MAX_FD || !loop->files[fd].used) {
        return;
    }
    /* Fails only if the owner already closed the fd, which removed it from epoll anyway. */
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->files[fd].used = 0;
    loop->files[fd].gen++;
}

static void timer_insert(struct loop *loop, struct loop_timer *t)
{
    struct loop_timer **pp = &loop->timers;

    while (*pp != NULL && (*pp)->when <= t->when) {
        pp = &(*pp)->next;
    }
    t->next = *pp;
    *pp = t;
}

int loop_timer_add(struct loop *loop, long ms, loop_timer_fn cb, void *arg, uint64_t *id,
                   struct ly_error *err)
{
    struct loop_timer *t;

    if (ms < 0 || cb == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "loop_timer_add: bad delay or callback");
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    t->id = loop->next_id++;
    t->when = mono_ms() + (uint64_t)ms;
    t->pass = loop->pass;
    t->cb = cb;
    t->arg = arg;
    timer_insert(loop, t);
    if (id != NULL) {
        *id = t->id;
    }
    return 0;
}

void loop_timer_del(struct loop *loop, uint64_t id)
{
    struct loop_timer **pp, *t;

    if (loop->running != NULL && loop->running->id == id) {
        loop->running_deleted = 1;
        return;
    }
    for (pp = &loop->timers; *pp != NULL && (*pp)->id != id; pp = &(*pp)->next) {
    }
    if ((t = *pp) != NULL) {
        *pp = t->next;
        free(t);
    }
}

static void sig_ready(struct loop *loop, int fd, int mask, void *arg)
{
    struct signalfd_siginfo si;
    ssize_t n;

    (void)mask;
    (void)arg;
    /* Drain: one read per queued signal; the fd is non-blocking. */
    while ((n = read(fd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
        int signo = (int)si.ssi_signo;
        if (signo > 0 && signo <= LOOP_MAX_SIGNO && loop->sig[signo].cb != NULL) {
            loop->sig[signo].cb(loop, signo, loop->sig[signo].arg);
        }
    }
}

int loop_signal_add(struct loop *loop, int signo, loop_signal_fn cb, void *arg,
                    struct ly_error *err)
{
    sigset_t one;
    int fd;

    if (signo <= 0 || signo > LOOP_MAX_SIGNO || cb == NULL || signo == SIGKILL ||
        signo == SIGSTOP) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "loop_signal_add: bad signal %d", signo);
    }
    sigemptyset(&one);
    if (sigaddset(&one, signo) != 0 || sigaddset(&loop->sigs, signo) != 0) {
        return ly_error_set(err, LY_ERR_USAGE, 0, "sigaddset %d", signo);
    }
    if (pthread_sigmask(SIG_BLOCK, &one, NULL) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "pthread_sigmask");
    }
    fd = signalfd(loop->sigfd, &loop->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        return ly_error_set(err, LY_ERR_IO, 0, "signalfd");
    }
    if (loop->sigfd < 0) {
        loop->sigfd = fd;
        if (loop_fd_add(loop, fd, LOOP_READABLE, sig_ready, NULL, err) != 0) {
            (void)close(fd);
            loop->sigfd = -1;
            return err != NULL ? err->code : LY_ERR_IO;
        }
    }
    loop->sig[signo].cb = cb;
    loop->sig[signo].arg = arg;
    return 0;
}

static int run_timers(struct loop *loop)
{
    struct loop_timer *t;
    int ran = 0;
    long again;

    loop->pass++;
    while ((t = loop->timers) != NULL && t->when <= loop->now && t->pass < loop->pass &&
           !loop->stop) {
        loop->timers = t->next;
        loop->running = t;
        loop->running_deleted = 0;
        again = t->cb(loop, t->id, t->arg);
        ran++;
        loop->running = NULL;
        if (loop->running_deleted || again < 0) {
            free(t);
        } else {
            t->when = mono_ms() + (uint64_t)again;
            t->pass = loop->pass;
            timer_insert(loop, t);
        }
    }
    return ran;
}

int loop_run_once(struct loop *loop, long max_wait_ms, struct ly_error *err)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    long wait = max_wait_ms;
    int n, i, ran = 0;

    loop->now = mono_ms();
    if (loop->timers != NULL) {
        uint64_t until = loop->timers->when <= loop->now ? 0 : loop->timers->when - loop->now;
        if (wait < 0 || until < (uint64_t)wait) {
            wait = (long)(until < INT_MAX ? until : INT_MAX);
        }
    }
    wait = wait < INT_MAX ? wait : INT_MAX;
    n = epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, (int)wait);
    if (n < 0 && errno != EINTR) {
        return ly_error_set(err, LY_ERR_IO, 0, "epoll_wait");
    }
    loop->now = mono_ms();
    for (i = 0; i < n && !loop->stop; i++) {
        int fd = (int)(evs[i].data.u64 & 0xffffffffu);
        uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
        struct loop_file *f;
        int ready;

        if (fd >= LOOP_MAX_FD || !loop->files[fd].used || loop->files[fd].gen != gen) {
            continue; /* deleted (or replaced) by an earlier callback of this iteration */
        }
        f = &loop->files[fd];
        ready = (((evs[i].events & EPOLLIN) ? LOOP_READABLE : 0) |
                 ((evs[i].events & EPOLLOUT) ? LOOP_WRITABLE : 0)) & f->mask;
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
            ready |= f->mask != 0 ? f->mask : LOOP_READABLE;
        }
        if (ready != 0) {
            f->cb(loop, fd, ready, f->arg);
            ran++;
        }
    }
    if (!loop->stop) {
        ran += run_timers(loop);
    }
    return ran;
}

int loop_run(struct loop *loop, struct ly_error *err)
{
    loop->stop = 0;
    while (!loop->stop) {
        if (loop_run_once(loop, -1, err) < 0) {
            return err != NULL ? err->code : LY_ERR_IO;
        }
    }
    loop->stop = 0;
    return 0;
}

void loop_stop(struct loop *loop)
{
    loop->stop = 1;
}

uint64_t loop_now_ms(const struct loop *loop)
{
    return loop->now;
}
