/*
 * relation: the acceptance rules for a fetched foreign bundle and the fetch schedule. Every
 * certificate is read by svid/x509svid (wolfSSL underneath) and every bundle by
 * trust-bundles/bundle_codec; this file only combines their verdicts, and starts at "refuse".
 */
#include "relation.h"

#include <string.h>

#include "../svid/x509svid.h"
#include "../trust-bundles/bundle_codec.h"

int fed_profile_parse(const char *s, enum fed_profile *out, struct ly_error *err)
{
    if (s != NULL && strcmp(s, "https_web") == 0) {
        *out = FED_PROFILE_HTTPS_WEB;
        return 0;
    }
    if (s != NULL && strcmp(s, "https_spiffe") == 0) {
        *out = FED_PROFILE_HTTPS_SPIFFE;
        return 0;
    }
    return ly_error_setx(err, LY_ERR_PARSE, 0,
                         "unknown bundle endpoint profile '%.32s' (use https_web or "
                         "https_spiffe)",
                         s != NULL ? s : "");
}

const char *fed_profile_name(enum fed_profile p)
{
    switch (p) {
    case FED_PROFILE_HTTPS_WEB:
        return "https_web";
    case FED_PROFILE_HTTPS_SPIFFE:
        return "https_spiffe";
    default:
        return "unknown";
    }
}

/* Whether b holds an X.509 authority with exactly this DER. */
static int has_x509(const struct bundle *b, const uint8_t *der, size_t len)
{
    size_t i, n = bundle_x509_count(b);

    for (i = 0; i < n; i++) {
        size_t l = 0;
        const uint8_t *d = bundle_x509_authority(b, i, &l);

        if (d != NULL && l == len && memcmp(d, der, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether b holds a JWT authority with this kid and exactly this key. */
static int has_jwt(const struct bundle *b, const char *kid, const uint8_t *spki, size_t len)
{
    const uint8_t *k = NULL;
    size_t l = 0;

    return bundle_jwt_find(b, kid, &k, &l) == 0 && l == len && memcmp(k, spki, len) == 0;
}

int fed_bundle_same(const struct bundle *a, const struct bundle *b)
{
    uint64_t sa = 0, sb = 0;
    int64_t ha = 0, hb = 0;
    int has_sa, has_sb, has_ha, has_hb;
    size_t i;

    if (a == NULL || b == NULL) {
        return a == b;
    }
    has_sa = bundle_get_sequence(a, &sa) == 0;
    has_sb = bundle_get_sequence(b, &sb) == 0;
    has_ha = bundle_get_refresh_hint(a, &ha) == 0;
    has_hb = bundle_get_refresh_hint(b, &hb) == 0;
    if (has_sa != has_sb || (has_sa && sa != sb) || has_ha != has_hb || (has_ha && ha != hb) ||
        bundle_x509_count(a) != bundle_x509_count(b) ||
        bundle_jwt_count(a) != bundle_jwt_count(b)) {
        return 0;
    }
    /* Bundles hold no duplicates, so equal counts and inclusion mean equal sets. */
    for (i = 0; i < bundle_x509_count(a); i++) {
        size_t l = 0;
        const uint8_t *d = bundle_x509_authority(a, i, &l);

        if (d == NULL || !has_x509(b, d, l)) {
            return 0;
        }
    }
    for (i = 0; i < bundle_jwt_count(a); i++) {
        const uint8_t *k = NULL;
        size_t l = 0;
        const char *kid = bundle_jwt_authority(a, i, &k, &l);

        if (kid == NULL || !has_jwt(b, kid, k, l)) {
            return 0;
        }
    }
    return 1;
}

/* https_spiffe: the server's chain against the foreign domain's current bundle. */
static int check_endpoint(const struct fed_check *c, struct ly_error *err)
{
    struct x509svid_chain *chain = NULL;
    struct bundle_set *set = NULL;
    struct bundle *copy = NULL;
    struct spiffeid got;
    struct ly_error verr;
    int rc;

    if (c->endpoint_id == NULL) {
        return ly_error_setx(err, LY_ERR_USAGE, FED_R_ENDPOINT_ID,
                             "https_spiffe needs the endpoint's SPIFFE ID");
    }
    if (c->current == NULL || bundle_x509_count(c->current) == 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, FED_R_ENDPOINT_UNTRUSTED,
                             "no bundle of %s to authenticate its endpoint with (give a "
                             "bootstrap bundle)",
                             c->trust_domain);
    }
    ly_error_clear(&verr);
    rc = x509svid_chain_parse(c->peer_chain, c->peer_chain_len, &chain, &verr);
    if (rc == 0) {
        rc = bundle_set_new(&set, &verr);
    }
    if (rc == 0) {
        rc = bundle_clone(c->current, &copy, &verr);
    }
    if (rc == 0) {
        rc = bundle_set_put(set, copy, &verr); /* takes copy, also on failure */
    }
    if (rc == 0) {
        rc = x509svid_verify(chain, set, c->now, &got, &verr);
    }
    x509svid_chain_free(chain);
    bundle_set_free(set);
    if (rc != 0) {
        return ly_error_setx(err, LY_ERR_VERIFY, FED_R_ENDPOINT_UNTRUSTED,
                             "the bundle endpoint's certificate is not a valid X509-SVID of %s: "
                             "%s",
                             c->trust_domain, verr.msg);
    }
    if (!spiffeid_equal(&got, c->endpoint_id)) {
        return ly_error_setx(err, LY_ERR_VERIFY, FED_R_ENDPOINT_ID,
                             "the bundle endpoint is %.512s, not the expected %.512s", got.str,
                             c->endpoint_id->str);
    }
    return 0;
}

/* No X.509 authority may carry the SPIFFE ID of another trust domain. */
static int check_domain(const struct fed_check *c, const struct bundle *b, struct ly_error *err)
{
    size_t i, n = bundle_x509_count(b);

    for (i = 0; i < n; i++) {
        struct x509svid_info info;
        struct ly_error ierr;
        size_t len = 0;
        const uint8_t *der = bundle_x509_authority(b, i, &len);

        ly_error_clear(&ierr);
        if (der == NULL || x509svid_cert_info(der, len, &info, &ierr) < 0) {
            return ly_error_setx(err, LY_ERR_PARSE, FED_R_GARBAGE,
                                 "X.509 authority #%zu does not parse: %s", i + 1, ierr.msg);
        }
        if (info.has_id && !spiffeid_member_of(&info.id, c->trust_domain)) {
            return ly_error_setx(err, LY_ERR_VERIFY, FED_R_WRONG_DOMAIN,
                                 "the bundle is not %s's: X.509 authority #%zu (%s) is %.512s",
                                 c->trust_domain, i + 1, info.subject, info.id.str);
        }
    }
    return 0;
}

int fed_check_bundle(const struct fed_check *c, struct bundle **out, int *changed,
                     struct ly_error *err)
{
    struct bundle *b = NULL;
    uint64_t seq_new = 0, seq_cur = 0;
    int rc;

    *out = NULL;
    *changed = 0;
    if (c->profile == FED_PROFILE_HTTPS_SPIFFE) {
        rc = check_endpoint(c, err);
        if (rc < 0) {
            return rc;
        }
    } else if (c->profile != FED_PROFILE_HTTPS_WEB) {
        return ly_error_setx(err, LY_ERR_USAGE, 0, "unknown bundle endpoint profile");
    }
    rc = bundle_codec_parse_json(c->trust_domain, c->body, c->body_len, &b, err);
    if (rc < 0) {
        err->reason = FED_R_GARBAGE;
        return ly_error_wrap(err, "the answer is not a SPIFFE bundle");
    }
    if (bundle_x509_count(b) == 0 && bundle_jwt_count(b) == 0) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, FED_R_EMPTY,
                           "the bundle of %s holds no authority", c->trust_domain);
        goto refuse;
    }
    rc = check_domain(c, b, err);
    if (rc < 0) {
        goto refuse;
    }
    /* SPIFFE bundle sequence numbers only grow: a lower one is an old or replayed bundle. */
    if (c->current != NULL && bundle_get_sequence(c->current, &seq_cur) == 0 &&
        bundle_get_sequence(b, &seq_new) == 0 && seq_new < seq_cur) {
        rc = ly_error_setx(err, LY_ERR_VERIFY, FED_R_STALE_SEQUENCE,
                           "spiffe_sequence %llu is lower than the %llu already held",
                           (unsigned long long)seq_new, (unsigned long long)seq_cur);
        goto refuse;
    }
    *changed = !fed_bundle_same(c->current, b);
    *out = b;
    return 0;
refuse:
    bundle_free(b);
    return rc;
}

int64_t fed_next_refresh(int64_t refresh_hint)
{
    int64_t hint = refresh_hint > 0 ? refresh_hint : FED_REFRESH_HINT_DEFAULT;
    int64_t next = hint / 4;

    return next >= 1 ? next : 1;
}

int64_t fed_backoff(unsigned failures, int64_t refresh_hint)
{
    int64_t cap = fed_next_refresh(refresh_hint);
    int64_t d = FED_BACKOFF_MIN;
    unsigned i;

    if (cap > FED_BACKOFF_MAX) {
        cap = FED_BACKOFF_MAX;
    }
    for (i = 1; i < failures && d < cap; i++) {
        d *= 2;
    }
    return d < cap ? d : cap;
}
