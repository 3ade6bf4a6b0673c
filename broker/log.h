/*
 * log: the daemon's structured log, one JSON object per line on stderr:
 * {"ts":"2026-11-22T10:00:00Z","level":"info","event":"svid.issued","spiffe_id":...}.
 * Callers pass only non-secret fields (SPIFFE IDs, fingerprints, uids, paths); there is no way
 * to log a key or token through this API because values are typed and named by the caller,
 * and a field whose name looks secret ("key", "token", "secret", "password") is refused.
 */
#ifndef LOG_H
#define LOG_H

#include <stdint.h>

enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
};

/* Field kinds for log_event(). */
enum log_kind {
    LOG_END = 0, /* terminates the field list */
    LOG_STR,     /* const char * */
    LOG_INT,     /* int64_t */
};

/* Messages below `level` are dropped. Default LOG_INFO. Not thread-safe (the daemon is one thread). */
void log_set_level(enum log_level level);

/* Parse "debug" | "info" | "warn" | "error". Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * Write one event: log_event(LOG_INFO, "svid.issued", LOG_STR, "spiffe_id", id,
 * LOG_INT, "uid", (int64_t)uid, LOG_END). String values are JSON-escaped and capped at 1024
 * bytes. Never fails visibly: a line that cannot be built is replaced by a minimal one.
 */
void log_event(enum log_level level, const char *event, ...);

#endif
