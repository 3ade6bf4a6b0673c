/*
 * entry: registration entries and unix selectors. Every check refuses rather than normalises
 * (a selector must already be canonical), so that two spellings never name one workload and the
 * duplicate check in the store compares like with like. It does no I/O and logs nothing.
 */
#include "entry.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../common/ly_text.h"
#include "../common/ly_time.h"
#include "../svid/spiffeid.h"
#include "ca.h"

#define UNIX_PREFIX "unix:"
#define UNIX_PREFIX_LEN 5
#define ESC_MAX 96 /* bytes of user text quoted in one message */

static const struct {
    enum entry_sel_type type;
    const char *name;
} sel_types[] = {
    {ENTRY_SEL_UID, "uid"},
    {ENTRY_SEL_GID, "gid"},
    {ENTRY_SEL_USER, "user"},
    {ENTRY_SEL_GROUP, "group"},
    {ENTRY_SEL_SUPPL_GID, "supplementary_gid"},
    {ENTRY_SEL_SUPPL_GROUP, "supplementary_group"},
    {ENTRY_SEL_PATH, "path"},
    {ENTRY_SEL_SHA256, "sha256"},
};

#define N_SEL_TYPES (sizeof(sel_types) / sizeof(sel_types[0]))

const char *entry_sel_type_name(enum entry_sel_type type)
{
    size_t i;

    for (i = 0; i < N_SEL_TYPES; i++) {
        if (sel_types[i].type == type) {
            return sel_types[i].name;
        }
    }
    return "unknown";
}

int entry_sel_type_parse(const char *name, enum entry_sel_type *out)
{
    size_t i;

    for (i = 0; name != NULL && i < N_SEL_TYPES; i++) {
        if (strcmp(sel_types[i].name, name) == 0) {
            *out = sel_types[i].type;
            return 0;
        }
    }
    return -1;
}

/* Escape user text for a message (capped; non-printable bytes as \xHH). */
static const char *esc(const char *s, size_t len, char *out, size_t outsz)
{
    return ly_text_escape(s, len, ESC_MAX, out, outsz);
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. Returns 1
 * when valid. Names, paths and hints end up in JSON and protobuf strings, which require it.
 */
static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        size_t k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i - 1 < n) {
            return 0;
        }
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += n + 1;
    }
    return 1;
}

/* uid_t/gid_t on Linux are 32-bit; (uid_t)-1 means "no change" to the kernel, never an id. */
static int check_number(const char *v, size_t len, const char *what, struct ly_error *err)
{
    char e[ESC_MAX * 4 + 8];
    uint64_t n = 0;
    size_t i;

    if (len > 1 && v[0] == '0') {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_NUMBER,
                             "%s '%s' has a leading zero; write it in canonical decimal", what,
                             esc(v, len, e, sizeof(e)));
    }
    for (i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_NUMBER,
                                 "%s '%s' is not a decimal number", what,
                                 esc(v, len, e, sizeof(e)));
        }
        if (i >= 10) {
            break;
        }
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (i < len || n > 4294967294u) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_RANGE,
                             "%s '%s' is out of range (0 to 4294967294)", what,
                             esc(v, len, e, sizeof(e)));
    }
    return 0;
}

static int check_name(const char *v, size_t len, const char *what, struct ly_error *err)
{
    char e[ESC_MAX * 4 + 8];
    size_t i;

    if (len > ENTRY_NAME_MAX) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_TOO_LONG,
                             "%s name is %zu bytes long; at most %d are allowed", what, len,
                             ENTRY_NAME_MAX);
    }
    /* ':' separates fields in passwd/group files, so no real name holds one; nor blanks. */
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= 0x20 || c == 0x7f || c == ':') {
            return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_NAME,
                                 "%s name '%s' contains a forbidden byte (blank, control or "
                                 "':') at offset %zu",
                                 what, esc(v, len, e, sizeof(e)), i);
        }
    }
    if (!utf8_valid((const unsigned char *)v, len)) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_NAME,
                             "%s name '%s' is not valid UTF-8", what, esc(v, len, e, sizeof(e)));
    }
    return 0;
}

/*
 * An absolute, canonical path as readlink(/proc/PID/exe) reports it: the kernel never yields
 * "//", "." or ".." segments or a trailing '/', so a selector holding one could never match and
 * is almost certainly a mistake (or an attempt to look like another path).
 */
static int check_path(const char *v, size_t len, struct ly_error *err)
{
    char e[ESC_MAX * 4 + 8];
    size_t i;
    size_t seg;

    if (v[0] != '/') {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_PATH_RELATIVE,
                             "path '%s' is relative; an executable path must start with '/'",
                             esc(v, len, e, sizeof(e)));
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_PATH_CHAR,
                                 "path '%s' contains a control byte at offset %zu",
                                 esc(v, len, e, sizeof(e)), i);
        }
    }
    if (!utf8_valid((const unsigned char *)v, len)) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_PATH_CHAR,
                             "path '%s' is not valid UTF-8", esc(v, len, e, sizeof(e)));
    }
    if (len > 1 && v[len - 1] == '/') {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_PATH_SEGMENT,
                             "path '%s' ends in '/'; it must name a file",
                             esc(v, len, e, sizeof(e)));
    }
    if (len == 1) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_PATH_SEGMENT,
                             "path '/' names a directory, not an executable");
    }
    /* Walk the segments between slashes. */
    seg = 1;
    for (i = 1; i <= len; i++) {
        if (i == len || v[i] == '/') {
            size_t n = i - seg;
            if (n == 0 || (n == 1 && v[seg] == '.') ||
                (n == 2 && v[seg] == '.' && v[seg + 1] == '.')) {
                return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_PATH_SEGMENT,
                                     "path '%s' has an empty, '.' or '..' segment; give the "
                                     "canonical absolute path",
                                     esc(v, len, e, sizeof(e)));
            }
            seg = i + 1;
        }
    }
    return 0;
}

static int check_sha256(const char *v, size_t len, struct ly_error *err)
{
    char e[ESC_MAX * 4 + 8];
    size_t i;

    if (len != 64) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_HEX,
                             "sha256 '%s' has %zu characters; it must be 64 lowercase hex digits",
                             esc(v, len, e, sizeof(e)), len);
    }
    for (i = 0; i < len; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_HEX,
                                 "sha256 '%s' has '%c' at offset %zu; only lowercase hex "
                                 "digits (0-9, a-f) are allowed",
                                 esc(v, len, e, sizeof(e)),
                                 (c > 0x20 && c < 0x7f) ? c : '?', i);
        }
    }
    return 0;
}

int entry_selector_check(enum entry_sel_type type, const char *value, size_t len,
                         struct ly_error *err)
{
    if (value == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_EMPTY, "selector value is missing");
    }
    if (len == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_EMPTY,
                             "unix:%s selector has an empty value", entry_sel_type_name(type));
    }
    if (memchr(value, '\0', len) != NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_NUL,
                             "unix:%s selector value contains a NUL byte",
                             entry_sel_type_name(type));
    }
    if (len > ENTRY_SELECTOR_VALUE_MAX) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_TOO_LONG,
                             "unix:%s selector value is %zu bytes; at most %d are allowed",
                             entry_sel_type_name(type), len, ENTRY_SELECTOR_VALUE_MAX);
    }
    switch (type) {
    case ENTRY_SEL_UID:
        return check_number(value, len, "uid", err);
    case ENTRY_SEL_GID:
        return check_number(value, len, "gid", err);
    case ENTRY_SEL_SUPPL_GID:
        return check_number(value, len, "supplementary gid", err);
    case ENTRY_SEL_USER:
        return check_name(value, len, "user", err);
    case ENTRY_SEL_GROUP:
        return check_name(value, len, "group", err);
    case ENTRY_SEL_SUPPL_GROUP:
        return check_name(value, len, "supplementary group", err);
    case ENTRY_SEL_PATH:
        return check_path(value, len, err);
    case ENTRY_SEL_SHA256:
        return check_sha256(value, len, err);
    }
    return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_TYPE, "unknown selector type %d",
                         (int)type);
}

int entry_selector_parse(const char *s, size_t len, struct entry_selector *out,
                         struct ly_error *err)
{
    char e[ESC_MAX * 4 + 8];
    char e2[ESC_MAX * 4 + 8];
    const char *type;
    const char *colon;
    size_t tlen;
    size_t i;
    int rc;

    memset(out, 0, sizeof(*out));
    if (s == NULL || len == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_EMPTY, "selector is empty");
    }
    if (memchr(s, '\0', len) != NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_NUL,
                             "selector '%s' contains a NUL byte", esc(s, len, e, sizeof(e)));
    }
    if (len < UNIX_PREFIX_LEN || memcmp(s, UNIX_PREFIX, UNIX_PREFIX_LEN) != 0) {
        colon = memchr(s, ':', len);
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_PREFIX,
                             "selector '%s' has unknown prefix '%s'; lanyard attests unix "
                             "workloads (unix:uid:N, unix:gid:N, unix:user:NAME, "
                             "unix:group:NAME, unix:path:/ABS, unix:sha256:HEX)",
                             esc(s, len, e, sizeof(e)),
                             colon != NULL ? esc(s, (size_t)(colon - s), e2, sizeof(e2))
                                           : "(none)");
    }
    type = s + UNIX_PREFIX_LEN;
    colon = memchr(type, ':', len - UNIX_PREFIX_LEN);
    if (colon == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_EMPTY,
                             "selector '%s' has no value; write unix:TYPE:VALUE",
                             esc(s, len, e, sizeof(e)));
    }
    tlen = (size_t)(colon - type);
    for (i = 0; i < N_SEL_TYPES; i++) {
        if (strlen(sel_types[i].name) == tlen && memcmp(sel_types[i].name, type, tlen) == 0) {
            break;
        }
    }
    if (i == N_SEL_TYPES) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_TYPE,
                             "selector type 'unix:%s' is unknown; known types: uid, gid, user, "
                             "group, supplementary_gid, supplementary_group, path, sha256",
                             esc(type, tlen, e, sizeof(e)));
    }
    rc = entry_selector_check(sel_types[i].type, colon + 1, len - (size_t)(colon + 1 - s), err);
    if (rc < 0) {
        return rc;
    }
    out->value = strndup(colon + 1, len - (size_t)(colon + 1 - s));
    if (out->value == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    out->type = sel_types[i].type;
    return 0;
}

int entry_selector_format(const struct entry_selector *sel, struct ly_buf *out,
                          struct ly_error *err)
{
    ly_buf_init(out, ENTRY_SELECTOR_VALUE_MAX + 64);
    return ly_buf_appendf(out, err, "unix:%s:%s", entry_sel_type_name(sel->type), sel->value);
}

int entry_selector_cmp(const struct entry_selector *a, const struct entry_selector *b)
{
    if (a->type != b->type) {
        return a->type < b->type ? -1 : 1;
    }
    return strcmp(a->value, b->value);
}

void entry_selector_clear(struct entry_selector *sel)
{
    if (sel == NULL) {
        return;
    }
    free(sel->value);
    sel->value = NULL;
    sel->type = 0;
}

int entry_matches(const struct entry *e, const struct entry_selector *facts, size_t n_facts)
{
    size_t i;
    size_t k;

    if (e == NULL || e->n_selectors == 0) {
        return 0; /* never a default identity */
    }
    for (i = 0; i < e->n_selectors; i++) {
        int found = 0;
        for (k = 0; k < n_facts && !found; k++) {
            found = entry_selector_cmp(&e->selectors[i], &facts[k]) == 0;
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

struct entry *entry_new(void)
{
    struct entry *e = calloc(1, sizeof(*e));

    if (e != NULL) {
        e->ttl = CA_DEFAULT_SVID_TTL;
    }
    return e;
}

static void free_strv(char **v, size_t n)
{
    size_t i;

    if (v == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void entry_free(struct entry *e)
{
    size_t i;

    if (e == NULL) {
        return;
    }
    for (i = 0; i < e->n_selectors; i++) {
        entry_selector_clear(&e->selectors[i]);
    }
    free(e->selectors);
    free_strv(e->dns, e->n_dns);
    free_strv(e->federates_with, e->n_federates_with);
    free(e->spiffe_id);
    free(e->hint);
    free(e);
}

void entry_list_free(struct entry **list, size_t n)
{
    size_t i;

    if (list == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        entry_free(list[i]);
    }
    free(list);
}

int entry_set_spiffe_id(struct entry *e, const char *id, size_t len, struct ly_error *err)
{
    struct spiffeid *parsed = malloc(sizeof(*parsed));
    char *copy;
    int rc;

    if (parsed == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    rc = spiffeid_parse(id, len, parsed, err);
    if (rc < 0) {
        if (err != NULL) {
            err->reason = ENTRY_R_ID;
        }
        (void)ly_error_wrap(err, "SPIFFE ID");
        goto out;
    }
    if (spiffeid_is_root(parsed)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_ID_ROOT,
                           "SPIFFE ID %s names the trust domain itself; a workload's ID needs a "
                           "path such as %s/mcp/server",
                           parsed->str, parsed->str);
        goto out;
    }
    copy = strdup(parsed->str);
    if (copy == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    free(e->spiffe_id);
    e->spiffe_id = copy;
    rc = 0;
out:
    free(parsed);
    return rc;
}

int entry_set_ttl(struct entry *e, int64_t ttl, struct ly_error *err)
{
    if (ttl < CA_MIN_SVID_TTL || ttl > CA_MAX_SVID_TTL) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_TTL,
                             "TTL %lld s is out of range: it must be between %d s and %d s",
                             (long long)ttl, CA_MIN_SVID_TTL, CA_MAX_SVID_TTL);
    }
    e->ttl = ttl;
    return 0;
}

static int check_hint(const char *hint, size_t len, struct ly_error *err)
{
    size_t i;

    if (len > ENTRY_HINT_MAX) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_HINT_TOO_LONG,
                             "hint is %zu bytes long; at most %d are allowed (WAPI-24)", len,
                             ENTRY_HINT_MAX);
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)hint[i];
        if (c < 0x20 || c == 0x7f) {
            return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_HINT_CHAR,
                                 "hint contains a control byte (0x%02x) at offset %zu", c, i);
        }
    }
    if (!utf8_valid((const unsigned char *)hint, len)) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_HINT_CHAR, "hint is not valid UTF-8");
    }
    return 0;
}

int entry_set_hint(struct entry *e, const char *hint, size_t len, struct ly_error *err)
{
    char *copy;
    int rc = check_hint(hint, len, err);

    if (rc < 0) {
        return rc;
    }
    if (len == 0) {
        free(e->hint);
        e->hint = NULL;
        return 0;
    }
    copy = strndup(hint, len);
    if (copy == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    free(e->hint);
    e->hint = copy;
    return 0;
}

int entry_add_selector(struct entry *e, const char *sel, size_t len, struct ly_error *err)
{
    struct entry_selector s;
    struct entry_selector *grown;
    char x[ESC_MAX * 4 + 8];
    size_t i;
    int rc;

    if (e->n_selectors >= ENTRY_MAX_SELECTORS) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_TOO_MANY_SELECTORS,
                             "an entry has at most %d selectors", ENTRY_MAX_SELECTORS);
    }
    rc = entry_selector_parse(sel, len, &s, err);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < e->n_selectors; i++) {
        if (entry_selector_cmp(&e->selectors[i], &s) == 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_DUPLICATE,
                               "selector '%s' is given twice", esc(sel, len, x, sizeof(x)));
            goto err;
        }
    }
    grown = realloc(e->selectors, (e->n_selectors + 1) * sizeof(*grown));
    if (grown == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    e->selectors = grown;
    e->selectors[e->n_selectors++] = s;
    return 0;
err:
    entry_selector_clear(&s);
    return rc;
}

/* RFC 1035 §2.3.1 preferred syntax (LDH labels, RFC 1123 §2.1 allows a leading digit). */
static int check_dns(const char *name, size_t len, struct ly_error *err)
{
    char x[ESC_MAX * 4 + 8];
    size_t i;
    size_t label = 0;

    if (len == 0 || len > ENTRY_DNS_NAME_MAX) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_DNS,
                             "DNS name '%s' must be 1 to %d bytes long",
                             esc(name, len, x, sizeof(x)), ENTRY_DNS_NAME_MAX);
    }
    for (i = 0; i <= len; i++) {
        char c = i < len ? name[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63) {
                return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_DNS,
                                     "DNS name '%s' has an empty or over-long (>63) label",
                                     esc(name, len, x, sizeof(x)));
            }
            if (name[i - 1] == '-' || name[i - label] == '-') {
                return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_DNS,
                                     "DNS name '%s' has a label that starts or ends with '-'",
                                     esc(name, len, x, sizeof(x)));
            }
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-')) {
            return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_DNS,
                                 "DNS name '%s' has a byte outside letters, digits, '-' and '.' "
                                 "at offset %zu",
                                 esc(name, len, x, sizeof(x)), i);
        }
        label++;
    }
    return 0;
}

int entry_add_dns(struct entry *e, const char *name, size_t len, struct ly_error *err)
{
    char x[ESC_MAX * 4 + 8];
    char **grown;
    char *copy;
    size_t i;
    int rc;

    if (e->n_dns >= ENTRY_MAX_DNS) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_TOO_MANY_DNS,
                             "an entry has at most %d DNS names", ENTRY_MAX_DNS);
    }
    rc = check_dns(name, len, err);
    if (rc < 0) {
        return rc;
    }
    copy = strndup(name, len);
    if (copy == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    for (i = 0; i < len; i++) {
        if (copy[i] >= 'A' && copy[i] <= 'Z') {
            copy[i] = (char)(copy[i] - 'A' + 'a'); /* DNS compares case-insensitively */
        }
    }
    for (i = 0; i < e->n_dns; i++) {
        if (strcmp(e->dns[i], copy) == 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_DNS_DUPLICATE,
                               "DNS name '%s' is given twice", esc(name, len, x, sizeof(x)));
            goto err;
        }
    }
    grown = realloc(e->dns, (e->n_dns + 1) * sizeof(*grown));
    if (grown == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    e->dns = grown;
    e->dns[e->n_dns++] = copy;
    return 0;
err:
    free(copy);
    return rc;
}

int entry_add_federates_with(struct entry *e, const char *td, size_t len, struct ly_error *err)
{
    char name[SPIFFEID_TD_MAX_LEN + 1];
    char **grown;
    char *copy;
    size_t i;
    int rc;

    if (e->n_federates_with >= ENTRY_MAX_FEDERATES) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_FEDERATES,
                             "an entry federates with at most %d trust domains",
                             ENTRY_MAX_FEDERATES);
    }
    rc = spiffeid_parse_trust_domain(td, len, name, sizeof(name), err);
    if (rc < 0) {
        if (err != NULL) {
            err->reason = ENTRY_R_FEDERATES;
        }
        (void)ly_error_wrap(err, "federated trust domain");
        return rc;
    }
    for (i = 0; i < e->n_federates_with; i++) {
        if (strcmp(e->federates_with[i], name) == 0) {
            return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_FEDERATES,
                                 "federated trust domain '%s' is given twice", name);
        }
    }
    copy = strdup(name);
    if (copy == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    grown = realloc(e->federates_with, (e->n_federates_with + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(copy);
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    e->federates_with = grown;
    e->federates_with[e->n_federates_with++] = copy;
    return 0;
}

static int sel_qsort_cmp(const void *a, const void *b)
{
    return entry_selector_cmp(a, b);
}

int entry_validate(struct entry *e, const char *trust_domain, struct ly_error *err)
{
    struct spiffeid *id = NULL;
    size_t i;
    int rc;

    if (e == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "entry_validate: NULL entry");
    }
    if (e->spiffe_id == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_ID, "an entry needs a SPIFFE ID");
    }
    if (e->n_selectors == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_NO_SELECTORS,
                             "an entry needs at least one selector (e.g. unix:uid:1000)");
    }
    if (e->n_selectors > ENTRY_MAX_SELECTORS) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_TOO_MANY_SELECTORS,
                             "an entry has at most %d selectors", ENTRY_MAX_SELECTORS);
    }
    if (e->n_dns > ENTRY_MAX_DNS) {
        return ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_TOO_MANY_DNS,
                             "an entry has at most %d DNS names", ENTRY_MAX_DNS);
    }
    id = malloc(sizeof(*id));
    if (id == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    rc = spiffeid_parse(e->spiffe_id, strlen(e->spiffe_id), id, err);
    if (rc < 0) {
        if (err != NULL) {
            err->reason = ENTRY_R_ID;
        }
        goto err;
    }
    if (spiffeid_is_root(id)) {
        rc = ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_ID_ROOT,
                           "SPIFFE ID %s names the trust domain itself", id->str);
        goto err;
    }
    if (trust_domain != NULL && !spiffeid_member_of(id, trust_domain)) {
        rc = ly_error_setx(err, LY_ERR_USAGE, ENTRY_R_TRUST_DOMAIN,
                           "SPIFFE ID %s is not in trust domain %s; this broker registers only "
                           "its own trust domain's workloads",
                           id->str, trust_domain);
        goto err;
    }
    rc = entry_set_ttl(e, e->ttl, err);
    if (rc < 0) {
        goto err;
    }
    for (i = 0; i < e->n_selectors; i++) {
        rc = entry_selector_check(e->selectors[i].type, e->selectors[i].value,
                                  e->selectors[i].value ? strlen(e->selectors[i].value) : 0, err);
        if (rc < 0) {
            goto err;
        }
    }
    qsort(e->selectors, e->n_selectors, sizeof(e->selectors[0]), sel_qsort_cmp);
    for (i = 1; i < e->n_selectors; i++) {
        if (entry_selector_cmp(&e->selectors[i - 1], &e->selectors[i]) == 0) {
            rc = ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_SEL_DUPLICATE,
                               "selector unix:%s:%.64s is given twice",
                               entry_sel_type_name(e->selectors[i].type), e->selectors[i].value);
            goto err;
        }
    }
    for (i = 0; i < e->n_dns; i++) {
        rc = check_dns(e->dns[i], strlen(e->dns[i]), err);
        if (rc < 0) {
            goto err;
        }
    }
    if (e->hint != NULL) {
        rc = check_hint(e->hint, strlen(e->hint), err);
        if (rc < 0) {
            goto err;
        }
    }
    if (e->n_federates_with > ENTRY_MAX_FEDERATES) {
        rc = ly_error_setx(err, LY_ERR_PARSE, ENTRY_R_FEDERATES,
                           "an entry federates with at most %d trust domains",
                           ENTRY_MAX_FEDERATES);
        goto err;
    }
    /* A workload always holds its own trust domain's bundle; naming it again is a mistake. */
    for (i = 0; trust_domain != NULL && i < e->n_federates_with; i++) {
        if (strcmp(e->federates_with[i], trust_domain) == 0) {
            rc = ly_error_setx(err, LY_ERR_USAGE, ENTRY_R_FEDERATES,
                               "cannot federate with %s: it is this broker's own trust domain",
                               trust_domain);
            goto err;
        }
    }
    rc = 0;
err:
    free(id);
    return rc;
}

int entry_id_valid(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len != ENTRY_ID_HEX_LEN) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

int entry_selector_set_key(const struct entry *e, char out[65], struct ly_error *err)
{
    static const char hx[] = "0123456789abcdef";
    wc_Sha256 sha;
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    size_t i;
    int rc = 0;

    if (wc_InitSha256(&sha) != 0) {
        return ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 init failed");
    }
    /* Each selector as "type:value\0": the NUL cannot occur inside a value, so no ambiguity. */
    for (i = 0; i < e->n_selectors && rc == 0; i++) {
        const char *t = entry_sel_type_name(e->selectors[i].type);
        size_t vlen = strlen(e->selectors[i].value);
        if (vlen > ENTRY_SELECTOR_VALUE_MAX ||
            wc_Sha256Update(&sha, (const byte *)t, (word32)strlen(t)) != 0 ||
            wc_Sha256Update(&sha, (const byte *)":", 1) != 0 ||
            wc_Sha256Update(&sha, (const byte *)e->selectors[i].value, (word32)vlen) != 0 ||
            wc_Sha256Update(&sha, (const byte *)"", 1) != 0) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 update failed");
        }
    }
    if (rc == 0 && wc_Sha256Final(&sha, digest) != 0) {
        rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "SHA-256 final failed");
    }
    wc_Sha256Free(&sha);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < sizeof(digest); i++) {
        out[2 * i] = hx[digest[i] >> 4];
        out[2 * i + 1] = hx[digest[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

static int json_put(json_t *obj, const char *key, json_t *v)
{
    /* json_object_set_new takes v even on failure, so nothing leaks. */
    return v == NULL || json_object_set_new(obj, key, v) != 0 ? -1 : 0;
}

static json_t *json_strv(char *const *v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

int entry_to_json_value(const struct entry *e, json_t **out, struct ly_error *err)
{
    json_t *obj = json_object();
    json_t *sels = json_array();
    char ts[32];
    size_t i;
    int rc;

    *out = NULL;
    if (obj == NULL || sels == NULL) {
        json_decref(sels);
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    for (i = 0; i < e->n_selectors; i++) {
        struct ly_buf s;
        if (entry_selector_format(&e->selectors[i], &s, err) < 0) {
            json_decref(sels);
            rc = err != NULL ? err->code : LY_ERR_NOMEM;
            goto err;
        }
        rc = json_array_append_new(sels, json_stringn((const char *)s.data, s.len));
        ly_buf_free(&s);
        if (rc != 0) {
            json_decref(sels);
            rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory (or a non-UTF-8 value)");
            goto err;
        }
    }
    rc = ly_time_format_rfc3339(e->created_at, ts, sizeof(ts), err);
    if (rc < 0) {
        json_decref(sels);
        goto err;
    }
    if (json_put(obj, "id", json_string(e->id)) < 0 ||
        json_put(obj, "spiffe_id", json_string(e->spiffe_id ? e->spiffe_id : "")) < 0 ||
        json_put(obj, "selectors", sels) < 0 ||
        json_put(obj, "ttl", json_integer((json_int_t)e->ttl)) < 0 ||
        json_put(obj, "dns", json_strv(e->dns, e->n_dns)) < 0 ||
        json_put(obj, "federates_with", json_strv(e->federates_with, e->n_federates_with)) < 0 ||
        json_put(obj, "hint", e->hint ? json_string(e->hint) : json_null()) < 0 ||
        json_put(obj, "created_at", json_string(ts)) < 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
        goto err;
    }
    *out = obj;
    return 0;
err:
    json_decref(obj);
    return rc;
}

int entry_to_json(const struct entry *e, struct ly_buf *out, struct ly_error *err)
{
    json_t *obj = NULL;
    char *text;
    int rc = entry_to_json_value(e, &obj, err);

    if (rc < 0) {
        return rc;
    }
    text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (text == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory building JSON");
    }
    rc = ly_buf_append_str(out, text, err);
    free(text);
    return rc;
}

/* Append "label: value\n" with the value escaped for a terminal. */
static int text_line(struct ly_buf *out, const char *label, const char *v, struct ly_error *err)
{
    char x[ENTRY_SELECTOR_VALUE_MAX * 4 + 16];

    return ly_buf_appendf(out, err, "%s: %s\n", label,
                          ly_text_escape(v, strlen(v), ENTRY_SELECTOR_VALUE_MAX + 64, x,
                                         sizeof(x)));
}

int entry_to_text(const struct entry *e, struct ly_buf *out, struct ly_error *err)
{
    char ts[32];
    size_t i;
    int rc;

    rc = ly_time_format_rfc3339(e->created_at, ts, sizeof(ts), err);
    if (rc == 0) {
        rc = ly_buf_appendf(out, err, "id: %s\n", e->id);
    }
    if (rc == 0) {
        rc = text_line(out, "spiffe_id", e->spiffe_id ? e->spiffe_id : "", err);
    }
    for (i = 0; rc == 0 && i < e->n_selectors; i++) {
        struct ly_buf s;
        rc = entry_selector_format(&e->selectors[i], &s, err);
        if (rc == 0) {
            rc = text_line(out, "selector", (const char *)s.data, err);
            ly_buf_free(&s);
        }
    }
    if (rc == 0) {
        rc = ly_buf_appendf(out, err, "ttl: %lld\n", (long long)e->ttl);
    }
    for (i = 0; rc == 0 && i < e->n_dns; i++) {
        rc = text_line(out, "dns", e->dns[i], err);
    }
    for (i = 0; rc == 0 && i < e->n_federates_with; i++) {
        rc = text_line(out, "federates_with", e->federates_with[i], err);
    }
    if (rc == 0 && e->hint != NULL) {
        rc = text_line(out, "hint", e->hint, err);
    }
    if (rc == 0) {
        rc = ly_buf_appendf(out, err, "created_at: %s\n", ts);
    }
    return rc;
}
