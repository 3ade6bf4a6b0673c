/*
 * consent: parsing and validation of consent records and scopes, and the policy decision over
 * an immutable in-memory index. The decision path allocates nothing and starts at "deny"; only
 * a record that passes every check turns it into "allow". No I/O, no SQL, no secrets here.
 */
#include "consent.h"

#include "../common/ly_guard.h"
#include "../common/ly_text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scopes, windows, users -------------------------------------------------------------- */

static int name_byte_ok(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.' || ch == '/';
}

static int scheme_byte_ok(unsigned char ch, int first)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
        return 1;
    }
    return !first && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.');
}

int consent_scope_parse(const char *s, size_t len, struct consent_scope *out,
                        struct ly_error *err)
{
    static const struct {
        const char *prefix;
        size_t plen;
        enum consent_scope_kind kind;
    } kinds[] = {
        {"tools:", 6, CONSENT_SCOPE_TOOLS},
        {"resources:", 10, CONSENT_SCOPE_RESOURCES},
        {"prompts:", 8, CONSENT_SCOPE_PROMPTS},
    };
    const char *v = NULL;
    size_t vlen = 0;
    size_t i;
    enum consent_scope_kind kind = CONSENT_SCOPE_ALL;
    char shown[96];

    if (s == NULL || len == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_EMPTY, "empty scope");
    }
    if (memchr(s, '\0', len) != NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_NAME,
                             "scope contains a NUL byte");
    }
    if (len == 1 && s[0] == '*') {
        out->kind = CONSENT_SCOPE_ALL;
        out->value = NULL;
        out->value_len = 0;
        return 0;
    }
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (len >= kinds[i].plen && memcmp(s, kinds[i].prefix, kinds[i].plen) == 0) {
            kind = kinds[i].kind;
            v = s + kinds[i].plen;
            vlen = len - kinds[i].plen;
            break;
        }
    }
    if (v == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_KIND,
                             "scope '%s' is not tools:NAME, resources:URI_PREFIX, prompts:NAME "
                             "or '*'",
                             ly_text_escape(s, len, 64, shown, sizeof(shown)));
    }
    if (vlen == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_NAME,
                             "scope '%s' has an empty name", ly_text_escape(s, len, 64, shown,
                                                                                 sizeof(shown)));
    }
    if (memchr(v, '*', vlen) != NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_WILDCARD,
                             "scope '%s': wildcards are not supported; grant '*' on its own to "
                             "allow everything",
                             ly_text_escape(s, len, 64, shown, sizeof(shown)));
    }
    if (kind == CONSENT_SCOPE_RESOURCES) {
        size_t k = 0;
        if (vlen > CONSENT_URI_PREFIX_MAX) {
            return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_NAME,
                                 "resource prefix is longer than %d bytes",
                                 CONSENT_URI_PREFIX_MAX);
        }
        for (i = 0; i < vlen; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (ch <= 0x20 || ch >= 0x7f) {
                return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_NAME,
                                     "resource prefix '%s' has a space, control or non-ASCII "
                                     "byte at offset %zu",
                                     ly_text_escape(v, vlen, 64, shown, sizeof(shown)), i);
            }
        }
        /* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'. */
        while (k < vlen && scheme_byte_ok((unsigned char)v[k], k == 0)) {
            k++;
        }
        if (k == 0 || k >= vlen || v[k] != ':') {
            return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_NAME,
                                 "resource prefix '%s' must start with a URI scheme such as "
                                 "file:// or https://",
                                 ly_text_escape(v, vlen, 64, shown, sizeof(shown)));
        }
    } else {
        if (vlen > CONSENT_NAME_MAX) {
            return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_NAME,
                                 "%s name is longer than %d bytes",
                                 kind == CONSENT_SCOPE_TOOLS ? "tool" : "prompt",
                                 CONSENT_NAME_MAX);
        }
        for (i = 0; i < vlen; i++) {
            if (!name_byte_ok((unsigned char)v[i])) {
                return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_SCOPE_NAME,
                                     "%s name '%s' has a byte outside [A-Za-z0-9_.-/] at offset "
                                     "%zu",
                                     kind == CONSENT_SCOPE_TOOLS ? "tool" : "prompt",
                                     ly_text_escape(v, vlen, 64, shown, sizeof(shown)), i);
            }
        }
    }
    out->kind = kind;
    out->value = v;
    out->value_len = vlen;
    return 0;
}

static int two_digits(const char *p, int *v)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') {
        return -1;
    }
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return 0;
}

int consent_window_parse(const char *s, int *start_min, int *end_min, struct ly_error *err)
{
    int h1;
    int m1;
    int h2;
    int m2;
    char shown[64];

    if (s == NULL || strlen(s) != 11 || s[2] != ':' || s[5] != '-' || s[8] != ':' ||
        two_digits(s, &h1) < 0 || two_digits(s + 3, &m1) < 0 || two_digits(s + 6, &h2) < 0 ||
        two_digits(s + 9, &m2) < 0) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_WINDOW,
                             "time window '%s' is not HH:MM-HH:MM (UTC, 24-hour)",
                             s == NULL ? "" : ly_text_escape(s, strlen(s), 32, shown,
                                                             sizeof(shown)));
    }
    if (h1 > 23 || h2 > 23 || m1 > 59 || m2 > 59) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_WINDOW,
                             "time window '%s' has an hour above 23 or a minute above 59", s);
    }
    if (h1 * 60 + m1 == h2 * 60 + m2) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_WINDOW,
                             "time window '%s' is empty (start equals end); omit --window for "
                             "no time limit",
                             s);
    }
    *start_min = h1 * 60 + m1;
    *end_min = h2 * 60 + m2;
    return 0;
}

int consent_user_validate(const char *user, struct ly_error *err)
{
    size_t n;
    size_t i;

    if (user == NULL || user[0] == '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_USER,
                             "empty user; use --no-user for a workload-only grant");
    }
    n = strlen(user);
    if (n > CONSENT_USER_MAX) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_USER,
                             "user name is longer than %d bytes", CONSENT_USER_MAX);
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)user[i];
        if (ch < 0x20 || ch == 0x7f) {
            return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_USER,
                                 "user name has a control byte at offset %zu", i);
        }
    }
    return 0;
}

/* ---- records ----------------------------------------------------------------------------- */

struct consent *consent_new(void)
{
    return calloc(1, sizeof(struct consent));
}

static void free_strv(char **v, size_t n)
{
    size_t i;

    for (i = 0; v != NULL && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void consent_free(struct consent *c)
{
    if (c == NULL) {
        return;
    }
    free(c->client_id);
    c->client_id = NULL;
    free_strv(c->scopes, c->n_scopes);
    c->scopes = NULL;
    free_strv(c->source_tds, c->n_source_tds);
    c->source_tds = NULL;
    free(c);
}

void consent_list_free(struct consent **v, size_t n)
{
    size_t i;

    if (v == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        consent_free(v[i]);
    }
    free(v);
}

int consent_set_user(struct consent *c, const char *user, struct ly_error *err)
{
    if (user == NULL) {
        c->no_user = 1;
        c->user[0] = '\0';
        return 0;
    }
    LY_GUARD(consent_user_validate(user, err));
    c->no_user = 0;
    memcpy(c->user, user, strlen(user) + 1);
    return 0;
}

int consent_set_client(struct consent *c, const char *client_id, struct ly_error *err)
{
    struct spiffeid id;
    char *copy;

    if (client_id == NULL ||
        spiffeid_parse(client_id, strlen(client_id), &id, err) < 0) {
        if (err != NULL) {
            err->reason = CONSENT_R_BAD_CLIENT;
        }
        return ly_error_wrap(err, "client SPIFFE ID");
    }
    if (spiffeid_is_root(&id)) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_CLIENT,
                             "client %s names a trust domain, not a workload", id.str);
    }
    copy = strdup(id.str);
    if (copy == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    free(c->client_id);
    c->client_id = copy;
    return 0;
}

/* Append a copy of s to (*v, *n) unless present; cap refused with reason. */
static int push_unique(char ***v, size_t *n, const char *s, size_t cap, int reason,
                       const char *what, struct ly_error *err)
{
    char **grown;
    size_t i;

    for (i = 0; i < *n; i++) {
        if (strcmp((*v)[i], s) == 0) {
            return 0;
        }
    }
    if (*n >= cap) {
        return ly_error_setx(err, LY_ERR_PARSE, reason, "more than %zu %s", cap, what);
    }
    grown = realloc(*v, (*n + 1) * sizeof(**v));
    if (grown == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    *v = grown;
    grown[*n] = strdup(s);
    if (grown[*n] == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    (*n)++;
    return 0;
}

int consent_add_scope(struct consent *c, const char *scope, struct ly_error *err)
{
    struct consent_scope sc;

    LY_GUARD(consent_scope_parse(scope, scope == NULL ? 0 : strlen(scope), &sc, err));
    return push_unique(&c->scopes, &c->n_scopes, scope, CONSENT_MAX_SCOPES,
                       CONSENT_R_TOO_MANY_SCOPES, "scopes", err);
}

int consent_add_source_td(struct consent *c, const char *td, struct ly_error *err)
{
    char name[SPIFFEID_TD_MAX_LEN + 1];

    if (td == NULL || spiffeid_parse_trust_domain(td, strlen(td), name, sizeof(name), err) < 0) {
        if (err != NULL) {
            err->reason = CONSENT_R_BAD_TD;
        }
        return ly_error_wrap(err, "source trust domain");
    }
    return push_unique(&c->source_tds, &c->n_source_tds, name, CONSENT_MAX_SOURCE_TDS,
                       CONSENT_R_BAD_TD, "source trust domains", err);
}

int consent_set_window(struct consent *c, const char *window, struct ly_error *err)
{
    LY_GUARD(consent_window_parse(window, &c->window_start, &c->window_end, err));
    c->has_window = 1;
    return 0;
}

int consent_validate(const struct consent *c, struct ly_error *err)
{
    size_t i;
    struct consent_scope sc;

    if (c->client_id == NULL) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_CLIENT, "no client SPIFFE ID");
    }
    if (!c->no_user) {
        LY_GUARD(consent_user_validate(c->user, err));
    } else if (c->user[0] != '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_USER,
                             "a workload-only grant names no user");
    }
    if (c->n_scopes == 0) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_NO_SCOPES,
                             "a consent needs at least one scope");
    }
    if (c->n_scopes > CONSENT_MAX_SCOPES) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_TOO_MANY_SCOPES, "more than %d scopes",
                             CONSENT_MAX_SCOPES);
    }
    for (i = 0; i < c->n_scopes; i++) {
        LY_GUARD(consent_scope_parse(c->scopes[i], strlen(c->scopes[i]), &sc, err));
    }
    if (c->expires_at != 0 && c->expires_at <= c->granted_at) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_EXPIRY,
                             "expiry is not after the grant time");
    }
    if (c->has_window && (c->window_start < 0 || c->window_start >= 1440 || c->window_end < 0 ||
                          c->window_end >= 1440 || c->window_start == c->window_end)) {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_WINDOW, "invalid time window");
    }
    if (c->granted_by[0] == '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_USER, "granted_by is empty");
    }
    return 0;
}

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int consent_to_json(const struct consent *c, struct ly_buf *out, struct ly_error *err)
{
    json_t *o = json_object();
    char win[16];
    char *text = NULL;
    int rc = 0;

    if (o == NULL ||
        json_object_set_new(o, "id", json_string(c->id)) != 0 ||
        json_object_set_new(o, "user", c->no_user ? json_null() : json_string(c->user)) != 0 ||
        json_object_set_new(o, "no_user", json_boolean(c->no_user)) != 0 ||
        json_object_set_new(o, "client_id", json_string(c->client_id)) != 0 ||
        json_object_set_new(o, "scopes", strv_json(c->scopes, c->n_scopes)) != 0 ||
        json_object_set_new(o, "source_trust_domains",
                            strv_json(c->source_tds, c->n_source_tds)) != 0 ||
        json_object_set_new(o, "granted_at", json_integer(c->granted_at)) != 0 ||
        json_object_set_new(o, "expires_at", json_integer(c->expires_at)) != 0 ||
        json_object_set_new(o, "granted_by", json_string(c->granted_by)) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory (or invalid UTF-8 in a field)");
        goto out;
    }
    if (c->has_window) {
        int n = snprintf(win, sizeof(win), "%02d:%02d-%02d:%02d", c->window_start / 60,
                         c->window_start % 60, c->window_end / 60, c->window_end % 60);
        if (n < 0 || (size_t)n >= sizeof(win) ||
            json_object_set_new(o, "window", json_string(win)) != 0) {
            rc = ly_error_setx(err, LY_ERR_INTERNAL, 0, "formatting the time window");
            goto out;
        }
    } else if (json_object_set_new(o, "window", json_null()) != 0) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    text = json_dumps(o, JSON_COMPACT);
    if (text == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    rc = ly_buf_append_str(out, text, err);
out:
    free(text);
    json_decref(o);
    return rc;
}

/* ---- the index --------------------------------------------------------------------------- */

/* A scope name or prefix with its hash (names only), pointing into its record's string block. */
struct ci_name {
    uint64_t h;
    const char *s;
    size_t len;
};

struct ci_rec {
    char id[CONSENT_ID_HEX_LEN + 1];
    int64_t expires_at;
    int has_window;
    int window_start;
    int window_end;
    int all;                 /* "*" granted */
    struct ci_name *names;   /* tools, then prompts, then resources (one allocation) */
    size_t n_tools;
    size_t n_prompts;
    size_t n_res;
    char *block;             /* owned copy of the scope values and trust domains */
    const char **tds;        /* into block; n_tds == 0: any source */
    size_t *td_lens;
    size_t n_tds;
};

/* All records of one (user, client) key; records [first, first + count) of the index. */
struct ci_group {
    uint64_t h;
    const char *user; /* into the group's own block */
    size_t ulen;
    const char *client;
    size_t clen;
    char *block;
    size_t first;
    size_t count;
};

struct consent_index {
    struct ci_rec *recs;
    size_t n;
    struct ci_group *groups;
    size_t n_groups;
    uint32_t *slots; /* open addressing, linear probing: group index + 1, 0 = empty */
    size_t mask;
};

/* FNV-1a, 64-bit, continued from h. */
static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#define FNV_BASIS 14695981039346656037ULL

/* The key hash: user, a 0 separator (never inside a user or an ID), client ID. */
static uint64_t key_hash(const char *user, size_t ulen, const char *client, size_t clen)
{
    uint64_t h = fnv(FNV_BASIS, user, ulen);

    h ^= 0;
    h *= 1099511628211ULL;
    return fnv(h, client, clen);
}

/* The group slot for a key, or the empty slot where it would go. */
static size_t probe(const struct consent_index *x, uint64_t h, const char *user, size_t ulen,
                    const char *client, size_t clen)
{
    size_t i = (size_t)h & x->mask;

    while (x->slots[i] != 0) {
        const struct ci_group *g = &x->groups[x->slots[i] - 1];
        if (g->h == h && g->ulen == ulen && g->clen == clen && memcmp(g->user, user, ulen) == 0 &&
            memcmp(g->client, client, clen) == 0) {
            return i;
        }
        i = (i + 1) & x->mask;
    }
    return i;
}

void consent_index_free(struct consent_index *idx)
{
    size_t i;

    if (idx == NULL) {
        return;
    }
    for (i = 0; idx->recs != NULL && i < idx->n; i++) {
        free(idx->recs[i].names);
        free(idx->recs[i].block);
        free(idx->recs[i].tds);
        free(idx->recs[i].td_lens);
    }
    for (i = 0; idx->groups != NULL && i < idx->n_groups; i++) {
        free(idx->groups[i].block);
    }
    free(idx->recs);
    free(idx->groups);
    free(idx->slots);
    free(idx);
}

size_t consent_index_count(const struct consent_index *idx)
{
    return idx == NULL ? 0 : idx->n;
}

/* Compile one record's scopes and trust domains into r (block and arrays owned by r). */
static int compile_rec(const struct consent *c, struct ci_rec *r, struct ly_error *err)
{
    size_t total = 0;
    size_t i;
    size_t k;
    size_t pos = 0;
    size_t at[3] = {0, 0, 0};
    struct consent_scope sc;

    memcpy(r->id, c->id, sizeof(r->id));
    r->expires_at = c->expires_at;
    r->has_window = c->has_window;
    r->window_start = c->window_start;
    r->window_end = c->window_end;
    for (i = 0; i < c->n_scopes; i++) {
        LY_GUARD(consent_scope_parse(c->scopes[i], strlen(c->scopes[i]), &sc, err));
        total += sc.value_len + 1;
        if (sc.kind == CONSENT_SCOPE_TOOLS) {
            r->n_tools++;
        } else if (sc.kind == CONSENT_SCOPE_PROMPTS) {
            r->n_prompts++;
        } else if (sc.kind == CONSENT_SCOPE_RESOURCES) {
            r->n_res++;
        } else {
            r->all = 1;
        }
    }
    for (i = 0; i < c->n_source_tds; i++) {
        total += strlen(c->source_tds[i]) + 1;
    }
    r->block = malloc(total + 1);
    r->names = calloc(r->n_tools + r->n_prompts + r->n_res + 1, sizeof(*r->names));
    r->tds = calloc(c->n_source_tds + 1, sizeof(*r->tds));
    r->td_lens = calloc(c->n_source_tds + 1, sizeof(*r->td_lens));
    if (r->block == NULL || r->names == NULL || r->tds == NULL || r->td_lens == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    at[1] = r->n_tools;
    at[2] = r->n_tools + r->n_prompts;
    for (i = 0; i < c->n_scopes; i++) {
        struct ci_name *nm;
        /* Parsed above already; cannot fail now. */
        LY_GUARD(consent_scope_parse(c->scopes[i], strlen(c->scopes[i]), &sc, err));
        if (sc.kind == CONSENT_SCOPE_ALL) {
            continue;
        }
        k = sc.kind == CONSENT_SCOPE_TOOLS ? 0 : sc.kind == CONSENT_SCOPE_PROMPTS ? 1 : 2;
        nm = &r->names[at[k]++];
        memcpy(r->block + pos, sc.value, sc.value_len);
        r->block[pos + sc.value_len] = '\0';
        nm->s = r->block + pos;
        nm->len = sc.value_len;
        nm->h = fnv(FNV_BASIS, sc.value, sc.value_len);
        pos += sc.value_len + 1;
    }
    for (i = 0; i < c->n_source_tds; i++) {
        size_t n = strlen(c->source_tds[i]);
        memcpy(r->block + pos, c->source_tds[i], n + 1);
        r->tds[i] = r->block + pos;
        r->td_lens[i] = n;
        pos += n + 1;
    }
    r->n_tds = c->n_source_tds;
    return 0;
}

int consent_index_build(struct consent *const *recs, size_t n, struct consent_index **out,
                        struct ly_error *err)
{
    struct consent_index *x = calloc(1, sizeof(*x));
    size_t *gidx = NULL;
    size_t *fill = NULL;
    size_t cap = 16;
    size_t i;
    int rc = 0;

    *out = NULL;
    if (x == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    if (n > (size_t)UINT32_MAX / 4) {
        rc = ly_error_setx(err, LY_ERR_USAGE, 0, "too many consent records (%zu)", n);
        goto err;
    }
    /* At most half full, so probes stay short. */
    while (cap < 2 * n + 2) {
        cap *= 2;
    }
    x->mask = cap - 1;
    x->slots = calloc(cap, sizeof(*x->slots));
    x->groups = calloc(n + 1, sizeof(*x->groups));
    x->recs = calloc(n + 1, sizeof(*x->recs));
    gidx = calloc(n + 1, sizeof(*gidx));
    if (x->slots == NULL || x->groups == NULL || x->recs == NULL || gidx == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    /* Pass 1: one group per distinct (user, client). */
    for (i = 0; i < n; i++) {
        const struct consent *c = recs[i];
        size_t ulen = strlen(c->user);
        size_t clen;
        uint64_t h;
        size_t slot;
        if (c->client_id == NULL) {
            rc = ly_error_setx(err, LY_ERR_PARSE, CONSENT_R_BAD_CLIENT,
                               "consent %s has no client", c->id);
            goto err;
        }
        clen = strlen(c->client_id);
        h = key_hash(c->user, ulen, c->client_id, clen);
        slot = probe(x, h, c->user, ulen, c->client_id, clen);
        if (x->slots[slot] == 0) {
            struct ci_group *g = &x->groups[x->n_groups];
            g->block = malloc(ulen + clen + 2);
            if (g->block == NULL) {
                rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
                goto err;
            }
            memcpy(g->block, c->user, ulen + 1);
            memcpy(g->block + ulen + 1, c->client_id, clen + 1);
            g->user = g->block;
            g->ulen = ulen;
            g->client = g->block + ulen + 1;
            g->clen = clen;
            g->h = h;
            x->n_groups++;
            x->slots[slot] = (uint32_t)x->n_groups;
        }
        gidx[i] = x->slots[slot] - 1;
        x->groups[gidx[i]].count++;
    }
    /* Pass 2: lay the records out group by group. */
    fill = calloc(x->n_groups + 1, sizeof(*fill));
    if (fill == NULL) {
        rc = ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        goto err;
    }
    for (i = 1; i < x->n_groups; i++) {
        x->groups[i].first = x->groups[i - 1].first + x->groups[i - 1].count;
    }
    x->n = n;
    for (i = 0; i < n; i++) {
        size_t at = x->groups[gidx[i]].first + fill[gidx[i]]++;
        rc = compile_rec(recs[i], &x->recs[at], err);
        if (rc < 0) {
            goto err;
        }
    }
    free(gidx);
    free(fill);
    *out = x;
    return 0;
err:
    free(gidx);
    free(fill);
    consent_index_free(x);
    return rc;
}

/* ---- the decision ------------------------------------------------------------------------ */

static int covers(const struct ci_rec *r, enum consent_scope_kind kind, uint64_t nh,
                  const char *name, size_t len)
{
    const struct ci_name *v;
    size_t n;
    size_t i;

    if (r->all) {
        return 1;
    }
    if (kind == CONSENT_SCOPE_RESOURCES) {
        /* A plain byte prefix: no path or URI normalisation (documented in consent.h). */
        v = r->names + r->n_tools + r->n_prompts;
        for (i = 0; i < r->n_res; i++) {
            if (v[i].len <= len && memcmp(v[i].s, name, v[i].len) == 0) {
                return 1;
            }
        }
        return 0;
    }
    v = kind == CONSENT_SCOPE_TOOLS ? r->names : r->names + r->n_tools;
    n = kind == CONSENT_SCOPE_TOOLS ? r->n_tools : r->n_prompts;
    for (i = 0; i < n; i++) {
        if (v[i].h == nh && v[i].len == len && memcmp(v[i].s, name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static int in_window(const struct ci_rec *r, int64_t now)
{
    int64_t sod = ((now % 86400) + 86400) % 86400;
    int m = (int)(sod / 60);

    if (!r->has_window) {
        return 1;
    }
    if (r->window_start < r->window_end) {
        return m >= r->window_start && m < r->window_end;
    }
    /* Wraps midnight: "22:00-06:00" is 22:00..23:59 and 00:00..05:59. */
    return m >= r->window_start || m < r->window_end;
}

static int td_allowed(const struct ci_rec *r, const char *td, size_t tdlen)
{
    size_t i;

    if (r->n_tds == 0) {
        return 1;
    }
    for (i = 0; i < r->n_tds; i++) {
        if (r->td_lens[i] == tdlen && memcmp(r->tds[i], td, tdlen) == 0) {
            return 1;
        }
    }
    return 0;
}

static int deny(struct consent_decision *out, enum consent_reason reason, const char *rec)
{
    out->allow = 0;
    out->reason = reason;
    out->record_id = rec;
    return 0;
}

int consent_decide(const struct consent_index *idx, const char *user,
                   const struct spiffeid *client, const char *op_kind, const char *name_or_uri,
                   int64_t now, struct consent_decision *out)
{
    return consent_decide_from(idx, user, client, NULL, op_kind, name_or_uri, now, out);
}

int consent_decide_from(const struct consent_index *idx, const char *user,
                        const struct spiffeid *client, const char *source_td,
                        const char *op_kind, const char *name_or_uri, int64_t now,
                        struct consent_decision *out)
{
    static const enum consent_reason stage_reason[4] = {
        CONSENT_R_SCOPE_NOT_COVERED, CONSENT_R_EXPIRED, CONSENT_R_OUTSIDE_WINDOW,
        CONSENT_R_SOURCE_TD};
    enum consent_scope_kind kind;
    const struct ci_group *g;
    const char *u = user != NULL ? user : "";
    const char *td;
    size_t tdlen;
    size_t ulen;
    size_t nlen;
    size_t slot;
    size_t i;
    uint64_t h;
    uint64_t nh = 0;
    int best = -1;
    const char *best_id = NULL;

    /* Start at deny. */
    out->allow = 0;
    out->reason = CONSENT_R_BAD_REQUEST;
    out->record_id = NULL;
    out->missing_kind = op_kind;
    out->missing_name = name_or_uri;
    if (idx == NULL || client == NULL || op_kind == NULL || name_or_uri == NULL ||
        (user != NULL && user[0] == '\0')) {
        return 0;
    }
    if (strcmp(op_kind, CONSENT_OP_PLUMBING) == 0) {
        kind = CONSENT_SCOPE_ALL; /* any scope: only the record's validity counts */
        out->missing_kind = NULL;
        out->missing_name = NULL;
    } else if (name_or_uri[0] == '\0') {
        return 0;
    } else if (strcmp(op_kind, "tools") == 0) {
        kind = CONSENT_SCOPE_TOOLS;
    } else if (strcmp(op_kind, "resources") == 0) {
        kind = CONSENT_SCOPE_RESOURCES;
    } else if (strcmp(op_kind, "prompts") == 0) {
        kind = CONSENT_SCOPE_PROMPTS;
    } else {
        return 0;
    }
    ulen = strlen(u);
    h = key_hash(u, ulen, client->str, client->len);
    slot = probe(idx, h, u, ulen, client->str, client->len);
    if (idx->slots[slot] == 0) {
        return deny(out, CONSENT_R_NO_RECORD, NULL);
    }
    g = &idx->groups[idx->slots[slot] - 1];
    nlen = strlen(name_or_uri);
    if (kind != CONSENT_SCOPE_RESOURCES) {
        nh = fnv(FNV_BASIS, name_or_uri, nlen);
    }
    if (source_td != NULL) {
        td = source_td;
        tdlen = strlen(source_td);
    } else {
        td = spiffeid_td(client, &tdlen);
    }
    for (i = g->first; i < g->first + g->count; i++) {
        const struct ci_rec *r = &idx->recs[i];
        int stage;
        if (kind != CONSENT_SCOPE_ALL && !covers(r, kind, nh, name_or_uri, nlen)) {
            stage = 0;
        } else if (r->expires_at != 0 && r->expires_at <= now) {
            stage = 1;
        } else if (!in_window(r, now)) {
            stage = 2;
        } else if (!td_allowed(r, td, tdlen)) {
            stage = 3;
        } else {
            out->allow = 1;
            out->reason = CONSENT_R_NONE;
            out->record_id = r->id;
            out->missing_kind = NULL;
            out->missing_name = NULL;
            return 1;
        }
        if (stage > best) {
            best = stage;
            best_id = stage > 0 ? r->id : NULL;
        }
    }
    return deny(out, stage_reason[best < 0 ? 0 : best], best_id);
}

const char *consent_decision_describe(const struct consent_decision *d, char *buf, size_t bufsz)
{
    char x[160];
    const char *name = d->missing_name != NULL ? d->missing_name : "";
    const char *kind = d->missing_kind != NULL ? d->missing_kind : "";
    const char *shown = ly_text_escape(name, strlen(name), 120, x, sizeof(x));
    int n;

    if (bufsz == 0) {
        return buf;
    }
    switch (d->reason) {
    case CONSENT_R_NONE:
        n = snprintf(buf, bufsz, "allowed by consent %s", d->record_id ? d->record_id : "?");
        break;
    case CONSENT_R_NO_RECORD:
        n = snprintf(buf, bufsz, "no consent for this user and client");
        break;
    case CONSENT_R_EXPIRED:
        n = snprintf(buf, bufsz, "consent %s covering %s:%s has expired", d->record_id, kind,
                     shown);
        break;
    case CONSENT_R_OUTSIDE_WINDOW:
        n = snprintf(buf, bufsz, "consent %s covering %s:%s is outside its time window",
                     d->record_id, kind, shown);
        break;
    case CONSENT_R_SOURCE_TD:
        n = snprintf(buf, bufsz, "consent %s does not allow this source trust domain",
                     d->record_id);
        break;
    case CONSENT_R_SCOPE_NOT_COVERED:
        n = snprintf(buf, bufsz, "missing scope %s:%s", kind, shown);
        break;
    default:
        n = snprintf(buf, bufsz, "malformed request");
        break;
    }
    if (n < 0) {
        buf[0] = '\0';
    }
    return buf;
}
