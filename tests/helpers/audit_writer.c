/*
 * audit_writer: a test-only program that appends decision records to an audit log through the
 * audit library API (lanyard itself has no command that writes them). It is never installed and
 * writes only synthetic events, never a real token or key.
 *
 * usage: audit_writer PATH N     append N events: client a/b/c, user alice/bob/none, allow on even
 *                                i, times one minute apart ending now
 *        audit_writer PATH refuse  try a JWT-like and a PEM-like value; exit 0 when both are
 *                                refused with a usage error and nothing was written
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/audit.h"
#include "../../common/ly_time.h"

static int refuse(struct audit_log *log)
{
    struct audit_event ev;
    struct ly_error err;
    uint64_t before = audit_next_seq(log);

    memset(&ev, 0, sizeof(ev));
    ev.client_id = "spiffe://example.org/client/a";
    ev.method = "tools/call";
    ev.decision = "deny";
    ev.reason = "test";
    ev.user = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    ly_error_clear(&err);
    if (audit_append(log, &ev, &err) != LY_ERR_USAGE || err.reason != AUDIT_R_SECRET) {
        fprintf(stderr, "audit_writer: JWT-like value not refused\n");
        return 1;
    }
    ev.user = NULL;
    ev.reason = "-----BEGIN EC PRIVATE KEY-----";
    ly_error_clear(&err);
    if (audit_append(log, &ev, &err) != LY_ERR_USAGE || err.reason != AUDIT_R_SECRET) {
        fprintf(stderr, "audit_writer: PEM-like value not refused\n");
        return 1;
    }
    if (audit_next_seq(log) != before) {
        fprintf(stderr, "audit_writer: a refused event was written\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const clients[] = {"spiffe://example.org/client/a",
                                          "spiffe://example.org/client/b",
                                          "spiffe://example.org/client/c"};
    static const char *const users[] = {"alice", "bob", NULL};
    struct audit_log *log = NULL;
    struct ly_error err;
    char *end = NULL;
    unsigned long n;
    unsigned long i;
    int64_t now = ly_time_now();
    int rc = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: audit_writer PATH N|refuse\n");
        return 2;
    }
    ly_error_clear(&err);
    if (audit_open(argv[1], &log, &err) < 0) {
        fprintf(stderr, "audit_writer: %s\n", err.msg);
        return 1;
    }
    if (strcmp(argv[2], "refuse") == 0) {
        rc = refuse(log);
        audit_close(log);
        return rc;
    }
    n = strtoul(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || n > 1000000) {
        fprintf(stderr, "audit_writer: bad count\n");
        audit_close(log);
        return 2;
    }
    for (i = 0; i < n; i++) {
        struct audit_event ev;
        char target[64];
        char consent[64];
        int allow = i % 2 == 0;

        memset(&ev, 0, sizeof(ev));
        if (snprintf(target, sizeof(target), "tool-%lu", i) >= (int)sizeof(target) ||
            snprintf(consent, sizeof(consent), "consent-%lu", i % 7) >= (int)sizeof(consent)) {
            rc = 1;
            break;
        }
        ev.time = now - (int64_t)(n - 1 - i) * 60;
        ev.client_id = clients[i % 3];
        ev.cert_sha256 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        ev.user = users[i % 3 == 2 ? 2 : (i / 3) % 2];
        ev.method = "tools/call";
        ev.target = target;
        ev.decision = allow ? "allow" : "deny";
        ev.reason = allow ? "consent granted" : "no consent for this client";
        ev.consent_id = allow ? consent : NULL;
        if (audit_append(log, &ev, &err) < 0) {
            fprintf(stderr, "audit_writer: %s\n", err.msg);
            rc = 1;
            break;
        }
    }
    audit_close(log);
    return rc;
}
