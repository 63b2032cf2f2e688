/* fuzz_view.c — view_open must refuse any malformed view, and a view it accepts must be safe to
 * walk: every lookup, directory entry, symlink target and xattr stays inside the blob. */
#include "../../fs/view.h"

#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the daemon works on its own aligned copy */
    uint64_t *copy = xmalloc(size + 8);
    memcpy(copy, data, size);
    struct view v;
    struct imgfs_err err;
    if (view_open(copy, size, &v, &err) == 0) {
        volatile uint8_t sink = 0;
        for (uint64_t ino = 1; ino <= v.hdr->n_inodes; ino++) {
            const struct view_inode *in = view_inode(&v, ino);
            if (S_ISDIR(in->mode)) {
                const struct view_dirent *d;
                for (uint32_t i = 0; (d = view_dirent_at(&v, ino, i)); i++) {
                    const char *name = view_string(&v, d->name_off);
                    if (d->name_len)
                        sink ^= (uint8_t)name[d->name_len - 1];
                    view_lookup(&v, ino, name, d->name_len);
                }
            } else if (S_ISLNK(in->mode) && in->size) {
                sink ^= (uint8_t)view_string(&v, in->first)[in->size - 1];
            }
            for (uint32_t x = 0; x < in->xattr_count; x++) {
                const struct view_xattr *xa = &v.xattrs[in->xattr_first + x];
                if (xa->value_len)
                    sink ^= (uint8_t)v.strings[xa->value_off + xa->value_len - 1];
            }
        }
        view_lookup_path(&v, "usr/bin/env");
        (void)sink;
    }
    free(copy);
    return 0;
}
