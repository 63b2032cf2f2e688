/* fuzz_oci.c — an image archive (OCI layout tar or docker save) is untrusted JSON, digests and tar
 * members: oci_detect and oci_import must end in an image or an error, never a crash. The input is
 * written to a file because the importer reads archives twice. */
#include "../../fs/import.h"
#include "../../fs/oci.h"
#include "../../fs/store.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *store;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imgfs_err err;
    if (!store) {
        char dir[] = "/tmp/imgfs-fuzz.XXXXXX";
        if (!mkdtemp(dir) || store_open(dir, 0, &store, &err) < 0)
            abort();
        snprintf(path, sizeof path, "%s/input.tar", dir);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    enum oci_source_kind kind;
    if (oci_detect(path, &kind, &err) < 0 || kind == OCI_SOURCE_ROOTFS)
        return 0;
    struct store_batch *b;
    if (store_batch_begin(store, &b, &err) < 0)
        abort();
    struct digest d;
    struct import_limits limits;
    import_limits_init(&limits);
    oci_import(b, path, kind, NULL, &limits, &d, &err);
    store_batch_abort(b);
    return 0;
}
