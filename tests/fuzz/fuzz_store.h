/* fuzz_store.h — the store of the targets that import (fuzz_tar, fuzz_oci): opened once per process
 * on the first input, in a fresh directory under /tmp that is removed when the fuzzer exits. Every
 * input runs in a batch that is aborted, so nothing accumulates from one input to the next and
 * nothing is written to disk. */
#ifndef IMGFS_FUZZ_STORE_H
#define IMGFS_FUZZ_STORE_H
#include "../../fs/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char fuzz_store_dir[] = "/tmp/imgfs-fuzz.XXXXXX";
static struct store *fuzz_store_handle;

static int fuzz_store_remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(path);
}

static void fuzz_store_remove(void)
{
    store_close(fuzz_store_handle);
    nftw(fuzz_store_dir, fuzz_store_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *fuzz_store(void)
{
    if (!fuzz_store_handle) {
        struct imgfs_err err;
        if (!mkdtemp(fuzz_store_dir) || store_open(fuzz_store_dir, 0, &fuzz_store_handle, &err) < 0)
            abort();
        atexit(fuzz_store_remove);
    }
    return fuzz_store_handle;
}
#endif
