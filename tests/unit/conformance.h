/* conformance.h — where the BuildKit conformance data copied into tests/conformance/buildkit is,
 * and reading its files. The unit binaries run from the top of the tree (make unit, tests/run.sh);
 * IMGFS_CONFORMANCE overrides the directory. */
#ifndef IMGFS_TEST_CONFORMANCE_H
#define IMGFS_TEST_CONFORMANCE_H

#include "../../fs/util.h"

#include <stdio.h>
#include <stdlib.h>

static inline const char *conformance_dir(void)
{
    const char *d = getenv("IMGFS_CONFORMANCE");
    return d && *d ? d : "tests/conformance/buildkit";
}

/* The whole file DIR/REL as a NUL-terminated buffer (also for text with NUL bytes: b->len), or
 * exit(1) with a message: a missing data file must fail the test, never pass it. */
static inline void conformance_read(const char *rel, struct buf *b)
{
    struct imgfs_err err;
    char *path = xasprintf("%s/%s", conformance_dir(), rel);
    *b = (struct buf){0};
    if (read_file(path, 1 << 24, b, &err) < 0) {
        printf("FAIL cannot read conformance data: %s\n", err.msg);
        exit(1);
    }
    buf_append(b, "", 1);
    b->len--;
    free(path);
}

#endif
