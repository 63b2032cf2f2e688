/* reference.h — image references, the one parser for the whole project.
 *
 * The grammar is the distribution project's (github.com/distribution/reference):
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path-component { "/" path-component }
 *   domain     := host [ ":" port ]        (the first component, when it has a "." or a ":", or is
 *                                            "localhost", or has an upper-case letter)
 *   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     := "sha256:" 64 lowercase hex digits   (the only algorithm imgfs stores)
 *
 * As in Docker, a name without a domain is on docker.io, and a one-component path there is under
 * library/ ("busybox" is docker.io/library/busybox). The name is at most 255 characters.
 *
 * The store names images by the *familiar* form (what `docker images` shows): the domain dropped
 * when it is docker.io, "library/" dropped from there, and ":latest" added when neither a tag nor a
 * digest is given. So "busybox", "docker.io/library/busybox:latest" and "busybox:latest" are all
 * "busybox:latest"; "localhost:5000/a/b" is "localhost:5000/a/b:latest". */
#ifndef IMGFS_REFERENCE_H
#define IMGFS_REFERENCE_H

#include "digest.h"
#include "util.h"

#include <stdbool.h>

#define REF_DEFAULT_DOMAIN "docker.io"

struct ref {
    char *domain;    /* "docker.io", "localhost:5000", "[::1]:5000" */
    char *path;      /* "library/busybox", "team/app" */
    char *tag;       /* NULL when none was given */
    bool has_digest; /* "@sha256:..." was given */
    struct digest digest;
};

/* Parse `s`. EINVAL with a message saying what is wrong and where. */
int ref_parse(const char *s, struct ref *out, struct imgfs_err *err);
void ref_free(struct ref *r);

/* "domain/path": what a registry calls the repository's full name. Caller frees. */
char *ref_repository(const struct ref *r);
/* The path on the registry ("library/busybox"). Points into r. */
static inline const char *ref_path(const struct ref *r)
{
    return r->path;
}
/* The familiar repository name ("busybox", "localhost:5000/a"): no tag, no digest. Caller frees. */
char *ref_familiar_repository(const struct ref *r);
/* The name the store keys an image by: familiar repository + ":tag" (":latest" when neither tag
 * nor digest was given), or + "@sha256:..." when only a digest was given. A reference with both
 * gives the tagged name (the digest is what the caller checks). Caller frees. */
char *ref_store_name(const struct ref *r);
/* The full name, as Docker's pull prints it last: domain/path, ":tag" (":latest" when neither tag
 * nor digest was given) and "@sha256:..." when given ("docker.io/library/busybox:latest"). Caller
 * frees. */
char *ref_full_name(const struct ref *r);
/* What to ask a registry for: the digest ("sha256:...") when given, else the tag ("latest" when
 * none). Points into r or is static; valid as long as r. */
const char *ref_registry_reference(const struct ref *r, char buf[DIGEST_STR_SIZE]);

/* Split a familiar store name ("busybox:latest", "a/b@sha256:...") into repository and tag or
 * digest for listing; `rest` points after the ':' or is the "sha256:..." after '@'. Returns false
 * when `name` is not a reference (an untagged "sha256:<hex>" name). Caller frees *repo. */
bool ref_split_name(const char *name, char **repo, const char **rest, bool *is_digest);

/* Is `s` a valid tag? */
bool ref_valid_tag(const char *s);

#endif
