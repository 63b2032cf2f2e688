/* fuzz_layer.c — a layer table from the store is decoded without trusting it: layer_next refuses what
 * does not fit, and view_build merges whatever decodes without crashing. */
#include "../../fs/layer.h"
#include "../../fs/view.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imgfs_err err;
    /* prefix a valid header so the fuzzer spends its time on entries */
    struct buf b = {0};
    buf_append(&b, "IMGFSLY1", 8);
    uint64_t n = size ? data[0] % 16 : 0;
    buf_append(&b, &n, 8);
    buf_append(&b, data, size);
    struct layer_reader r;
    struct layer_entry e;
    if (layer_reader_init(&r, b.data, b.len, &err) == 0) {
        while (layer_next(&r, &e, &err) > 0)
            ;
        layer_reader_free(&r);
    }
    struct layer_table t[2] = {{b.data, b.len}, {b.data, b.len}};
    struct buf view = {0};
    if (view_build(t, 2, &view, &err) == 0) {
        struct view v;
        if (view_open(view.data, view.len, &v, &err) != 0)
            __builtin_trap(); /* what view_build makes, view_open must accept */
    }
    buf_free(&view);
    buf_free(&b);
    return 0;
}
