/*
 * lanyard entry point: hardens the process (no core dumps that could hold keys) and hands the
 * command line to cli_main(). Exit codes: 0 ok, 1 rejected/invalid, 2 usage, 3 internal/I/O.
 */
#include <stdio.h>

#include "../common/ly_error.h"
#include "../common/ly_secret.h"
#include "cli.h"

int main(int argc, char **argv)
{
    struct ly_error err;

    ly_error_clear(&err);
    if (ly_secret_disable_core_dumps(&err) < 0) {
        fprintf(stderr, "lanyard: %s\n", err.msg);
        return 3;
    }
    return cli_main(argc, argv);
}
