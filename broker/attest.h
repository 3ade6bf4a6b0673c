/*
 * attest: workload attestation from the kernel, with no cooperation from the workload (WAPI-6).
 * SO_PEERCRED on a connected Unix socket gives the peer's pid, uid and gid; from the pid come
 * the executable's path and SHA-256 (read through /proc/PID/exe, never by path), the user and
 * group names and the supplementary groups. A pidfd and the process start time guard against
 * pid reuse. It must never guess: a fact it cannot establish is left out, so it can only make an
 * entry fail to match, never match wrongly. Not thread-safe per attest_cache.
 */
#ifndef ATTEST_H
#define ATTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/ly_buf.h"
#include "../common/ly_error.h"
#include "entry.h"
#include "store.h"

/* Largest executable hashed for unix:sha256 (a bigger one yields no sha256 fact). */
#define ATTEST_DEFAULT_MAX_EXE (512u * 1024u * 1024u)
/* Supplementary groups taken from /proc/PID/status (the kernel allows 65536; more are ignored,
 * which can only make group selectors fail to match). */
#define ATTEST_MAX_GROUPS 1024

/*
 * Reasons (ly_error.reason). The Workload API answers ATTEST_R_GONE and ATTEST_R_PROC with
 * Unavailable (the caller may retry) and ATTEST_R_REUSED / ATTEST_R_NO_PID with
 * PermissionDenied.
 */
enum attest_reason {
    ATTEST_R_NOT_UNIX = 1, /* not a connected Unix stream socket (SO_PEERCRED failed) */
    ATTEST_R_NO_PID,       /* the kernel reports no pid (peer in another pid namespace) */
    ATTEST_R_GONE,         /* the peer process has exited (or is a zombie) */
    ATTEST_R_REUSED,       /* the pid now names another process (start time or pidfd changed) */
    ATTEST_R_PROC,         /* /proc/PID could not be read */
};

/* What the kernel says about one workload process. Every pointer member is owned. */
struct attest_facts {
    pid_t pid;
    uid_t uid;             /* from SO_PEERCRED (credentials at connect time) */
    gid_t gid;             /* primary group, from SO_PEERCRED */
    uint64_t start_time;   /* /proc/PID/stat field 22: clock ticks after boot */
    int pidfd;             /* owned descriptor on the process, -1 when the kernel has none */
    int exact_pidfd;       /* 1 when pidfd came from SO_PEERPIDFD (no reuse window at all) */
    char *exe_path;        /* NULL when unreadable or the executable file was deleted */
    char sha256_hex[65];   /* executable's SHA-256, "" when not computed */
    char *user;            /* NULL when the uid has no passwd entry */
    char *group;           /* NULL when the gid has no group entry */
    gid_t *suppl_gids;     /* from /proc/PID/status "Groups:" */
    size_t n_suppl_gids;
    char **suppl_groups;   /* names of those that resolve */
    size_t n_suppl_groups;
    int have_names;        /* user/group/suppl_groups were looked up (see attest_opts.no_names) */
};

/* A cache of executable hashes keyed by (device, inode, size, mtime, ctime). */
struct attest_cache;

/*
 * New cache of up to `capacity` hashes (capacity 0 gives a default of 256). NULL when out of
 * memory. Free with attest_cache_free().
 */
struct attest_cache *attest_cache_new(size_t capacity) LY_MUST_USE;
/* Free a cache. NULL is a no-op. */
void attest_cache_free(struct attest_cache *c);

/* Options; NULL means the defaults (hash up to ATTEST_DEFAULT_MAX_EXE, no cache). */
struct attest_opts {
    size_t max_exe_size;        /* 0: ATTEST_DEFAULT_MAX_EXE */
    int no_sha256;              /* 1: skip hashing (no unix:sha256 fact) */
    int no_names;               /* 1: skip user/group names (attest_add_names can add them) */
    struct attest_cache *cache; /* borrowed; NULL for none */
};

/*
 * Attest the peer of the connected Unix socket `fd`: SO_PEERCRED, a pidfd (SO_PEERPIDFD when
 * the kernel has it, else pidfd_open), the start time, then every fact, then the start time
 * and pidfd again: if the process exited or the pid changed hands meanwhile, the result is
 * refused (ATTEST_R_GONE / ATTEST_R_REUSED). Facts that cannot be read for lack of permission
 * (exe of another user's process when not root) are left out. On success *out is owned by the
 * caller (attest_facts_free). Returns 0, LY_ERR_IO (reasons NOT_UNIX, GONE, PROC),
 * LY_ERR_POLICY (NO_PID, REUSED) or LY_ERR_NOMEM.
 */
int attest_peer(int fd, const struct attest_opts *opts, struct attest_facts **out,
                struct ly_error *err) LY_MUST_USE;

/*
 * Check, just before using the result (e.g. before sending an SVID), that the attested process
 * still runs and is the same one: pidfd not signalled as exited, same start time. Returns 0,
 * LY_ERR_IO (ATTEST_R_GONE) or LY_ERR_POLICY (ATTEST_R_REUSED).
 */
int attest_recheck(const struct attest_facts *f, struct ly_error *err) LY_MUST_USE;

/*
 * Add the user, group and supplementary group names to facts attested with no_names (a no-op
 * when they are there already), for when an entry with a name selector appears later.
 * Returns 0 or LY_ERR_NOMEM / LY_ERR_IO.
 */
int attest_add_names(struct attest_facts *f, struct ly_error *err) LY_MUST_USE;

/* Free facts (closes the pidfd). NULL is a no-op. */
void attest_facts_free(struct attest_facts *f);

/*
 * The facts as selectors (unix:uid, unix:user, unix:gid, unix:group, unix:supplementary_gid,
 * unix:supplementary_group, unix:path, unix:sha256; only those established). *out is an array
 * of *n selectors the caller frees with attest_selectors_free().
 */
int attest_facts_selectors(const struct attest_facts *f, struct entry_selector **out, size_t *n,
                           struct ly_error *err) LY_MUST_USE;
/* Free an array from attest_facts_selectors(). NULL is a no-op. */
void attest_selectors_free(struct entry_selector *sel, size_t n);

/*
 * The facts as one line for a log: "pid=N unix:uid:1000 unix:user:alice ..." with every byte
 * outside printable ASCII escaped and each value capped. out is initialised here.
 */
int attest_facts_describe(const struct attest_facts *f, struct ly_buf *out, struct ly_error *err)
    LY_MUST_USE;

/*
 * Every registered entry whose selectors ALL hold for these facts, oldest first (one indexed
 * SQL lookup: store_entry_match). *out is an array of *n entries the caller frees with
 * entry_list_free(); *n = 0 means no identity (the Workload API answers PermissionDenied).
 */
int attest_match(struct store *s, const struct attest_facts *f, struct entry ***out, size_t *n,
                 struct ly_error *err) LY_MUST_USE;

#endif
