/*
 * ly_time: epoch seconds, RFC 3339 and durations with explicit arithmetic (days-from-civil),
 * so that no non-reentrant libc time call and no local time zone is ever involved.
 */
#include "ly_time.h"

#include <stdio.h>
#include <time.h>

int64_t ly_time_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t ly_time_from_utc(int year, int mon, int day, int hour, int min, int sec)
{
    return days_from_civil(year, mon, day) * 86400 + (int64_t)hour * 3600 + (int64_t)min * 60 +
           sec;
}

int ly_time_to_utc(int64_t t, int *year, int *mon, int *day, int *hour, int *min, int *sec)
{
    int64_t days = t / 86400;
    int64_t rem = t % 86400;
    int64_t z;
    int64_t era;
    int64_t doe;
    int64_t yoe;
    int64_t y;
    int64_t doy;
    int64_t mp;
    int64_t d;
    int64_t m;

    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp + (mp < 10 ? 3 : -9);
    y += (m <= 2);
    if (y < 0 || y > 9999) {
        return -1;
    }
    *year = (int)y;
    *mon = (int)m;
    *day = (int)d;
    *hour = (int)(rem / 3600);
    *min = (int)((rem % 3600) / 60);
    *sec = (int)(rem % 60);
    return 0;
}

int ly_time_format_rfc3339(int64_t t, char *out, size_t outsz, struct ly_error *err)
{
    int y;
    int mo;
    int d;
    int h;
    int mi;
    int s;
    int n;

    if (ly_time_to_utc(t, &y, &mo, &d, &h, &mi, &s) < 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "time %lld is out of range",
                             (long long)t);
    }
    n = snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s);
    if (n < 0 || (size_t)n >= outsz) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "time buffer too small");
    }
    return 0;
}

/* Read exactly n decimal digits. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return -1;
        }
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return (m == 2 && leap) ? 29 : dm[m - 1];
}

int ly_time_parse_rfc3339(const char *s, int64_t *out, struct ly_error *err)
{
    const char *p = s;
    int y;
    int mo;
    int d;
    int h;
    int mi;
    int sec;
    int oh = 0;
    int om = 0;
    int sign = 0;
    int64_t t;

    if (s == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "missing timestamp");
    }
    if (read_digits(&p, 4, &y) < 0 || *p++ != '-' || read_digits(&p, 2, &mo) < 0 ||
        *p++ != '-' || read_digits(&p, 2, &d) < 0 || (*p != 'T' && *p != 't') ||
        (p++, read_digits(&p, 2, &h) < 0) || *p++ != ':' || read_digits(&p, 2, &mi) < 0 ||
        *p++ != ':' || read_digits(&p, 2, &sec) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "timestamp is not RFC 3339 (expected YYYY-MM-DDTHH:MM:SSZ)");
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "timestamp has an out-of-range field");
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "timestamp has an empty fraction");
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = (*p == '+') ? 1 : -1;
        p++;
        if (read_digits(&p, 2, &oh) < 0 || *p++ != ':' || read_digits(&p, 2, &om) < 0 ||
            oh > 23 || om > 59) {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "timestamp has a bad UTC offset");
        }
    } else {
        return ly_error_setx(err, LY_ERR_PARSE, 0,
                             "timestamp lacks a time zone (use Z or +HH:MM)");
    }
    if (*p != '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "timestamp has trailing characters");
    }
    if (sec == 60) {
        sec = 59; /* leap second: clamp, epoch time has no 60th second */
    }
    t = ly_time_from_utc(y, mo, d, h, mi, sec);
    t -= (int64_t)sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    *out = t;
    return 0;
}

int ly_duration_parse(const char *s, int64_t *out, struct ly_error *err)
{
    const char *p = s;
    int64_t total = 0;

    if (s == NULL || *s == '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "empty duration");
    }
    while (*p != '\0') {
        int64_t v = 0;
        int64_t mul;
        int digits = 0;

        while (*p >= '0' && *p <= '9') {
            if (v > (INT64_MAX - 9) / 10) {
                return ly_error_setx(err, LY_ERR_PARSE, 0, "duration '%.32s' is too large", s);
            }
            v = v * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (digits == 0) {
            return ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "duration '%.32s' is not of the form 90s, 15m, 1h, 7d or 1h30m",
                                 s);
        }
        switch (*p) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        default:
            return ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "duration '%.32s' needs a unit (s, m, h or d) after each number",
                                 s);
        }
        p++;
        if (v > INT64_MAX / mul || total > INT64_MAX - v * mul) {
            return ly_error_setx(err, LY_ERR_PARSE, 0, "duration '%.32s' is too large", s);
        }
        total += v * mul;
    }
    if (total <= 0) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "duration '%.32s' must be positive", s);
    }
    *out = total;
    return 0;
}
