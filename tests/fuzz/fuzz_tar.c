/* fuzz_tar.c — import_layer on arbitrary bytes (any compression libarchive knows): an error or a
 * layer, never a crash; a layer it accepts must merge into a view. One store per process
 * (fuzz_store.h), batches aborted, so nothing accumulates. */
#include "../../fs/import.h"
#include "../../fs/view.h"
#include "fuzz_store.h"

#include <archive.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imgfs_err err;
    struct store_batch *b;
    if (store_batch_begin(fuzz_store(), &b, &err) < 0)
        abort();
    struct archive *a = import_tar_reader_new();
    struct layer_build_result res;
    if (archive_read_open_memory(a, data, size) == ARCHIVE_OK &&
        import_layer(b, a, "fuzz", &res, &err) == 0) {
        struct layer_table t = {res.table.data, res.table.len};
        struct buf view = {0};
        view_build(&t, 1, &view, &err);
        buf_free(&view);
        buf_free(&res.table);
    }
    archive_read_free(a);
    store_batch_abort(b);
    return 0;
}
