/*
 * spiffeid: the strict SPIFFE ID parser and comparator (SPIFFE-ID.md §2, checklist ID-1..ID-16).
 * It accepts only the one canonical form and never normalises: no case folding, no
 * percent-decoding, no trailing-dot stripping. It must not allocate, do I/O or keep state.
 */
#include "spiffeid.h"

#include <string.h>

#include "../common/ly_text.h"

#define SCHEME "spiffe://"
#define SCHEME_LEN 9
/* How many bytes of peer-supplied text a message quotes (each byte escaped to at most 4). */
#define ECHO_MAX 48

/* SPIFFE-ID §2.1: trust domain bytes are lowercase letters, digits, '.', '-' and '_'. */
static int td_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* SPIFFE-ID §2.2: path segment bytes are letters of either case, digits, '.', '-' and '_'. */
static int path_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Escape one byte for a message: printable ASCII as itself, anything else as \xNN. */
static void esc_byte(unsigned char c, char out[5])
{
    static const char hex[] = "0123456789abcdef";

    if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\') {
        out[0] = (char)c;
        out[1] = '\0';
        return;
    }
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[c >> 4];
    out[3] = hex[c & 0xf];
    out[4] = '\0';
}

/* Escape at most ECHO_MAX bytes of s into out, adding "..." when s was longer. */
static void esc_text(const char *s, size_t len, char *out, size_t outsz)
{
    (void)ly_text_escape(s, len, ECHO_MAX, out, outsz);
}

/* Embedded NULs make C-string and counted lengths disagree: treat as hostile (libtls rule). */
static int check_nul(const char *s, size_t len, const char *what, struct ly_error *err)
{
    const char *z = memchr(s, '\0', len);

    if (z != NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_EMBEDDED_NUL,
                             "%s contains a NUL byte at offset %zu", what, (size_t)(z - s));
    }
    return 0;
}

/* Check the bytes of a bare trust domain name (no NUL inside, already checked). */
static int check_td(const char *td, size_t len, struct ly_error *err)
{
    size_t i;
    char b[5];

    if (len == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_MISSING_TD, "trust domain is missing");
    }
    for (i = 0; i < len; i++) {
        if (!td_byte_ok((unsigned char)td[i])) {
            esc_byte((unsigned char)td[i], b);
            /* ':' (port), '@' (userinfo), '[' (IPv6), '%' (escapes) and uppercase all land here. */
            return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_BAD_TD_CHAR,
                                 "trust domain byte '%s' at offset %zu is not allowed "
                                 "(only a-z 0-9 . - _)",
                                 b, i);
        }
    }
    if (len > SPIFFEID_TD_MAX_LEN) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TD_TOO_LONG,
                             "trust domain is %zu bytes, longer than %d", len, SPIFFEID_TD_MAX_LEN);
    }
    return 0;
}

/* Check one segment's bytes and its dot rule (NULs already excluded by the caller). */
static int check_segment(const char *seg, size_t len, struct ly_error *err)
{
    size_t i;
    char b[5];
    char quoted[ECHO_MAX * 4 + 4];

    if (len == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_EMPTY_SEGMENT,
                             "path contains an empty segment");
    }
    for (i = 0; i < len; i++) {
        if (!path_byte_ok((unsigned char)seg[i])) {
            esc_byte((unsigned char)seg[i], b);
            esc_text(seg, len, quoted, sizeof(quoted));
            return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_BAD_PATH_CHAR,
                                 "path byte '%s' in segment '%s' is not allowed "
                                 "(only A-Z a-z 0-9 . - _)",
                                 b, quoted);
        }
    }
    /* SPIFFE-ID §2.2: only segments made entirely of "." or ".." are banned ("..." is fine). */
    if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_DOT_SEGMENT,
                             "path segment '%.*s' is not allowed", (int)len, seg);
    }
    return 0;
}

/* Check an absolute path ("" or "/seg/..."), NULs already excluded. */
static int check_path(const char *path, size_t len, struct ly_error *err)
{
    size_t start;
    int rc;

    if (len == 0) {
        return 0;
    }
    if (path[0] != '/') {
        char b[5];
        esc_byte((unsigned char)path[0], b);
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_BAD_PATH_CHAR,
                             "path must start with '/', not '%s'", b);
    }
    start = 1;
    for (;;) {
        const char *slash = memchr(path + start, '/', len - start);
        size_t end = slash != NULL ? (size_t)(slash - path) : len;
        if (end == start) {
            /* SPIFFE-ID §2.2: a final empty segment is a trailing slash, others are "//". */
            if (slash == NULL) {
                return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TRAILING_SLASH,
                                     "path must not end with '/'");
            }
            return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_EMPTY_SEGMENT,
                                 "path contains an empty segment ('//') at offset %zu", start);
        }
        rc = check_segment(path + start, end - start, err);
        if (rc < 0) {
            return rc;
        }
        if (slash == NULL) {
            return 0;
        }
        start = end + 1;
    }
}

int spiffeid_parse(const char *s, size_t len, struct spiffeid *out, struct ly_error *err)
{
    const char *td;
    const char *slash;
    size_t td_len;
    int rc;

    ly_error_clear(err);
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (s == NULL || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "spiffeid_parse: NULL argument");
    }
    if (len == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_EMPTY, "SPIFFE ID is empty");
    }
    /* SPIFFE-ID §2.3: longer IDs are refused before any other work. */
    if (len > SPIFFEID_MAX_LEN) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TOO_LONG,
                             "SPIFFE ID is %zu bytes, longer than %d", len, SPIFFEID_MAX_LEN);
    }
    rc = check_nul(s, len, "SPIFFE ID", err);
    if (rc < 0) {
        return rc;
    }
    /* SPIFFE-ID §2 / ID-1, ID-16: the scheme is exactly lowercase "spiffe" then "://". */
    if (len < SCHEME_LEN || memcmp(s, SCHEME, SCHEME_LEN) != 0) {
        char quoted[ECHO_MAX * 4 + 4];
        esc_text(s, len < 16 ? len : 16, quoted, sizeof(quoted));
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_WRONG_SCHEME,
                             "SPIFFE ID must start with \"spiffe://\" (got '%s')", quoted);
    }
    td = s + SCHEME_LEN;
    slash = memchr(td, '/', len - SCHEME_LEN);
    td_len = slash != NULL ? (size_t)(slash - td) : len - SCHEME_LEN;
    rc = check_td(td, td_len, err);
    if (rc < 0) {
        return rc;
    }
    rc = check_path(td + td_len, len - SCHEME_LEN - td_len, err);
    if (rc < 0) {
        return rc;
    }
    memcpy(out->str, s, len);
    out->str[len] = '\0';
    out->len = len;
    out->td_len = td_len;
    return 0;
}

/* go-spiffe's rule (trust-domain vectors): input containing ":/" is an ID, otherwise a name. */
static int looks_like_id(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i++) {
        if (s[i] == ':' && s[i + 1] == '/') {
            return 1;
        }
    }
    return 0;
}

int spiffeid_parse_trust_domain(const char *s, size_t len, char *td, size_t tdsz,
                                struct ly_error *err)
{
    struct spiffeid id;
    const char *name = s;
    size_t name_len = len;
    int rc;

    ly_error_clear(err);
    if (s == NULL || td == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "spiffeid_parse_trust_domain: NULL argument");
    }
    if (len == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_MISSING_TD, "trust domain is missing");
    }
    if (looks_like_id(s, len)) {
        rc = spiffeid_parse(s, len, &id, err);
        if (rc < 0) {
            return rc;
        }
        name = id.str + SCHEME_LEN;
        name_len = id.td_len;
    } else {
        if (len > SPIFFEID_MAX_LEN) {
            return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TD_TOO_LONG,
                                 "trust domain is %zu bytes, longer than %d", len,
                                 SPIFFEID_TD_MAX_LEN);
        }
        rc = check_nul(s, len, "trust domain", err);
        if (rc < 0) {
            return rc;
        }
        rc = check_td(s, len, err);
        if (rc < 0) {
            return rc;
        }
    }
    if (tdsz < name_len + 1) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "trust domain buffer too small (%zu bytes)",
                             tdsz);
    }
    memcpy(td, name, name_len);
    td[name_len] = '\0';
    return 0;
}

int spiffeid_validate_path(const char *path, size_t len, struct ly_error *err)
{
    int rc;

    ly_error_clear(err);
    if (path == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "spiffeid_validate_path: NULL argument");
    }
    /* The shortest ID with a path is "spiffe://x" + path, so longer paths can never fit. */
    if (len > SPIFFEID_MAX_LEN - SCHEME_LEN - 1) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TOO_LONG,
                             "path is %zu bytes, too long for a SPIFFE ID", len);
    }
    rc = check_nul(path, len, "path", err);
    if (rc < 0) {
        return rc;
    }
    return check_path(path, len, err);
}

int spiffeid_validate_segment(const char *seg, size_t len, struct ly_error *err)
{
    int rc;

    ly_error_clear(err);
    if (seg == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "spiffeid_validate_segment: NULL argument");
    }
    if (len > SPIFFEID_MAX_LEN - SCHEME_LEN - 2) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TOO_LONG,
                             "path segment is %zu bytes, too long for a SPIFFE ID", len);
    }
    rc = check_nul(seg, len, "path segment", err);
    if (rc < 0) {
        return rc;
    }
    return check_segment(seg, len, err);
}

int spiffeid_from_parts(const char *td, const char *path, struct spiffeid *out,
                        struct ly_error *err)
{
    size_t td_len;
    size_t path_len;
    int rc;

    ly_error_clear(err);
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (td == NULL || path == NULL || out == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "spiffeid_from_parts: NULL argument");
    }
    /* Bounded lengths: anything past the caps is refused without scanning further. */
    td_len = strnlen(td, SPIFFEID_MAX_LEN + 1);
    path_len = strnlen(path, SPIFFEID_MAX_LEN + 1);
    if (td_len > SPIFFEID_TD_MAX_LEN) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TD_TOO_LONG,
                             "trust domain is longer than %d bytes", SPIFFEID_TD_MAX_LEN);
    }
    rc = check_td(td, td_len, err);
    if (rc < 0) {
        return rc;
    }
    if (SCHEME_LEN + td_len + path_len > SPIFFEID_MAX_LEN) {
        return ly_error_setx(err, LY_ERR_PARSE, SPIFFEID_R_TOO_LONG,
                             "SPIFFE ID would be longer than %d bytes", SPIFFEID_MAX_LEN);
    }
    rc = check_path(path, path_len, err);
    if (rc < 0) {
        return rc;
    }
    memcpy(out->str, SCHEME, SCHEME_LEN);
    memcpy(out->str + SCHEME_LEN, td, td_len);
    memcpy(out->str + SCHEME_LEN + td_len, path, path_len);
    out->len = SCHEME_LEN + td_len + path_len;
    out->str[out->len] = '\0';
    out->td_len = td_len;
    return 0;
}

const char *spiffeid_td(const struct spiffeid *id, size_t *len)
{
    if (len != NULL) {
        *len = id->td_len;
    }
    return id->str + SCHEME_LEN;
}

int spiffeid_td_copy(const struct spiffeid *id, char *out, size_t outsz)
{
    if (out == NULL || outsz < id->td_len + 1) {
        return -1;
    }
    memcpy(out, id->str + SCHEME_LEN, id->td_len);
    out[id->td_len] = '\0';
    return 0;
}

const char *spiffeid_path(const struct spiffeid *id)
{
    /* A zeroed (unset) struct has len 0: give "" rather than pointing past the string. */
    if (id->len < SCHEME_LEN + id->td_len) {
        return "";
    }
    return id->str + SCHEME_LEN + id->td_len;
}

int spiffeid_is_root(const struct spiffeid *id)
{
    return id->len > 0 && id->len == SCHEME_LEN + id->td_len;
}

int spiffeid_equal(const struct spiffeid *a, const struct spiffeid *b)
{
    /* ID-15/ID-16: exact bytes; no case folding for path, scheme or trust domain. */
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

int spiffeid_member_of(const struct spiffeid *id, const char *td)
{
    size_t n;

    if (td == NULL) {
        return 0;
    }
    n = strnlen(td, SPIFFEID_TD_MAX_LEN + 1);
    /* Exact trust domain equality, never a suffix match ("evil-example.org"). */
    return n == id->td_len && memcmp(id->str + SCHEME_LEN, td, n) == 0 && td[n] == '\0';
}
