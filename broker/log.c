/*
 * log: JSON log lines built with jansson (never by hand, so every value is escaped) and written
 * in one write(2) so concurrent writers never interleave within a line. It refuses secret-looking
 * field names so a careless caller cannot put a key or token into the log.
 */
#define _GNU_SOURCE
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/ly_text.h"
#include "../common/ly_time.h"

#define LOG_VALUE_MAX 1024

static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    log_min = level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    size_t i;

    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Field names that must never carry a value into the log ("key_type" or "kid" are fine). */
static int name_is_secret(const char *name)
{
    static const char *const bad[] = {"key", "token", "secret", "password", "jwt", "bearer",
                                      "authorization"};
    size_t n = strlen(name);
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t b = strlen(bad[i]);
        /* Exact name, or a "..._key" / "..._token" style suffix. */
        if (strcasecmp(name, bad[i]) == 0 ||
            (n > b && name[n - b - 1] == '_' && strcasecmp(name + n - b, bad[i]) == 0)) {
            return 1;
        }
    }
    return 0;
}

static void write_line(const char *s, size_t len)
{
    /* stderr is the log; if it is gone there is nowhere to report that. */
    ssize_t n = write(STDERR_FILENO, s, len);
    (void)n;
}

void log_event(enum log_level level, const char *event, ...)
{
    json_t *o;
    char ts[32];
    char *text = NULL;
    va_list ap;
    struct ly_error e;

    if (level < log_min || level > LOG_ERROR) {
        return;
    }
    ly_error_clear(&e);
    if (ly_time_format_rfc3339(ly_time_now(), ts, sizeof(ts), &e) < 0) {
        ts[0] = '\0';
    }
    o = json_object();
    if (o == NULL || json_object_set_new(o, "ts", json_string(ts)) != 0 ||
        json_object_set_new(o, "level", json_string(level_names[level])) != 0 ||
        json_object_set_new(o, "event", json_string(event)) != 0) {
        goto fallback;
    }
    va_start(ap, event);
    for (;;) {
        enum log_kind kind = (enum log_kind)va_arg(ap, int);
        const char *name;
        json_t *v = NULL;

        if (kind == LOG_END) {
            break;
        }
        name = va_arg(ap, const char *);
        if (kind == LOG_STR) {
            const char *str = va_arg(ap, const char *);
            if (str == NULL) {
                v = json_null();
            } else {
                size_t n = strnlen(str, LOG_VALUE_MAX);
                /* json_stringn refuses invalid UTF-8; such text is logged escaped instead. */
                v = json_stringn(str, n);
                if (v == NULL) {
                    char esc[LOG_VALUE_MAX * 4 + 4];
                    v = json_string(ly_text_escape(str, n, LOG_VALUE_MAX, esc, sizeof(esc)));
                }
            }
        } else if (kind == LOG_INT) {
            v = json_integer(va_arg(ap, int64_t));
        } else {
            break; /* unknown kind: the rest of the list cannot be trusted */
        }
        if (name_is_secret(name)) {
            json_decref(v);
            v = json_string("(refused: secret-looking field)");
        }
        if (v == NULL || json_object_set_new(o, name, v) != 0) {
            va_end(ap);
            goto fallback;
        }
    }
    va_end(ap);
    /* ensure_ascii: peer text with control or non-UTF-8 bytes can never break the line. */
    text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL) {
        goto fallback_noobj;
    }
    {
        size_t len = strlen(text);
        char *line = malloc(len + 2);
        if (line != NULL) {
            memcpy(line, text, len);
            line[len] = '\n';
            write_line(line, len + 1);
            free(line);
        }
    }
    free(text);
    return;
fallback:
    json_decref(o);
fallback_noobj:
    write_line("{\"level\":\"error\",\"event\":\"log.failed\"}\n", 39);
}
