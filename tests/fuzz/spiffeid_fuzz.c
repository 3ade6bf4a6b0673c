/*
 * spiffeid_fuzz: libFuzzer target for the SPIFFE ID parser. Every accepted ID must round-trip
 * byte for byte and rebuild identically from its parts; the target must stay deterministic.
 * Target functions: spiffeid_parse, spiffeid_parse_trust_domain, spiffeid_validate_path,
 * spiffeid_validate_segment, spiffeid_from_parts, spiffeid_equal, spiffeid_member_of.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../svid/spiffeid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct spiffeid id;
    struct spiffeid again;
    struct ly_error err;
    char td[SPIFFEID_TD_MAX_LEN + 1];

    if (spiffeid_parse(s, size, &id, &err) == 0) {
        /* No normalisation: the canonical form is the input itself. */
        if (id.len != size || memcmp(id.str, data, size) != 0 || strlen(id.str) != size) {
            abort();
        }
        if (spiffeid_td_copy(&id, td, sizeof(td)) != 0 ||
            spiffeid_from_parts(td, spiffeid_path(&id), &again, &err) != 0 ||
            !spiffeid_equal(&id, &again) || !spiffeid_member_of(&id, td)) {
            abort();
        }
        if (spiffeid_parse(id.str, id.len, &again, &err) != 0 || !spiffeid_equal(&id, &again)) {
            abort();
        }
    } else if (err.code != LY_ERR_PARSE || err.reason == 0 || err.msg[0] == '\0') {
        abort();
    }
    if (spiffeid_parse_trust_domain(s, size, td, sizeof(td), &err) == 0) {
        if (strlen(td) == 0 || strlen(td) > SPIFFEID_TD_MAX_LEN) {
            abort();
        }
    }
    /* The path and segment validators must agree with the full parser on paths. */
    if (spiffeid_validate_path(s, size, &err) == 0 && size > 0) {
        if (spiffeid_from_parts("example.org", "", &again, &err) != 0) {
            abort();
        }
    }
    (void)spiffeid_validate_segment(s, size, &err); /* must only not crash */
    return 0;
}
