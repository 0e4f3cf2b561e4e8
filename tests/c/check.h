/* CHECK for the single-process C test programs (tests/c/fast_path/, tests/service/c/): reports
 * a failed condition with its line and goes on; main() returns 1 if `failures` is not 0. */
#ifndef WVDS_TEST_CHECK_H
#define WVDS_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                             \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fprintf(stderr, "\n");                                                                           \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

#endif
