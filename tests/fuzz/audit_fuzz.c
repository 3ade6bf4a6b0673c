/*
 * libFuzzer target for the audit log reader: any bytes scanned as an audit file must either
 * verify as an intact chain or be refused with a reason and a message naming the broken record;
 * the callback must see only records of the verified prefix. Deterministic, no file I/O.
 * Target functions: audit_scan_mem, audit_value_is_secret
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/audit.h"

static int count_cb(const struct audit_record *r, void *arg)
{
    uint64_t *n = arg;

    /* Records arrive in order with seq counting up from 1. */
    if (r->seq != *n + 1 || r->client_id == NULL || r->decision == NULL || r->prev == NULL) {
        abort();
    }
    *n = r->seq;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct audit_scan_info info;
    struct ly_error err;
    uint64_t seen = 0;
    int rc;

    ly_error_clear(&err);
    rc = audit_scan_mem(data, size, NULL, count_cb, &seen, &info, &err);
    if (rc == 0) {
        if (info.good_len != size || info.records != seen || info.last_seq != seen) {
            abort();
        }
    } else if (rc != LY_ERR_VERIFY || err.reason == 0 || err.msg[0] == '\0' ||
               info.good_len > size || info.records != seen || info.broken_seq == 0) {
        abort();
    }
    if (size > 0 && size < 4096) {
        char *s = malloc(size + 1);
        if (s != NULL) {
            memcpy(s, data, size);
            s[size] = '\0';
            (void)audit_value_is_secret(s);
            free(s);
        }
    }
    return 0;
}
