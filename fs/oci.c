/* oci.c — OCI image layouts and `docker save` archives, in and out. Formats: docs/formats.md.
 *
 * Import reads a source (a layout directory, or a tar holding a layout or a docker-save archive)
 * through one small "source" abstraction: small documents (index, manifests, configs) are read into
 * memory; layer blobs are streamed into import_layer through a nested libarchive reader whose read
 * callback hashes every byte, so each blob is verified against the digest that names it without a
 * second read. Members of a tar come in any order, so a tar is read in passes: the first lists the
 * members and keeps the small ones; the last streams the big layers in whatever order they come. */
#include "oci.h"
#include "reference.h"

#include "estargz.h"
#include "image.h"
#include "import.h"
#include "layer.h"
#include "store.h"
#include "view.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"

#define ANNOT_REF_NAME  "org.opencontainers.image.ref.name"
#define ANNOT_CTRD_NAME "io.containerd.image.name"

/* Manifests, indexes and configs are small; anything bigger is not one. */
#define JSON_LIMIT (16u << 20)
/* Tar members kept in memory by the first pass: every document, and layers small enough. */
#define CACHE_MEMBER_LIMIT (4u << 20)
#define CACHE_TOTAL_LIMIT  (64u << 20)
#define NESTING_LIMIT      8

static const char *const layer_media_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    NULL,
};

static bool str_in(const char *s, const char *const *list);

bool oci_layer_media_type_known(const char *media_type)
{
    return media_type && str_in(media_type, layer_media_types);
}

static bool str_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return true;
    return false;
}

static bool is_hex64(const char *s, size_t len)
{
    if (len != DIGEST_HEX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* "./a//b/" -> "a/b"; ".." parts are resolved against the archive's top and fail above it.
 * Returns NULL for a name that leaves the archive. */
static char *member_name_normalize(const char *in)
{
    size_t n = strlen(in);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
            /* nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (o == 0) {
                free(out);
                return NULL;
            }
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p = end;
    }
    out[o] = 0;
    return out;
}

/* ---- sources ---- */

struct member {
    char *name;   /* normalized */
    char *target; /* symlinks and hardlinks: the normalized member they name */
    uint64_t size;
    uint8_t *data; /* kept by the first pass, or NULL */
};

struct source {
    enum oci_source_kind kind;
    const char *path;
    int dirfd; /* OCI_SOURCE_OCI_DIR */
    struct member *members;
    size_t n_members;
    uint64_t cached_bytes;
};

static void source_free(struct source *s)
{
    if (s->dirfd >= 0)
        close(s->dirfd);
    for (size_t i = 0; i < s->n_members; i++) {
        free(s->members[i].name);
        free(s->members[i].target);
        free(s->members[i].data);
    }
    free(s->members);
}

static struct archive *tar_open(const char *path, struct imgfs_err *err)
{
    struct archive *a = import_tar_reader_new();
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        err_set(err, archive_errno(a) > 0 ? archive_errno(a) : EINVAL, "opening `%s`: %s", path,
                archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

static int tar_read_data(struct archive *a, const char *path, const char *name, uint64_t size,
                         uint8_t **out, struct imgfs_err *err)
{
    uint8_t *data = xmalloc(size ? size : 1);
    uint64_t got = 0;
    while (got < size) {
        la_ssize_t n = archive_read_data(a, data + got, size - got);
        if (n < 0) {
            err_set(err, EIO, "reading `%s` in `%s`: %s", name, path, archive_error_string(a));
            free(data);
            return -1;
        }
        if (n == 0)
            break;
        got += (uint64_t)n;
    }
    if (got != size) {
        free(data);
        return err_set(err, EIO, "reading `%s` in `%s`: truncated archive", name, path);
    }
    *out = data;
    return 0;
}

static struct member *source_find_raw(struct source *s, const char *name)
{
    /* the last of several members with one name wins, as when extracting */
    for (size_t i = s->n_members; i-- > 0;)
        if (!strcmp(s->members[i].name, name))
            return &s->members[i];
    return NULL;
}

/* The regular member a name stands for, following symlinks and hardlinks (docker save links
 * repeated layers to their first copy). */
static struct member *source_find(struct source *s, const char *name)
{
    struct member *m = source_find_raw(s, name);
    for (int hops = 0; m && m->target && hops < 16; hops++)
        m = source_find_raw(s, m->target);
    return m && !m->target ? m : NULL;
}

/* First pass over a tar: list its members, keep the small ones. */
static int source_scan_tar(struct source *s, struct imgfs_err *err)
{
    struct archive *a = tar_open(s->path, err);
    if (!a)
        return -1;
    size_t cap = 0;
    int ret = -1;
    for (;;) {
        struct archive_entry *ae;
        int r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            err_set(err, EIO, "reading `%s`: %s", s->path, archive_error_string(a));
            goto out;
        }
        const char *raw = archive_entry_pathname(ae);
        cleanup_free char *name = raw ? member_name_normalize(raw) : NULL;
        if (!name || !*name)
            continue;
        mode_t type = archive_entry_filetype(ae);
        const char *hardlink = archive_entry_hardlink(ae);
        struct member m = {.size = (uint64_t)archive_entry_size(ae)};
        if (hardlink) {
            m.target = member_name_normalize(hardlink);
            m.size = 0;
            if (!m.target)
                continue; /* leaves the archive: as good as absent */
        } else if (type == AE_IFLNK) {
            /* relative to the link's directory */
            const char *slash = strrchr(name, '/');
            const char *target = archive_entry_symlink(ae);
            if (!target)
                continue;
            cleanup_free char *joined =
                target[0] == '/'
                    ? xstrdup(target)
                    : xasprintf("%.*s/%s", slash ? (int)(slash - name) : 0, name, target);
            m.target = member_name_normalize(joined);
            if (!m.target)
                continue;
        } else if (type != AE_IFREG) {
            continue;
        }
        if (!m.target && m.size <= CACHE_MEMBER_LIMIT &&
            s->cached_bytes + m.size <= CACHE_TOTAL_LIMIT) {
            if (tar_read_data(a, s->path, name, m.size, &m.data, err) < 0) {
                free(m.target);
                goto out;
            }
            s->cached_bytes += m.size;
        }
        if (s->n_members == cap) {
            cap = cap ? cap * 2 : 64;
            s->members = xrealloc(s->members, cap * sizeof *s->members);
        }
        m.name = get_and_reset(&name);
        s->members[s->n_members++] = m;
    }
    ret = 0;
out:
    archive_read_free(a);
    return ret;
}

static int source_open(struct source *s, const char *path, enum oci_source_kind kind,
                       struct imgfs_err *err)
{
    *s = (struct source){.kind = kind, .path = path, .dirfd = -1};
    if (kind == OCI_SOURCE_OCI_DIR) {
        s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0)
            return err_sys(err, errno, "opening `%s`", path);
        return 0;
    }
    return source_scan_tar(s, err);
}

/* A whole member (a document) into *out. `name` is trusted: a fixed name or one made from a
 * digest, or for tars any member name (a lookup in a list, never a filesystem path). */
static int source_read(struct source *s, const char *name, size_t limit, struct buf *out,
                       struct imgfs_err *err)
{
    if (s->kind == OCI_SOURCE_OCI_DIR) {
        struct stat st;
        cleanup_close int fd = open_regular(s->dirfd, name, O_NOFOLLOW, &st, err);
        if (fd < 0)
            return err_ctx(err, "`%s` in `%s`", name, s->path);
        if ((uint64_t)st.st_size > limit)
            return err_set(err, EFBIG, "`%s` in `%s` is too big (%lld bytes)", name, s->path,
                           (long long)st.st_size);
        buf_reserve(out, (size_t)st.st_size + 1);
        ssize_t n = read_full(fd, out->data + out->len, (size_t)st.st_size + 1);
        if (n < 0)
            return err_sys(err, errno, "reading `%s` in `%s`", name, s->path);
        if ((uint64_t)n > limit)
            return err_set(err, EFBIG, "`%s` in `%s` is too big", name, s->path);
        out->len += (size_t)n;
        return 0;
    }
    struct member *m = source_find(s, name);
    if (!m)
        return err_set(err, ENOENT, "`%s` is missing from `%s`", name, s->path);
    if (m->size > limit)
        return err_set(err, EFBIG, "`%s` in `%s` is too big (%llu bytes)", name, s->path,
                       (unsigned long long)m->size);
    if (!m->data) {
        /* not kept by the first pass (the cache was full): read the archive again */
        struct archive *a = tar_open(s->path, err);
        if (!a)
            return -1;
        struct archive_entry *ae;
        int r;
        while ((r = archive_read_next_header(a, &ae)) >= ARCHIVE_WARN) {
            cleanup_free char *n = member_name_normalize(archive_entry_pathname(ae) ?: "");
            if (n && !strcmp(n, m->name) && archive_entry_filetype(ae) == AE_IFREG &&
                !archive_entry_hardlink(ae)) {
                uint8_t *data;
                int rr = tar_read_data(a, s->path, name, m->size, &data, err);
                archive_read_free(a);
                if (rr < 0)
                    return -1;
                buf_append(out, data, m->size);
                free(data);
                return 0;
            }
        }
        archive_read_free(a);
        return err_set(err, EIO, "`%s` in `%s` vanished on a second read", name, s->path);
    }
    buf_append(out, m->data, m->size);
    return 0;
}

static json_t *json_parse(const struct buf *b, const char *what, struct imgfs_err *err)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        err_set(err, EINVAL, "%s: broken JSON at line %d column %d: %s", what, je.line, je.column,
                je.text);
        return NULL;
    }
    if (!json_is_object(j) && !json_is_array(j)) {
        json_decref(j);
        err_set(err, EINVAL, "%s: not a JSON object", what);
        return NULL;
    }
    return j;
}

/* jansson's own scope-bound release */
#define cleanup_json __attribute__((cleanup(json_decrefp)))

static void buf_freep(struct buf *b)
{
    buf_free(b);
}
#define cleanup_buf __attribute__((cleanup(buf_freep)))

/* ---- the plan: what to import ---- */

/* One blob to stream into import_layer; several layers (of one or several images) may share it. */
struct layer_job {
    char *member; /* member name (tar) or path under the layout directory */
    char *what;   /* "layer 2 of `x.tar`" */
    struct digest expect;
    bool have_expect;
    struct digest alt; /* docker: the layer's diff_id also vouches for an uncompressed blob */
    bool have_alt;
    int64_t size; /* expected size, -1 when unknown */
    bool needed;  /* by an image being imported */
    bool done;
    struct layer_build_result res;
};

struct plan_image {
    struct digest source_manifest; /* digest of the manifest in the archive (dedup of images) */
    char *config;
    size_t config_len;
    size_t *layers; /* indexes into plan.jobs */
    size_t n_layers;
    char **names;
    size_t n_names;
    char *ref_tags; /* the ref.name annotations the image is listed with, NUL-separated */
    size_t ref_tags_len;
};

struct plan {
    struct layer_job *jobs;
    size_t n_jobs;
    struct plan_image *images;
    size_t n_images;
    struct import_limits *limits; /* shared by every layer of the import */
};

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->n_jobs; i++) {
        free(p->jobs[i].member);
        free(p->jobs[i].what);
        buf_free(&p->jobs[i].res.table);
    }
    free(p->jobs);
    for (size_t i = 0; i < p->n_images; i++) {
        struct plan_image *im = &p->images[i];
        free(im->config);
        free(im->layers);
        for (size_t j = 0; j < im->n_names; j++)
            free(im->names[j]);
        free(im->names);
        free(im->ref_tags);
    }
    free(p->images);
}

static void image_add_ref_tag(struct plan_image *im, const char *tag)
{
    size_t n = strlen(tag) + 1;
    im->ref_tags = xrealloc(im->ref_tags, im->ref_tags_len + n);
    memcpy(im->ref_tags + im->ref_tags_len, tag, n);
    im->ref_tags_len += n;
}

static bool image_has_ref_tag(const struct plan_image *im, const char *tag)
{
    for (size_t off = 0; off < im->ref_tags_len; off += strlen(im->ref_tags + off) + 1)
        if (!strcmp(im->ref_tags + off, tag))
            return true;
    return false;
}

static void plan_image_free(struct plan_image *im)
{
    for (size_t j = 0; j < im->n_names; j++)
        free(im->names[j]);
    free(im->names);
    free(im->config);
    free(im->layers);
    free(im->ref_tags);
}

/* A layout listing several images and a name given for one: keep the image whose ref.name is
 * the name's tag (or the whole name), as `umoci unpack --image DIR:TAG` would pick it. */
static int plan_select(struct plan *p, const char *name, const char *path, struct imgfs_err *err)
{
    cleanup_free char *full = store_name_normalize(name);
    cleanup_free char *repo = NULL;
    const char *tag;
    bool is_digest;
    if (!ref_split_name(full, &repo, &tag, &is_digest) || is_digest)
        tag = "latest";
    size_t pick = SIZE_MAX, matches = 0;
    for (size_t i = 0; i < p->n_images; i++)
        if (image_has_ref_tag(&p->images[i], tag) || image_has_ref_tag(&p->images[i], name) ||
            image_has_ref_tag(&p->images[i], full)) {
            pick = i;
            matches++;
        }
    if (matches != 1)
        return err_set(err, EINVAL,
                       "`%s` holds %zu images and %s of them is listed as `%s`: a name given "
                       "for one must have the tag of exactly one of them",
                       path, p->n_images, matches ? "more than one" : "none", tag);
    for (size_t i = 0; i < p->n_images; i++)
        if (i != pick)
            plan_image_free(&p->images[i]);
    p->images[0] = p->images[pick];
    p->n_images = 1;
    return 0;
}

static int plan_add_job(struct plan *p, const char *member, const struct digest *expect,
                        const struct digest *alt, int64_t size, const char *path, size_t *idx,
                        struct imgfs_err *err)
{
    for (size_t i = 0; i < p->n_jobs; i++) {
        struct layer_job *j = &p->jobs[i];
        if (strcmp(j->member, member))
            continue;
        if ((expect && j->have_expect && !digest_equal(expect, &j->expect)) ||
            (alt && j->have_alt && !digest_equal(alt, &j->alt)))
            return err_set(err, EINVAL, "`%s` in `%s` is listed with two different digests", member,
                           path);
        *idx = i;
        return 0;
    }
    p->jobs = xrealloc(p->jobs, (p->n_jobs + 1) * sizeof *p->jobs);
    struct layer_job *j = &p->jobs[p->n_jobs];
    *j = (struct layer_job){.member = xstrdup(member), .size = size};
    if (expect) {
        j->expect = *expect;
        j->have_expect = true;
    }
    if (alt) {
        j->alt = *alt;
        j->have_alt = true;
    }
    *idx = p->n_jobs++;
    return 0;
}

/* A name an archive gives an image (RepoTags, containerd's name, a full ref.name) is held to the
 * rules `tag` and `import -t` apply: a reference with a repository and no digest-only form. A bad
 * one refuses the whole archive before anything is stored (Docker's `load` fails on it too). */
static int archive_name_check(const char *name, const char *what, struct imgfs_err *err)
{
    struct ref r;
    struct imgfs_err why = {0};
    if (!strncmp(name, "sha256:", 7))
        return err_set(err, EINVAL, "%s: image name `%s` is a digest, not a name", what, name);
    if (ref_parse(name, &r, &why) < 0)
        return err_set(err, EINVAL, "%s: bad image name: %s", what, why.msg);
    bool digest_only = r.has_digest && !r.tag;
    ref_free(&r);
    if (digest_only)
        return err_set(err, EINVAL, "%s: image name `%s` has a digest and no tag", what, name);
    return 0;
}

static void image_add_name(struct plan_image *im, const char *name)
{
    char *n = store_name_normalize(name);
    for (size_t i = 0; i < im->n_names; i++)
        if (!strcmp(im->names[i], n)) {
            free(n);
            return;
        }
    im->names = xrealloc(im->names, (im->n_names + 1) * sizeof *im->names);
    im->names[im->n_names++] = n;
}

/* Add an image to the plan, or merge its names into the same image found earlier. The plan takes
 * the image's allocations. */
static void plan_add_image(struct plan *p, struct plan_image *im)
{
    for (size_t i = 0; i < p->n_images; i++) {
        struct plan_image *o = &p->images[i];
        if (!digest_equal(&o->source_manifest, &im->source_manifest))
            continue;
        for (size_t k = 0; k < im->n_names; k++)
            image_add_name(o, im->names[k]);
        for (size_t off = 0; off < im->ref_tags_len; off += strlen(im->ref_tags + off) + 1)
            image_add_ref_tag(o, im->ref_tags + off);
        plan_image_free(im);
        return;
    }
    p->images = xrealloc(p->images, (p->n_images + 1) * sizeof *p->images);
    p->images[p->n_images++] = *im;
}

/* ---- OCI layouts ---- */

static int blob_member_name(const char *digest, const char *path, char **out, struct imgfs_err *err)
{
    struct digest d;
    if (strncmp(digest, "sha256:", 7))
        return err_set(err, ENOTSUP, "blob `%s` in `%s`: unsupported digest algorithm", digest,
                       path);
    if (digest_parse(digest, false, &d) < 0 || !is_hex64(digest + 7, strlen(digest + 7)))
        return err_set(err, EINVAL, "blob `%s` in `%s`: malformed digest", digest, path);
    *out = xasprintf("blobs/sha256/%s", digest + 7);
    return 0;
}

struct descriptor {
    const char *media_type; /* NULL when absent */
    const char *digest_str;
    struct digest digest;
    int64_t size; /* -1 when absent */
    json_t *json;
};

static int descriptor_parse(json_t *j, const char *what, const char *path, struct descriptor *d,
                            struct imgfs_err *err)
{
    if (!json_is_object(j))
        return err_set(err, EINVAL, "%s in `%s`: a descriptor is not a JSON object", what, path);
    json_t *mt = json_object_get(j, "mediaType"), *dg = json_object_get(j, "digest"),
           *sz = json_object_get(j, "size");
    if (!json_is_string(dg))
        return err_set(err, EINVAL, "%s in `%s`: descriptor without a digest", what, path);
    if (mt && !json_is_string(mt))
        return err_set(err, EINVAL, "%s in `%s`: mediaType is not a string", what, path);
    if (sz && (!json_is_integer(sz) || json_integer_value(sz) < 0))
        return err_set(err, EINVAL, "%s in `%s`: size is not a non-negative integer", what, path);
    d->media_type = mt ? json_string_value(mt) : NULL;
    d->digest_str = json_string_value(dg);
    d->size = sz ? (int64_t)json_integer_value(sz) : -1;
    d->json = j;
    if (strncmp(d->digest_str, "sha256:", 7))
        return err_set(err, ENOTSUP, "%s in `%s`: unsupported digest `%s`", what, path,
                       d->digest_str);
    if (digest_parse(d->digest_str, false, &d->digest) < 0)
        return err_set(err, EINVAL, "%s in `%s`: malformed digest `%s`", what, path, d->digest_str);
    return 0;
}

/* Read a document blob and check it against its descriptor. */
static int blob_read_verified(struct source *s, const struct descriptor *d, struct buf *out,
                              struct imgfs_err *err)
{
    cleanup_free char *member = NULL;
    if (blob_member_name(d->digest_str, s->path, &member, err) < 0)
        return -1;
    if (source_read(s, member, JSON_LIMIT, out, err) < 0)
        return err_ctx(err, "blob %s", d->digest_str);
    struct digest got;
    digest_of(out->data, out->len, &got);
    if (!digest_equal(&got, &d->digest)) {
        char gs[DIGEST_STR_SIZE];
        digest_str(&got, gs);
        return err_set(err, EINVAL, "blob %s in `%s`: digest mismatch (its content is %s)",
                       d->digest_str, s->path, gs);
    }
    if (d->size >= 0 && (uint64_t)d->size != out->len)
        return err_set(err, EINVAL, "blob %s in `%s`: size %zu, but its descriptor says %lld",
                       d->digest_str, s->path, out->len, (long long)d->size);
    return 0;
}

/* Build attestations (buildx, docker >= 24) sit in indexes beside the image they describe. */
static bool is_attestation(json_t *desc)
{
    json_t *t = json_object_get(json_object_get(desc, "annotations"), "vnd.docker.reference.type");
    return json_is_string(t) && !strcmp(json_string_value(t), "attestation-manifest");
}

static bool platform_is(json_t *desc, const char *os, const char *arch)
{
    json_t *pl = json_object_get(desc, "platform");
    return json_is_object(pl) && json_is_string(json_object_get(pl, "os")) &&
           json_is_string(json_object_get(pl, "architecture")) &&
           !strcmp(json_string_value(json_object_get(pl, "os")), os) &&
           !strcmp(json_string_value(json_object_get(pl, "architecture")), arch);
}

/* From an index's manifests, the one to run here: linux/amd64, or the only one. */
static int index_pick(json_t *manifests, const char *what, const char *path, json_t **out,
                      struct imgfs_err *err)
{
    size_t n = 0, i;
    json_t *m, *only = NULL;
    json_array_foreach(manifests, i, m)
    {
        if (is_attestation(m))
            continue;
        if (platform_is(m, "linux", "amd64")) {
            *out = m;
            return 0;
        }
        only = m;
        n++;
    }
    if (n == 0)
        return err_set(err, EINVAL, "%s in `%s` lists no image manifests", what, path);
    if (n == 1) {
        *out = only;
        return 0;
    }
    return err_set(err, ENOENT, "%s in `%s` has no linux/amd64 image among its %zu manifests", what,
                   path, n);
}

static int oci_resolve(struct source *s, struct plan *p, const struct descriptor *d, int depth,
                       struct plan_image *im, struct imgfs_err *err);

static int oci_manifest(struct source *s, struct plan *p, const struct descriptor *d, json_t *doc,
                        struct plan_image *im, struct imgfs_err *err)
{
    const char *path = s->path;
    json_t *sv = json_object_get(doc, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2)
        return err_set(err, EINVAL, "manifest %s in `%s`: schemaVersion is not 2", d->digest_str,
                       path);
    struct descriptor cd;
    char what[128];
    snprintf(what, sizeof what, "config of manifest %.19s", d->digest_str);
    if (descriptor_parse(json_object_get(doc, "config"), what, path, &cd, err) < 0)
        return -1;
    if (!cd.media_type ||
        (strcmp(cd.media_type, MT_OCI_CONFIG) && strcmp(cd.media_type, MT_DOCKER_CONFIG)))
        return err_set(err, EINVAL,
                       "manifest %s in `%s`: config media type `%s` is not a container image's",
                       d->digest_str, path, cd.media_type ? cd.media_type : "(none)");
    cleanup_buf struct buf config = {0};
    if (blob_read_verified(s, &cd, &config, err) < 0)
        return -1;
    {
        cleanup_json json_t *cj = json_parse(&config, "image config", err);
        if (!cj)
            return err_ctx(err, "blob %s in `%s`", cd.digest_str, path);
    }
    json_t *layers = json_object_get(doc, "layers");
    if (!json_is_array(layers))
        return err_set(err, EINVAL, "manifest %s in `%s`: no layers array", d->digest_str, path);
    im->source_manifest = d->digest;
    im->n_layers = json_array_size(layers);
    im->layers = xcalloc(im->n_layers ? im->n_layers : 1, sizeof *im->layers);
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        struct descriptor ld;
        snprintf(what, sizeof what, "layer %zu of manifest %.19s", i + 1, d->digest_str);
        if (descriptor_parse(l, what, path, &ld, err) < 0)
            return -1;
        if (!ld.media_type || !str_in(ld.media_type, layer_media_types))
            return err_set(err, EINVAL, "%s in `%s`: unknown layer media type `%s`", what, path,
                           ld.media_type ? ld.media_type : "(none)");
        cleanup_free char *member = NULL;
        if (blob_member_name(ld.digest_str, path, &member, err) < 0)
            return -1;
        if (plan_add_job(p, member, &ld.digest, NULL, ld.size, path, &im->layers[i], err) < 0)
            return -1;
        struct layer_job *j = &p->jobs[im->layers[i]];
        if (!j->what)
            j->what = xasprintf("layer %zu (%s) of `%s`", i + 1, ld.digest_str, path);
    }
    im->config_len = config.len;
    im->config = (char *)get_and_reset(&config.data);
    return 0;
}

static int oci_resolve(struct source *s, struct plan *p, const struct descriptor *d, int depth,
                       struct plan_image *im, struct imgfs_err *err)
{
    if (depth > NESTING_LIMIT)
        return err_set(err, ELOOP, "`%s`: indexes nested too deep", s->path);
    cleanup_buf struct buf raw = {0};
    if (blob_read_verified(s, d, &raw, err) < 0)
        return -1;
    char what[128];
    snprintf(what, sizeof what, "manifest %s in `%s`", d->digest_str, s->path);
    cleanup_json json_t *doc = json_parse(&raw, what, err);
    if (!doc)
        return -1;
    if (!json_is_object(doc))
        return err_set(err, EINVAL, "%s: not a JSON object", what);
    const char *mt = d->media_type;
    json_t *own = json_object_get(doc, "mediaType");
    if (!mt && json_is_string(own))
        mt = json_string_value(own);
    if (!mt) /* the media type is optional in old manifests: go by their content */
        mt = json_object_get(doc, "manifests") ? MT_OCI_INDEX
             : json_object_get(doc, "layers")  ? MT_OCI_MANIFEST
                                               : "(none)";
    if (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST)) {
        json_t *pick;
        if (index_pick(json_object_get(doc, "manifests"), what, s->path, &pick, err) < 0)
            return -1;
        struct descriptor nd;
        if (descriptor_parse(pick, what, s->path, &nd, err) < 0)
            return -1;
        return oci_resolve(s, p, &nd, depth + 1, im, err);
    }
    if (!strcmp(mt, MT_OCI_MANIFEST) || !strcmp(mt, MT_DOCKER_MANIFEST))
        return oci_manifest(s, p, d, doc, im, err);
    return err_set(err, EINVAL, "%s: unknown media type `%s`", what, mt);
}

/* A name from an index entry's annotations: containerd's full name, or a ref.name that is a full
 * reference. A bare tag ("latest") names no repository, so it names nothing (as in containerd). */
static const char *descriptor_image_name(json_t *desc)
{
    json_t *an = json_object_get(desc, "annotations");
    if (!json_is_object(an))
        return NULL;
    json_t *full = json_object_get(an, ANNOT_CTRD_NAME);
    if (json_is_string(full) && *json_string_value(full))
        return json_string_value(full);
    json_t *ref = json_object_get(an, ANNOT_REF_NAME);
    if (json_is_string(ref) && strpbrk(json_string_value(ref), ":/"))
        return json_string_value(ref);
    return NULL;
}

static int oci_plan(struct source *s, struct plan *p, struct imgfs_err *err)
{
    cleanup_buf struct buf layout = {0}, index = {0};
    if (source_read(s, "oci-layout", JSON_LIMIT, &layout, err) < 0)
        return -1;
    char what[1024];
    snprintf(what, sizeof what, "`oci-layout` in `%s`", s->path);
    cleanup_json json_t *lj = json_parse(&layout, what, err);
    if (!lj)
        return -1;
    if (!json_is_string(json_object_get(lj, "imageLayoutVersion")))
        return err_set(err, EINVAL, "%s: no imageLayoutVersion", what);
    if (source_read(s, "index.json", JSON_LIMIT, &index, err) < 0)
        return -1;
    snprintf(what, sizeof what, "`index.json` in `%s`", s->path);
    cleanup_json json_t *ij = json_parse(&index, what, err);
    if (!ij)
        return -1;
    json_t *manifests = json_object_get(ij, "manifests");
    if (!json_is_array(manifests))
        return err_set(err, EINVAL, "%s: no manifests array", what);
    if (json_array_size(manifests) == 0)
        return err_set(err, ENOENT, "%s lists no images", what);

    /* An index.json that lists one image for several platforms (and names none of them) is a
     * platform index, not a list of images. */
    size_t i;
    json_t *m;
    bool platform_index = json_array_size(manifests) > 1;
    json_array_foreach(manifests, i, m)
    {
        if (!json_is_object(json_object_get(m, "platform")) || descriptor_image_name(m))
            platform_index = false;
    }
    if (platform_index) {
        json_t *pick;
        if (index_pick(manifests, what, s->path, &pick, err) < 0)
            return -1;
        struct descriptor d;
        if (descriptor_parse(pick, what, s->path, &d, err) < 0)
            return -1;
        struct plan_image im = {0};
        if (oci_resolve(s, p, &d, 0, &im, err) < 0) {
            free(im.config);
            free(im.layers);
            return -1;
        }
        plan_add_image(p, &im);
        return 0;
    }
    json_array_foreach(manifests, i, m)
    {
        if (is_attestation(m))
            continue;
        struct descriptor d;
        if (descriptor_parse(m, what, s->path, &d, err) < 0)
            return -1;
        struct plan_image im = {0};
        if (oci_resolve(s, p, &d, 0, &im, err) < 0) {
            free(im.config);
            free(im.layers);
            return -1;
        }
        const char *name = descriptor_image_name(m);
        if (name && archive_name_check(name, what, err) < 0) {
            plan_image_free(&im);
            return -1;
        }
        if (name)
            image_add_name(&im, name);
        json_t *ref = json_object_get(json_object_get(m, "annotations"), ANNOT_REF_NAME);
        if (json_is_string(ref))
            image_add_ref_tag(&im, json_string_value(ref));
        plan_add_image(p, &im);
    }
    return 0;
}

/* ---- docker save ---- */

/* The digest a docker-save member name carries: "blobs/sha256/<hex>", "<hex>.json", "<hex>.tar". */
static bool docker_name_digest(const char *name, struct digest *out)
{
    if (!strncmp(name, "blobs/sha256/", 13) && is_hex64(name + 13, strlen(name + 13)))
        return digest_parse(name + 13, true, out) == 0;
    if (!strncmp(name, "sha256:", 7) && is_hex64(name + 7, strlen(name + 7)))
        return digest_parse(name + 7, true, out) == 0; /* go-containerregistry's config */
    size_t n = strlen(name);
    if (((n == DIGEST_HEX_LEN + 5 && (!strcmp(name + 64, ".json") || !strcmp(name + 64, ".tar"))) ||
         (n == DIGEST_HEX_LEN + 7 && !strcmp(name + 64, ".tar.gz"))) &&
        is_hex64(name, DIGEST_HEX_LEN)) {
        char hex[DIGEST_HEX_LEN + 1];
        memcpy(hex, name, DIGEST_HEX_LEN);
        hex[DIGEST_HEX_LEN] = 0;
        return digest_parse(hex, true, out) == 0;
    }
    return false;
}

static int docker_plan(struct source *s, struct plan *p, struct imgfs_err *err)
{
    const char *path = s->path;
    cleanup_buf struct buf mb = {0};
    if (source_read(s, "manifest.json", JSON_LIMIT, &mb, err) < 0)
        return -1;
    char what[1024];
    snprintf(what, sizeof what, "`manifest.json` in `%s`", path);
    cleanup_json json_t *mj = json_parse(&mb, what, err);
    if (!mj)
        return -1;
    if (!json_is_array(mj))
        return err_set(err, EINVAL, "%s: not a JSON array", what);
    if (json_array_size(mj) == 0)
        return err_set(err, ENOENT, "%s lists no images", what);
    size_t i;
    json_t *e;
    json_array_foreach(mj, i, e)
    {
        json_t *cfg = json_object_get(e, "Config"), *layers = json_object_get(e, "Layers"),
               *tags = json_object_get(e, "RepoTags");
        if (!json_is_string(cfg) || !json_is_array(layers))
            return err_set(err, EINVAL, "%s: entry %zu has no Config or Layers", what, i + 1);
        cleanup_free char *cfg_name = member_name_normalize(json_string_value(cfg));
        if (!cfg_name)
            return err_set(err, EINVAL, "%s: bad config name `%s`", what, json_string_value(cfg));
        struct plan_image im = {0};
        cleanup_buf struct buf config = {0};
        if (source_read(s, cfg_name, JSON_LIMIT, &config, err) < 0)
            return err_ctx(err, "config of image %zu", i + 1);
        struct digest want, got;
        digest_of(config.data, config.len, &got);
        if (docker_name_digest(cfg_name, &want) && !digest_equal(&want, &got)) {
            char gs[DIGEST_STR_SIZE];
            digest_str(&got, gs);
            return err_set(err, EINVAL, "config `%s` in `%s`: digest mismatch (its content is %s)",
                           cfg_name, path, gs);
        }
        char cwhat[1024];
        snprintf(cwhat, sizeof cwhat, "config `%s` in `%s`", cfg_name, path);
        cleanup_json json_t *cj = json_parse(&config, cwhat, err);
        if (!cj)
            return -1;
        json_t *diff_ids = json_object_get(json_object_get(cj, "rootfs"), "diff_ids");
        if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers))
            return err_set(err, EINVAL, "%s: rootfs.diff_ids does not list its %zu layers", cwhat,
                           json_array_size(layers));
        /* docker-save has no manifest of its own: its config stands for the image */
        im.source_manifest = got;
        im.n_layers = json_array_size(layers);
        im.layers = xcalloc(im.n_layers ? im.n_layers : 1, sizeof *im.layers);
        size_t k;
        json_t *l;
        json_array_foreach(layers, k, l)
        {
            const char *ds = json_string_value(json_array_get(diff_ids, k));
            struct digest diff_id, named;
            cleanup_free char *member =
                json_is_string(l) ? member_name_normalize(json_string_value(l)) : NULL;
            if (!member || !*member) {
                free(im.layers);
                return err_set(err, EINVAL, "%s: layer %zu of image %zu has a bad name", what,
                               k + 1, i + 1);
            }
            if (!ds || digest_parse(ds, false, &diff_id) < 0) {
                free(im.layers);
                return err_set(err, EINVAL, "%s: diff_id %zu is malformed", cwhat, k + 1);
            }
            bool have_named = docker_name_digest(member, &named);
            if (plan_add_job(p, member, have_named ? &named : NULL, &diff_id, -1, path,
                             &im.layers[k], err) < 0) {
                free(im.layers);
                return -1;
            }
            struct layer_job *j = &p->jobs[im.layers[k]];
            if (!j->what)
                j->what = xasprintf("layer %zu (`%s`) of `%s`", k + 1, member, path);
        }
        if (json_is_array(tags)) {
            size_t t;
            json_t *tag;
            json_array_foreach(tags, t, tag)
            {
                if (!json_is_string(tag) || !*json_string_value(tag))
                    continue;
                if (archive_name_check(json_string_value(tag), what, err) < 0) {
                    plan_image_free(&im);
                    return -1;
                }
                image_add_name(&im, json_string_value(tag));
            }
        }
        im.config_len = config.len;
        im.config = (char *)get_and_reset(&config.data);
        plan_add_image(p, &im);
    }
    return 0;
}

/* ---- streaming layer blobs ---- */

struct blob_in {
    struct archive *outer; /* a tar source positioned at the member's data */
    int fd;                /* a layout directory's blob file */
    const uint8_t *mem;    /* a member kept in memory */
    size_t mem_len, mem_pos;
    struct digest_ctx *dc;
    uint64_t bytes;
    bool padded;
    char errmsg[512];
    uint8_t buf[1 << 16];
};

static la_ssize_t blob_pull(struct blob_in *in, const void **out)
{
    la_ssize_t n;
    if (in->mem) {
        n = (la_ssize_t)(in->mem_len - in->mem_pos);
        if (n > (1 << 20))
            n = 1 << 20;
        *out = in->mem + in->mem_pos;
        in->mem_pos += (size_t)n;
    } else if (in->outer) {
        n = archive_read_data(in->outer, in->buf, sizeof in->buf);
        if (n < 0) {
            snprintf(in->errmsg, sizeof in->errmsg, "%s", archive_error_string(in->outer));
            return -1;
        }
        *out = in->buf;
    } else {
        do
            n = read(in->fd, in->buf, sizeof in->buf);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            snprintf(in->errmsg, sizeof in->errmsg, "%s", strerror(errno));
            return -1;
        }
        *out = in->buf;
    }
    digest_ctx_update(in->dc, *out, (size_t)n);
    in->bytes += (uint64_t)n;
    return n;
}

static la_ssize_t blob_read_cb(struct archive *a, void *ctx, const void **out)
{
    struct blob_in *in = ctx;
    la_ssize_t n = blob_pull(in, out);
    if (n < 0)
        archive_set_error(a, EIO, "reading the blob: %s", in->errmsg);
    if (n == 0 && in->bytes == 0 && !in->padded) {
        /* an empty blob is an empty layer (some tools write them): show the tar reader the
         * end-of-archive blocks an empty tar has; the digest stays that of the empty blob */
        static const uint8_t end_of_archive[1024];
        in->padded = true;
        *out = end_of_archive;
        n = sizeof end_of_archive;
    }
    return n;
}

/* Stream one blob through import_layer, then check every byte of it against its digest. */
static int job_run(struct layer_job *j, struct blob_in *in, const char *path, struct store_batch *b,
                   struct import_limits *limits, struct imgfs_err *err)
{
    in->dc = digest_ctx_new();
    struct archive *nested = import_tar_reader_new();
    int ret = -1;
    if (archive_read_open(nested, in, NULL, blob_read_cb, NULL) != ARCHIVE_OK) {
        err_set(err, EINVAL, "%s: %s", j->what, archive_error_string(nested));
        goto out;
    }
    if (import_layer_limited(b, nested, j->what, limits, &j->res, err) < 0)
        goto out;
    /* what the tar reader left unread (end-of-archive padding, compressed trailers) is part of
     * the blob all the same */
    const void *p;
    la_ssize_t n;
    while ((n = blob_pull(in, &p)) > 0)
        ;
    if (n < 0) {
        err_set(err, EIO, "%s: %s", j->what, in->errmsg);
        goto out;
    }
    struct digest got;
    digest_ctx_final(in->dc, &got);
    bool ok = (j->have_expect && digest_equal(&got, &j->expect)) ||
              (j->have_alt && digest_equal(&got, &j->alt));
    if (!ok) {
        char gs[DIGEST_STR_SIZE], ws[DIGEST_STR_SIZE];
        digest_str(&got, gs);
        digest_str(j->have_expect ? &j->expect : &j->alt, ws);
        if (j->have_expect || !j->have_alt)
            err_set(err, EINVAL,
                    "blob `%s` in `%s`: digest mismatch: expected %s, its content is %s", j->member,
                    path, ws, gs);
        else
            err_set(err, EINVAL,
                    "layer `%s` in `%s`: digest mismatch: the config's diff_id is %s, its content "
                    "is %s (a docker-save layer must be the uncompressed tar its diff_id names)",
                    j->member, path, ws, gs);
        goto out;
    }
    if (j->size >= 0 && (uint64_t)j->size != in->bytes) {
        err_set(err, EINVAL, "blob `%s` in `%s`: %llu bytes, but its descriptor says %lld",
                j->member, path, (unsigned long long)in->bytes, (long long)j->size);
        goto out;
    }
    j->done = true;
    ret = 0;
out:
    archive_read_free(nested);
    digest_ctx_free(in->dc);
    in->dc = NULL;
    return ret;
}

static int run_jobs(struct source *s, struct plan *p, struct store_batch *b, struct imgfs_err *err)
{
    cleanup_free struct blob_in *in = xmalloc(sizeof *in);
    size_t pending = 0;
    for (size_t i = 0; i < p->n_jobs; i++) {
        struct layer_job *j = &p->jobs[i];
        if (!j->needed)
            continue;
        *in = (struct blob_in){.fd = -1};
        cleanup_close int fd = -1;
        if (s->kind == OCI_SOURCE_OCI_DIR) {
            fd = open_regular(s->dirfd, j->member, O_NOFOLLOW, NULL, err);
            if (fd < 0)
                return err_ctx(err, "%s: blob `%s` in `%s`", j->what, j->member, s->path);
            in->fd = fd;
        } else {
            struct member *m = source_find(s, j->member);
            if (!m)
                return err_set(err, ENOENT, "%s: `%s` is missing from `%s`", j->what, j->member,
                               s->path);
            if (!m->data) {
                pending++;
                continue;
            }
            in->mem = m->data;
            in->mem_len = m->size;
        }
        if (job_run(j, in, s->path, b, p->limits, err) < 0)
            return -1;
    }
    if (!pending)
        return 0;

    /* the big layers, in the order the archive has them */
    struct archive *a = tar_open(s->path, err);
    if (!a)
        return -1;
    int ret = -1;
    struct archive_entry *ae;
    int r;
    while (pending && (r = archive_read_next_header(a, &ae)) >= ARCHIVE_WARN) {
        if (archive_entry_filetype(ae) != AE_IFREG || archive_entry_hardlink(ae))
            continue;
        cleanup_free char *name = member_name_normalize(archive_entry_pathname(ae) ?: "");
        if (!name)
            continue;
        /* only the member source_find chose: the last of that name */
        struct member *m = source_find(s, name);
        if (!m || m->data || m->size != (uint64_t)archive_entry_size(ae))
            continue;
        for (size_t i = 0; i < p->n_jobs; i++) {
            struct layer_job *j = &p->jobs[i];
            if (!j->needed || j->done || source_find(s, j->member) != m)
                continue;
            *in = (struct blob_in){.fd = -1, .outer = a};
            if (job_run(j, in, s->path, b, p->limits, err) < 0)
                goto out;
            pending--;
            break;
        }
    }
    if (pending) {
        for (size_t i = 0; i < p->n_jobs; i++)
            if (p->jobs[i].needed && !p->jobs[i].done) {
                err_set(err, EIO, "%s: `%s` not found on reading `%s` again", p->jobs[i].what,
                        p->jobs[i].member, s->path);
                goto out;
            }
    }
    ret = 0;
out:
    archive_read_free(a);
    return ret;
}

int oci_import(struct store_batch *b, const char *path, enum oci_source_kind kind, const char *name,
               struct import_limits *limits, struct digest *first, struct import_images *images,
               struct imgfs_err *err)
{
    if (kind == OCI_SOURCE_ROOTFS)
        return err_set(err, EINVAL, "`%s` is a rootfs, not an OCI layout or docker-save archive",
                       path);
    struct source s;
    struct plan p = {.limits = limits};
    int ret = -1;
    if (source_open(&s, path, kind, err) < 0)
        goto out;
    if ((kind == OCI_SOURCE_DOCKER_TAR ? docker_plan(&s, &p, err) : oci_plan(&s, &p, err)) < 0)
        goto out;
    if (p.n_images == 0) {
        err_set(err, ENOENT, "`%s` holds no image", path);
        goto out;
    }
    if (name) {
        if (p.n_images > 1 && plan_select(&p, name, path, err) < 0)
            goto out;
        for (size_t k = 0; k < p.images[0].n_names; k++)
            free(p.images[0].names[k]);
        p.images[0].n_names = 0;
        image_add_name(&p.images[0], name);
    }
    for (size_t i = 0; i < p.n_images; i++)
        for (size_t k = 0; k < p.images[i].n_layers; k++)
            p.jobs[p.images[i].layers[k]].needed = true;
    if (run_jobs(&s, &p, b, err) < 0)
        goto out;
    for (size_t i = 0; i < p.n_images; i++) {
        struct plan_image *im = &p.images[i];
        cleanup_free struct image_layer *layers =
            xcalloc(im->n_layers ? im->n_layers : 1, sizeof *layers);
        for (size_t k = 0; k < im->n_layers; k++) {
            struct layer_job *j = &p.jobs[im->layers[k]];
            layers[k] = (struct image_layer){.diff_id = j->res.diff_id,
                                             .size = j->res.size,
                                             .table = j->res.table.data,
                                             .table_len = j->res.table.len};
        }
        struct digest d;
        if (image_commit(b, im->config, im->config_len, layers, im->n_layers,
                         im->n_names ? im->names[0] : NULL, &d, err) < 0) {
            err_ctx(err, "image %zu of `%s`", i + 1, path);
            goto out;
        }
        for (size_t k = 1; k < im->n_names; k++)
            store_batch_tag(b, im->names[k], &d);
        if (i == 0 && first)
            *first = d;
        if (images) {
            images->v = xrealloc(images->v, (images->n + 1) * sizeof *images->v);
            struct import_image *li = &images->v[images->n++];
            li->manifest = d;
            digest_of(im->config, im->config_len, &li->config);
            li->n_names = im->n_names;
            li->names = xcalloc(im->n_names + 1, sizeof *li->names);
            for (size_t k = 0; k < im->n_names; k++)
                li->names[k] = xstrdup(im->names[k]);
        }
    }
    ret = 0;
out:
    plan_free(&p);
    source_free(&s);
    return ret;
}

/* ---- detection ---- */

/* Which archives a member name belongs in: an OCI layout (1), docker save (2), both, or none. */
static int member_kind(const char *n)
{
    enum { OCI = 1, DOCKER = 2 };
    if (!*n || !strcmp(n, "blobs") || !strncmp(n, "blobs/", 6))
        return OCI | DOCKER;
    if (!strcmp(n, "oci-layout") || !strcmp(n, "index.json"))
        return OCI;
    if (!strcmp(n, "manifest.json") || !strcmp(n, "repositories"))
        return DOCKER;
    /* go-containerregistry's tarball (crane, ko, kaniko --tar-path): the config is a member named
     * by its digest, "sha256:<hex>" */
    if (!strncmp(n, "sha256:", 7) && strlen(n + 7) == DIGEST_HEX_LEN &&
        is_hex64(n + 7, DIGEST_HEX_LEN))
        return DOCKER;
    /* docker save names layers <hex>/layer.tar and configs <hex>.json, go-containerregistry
     * <hex>.tar.gz; other writers use other names (manifest.json lists them), so any single path
     * component will do: NAME.json, NAME.tar, NAME.tar.gz, NAME/layer.tar, NAME/json, NAME/VERSION
     */
    const char *slash = strchr(n, '/');
    if (slash) {
        const char *rest = slash + 1;
        return !strcmp(rest, "layer.tar") || !strcmp(rest, "json") || !strcmp(rest, "VERSION")
                   ? DOCKER
                   : 0;
    }
    size_t len = strlen(n);
    static const char *const ends[] = {".json", ".tar", ".tar.gz"};
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        size_t k = strlen(ends[i]);
        if (len > k && !strcmp(n + len - k, ends[i]))
            return DOCKER;
    }
    if (len >= DIGEST_HEX_LEN && is_hex64(n, len))
        return DOCKER; /* a layer directory of docker save */
    return 0;
}

bool oci_member_name_is_image_archive(const char *name)
{
    cleanup_free char *n = member_name_normalize(name);
    return n && member_kind(n) != 0;
}

int oci_detect(const char *path, enum oci_source_kind *kind, struct imgfs_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return err_sys(err, errno, "`%s`", path);
    if (S_ISDIR(st.st_mode)) {
        cleanup_free char *marker = xasprintf("%s/oci-layout", path);
        *kind = access(marker, F_OK) == 0 ? OCI_SOURCE_OCI_DIR : OCI_SOURCE_ROOTFS;
        return 0;
    }
    struct archive *a = tar_open(path, err);
    if (!a)
        return -1;
    bool oci = false, docker = false, other = false;
    struct archive_entry *ae;
    int r;
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        cleanup_free char *n = member_name_normalize(archive_entry_pathname(ae) ?: "");
        int k = n ? member_kind(n) : 0;
        if (!k) {
            other = true;
            break;
        }
        if (k == 1 && (!strcmp(n, "oci-layout") || !strcmp(n, "index.json")))
            oci = true;
        if (k == 2 && !strcmp(n, "manifest.json"))
            docker = true;
    }
    if (r < ARCHIVE_WARN && r != ARCHIVE_EOF) {
        err_set(err, EINVAL, "reading `%s`: %s", path, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    archive_read_free(a);
    /* docker >= 25 writes an OCI layout with a manifest.json beside it: the layout says more */
    *kind = other    ? OCI_SOURCE_ROOTFS
            : oci    ? OCI_SOURCE_OCI_TAR
            : docker ? OCI_SOURCE_DOCKER_TAR
                     : OCI_SOURCE_ROOTFS;
    return 0;
}

/* ---- export ---- */

static int out_header(struct archive *a, const char *name, mode_t type, uint64_t size,
                      struct imgfs_err *err)
{
    /* fixed owner, mode and time: the same image always makes the same archive */
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, name);
    archive_entry_set_filetype(ae, type);
    archive_entry_set_perm(ae, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(ae, type == AE_IFREG ? (la_int64_t)size : 0);
    archive_entry_set_mtime(ae, 0, 0);
    int r = archive_write_header(a, ae);
    archive_entry_free(ae);
    if (r < ARCHIVE_OK)
        return err_set(err, EIO, "writing `%s`: %s", name, archive_error_string(a));
    return 0;
}

static int out_data(struct archive *a, const char *name, const void *data, size_t len,
                    struct imgfs_err *err)
{
    const uint8_t *p = data;
    while (len) {
        la_ssize_t n = archive_write_data(a, p, len);
        if (n <= 0)
            return err_set(err, EIO, "writing `%s`: %s", name,
                           n < 0 ? archive_error_string(a) : "short write");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int out_file(struct archive *a, const char *name, const void *data, size_t len,
                    struct imgfs_err *err)
{
    if (out_header(a, name, AE_IFREG, len, err) < 0)
        return -1;
    return out_data(a, name, data, len, err);
}

static int out_json(struct archive *a, const char *name, json_t *j, struct imgfs_err *err)
{
    cleanup_free char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        return err_set(err, ENOMEM, "encoding `%s`", name);
    return out_file(a, name, s, strlen(s), err);
}

struct layer_out {
    struct archive *outer;
    struct digest_ctx *dc;
    uint64_t written, limit;
};

static la_ssize_t layer_out_cb(struct archive *nested, void *ctx, const void *data, size_t len)
{
    struct layer_out *o = ctx;
    if (o->written + len > o->limit) {
        archive_set_error(nested, EFBIG, "the layer came out bigger than its recorded size");
        return -1;
    }
    const uint8_t *p = data;
    size_t left = o->outer ? len : 0; /* no outer archive: only hashed */
    while (left) {
        la_ssize_t n = archive_write_data(o->outer, p, left);
        if (n <= 0) {
            archive_set_error(nested, EIO, "%s",
                              n < 0 ? archive_error_string(o->outer) : "short write");
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    digest_ctx_update(o->dc, data, len);
    o->written += len;
    return (la_ssize_t)len;
}

/* Regenerate a layer's canonical tar from its file table (stored under `key`) straight into a
 * member of the outer archive (`a`; NULL: only hash it), and check that it is `size` bytes and,
 * when `want` is not NULL, the blob it names. Its digest goes to *got. */
static int layer_regenerate(struct archive *a, struct store_read *r, const char *member,
                            const struct digest *key, const struct digest *want, uint64_t size,
                            struct digest *got, struct imgfs_err *err)
{
    char ds[DIGEST_STR_SIZE];
    digest_str(key, ds);
    const void *table;
    size_t table_len;
    if (store_get(r, STORE_LAYER, key, &table, &table_len, err) < 0)
        return err_ctx(err, "layer %s", ds);
    if (a && out_header(a, member, AE_IFREG, size, err) < 0)
        return -1;
    struct layer_out o = {.outer = a, .dc = digest_ctx_new(), .limit = size};
    struct archive *nested = layer_tar_writer_new(&o, layer_out_cb);
    int ret = -1;
    if (layer_tar_write(r, table, table_len, nested, err) < 0) {
        err_ctx(err, "layer %s", ds);
        goto out;
    }
    if (archive_write_close(nested) != ARCHIVE_OK) {
        err_set(err, EIO, "layer %s: %s", ds, archive_error_string(nested));
        goto out;
    }
    digest_ctx_final(o.dc, got);
    if (o.written != size || (want && !digest_equal(got, want))) {
        err_set(err, EIO, "layer %s: regenerated tar does not match (%llu of %llu bytes)", ds,
                (unsigned long long)o.written, (unsigned long long)size);
        goto out;
    }
    ret = 0;
out:
    archive_write_free(nested);
    digest_ctx_free(o.dc);
    return ret;
}

static int out_layer(struct archive *a, struct store_read *r, const char *member,
                     const struct digest *key, const struct digest *diff_id, uint64_t size,
                     struct imgfs_err *err)
{
    struct digest got;
    return layer_regenerate(a, r, member, key, diff_id, size, &got, err);
}

/* The served config's diff_ids of a pulled image (NULL when there are none to compare). */
static struct digest *source_diff_ids(struct store_read *r, const struct image *img)
{
    const void *data;
    size_t len;
    struct imgfs_err ignored;
    if (!img->has_source ||
        store_get(r, STORE_BLOB, &img->source.config, &data, &len, &ignored) < 0)
        return NULL;
    json_t *j = json_loadb(data, len, 0, NULL);
    json_t *ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
    struct digest *out = NULL;
    if (json_is_array(ids) && json_array_size(ids) == img->n_layers) {
        out = xcalloc(img->n_layers + 1, sizeof *out);
        for (size_t i = 0; i < img->n_layers; i++) {
            const char *v = json_string_value(json_array_get(ids, i));
            if (!v || digest_parse(v, false, &out[i]) < 0)
                memset(&out[i], 0, sizeof out[i]);
        }
    }
    json_decref(j);
    return out;
}

/* Which layers of `img` (no served config of its own) a pulled image of the store keeps under
 * its served diff_id (the key of a lazily pulled layer): found in that image's served config. */
struct served_keys {
    struct store_read *r;
    const struct image *img;
    struct digest *served; /* per layer of img: its key when it is one, else zero */
    bool any;
};

static int served_keys_cb(void *ctx, const struct store_image_entry *e)
{
    struct served_keys *k = ctx;
    struct image other;
    struct imgfs_err ignored;
    if (image_load(k->r, &e->manifest, &other, &ignored) < 0)
        return 0;
    struct digest *served = source_diff_ids(k->r, &other);
    for (size_t i = 0; served && i < other.n_layers; i++) {
        if (!digest_equal(&served[i], &other.layers[i]))
            continue;
        for (size_t j = 0; j < k->img->n_layers; j++)
            if (digest_equal(&k->img->layers[j], &other.layers[i])) {
                k->served[j] = other.layers[i];
                k->any = true;
            }
    }
    free(served);
    image_free(&other);
    return 0;
}

/* A lazily pulled layer is stored under the registry's diff_id: its canonical tar could not be
 * hashed before its content was there (docs/lazy.md). An archive names layers by their canonical
 * digest, so for such a layer it is computed here (one pass over the regenerated tar), and the
 * config and manifest are made again with it (image_documents) — the documents a full pull of
 * the image makes. An image made on a lazily pulled one (a build FROM it, a commit of its
 * container) has such layers too, under the keys the pulled image's served config names.
 * `keys` keeps the store keys of the tables. */
static int export_canonical(struct store_read *r, struct image *img, const struct digest *keys,
                            struct imgfs_err *err)
{
    cleanup_free struct digest *served = source_diff_ids(r, img);
    if (!served && !img->has_source) {
        struct served_keys k = {
            .r = r, .img = img, .served = xcalloc(img->n_layers + 1, sizeof *k.served)};
        store_image_foreach(r, served_keys_cb, &k);
        if (!k.any) {
            free(k.served);
            return 0;
        }
        served = k.served;
    }
    if (!served)
        return 0;
    bool changed = false;
    for (size_t i = 0; i < img->n_layers; i++) {
        if (!digest_equal(&keys[i], &served[i]))
            continue; /* keyed by its canonical digest, as every layer imgfs made itself */
        struct digest got;
        if (layer_regenerate(NULL, r, NULL, &keys[i], NULL, img->layer_sizes[i], &got, err) < 0)
            return -1;
        changed = changed || !digest_equal(&got, &img->layers[i]);
        img->layers[i] = got;
    }
    if (!changed)
        return 0;
    struct image_layer *layers = xcalloc(img->n_layers + 1, sizeof *layers);
    for (size_t i = 0; i < img->n_layers; i++)
        layers[i] = (struct image_layer){.diff_id = img->layers[i], .size = img->layer_sizes[i]};
    struct image_documents docs;
    int rc = image_documents(img->config_json, img->config_len, layers, img->n_layers,
                             img->has_source ? &img->source : NULL, &docs, err);
    free(layers);
    if (rc < 0)
        return -1;
    free(img->config_json);
    free(img->manifest_json);
    img->config_json = get_and_reset(&docs.config);
    img->config_len = docs.config_len;
    img->config_digest = docs.config_digest;
    img->manifest_json = get_and_reset(&docs.manifest);
    img->manifest_len = docs.manifest_len;
    img->digest = docs.manifest_digest;
    image_documents_free(&docs);
    return 0;
}

static bool layer_seen(const struct image *img, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (digest_equal(&img->layers[k], &img->layers[i]))
            return true;
    return false;
}

/* oci-layout, index.json (one manifest), the blobs directories and the manifest and config. */
static int write_oci_top(struct archive *a, const struct digest *manifest_digest,
                         const char *manifest, size_t manifest_len, const char *config,
                         size_t config_len, const char *name, struct imgfs_err *err)
{
    char ds[DIGEST_STR_SIZE], hex[DIGEST_HEX_LEN + 1];
    digest_str(manifest_digest, ds);
    cleanup_json json_t *layout = json_pack("{s:s}", "imageLayoutVersion", "1.0.0");
    cleanup_json json_t *desc = json_pack("{s:s, s:s, s:I}", "mediaType", MT_OCI_MANIFEST, "digest",
                                          ds, "size", (json_int_t)manifest_len);
    if (name) {
        /* ref.name carries the tag (what skopeo's oci-archive:FILE:TAG and umoci's DIR:TAG look
         * up); containerd's annotation the full name, as docker save writes them */
        cleanup_free char *repo = NULL;
        const char *tag;
        bool is_digest;
        if (!ref_split_name(name, &repo, &tag, &is_digest) || is_digest)
            tag = "latest";
        json_object_set_new(desc, "annotations",
                            json_pack("{s:s, s:s}", ANNOT_CTRD_NAME, name, ANNOT_REF_NAME, tag));
    }
    cleanup_json json_t *index = json_pack("{s:i, s:s, s:[O]}", "schemaVersion", 2, "mediaType",
                                           MT_OCI_INDEX, "manifests", desc);
    if (!layout || !desc || !index)
        return err_set(err, ENOMEM, "building index.json");
    if (out_json(a, "oci-layout", layout, err) < 0 || out_json(a, "index.json", index, err) < 0 ||
        out_header(a, "blobs", AE_IFDIR, 0, err) < 0 ||
        out_header(a, "blobs/sha256", AE_IFDIR, 0, err) < 0)
        return -1;
    char member[64 + DIGEST_HEX_LEN];
    digest_hex(manifest_digest, hex);
    snprintf(member, sizeof member, "blobs/sha256/%s", hex);
    if (out_file(a, member, manifest, manifest_len, err) < 0)
        return -1;
    struct digest cd;
    digest_of(config, config_len, &cd);
    digest_hex(&cd, hex);
    snprintf(member, sizeof member, "blobs/sha256/%s", hex);
    return out_file(a, member, config, config_len, err);
}

static int write_oci(struct archive *a, struct store_read *r, const struct image *img,
                     const struct digest *keys, const char *name, struct imgfs_err *err)
{
    char hex[DIGEST_HEX_LEN + 1], member[64 + DIGEST_HEX_LEN];
    if (write_oci_top(a, &img->digest, img->manifest_json, img->manifest_len, img->config_json,
                      img->config_len, name, err) < 0)
        return -1;
    for (size_t i = 0; i < img->n_layers; i++) {
        if (layer_seen(img, i))
            continue;
        digest_hex(&img->layers[i], hex);
        snprintf(member, sizeof member, "blobs/sha256/%s", hex);
        if (out_layer(a, r, member, &keys[i], &img->layers[i], img->layer_sizes[i], err) < 0)
            return -1;
    }
    return 0;
}

static int spool_sink(void *ctx, const void *data, size_t len, struct imgfs_err *err)
{
    if (write_full(*(int *)ctx, data, len) < 0)
        return err_sys(err, errno, "writing a temporary file");
    return 0;
}

/* An OCI layout whose layers are eStargz (estargz.h): what `imgfs push` sends, as a file. Each
 * layer is spooled to an unnamed temporary file first: the tar header needs its size. */
static int write_oci_estargz(struct archive *a, struct store_read *r, const struct image *img,
                             const struct digest *keys, const char *name, struct imgfs_err *err)
{
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    size_t n = img->n_layers;
    struct estargz_result *res = xcalloc(n ? n : 1, sizeof *res);
    int *fds = xmalloc((n ? n : 1) * sizeof *fds);
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    cleanup_free char *config = NULL, *manifest = NULL;
    size_t config_len, manifest_len;
    int ret = -1;
    for (size_t i = 0; i < n; i++) {
        char ds[DIGEST_STR_SIZE];
        digest_str(&keys[i], ds);
        const void *table;
        size_t table_len;
        if (store_get(r, STORE_LAYER, &keys[i], &table, &table_len, err) < 0) {
            err_ctx(err, "layer %s", ds);
            goto out;
        }
        fds[i] = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fds[i] < 0) {
            err_sys(err, errno, "creating a temporary file in `%s`", tmpdir);
            goto out;
        }
        if (estargz_write(r, table, table_len, NULL, spool_sink, &fds[i], &res[i], err) < 0) {
            err_ctx(err, "layer %s", ds);
            goto out;
        }
    }
    if (estargz_image_json(img, res, &config, &config_len, &manifest, &manifest_len, err) < 0)
        goto out;
    struct digest md;
    digest_of(manifest, manifest_len, &md);
    if (write_oci_top(a, &md, manifest, manifest_len, config, config_len, name, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen = seen || digest_equal(&res[k].blob, &res[i].blob);
        if (seen)
            continue;
        char hex[DIGEST_HEX_LEN + 1], member[64 + DIGEST_HEX_LEN];
        digest_hex(&res[i].blob, hex);
        snprintf(member, sizeof member, "blobs/sha256/%s", hex);
        if (out_header(a, member, AE_IFREG, res[i].blob_size, err) < 0)
            goto out;
        static uint8_t chunk[1 << 16];
        for (uint64_t off = 0; off < res[i].blob_size;) {
            ssize_t got = pread(fds[i], chunk, sizeof chunk, (off_t)off);
            if (got <= 0) {
                err_sys(err, got < 0 ? errno : EIO, "reading back layer %s", hex);
                goto out;
            }
            if (out_data(a, member, chunk, (size_t)got, err) < 0)
                goto out;
            off += (uint64_t)got;
        }
    }
    ret = 0;
out:
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(res);
    return ret;
}

/* One image of an export: its records, the store keys of its layer tables, and the names the
 * references given for it are (none when it was given by digest). */
struct export_item {
    struct image img;
    struct digest stored; /* the manifest digest in the store (export_canonical may change img's) */
    struct digest *keys;
    char **names;
    size_t n_names;
};

/* Has an earlier image of the archive, or an earlier layer of this one, the layer already? */
static bool layer_written(const struct export_item *items, size_t item, size_t i)
{
    for (size_t k = 0; k < item; k++)
        for (size_t l = 0; l < items[k].img.n_layers; l++)
            if (digest_equal(&items[k].img.layers[l], &items[item].img.layers[i]))
                return true;
    return layer_seen(&items[item].img, i);
}

/* docker save's layout for every image: manifest.json (one entry per image, its names as
 * RepoTags), the configs as HEX.json, each distinct layer once as HEX/layer.tar, and the legacy
 * `repositories` file (repository -> tag -> top layer) older `docker load` reads. */
static int write_docker(struct archive *a, struct store_read *r, const struct export_item *items,
                        size_t n, struct imgfs_err *err)
{
    char hex[DIGEST_HEX_LEN + 1], member[DIGEST_HEX_LEN + 16];
    cleanup_json json_t *manifest = json_array();
    cleanup_json json_t *repos = json_object();
    for (size_t m = 0; m < n; m++) {
        const struct image *img = &items[m].img;
        digest_hex(&img->config_digest, hex);
        json_t *layers = json_array(), *tags = items[m].n_names ? json_array() : json_null();
        for (size_t i = 0; i < img->n_layers; i++) {
            digest_hex(&img->layers[i], hex);
            snprintf(member, sizeof member, "%s/layer.tar", hex);
            json_array_append_new(layers, json_string(member));
        }
        for (size_t k = 0; k < items[m].n_names; k++)
            json_array_append_new(tags, json_string(items[m].names[k]));
        digest_hex(&img->config_digest, hex);
        json_t *entry = json_pack("{s:s+, s:o, s:o}", "Config", hex, ".json", "RepoTags", tags,
                                  "Layers", layers);
        if (!entry || json_array_append_new(manifest, entry) < 0)
            return err_set(err, ENOMEM, "building manifest.json");
        for (size_t k = 0; k < items[m].n_names && img->n_layers; k++) {
            const char *name = items[m].names[k];
            cleanup_free char *repo = NULL;
            const char *tag;
            bool is_digest;
            if (!ref_split_name(name, &repo, &tag, &is_digest) || is_digest) {
                free(repo);
                repo = xstrdup(name);
                tag = "latest";
            }
            digest_hex(&img->layers[img->n_layers - 1], hex);
            json_t *tags_of = json_object_get(repos, repo);
            if (!tags_of) {
                tags_of = json_object();
                json_object_set_new(repos, repo, tags_of);
            }
            json_object_set_new(tags_of, tag, json_string(hex));
        }
    }
    if (out_json(a, "manifest.json", manifest, err) < 0)
        return -1;
    for (size_t m = 0; m < n; m++) {
        const struct image *img = &items[m].img;
        digest_hex(&img->config_digest, hex);
        cleanup_free char *config_member = xasprintf("%s.json", hex);
        if (out_file(a, config_member, img->config_json, img->config_len, err) < 0)
            return -1;
        for (size_t i = 0; i < img->n_layers; i++) {
            if (layer_written(items, m, i))
                continue;
            digest_hex(&img->layers[i], hex);
            if (out_header(a, hex, AE_IFDIR, 0, err) < 0)
                return -1;
            snprintf(member, sizeof member, "%s/layer.tar", hex);
            if (out_layer(a, r, member, &items[m].keys[i], &img->layers[i], img->layer_sizes[i],
                          err) < 0)
                return -1;
        }
    }
    if (json_object_size(repos) && out_json(a, "repositories", repos, err) < 0)
        return -1;
    return 0;
}

/* ---- the merged tree as one tar ---- */

struct rootfs_walk {
    struct store_read *r;
    const struct view *v;
    struct archive *a;
    char **first_path; /* per inode: where a hardlinked file was first written */
    uint8_t *dir_seen; /* per inode: a directory already entered (a corrupt view must not loop) */
    struct layer_xattr *xattrs;
    char **xattr_names;
    struct layer_extent *extents;
};

static int rootfs_data(struct rootfs_walk *w, const struct layer_entry *e, struct imgfs_err *err)
{
    /* the writer takes the logical content, holes included, and skips the holes itself */
    uint64_t pos = 0;
    for (uint32_t i = 0; i <= e->n_extents; i++) {
        uint64_t next = i < e->n_extents ? e->extents[i].offset : e->size;
        if (next < pos || next > e->size)
            return err_set(err, EIO, "`%s`: overlapping extents", e->path);
        if (next > pos && layer_tar_write_hole(w->a, next - pos, err) < 0)
            return err_ctx(err, "`%s`", e->path);
        pos = next;
        if (i == e->n_extents)
            break;
        const void *data;
        size_t len;
        if (store_chunk_get(w->r, &e->extents[i].chunk, false, &data, &len, err) < 0)
            return err_ctx(err, "`%s`", e->path);
        if (len != e->extents[i].length)
            return err_set(err, EIO, "`%s`: a chunk of %zu bytes where %u were expected", e->path,
                           len, e->extents[i].length);
        if (out_data(w->a, e->path, data, len, err) < 0)
            return -1;
        pos += len;
    }
    return 0;
}

static int rootfs_entry(struct rootfs_walk *w, uint32_t ino, const char *path,
                        struct imgfs_err *err)
{
    const struct view *v = w->v;
    const struct view_inode *in = view_inode(v, ino);
    if (!in)
        return err_set(err, EIO, "`%s`: inode %u out of range", path, ino);
    struct layer_entry e = {
        .path = path,
        .mode = in->mode & 07777,
        .uid = in->uid,
        .gid = in->gid,
        .mtime_sec = in->mtime_sec,
        .mtime_nsec = in->mtime_nsec,
        .rdev_major = in->rdev_major,
        .rdev_minor = in->rdev_minor,
    };
    cleanup_free char *target = NULL;
    switch (in->mode & S_IFMT) {
    case S_IFREG:
        e.kind = LAYER_REG;
        break;
    case S_IFDIR:
        e.kind = LAYER_DIR;
        break;
    case S_IFLNK:
        e.kind = LAYER_SYMLINK;
        break;
    case S_IFCHR:
        e.kind = LAYER_CHAR;
        break;
    case S_IFBLK:
        e.kind = LAYER_BLOCK;
        break;
    case S_IFIFO:
        e.kind = LAYER_FIFO;
        break;
    case S_IFSOCK:
        e.kind = LAYER_SOCKET;
        break;
    default:
        return err_set(err, EIO, "`%s`: unknown file type %o", path, in->mode);
    }
    if (e.kind == LAYER_SYMLINK) {
        target = strndup(v->strings + in->first, in->size);
        e.link = target;
    }
    if (e.kind != LAYER_DIR && in->nlink > 1) {
        if (w->first_path[ino]) {
            e.kind = LAYER_HARDLINK;
            e.link = w->first_path[ino];
        } else {
            w->first_path[ino] = xstrdup(path);
        }
    }
    if (e.kind == LAYER_REG) {
        e.size = in->size;
        e.n_extents = in->count;
        w->extents = xrealloc(w->extents, (in->count ? in->count : 1) * sizeof *w->extents);
        for (uint32_t i = 0; i < in->count; i++) {
            const struct view_extent *x = &v->extents[in->first + i];
            w->extents[i] =
                (struct layer_extent){.offset = x->offset, .length = x->length, .chunk = x->chunk};
        }
        e.extents = w->extents;
    }
    if (e.kind != LAYER_HARDLINK && in->xattr_count) {
        w->xattrs = xrealloc(w->xattrs, in->xattr_count * sizeof *w->xattrs);
        w->xattr_names = xrealloc(w->xattr_names, in->xattr_count * sizeof *w->xattr_names);
        for (uint32_t i = 0; i < in->xattr_count; i++) {
            const struct view_xattr *x = &v->xattrs[in->xattr_first + i];
            w->xattr_names[i] = strndup(v->strings + x->name_off, x->name_len);
            w->xattrs[i] = (struct layer_xattr){
                .name = w->xattr_names[i],
                .value = (const uint8_t *)v->strings + x->value_off,
                .len = x->value_len,
            };
        }
        e.n_xattrs = in->xattr_count;
        e.xattrs = w->xattrs;
    }
    struct archive_entry *ae = archive_entry_new();
    layer_entry_to_archive(&e, ae); /* a file with holes gets its sparse map there */
    int r = archive_write_header(w->a, ae);
    archive_entry_free(ae);
    for (uint32_t i = 0; i < e.n_xattrs; i++)
        free(w->xattr_names[i]);
    /* a name that is not UTF-8 in this locale is a warning: pax then stores it as raw bytes
     * (hdrcharset=BINARY), as the canonical layer writer does */
    if (r < ARCHIVE_WARN)
        return err_set(err, EIO, "writing `%s`: %s", path, archive_error_string(w->a));
    if (e.kind == LAYER_REG && rootfs_data(w, &e, err) < 0)
        return -1;
    return 0;
}

static int rootfs_dir(struct rootfs_walk *w, uint32_t dir, struct buf *path, struct imgfs_err *err)
{
    if (w->dir_seen[dir])
        return err_set(err, EIO, "the image's tree has a directory loop at `%.*s`", (int)path->len,
                       path->data);
    w->dir_seen[dir] = 1;
    size_t base = path->len;
    const struct view_dirent *de;
    for (uint32_t idx = 0; (de = view_dirent_at(w->v, dir, idx)); idx++) {
        path->len = base;
        if (base)
            buf_append(path, "/", 1);
        buf_append(path, w->v->strings + de->name_off, de->name_len);
        buf_append(path, "", 1);
        path->len--;
        if (rootfs_entry(w, de->ino, (const char *)path->data, err) < 0)
            return -1;
        const struct view_inode *in = view_inode(w->v, de->ino);
        if (S_ISDIR(in->mode) && rootfs_dir(w, de->ino, path, err) < 0)
            return -1;
    }
    path->len = base;
    return 0;
}

static int write_rootfs(struct archive *a, struct store_read *r, const struct image *img,
                        struct imgfs_err *err)
{
    const void *stored;
    size_t len;
    struct view v;
    char ds[DIGEST_STR_SIZE];
    digest_str(&img->digest, ds);
    if (store_get(r, STORE_VIEW, &img->digest, &stored, &len, err) < 0)
        return err_ctx(err, "the merged tree of %s", ds);
    cleanup_free void *blob = NULL;
    if (view_open_copy(stored, len, &blob, &v, err) < 0)
        return err_ctx(err, "the merged tree of %s", ds);
    size_t n = (size_t)v.hdr->n_inodes + 1;
    struct rootfs_walk w = {
        .r = r,
        .v = &v,
        .a = a,
        .first_path = xcalloc(n, sizeof(char *)),
        .dir_seen = xcalloc(n, 1),
    };
    cleanup_buf struct buf path = {0};
    int ret = rootfs_entry(&w, 1, "", err);
    if (ret == 0)
        ret = rootfs_dir(&w, 1, &path, err);
    for (size_t i = 0; i < n; i++)
        free(w.first_path[i]);
    free(w.first_path);
    free(w.dir_seen);
    free(w.xattrs);
    free(w.xattr_names);
    free(w.extents);
    return ret;
}

struct name_check {
    const char *name;
    struct digest manifest;
    bool found;
};

static int name_check_cb(void *ctx, const struct store_image_entry *e)
{
    struct name_check *c = ctx;
    if (strcmp(e->name, c->name) || !digest_equal(&e->manifest, &c->manifest))
        return 0;
    c->found = true;
    return 1;
}

/* Load image `ref` into items[*n] (or, when an earlier reference named the same image, add its
 * name there), with the layers' store keys and, for the OCI and docker formats, the documents
 * of its canonical layers. */
static int export_add(struct store_read *r, const char *ref, enum export_format format,
                      struct export_item *items, size_t *n, struct imgfs_err *err)
{
    struct image img = {0};
    if (image_load_ref(r, ref, &img, err) < 0)
        return -1;
    /* the reference names the image when it is one of its names, not a digest */
    cleanup_free char *name = strncmp(ref, "sha256:", 7) ? store_name_normalize(ref) : NULL;
    if (name) {
        struct name_check c = {.name = name, .manifest = img.digest};
        store_image_foreach(r, name_check_cb, &c);
        if (!c.found)
            free(get_and_reset(&name));
    }
    struct export_item *it = NULL;
    for (size_t i = 0; i < *n && !it; i++)
        if (digest_equal(&items[i].stored, &img.digest))
            it = &items[i];
    bool dup = false;
    for (size_t k = 0; it && name && k < it->n_names; k++)
        dup = dup || !strcmp(it->names[k], name);
    if (it) {
        image_free(&img);
    } else {
        it = &items[(*n)++];
        it->img = img;
        it->stored = img.digest;
        it->keys = xcalloc(img.n_layers + 1, sizeof *it->keys);
        memcpy(it->keys, img.layers, img.n_layers * sizeof *it->keys);
        /* after the name check (it compares the stored digest), before anything is written */
        if ((format == EXPORT_OCI || format == EXPORT_DOCKER) &&
            export_canonical(r, &it->img, it->keys, err) < 0)
            return -1;
    }
    if (name && !dup) {
        it->names = xrealloc(it->names, (it->n_names + 1) * sizeof *it->names);
        it->names[it->n_names++] = get_and_reset(&name);
    }
    return 0;
}

int oci_export(struct store *s, const char *const *refs, size_t n_refs, enum export_format format,
               const char *path, struct imgfs_err *err)
{
    if (n_refs == 0 || (n_refs > 1 && format != EXPORT_DOCKER))
        return err_set(err, EINVAL, "%s export takes exactly one image",
                       format == EXPORT_DOCKER ? "a docker-save" : "this");
    struct store_read *r;
    if (store_read_begin(s, &r, err) < 0)
        return -1;
    struct export_item *items = xcalloc(n_refs, sizeof *items);
    size_t n = 0;
    cleanup_free char *tmp = NULL;
    cleanup_close int fd = -1;
    struct archive *a = NULL;
    int ret = -1;
    for (size_t i = 0; i < n_refs; i++)
        if (export_add(r, refs[i], format, items, &n, err) < 0)
            goto out;
    const struct image *img = &items[0].img;
    const struct digest *keys = items[0].keys;
    const char *name = items[0].n_names ? items[0].names[0] : NULL;
    bool direct = !strcmp(path, "-");
    struct stat st;
    if (direct) {
        fd = dup(STDOUT_FILENO);
        if (fd < 0) {
            err_sys(err, errno, "standard output");
            goto out;
        }
    } else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device or a fifo (/dev/null, a named pipe): write to it, there is no file to replace
         * (a temp file renamed over /dev/null would replace the device) */
        if (S_ISDIR(st.st_mode)) {
            err_set(err, EISDIR, "`%s` is a directory", path);
            goto out;
        }
        fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            err_sys(err, errno, "opening `%s`", path);
            goto out;
        }
        direct = true;
    }
    if (direct && isatty(fd)) {
        err_set(err, EINVAL, "refusing to write a tar archive to a terminal");
        goto out;
    }
    if (!direct) {
        tmp = xasprintf("%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            err_sys(err, errno, "creating `%s`", tmp);
            free(get_and_reset(&tmp));
            goto out;
        }
    }
    a = archive_write_new();
    /* the rootfs tar is written like a canonical layer (pax); the layouts around the blobs need
     * nothing pax_restricted cannot say. The last block is padded the same way for a file and a
     * pipe (libarchive's default differs), so an export is the same bytes wherever it goes. */
    if ((format == EXPORT_ROOTFS ? archive_write_set_format_pax(a)
                                 : archive_write_set_format_pax_restricted(a)) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        err_set(err, EIO, "writing `%s`: %s", path, archive_error_string(a));
        goto out;
    }
    int rr = format == EXPORT_OCI       ? write_oci(a, r, img, keys, name, err)
             : format == EXPORT_ESTARGZ ? write_oci_estargz(a, r, img, keys, name, err)
             : format == EXPORT_DOCKER  ? write_docker(a, r, items, n, err)
                                        : write_rootfs(a, r, img, err);
    if (rr < 0)
        goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        err_set(err, EIO, "writing `%s`: %s", path, archive_error_string(a));
        goto out;
    }
    if (!direct) {
        if (fsync(fd) < 0) {
            err_sys(err, errno, "writing `%s`", tmp);
            goto out;
        }
        if (rename(tmp, path) < 0) {
            err_sys(err, errno, "renaming `%s` to `%s`", tmp, path);
            goto out;
        }
        free(get_and_reset(&tmp));
    }
    ret = 0;
out:
    if (a)
        archive_write_free(a);
    if (tmp)
        unlink(tmp);
    for (size_t i = 0; i < n; i++) {
        image_free(&items[i].img);
        free(items[i].keys);
        for (size_t k = 0; k < items[i].n_names; k++)
            free(items[i].names[k]);
        free(items[i].names);
    }
    free(items);
    store_read_end(r);
    return ret;
}
