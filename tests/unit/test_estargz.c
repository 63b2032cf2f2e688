/* test_estargz.c — eStargz both ways: a stored layer written as eStargz is read back (footer, TOC,
 * every chunk) into the same file table, twice the same bytes; hostile TOCs are refused. */
#include "../../fs/estargz.h"
#include "../../fs/import.h"
#include "../../fs/layer.h"
#include "../../fs/layerbuild.h"
#include "../../fs/store.h"
#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static la_ssize_t mem_write(struct archive *a, void *ctx, const void *data, size_t len)
{
    (void)a;
    buf_append(ctx, data, len);
    return (la_ssize_t)len;
}

static void add(struct archive *a, const char *name, mode_t type, const void *data, size_t len,
                const char *link)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(e, 1700000000, 250000000);
    archive_entry_set_uid(e, 1000);
    if (type == AE_IFREG)
        archive_entry_set_size(e, (la_int64_t)len);
    if (type == AE_IFLNK)
        archive_entry_set_symlink(e, link);
    if (link && type == AE_IFREG) {
        archive_entry_set_hardlink(e, link);
        archive_entry_set_size(e, 0);
    }
    if (!strcmp(name, "etc/cap"))
        archive_entry_xattr_add_entry(e, "security.capability", "\x01\x02\x00", 3);
    archive_write_header(a, e);
    if (type == AE_IFREG && len && !link)
        archive_write_data(a, data, len);
    archive_entry_free(e);
}

static int sink(void *ctx, const void *data, size_t len, struct imgfs_err *err)
{
    (void)err;
    buf_append(ctx, data, len);
    return 0;
}

/* A gzip tar with one member, stargz.index.json = json: what a TOC member looks like. */
static void toc_member(const char *json, struct buf *out)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    archive_write_open(a, out, NULL, mem_write, NULL);
    add(a, ESTARGZ_TOC_NAME, AE_IFREG, json, strlen(json), NULL);
    archive_write_close(a);
    archive_write_free(a);
}

static int parse_json(const char *json, uint64_t toc_offset, struct imgfs_err *err)
{
    struct buf m = {0};
    toc_member(json, &m);
    struct estargz_toc t;
    int rc = estargz_toc_parse(m.data, m.len, toc_offset, NULL, &t, err);
    if (rc == 0)
        estargz_toc_free(&t);
    buf_free(&m);
    return rc;
}

#define D "sha256:dc0e9c3658a1a3ed1ec94274d8b19925c93e1abb7ddba294923ad9bde30f8cb8"

static void hostile_tocs(void)
{
    struct imgfs_err err;
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"{\"version\":1,\"entries\":[{\"name\":\"../etc/passwd\",\"type\":\"reg\",\"size\":1,"
         "\"offset\":0,\"chunkDigest\":\"" D "\"}]}",
         "`..`"},
        {"{\"version\":1,\"entries\":[{\"name\":\"a/../../b\",\"type\":\"dir\"}]}", "`..`"},
        {"{\"version\":1,\"entries\":[{\"name\":\"x\",\"type\":\"hardlink\",\"linkName\":"
         "\"../../x\"}]}",
         "`..`"},
        {"{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"reg\",\"size\":1,\"offset\":"
         "999999,\"chunkDigest\":\"" D "\"}]}",
         "outside"},
        {"{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"reg\",\"size\":10,\"offset\":0,"
         "\"chunkSize\":20,\"chunkDigest\":\"" D "\"}]}",
         "outside the file"},
        {"{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"reg\",\"size\":10,\"offset\":0,"
         "\"chunkSize\":4,\"chunkDigest\":\"" D "\"}]}",
         "cover"},
        {"{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"reg\",\"mode\":\"x\"}]}",
         "not an integer"},
        {"{\"version\":1,\"entries\":[{\"name\":7,\"type\":\"reg\"}]}", "not a string"},
        {"{\"version\":1,\"entries\":[{\"name\":\"c\",\"type\":\"chunk\",\"offset\":0}]}",
         "follows no such file"},
        {"{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"reg\",\"size\":1,\"offset\":0}]}",
         "chunkDigest"},
        {"{\"version\":2,\"entries\":[]}", "version"},
        {"{\"version\":1,\"entries\":{}}", "entries"},
        {"[1,2]", "not a JSON object"},
        {"{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"reg\",\"modtime\":\"yesterday\"}]"
         "}",
         "RFC 3339"},
        {"{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"weird\"}]}", "unknown type"},
        /* the TOC's own JSON parser (toc_walk): jansson's checks, entry by entry */
        {"{\"version\":1,\"version\":1,\"entries\":[]}", "duplicate"},
        {"{\"version\":1,\"entries\":[{\"name\":\"d\",\"name\":\"e\",\"type\":\"dir\"}]}",
         "duplicate"},
        {"{\"version\":1,\"entries\":[]} x", "data after"},
        {"{\"version\":1,\"entries\":[]", "expected"},
        {"{\"version\":1,\"entries\":[{\"name\":\"d\",\"type\":\"dir\"},]}", "unexpected token"},
        {"{\"version\":1,\"entries\":[{\"name\":\"d\\ud800\",\"type\":\"dir\"}]}",
         "invalid Unicode"},
        {"{\"version\":1,\"entries\":[{\"name\":\"d\\u0000\",\"type\":\"dir\"}]}", "NUL"},
        {"{\"version\":1,\"entries\":[{\"name\":\"d\xc0\x80\",\"type\":\"dir\"}]}",
         "unable to decode byte"},
        {"{\"version\":1,\"entries\":[{\"name\":\"d\",\"type\":\"dir\",\"uid\":"
         "99999999999999999999}]}",
         "too big"},
        {"{\"entries\":[]}", "version"},
        {"{\"version\":1}", "entries"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&err, 0, sizeof err);
        int rc = parse_json(bad[i].json, 1000, &err);
        CHECK(rc < 0, "hostile TOC %zu accepted", i);
        CHECK(strstr(err.msg, bad[i].why), "hostile TOC %zu: message `%s` lacks `%s`", i, err.msg,
              bad[i].why);
    }
    CHECK(parse_json("{\"version\":1,\"entries\":[{\"name\":\"./a/./b/\",\"type\":\"dir\"}]}", 1000,
                     &err) == 0,
          "a normal TOC: %s", err.msg);
    /* members in any order, others skipped, escapes in keys and values */
    CHECK(parse_json(" { \"entries\" : [ { \"n\\u0061me\" : \"a\\/b\\u00e9\" , \"type\":\"dir\","
                     "\"x\":[1,-2.5e3,true,false,null,{}]} ] , \"prefetch\":{\"k\":[]}, "
                     "\"version\" : 1 }\n",
                     1000, &err) == 0,
          "a TOC in another order: %s", err.msg);
    /* nesting: jansson's own depth limit (2048) holds inside an entry; a shallow one is fine */
    {
        struct buf deep = {0};
        const char *head = "{\"version\":1,\"entries\":[{\"name\":\"d\",\"type\":\"dir\",\"x\":";
        buf_append(&deep, head, strlen(head));
        for (int i = 0; i < 3000; i++)
            buf_append(&deep, "[", 1);
        for (int i = 0; i < 3000; i++)
            buf_append(&deep, "]", 1);
        buf_append(&deep, "}]}", 4); /* with its NUL */
        memset(&err, 0, sizeof err);
        CHECK(parse_json((const char *)deep.data, 1000, &err) < 0 && strstr(err.msg, "depth"),
              "3000 nested arrays in an entry: `%s`", err.msg);
        buf_free(&deep);
    }
    /* legacy stargz (no chunkDigest) is not refused as broken but as not lazily readable */
    parse_json("{\"version\":1,\"entries\":[{\"name\":\"f\",\"type\":\"reg\",\"size\":1,"
               "\"offset\":0}]}",
               1000, &err);
    CHECK(err.code == ENOTSUP, "legacy stargz: code %d", err.code);
    /* footers */
    uint64_t off;
    uint8_t f[ESTARGZ_FOOTER_SIZE] = {0};
    CHECK(estargz_footer_parse(f, sizeof f, 1000, &off, &err) < 0, "zero footer accepted");
}

static bool entries_equal(const struct layer_entry *a, const struct layer_entry *b)
{
    if (strcmp(a->path, b->path) || a->kind != b->kind || a->mode != b->mode || a->uid != b->uid ||
        a->gid != b->gid || a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec ||
        a->size != b->size || a->n_extents != b->n_extents || a->n_xattrs != b->n_xattrs)
        return false;
    if ((a->link || b->link) && (!a->link || !b->link || strcmp(a->link, b->link)))
        return false;
    for (uint32_t i = 0; i < a->n_extents; i++)
        if (a->extents[i].offset != b->extents[i].offset ||
            a->extents[i].length != b->extents[i].length ||
            !digest_equal(&a->extents[i].chunk, &b->extents[i].chunk))
            return false;
    for (uint32_t i = 0; i < a->n_xattrs; i++)
        if (strcmp(a->xattrs[i].name, b->xattrs[i].name) || a->xattrs[i].len != b->xattrs[i].len ||
            memcmp(a->xattrs[i].value, b->xattrs[i].value, a->xattrs[i].len))
            return false;
    return true;
}

int main(void)
{
    hostile_tocs();

    char dir[] = "/tmp/imgfs-unit-estargz.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct imgfs_err err = {0};
    struct store *s;
    CHECK(store_open(dir, 0, &s, &err) == 0, "store_open: %s", err.msg);

    /* a layer: directories, a big file (several FastCDC chunks), small files, links, an xattr */
    enum { BIG = 900 * 1024 };
    uint8_t *big = malloc(BIG);
    uint64_t x = 42;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        big[i] = (uint8_t)(x >> 56);
    }
    struct buf tar = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open(a, &tar, NULL, mem_write, NULL);
    add(a, "usr/", AE_IFDIR, NULL, 0, NULL);
    add(a, "usr/bin/", AE_IFDIR, NULL, 0, NULL);
    add(a, "usr/bin/big", AE_IFREG, big, BIG, NULL);
    add(a, "usr/bin/small", AE_IFREG, "hello\n", 6, NULL);
    add(a, "usr/bin/empty", AE_IFREG, NULL, 0, NULL);
    add(a, "usr/bin/link", AE_IFLNK, NULL, 0, "big");
    add(a, "usr/bin/hard", AE_IFREG, NULL, 0, "usr/bin/small");
    add(a, "etc/", AE_IFDIR, NULL, 0, NULL);
    add(a, "etc/cap", AE_IFREG, "c", 1, NULL);
    archive_write_close(a);
    archive_write_free(a);

    struct store_batch *b;
    CHECK(store_batch_begin(s, &b, &err) == 0, "batch: %s", err.msg);
    struct archive *in = import_tar_reader_new();
    archive_read_open_memory(in, tar.data, tar.len);
    struct layer_build_result lr = {0};
    CHECK(import_layer(b, in, "test layer", &lr, &err) == 0, "import_layer: %s", err.msg);
    archive_read_free(in);
    CHECK(store_batch_commit(b, &err) == 0, "commit: %s", err.msg);

    struct store_read *r;
    CHECK(store_read_begin(s, &r, &err) == 0, "read: %s", err.msg);
    struct buf blob = {0}, again = {0};
    struct estargz_result res, res2;
    CHECK(estargz_write(r, lr.table.data, lr.table.len, NULL, sink, &blob, &res, &err) == 0,
          "estargz_write: %s", err.msg);
    CHECK(estargz_write(r, lr.table.data, lr.table.len, NULL, sink, &again, &res2, &err) == 0,
          "estargz_write again: %s", err.msg);
    CHECK(blob.len == again.len && !memcmp(blob.data, again.data, blob.len), "two writes differ");
    CHECK(res.blob_size == blob.len, "blob size %llu vs %zu", (unsigned long long)res.blob_size,
          blob.len);
    struct digest bd;
    digest_of(blob.data, blob.len, &bd);
    CHECK(digest_equal(&bd, &res.blob), "blob digest");

    /* the whole blob is one gzip stream of a tar whose last member is the TOC */
    in = import_tar_reader_new();
    archive_read_open_memory(in, blob.data, blob.len);
    struct archive_entry *ae;
    const char *last = NULL;
    char lastbuf[256] = "";
    int members = 0;
    while (archive_read_next_header(in, &ae) == ARCHIVE_OK) {
        snprintf(lastbuf, sizeof lastbuf, "%s", archive_entry_pathname(ae));
        last = lastbuf;
        members++;
    }
    CHECK(last && !strcmp(last, ESTARGZ_TOC_NAME), "last member is `%s`", last ? last : "");
    CHECK(members == 9 + 2, "%d members", members);
    archive_read_free(in);

    uint64_t toc_off;
    CHECK(estargz_footer_parse(blob.data + blob.len - ESTARGZ_FOOTER_SIZE, ESTARGZ_FOOTER_SIZE,
                               blob.len, &toc_off, &err) == 0,
          "footer: %s", err.msg);
    CHECK(toc_off == res.toc_offset, "toc offset");
    struct estargz_toc toc;
    CHECK(estargz_toc_parse(blob.data + toc_off, blob.len - ESTARGZ_FOOTER_SIZE - toc_off, toc_off,
                            &res.toc_digest, &toc, &err) == 0,
          "toc: %s", err.msg);
    struct digest wrong = res.toc_digest;
    wrong.b[0] ^= 1;
    struct estargz_toc t2;
    CHECK(estargz_toc_parse(blob.data + toc_off, blob.len - ESTARGZ_FOOTER_SIZE - toc_off, toc_off,
                            &wrong, &t2, &err) < 0,
          "TOC with the wrong digest accepted");

    /* the TOC's table is the stored table */
    struct layer_reader ra, rb;
    struct layer_entry ea, eb;
    layer_reader_init(&ra, lr.table.data, lr.table.len, &err);
    layer_reader_init(&rb, toc.table.data, toc.table.len, &err);
    int n = 0;
    for (;;) {
        int ka = layer_next(&ra, &ea, &err), kb = layer_next(&rb, &eb, &err);
        CHECK(ka == kb, "tables of different lengths at entry %d", n);
        if (ka <= 0 || kb <= 0)
            break;
        CHECK(entries_equal(&ea, &eb), "entry %d (`%s` vs `%s`) differs", n, ea.path, eb.path);
        n++;
    }
    layer_reader_free(&ra);
    layer_reader_free(&rb);
    CHECK(n == 9, "%d entries", n);

    /* every chunk comes out of its range, verified; a flipped byte is refused */
    CHECK(toc.n_chunks >= 5, "%zu chunks", toc.n_chunks);
    uint64_t bytes = 0;
    for (size_t i = 0; i < toc.n_chunks; i++) {
        const struct estargz_chunk *c = &toc.chunks[i];
        CHECK(c->end > c->offset && c->end <= toc_off, "chunk %zu range", i);
        CHECK(store_chunk_present(r, &c->digest), "chunk %zu is not a store chunk", i);
        uint8_t *outb = malloc(c->size);
        CHECK(estargz_chunk_extract(blob.data + c->offset, c->end - c->offset, c, outb, &err) == 0,
              "chunk %zu: %s", i, err.msg);
        bytes += c->size;
        free(outb);
    }
    CHECK(bytes == BIG + 6 + 1, "chunk bytes %llu", (unsigned long long)bytes);
    const struct estargz_chunk *c0 = &toc.chunks[toc.n_chunks / 2];
    uint8_t *copy = malloc(c0->end - c0->offset), *outb = malloc(c0->size);
    memcpy(copy, blob.data + c0->offset, c0->end - c0->offset);
    copy[(c0->end - c0->offset) / 2] ^= 0x55;
    CHECK(estargz_chunk_extract(copy, c0->end - c0->offset, c0, outb, &err) < 0 && err.code == EIO,
          "tampered chunk accepted");
    free(copy);
    free(outb);

    /* prefetch: the named files come first, before the landmark */
    const char *pf[] = {"etc/cap", "usr/bin/small"};
    struct estargz_write_options o = {.prefetch = pf, .n_prefetch = 2};
    struct buf pblob = {0};
    CHECK(estargz_write(r, lr.table.data, lr.table.len, &o, sink, &pblob, &res2, &err) == 0,
          "prefetch write: %s", err.msg);
    struct estargz_toc pt;
    CHECK(estargz_toc_parse(pblob.data + res2.toc_offset,
                            pblob.len - ESTARGZ_FOOTER_SIZE - res2.toc_offset, res2.toc_offset,
                            NULL, &pt, &err) == 0,
          "prefetch toc: %s", err.msg);
    CHECK(pt.prefetch_end > 0, "no prefetch landmark");
    size_t before = 0;
    for (size_t i = 0; i < pt.n_chunks; i++)
        if (pt.chunks[i].offset < pt.prefetch_end)
            before++;
    CHECK(before == 2, "%zu chunks before the landmark", before);
    layer_reader_init(&rb, pt.table.data, pt.table.len, &err);
    const char *want[] = {"etc", "etc/cap", "usr", "usr/bin", "usr/bin/small"};
    for (size_t i = 0; i < 5; i++) {
        if (layer_next(&rb, &eb, &err) <= 0)
            break;
        CHECK(!strcmp(eb.path, want[i]), "prefetch order %zu: `%s`", i, eb.path);
    }
    layer_reader_free(&rb);
    estargz_toc_free(&pt);
    buf_free(&pblob);

    estargz_toc_free(&toc);
    store_read_end(r);
    buf_free(&blob);
    buf_free(&again);
    buf_free(&tar);
    buf_free(&lr.table);
    free(big);
    store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    return unit_summary();
}
