/* test_view.c — layer tables round-trip, and the merged view: OCI whiteouts and opaque directories
 * across layers, hardlinks, implicit parents, replacement, lookup, and refusal of a corrupt view.
 */
#include "../../fs/layer.h"
#include "../../fs/view.h"
#include "unit.h"

#include <string.h>
#include <sys/stat.h>

static struct layer_extent one_extent = {.offset = 0, .length = 5};

static void add(struct layer_writer *w, const char *path, enum layer_kind kind, const char *link)
{
    struct layer_entry e = {.path = path,
                            .kind = kind,
                            .mode = kind == LAYER_DIR ? 0755 : 0644,
                            .link = link,
                            .mtime_sec = 1000,
                            .mtime_nsec = 5};
    if (kind == LAYER_REG) {
        e.size = 5;
        e.n_extents = 1;
        e.extents = &one_extent;
    }
    layer_writer_add(w, &e);
}

static uint32_t ino_of(const struct view *v, const char *path)
{
    return view_lookup_path(v, path);
}

int main(void)
{
    struct imgfs_err err = {0};

    /* layer table round trip, with xattrs, a non-UTF-8 name and a negative mtime */
    struct layer_writer w;
    layer_writer_init(&w);
    struct layer_xattr xa[2] = {{"user.a", (const uint8_t *)"1\0x", 3},
                                {"security.capability", (const uint8_t *)"\x01\x02", 2}};
    struct layer_extent ex[2] = {{.offset = 0, .length = 10}, {.offset = 4096, .length = 7}};
    ex[1].chunk.b[0] = 0xab;
    struct layer_entry in = {.path = "dir/\xff\xfe name",
                             .kind = LAYER_REG,
                             .mode = 04755,
                             .uid = 1234,
                             .gid = 5678,
                             .mtime_sec = -5,
                             .mtime_nsec = 123456789,
                             .size = 8192,
                             .uname = "u",
                             .n_xattrs = 2,
                             .xattrs = xa,
                             .n_extents = 2,
                             .extents = ex};
    layer_writer_add(&w, &in);
    add(&w, "link", LAYER_SYMLINK, "../target");
    layer_writer_finish(&w);
    struct layer_reader rd;
    struct layer_entry out;
    CHECK(layer_reader_init(&rd, w.out.data, w.out.len, &err) == 0, "reader init: %s", err.msg);
    CHECK(layer_next(&rd, &out, &err) == 1, "first entry");
    CHECK(!strcmp(out.path, in.path) && out.mode == 04755 && out.uid == 1234 && out.gid == 5678 &&
              out.mtime_sec == -5 && out.mtime_nsec == 123456789 && out.size == 8192 &&
              !strcmp(out.uname, "u") && !out.gname && !out.link,
          "entry fields survive");
    CHECK(out.n_xattrs == 2 && out.xattrs[0].len == 3 && !memcmp(out.xattrs[0].value, "1\0x", 3) &&
              !strcmp(out.xattrs[1].name, "security.capability"),
          "xattrs survive");
    CHECK(out.n_extents == 2 && out.extents[1].offset == 4096 && out.extents[1].length == 7 &&
              out.extents[1].chunk.b[0] == 0xab,
          "extents survive");
    CHECK(layer_next(&rd, &out, &err) == 1 && out.kind == LAYER_SYMLINK &&
              !strcmp(out.link, "../target"),
          "symlink survives");
    CHECK(layer_next(&rd, &out, &err) == 0, "end of table");
    layer_reader_free(&rd);
    CHECK(layer_reader_init(&rd, w.out.data, 20, &err) == 0 && layer_next(&rd, &out, &err) < 0,
          "a truncated table is an error, not a crash");
    layer_reader_free(&rd);
    buf_free(&w.out);

    /* three layers */
    struct layer_writer l1, l2, l3;
    layer_writer_init(&l1);
    add(&l1, "etc", LAYER_DIR, NULL);
    add(&l1, "etc/passwd", LAYER_REG, NULL);
    add(&l1, "etc/gone", LAYER_REG, NULL);
    add(&l1, "opq", LAYER_DIR, NULL);
    add(&l1, "opq/lower1", LAYER_REG, NULL);
    add(&l1, "opq/sub", LAYER_DIR, NULL);
    add(&l1, "opq/sub/deep", LAYER_REG, NULL);
    add(&l1, "becomesfile", LAYER_DIR, NULL);
    add(&l1, "becomesfile/x", LAYER_REG, NULL);
    add(&l1, "a/b/c/implicit", LAYER_REG, NULL); /* parents not listed */
    add(&l1, "hl1", LAYER_REG, NULL);
    add(&l1, "hl2", LAYER_HARDLINK, "hl1");
    add(&l1, "hl3", LAYER_HARDLINK, "hl1");
    layer_writer_finish(&l1);
    layer_writer_init(&l2);
    add(&l2, "etc/.wh.gone", LAYER_REG, NULL);
    add(&l2, "opq/kept-before-marker", LAYER_REG, NULL);
    add(&l2, "opq/.wh..wh..opq", LAYER_REG, NULL);
    add(&l2, "opq/upper", LAYER_REG, NULL);
    add(&l2, "becomesfile", LAYER_REG, NULL);
    add(&l2, ".wh.hl3", LAYER_REG, NULL);
    layer_writer_finish(&l2);
    layer_writer_init(&l3);
    add(&l3, "etc/gone", LAYER_SYMLINK, "passwd"); /* re-created after a whiteout */
    add(&l3, "zz", LAYER_DIR, NULL);
    layer_writer_finish(&l3);

    struct layer_table t[3] = {
        {l1.out.data, l1.out.len}, {l2.out.data, l2.out.len}, {l3.out.data, l3.out.len}};
    struct buf blob = {0};
    CHECK(view_build(t, 3, &blob, &err) == 0, "view_build: %s", err.msg);
    struct view v;
    CHECK(view_open(blob.data, blob.len, &v, &err) == 0, "view_open: %s", err.msg);

    CHECK(ino_of(&v, "etc/passwd") != 0, "lower file visible");
    uint32_t gone = ino_of(&v, "etc/gone");
    CHECK(gone && S_ISLNK(view_inode(&v, gone)->mode), "whited-out file re-created as symlink");
    CHECK(ino_of(&v, "opq/lower1") == 0 && ino_of(&v, "opq/sub") == 0,
          "opaque dir hides lower entries");
    CHECK(ino_of(&v, "opq/upper") && ino_of(&v, "opq/kept-before-marker"),
          "opaque dir keeps its own layer's entries");
    CHECK(ino_of(&v, "opq/.wh..wh..opq") == 0 && ino_of(&v, "etc/.wh.gone") == 0,
          "whiteout entries themselves are not shown");
    uint32_t bf = ino_of(&v, "becomesfile");
    CHECK(bf && S_ISREG(view_inode(&v, bf)->mode) && ino_of(&v, "becomesfile/x") == 0,
          "a directory replaced by a file loses its entries");
    uint32_t imp = ino_of(&v, "a/b");
    CHECK(imp && S_ISDIR(view_inode(&v, imp)->mode) && ino_of(&v, "a/b/c/implicit"),
          "implicit parents are directories");
    uint32_t h1 = ino_of(&v, "hl1"), h2 = ino_of(&v, "hl2");
    CHECK(h1 && h1 == h2, "hardlinks share one inode");
    CHECK(h1 && view_inode(&v, h1)->nlink == 2, "nlink counts names left after a whiteout (%u)",
          h1 ? view_inode(&v, h1)->nlink : 0);
    CHECK(ino_of(&v, "hl3") == 0, "whited-out hardlink name gone");
    const struct view_inode *root = view_inode(&v, 1);
    CHECK(root && S_ISDIR(root->mode), "root is a directory");
    /* directory entries sorted, and every one found by lookup */
    int sorted = 1, found = 1;
    for (uint32_t i = 1; i < root->count; i++) {
        const struct view_dirent *p = view_dirent_at(&v, 1, i - 1), *q = view_dirent_at(&v, 1, i);
        if (strcmp(view_string(&v, p->name_off), view_string(&v, q->name_off)) >= 0 &&
            p->name_len <= q->name_len)
            sorted = 0;
        if (view_lookup(&v, 1, view_string(&v, q->name_off), q->name_len) != q->ino)
            found = 0;
    }
    CHECK(sorted && found, "root entries sorted and found by lookup");
    uint32_t etc = ino_of(&v, "etc");
    CHECK(etc && view_inode(&v, etc)->parent == 1, "parent of /etc is the root");
    CHECK(view_inode(&v, 1)->nlink == 2 + 4, "root nlink = 2 + subdirectories (%u)",
          view_inode(&v, 1)->nlink);

    /* corruption is detected */
    struct view bad;
    CHECK(view_open(blob.data, blob.len - 1, &bad, &err) < 0, "truncated view refused");
    struct view_inode *first = (struct view_inode *)(blob.data + sizeof(struct view_header));
    first->count = 1000000;
    CHECK(view_open(blob.data, blob.len, &bad, &err) < 0, "out-of-range index refused");

    /* a hardlink to a file of another layer is refused */
    struct layer_writer l4;
    layer_writer_init(&l4);
    add(&l4, "link-to-lower", LAYER_HARDLINK, "etc/passwd");
    layer_writer_finish(&l4);
    struct layer_table t2[2] = {{l1.out.data, l1.out.len}, {l4.out.data, l4.out.len}};
    struct buf blob2 = {0};
    CHECK(view_build(t2, 2, &blob2, &err) < 0 && strstr(err.msg, "link-to-lower"),
          "hardlink across layers refused, naming the path (%s)", err.msg);

    buf_free(&blob);
    buf_free(&blob2);
    buf_free(&l1.out);
    buf_free(&l2.out);
    buf_free(&l3.out);
    buf_free(&l4.out);
    return unit_summary();
}
