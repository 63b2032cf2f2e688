/* oci.h — OCI image layouts and `docker save` archives, in and out. */
#ifndef IMGFS_OCI_H
#define IMGFS_OCI_H

#include "digest.h"
#include "util.h"

#include <stdbool.h>

struct import_images;
struct import_limits;
struct store;
struct store_batch;

enum oci_source_kind {
    OCI_SOURCE_ROOTFS,
    OCI_SOURCE_OCI_DIR,
    OCI_SOURCE_OCI_TAR,
    OCI_SOURCE_DOCKER_TAR
};
/* Tell what a path holds (a directory with an `oci-layout` file, or a tar whose members are those
 * of an OCI layout or of `docker save`; anything else is taken for a rootfs). */
int oci_detect(const char *path, enum oci_source_kind *kind, struct imgfs_err *err);

/* Is this a layer media type imgfs imports (OCI tar, tar+gzip, tar+zstd and their
 * non-distributable forms, Docker's rootfs.diff.tar(.gzip))? Shared by import and pull. */
bool oci_layer_media_type_known(const char *media_type);

/* Could a tar member of this name belong to an OCI layout or a docker-save archive? */
bool oci_member_name_is_image_archive(const char *name);

/* Import an OCI layout (directory or tar) or a docker-save tar at `path` into the batch; each image
 * found is committed with image_commit. `name` (may be NULL) overrides the archive's own names; an
 * archive holding several images with one `name` given is an error. The first image's manifest
 * digest goes to *first; every image committed is appended to `images` when not NULL (import.h).
 * `limits` (import.h) bounds all the layers together. */
int oci_import(struct store_batch *b, const char *path, enum oci_source_kind kind, const char *name,
               struct import_limits *limits, struct digest *first, struct import_images *images,
               struct imgfs_err *err);

enum export_format { EXPORT_OCI, EXPORT_ESTARGZ, EXPORT_DOCKER, EXPORT_ROOTFS };
/* Write image `refs[0]` to `path` ("-" for stdout) as an OCI layout tar (readable by skopeo's
 * oci-archive: and umoci after unpacking; EXPORT_ESTARGZ: the same with eStargz tar+gzip layers,
 * as push sends them), a docker-save archive (docker load, skopeo docker-archive:), or a tar of
 * the merged rootfs. A docker-save archive takes several images (n_refs > 1; EINVAL for the
 * other formats), as `docker save A B`: one manifest.json entry per distinct image, whose
 * RepoTags are the names given for it (none for an image given by digest), each layer once. */
int oci_export(struct store *s, const char *const *refs, size_t n_refs, enum export_format format,
               const char *path, struct imgfs_err *err);

#endif
