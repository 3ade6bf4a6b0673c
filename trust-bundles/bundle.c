/*
 * bundle: in-memory trust bundles and bundle sets. Everything here is copied in and owned; the
 * module parses nothing but the trust domain name, and never decides trust on its own.
 */
#include "bundle.h"

#include <stdlib.h>
#include <string.h>

#include "../svid/spiffeid.h"

struct blob {
    uint8_t *data;
    size_t len;
};

struct jwt_authority {
    char *kid;
    struct blob spki;
};

struct bundle {
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct blob x509[BUNDLE_MAX_AUTHORITIES];
    size_t n_x509;
    struct jwt_authority jwt[BUNDLE_MAX_AUTHORITIES];
    size_t n_jwt;
    uint64_t sequence;
    int has_sequence;
    int64_t refresh_hint;
    int has_refresh_hint;
};

struct bundle_set {
    struct bundle **items;
    size_t n;
    size_t cap;
};

static int blob_copy(struct blob *dst, const uint8_t *src, size_t len)
{
    dst->data = malloc(len ? len : 1);
    if (dst->data == NULL) {
        return -1;
    }
    if (len > 0) {
        memcpy(dst->data, src, len);
    }
    dst->len = len;
    return 0;
}

int bundle_new(const char *trust_domain, struct bundle **out, struct ly_error *err)
{
    struct bundle *b;
    char td[SPIFFEID_TD_MAX_LEN + 1];
    int rc;

    ly_error_clear(err);
    *out = NULL;
    if (trust_domain == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "missing trust domain");
    }
    /* A bundle is keyed by a bare trust domain name; an ID with a path is a caller mistake. */
    if (strncmp(trust_domain, "spiffe://", 9) == 0) {
        struct spiffeid id;
        rc = spiffeid_parse(trust_domain, strlen(trust_domain), &id, err);
        if (rc < 0) {
            return rc;
        }
        if (!spiffeid_is_root(&id)) {
            return ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "trust domain '%.64s' must not have a path", trust_domain);
        }
    }
    rc = spiffeid_parse_trust_domain(trust_domain, strlen(trust_domain), td, sizeof(td), err);
    if (rc < 0) {
        return rc;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    memcpy(b->td, td, sizeof(td));
    *out = b;
    return 0;
}

int bundle_clone(const struct bundle *b, struct bundle **out, struct ly_error *err)
{
    struct bundle *c;
    size_t i;
    int rc;

    ly_error_clear(err);

    rc = bundle_new(b->td, &c, err);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < b->n_x509; i++) {
        rc = bundle_add_x509_authority(c, b->x509[i].data, b->x509[i].len, err);
        if (rc < 0) {
            goto fail;
        }
    }
    for (i = 0; i < b->n_jwt; i++) {
        rc = bundle_add_jwt_authority(c, b->jwt[i].kid, b->jwt[i].spki.data, b->jwt[i].spki.len,
                                      err);
        if (rc < 0) {
            goto fail;
        }
    }
    c->sequence = b->sequence;
    c->has_sequence = b->has_sequence;
    c->refresh_hint = b->refresh_hint;
    c->has_refresh_hint = b->has_refresh_hint;
    *out = c;
    return 0;
fail:
    bundle_free(c);
    *out = NULL;
    return rc;
}

const char *bundle_trust_domain(const struct bundle *b)
{
    return b->td;
}

int bundle_add_x509_authority(struct bundle *b, const uint8_t *der, size_t len,
                              struct ly_error *err)
{
    size_t i;

    ly_error_clear(err);

    if (der == NULL || len == 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "empty X.509 authority");
    }
    for (i = 0; i < b->n_x509; i++) {
        if (b->x509[i].len == len && memcmp(b->x509[i].data, der, len) == 0) {
            return 0;
        }
    }
    if (b->n_x509 >= BUNDLE_MAX_AUTHORITIES) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "bundle for %s has more than %d X.509 authorities", b->td,
                             BUNDLE_MAX_AUTHORITIES);
    }
    if (blob_copy(&b->x509[b->n_x509], der, len) < 0) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    b->n_x509++;
    return 0;
}

int bundle_remove_x509_authority(struct bundle *b, const uint8_t *der, size_t len,
                                 struct ly_error *err)
{
    size_t i;

    ly_error_clear(err);

    for (i = 0; i < b->n_x509; i++) {
        if (b->x509[i].len == len && memcmp(b->x509[i].data, der, len) == 0) {
            free(b->x509[i].data);
            memmove(&b->x509[i], &b->x509[i + 1], (b->n_x509 - i - 1) * sizeof(b->x509[0]));
            b->n_x509--;
            return 0;
        }
    }
    return ly_error_setx(err, LY_ERR_USAGE, 0, "authority not in the bundle for %s", b->td);
}

size_t bundle_x509_count(const struct bundle *b)
{
    return b->n_x509;
}

const uint8_t *bundle_x509_authority(const struct bundle *b, size_t i, size_t *len)
{
    if (i >= b->n_x509) {
        return NULL;
    }
    *len = b->x509[i].len;
    return b->x509[i].data;
}

int bundle_add_jwt_authority(struct bundle *b, const char *kid, const uint8_t *spki,
                             size_t len, struct ly_error *err)
{
    size_t klen;
    size_t i;
    struct jwt_authority *a;

    ly_error_clear(err);

    if (kid == NULL || kid[0] == '\0') {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "JWT authority without a key ID");
    }
    klen = strlen(kid);
    if (klen > BUNDLE_KID_MAX) {
        return ly_error_setx(err, LY_ERR_PARSE, 0, "JWT authority key ID longer than %d bytes",
                             BUNDLE_KID_MAX);
    }
    if (spki == NULL || len == 0) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "JWT authority without a public key");
    }
    for (i = 0; i < b->n_jwt; i++) {
        if (strcmp(b->jwt[i].kid, kid) == 0) {
            return ly_error_setx(err, LY_ERR_PARSE, 0,
                                 "duplicate JWT authority key ID '%.64s' in bundle for %s", kid,
                                 b->td);
        }
    }
    if (b->n_jwt >= BUNDLE_MAX_AUTHORITIES) {
        return ly_error_setx(err, LY_ERR_USAGE, 0,
                             "bundle for %s has more than %d JWT authorities", b->td,
                             BUNDLE_MAX_AUTHORITIES);
    }
    a = &b->jwt[b->n_jwt];
    a->kid = malloc(klen + 1);
    if (a->kid == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    memcpy(a->kid, kid, klen + 1);
    if (blob_copy(&a->spki, spki, len) < 0) {
        free(a->kid);
        a->kid = NULL;
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    b->n_jwt++;
    return 0;
}

size_t bundle_jwt_count(const struct bundle *b)
{
    return b->n_jwt;
}

const char *bundle_jwt_authority(const struct bundle *b, size_t i, const uint8_t **spki,
                                 size_t *len)
{
    if (i >= b->n_jwt) {
        return NULL;
    }
    *spki = b->jwt[i].spki.data;
    *len = b->jwt[i].spki.len;
    return b->jwt[i].kid;
}

int bundle_jwt_find(const struct bundle *b, const char *kid, const uint8_t **spki, size_t *len)
{
    size_t i;

    for (i = 0; i < b->n_jwt; i++) {
        if (strcmp(b->jwt[i].kid, kid) == 0) {
            *spki = b->jwt[i].spki.data;
            *len = b->jwt[i].spki.len;
            return 0;
        }
    }
    return -1;
}

void bundle_set_sequence(struct bundle *b, uint64_t seq)
{
    b->sequence = seq;
    b->has_sequence = 1;
}

int bundle_get_sequence(const struct bundle *b, uint64_t *seq)
{
    if (!b->has_sequence) {
        return -1;
    }
    *seq = b->sequence;
    return 0;
}

void bundle_set_refresh_hint(struct bundle *b, int64_t seconds)
{
    b->refresh_hint = seconds;
    b->has_refresh_hint = 1;
}

int bundle_get_refresh_hint(const struct bundle *b, int64_t *seconds)
{
    if (!b->has_refresh_hint) {
        return -1;
    }
    *seconds = b->refresh_hint;
    return 0;
}

void bundle_free(struct bundle *b)
{
    size_t i;

    if (b == NULL) {
        return;
    }
    for (i = 0; i < b->n_x509; i++) {
        free(b->x509[i].data);
    }
    for (i = 0; i < b->n_jwt; i++) {
        free(b->jwt[i].kid);
        free(b->jwt[i].spki.data);
    }
    free(b);
}

int bundle_set_new(struct bundle_set **out, struct ly_error *err)
{
    ly_error_clear(err);

    *out = calloc(1, sizeof(**out));
    if (*out == NULL) {
        return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
    }
    return 0;
}

int bundle_set_put(struct bundle_set *set, struct bundle *b, struct ly_error *err)
{
    size_t i;

    ly_error_clear(err);

    for (i = 0; i < set->n; i++) {
        if (strcmp(set->items[i]->td, b->td) == 0) {
            bundle_free(set->items[i]);
            set->items[i] = b;
            return 0;
        }
    }
    if (set->n == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 4;
        struct bundle **ni = realloc(set->items, ncap * sizeof(*ni));
        if (ni == NULL) {
            bundle_free(b);
            return ly_error_setx(err, LY_ERR_NOMEM, 0, "out of memory");
        }
        set->items = ni;
        set->cap = ncap;
    }
    set->items[set->n++] = b;
    return 0;
}

const struct bundle *bundle_set_get(const struct bundle_set *set, const char *td)
{
    size_t i;

    if (set == NULL || td == NULL) {
        return NULL;
    }
    for (i = 0; i < set->n; i++) {
        if (strcmp(set->items[i]->td, td) == 0) {
            return set->items[i];
        }
    }
    return NULL;
}

size_t bundle_set_count(const struct bundle_set *set)
{
    return set->n;
}

const struct bundle *bundle_set_at(const struct bundle_set *set, size_t i)
{
    return i < set->n ? set->items[i] : NULL;
}

void bundle_set_free(struct bundle_set *set)
{
    size_t i;

    if (set == NULL) {
        return;
    }
    for (i = 0; i < set->n; i++) {
        bundle_free(set->items[i]);
    }
    free(set->items);
    free(set);
}
