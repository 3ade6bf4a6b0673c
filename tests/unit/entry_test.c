/*
 * Unit tests for broker/entry: selector parse/format round trips, every rejection with its
 * reason code, entry building and validation (SPIFFE ID, trust domain, TTL, DNS, hint caps),
 * the duplicate key, JSON output, and the ALL-selectors matching rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/ca.h"
#include "../../broker/entry.h"

static void round_trip(const char *in)
{
    struct entry_selector s;
    struct ly_buf out;
    struct ly_error e = {0};

    ly_error_clear(&e);
    assert_int_equal(entry_selector_parse(in, strlen(in), &s, &e), 0);
    assert_int_equal(entry_selector_format(&s, &out, &e), 0);
    assert_string_equal((const char *)out.data, in);
    ly_buf_free(&out);
    entry_selector_clear(&s);
    entry_selector_clear(&s); /* idempotent */
}

static void test_selector_round_trips(void **state)
{
    char path[5000];
    (void)state;

    round_trip("unix:uid:0");
    round_trip("unix:uid:1000");
    round_trip("unix:uid:4294967294");
    round_trip("unix:gid:65534");
    round_trip("unix:user:alice");
    round_trip("unix:user:svc-mcp.worker_1$");
    round_trip("unix:group:mcp");
    round_trip("unix:supplementary_gid:27");
    round_trip("unix:supplementary_group:docker");
    round_trip("unix:path:/usr/bin/mcp-server");
    round_trip("unix:path:/opt/caf\xc3\xa9/bin/x y"); /* UTF-8 and a space are allowed */
    round_trip("unix:path:/a/.hidden/..x/x..");
    round_trip("unix:sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    /* A path of exactly the cap is fine. */
    memcpy(path, "unix:path:/", 11);
    memset(path + 11, 'a', ENTRY_SELECTOR_VALUE_MAX - 1);
    path[10 + ENTRY_SELECTOR_VALUE_MAX] = '\0';
    round_trip(path);
}

struct reject {
    const char *sel;
    size_t len; /* 0: strlen */
    int reason;
};

static void test_selector_rejections(void **state)
{
    static const struct reject cases[] = {
        {"", 0, ENTRY_R_SEL_EMPTY},
        {"k8s:ns:default", 0, ENTRY_R_SEL_PREFIX},
        {"UNIX:uid:1", 0, ENTRY_R_SEL_PREFIX},
        {"unix", 0, ENTRY_R_SEL_PREFIX},
        {"docker:label:x", 0, ENTRY_R_SEL_PREFIX},
        {"unix:uid", 0, ENTRY_R_SEL_EMPTY},
        {"unix:", 0, ENTRY_R_SEL_EMPTY},
        {"unix:pid:1", 0, ENTRY_R_SEL_TYPE},
        {"unix:UID:1", 0, ENTRY_R_SEL_TYPE},
        {"unix::1", 0, ENTRY_R_SEL_TYPE},
        {"unix:uid:", 0, ENTRY_R_SEL_EMPTY},
        {"unix:uid:abc", 0, ENTRY_R_SEL_NUMBER},
        {"unix:uid:-1", 0, ENTRY_R_SEL_NUMBER},
        {"unix:uid:+1", 0, ENTRY_R_SEL_NUMBER},
        {"unix:uid: 1", 0, ENTRY_R_SEL_NUMBER},
        {"unix:uid:1 ", 0, ENTRY_R_SEL_NUMBER},
        {"unix:uid:0x10", 0, ENTRY_R_SEL_NUMBER},
        {"unix:uid:007", 0, ENTRY_R_SEL_NUMBER},
        {"unix:gid:1.5", 0, ENTRY_R_SEL_NUMBER},
        {"unix:uid:4294967295", 0, ENTRY_R_SEL_RANGE},
        {"unix:gid:99999999999", 0, ENTRY_R_SEL_RANGE},
        {"unix:uid:123456789012345678901234567890", 0, ENTRY_R_SEL_RANGE},
        {"unix:supplementary_gid:4294967296", 0, ENTRY_R_SEL_RANGE},
        {"unix:user:", 0, ENTRY_R_SEL_EMPTY},
        {"unix:group:", 0, ENTRY_R_SEL_EMPTY},
        {"unix:user:al ice", 0, ENTRY_R_SEL_NAME},
        {"unix:user:al:ice", 0, ENTRY_R_SEL_NAME},
        {"unix:group:a\tb", 0, ENTRY_R_SEL_NAME},
        {"unix:user:a\nb", 0, ENTRY_R_SEL_NAME},
        {"unix:user:\xff", 0, ENTRY_R_SEL_NAME},
        {"unix:path:", 0, ENTRY_R_SEL_EMPTY},
        {"unix:path:usr/bin/x", 0, ENTRY_R_SEL_PATH_RELATIVE},
        {"unix:path:./x", 0, ENTRY_R_SEL_PATH_RELATIVE},
        {"unix:path:~/x", 0, ENTRY_R_SEL_PATH_RELATIVE},
        {"unix:path:/usr/../bin/x", 0, ENTRY_R_SEL_PATH_SEGMENT},
        {"unix:path:/usr/bin/..", 0, ENTRY_R_SEL_PATH_SEGMENT},
        {"unix:path:/usr/./bin/x", 0, ENTRY_R_SEL_PATH_SEGMENT},
        {"unix:path:/usr//bin/x", 0, ENTRY_R_SEL_PATH_SEGMENT},
        {"unix:path:/usr/bin/", 0, ENTRY_R_SEL_PATH_SEGMENT},
        {"unix:path:/", 0, ENTRY_R_SEL_PATH_SEGMENT},
        {"unix:path:/usr/bin/x\n", 0, ENTRY_R_SEL_PATH_CHAR},
        {"unix:path:/usr/bin/\x7f", 0, ENTRY_R_SEL_PATH_CHAR},
        {"unix:path:/usr/bin/\xc3", 0, ENTRY_R_SEL_PATH_CHAR},
        {"unix:path:/usr/bin/\xc0\xaf", 0, ENTRY_R_SEL_PATH_CHAR}, /* overlong '/' */
        {"unix:path:/usr/bin\0/x", 19, ENTRY_R_SEL_NUL},
        {"unix:uid:1\0", 11, ENTRY_R_SEL_NUL},
        {"unix:sha256:", 0, ENTRY_R_SEL_EMPTY},
        {"unix:sha256:abc", 0, ENTRY_R_SEL_HEX},
        {"unix:sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 0,
         ENTRY_R_SEL_HEX},
        {"unix:sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", 0,
         ENTRY_R_SEL_HEX},
        {"unix:sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", 0,
         ENTRY_R_SEL_HEX},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct entry_selector s;
        struct ly_error e = {0};
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].sel);
        int rc;

        ly_error_clear(&e);
        rc = entry_selector_parse(cases[i].sel, len, &s, &e);
        if (rc != LY_ERR_PARSE || e.reason != cases[i].reason) {
            fprintf(stderr, "# case %zu '%s': rc %d reason %d (want %d): %s\n", i, cases[i].sel,
                    rc, e.reason, cases[i].reason, e.msg);
        }
        assert_int_equal(rc, LY_ERR_PARSE);
        assert_int_equal(e.reason, cases[i].reason);
        assert_true(strlen(e.msg) > 10);
        assert_null(s.value);
        /* Messages never carry raw control bytes. */
        assert_null(strchr(e.msg, '\n'));
        assert_null(strchr(e.msg, '\t'));
    }
}

static void test_selector_too_long(void **state)
{
    char *big = malloc(ENTRY_SELECTOR_VALUE_MAX + 32);
    struct entry_selector s;
    struct ly_error e = {0};
    (void)state;

    assert_non_null(big);
    memcpy(big, "unix:path:/", 11);
    memset(big + 11, 'a', ENTRY_SELECTOR_VALUE_MAX);
    ly_error_clear(&e);
    assert_int_equal(entry_selector_parse(big, 11 + ENTRY_SELECTOR_VALUE_MAX, &s, &e),
                     LY_ERR_PARSE);
    assert_int_equal(e.reason, ENTRY_R_SEL_TOO_LONG);
    memcpy(big, "unix:user:", 10);
    memset(big + 10, 'u', ENTRY_NAME_MAX + 1);
    ly_error_clear(&e);
    assert_int_equal(entry_selector_parse(big, 10 + ENTRY_NAME_MAX + 1, &s, &e), LY_ERR_PARSE);
    assert_int_equal(e.reason, ENTRY_R_SEL_TOO_LONG);
    /* Long hostile input is capped in the message. */
    memcpy(big, "bogus:", 6);
    memset(big + 6, 'z', 3000);
    ly_error_clear(&e);
    assert_int_equal(entry_selector_parse(big, 3006, &s, &e), LY_ERR_PARSE);
    assert_true(strlen(e.msg) < LY_ERROR_MSG_MAX);
    free(big);
}

static void test_type_names(void **state)
{
    enum entry_sel_type t;
    (void)state;

    assert_string_equal(entry_sel_type_name(ENTRY_SEL_SHA256), "sha256");
    assert_string_equal(entry_sel_type_name((enum entry_sel_type)99), "unknown");
    assert_int_equal(entry_sel_type_parse("supplementary_group", &t), 0);
    assert_int_equal(t, ENTRY_SEL_SUPPL_GROUP);
    assert_int_equal(entry_sel_type_parse("pid", &t), -1);
    assert_int_equal(entry_sel_type_parse(NULL, &t), -1);
    assert_int_equal(entry_selector_check(ENTRY_SEL_UID, "12", 2, NULL), 0);
    assert_int_equal(entry_selector_check((enum entry_sel_type)99, "12", 2, NULL),
                     LY_ERR_PARSE);
}

static struct entry *make_entry(const char *id, const char *const *sels, size_t n)
{
    struct entry *e = entry_new();
    struct ly_error err = {0};
    size_t i;

    ly_error_clear(&err);
    assert_non_null(e);
    assert_int_equal(entry_set_spiffe_id(e, id, strlen(id), &err), 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(entry_add_selector(e, sels[i], strlen(sels[i]), &err), 0);
    }
    return e;
}

static void facts_of(const char *const *v, size_t n, struct entry_selector *out)
{
    size_t i;
    struct ly_error e = {0};

    for (i = 0; i < n; i++) {
        ly_error_clear(&e);
        assert_int_equal(entry_selector_parse(v[i], strlen(v[i]), &out[i], &e), 0);
    }
}

static void test_matching_all(void **state)
{
    static const char *const sels[] = {"unix:uid:1000", "unix:path:/usr/bin/mcp"};
    static const char *const facts_ok[] = {"unix:uid:1000", "unix:gid:1000", "unix:user:alice",
                                           "unix:path:/usr/bin/mcp"};
    static const char *const facts_uid_only[] = {"unix:uid:1000", "unix:gid:1000",
                                                 "unix:path:/usr/bin/other"};
    static const char *const facts_path_only[] = {"unix:uid:1001", "unix:path:/usr/bin/mcp"};
    static const char *const facts_gid_not_uid[] = {"unix:gid:1000", "unix:path:/usr/bin/mcp"};
    struct entry_selector f[4];
    struct entry *e = make_entry("spiffe://ex.test/mcp", sels, 2);
    struct entry *none = entry_new();
    size_t i;
    (void)state;

    facts_of(facts_ok, 4, f);
    assert_int_equal(entry_matches(e, f, 4), 1);
    assert_int_equal(entry_matches(e, f, 3), 0); /* without the path fact */
    assert_int_equal(entry_matches(none, f, 4), 0); /* no selectors never matches */
    assert_int_equal(entry_matches(NULL, f, 4), 0);
    for (i = 0; i < 4; i++) {
        entry_selector_clear(&f[i]);
    }
    facts_of(facts_uid_only, 3, f);
    assert_int_equal(entry_matches(e, f, 3), 0);
    for (i = 0; i < 3; i++) {
        entry_selector_clear(&f[i]);
    }
    facts_of(facts_path_only, 2, f);
    assert_int_equal(entry_matches(e, f, 2), 0);
    for (i = 0; i < 2; i++) {
        entry_selector_clear(&f[i]);
    }
    /* Same number, other type: gid 1000 is not uid 1000. */
    facts_of(facts_gid_not_uid, 2, f);
    assert_int_equal(entry_matches(e, f, 2), 0);
    for (i = 0; i < 2; i++) {
        entry_selector_clear(&f[i]);
    }
    assert_int_equal(entry_matches(e, NULL, 0), 0);
    entry_free(e);
    entry_free(none);
    entry_free(NULL);
    entry_list_free(NULL, 3);
}

static void test_entry_build_and_validate(void **state)
{
    static const char *const sels[] = {"unix:path:/usr/bin/mcp", "unix:uid:1000"};
    struct entry *e = make_entry("spiffe://ex.test/mcp/server", sels, 2);
    struct ly_error err = {0};
    char hint[ENTRY_HINT_MAX + 2];
    size_t i;
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(e->ttl, CA_DEFAULT_SVID_TTL);
    /* Duplicate and cap. */
    assert_int_equal(entry_add_selector(e, "unix:uid:1000", 13, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_SEL_DUPLICATE);
    for (i = 0; e->n_selectors < ENTRY_MAX_SELECTORS; i++) {
        char s[32];
        (void)snprintf(s, sizeof(s), "unix:gid:%zu", i);
        ly_error_clear(&err);
        assert_int_equal(entry_add_selector(e, s, strlen(s), &err), 0);
    }
    ly_error_clear(&err);
    assert_int_equal(entry_add_selector(e, "unix:gid:999", 12, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_TOO_MANY_SELECTORS);
    ly_error_clear(&err);
    assert_int_equal(entry_validate(e, "ex.test", &err), 0);
    /* Canonical order: by type (uid < gid < ... < path), then value. */
    assert_int_equal(e->selectors[0].type, ENTRY_SEL_UID);
    assert_int_equal(e->selectors[e->n_selectors - 1].type, ENTRY_SEL_PATH);
    /* Trust domain: exact, never by suffix. */
    assert_int_equal(entry_validate(e, "x-ex.test", &err), LY_ERR_USAGE);
    assert_int_equal(err.reason, ENTRY_R_TRUST_DOMAIN);
    ly_error_clear(&err);
    assert_int_equal(entry_validate(e, "test", &err), LY_ERR_USAGE);
    ly_error_clear(&err);
    /* TTL range [60 s, 30 d]. */
    assert_int_equal(entry_set_ttl(e, CA_MIN_SVID_TTL, &err), 0);
    assert_int_equal(entry_set_ttl(e, CA_MAX_SVID_TTL, &err), 0);
    assert_int_equal(entry_set_ttl(e, CA_MIN_SVID_TTL - 1, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_TTL);
    ly_error_clear(&err);
    assert_int_equal(entry_set_ttl(e, CA_MAX_SVID_TTL + 1, &err), LY_ERR_PARSE);
    ly_error_clear(&err);
    e->ttl = 5; /* set behind the setter's back: validate still refuses */
    assert_int_equal(entry_validate(e, NULL, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_TTL);
    e->ttl = 600;
    ly_error_clear(&err);
    /* Hint: 1024 bytes ok, 1025 refused (WAPI-24); control bytes and bad UTF-8 refused. */
    memset(hint, 'h', sizeof(hint));
    assert_int_equal(entry_set_hint(e, hint, ENTRY_HINT_MAX, &err), 0);
    assert_int_equal(strlen(e->hint), ENTRY_HINT_MAX);
    assert_int_equal(entry_set_hint(e, hint, ENTRY_HINT_MAX + 1, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_HINT_TOO_LONG);
    ly_error_clear(&err);
    assert_int_equal(entry_set_hint(e, "a\nb", 3, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_HINT_CHAR);
    ly_error_clear(&err);
    assert_int_equal(entry_set_hint(e, "\xe2\x82", 2, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_HINT_CHAR);
    ly_error_clear(&err);
    assert_int_equal(entry_set_hint(e, "caf\xc3\xa9", 5, &err), 0);
    assert_int_equal(entry_set_hint(e, "", 0, &err), 0);
    assert_null(e->hint);
    /* DNS: LDH labels, lowercased, no duplicates. */
    assert_int_equal(entry_add_dns(e, "MCP.Example.COM", 15, &err), 0);
    assert_string_equal(e->dns[0], "mcp.example.com");
    assert_int_equal(entry_add_dns(e, "mcp.example.com", 15, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_DNS_DUPLICATE);
    {
        static const char *const bad_dns[] = {"", "-a.example", "a-.example", "a..b", "a.b.",
                                              ".a", "a_b.example", "*.example.com", "a b",
                                              "xn--\xc3\xa9"};
        for (i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
            ly_error_clear(&err);
            assert_int_equal(entry_add_dns(e, bad_dns[i], strlen(bad_dns[i]), &err),
                             LY_ERR_PARSE);
            assert_int_equal(err.reason, ENTRY_R_DNS);
        }
    }
    {
        char label[80];
        memset(label, 'a', 64);
        ly_error_clear(&err);
        assert_int_equal(entry_add_dns(e, label, 64, &err), LY_ERR_PARSE);
        ly_error_clear(&err);
        assert_int_equal(entry_add_dns(e, label, 63, &err), 0); /* 63 is the label limit */
    }
    /* Federation: trust domains, no duplicates. */
    ly_error_clear(&err);
    assert_int_equal(entry_add_federates_with(e, "spiffe://peer.test", 18, &err), 0);
    assert_string_equal(e->federates_with[0], "peer.test");
    assert_int_equal(entry_add_federates_with(e, "peer.test", 9, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_FEDERATES);
    ly_error_clear(&err);
    assert_int_equal(entry_add_federates_with(e, "Bad..TD", 7, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_FEDERATES);
    entry_free(e);
}

static void test_spiffe_id_rules(void **state)
{
    struct entry *e = entry_new();
    struct ly_error err = {0};
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(entry_set_spiffe_id(e, "spiffe://ex.test", 16, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_ID_ROOT);
    ly_error_clear(&err);
    assert_int_equal(entry_set_spiffe_id(e, "spiffe://ex.test/a/../b", 23, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_ID);
    assert_non_null(strstr(err.msg, "SPIFFE ID"));
    ly_error_clear(&err);
    assert_int_equal(entry_set_spiffe_id(e, "https://ex.test/a", 17, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_ID);
    ly_error_clear(&err);
    /* Validation needs an ID and at least one selector. */
    assert_int_equal(entry_validate(e, NULL, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_ID);
    ly_error_clear(&err);
    assert_int_equal(entry_set_spiffe_id(e, "spiffe://ex.test/a", 18, &err), 0);
    assert_int_equal(entry_validate(e, NULL, &err), LY_ERR_PARSE);
    assert_int_equal(err.reason, ENTRY_R_NO_SELECTORS);
    assert_int_equal(entry_validate(NULL, NULL, NULL), LY_ERR_USAGE);
    entry_free(e);
}

static void test_selector_set_key(void **state)
{
    static const char *const a[] = {"unix:uid:1", "unix:path:/x", "unix:gid:2"};
    static const char *const b[] = {"unix:gid:2", "unix:uid:1", "unix:path:/x"};
    static const char *const c[] = {"unix:uid:1", "unix:path:/x"};
    /* "uid:1" + "gid:2" vs a single value that spells both: the separator keeps them apart. */
    static const char *const d[] = {"unix:user:1"};
    struct entry *ea = make_entry("spiffe://ex.test/a", a, 3);
    struct entry *eb = make_entry("spiffe://ex.test/a", b, 3);
    struct entry *ec = make_entry("spiffe://ex.test/a", c, 2);
    struct entry *ed = make_entry("spiffe://ex.test/a", d, 1);
    char ka[65], kb[65], kc[65], kd[65];
    struct ly_error err = {0};
    (void)state;

    ly_error_clear(&err);
    assert_int_equal(entry_validate(ea, NULL, &err), 0);
    assert_int_equal(entry_validate(eb, NULL, &err), 0);
    assert_int_equal(entry_validate(ec, NULL, &err), 0);
    assert_int_equal(entry_validate(ed, NULL, &err), 0);
    assert_int_equal(entry_selector_set_key(ea, ka, &err), 0);
    assert_int_equal(entry_selector_set_key(eb, kb, &err), 0);
    assert_int_equal(entry_selector_set_key(ec, kc, &err), 0);
    assert_int_equal(entry_selector_set_key(ed, kd, &err), 0);
    assert_string_equal(ka, kb);
    assert_string_not_equal(ka, kc);
    assert_string_not_equal(kc, kd);
    assert_int_equal(strlen(ka), 64);
    entry_free(ea);
    entry_free(eb);
    entry_free(ec);
    entry_free(ed);
}

static void test_entry_ids(void **state)
{
    (void)state;
    assert_int_equal(entry_id_valid("0123456789abcdef0123456789abcdef", 32), 1);
    assert_int_equal(entry_id_valid("0123456789ABCDEF0123456789abcdef", 32), 0);
    assert_int_equal(entry_id_valid("0123456789abcdef0123456789abcde", 31), 0);
    assert_int_equal(entry_id_valid("0123456789abcdef0123456789abcdeg", 32), 0);
    assert_int_equal(entry_id_valid(NULL, 32), 0);
}

static void test_json_and_text(void **state)
{
    static const char *const sels[] = {"unix:uid:1000", "unix:path:/opt/a\"b\\c"};
    struct entry *e = make_entry("spiffe://ex.test/j", sels, 2);
    struct ly_error err = {0};
    struct ly_buf out;
    json_error_t jerr;
    json_t *v;
    (void)state;

    ly_error_clear(&err);
    memcpy(e->id, "0123456789abcdef0123456789abcdef", 33);
    e->created_at = 1700000000;
    assert_int_equal(entry_set_hint(e, "web \"front\"", 11, &err), 0);
    assert_int_equal(entry_validate(e, "ex.test", &err), 0);
    ly_buf_init(&out, 1 << 20);
    assert_int_equal(entry_to_json(e, &out, &err), 0);
    v = json_loadb((const char *)out.data, out.len, 0, &jerr);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "spiffe_id")), "spiffe://ex.test/j");
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "selectors"), 1)),
                        "unix:path:/opt/a\"b\\c");
    assert_string_equal(json_string_value(json_object_get(v, "hint")), "web \"front\"");
    assert_string_equal(json_string_value(json_object_get(v, "created_at")),
                        "2023-11-14T22:13:20Z");
    assert_int_equal(json_integer_value(json_object_get(v, "ttl")), CA_DEFAULT_SVID_TTL);
    json_decref(v);
    ly_buf_free(&out);
    ly_buf_init(&out, 1 << 20);
    assert_int_equal(entry_to_text(e, &out, &err), 0);
    assert_non_null(strstr((const char *)out.data, "selector: unix:uid:1000\n"));
    /* Backslashes are escaped for the terminal. */
    assert_non_null(strstr((const char *)out.data, "unix:path:/opt/a\"b\\x5cc"));
    ly_buf_free(&out);
    entry_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector_round_trips),
        cmocka_unit_test(test_selector_rejections),
        cmocka_unit_test(test_selector_too_long),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_matching_all),
        cmocka_unit_test(test_entry_build_and_validate),
        cmocka_unit_test(test_spiffe_id_rules),
        cmocka_unit_test(test_selector_set_key),
        cmocka_unit_test(test_entry_ids),
        cmocka_unit_test(test_json_and_text),
    };
    return cmocka_run_group_tests_name("entry", tests, NULL, NULL);
}
