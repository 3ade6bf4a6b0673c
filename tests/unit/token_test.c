/*
 * token_test: unit tests for broker/token: mint/verify round trips, and a negative matrix in
 * which every enum token_reason is reached by a token signed here (svid_key_sign_jws over
 * header and claims this file writes, never through token_mint), with the step that refuses
 * it: typ both ways against JWT-SVIDs, the issuer's own bundle only, a foreign issuer with its
 * own bundle, exp/nbf leeway edges, aud arrays, azp vs client_id, cnf shapes, wrong
 * certificate, wrong client. No message may contain token bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "../../broker/token.h"
#include "../../common/ly_b64.h"
#include "../../svid/jwtsvid.h"
#include "../../trust-bundles/bundle.h"

/* A fixed validation time: 2027-01-15T08:00:00Z. */
#define AT INT64_C(1800000000)
#define LEEWAY 30
#define TD "example.org"
#define ISS "spiffe://example.org"
#define PARTNER_ISS "spiffe://partner.test"
#define CLIENT "spiffe://example.org/agent/a"
#define OTHER_CLIENT "spiffe://example.org/agent/b"
#define AUD "https://mcp.example.org/tools"
#define USER "alice"
#define KID "k-ex"
#define PARTNER_KID "k-partner"
#define HDR(typ) "{\"alg\":\"ES256\",\"kid\":\"" KID "\",\"typ\":\"" typ "\"}"
#define HDR_OK HDR("at+jwt")

static struct {
    struct svid_key *ex;      /* example.org's JWT key, kid k-ex */
    struct svid_key *partner; /* partner.test's JWT key, kid k-partner */
    struct svid_key *rogue;   /* in no bundle */
    struct bundle_set *set;
    uint8_t cert_a[32]; /* the thumbprint standard tokens are bound to */
    uint8_t cert_b[32]; /* another certificate's */
    char cert_a_b64[64];
    struct spiffeid client;
    struct spiffeid other_client;
    char long_kid[BUNDLE_KID_MAX + 1]; /* a 256-byte kid, in example.org's bundle */
    int reached[TOKEN_R_INTERNAL + 1];  /* reasons some test has seen; all must be */
} g;

static void mark(int reason)
{
    if (reason > 0 && reason <= TOKEN_R_INTERNAL) {
        g.reached[reason] = 1;
    }
}

static void add_key(struct bundle *b, const char *kid, const struct svid_key *k)
{
    struct ly_buf spki;
    struct ly_error err = {0};

    ly_error_clear(&err);
    assert_int_equal(svid_key_public_der(k, &spki, &err), 0);
    assert_int_equal(bundle_add_jwt_authority(b, kid, spki.data, spki.len, &err), 0);
    ly_buf_free(&spki);
}

static int group_setup(void **state)
{
    struct ly_error err = {0};
    struct bundle *ex = NULL;
    struct bundle *partner = NULL;
    struct bundle *empty = NULL;
    struct ly_buf b64;

    (void)state;
    ly_error_clear(&err);
    if (svid_key_generate(SVID_KEY_EC_P256, &g.ex, &err) != 0 ||
        svid_key_generate(SVID_KEY_EC_P256, &g.partner, &err) != 0 ||
        svid_key_generate(SVID_KEY_EC_P256, &g.rogue, &err) != 0 ||
        bundle_set_new(&g.set, &err) != 0 || bundle_new(TD, &ex, &err) != 0 ||
        bundle_new("partner.test", &partner, &err) != 0 ||
        bundle_new("empty.test", &empty, &err) != 0) {
        return -1;
    }
    memset(g.long_kid, 'L', BUNDLE_KID_MAX);
    g.long_kid[BUNDLE_KID_MAX] = '\0';
    add_key(ex, KID, g.ex);
    add_key(ex, g.long_kid, g.ex);
    add_key(partner, PARTNER_KID, g.partner);
    /* empty.test has a bundle but no JWT authority: as good as none. */
    if (bundle_set_put(g.set, ex, &err) != 0 || bundle_set_put(g.set, partner, &err) != 0 ||
        bundle_set_put(g.set, empty, &err) != 0) {
        return -1;
    }
    memset(g.cert_a, 0x11, sizeof(g.cert_a));
    memset(g.cert_b, 0x22, sizeof(g.cert_b));
    if (ly_b64_encode(g.cert_a, 32, 1, &b64, 64, &err) != 0 || b64.len >= sizeof(g.cert_a_b64)) {
        return -1;
    }
    memcpy(g.cert_a_b64, b64.data, b64.len + 1);
    ly_buf_free(&b64);
    if (spiffeid_parse(CLIENT, strlen(CLIENT), &g.client, &err) != 0 ||
        spiffeid_parse(OTHER_CLIENT, strlen(OTHER_CLIENT), &g.other_client, &err) != 0) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bundle_set_free(g.set);
    svid_key_free(g.ex);
    svid_key_free(g.partner);
    svid_key_free(g.rogue);
    return 0;
}

/* ---- token construction (independent of token_mint) ---- */

static void b64url(const void *in, size_t len, struct ly_buf *acc)
{
    struct ly_buf enc;
    struct ly_error err = {0};

    ly_error_clear(&err);
    assert_int_equal(ly_b64_encode(in, len, 1, &enc, 65536, &err), 0);
    assert_int_equal(ly_buf_append(acc, enc.data, enc.len, &err), 0);
    ly_buf_free(&enc);
}

/* "b64(header).b64(payload).b64(ES256 signature by key)"; caller frees with free(). */
static char *sign_with(const char *header, const char *payload, struct svid_key *key)
{
    struct ly_buf t;
    struct ly_buf sig;
    struct ly_error err = {0};

    ly_error_clear(&err);
    ly_buf_init(&t, 65536);
    b64url(header, strlen(header), &t);
    assert_int_equal(ly_buf_append(&t, ".", 1, &err), 0);
    b64url(payload, strlen(payload), &t);
    assert_int_equal(svid_key_sign_jws(key, t.data, t.len, &sig, &err), 0);
    assert_int_equal(ly_buf_append(&t, ".", 1, &err), 0);
    b64url(sig.data, sig.len, &t);
    ly_buf_free(&sig);
    return (char *)ly_buf_steal(&t, NULL);
}

/* The standard claims: valid at AT for CLIENT, AUD, bound to cert_a. Caller json_decref()s. */
static json_t *std_claims(void)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:{s:s}}", "iss", ISS,
                          "sub", USER, "aud", AUD, "azp", CLIENT, "client_id", CLIENT, "exp",
                          (json_int_t)(AT + 600), "nbf", (json_int_t)(AT - 60), "iat",
                          (json_int_t)(AT - 60), "jti", "00112233445566778899aabbccddeeff",
                          "cnf", "x5t#S256", g.cert_a_b64);

    assert_non_null(c);
    return c;
}

/* Sign `claims` (consumed) under `header` with `key`. */
static char *sign_claims(const char *header, json_t *claims, struct svid_key *key)
{
    char *txt = json_dumps(claims, JSON_COMPACT);
    char *tok;

    assert_non_null(txt);
    tok = sign_with(header, txt, key);
    free(txt);
    json_decref(claims);
    return tok;
}

static char *std_token(void)
{
    return sign_claims(HDR_OK, std_claims(), g.ex);
}

/* The standard claims with one member set (v consumed) or, when v is NULL, removed. */
static char *token_with(const char *name, json_t *v)
{
    json_t *c = std_claims();

    if (v == NULL) {
        assert_int_equal(json_object_del(c, name), 0);
    } else {
        assert_int_equal(json_object_set_new(c, name, v), 0);
    }
    return sign_claims(HDR_OK, c, g.ex);
}

/* No part of the token's signature (or payload) may appear in a message (STYLE §2 rule 15). */
static void assert_no_token_text(const char *tok, size_t len, const char *msg)
{
    const char *dot1 = memchr(tok, '.', len);
    const char *last = dot1 != NULL ? strrchr(tok, '.') : NULL;
    char probe[13];

    if (last != NULL && strlen(last + 1) >= 12) {
        memcpy(probe, last + 1, 12);
        probe[12] = '\0';
        assert_null(strstr(msg, probe));
    }
    if (dot1 != NULL && strlen(dot1 + 1) >= 12) {
        memcpy(probe, dot1 + 1, 12);
        probe[12] = '\0';
        assert_null(strstr(msg, probe));
    }
}

/* token_verify_signed must refuse with this category and reason; *out stays zeroed. */
static void expect_signed_reject_len(const char *tok, size_t len, int code, int reason)
{
    struct token_claims c;
    struct token_claims zero;
    struct ly_error err = {0};
    int rc;

    memset(&c, 0xa5, sizeof(c));
    memset(&zero, 0, sizeof(zero));
    ly_error_clear(&err);
    rc = token_verify_signed(tok, len, g.set, &c, &err);
    if (rc != code || err.reason != reason) {
        print_error("expected code %d reason %d (%s), got %d reason %d: %s\n", code, reason,
                    token_reason_name(reason), rc, err.reason, err.msg);
    }
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_int_equal(err.reason, reason);
    assert_true(err.msg[0] != '\0');
    assert_memory_equal(&c, &zero, sizeof(c));
    mark(reason);
    if (tok != NULL) {
        assert_no_token_text(tok, len, err.msg);
    }
}

static void expect_signed_reject(const char *tok, int code, int reason)
{
    expect_signed_reject_len(tok, strlen(tok), code, reason);
}

/* As above, and free the token. */
static void reject_free(char *tok, int code, int reason)
{
    expect_signed_reject(tok, code, reason);
    free(tok);
}

static void verify_ok(const char *tok, struct token_claims *c)
{
    struct ly_error err = {0};
    int rc;

    ly_error_clear(&err);
    rc = token_verify_signed(tok, strlen(tok), g.set, c, &err);
    if (rc != 0) {
        print_error("unexpected rejection (%s): %s\n", token_reason_name(err.reason), err.msg);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(err.code, 0);
}

/* token_check at `now` for CLIENT/AUD/cert_a: 0, or the expected reason. */
static void check_at(const char *tok, int64_t now, int reason)
{
    struct token_claims c;
    struct ly_error err = {0};
    int rc;

    verify_ok(tok, &c);
    ly_error_clear(&err);
    rc = token_check(&c, AUD, &g.client, g.cert_a, now, LEEWAY, &err);
    if (reason == 0) {
        if (rc != 0) {
            print_error("unexpected check failure (%s): %s\n", token_reason_name(err.reason),
                        err.msg);
        }
        assert_int_equal(rc, 0);
    } else {
        if (err.reason != reason) {
            print_error("expected %s, got %d: %s\n", token_reason_name(reason), err.reason,
                        err.msg);
        }
        assert_int_equal(rc, LY_ERR_VERIFY);
        assert_int_equal(err.reason, reason);
        assert_no_token_text(tok, strlen(tok), err.msg);
        mark(reason);
    }
}

/* Decode one part of a token (0 header, 1 payload) into a NUL-terminated string. */
static char *token_part(const char *tok, int idx)
{
    const char *p = tok;
    const char *end;
    struct ly_buf out;
    struct ly_error err = {0};
    int i;

    for (i = 0; i < idx; i++) {
        p = strchr(p, '.') + 1;
    }
    end = strchr(p, '.');
    ly_error_clear(&err);
    assert_int_equal(ly_b64_decode(p, (size_t)(end - p), 1, 0, &out, 65536, &err), 0);
    return (char *)ly_buf_steal(&out, NULL);
}

/* ---- round trips ---- */

static void test_mint_roundtrip_bound(void **state)
{
    struct ly_buf tok;
    struct ly_error err = {0};
    struct token_claims c;
    char *hdr;
    char *pay;
    json_t *j;
    size_t i;

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(token_mint(g.ex, KID, TD, USER, &g.client, AUD, g.cert_a, AT - 60, 900, &tok,
                                &err),
                     0);
    assert_true(tok.secret);
    assert_int_equal(strlen((const char *)tok.data), tok.len);
    hdr = token_part((const char *)tok.data, 0);
    assert_string_equal(hdr, "{\"alg\":\"ES256\",\"kid\":\"k-ex\",\"typ\":\"at+jwt\"}");
    free(hdr);
    pay = token_part((const char *)tok.data, 1);
    j = json_loads(pay, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "iss")), ISS);
    assert_string_equal(json_string_value(json_object_get(j, "sub")), USER);
    assert_string_equal(json_string_value(json_object_get(j, "aud")), AUD);
    assert_string_equal(json_string_value(json_object_get(j, "azp")), CLIENT);
    assert_string_equal(json_string_value(json_object_get(j, "client_id")), CLIENT);
    assert_int_equal(json_integer_value(json_object_get(j, "exp")), AT - 60 + 900);
    assert_int_equal(json_integer_value(json_object_get(j, "nbf")), AT - 60);
    assert_int_equal(json_integer_value(json_object_get(j, "iat")), AT - 60);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "cnf"), "x5t#S256")), g.cert_a_b64);
    /* jti: 128 random bits as 32 lower-case hex digits. */
    assert_int_equal(json_string_length(json_object_get(j, "jti")), TOKEN_JTI_HEX_LEN);
    for (i = 0; i < TOKEN_JTI_HEX_LEN; i++) {
        char ch = json_string_value(json_object_get(j, "jti"))[i];
        assert_true((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
    }
    json_decref(j);
    free(pay);

    verify_ok((const char *)tok.data, &c);
    assert_string_equal(c.issuer_td, TD);
    assert_string_equal(c.user, USER);
    assert_true(spiffeid_equal(&c.client, &g.client));
    assert_int_equal(c.n_audiences, 1);
    assert_string_equal(c.audiences[0], AUD);
    assert_int_equal(c.exp, AT - 60 + 900);
    assert_true(c.has_nbf && c.nbf == AT - 60);
    assert_true(c.has_iat && c.iat == AT - 60);
    assert_int_equal(strlen(c.jti), TOKEN_JTI_HEX_LEN);
    assert_true(c.has_cnf);
    assert_memory_equal(c.x5t_s256, g.cert_a, 32);
    assert_string_equal(c.kid, KID);
    ly_error_clear(&err);
    assert_int_equal(token_check(&c, AUD, &g.client, g.cert_a, AT, LEEWAY, &err), 0);
    assert_int_equal(token_check(&c, AUD, &g.client, g.cert_b, AT, LEEWAY, &err), LY_ERR_VERIFY);
    assert_int_equal(err.reason, TOKEN_R_WRONG_CERT);
    ly_buf_free(&tok);
}

static void test_mint_roundtrip_unbound_and_fresh_jti(void **state)
{
    struct ly_buf t1;
    struct ly_buf t2;
    struct ly_error err = {0};
    struct token_claims c1;
    struct token_claims c2;

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(
        token_mint(g.ex, KID, TD, USER, &g.client, AUD, NULL, AT, TOKEN_TTL_DEFAULT, &t1, &err), 0);
    assert_int_equal(
        token_mint(g.ex, KID, TD, USER, &g.client, AUD, NULL, AT, TOKEN_TTL_DEFAULT, &t2, &err), 0);
    verify_ok((const char *)t1.data, &c1);
    verify_ok((const char *)t2.data, &c2);
    assert_false(c1.has_cnf);
    assert_string_not_equal(c1.jti, c2.jti);
    /* An unbound token is a bearer token: any connection certificate will do. */
    assert_int_equal(token_check(&c1, AUD, &g.client, g.cert_b, AT, LEEWAY, &err), 0);
    ly_buf_free(&t1);
    ly_buf_free(&t2);
}

static void test_mint_refusals(void **state)
{
    struct svid_key *ed = NULL;
    struct ly_buf tok;
    struct ly_error err = {0};
    struct spiffeid root;
    char long_aud[TOKEN_AUD_MAX + 2];
    size_t i;
    const struct {
        const char *td;
        const char *user;
        const char *aud;
        int64_t now;
        int64_t ttl;
    } bad[] = {
        {"spiffe://example.org", USER, AUD, AT, 900}, /* issuer as an ID, not a bare name */
        {"Example.org", USER, AUD, AT, 900},
        {"", USER, AUD, AT, 900},
        {TD, "", AUD, AT, 900},
        {TD, "al\nice", AUD, AT, 900},
        {TD, USER, "", AT, 900},
        {TD, USER, long_aud, AT, 900},
        {TD, USER, AUD, AT, TOKEN_TTL_MIN - 1},
        {TD, USER, AUD, AT, TOKEN_TTL_MAX + 1},
        {TD, USER, AUD, -1, 900},
        {TD, USER, AUD, INT64_C(253402300799), 900},
    };

    (void)state;
    memset(long_aud, 'a', sizeof(long_aud) - 1);
    long_aud[sizeof(long_aud) - 1] = '\0';
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ly_error_clear(&err);
        assert_int_equal(token_mint(g.ex, KID, bad[i].td, bad[i].user, &g.client, bad[i].aud,
                                    NULL, bad[i].now, bad[i].ttl, &tok, &err),
                         LY_ERR_USAGE);
        assert_int_equal(err.reason, TOKEN_R_USAGE);
        assert_null(tok.data);
    }
    mark(TOKEN_R_USAGE);
    ly_error_clear(&err);
    assert_int_equal(spiffeid_parse(ISS, strlen(ISS), &root, &err), 0);
    assert_int_equal(token_mint(g.ex, KID, TD, USER, &root, AUD, NULL, AT, 900, &tok, &err),
                     LY_ERR_USAGE);
    assert_int_equal(err.reason, TOKEN_R_USAGE);
    assert_int_equal(token_mint(NULL, KID, TD, USER, &g.client, AUD, NULL, AT, 900, &tok, &err),
                     LY_ERR_USAGE);
    assert_int_equal(token_mint(g.ex, "", TD, USER, &g.client, AUD, NULL, AT, 900, &tok, &err),
                     LY_ERR_USAGE);
    assert_int_equal(err.reason, TOKEN_R_USAGE);
    /* JWT keys are P-256 (ES256): an Ed25519 key is the caller's mistake. */
    assert_int_equal(svid_key_generate(SVID_KEY_ED25519, &ed, &err), 0);
    ly_error_clear(&err);
    assert_int_equal(token_mint(ed, KID, TD, USER, &g.client, AUD, NULL, AT, 900, &tok, &err),
                     LY_ERR_USAGE);
    assert_int_equal(err.reason, TOKEN_R_USAGE);
    svid_key_free(ed);
}

/* ---- header: typ both ways, alg, kid ---- */

static void test_jwt_svid_is_not_a_token(void **state)
{
    const char *auds[] = {AUD};
    struct ly_buf svid;
    struct ly_error err = {0};
    char *tok;

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(jwtsvid_mint(g.ex, KID, &g.client, auds, 1, AT - 60, 300, &svid, &err), 0);
    expect_signed_reject((const char *)svid.data, LY_ERR_PARSE, TOKEN_R_TYP);
    ly_buf_free(&svid);
    /* Even with every token claim present, typ JWT, JOSE or none is not a token. */
    reject_free(sign_claims(HDR("JWT"), std_claims(), g.ex), LY_ERR_PARSE, TOKEN_R_TYP);
    reject_free(sign_claims(HDR("JOSE"), std_claims(), g.ex), LY_ERR_PARSE, TOKEN_R_TYP);
    reject_free(sign_claims("{\"alg\":\"ES256\",\"kid\":\"" KID "\"}", std_claims(), g.ex),
                LY_ERR_PARSE, TOKEN_R_TYP);
    reject_free(sign_claims(HDR("AT+JWT"), std_claims(), g.ex), LY_ERR_PARSE, TOKEN_R_TYP);
    reject_free(
        sign_claims("{\"alg\":\"ES256\",\"kid\":\"" KID "\",\"typ\":7}", std_claims(), g.ex),
        LY_ERR_PARSE, TOKEN_R_TYP);
    /* RFC 9068 §4 names the long form as well. */
    tok = sign_claims(HDR("application/at+jwt"), std_claims(), g.ex);
    check_at(tok, AT, 0);
    free(tok);
}

static void test_token_is_not_a_jwt_svid(void **state)
{
    struct ly_buf tok;
    struct ly_error err = {0};
    json_t *c;
    char *forged;

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(
        token_mint(g.ex, KID, TD, USER, &g.client, AUD, NULL, AT - 60, 900, &tok, &err), 0);
    assert_int_equal(
        jwtsvid_validate((const char *)tok.data, tok.len, AUD, g.set, AT, LEEWAY, NULL, &err),
        LY_ERR_PARSE);
    assert_int_equal(err.reason, JWTSVID_R_TYP);
    ly_buf_free(&tok);
    /* Also when its sub is a workload SPIFFE ID, as a JWT-SVID's would be. */
    c = std_claims();
    assert_int_equal(json_object_set_new(c, "sub", json_string(CLIENT)), 0);
    forged = sign_claims(HDR_OK, c, g.ex);
    ly_error_clear(&err);
    assert_int_equal(jwtsvid_validate(forged, strlen(forged), AUD, g.set, AT, LEEWAY, NULL, &err),
                     LY_ERR_PARSE);
    assert_int_equal(err.reason, JWTSVID_R_TYP);
    free(forged);
}

static void test_alg(void **state)
{
    (void)state;
    reject_free(sign_claims("{\"alg\":\"none\",\"kid\":\"k-ex\",\"typ\":\"at+jwt\"}",
                            std_claims(), g.ex),
                LY_ERR_VERIFY, TOKEN_R_ALG);
    reject_free(sign_claims("{\"alg\":\"HS256\",\"kid\":\"k-ex\",\"typ\":\"at+jwt\"}",
                            std_claims(), g.ex),
                LY_ERR_VERIFY, TOKEN_R_ALG);
    reject_free(sign_claims("{\"alg\":\"EdDSA\",\"kid\":\"k-ex\",\"typ\":\"at+jwt\"}",
                            std_claims(), g.ex),
                LY_ERR_VERIFY, TOKEN_R_ALG);
    reject_free(sign_claims("{\"kid\":\"k-ex\",\"typ\":\"at+jwt\"}", std_claims(), g.ex),
                LY_ERR_PARSE, TOKEN_R_ALG);
}

static void test_kid(void **state)
{
    char hdr[BUNDLE_KID_MAX + 64];

    (void)state;
    reject_free(sign_claims("{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", std_claims(), g.ex),
                LY_ERR_PARSE, TOKEN_R_KID);
    reject_free(sign_claims("{\"alg\":\"ES256\",\"kid\":\"\",\"typ\":\"at+jwt\"}", std_claims(),
                            g.ex),
                LY_ERR_PARSE, TOKEN_R_KID);
    reject_free(sign_claims("{\"alg\":\"ES256\",\"kid\":5,\"typ\":\"at+jwt\"}", std_claims(),
                            g.ex),
                LY_ERR_PARSE, TOKEN_R_KID);
    /* A 256-byte kid is a valid bundle kid and verifies, but does not fit token_claims.kid. */
    assert_true(snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"typ\":\"at+jwt\"}",
                         g.long_kid) < (int)sizeof(hdr));
    reject_free(sign_claims(hdr, std_claims(), g.ex), LY_ERR_PARSE, TOKEN_R_KID);
}

/* ---- issuer, bundle, key, signature ---- */

static void test_issuer(void **state)
{
    (void)state;
    reject_free(token_with("iss", NULL), LY_ERR_PARSE, TOKEN_R_ISSUER);
    reject_free(token_with("iss", json_integer(1)), LY_ERR_PARSE, TOKEN_R_ISSUER);
    reject_free(token_with("iss", json_string("https://example.org")), LY_ERR_PARSE,
                TOKEN_R_ISSUER);
    reject_free(token_with("iss", json_string("spiffe://example.org/")), LY_ERR_PARSE,
                TOKEN_R_ISSUER);
    reject_free(token_with("iss", json_string("spiffe://example.org/broker")), LY_ERR_PARSE,
                TOKEN_R_ISSUER);
    reject_free(token_with("iss", json_string("spiffe://Example.org")), LY_ERR_PARSE,
                TOKEN_R_ISSUER);
    reject_free(token_with("iss", json_string("example.org")), LY_ERR_PARSE, TOKEN_R_ISSUER);
}

static void test_no_bundle(void **state)
{
    (void)state;
    reject_free(token_with("iss", json_string("spiffe://nobundle.test")), LY_ERR_VERIFY,
                TOKEN_R_NO_BUNDLE);
    reject_free(token_with("iss", json_string("spiffe://empty.test")), LY_ERR_VERIFY,
                TOKEN_R_NO_BUNDLE);
    /* Never by suffix: evil-example.org is not example.org. */
    reject_free(token_with("iss", json_string("spiffe://evil-example.org")), LY_ERR_VERIFY,
                TOKEN_R_NO_BUNDLE);
}

static void test_key_only_from_issuers_bundle(void **state)
{
    json_t *c;
    char *tok;
    struct token_claims tc;

    (void)state;
    /* partner.test's key does not vouch for an example.org issuer, even by its own kid. */
    reject_free(sign_claims("{\"alg\":\"ES256\",\"kid\":\"" PARTNER_KID
                            "\",\"typ\":\"at+jwt\"}",
                            std_claims(), g.partner),
                LY_ERR_VERIFY, TOKEN_R_UNKNOWN_KID);
    reject_free(sign_claims("{\"alg\":\"ES256\",\"kid\":\"k-nope\",\"typ\":\"at+jwt\"}",
                            std_claims(), g.ex),
                LY_ERR_VERIFY, TOKEN_R_UNKNOWN_KID);
    /* Nor does example.org's key vouch for a partner.test issuer. */
    c = std_claims();
    assert_int_equal(json_object_set_new(c, "iss", json_string(PARTNER_ISS)), 0);
    reject_free(sign_claims(HDR_OK, c, g.ex), LY_ERR_VERIFY, TOKEN_R_UNKNOWN_KID);
    /* A foreign trust domain's issuer with its own bundle is accepted, for our client. */
    c = std_claims();
    assert_int_equal(json_object_set_new(c, "iss", json_string(PARTNER_ISS)), 0);
    tok = sign_claims("{\"alg\":\"ES256\",\"kid\":\"" PARTNER_KID "\",\"typ\":\"at+jwt\"}",
                      c, g.partner);
    verify_ok(tok, &tc);
    assert_string_equal(tc.issuer_td, "partner.test");
    assert_string_equal(tc.kid, PARTNER_KID);
    check_at(tok, AT, 0);
    free(tok);
}

static void test_signature(void **state)
{
    char *tok = std_token();
    char *copy;
    char *p;
    struct ly_buf t;
    struct ly_error err = {0};
    char *pay;
    json_t *j;

    (void)state;
    /* Signed by a key that is in no bundle, under example.org's kid. */
    reject_free(sign_claims(HDR_OK, std_claims(), g.rogue), LY_ERR_VERIFY, TOKEN_R_SIGNATURE);
    /* A flipped signature bit. */
    copy = strdup(tok);
    assert_non_null(copy);
    p = strrchr(copy, '.') + 5;
    *p = *p == 'A' ? 'B' : 'A';
    expect_signed_reject(copy, LY_ERR_VERIFY, TOKEN_R_SIGNATURE);
    free(copy);
    /* A payload changed under the same signature: another user. */
    pay = token_part(tok, 1);
    j = json_loads(pay, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_set_new(j, "sub", json_string("mallory")), 0);
    free(pay);
    pay = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    ly_error_clear(&err);
    ly_buf_init(&t, 65536);
    b64url(HDR_OK, strlen(HDR_OK), &t);
    assert_int_equal(ly_buf_append(&t, ".", 1, &err), 0);
    b64url(pay, strlen(pay), &t);
    assert_int_equal(ly_buf_append_str(&t, strrchr(tok, '.'), &err), 0);
    free(pay);
    expect_signed_reject((const char *)t.data, LY_ERR_VERIFY, TOKEN_R_SIGNATURE);
    ly_buf_free(&t);
    /* A signature of the wrong length for ES256. */
    ly_buf_init(&t, 65536);
    assert_int_equal(ly_buf_append(&t, tok, (size_t)(strrchr(tok, '.') - tok) + 1, &err), 0);
    b64url("short", 5, &t);
    expect_signed_reject((const char *)t.data, LY_ERR_VERIFY, TOKEN_R_SIGNATURE);
    ly_buf_free(&t);
    free(tok);
}

/* ---- malformed ---- */

static void test_malformed(void **state)
{
    char *tok = std_token();
    size_t len = strlen(tok);
    char *copy;
    char *big;
    struct ly_buf t;
    struct ly_error err = {0};

    (void)state;
    expect_signed_reject("", LY_ERR_PARSE, TOKEN_R_MALFORMED);
    expect_signed_reject("a.b", LY_ERR_PARSE, TOKEN_R_MALFORMED);
    expect_signed_reject("a.b.c.d", LY_ERR_PARSE, TOKEN_R_MALFORMED);
    expect_signed_reject("..", LY_ERR_PARSE, TOKEN_R_MALFORMED);
    expect_signed_reject("{\"payload\":\"x\",\"signatures\":[]}", LY_ERR_PARSE,
                         TOKEN_R_MALFORMED);
    /* Not base64url: '+' in the payload, and an embedded NUL. */
    copy = strdup(tok);
    assert_non_null(copy);
    copy[strchr(copy, '.') - copy + 3] = '+';
    expect_signed_reject(copy, LY_ERR_PARSE, TOKEN_R_MALFORMED);
    memcpy(copy, tok, len + 1);
    copy[len - 3] = '\0';
    expect_signed_reject_len(copy, len, LY_ERR_PARSE, TOKEN_R_MALFORMED);
    free(copy);
    /* Trailing white space is not the caller's to leave in. */
    ly_error_clear(&err);
    ly_buf_init(&t, 65536);
    assert_int_equal(ly_buf_appendf(&t, &err, "%s\n", tok), 0);
    expect_signed_reject((const char *)t.data, LY_ERR_PARSE, TOKEN_R_MALFORMED);
    ly_buf_free(&t);
    /* Header and payload must be JSON objects without duplicate members. */
    reject_free(sign_with("[1]", "{}", g.ex), LY_ERR_PARSE, TOKEN_R_MALFORMED);
    reject_free(sign_with(HDR_OK, "\"alice\"", g.ex), LY_ERR_PARSE, TOKEN_R_MALFORMED);
    reject_free(sign_with(HDR_OK,
                          "{\"iss\":\"" ISS "\",\"iss\":\"" PARTNER_ISS "\",\"sub\":\"alice\"}",
                          g.ex),
                LY_ERR_PARSE, TOKEN_R_MALFORMED);
    reject_free(sign_with("{\"alg\":\"ES256\",\"kid\":\"k-ex\",\"typ\":\"at+jwt\",\"crit\":[\"x\"]"
                          ",\"x\":1}",
                          "{}", g.ex),
                LY_ERR_VERIFY, TOKEN_R_MALFORMED);
    /* Longer than TOKEN_MAX_LEN. */
    big = malloc(TOKEN_MAX_LEN + 2);
    assert_non_null(big);
    memset(big, 'A', TOKEN_MAX_LEN + 1);
    memcpy(big, tok, len);
    big[TOKEN_MAX_LEN + 1] = '\0';
    expect_signed_reject(big, LY_ERR_PARSE, TOKEN_R_MALFORMED);
    free(big);
    /* jti: a string of at most 64 bytes when present. */
    reject_free(token_with("jti", json_integer(7)), LY_ERR_PARSE, TOKEN_R_MALFORMED);
    reject_free(token_with("jti", json_string("")), LY_ERR_PARSE, TOKEN_R_MALFORMED);
    reject_free(token_with("jti", json_string("0123456789012345678901234567890123456789"
                                              "0123456789012345678901234")),
                LY_ERR_PARSE, TOKEN_R_MALFORMED);
    free(tok);
}

static void test_jti_as_sent(void **state)
{
    struct token_claims c;
    char *tok;
    const char *j64 = "0123456789012345678901234567890123456789012345678901234567890123";

    (void)state;
    tok = token_with("jti", json_string(j64));
    verify_ok(tok, &c);
    assert_string_equal(c.jti, j64);
    free(tok);
    tok = token_with("jti", json_string("not-hex/uuid-ish"));
    verify_ok(tok, &c);
    assert_string_equal(c.jti, "not-hex/uuid-ish");
    free(tok);
    tok = token_with("jti", NULL);
    verify_ok(tok, &c);
    assert_string_equal(c.jti, "");
    free(tok);
}

/* ---- claims ---- */

static void test_sub(void **state)
{
    char long_user[CONSENT_USER_MAX + 2];
    struct token_claims c;
    char *tok;

    (void)state;
    memset(long_user, 'u', sizeof(long_user) - 1);
    long_user[sizeof(long_user) - 1] = '\0';
    reject_free(token_with("sub", NULL), LY_ERR_PARSE, TOKEN_R_SUB);
    reject_free(token_with("sub", json_integer(42)), LY_ERR_PARSE, TOKEN_R_SUB);
    reject_free(token_with("sub", json_string("")), LY_ERR_PARSE, TOKEN_R_SUB);
    reject_free(token_with("sub", json_string("al\x01ice")), LY_ERR_PARSE, TOKEN_R_SUB);
    /* jansson refuses \u0000 while parsing, so a NUL never gets as far as the claim check. */
    reject_free(token_with("sub", json_stringn("al\0ice", 6)), LY_ERR_PARSE, TOKEN_R_MALFORMED);
    reject_free(token_with("sub", json_string(long_user)), LY_ERR_PARSE, TOKEN_R_SUB);
    long_user[CONSENT_USER_MAX] = '\0';
    tok = token_with("sub", json_string(long_user));
    verify_ok(tok, &c);
    assert_string_equal(c.user, long_user);
    free(tok);
}

static void test_aud(void **state)
{
    char long_aud[TOKEN_AUD_MAX + 2];
    json_t *arr;
    struct token_claims c;
    char *tok;
    int i;

    (void)state;
    memset(long_aud, 'a', sizeof(long_aud) - 1);
    long_aud[sizeof(long_aud) - 1] = '\0';
    reject_free(token_with("aud", NULL), LY_ERR_PARSE, TOKEN_R_AUD_INVALID);
    reject_free(token_with("aud", json_integer(1)), LY_ERR_PARSE, TOKEN_R_AUD_INVALID);
    reject_free(token_with("aud", json_null()), LY_ERR_PARSE, TOKEN_R_AUD_INVALID);
    reject_free(token_with("aud", json_array()), LY_ERR_PARSE, TOKEN_R_AUD_INVALID);
    reject_free(token_with("aud", json_string("")), LY_ERR_PARSE, TOKEN_R_AUD_INVALID);
    reject_free(token_with("aud", json_string(long_aud)), LY_ERR_PARSE, TOKEN_R_AUD_INVALID);
    reject_free(token_with("aud", json_pack("[s,i]", AUD, 7)), LY_ERR_PARSE,
                TOKEN_R_AUD_INVALID);
    arr = json_array();
    for (i = 0; i < TOKEN_MAX_AUDIENCES + 1; i++) {
        assert_int_equal(json_array_append_new(arr, json_string(AUD)), 0);
    }
    reject_free(token_with("aud", arr), LY_ERR_PARSE, TOKEN_R_AUD_INVALID);
    /* An array holding the audience anywhere is accepted; one without it is a mismatch. */
    tok = token_with("aud", json_pack("[s,s]", "https://other.example", AUD));
    verify_ok(tok, &c);
    assert_int_equal(c.n_audiences, 2);
    assert_string_equal(c.audiences[1], AUD);
    check_at(tok, AT, 0);
    free(tok);
    arr = json_array();
    for (i = 0; i < TOKEN_MAX_AUDIENCES; i++) {
        assert_int_equal(json_array_append_new(arr, json_string(i == 15 ? AUD : "x")), 0);
    }
    tok = token_with("aud", arr);
    check_at(tok, AT, 0);
    free(tok);
    tok = token_with("aud", json_pack("[s,s]", "https://other.example", AUD "/x"));
    check_at(tok, AT, TOKEN_R_AUD_MISMATCH);
    free(tok);
    /* Exact bytes: no prefix, no case folding. */
    tok = token_with("aud", json_string("https://mcp.example.org/Tools"));
    check_at(tok, AT, TOKEN_R_AUD_MISMATCH);
    free(tok);
}

static void test_exp(void **state)
{
    char *tok;

    (void)state;
    reject_free(token_with("exp", NULL), LY_ERR_PARSE, TOKEN_R_EXP);
    reject_free(token_with("exp", json_string("1800000600")), LY_ERR_PARSE, TOKEN_R_EXP);
    reject_free(token_with("exp", json_true()), LY_ERR_PARSE, TOKEN_R_EXP);
    reject_free(token_with("exp", json_real(1e300)), LY_ERR_PARSE, TOKEN_R_EXP);
    /* Leeway edges: expired when now >= exp + leeway. */
    tok = token_with("exp", json_integer(AT - LEEWAY));
    check_at(tok, AT, TOKEN_R_EXPIRED);
    free(tok);
    tok = token_with("exp", json_integer(AT - LEEWAY + 1));
    check_at(tok, AT, 0);
    free(tok);
    tok = token_with("exp", json_integer(AT));
    check_at(tok, AT, 0);
    check_at(tok, AT + LEEWAY - 1, 0);
    check_at(tok, AT + LEEWAY, TOKEN_R_EXPIRED);
    free(tok);
    /* A fractional exp is rounded down. */
    tok = token_with("exp", json_real((double)(AT - LEEWAY) + 0.9));
    check_at(tok, AT, TOKEN_R_EXPIRED);
    free(tok);
    /* An expired token still passes the time-independent half (callers may cache it). */
    tok = token_with("exp", json_integer(1));
    check_at(tok, AT, TOKEN_R_EXPIRED);
    free(tok);
}

static void test_nbf_iat(void **state)
{
    char *tok;
    struct token_claims c;

    (void)state;
    reject_free(token_with("nbf", json_string("soon")), LY_ERR_PARSE, TOKEN_R_NBF);
    reject_free(token_with("iat", json_string("then")), LY_ERR_PARSE, TOKEN_R_NBF);
    reject_free(token_with("iat", json_null()), LY_ERR_PARSE, TOKEN_R_NBF);
    /* Leeway edges: not yet valid when now + leeway < nbf. */
    tok = token_with("nbf", json_integer(AT + LEEWAY));
    check_at(tok, AT, 0);
    free(tok);
    tok = token_with("nbf", json_integer(AT + LEEWAY + 1));
    check_at(tok, AT, TOKEN_R_NOT_YET_VALID);
    check_at(tok, AT + 1, 0);
    free(tok);
    /* A fractional nbf is rounded up. */
    tok = token_with("nbf", json_real((double)(AT + LEEWAY) + 0.25));
    check_at(tok, AT, TOKEN_R_NOT_YET_VALID);
    free(tok);
    /* nbf and iat are optional. */
    tok = token_with("nbf", NULL);
    verify_ok(tok, &c);
    assert_false(c.has_nbf);
    check_at(tok, AT, 0);
    free(tok);
    tok = token_with("iat", NULL);
    verify_ok(tok, &c);
    assert_false(c.has_iat);
    free(tok);
}

static void test_client_claims(void **state)
{
    json_t *c;
    char *tok;
    struct token_claims tc;

    (void)state;
    /* Neither claim. */
    c = std_claims();
    assert_int_equal(json_object_del(c, "azp"), 0);
    assert_int_equal(json_object_del(c, "client_id"), 0);
    reject_free(sign_claims(HDR_OK, c, g.ex), LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM);
    /* azp and client_id disagree: refused even though either alone would be fine. */
    reject_free(token_with("client_id", json_string(OTHER_CLIENT)), LY_ERR_VERIFY,
                TOKEN_R_CLIENT_CLAIM);
    reject_free(token_with("azp", json_string(OTHER_CLIENT)), LY_ERR_VERIFY,
                TOKEN_R_CLIENT_CLAIM);
    /* Not SPIFFE IDs, or a trust domain instead of a workload. */
    reject_free(token_with("azp", json_string("agent-a")), LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM);
    reject_free(token_with("azp", json_integer(3)), LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM);
    reject_free(token_with("client_id", json_string(ISS)), LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM);
    reject_free(token_with("client_id", json_string("spiffe://example.org/agent/../a")),
                LY_ERR_PARSE, TOKEN_R_CLIENT_CLAIM);
    /* Either alone names the client. */
    tok = token_with("azp", NULL);
    verify_ok(tok, &tc);
    assert_string_equal(tc.client.str, CLIENT);
    check_at(tok, AT, 0);
    free(tok);
    tok = token_with("client_id", NULL);
    verify_ok(tok, &tc);
    assert_string_equal(tc.client.str, CLIENT);
    free(tok);
}

static void test_wrong_client(void **state)
{
    char *tok = std_token();
    struct token_claims c;
    struct spiffeid same_path_other_td;
    struct ly_error err = {0};

    (void)state;
    verify_ok(tok, &c);
    ly_error_clear(&err);
    assert_int_equal(token_check(&c, AUD, &g.other_client, g.cert_a, AT, LEEWAY, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, TOKEN_R_WRONG_CLIENT);
    assert_non_null(strstr(err.msg, OTHER_CLIENT));
    mark(TOKEN_R_WRONG_CLIENT);
    ly_error_clear(&err);
    assert_int_equal(spiffeid_parse("spiffe://partner.test/agent/a", 29, &same_path_other_td,
                                    &err),
                     0);
    assert_int_equal(token_check(&c, AUD, &same_path_other_td, g.cert_a, AT, LEEWAY, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, TOKEN_R_WRONG_CLIENT);
    free(tok);
}

static void test_cnf(void **state)
{
    uint8_t h31[31];
    uint8_t h33[33];
    struct ly_buf b;
    struct ly_error err = {0};
    char s31[64];
    char s33[64];
    char padded[64];
    char *tok;
    struct token_claims c;

    (void)state;
    memset(h31, 0x11, sizeof(h31));
    memset(h33, 0x11, sizeof(h33));
    ly_error_clear(&err);
    assert_int_equal(ly_b64_encode(h31, sizeof(h31), 1, &b, 64, &err), 0);
    memcpy(s31, b.data, b.len + 1);
    ly_buf_free(&b);
    assert_int_equal(ly_b64_encode(h33, sizeof(h33), 1, &b, 64, &err), 0);
    memcpy(s33, b.data, b.len + 1);
    ly_buf_free(&b);
    assert_true(snprintf(padded, sizeof(padded), "%s=", g.cert_a_b64) < (int)sizeof(padded));

    reject_free(token_with("cnf", json_string(g.cert_a_b64)), LY_ERR_PARSE, TOKEN_R_CNF);
    reject_free(token_with("cnf", json_object()), LY_ERR_PARSE, TOKEN_R_CNF);
    reject_free(token_with("cnf", json_pack("{s:s}", "x5t#S256", s31)), LY_ERR_PARSE,
                TOKEN_R_CNF);
    reject_free(token_with("cnf", json_pack("{s:s}", "x5t#S256", s33)), LY_ERR_PARSE,
                TOKEN_R_CNF);
    reject_free(token_with("cnf", json_pack("{s:s}", "x5t#S256", padded)), LY_ERR_PARSE,
                TOKEN_R_CNF);
    reject_free(token_with("cnf", json_pack("{s:i}", "x5t#S256", 1)), LY_ERR_PARSE, TOKEN_R_CNF);
    /* A base64 (not base64url) character, and non-canonical trailing bits. */
    {
        char bad[64];
        memcpy(bad, g.cert_a_b64, strlen(g.cert_a_b64) + 1);
        bad[3] = '+';
        reject_free(token_with("cnf", json_pack("{s:s}", "x5t#S256", bad)), LY_ERR_PARSE,
                    TOKEN_R_CNF);
        memcpy(bad, g.cert_a_b64, strlen(g.cert_a_b64) + 1);
        bad[42] = 'F'; /* "...EQ" ends in bits that must be zero; F sets one */
        reject_free(token_with("cnf", json_pack("{s:s}", "x5t#S256", bad)), LY_ERR_PARSE,
                    TOKEN_R_CNF);
    }
    /* Another confirmation method, alone or next to x5t#S256, is not honoured here. */
    reject_free(token_with("cnf", json_pack("{s:s}", "jkt", g.cert_a_b64)), LY_ERR_PARSE,
                TOKEN_R_CNF);
    reject_free(token_with("cnf", json_pack("{s:s,s:s}", "x5t#S256", g.cert_a_b64, "jkt",
                                            g.cert_a_b64)),
                LY_ERR_PARSE, TOKEN_R_CNF);
    /* The binding holds: cert_a passes, cert_b is another certificate. */
    tok = std_token();
    verify_ok(tok, &c);
    assert_true(c.has_cnf);
    ly_error_clear(&err);
    assert_int_equal(token_check(&c, AUD, &g.client, g.cert_a, AT, LEEWAY, &err), 0);
    assert_int_equal(token_check(&c, AUD, &g.client, g.cert_b, AT, LEEWAY, &err), LY_ERR_VERIFY);
    assert_int_equal(err.reason, TOKEN_R_WRONG_CERT);
    mark(TOKEN_R_WRONG_CERT);
    free(tok);
}

/* ---- usage, internal, names, the combined call ---- */

static void test_usage(void **state)
{
    char *tok = std_token();
    struct token_claims c;
    struct ly_error err = {0};

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(token_verify_signed(NULL, 0, g.set, &c, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, TOKEN_R_USAGE);
    assert_int_equal(token_verify_signed(tok, strlen(tok), NULL, &c, &err), LY_ERR_USAGE);
    assert_int_equal(token_verify_signed(tok, strlen(tok), g.set, NULL, &err), LY_ERR_USAGE);
    verify_ok(tok, &c);
    /* The audience, client and certificate checks can never be switched off. */
    assert_int_equal(token_check(&c, "", &g.client, g.cert_a, AT, LEEWAY, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, TOKEN_R_USAGE);
    assert_int_equal(token_check(&c, NULL, &g.client, g.cert_a, AT, LEEWAY, &err), LY_ERR_USAGE);
    assert_int_equal(token_check(&c, AUD, NULL, g.cert_a, AT, LEEWAY, &err), LY_ERR_USAGE);
    assert_int_equal(token_check(&c, AUD, &g.client, NULL, AT, LEEWAY, &err), LY_ERR_USAGE);
    assert_int_equal(token_check(NULL, AUD, &g.client, g.cert_a, AT, LEEWAY, &err),
                     LY_ERR_USAGE);
    assert_int_equal(token_check(&c, AUD, &g.client, g.cert_a, AT, -1, &err), LY_ERR_USAGE);
    assert_int_equal(token_check(&c, AUD, &g.client, g.cert_a, AT, 301, &err), LY_ERR_USAGE);
    assert_int_equal(token_check(&c, AUD, &g.client, g.cert_a, -1, LEEWAY, &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, TOKEN_R_USAGE);
    free(tok);
}

static void test_cert_sha256(void **state)
{
    /* SHA-256("abc"), FIPS 180-2 appendix B.1. */
    static const uint8_t want[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad,
    };
    uint8_t h[32];
    struct ly_error err = {0};

    (void)state;
    ly_error_clear(&err);
    assert_int_equal(token_cert_sha256((const uint8_t *)"abc", 3, h, &err), 0);
    assert_memory_equal(h, want, 32);
    assert_int_equal(token_cert_sha256(NULL, 3, h, &err), LY_ERR_USAGE);
    ly_error_clear(&err);
    /* More than wolfCrypt's word32 can express: refused before any byte is read. */
    assert_int_equal(token_cert_sha256((const uint8_t *)"abc", (size_t)UINT32_MAX + 1, h, &err),
                     LY_ERR_INTERNAL);
    assert_int_equal(err.reason, TOKEN_R_INTERNAL);
    mark(TOKEN_R_INTERNAL);
}

/* Runs last: the matrix above reached every reason the contract names. */
static void test_every_reason_reached(void **state)
{
    int r;

    (void)state;
    for (r = TOKEN_R_USAGE; r <= TOKEN_R_INTERNAL; r++) {
        if (!g.reached[r]) {
            print_error("no test reached %s (%d)\n", token_reason_name(r), r);
        }
        assert_true(g.reached[r]);
    }
}

static void test_reason_names(void **state)
{
    int r;
    int s;

    (void)state;
    for (r = TOKEN_R_USAGE; r <= TOKEN_R_INTERNAL; r++) {
        const char *n = token_reason_name(r);
        assert_non_null(n);
        assert_string_not_equal(n, "token rejected");
        assert_true(strncmp(n, "token ", 6) == 0);
        for (s = TOKEN_R_USAGE; s < r; s++) {
            assert_string_not_equal(n, token_reason_name(s));
        }
    }
    assert_string_equal(token_reason_name(TOKEN_R_EXPIRED), "token expired");
    assert_string_equal(token_reason_name(TOKEN_R_AUD_MISMATCH), "token audience mismatch");
    assert_string_equal(token_reason_name(TOKEN_R_WRONG_CERT),
                        "token bound to another certificate");
    assert_string_equal(token_reason_name(TOKEN_R_WRONG_CLIENT), "token issued to another client");
    assert_string_equal(token_reason_name(0), "token rejected");
    assert_string_equal(token_reason_name(9999), "token rejected");
}

static void test_validate_combined(void **state)
{
    char *tok = std_token();
    struct token_claims c;
    struct token_claims zero;
    struct ly_error err = {0};

    (void)state;
    memset(&zero, 0, sizeof(zero));
    ly_error_clear(&err);
    assert_int_equal(token_validate(tok, strlen(tok), g.set, AUD, &g.client, g.cert_a, AT, LEEWAY,
                                    &c, &err),
                     0);
    assert_string_equal(c.user, USER);
    assert_int_equal(token_validate(tok, strlen(tok), g.set, AUD, &g.client, g.cert_a, AT, LEEWAY,
                                    NULL, &err),
                     0);
    /* A refused token leaves nothing behind, whichever half refused it. */
    assert_int_equal(token_validate(tok, strlen(tok), g.set, AUD, &g.client, g.cert_b, AT, LEEWAY,
                                    &c, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, TOKEN_R_WRONG_CERT);
    assert_memory_equal(&c, &zero, sizeof(c));
    assert_int_equal(token_validate(tok, strlen(tok), g.set, AUD, &g.client, g.cert_a,
                                    AT + 3600, LEEWAY, &c, &err),
                     LY_ERR_VERIFY);
    assert_int_equal(err.reason, TOKEN_R_EXPIRED);
    assert_memory_equal(&c, &zero, sizeof(c));
    assert_int_equal(token_validate("x.y.z", 5, g.set, AUD, &g.client, g.cert_a, AT, LEEWAY, &c,
                                    &err),
                     LY_ERR_PARSE);
    assert_int_equal(err.reason, TOKEN_R_MALFORMED);
    free(tok);
}

static void test_messages_escape_peer_text(void **state)
{
    struct token_claims c;
    struct ly_error err = {0};
    char *tok = token_with("sub", json_string("eve'\\"));

    (void)state;
    verify_ok(tok, &c);
    ly_error_clear(&err);
    assert_int_equal(token_check(&c, "https://elsewhere", &g.client, g.cert_a, AT, LEEWAY, &err),
                     LY_ERR_VERIFY);
    assert_non_null(strstr(err.msg, "eve\\x27\\x5c"));
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mint_roundtrip_bound),
        cmocka_unit_test(test_mint_roundtrip_unbound_and_fresh_jti),
        cmocka_unit_test(test_mint_refusals),
        cmocka_unit_test(test_jwt_svid_is_not_a_token),
        cmocka_unit_test(test_token_is_not_a_jwt_svid),
        cmocka_unit_test(test_alg),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_no_bundle),
        cmocka_unit_test(test_key_only_from_issuers_bundle),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_jti_as_sent),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_aud),
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_nbf_iat),
        cmocka_unit_test(test_client_claims),
        cmocka_unit_test(test_wrong_client),
        cmocka_unit_test(test_cnf),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_cert_sha256),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_validate_combined),
        cmocka_unit_test(test_messages_escape_peer_text),
        cmocka_unit_test(test_every_reason_reached),
    };

    return cmocka_run_group_tests_name("token", tests, group_setup, group_teardown);
}
