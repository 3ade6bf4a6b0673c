/*
 * libFuzzer target for the daemon's config file: any bytes are either applied completely or
 * refused with a message, and a refusal leaves the configuration exactly as it was.
 * Target functions: config_apply_json, config_finish, config_parse_listen
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    struct config before;
    struct ly_error err;

    config_defaults(&c);
    before = c;
    ly_error_clear(&err);
    if (config_apply_json(&c, (const char *)data, size, &err) != 0) {
        if (err.msg[0] == '\0' || memcmp(&c, &before, sizeof(c)) != 0) {
            abort();
        }
        return 0;
    }
    ly_error_clear(&err);
    (void)config_finish(&c, &err);
    return 0;
}
