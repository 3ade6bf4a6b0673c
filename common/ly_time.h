/*
 * ly_time: wall-clock time as seconds since the Unix epoch (int64), RFC 3339 parsing and
 * formatting in UTC, and operator-facing durations ("90s", "15m", "1h", "7d", "1h30m").
 * Reentrant only: no gmtime/localtime, no TZ lookups.
 */
#ifndef LY_TIME_H
#define LY_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "ly_error.h"

/* Current wall-clock time, seconds since the epoch. */
int64_t ly_time_now(void);

/*
 * Parse an RFC 3339 timestamp ("2026-11-22T10:00:00Z", "...T10:00:00.5+02:00"); fractional
 * seconds are truncated. Returns 0 and sets *out, or LY_ERR_PARSE naming what is wrong.
 */
int ly_time_parse_rfc3339(const char *s, int64_t *out, struct ly_error *err) LY_MUST_USE;

/* Format t as "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). Returns 0 or LY_ERR_USAGE. */
int ly_time_format_rfc3339(int64_t t, char *out, size_t outsz, struct ly_error *err) LY_MUST_USE;

/* Break t into UTC calendar fields (proleptic Gregorian). Years 0..9999 only. */
int ly_time_to_utc(int64_t t, int *year, int *mon, int *day, int *hour, int *min, int *sec)
    LY_MUST_USE;

/* Calendar fields in UTC to seconds since the epoch (no range normalisation). */
int64_t ly_time_from_utc(int year, int mon, int day, int hour, int min, int sec);

/*
 * Parse a duration: one or more <digits><unit> groups with unit s, m, h or d ("1h30m").
 * Rejects empty input, missing units, zero, negative values and overflow. *out in seconds.
 */
int ly_duration_parse(const char *s, int64_t *out, struct ly_error *err) LY_MUST_USE;

#endif
