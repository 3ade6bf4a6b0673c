/*
 * spiffeid_test: runs every case of the SPIFFE ID vectors (tests/data/vectors/spiffeid/) through
 * svid/spiffeid.c, plus the length limits and comparison rules of checklist ID-1..ID-16.
 * A missing vector file is a failure, never a skip.
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

#include "../../svid/spiffeid.h"

#define MAX_REPORTED 10

static json_t *load_vectors(const char *name)
{
    const char *root = getenv("LANYARD_ROOT");
    char path[4096];
    json_error_t jerr;
    json_t *doc;
    int n;

    if (root == NULL || root[0] == '\0') {
        root = ".";
    }
    n = snprintf(path, sizeof(path), "%s/tests/data/vectors/spiffeid/%s", root, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        fail_msg("vector path too long");
    }
    doc = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (doc == NULL) {
        fail_msg("cannot load vector file %s: %s", path, jerr.text);
    }
    return doc;
}

/* Decode input_hex into buf (the exact bytes of the case). Returns the length. */
static size_t unhex(const char *hex, char *buf, size_t bufsz)
{
    size_t n = strlen(hex);
    size_t i;

    assert_true(n % 2 == 0);
    assert_true(n / 2 <= bufsz);
    for (i = 0; i < n / 2; i++) {
        unsigned v = 0;
        int k;
        for (k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= (unsigned)(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= (unsigned)(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= (unsigned)(c - 'A' + 10);
            } else {
                fail_msg("bad hex in vector: %s", hex);
            }
        }
        buf[i] = (char)v;
    }
    return n / 2;
}

/* The bytes of a case: input_hex when present (exact), else the JSON string itself. */
static size_t case_bytes(json_t *c, char *buf, size_t bufsz)
{
    json_t *hex = json_object_get(c, "input_hex");
    json_t *in = json_object_get(c, "input");

    if (json_is_string(hex)) {
        return unhex(json_string_value(hex), buf, bufsz);
    }
    assert_true(json_is_string(in));
    assert_true(json_string_length(in) <= bufsz);
    memcpy(buf, json_string_value(in), json_string_length(in));
    return json_string_length(in);
}

/*
 * Vector reason category -> enum spiffeid_reason. "no_leading_slash" (path vectors) has no enum
 * of its own: lanyard reports the misplaced first byte as BAD_PATH_CHAR.
 */
static int reason_of(const char *r)
{
    static const struct {
        const char *name;
        int reason;
    } map[] = {
        {"empty", SPIFFEID_R_EMPTY},
        {"wrong_scheme", SPIFFEID_R_WRONG_SCHEME},
        {"missing_td", SPIFFEID_R_MISSING_TD},
        {"bad_td_char", SPIFFEID_R_BAD_TD_CHAR},
        {"bad_path_char", SPIFFEID_R_BAD_PATH_CHAR},
        {"empty_segment", SPIFFEID_R_EMPTY_SEGMENT},
        {"dot_segment", SPIFFEID_R_DOT_SEGMENT},
        {"trailing_slash", SPIFFEID_R_TRAILING_SLASH},
        {"no_leading_slash", SPIFFEID_R_BAD_PATH_CHAR},
    };
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].name, r) == 0) {
            return map[i].reason;
        }
    }
    fail_msg("unknown reason category '%s' in vectors", r);
    return -1;
}

/*
 * The expected reason for an invalid case. go-spiffe files a NUL byte under the character
 * category of where it sits (bad_td_char / bad_path_char); lanyard's header gives NUL its own,
 * sharper reason (EMBEDDED_NUL), checked before the character rules. Both are rejections.
 */
static int expected_reason(json_t *c, const char *bytes, size_t len)
{
    json_t *r = json_object_get(c, "reason");

    assert_true(json_is_string(r));
    if (memchr(bytes, '\0', len) != NULL) {
        return SPIFFEID_R_EMBEDDED_NUL;
    }
    return reason_of(json_string_value(r));
}

static void report(int *bad, const char *what, const char *bytes, size_t len, const char *msg)
{
    if (*bad < MAX_REPORTED) {
        print_error("# %s: input '%.*s' (%zu bytes): %s\n", what, (int)(len > 80 ? 80 : len), bytes,
                    len, msg);
    }
    (*bad)++;
}

static size_t run_id_cases(json_t *cases, int *bad)
{
    size_t i;
    json_t *c;
    static char buf[8192];

    assert_true(json_is_array(cases));
    json_array_foreach (cases, i, c) {
        struct spiffeid id;
        struct ly_error err = {0};
        size_t len = case_bytes(c, buf, sizeof(buf));
        int valid = json_is_true(json_object_get(c, "valid"));
        int rc = spiffeid_parse(buf, len, &id, &err);

        if (valid) {
            const char *td;
            size_t td_len;
            const char *etd = json_string_value(json_object_get(c, "trust_domain"));
            const char *epath = json_string_value(json_object_get(c, "path"));
            if (rc != 0) {
                report(bad, "valid ID rejected", buf, len, err.msg);
                continue;
            }
            td = spiffeid_td(&id, &td_len);
            if (etd == NULL || epath == NULL || td_len != strlen(etd) ||
                memcmp(td, etd, td_len) != 0 || strcmp(spiffeid_path(&id), epath) != 0) {
                report(bad, "wrong trust domain/path", buf, len, id.str);
                continue;
            }
            /* No normalisation: the canonical form is the input, byte for byte. */
            if (id.len != len || memcmp(id.str, buf, len) != 0) {
                report(bad, "did not round-trip", buf, len, id.str);
            }
        } else {
            int want = expected_reason(c, buf, len);
            if (rc != LY_ERR_PARSE || err.code != LY_ERR_PARSE) {
                report(bad, "invalid ID accepted", buf, len, "");
            } else if (err.reason != want) {
                char m[LY_ERROR_MSG_MAX + 64];
                snprintf(m, sizeof(m), "reason %d, want %d (%s)", err.reason, want, err.msg);
                report(bad, "wrong reason", buf, len, m);
            } else if (err.msg[0] == '\0') {
                report(bad, "no message", buf, len, "");
            }
        }
    }
    return json_array_size(cases);
}

static void test_id_vectors(void **state)
{
    json_t *doc = load_vectors("spiffe-id-vectors.json");
    int bad = 0;
    size_t n;

    (void)state;
    n = run_id_cases(json_object_get(doc, "cases"), &bad);
    assert_int_equal(n, 551);
    n = run_id_cases(json_object_get(doc, "spec_derived"), &bad);
    assert_int_equal(n, 10);
    json_decref(doc);
    assert_int_equal(bad, 0);
}

static void test_trust_domain_vectors(void **state)
{
    json_t *doc = load_vectors("trust-domain-vectors.json");
    json_t *cases = json_object_get(doc, "cases");
    json_t *c;
    size_t i;
    int bad = 0;
    static char buf[8192];

    (void)state;
    assert_true(json_is_array(cases));
    assert_int_equal(json_array_size(cases), 310);
    json_array_foreach (cases, i, c) {
        char td[SPIFFEID_TD_MAX_LEN + 1];
        struct ly_error err = {0};
        size_t len = case_bytes(c, buf, sizeof(buf));
        int rc = spiffeid_parse_trust_domain(buf, len, td, sizeof(td), &err);

        if (json_is_true(json_object_get(c, "valid"))) {
            const char *etd = json_string_value(json_object_get(c, "trust_domain"));
            if (rc != 0) {
                report(&bad, "valid trust domain rejected", buf, len, err.msg);
            } else if (etd == NULL || strcmp(td, etd) != 0) {
                report(&bad, "wrong trust domain", buf, len, td);
            }
        } else {
            int want = expected_reason(c, buf, len);
            if (rc != LY_ERR_PARSE) {
                report(&bad, "invalid trust domain accepted", buf, len, "");
            } else if (err.reason != want) {
                char m[LY_ERROR_MSG_MAX + 64];
                snprintf(m, sizeof(m), "reason %d, want %d (%s)", err.reason, want, err.msg);
                report(&bad, "wrong reason", buf, len, m);
            }
        }
    }
    json_decref(doc);
    assert_int_equal(bad, 0);
}

static void test_path_vectors(void **state)
{
    json_t *doc = load_vectors("path-vectors.json");
    json_t *cases = json_object_get(doc, "cases");
    json_t *c;
    size_t i;
    int bad = 0;
    char buf[256];

    (void)state;
    assert_true(json_is_array(cases));
    assert_int_equal(json_array_size(cases), 12);
    json_array_foreach (cases, i, c) {
        struct ly_error err = {0};
        size_t len = case_bytes(c, buf, sizeof(buf));
        const char *kind = json_string_value(json_object_get(c, "kind"));
        int rc;

        assert_non_null(kind);
        if (strcmp(kind, "path") == 0) {
            rc = spiffeid_validate_path(buf, len, &err);
        } else {
            assert_string_equal(kind, "segment");
            rc = spiffeid_validate_segment(buf, len, &err);
        }
        if (json_is_true(json_object_get(c, "valid"))) {
            if (rc != 0) {
                report(&bad, "valid path rejected", buf, len, err.msg);
            }
        } else {
            int want = expected_reason(c, buf, len);
            if (rc != LY_ERR_PARSE || err.reason != want) {
                report(&bad, "path: wrong outcome", buf, len, rc == 0 ? "accepted" : err.msg);
            }
        }
    }
    json_decref(doc);
    assert_int_equal(bad, 0);
}

/* "" stands for the zero (unset) ID value, as in the vectors. */
static void id_or_zero(const char *s, struct spiffeid *id)
{
    struct ly_error err = {0};

    memset(id, 0, sizeof(*id));
    if (s[0] != '\0') {
        assert_int_equal(spiffeid_parse(s, strlen(s), id, &err), 0);
    }
}

static int matcher_matches(json_t *m, const struct spiffeid *id)
{
    const char *type = json_string_value(json_object_get(m, "type"));
    struct spiffeid want;
    json_t *v;
    size_t i;

    assert_non_null(type);
    if (strcmp(type, "any") == 0) {
        return 1;
    }
    if (strcmp(type, "id") == 0) {
        id_or_zero(json_string_value(json_object_get(m, "id")), &want);
        return spiffeid_equal(&want, id);
    }
    if (strcmp(type, "one_of") == 0) {
        json_array_foreach (json_object_get(m, "ids"), i, v) {
            id_or_zero(json_string_value(v), &want);
            if (spiffeid_equal(&want, id)) {
                return 1;
            }
        }
        return 0;
    }
    assert_string_equal(type, "member_of");
    return spiffeid_member_of(id, json_string_value(json_object_get(m, "trust_domain")));
}

static void test_match_vectors(void **state)
{
    json_t *doc = load_vectors("match-vectors.json");
    json_t *rows = json_object_get(doc, "rows");
    json_t *row;
    json_t *res;
    size_t i;
    size_t j;
    size_t n = 0;

    (void)state;
    assert_true(json_is_array(rows));
    assert_int_equal(json_array_size(rows), 7);
    json_array_foreach (rows, i, row) {
        json_t *m = json_object_get(row, "matcher");
        json_array_foreach (json_object_get(row, "results"), j, res) {
            struct spiffeid id;
            int want = json_is_true(json_object_get(res, "match"));
            const char *s = json_string_value(json_object_get(res, "id"));
            assert_non_null(s);
            id_or_zero(s, &id);
            if (matcher_matches(m, &id) != want) {
                fail_msg("%s: id '%s' should %smatch",
                         json_string_value(json_object_get(row, "test")), s, want ? "" : "not ");
            }
            n++;
        }
    }
    assert_int_equal(n, 42);
    json_decref(doc);
}

static void fill(char *p, size_t n, char c)
{
    memset(p, c, n);
}

static void test_length_limits(void **state)
{
    static char buf[SPIFFEID_MAX_LEN + 16];
    struct spiffeid id;
    struct spiffeid id2;
    struct ly_error err = {0};
    char td[SPIFFEID_TD_MAX_LEN + 2];
    size_t n;

    (void)state;
    /* ID-12: exactly 2048 bytes parses and round-trips. */
    memcpy(buf, "spiffe://example.org/", 21);
    fill(buf + 21, SPIFFEID_MAX_LEN - 21, 'a');
    assert_int_equal(spiffeid_parse(buf, SPIFFEID_MAX_LEN, &id, &err), 0);
    assert_int_equal(id.len, SPIFFEID_MAX_LEN);
    assert_int_equal(strlen(id.str), SPIFFEID_MAX_LEN);
    assert_memory_equal(id.str, buf, SPIFFEID_MAX_LEN);
    assert_int_equal(spiffeid_parse(id.str, id.len, &id2, &err), 0);
    assert_true(spiffeid_equal(&id, &id2));
    assert_int_equal(spiffeid_from_parts("example.org", spiffeid_path(&id), &id2, &err), 0);
    assert_true(spiffeid_equal(&id, &id2));

    /* ID-13: 2049 bytes is refused. */
    buf[SPIFFEID_MAX_LEN] = 'a';
    assert_int_equal(spiffeid_parse(buf, SPIFFEID_MAX_LEN + 1, &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_TOO_LONG);
    buf[SPIFFEID_MAX_LEN] = '\0';
    assert_int_equal(spiffeid_from_parts("example.org1", spiffeid_path(&id2), &id, &err),
                     LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_TOO_LONG);

    /* ID-14: a 255-byte trust domain is accepted, 256 is refused. */
    memcpy(buf, "spiffe://", 9);
    fill(buf + 9, SPIFFEID_TD_MAX_LEN, 'b');
    memcpy(buf + 9 + SPIFFEID_TD_MAX_LEN, "/w", 2);
    n = 9 + SPIFFEID_TD_MAX_LEN + 2;
    assert_int_equal(spiffeid_parse(buf, n, &id, &err), 0);
    assert_int_equal(id.td_len, SPIFFEID_TD_MAX_LEN);
    assert_int_equal(
        spiffeid_parse_trust_domain(buf + 9, SPIFFEID_TD_MAX_LEN, td, sizeof(td), &err), 0);
    assert_int_equal(strlen(td), SPIFFEID_TD_MAX_LEN);
    assert_int_equal(spiffeid_from_parts(td, "/w", &id2, &err), 0);
    assert_true(spiffeid_equal(&id, &id2));

    memcpy(buf, "spiffe://", 9);
    fill(buf + 9, SPIFFEID_TD_MAX_LEN + 1, 'b');
    memcpy(buf + 9 + SPIFFEID_TD_MAX_LEN + 1, "/w", 2);
    n = 9 + SPIFFEID_TD_MAX_LEN + 3;
    assert_int_equal(spiffeid_parse(buf, n, &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_TD_TOO_LONG);
    assert_int_equal(
        spiffeid_parse_trust_domain(buf + 9, SPIFFEID_TD_MAX_LEN + 1, td, sizeof(td), &err),
        LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_TD_TOO_LONG);
    assert_int_equal(spiffeid_parse_trust_domain(buf, n - 2, td, sizeof(td), &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_TD_TOO_LONG);
    buf[9 + SPIFFEID_TD_MAX_LEN + 1] = '\0';
    assert_int_equal(spiffeid_from_parts(buf + 9, "/w", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_TD_TOO_LONG);

    /* A too-small output buffer is a usage error, never a truncated name. */
    assert_int_equal(spiffeid_parse_trust_domain("example.org", 11, td, 5, &err), LY_ERR_USAGE);
}

static void test_embedded_nul(void **state)
{
    static const char in1[] = "spiffe://example.org\0/w";
    static const char in2[] = "spiffe://example.org/w\0x";
    static const char in3[] = "spif\0fe://example.org/w";
    char td[SPIFFEID_TD_MAX_LEN + 1];
    struct spiffeid id;
    struct ly_error err = {0};

    (void)state;
    assert_int_equal(spiffeid_parse(in1, sizeof(in1) - 1, &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_EMBEDDED_NUL);
    assert_int_equal(spiffeid_parse(in2, sizeof(in2) - 1, &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_EMBEDDED_NUL);
    assert_int_equal(spiffeid_parse(in3, sizeof(in3) - 1, &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_EMBEDDED_NUL);
    /* The parse must not leave a half-filled ID behind. */
    assert_int_equal(id.len, 0);
    assert_int_equal(spiffeid_parse_trust_domain("exa\0mple.org", 12, td, sizeof(td), &err),
                     LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_EMBEDDED_NUL);
    assert_int_equal(spiffeid_validate_path("/a\0b", 4, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_EMBEDDED_NUL);
    assert_int_equal(spiffeid_validate_segment("a\0", 2, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_EMBEDDED_NUL);
}

static void test_from_parts(void **state)
{
    struct spiffeid id;
    struct spiffeid parsed;
    struct ly_error err = {0};

    (void)state;
    assert_int_equal(spiffeid_from_parts("example.org", "/ns/prod/sa/web", &id, &err), 0);
    assert_string_equal(id.str, "spiffe://example.org/ns/prod/sa/web");
    assert_int_equal(spiffeid_parse(id.str, id.len, &parsed, &err), 0);
    assert_true(spiffeid_equal(&id, &parsed));
    assert_int_equal(spiffeid_from_parts("example.org", "", &id, &err), 0);
    assert_string_equal(id.str, "spiffe://example.org");
    assert_true(spiffeid_is_root(&id));

    assert_int_equal(spiffeid_from_parts("Example.org", "/w", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_BAD_TD_CHAR);
    assert_int_equal(spiffeid_from_parts("", "/w", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_MISSING_TD);
    /* A full ID is not a trust domain name. */
    assert_int_equal(spiffeid_from_parts("spiffe://example.org", "/w", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_BAD_TD_CHAR);
    assert_int_equal(spiffeid_from_parts("example.org", "w", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_BAD_PATH_CHAR);
    assert_int_equal(spiffeid_from_parts("example.org", "/w/", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_TRAILING_SLASH);
    assert_int_equal(spiffeid_from_parts("example.org", "/a//b", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_EMPTY_SEGMENT);
    assert_int_equal(spiffeid_from_parts("example.org", "/a/../b", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_DOT_SEGMENT);
    assert_int_equal(spiffeid_from_parts("example.org", "/%41", &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_BAD_PATH_CHAR);
    assert_int_equal(spiffeid_from_parts(NULL, "/w", &id, &err), LY_ERR_USAGE);
    assert_int_equal(spiffeid_from_parts("example.org", NULL, &id, &err), LY_ERR_USAGE);
}

static void test_td_copy_and_root(void **state)
{
    struct spiffeid id;
    struct ly_error err = {0};
    char td[SPIFFEID_TD_MAX_LEN + 1];
    char small[4];
    size_t len;

    (void)state;
    assert_int_equal(spiffeid_parse("spiffe://example.org/w", 22, &id, &err), 0);
    assert_int_equal(spiffeid_td_copy(&id, td, sizeof(td)), 0);
    assert_string_equal(td, "example.org");
    assert_int_equal(spiffeid_td_copy(&id, small, sizeof(small)), -1);
    assert_int_equal(spiffeid_td_copy(&id, td, 12), 0);
    assert_int_equal(spiffeid_td_copy(&id, td, 11), -1);
    assert_memory_equal(spiffeid_td(&id, &len), "example.org", 11);
    assert_int_equal(len, 11);
    assert_string_equal(spiffeid_path(&id), "/w");
    assert_false(spiffeid_is_root(&id));
    assert_true(spiffeid_member_of(&id, "example.org"));

    assert_int_equal(spiffeid_parse("spiffe://example.org", 20, &id, &err), 0);
    assert_true(spiffeid_is_root(&id));
    assert_string_equal(spiffeid_path(&id), "");
}

static void test_case_and_suffix(void **state)
{
    struct spiffeid a;
    struct spiffeid b;
    struct ly_error err = {0};

    (void)state;
    /* ID-15: paths are case-sensitive. */
    assert_int_equal(spiffeid_parse("spiffe://td/foo", 15, &a, &err), 0);
    assert_int_equal(spiffeid_parse("spiffe://td/Foo", 15, &b, &err), 0);
    assert_false(spiffeid_equal(&a, &b));
    assert_true(spiffeid_equal(&a, &a));
    /* ID-16: no uppercase scheme or trust domain at all. */
    assert_int_equal(spiffeid_parse("SPIFFE://td/foo", 15, &b, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_WRONG_SCHEME);
    assert_int_equal(spiffeid_parse("spiffe://TD/foo", 15, &b, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_BAD_TD_CHAR);

    /* ID-7: "example.org." is a different, valid trust domain. */
    assert_int_equal(spiffeid_parse("spiffe://example.org./w", 23, &a, &err), 0);
    assert_int_equal(spiffeid_parse("spiffe://example.org/w", 22, &b, &err), 0);
    assert_false(spiffeid_equal(&a, &b));
    assert_false(spiffeid_member_of(&a, "example.org"));
    assert_true(spiffeid_member_of(&a, "example.org."));

    /* Never a suffix or prefix match on the trust domain. */
    assert_int_equal(spiffeid_parse("spiffe://evil-example.org/w", 27, &a, &err), 0);
    assert_false(spiffeid_member_of(&a, "example.org"));
    assert_false(spiffeid_member_of(&b, "example.or"));
    assert_false(spiffeid_member_of(&b, "example.org.uk"));
    assert_false(spiffeid_member_of(&b, NULL));
}

static void test_messages_escaped(void **state)
{
    static const char in[] = "spiffe://exa\x01mple.org/w";
    static const char in2[] = "spiffe://example.org/caf\xc3\xa9";
    char big[600];
    struct spiffeid id;
    struct ly_error err = {0};

    (void)state;
    assert_int_equal(spiffeid_parse(in, sizeof(in) - 1, &id, &err), LY_ERR_PARSE);
    assert_non_null(strstr(err.msg, "\\x01"));
    assert_int_equal(spiffeid_parse(in2, sizeof(in2) - 1, &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_BAD_PATH_CHAR);
    assert_non_null(strstr(err.msg, "\\xc3"));
    /* A long bad segment is quoted only in part. */
    memcpy(big, "spiffe://e/", 11);
    memset(big + 11, 'a', sizeof(big) - 12);
    big[sizeof(big) - 2] = '$';
    assert_int_equal(spiffeid_parse(big, sizeof(big) - 1, &id, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, SPIFFEID_R_BAD_PATH_CHAR);
    assert_non_null(strstr(err.msg, "..."));
    assert_true(strlen(err.msg) < 200);
    /* Query, fragment, port, userinfo, percent, IPv6 (ID-3, ID-4, ID-6, ID-7). */
    assert_int_equal(spiffeid_parse("spiffe://e.org/w?x=1", 20, &id, &err), LY_ERR_PARSE);
    assert_int_equal(spiffeid_parse("spiffe://e.org/w#f", 18, &id, &err), LY_ERR_PARSE);
    assert_int_equal(spiffeid_parse("spiffe://e.org:1/w", 18, &id, &err), LY_ERR_PARSE);
    assert_int_equal(spiffeid_parse("spiffe://u@e.org/w", 18, &id, &err), LY_ERR_PARSE);
    assert_int_equal(spiffeid_parse("spiffe://%62/w", 14, &id, &err), LY_ERR_PARSE);
    assert_int_equal(spiffeid_parse("spiffe://[::1]/w", 16, &id, &err), LY_ERR_PARSE);
    assert_int_equal(spiffeid_parse(NULL, 0, &id, &err), LY_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_vectors),      cmocka_unit_test(test_trust_domain_vectors),
        cmocka_unit_test(test_path_vectors),    cmocka_unit_test(test_match_vectors),
        cmocka_unit_test(test_length_limits),   cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_from_parts),      cmocka_unit_test(test_td_copy_and_root),
        cmocka_unit_test(test_case_and_suffix), cmocka_unit_test(test_messages_escaped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
