/*
 * Unit tests for broker/config: defaults, a full config file, and each refusal (unknown key,
 * wrong type, bad duration, relative socket path, bad listen address, SPIFFE ID as trust
 * domain), with the configuration left untouched after a refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../broker/config.h"

static void test_defaults_and_finish(void **state)
{
    struct config c;
    struct ly_error e = {0};
    (void)state;

    config_defaults(&c);
    ly_error_clear(&e);
    assert_string_equal(c.data_dir, "./lanyard-data");
    assert_int_equal(c.default_svid_ttl, 3600);
    assert_int_equal(config_finish(&c, &e), 0);
    assert_string_equal(c.workload_socket, "./lanyard-data/workload.sock");
    assert_string_equal(c.admin_socket, "./lanyard-data/admin.sock");
}

static void test_full_file(void **state)
{
    static const char doc[] =
        "{\"data_dir\":\"/var/lib/lanyard\",\"trust_domain\":\"example.org\","
        "\"workload_socket\":\"/run/lanyard/w.sock\",\"admin_socket\":\"/run/lanyard/a.sock\","
        "\"health_listen\":\"127.0.0.1:9000\",\"log_level\":\"debug\",\"ca_key_type\":\"ed25519\","
        "\"ca_ttl\":\"7d\",\"default_svid_ttl\":\"15m\",\"jwt_ttl\":\"2m\"}";
    struct config c;
    struct ly_error e = {0};
    (void)state;

    config_defaults(&c);
    ly_error_clear(&e);
    assert_int_equal(config_apply_json(&c, doc, strlen(doc), &e), 0);
    assert_string_equal(c.trust_domain, "example.org");
    assert_string_equal(c.workload_socket, "/run/lanyard/w.sock");
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.ca_key_type, SVID_KEY_ED25519);
    assert_int_equal(c.ca_ttl, 7 * 86400);
    assert_int_equal(c.default_svid_ttl, 900);
    assert_int_equal(c.jwt_ttl, 120);
    assert_int_equal(config_set(&c, "health_listen", "", &e), 0); /* disables it */
    assert_string_equal(c.health_listen, "");
}

static void test_rejects(void **state)
{
    static const struct {
        const char *doc;
        const char *want;
    } bad[] = {
        {"{\"data_dri\":\"/x\"}", "unknown config key"},
        {"{\"ca_ttl\":30}", "must be a string"},
        {"{\"ca_ttl\":\"30\"}", "ca_ttl"},
        {"{\"default_svid_ttl\":\"5s\"}", "outside"},
        {"{\"workload_socket\":\"relative.sock\"}", "absolute"},
        {"{\"health_listen\":\"localhost\"}", "HOST:PORT"},
        {"{\"health_listen\":\"127.0.0.1:70000\"}", "1..65535"},
        {"{\"trust_domain\":\"spiffe://example.org\"}", "bare name"},
        {"{\"trust_domain\":\"Example.org\"}", "trust_domain"},
        {"{\"log_level\":\"loud\"}", "log_level"},
        {"{\"ca_key_type\":\"rsa\"}", ""},
        {"[1]", "JSON object"},
        {"{\"a\":", "not valid JSON"},
        {"{\"ca_ttl\":\"1h\",\"ca_ttl\":\"2h\"}", "not valid JSON"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct config c;
        struct config before;
        struct ly_error e = {0};

        config_defaults(&c);
        before = c;
        ly_error_clear(&e);
        if (config_apply_json(&c, bad[i].doc, strlen(bad[i].doc), &e) != LY_ERR_PARSE ||
            strstr(e.msg, bad[i].want) == NULL || memcmp(&c, &before, sizeof(c)) != 0) {
            fail_msg("case %zu (%s): code %d msg '%s'", i, bad[i].doc, e.code, e.msg);
        }
    }
}

static void test_finish_rejects(void **state)
{
    struct config c;
    struct ly_error e = {0};
    char longdir[200];
    (void)state;

    config_defaults(&c);
    ly_error_clear(&e);
    memset(longdir, 'a', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    assert_int_equal(config_set(&c, "data_dir", longdir, &e), 0);
    assert_int_equal(config_finish(&c, &e), LY_ERR_PARSE);
    config_defaults(&c);
    ly_error_clear(&e);
    assert_int_equal(config_set(&c, "workload_socket", "/run/x.sock", &e), 0);
    assert_int_equal(config_set(&c, "admin_socket", "/run/x.sock", &e), 0);
    assert_int_equal(config_finish(&c, &e), LY_ERR_PARSE);
}

/* The bundle endpoint's settings: defaults, the https_web pair, and each refusal naming it. */
static void test_bundle_endpoint(void **state)
{
    static const char web[] =
        "{\"bundle_endpoint\":\"0.0.0.0:8443\",\"bundle_endpoint_profile\":\"https_web\","
        "\"web_cert\":\"/etc/lanyard/web.pem\",\"web_key\":\"/etc/lanyard/web.key\","
        "\"bundle_refresh_hint\":\"2m\"}";
    static const struct {
        const char *key, *value, *msg;
    } bad[] = {
        {"bundle_endpoint", "nowhere", "bundle_endpoint"},
        {"bundle_endpoint", "127.0.0.1:70000", "port"},
        {"bundle_endpoint_profile", "https", "https_spiffe or https_web"},
        {"web_cert", "", "web_cert is empty"},
        {"bundle_refresh_hint", "0s", "bundle_refresh_hint"},
        {"bundle_refresh_hint", "30d", "bundle_refresh_hint"},
    };
    struct config c;
    struct ly_error e = {0};
    size_t i;
    (void)state;

    config_defaults(&c);
    ly_error_clear(&e);
    assert_string_equal(c.bundle_endpoint, "");
    assert_string_equal(c.bundle_endpoint_profile, "https_spiffe");
    assert_int_equal(c.bundle_refresh_hint, 300);
    assert_int_equal(config_apply_json(&c, web, strlen(web), &e), 0);
    assert_int_equal(config_finish(&c, &e), 0);
    assert_string_equal(c.bundle_endpoint, "0.0.0.0:8443");
    assert_string_equal(c.web_key, "/etc/lanyard/web.key");
    assert_int_equal(c.bundle_refresh_hint, 120);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&c);
        ly_error_clear(&e);
        assert_int_equal(config_set(&c, bad[i].key, bad[i].value, &e), LY_ERR_PARSE);
        if (strstr(e.msg, bad[i].msg) == NULL) {
            print_error("%s=%s: %s\n", bad[i].key, bad[i].value, e.msg);
        }
        assert_non_null(strstr(e.msg, bad[i].msg));
        assert_string_equal(c.bundle_endpoint, ""); /* nothing half-applied */
    }
    /* https_web without its files, the files without https_web, https_web without endpoint. */
    config_defaults(&c);
    ly_error_clear(&e);
    assert_int_equal(config_set(&c, "bundle_endpoint", "127.0.0.1:8443", &e), 0);
    assert_int_equal(config_set(&c, "bundle_endpoint_profile", "https_web", &e), 0);
    assert_int_equal(config_finish(&c, &e), LY_ERR_PARSE);
    assert_non_null(strstr(e.msg, "web_cert and web_key"));
    config_defaults(&c);
    ly_error_clear(&e);
    assert_int_equal(config_set(&c, "web_cert", "/x.pem", &e), 0);
    assert_int_equal(config_finish(&c, &e), LY_ERR_PARSE);
    assert_non_null(strstr(e.msg, "https_web bundle endpoint profile only"));
    config_defaults(&c);
    ly_error_clear(&e);
    assert_int_equal(config_set(&c, "bundle_endpoint_profile", "https_web", &e), 0);
    assert_int_equal(config_finish(&c, &e), LY_ERR_PARSE);
    assert_non_null(strstr(e.msg, "needs a bundle_endpoint"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_finish),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_finish_rejects),
        cmocka_unit_test(test_bundle_endpoint),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
