#include "view.h"
#include "layer.h"

#include <string.h>
#include <sys/stat.h>

/* ---- reading ---- */

static bool range_ok(uint64_t first, uint64_t count, uint64_t n)
{
    return first <= n && count <= n - first;
}

int view_open(const void *blob, size_t len, struct view *v, struct imgfs_err *err)
{
    const struct view_header *h = blob;
    if (len < sizeof *h || memcmp(h->magic, VIEW_MAGIC, 8))
        return err_set(err, EIO, "not an image view (bad header)");
    uint64_t need = sizeof *h + (uint64_t)h->n_inodes * sizeof(struct view_inode) +
                    (uint64_t)h->n_dirents * sizeof(struct view_dirent) +
                    (uint64_t)h->n_extents * sizeof(struct view_extent) +
                    (uint64_t)h->n_xattrs * sizeof(struct view_xattr) + h->strings_len;
    if (need != len || h->n_inodes == 0)
        return err_set(err, EIO, "image view is corrupt (its size does not match its tables)");
    const char *p = (const char *)blob + sizeof *h;
    v->hdr = h;
    v->inodes = (const void *)p;
    p += (size_t)h->n_inodes * sizeof(struct view_inode);
    v->dirents = (const void *)p;
    p += (size_t)h->n_dirents * sizeof(struct view_dirent);
    v->extents = (const void *)p;
    p += (size_t)h->n_extents * sizeof(struct view_extent);
    v->xattrs = (const void *)p;
    p += (size_t)h->n_xattrs * sizeof(struct view_xattr);
    v->strings = p;

    for (uint32_t i = 0; i < h->n_inodes; i++) {
        const struct view_inode *n = &v->inodes[i];
        bool ok = range_ok(n->xattr_first, n->xattr_count, h->n_xattrs);
        if (S_ISDIR(n->mode))
            ok = ok && range_ok(n->first, n->count, h->n_dirents) && n->parent >= 1 &&
                 n->parent <= h->n_inodes;
        else if (S_ISREG(n->mode))
            ok = ok && range_ok(n->first, n->count, h->n_extents);
        else if (S_ISLNK(n->mode))
            ok = ok && range_ok(n->first, n->size, h->strings_len);
        if (!ok)
            return err_set(err, EIO, "image view is corrupt at inode %u", i + 1);
    }
    if (!S_ISDIR(v->inodes[0].mode))
        return err_set(err, EIO, "image view is corrupt: its root is not a directory");
    for (uint32_t i = 0; i < h->n_dirents; i++) {
        const struct view_dirent *d = &v->dirents[i];
        if (!range_ok(d->name_off, d->name_len, h->strings_len) || d->ino < 1 ||
            d->ino > h->n_inodes)
            return err_set(err, EIO, "image view is corrupt at directory entry %u", i);
    }
    for (uint32_t i = 0; i < h->n_xattrs; i++) {
        const struct view_xattr *x = &v->xattrs[i];
        if (!range_ok(x->name_off, x->name_len, h->strings_len) ||
            !range_ok(x->value_off, x->value_len, h->strings_len))
            return err_set(err, EIO, "image view is corrupt at xattr %u", i);
    }
    return 0;
}

int view_open_copy(const void *stored, size_t len, void **copy, struct view *v,
                   struct imgfs_err *err)
{
    *copy = xmalloc(len ? len : 1); /* malloc's alignment suits every table */
    memcpy(*copy, stored, len);
    if (view_open(*copy, len, v, err) < 0) {
        free(*copy);
        *copy = NULL;
        return -1;
    }
    return 0;
}

int view_header_of(const void *stored, size_t len, struct view_header *h)
{
    if (len < sizeof *h)
        return -1;
    memcpy(h, stored, sizeof *h);
    return memcmp(h->magic, VIEW_MAGIC, 8) ? -1 : 0;
}

const struct view_inode *view_inode(const struct view *v, uint64_t ino)
{
    if (ino < 1 || ino > v->hdr->n_inodes)
        return NULL;
    return &v->inodes[ino - 1];
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

uint32_t view_lookup(const struct view *v, uint64_t dir, const char *name, size_t len)
{
    const struct view_inode *d = view_inode(v, dir);
    if (!d || !S_ISDIR(d->mode))
        return 0;
    size_t lo = 0, hi = d->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct view_dirent *e = &v->dirents[d->first + mid];
        int c = name_cmp(v->strings + e->name_off, e->name_len, name, len);
        if (c == 0)
            return e->ino;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

uint32_t view_lookup_path(const struct view *v, const char *path)
{
    uint32_t ino = 1;
    while (*path) {
        while (*path == '/')
            path++;
        if (!*path)
            break;
        const char *end = strchr(path, '/');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        if (!(n == 1 && path[0] == '.')) {
            ino = view_lookup(v, ino, path, n);
            if (!ino)
                return 0;
        }
        path += n;
    }
    return ino;
}

const struct view_dirent *view_dirent_at(const struct view *v, uint64_t dir, uint32_t idx)
{
    const struct view_inode *d = view_inode(v, dir);
    if (!d || !S_ISDIR(d->mode) || idx >= d->count)
        return NULL;
    return &v->dirents[d->first + idx];
}

/* ---- building ---- */

struct vnode;

struct vchild {
    const char *name;
    size_t len;
    struct vnode *node; /* NULL: removed by a whiteout */
    uint32_t layer;     /* the layer that wrote this entry */
};

struct vnode {
    struct layer_entry e; /* extents and xattrs copied; strings point into the layer tables */
    uint32_t ino;
    uint32_t refs;
    /* directories */
    struct vchild *kids;
    size_t n_kids, cap_kids;
    uint32_t *index; /* open addressing over kids: slot+1, 0 = empty */
    size_t index_cap;
    struct vchild *sorted; /* live children in name order, made when flattening */
    size_t n_sorted;
};

struct builder {
    struct vnode **all;
    size_t n_all, cap_all;
};

static struct vnode *node_new(struct builder *b)
{
    struct vnode *n = xcalloc(1, sizeof *n);
    if (b->n_all == b->cap_all) {
        b->cap_all = b->cap_all ? b->cap_all * 2 : 1024;
        b->all = xrealloc(b->all, b->cap_all * sizeof *b->all);
    }
    b->all[b->n_all++] = n;
    return n;
}

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static void index_insert(struct vnode *d, size_t slot)
{
    const struct vchild *c = &d->kids[slot];
    size_t i = name_hash(c->name, c->len) & (d->index_cap - 1);
    while (d->index[i])
        i = (i + 1) & (d->index_cap - 1);
    d->index[i] = (uint32_t)slot + 1;
}

/* The live child of `d` named name[0..len), or NULL. */
static struct vchild *child_find(struct vnode *d, const char *name, size_t len)
{
    if (!d->index_cap)
        return NULL;
    struct vchild *found = NULL;
    for (size_t i = name_hash(name, len) & (d->index_cap - 1); d->index[i];
         i = (i + 1) & (d->index_cap - 1)) {
        struct vchild *c = &d->kids[d->index[i] - 1];
        if (c->node && c->len == len && !memcmp(c->name, name, len))
            found = c;
    }
    return found;
}

static struct vchild *child_add(struct vnode *d, const char *name, size_t len, struct vnode *n,
                                uint32_t layer)
{
    if (d->n_kids == d->cap_kids) {
        d->cap_kids = d->cap_kids ? d->cap_kids * 2 : 8;
        d->kids = xrealloc(d->kids, d->cap_kids * sizeof *d->kids);
    }
    if ((d->n_kids + 1) * 2 > d->index_cap) {
        free(d->index);
        d->index_cap = d->index_cap ? d->index_cap * 2 : 16;
        d->index = xcalloc(d->index_cap, sizeof *d->index);
        for (size_t i = 0; i < d->n_kids; i++)
            index_insert(d, i);
    }
    d->kids[d->n_kids] = (struct vchild){.name = name, .len = len, .node = n, .layer = layer};
    index_insert(d, d->n_kids);
    return &d->kids[d->n_kids++];
}

static void node_set(struct vnode *n, const struct layer_entry *e)
{
    free((void *)n->e.extents);
    free((void *)n->e.xattrs);
    n->e = *e;
    n->e.path = NULL;
    struct layer_extent *x = NULL;
    if (e->n_extents) {
        x = xmalloc(e->n_extents * sizeof *x);
        memcpy(x, e->extents, e->n_extents * sizeof *x);
    }
    n->e.extents = x;
    struct layer_xattr *xa = NULL;
    if (e->n_xattrs) {
        xa = xmalloc(e->n_xattrs * sizeof *xa);
        memcpy(xa, e->xattrs, e->n_xattrs * sizeof *xa);
    }
    n->e.xattrs = xa;
}

static struct vnode *implicit_dir(struct builder *b)
{
    struct vnode *n = node_new(b);
    n->e.kind = LAYER_DIR;
    n->e.mode = 0755;
    return n;
}

/* Walk to the directory holding path's last component, making missing (or shadowed non-directory)
 * parents directories, as overlayfs shows an upper directory over a lower file. */
static struct vnode *parent_of(struct builder *b, struct vnode *root, const char *path,
                               uint32_t layer, const char **base, size_t *base_len)
{
    struct vnode *d = root;
    const char *s = path;
    for (;;) {
        const char *slash = strchr(s, '/');
        if (!slash) {
            *base = s;
            *base_len = strlen(s);
            return d;
        }
        size_t n = slash - s;
        struct vchild *c = child_find(d, s, n);
        if (!c || c->node->e.kind != LAYER_DIR) {
            if (c)
                c->node = NULL;
            c = child_add(d, s, n, implicit_dir(b), layer);
        }
        d = c->node;
        s = slash + 1;
    }
}

static int cmp_child(const void *a, const void *b)
{
    const struct vchild *x = a, *y = b;
    return name_cmp(x->name, x->len, y->name, y->len);
}

static int apply_entry(struct builder *b, struct vnode *root, const struct layer_entry *e,
                       uint32_t layer, struct imgfs_err *err)
{
    if (!*e->path) { /* the layer's root directory: its attributes */
        if (e->kind == LAYER_DIR)
            node_set(root, e);
        return 0;
    }
    const char *base;
    size_t blen;
    struct vnode *dir = parent_of(b, root, e->path, layer, &base, &blen);
    if (blen == strlen(LAYER_OPAQUE_NAME) && !memcmp(base, LAYER_OPAQUE_NAME, blen)) {
        for (size_t i = 0; i < dir->n_kids; i++)
            if (dir->kids[i].layer < layer)
                dir->kids[i].node = NULL;
        return 0;
    }
    size_t wl = strlen(LAYER_WHITEOUT_PREFIX);
    if (blen > wl && !memcmp(base, LAYER_WHITEOUT_PREFIX, wl)) {
        struct vchild *c = child_find(dir, base + wl, blen - wl);
        if (c && c->layer < layer)
            c->node = NULL;
        return 0;
    }
    struct vchild *c = child_find(dir, base, blen);
    if (e->kind == LAYER_HARDLINK) {
        const char *tbase;
        size_t tlen;
        struct vnode *tdir = parent_of(b, root, e->link, layer, &tbase, &tlen);
        struct vchild *t = child_find(tdir, tbase, tlen);
        if (!t || t->layer != layer || t->node->e.kind == LAYER_DIR)
            return err_set(err, EINVAL, "hardlink `%s` to `%s`: no such file in the same layer",
                           e->path, e->link);
        struct vnode *target = t->node;
        if (c)
            c->node = NULL;
        child_add(dir, base, blen, target, layer);
        return 0;
    }
    if (c && e->kind == LAYER_DIR && c->node->e.kind == LAYER_DIR) {
        /* an existing directory gets the new attributes and keeps its entries */
        struct vnode *n = c->node;
        node_set(n, e);
        c->layer = layer;
        return 0;
    }
    if (c)
        c->node = NULL;
    struct vnode *n = node_new(b);
    node_set(n, e);
    child_add(dir, base, blen, n, layer);
    return 0;
}

static void builder_free(struct builder *b)
{
    for (size_t i = 0; i < b->n_all; i++) {
        struct vnode *n = b->all[i];
        free((void *)n->e.extents);
        free((void *)n->e.xattrs);
        free(n->kids);
        free(n->index);
        free(n->sorted);
        free(n);
    }
    free(b->all);
}

static uint32_t add_string(struct buf *s, const void *data, size_t len)
{
    uint32_t off = (uint32_t)s->len;
    buf_append(s, data, len);
    return off;
}

static int xattr_cmp(const void *a, const void *b)
{
    const struct layer_xattr *x = a, *y = b;
    return strcmp(x->name, y->name);
}

int view_build(const struct layer_table *layers, size_t n, struct buf *out, struct imgfs_err *err)
{
    struct builder b = {0};
    struct vnode *root = implicit_dir(&b);
    int ret = -1;
    struct vnode **order = NULL;

    for (size_t i = 0; i < n; i++) {
        struct layer_reader rd;
        if (layer_reader_init(&rd, layers[i].data, layers[i].len, err) < 0) {
            err_ctx(err, "layer %zu", i + 1);
            goto out;
        }
        struct layer_entry e;
        int rc;
        while ((rc = layer_next(&rd, &e, err)) > 0)
            if (apply_entry(&b, root, &e, (uint32_t)i + 1, err) < 0)
                break;
        layer_reader_free(&rd);
        if (rc != 0) {
            err_ctx(err, "merging layer %zu", i + 1);
            goto out;
        }
    }

    /* Number the inodes breadth first (hardlinked files once) and sort each directory. */
    size_t n_order = 0, cap_order = 1024;
    order = xmalloc(cap_order * sizeof *order);
    root->ino = 1;
    order[n_order++] = root;
    uint64_t n_dirents = 0, n_extents = 0, n_xattrs = 0;
    for (size_t i = 0; i < n_order; i++) {
        struct vnode *d = order[i];
        n_extents += d->e.n_extents;
        n_xattrs += d->e.n_xattrs;
        if (d->e.kind != LAYER_DIR)
            continue;
        d->sorted = xmalloc((d->n_kids ? d->n_kids : 1) * sizeof *d->sorted);
        for (size_t k = 0; k < d->n_kids; k++)
            if (d->kids[k].node)
                d->sorted[d->n_sorted++] = d->kids[k];
        qsort(d->sorted, d->n_sorted, sizeof *d->sorted, cmp_child);
        n_dirents += d->n_sorted;
        for (size_t k = 0; k < d->n_sorted; k++) {
            struct vnode *c = d->sorted[k].node;
            c->refs++;
            if (c->ino)
                continue;
            if (n_order == cap_order) {
                cap_order *= 2;
                order = xrealloc(order, cap_order * sizeof *order);
            }
            c->ino = (uint32_t)n_order + 1;
            order[n_order++] = c;
        }
    }
    if (n_order > UINT32_MAX / 2 || n_dirents > UINT32_MAX || n_extents > UINT32_MAX) {
        err_set(err, EFBIG, "image has too many files for one view");
        goto out;
    }

    struct view_header h = {.n_inodes = (uint32_t)n_order,
                            .n_dirents = (uint32_t)n_dirents,
                            .n_extents = (uint32_t)n_extents,
                            .n_xattrs = (uint32_t)n_xattrs};
    memcpy(h.magic, VIEW_MAGIC, 8);
    struct view_inode *inodes = xcalloc(n_order, sizeof *inodes);
    struct view_dirent *dirents = xcalloc(n_dirents ? n_dirents : 1, sizeof *dirents);
    struct view_extent *extents = xcalloc(n_extents ? n_extents : 1, sizeof *extents);
    struct view_xattr *xattrs = xcalloc(n_xattrs ? n_xattrs : 1, sizeof *xattrs);
    struct buf strings = {0};
    uint32_t di = 0, ei = 0, xi = 0;
    for (size_t i = 0; i < n_order; i++) {
        struct vnode *v = order[i];
        struct view_inode *o = &inodes[i];
        const struct layer_entry *e = &v->e;
        static const uint32_t types[] = {
            [LAYER_REG] = S_IFREG,  [LAYER_DIR] = S_IFDIR,    [LAYER_SYMLINK] = S_IFLNK,
            [LAYER_HARDLINK] = S_IFREG, [LAYER_CHAR] = S_IFCHR, [LAYER_BLOCK] = S_IFBLK,
            [LAYER_FIFO] = S_IFIFO, [LAYER_SOCKET] = S_IFSOCK,
        };
        o->mode = types[e->kind] | (e->mode & 07777);
        o->uid = e->uid;
        o->gid = e->gid;
        o->mtime_sec = e->mtime_sec;
        o->mtime_nsec = e->mtime_nsec;
        o->rdev_major = e->rdev_major;
        o->rdev_minor = e->rdev_minor;
        o->nlink = v->refs ? v->refs : 1;
        if (e->n_xattrs > 1)
            qsort((void *)e->xattrs, e->n_xattrs, sizeof *e->xattrs, xattr_cmp);
        o->xattr_first = xi;
        o->xattr_count = e->n_xattrs;
        for (uint32_t k = 0; k < e->n_xattrs; k++, xi++) {
            xattrs[xi].name_len = (uint32_t)strlen(e->xattrs[k].name);
            xattrs[xi].name_off = add_string(&strings, e->xattrs[k].name, xattrs[xi].name_len);
            xattrs[xi].value_len = e->xattrs[k].len;
            xattrs[xi].value_off = add_string(&strings, e->xattrs[k].value, e->xattrs[k].len);
        }
        switch (e->kind) {
        case LAYER_DIR: {
            o->first = di;
            o->count = (uint32_t)v->n_sorted;
            o->size = v->n_sorted;
            uint32_t subdirs = 0;
            for (size_t k = 0; k < v->n_sorted; k++, di++) {
                const struct vchild *c = &v->sorted[k];
                dirents[di].name_len = (uint32_t)c->len;
                dirents[di].name_off = add_string(&strings, c->name, c->len);
                dirents[di].ino = c->node->ino;
                if (c->node->e.kind == LAYER_DIR) {
                    subdirs++;
                    inodes[c->node->ino - 1].parent = v->ino;
                }
            }
            o->nlink = 2 + subdirs;
            if (i == 0)
                o->parent = 1;
            break;
        }
        case LAYER_REG:
            o->size = e->size;
            o->first = ei;
            o->count = e->n_extents;
            for (uint32_t k = 0; k < e->n_extents; k++, ei++) {
                extents[ei].offset = e->extents[k].offset;
                extents[ei].length = e->extents[k].length;
                extents[ei].chunk = e->extents[k].chunk;
            }
            h.total_size += e->size;
            break;
        case LAYER_SYMLINK:
            o->size = strlen(e->link);
            o->first = add_string(&strings, e->link, o->size);
            break;
        default:
            break;
        }
    }
    inodes[0].parent = 1;
    h.strings_len = strings.len;
    buf_append(out, &h, sizeof h);
    buf_append(out, inodes, n_order * sizeof *inodes);
    buf_append(out, dirents, n_dirents * sizeof *dirents);
    buf_append(out, extents, n_extents * sizeof *extents);
    buf_append(out, xattrs, n_xattrs * sizeof *xattrs);
    buf_append(out, strings.data, strings.len);
    free(inodes);
    free(dirents);
    free(extents);
    free(xattrs);
    buf_free(&strings);
    ret = 0;
out:
    free(order);
    builder_free(&b);
    return ret;
}
