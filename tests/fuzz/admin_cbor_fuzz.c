/*
 * libFuzzer target for the admin socket's message decoder: any bytes must either decode into a
 * value that re-encodes and decodes to the same value, or be refused with a reason.
 * Target functions: admin_cbor_decode, admin_cbor_encode, admin_frame_check, admin_request_parse
 */
#include <stdint.h>
#include <stdlib.h>

#include "../../broker/admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ly_error err;
    json_t *v = NULL;
    size_t flen;

    ly_error_clear(&err);
    (void)admin_frame_check(data, size, &flen, &err);
    ly_error_clear(&err);
    if (admin_cbor_decode(data, size, &v, &err) == 0) {
        struct ly_buf b;
        json_t *again = NULL;
        const char *op;
        const json_t *args;

        if (admin_cbor_encode(v, &b, &err) != 0 || admin_cbor_decode(b.data, b.len, &again, &err) != 0 ||
            !json_equal(v, again)) {
            abort();
        }
        (void)admin_request_parse(v, &op, &args, &err);
        json_decref(again);
        ly_buf_free(&b);
        json_decref(v);
    } else if (err.reason == 0 || err.msg[0] == '\0') {
        abort();
    }
    return 0;
}
