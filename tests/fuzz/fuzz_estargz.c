/* fuzz_estargz.c — an eStargz layer's footer, TOC and chunk ranges come from a registry: none of
 * them is trusted. The input is taken as TOC JSON (wrapped into the tar+gzip member a TOC lives in,
 * so the fuzzer spends its time on the JSON), as a footer, and as a chunk's compressed range. */
#include "../../fs/estargz.h"
#include "../../fs/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static la_ssize_t mem_write(struct archive *a, void *ctx, const void *p, size_t len)
{
    (void)a;
    buf_append(ctx, p, len);
    return (la_ssize_t)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imgfs_err err;
    struct buf m = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    archive_write_open(a, &m, NULL, mem_write, NULL);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, ESTARGZ_TOC_NAME);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_write_header(a, e);
    archive_write_data(a, data, size);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    struct estargz_toc t;
    if (estargz_toc_parse(m.data, m.len, 1 << 20, NULL, &t, &err) == 0) {
        /* what the parser accepts must be a valid layer table with chunks in range */
        struct layer_reader r;
        struct layer_entry le;
        if (layer_reader_init(&r, t.table.data, t.table.len, &err) < 0)
            __builtin_trap();
        int rc;
        while ((rc = layer_next(&r, &le, &err)) > 0)
            if (strstr(le.path, "..") &&
                (!strcmp(le.path, "..") || !strncmp(le.path, "../", 3) || strstr(le.path, "/../")))
                __builtin_trap();
        if (rc < 0)
            __builtin_trap();
        layer_reader_free(&r);
        for (size_t i = 0; i < t.n_chunks; i++)
            if (t.chunks[i].end > (1 << 20) || t.chunks[i].offset >= t.chunks[i].end)
                __builtin_trap();
        estargz_toc_free(&t);
    }
    buf_free(&m);
    /* the raw bytes as a blob's tail and as a chunk's range */
    uint64_t off;
    if (size >= ESTARGZ_FOOTER_SIZE)
        estargz_footer_parse(data + size - ESTARGZ_FOOTER_SIZE, ESTARGZ_FOOTER_SIZE, size, &off,
                             &err);
    struct estargz_chunk c = {.offset = 0, .end = size, .inner = size ? data[0] : 0, .size = 4096};
    uint8_t out[4096];
    estargz_chunk_extract(data, size, &c, out, &err);
    return 0;
}
