/* registry.h — a client for OCI distribution registries (libcurl + OpenSSL), docs/registry.md.
 *
 * One `struct registry_client` talks to one repository of one registry. It speaks the OCI
 * distribution spec: GET /v2/, manifests by tag or digest (OCI and Docker schema 2 manifests,
 * OCI indexes and Docker manifest lists), blobs whole or by byte range, HEAD of blobs, monolithic
 * and chunked uploads, cross-repository mounts and manifest PUT.
 *
 * Auth: HTTP basic and the Bearer token flow (a 401 with `WWW-Authenticate: Bearer realm=…,
 * service=…,scope=…` → GET realm with the basic credentials if there are any → retry with the
 * token). A 401 or 403 on a request made with a token fetches a new token once and retries (tokens
 * expire mid-pull). Credentials come from the auth file (registry_auth_*).
 *
 * Transport: HTTPS verified against the system CAs (or `ca_file`, or CURL_CA_BUNDLE). Insecure
 * hosts (registry_host_insecure) and `tls_verify` REGISTRY_TLS_NO_VERIFY: HTTPS without checks,
 * falling back to plain HTTP when the server does not speak TLS, as Docker does; see
 * `tls_verify`. Connections are kept alive and
 * shared by every call on the client. 5xx and 429 answers and transport errors are retried with
 * exponential backoff (honouring Retry-After) within the call's time budget.
 *
 * Every call takes a time budget in milliseconds (`timeout_ms`; 0 = the client's default,
 * `registry_options.timeout_ms`, whose own 0 means no overall limit, only a stall limit: a
 * transfer that moves nothing for 30 s fails). The budget covers every retry and the token
 * fetch: when it runs out the call fails with ETIMEDOUT.
 *
 * Errors (imgfs_err.code): ENOENT the registry says the manifest/blob/repository is unknown (404);
 * EACCES authentication failed or access denied (401/403 after re-authenticating); ETIMEDOUT the
 * budget ran out; EBADMSG a digest or size did not match; EPROTO the registry answered something
 * that is not the protocol (bad JSON, oversized document, a wrong Content-Range); EIO a transport
 * error or a 5xx after every retry; ECANCELED a sink callback asked to stop.
 *
 * Thread-safety: a client may be used by any number of threads at once (the FUSE daemon's
 * threads, parallel layer downloads). Each call takes its own curl handle from the client's pool;
 * connections, DNS and TLS sessions are shared; the token is shared under a lock. Never use a
 * client across fork(). registry_global_init must run once before threads start (the CLI does it).
 */
#ifndef IMGFS_REGISTRY_H
#define IMGFS_REGISTRY_H

#include "digest.h"
#include "reference.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Media types */
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"

/* Largest manifest/index/config accepted (the distribution spec's limit is 4 MiB for manifests). */
#define REGISTRY_DOCUMENT_LIMIT (4u << 20)

void registry_global_init(void);

enum { REGISTRY_TLS_AUTO = 0, REGISTRY_TLS_VERIFY = 1, REGISTRY_TLS_NO_VERIFY = -1 };

struct registry_options {
    /* REGISTRY_TLS_AUTO: HTTPS with certificate checks, except for the hosts
     * registry_host_insecure() names (HTTPS unchecked, else plain HTTP); REGISTRY_TLS_VERIFY
     * (--tls-verify=true): HTTPS with checks for every host, loopback too;
     * REGISTRY_TLS_NO_VERIFY (--tls-verify=false): every host as an insecure one. */
    int tls_verify;
    bool plain_http;       /* force http:// */
    const char *ca_file;   /* extra trusted CAs (PEM); NULL: CURL_CA_BUNDLE or the system's */
    const char *auth_file; /* NULL: REGISTRY_AUTH_FILE, else ~/.config/imgfs/auth.json */
    const char *username;  /* explicit credentials (login); NULL: from the auth file */
    const char *password;
    unsigned timeout_ms;  /* default budget per call; 0 = none (stall limit only) */
    unsigned max_retries; /* 0 = default (5) */
    bool push; /* ask tokens for pull and push from the first challenge on (registry_put_blob
                  switches to that by itself otherwise) */
    /* When set, called with bytes as they arrive for blob downloads and uploads (from the
     * calling thread). */
    void (*progress)(void *ctx, const struct digest *blob, uint64_t done, uint64_t total);
    void *progress_ctx;
};

struct registry_client;
/* A client for the repository `ref` names (its tag/digest are ignored here). No request is made:
 * the first call authenticates as needed. */
int registry_open(const struct ref *ref, const struct registry_options *opt,
                  struct registry_client **out, struct imgfs_err *err);
void registry_close(struct registry_client *c);
/* "http" or "https", and the host[:port] used, for messages. */
const char *registry_base_url(const struct registry_client *c);
const char *registry_repository(const struct registry_client *c); /* path, "library/busybox" */

/* GET /v2/ (authenticating as needed): checks the registry speaks the API and the credentials
 * are good. EACCES when they are not. */
int registry_ping(struct registry_client *c, unsigned timeout_ms, struct imgfs_err *err);

/* ---- tags ---- */

#define REGISTRY_TAGS_PAGE 1000u
#define REGISTRY_TAGS_MAX  100000u
/* GET /v2/<repo>/tags/list, every page (`?n=REGISTRY_TAGS_PAGE`, then the Link header's
 * rel="next" path, as the distribution spec pages it): the repository's tags, in the registry's
 * order (caller frees with registry_tags_free). A repository without tags (`"tags": null`) gives
 * none. EPROTO for a body that is not `{"tags": [...]}`, a tag that is not valid (it would become
 * a store name), more than REGISTRY_TAGS_MAX tags or a next page that is not a path under /v2/;
 * ENOENT for an unknown repository. */
int registry_list_tags(struct registry_client *c, unsigned timeout_ms, char ***tags, size_t *n,
                       struct imgfs_err *err);
void registry_tags_free(char **tags, size_t n);

/* ---- manifests ---- */

struct registry_document {
    char *media_type; /* from the Content-Type, else the document's mediaType */
    struct digest digest;
    struct buf body; /* exactly as served */
};
void registry_document_free(struct registry_document *d);

/* GET /v2/<repo>/manifests/<reference> (a tag or "sha256:..."), with Accept for OCI and Docker
 * manifests and indexes. The body's digest is computed; it must equal the reference when that is
 * a digest and the Docker-Content-Digest header when there is one (EBADMSG otherwise). At most
 * REGISTRY_DOCUMENT_LIMIT bytes (EPROTO past it). */
int registry_get_manifest(struct registry_client *c, const char *reference, unsigned timeout_ms,
                          struct registry_document *out, struct imgfs_err *err);

struct registry_descriptor {
    char *media_type;
    struct digest digest;
    uint64_t size;
    char **annotations; /* "key", "value", ..., NULL (NULL when there are none) */
};
/* The value of an annotation, or NULL. */
const char *registry_descriptor_annotation(const struct registry_descriptor *d, const char *key);

/* An image as a registry serves it: the index it was chosen from (when the reference named an
 * index or manifest list), the platform's manifest, and the descriptors in it. */
struct registry_image {
    struct registry_document index; /* body.len == 0 when the reference named a manifest */
    struct registry_document manifest;
    struct registry_descriptor config;
    size_t n_layers;
    struct registry_descriptor *layers; /* bottom first */
};
void registry_image_free(struct registry_image *img);

/* Parse an image manifest (OCI or Docker schema 2) into config and layer descriptors. Checks
 * every descriptor: known media types, sha256 digests, sizes. Pure: no I/O (fuzzed). */
int registry_parse_manifest(const char *json, size_t len, struct registry_image *out,
                            struct imgfs_err *err);
/* Pick a manifest from an index / manifest list: the one for `platform` ("os/arch[/variant]";
 * NULL = linux/amd64), skipping attestation manifests. Pure. */
int registry_pick_platform(const char *json, size_t len, const char *platform,
                           struct registry_descriptor *out, struct imgfs_err *err);

/* Fetch the manifest `reference` names; for an index, pick the platform's manifest and fetch it.
 * Fills every field of *out. */
int registry_resolve(struct registry_client *c, const char *reference, const char *platform,
                     unsigned timeout_ms, struct registry_image *out, struct imgfs_err *err);

/* A blob as a document (a config): fetched whole into memory, at most `limit` bytes, its digest
 * verified. */
int registry_get_document(struct registry_client *c, const struct digest *d, size_t limit,
                          unsigned timeout_ms, struct buf *out, struct imgfs_err *err);

/* ---- blobs ---- */

/* Where a download's bytes go: return 0 to continue, non-zero to stop (the call then fails with
 * ECANCELED, or with the error the sink put in its own context). Called from the calling thread. */
typedef int (*registry_sink_fn)(void *ctx, const void *data, size_t len);

/* Stream the blob `d` from byte `offset` to its end into `sink`. A broken transfer is resumed
 * with a Range request from where it stopped (so `sink` sees every byte exactly once, in order).
 * The digest is NOT verified here (the caller hashes the bytes it consumes: it may start at an
 * offset); `expected_size` (0 = unknown) bounds the bytes accepted (EPROTO past it). */
int registry_get_blob(struct registry_client *c, const struct digest *d, uint64_t offset,
                      uint64_t expected_size, registry_sink_fn sink, void *ctx, unsigned timeout_ms,
                      struct imgfs_err *err);

/* Exactly `len` bytes of blob `d` at `offset` into `buf` (one Range request; a server that ignores
 * Range and answers 200 with the whole blob is handled by skipping to the range). A negative
 * `offset` means the last `len` bytes (a suffix range); *blob_size gets the blob's size when the
 * server says it (may be NULL). */
int registry_get_range(struct registry_client *c, const struct digest *d, int64_t offset,
                       size_t len, void *buf, uint64_t *blob_size, unsigned timeout_ms,
                       struct imgfs_err *err);

struct registry_range {
    uint64_t offset;
    size_t len;
    void *buf; /* len bytes */
};
/* Several ranges of one blob. Asks for them in one multi-range request; a registry that answers
 * it with 400, 416, or 200 (the whole blob) or a malformed multipart body is remembered and asked
 * one range at a time from then on. */
int registry_get_ranges(struct registry_client *c, const struct digest *d,
                        struct registry_range *ranges, size_t n, unsigned timeout_ms,
                        struct imgfs_err *err);

/* HEAD /v2/<repo>/blobs/<d>: 1 when the registry has it (its size to *size, may be NULL), 0 when
 * not, -1 on error. */
int registry_blob_exists(struct registry_client *c, const struct digest *d, uint64_t *size,
                         unsigned timeout_ms, struct imgfs_err *err);

/* Upload blob `d` (size bytes, read from `fd` with pread from offset 0). Tries a cross-repository
 * mount first when `mount_from` (a repository path on the same registry) is not NULL; then a
 * monolithic upload (POST then one PUT) when size <= chunk_size, else a chunked one (POST, PATCH
 * per chunk_size bytes, PUT ?digest=). chunk_size 0 = 16 MiB. The registry's Docker-Content-Digest
 * must be `d`. *mounted (may be NULL) tells whether the mount did it. */
int registry_put_blob(struct registry_client *c, const struct digest *d, int fd, uint64_t size,
                      const char *mount_from, size_t chunk_size, bool *mounted, unsigned timeout_ms,
                      struct imgfs_err *err);

/* PUT /v2/<repo>/manifests/<reference>. The registry's Docker-Content-Digest, when sent, must be
 * the body's digest. */
int registry_put_manifest(struct registry_client *c, const char *reference, const char *media_type,
                          const void *body, size_t len, unsigned timeout_ms, struct imgfs_err *err);

/* ---- credentials (auth file) ----
 *
 * The auth file is Docker's config.json layout: {"auths": {"HOST[:PORT]": {"auth":
 * base64("user:password")}}}. Its path: REGISTRY_AUTH_FILE, else $XDG_CONFIG_HOME/imgfs/auth.json,
 * else ~/.config/imgfs/auth.json. Written atomically, mode 0600. docker.io is looked up under
 * "docker.io" and Docker's "https://index.docker.io/v1/". */

/* The auth file's path (caller frees). */
char *registry_auth_path(const char *auth_file);
/* Credentials for `host`: 1 found (*user, *password allocated), 0 none, -1 error (unreadable or
 * malformed file). */
int registry_auth_get(const char *auth_file, const char *host, char **user, char **password,
                      struct imgfs_err *err);
int registry_auth_set(const char *auth_file, const char *host, const char *user,
                      const char *password, struct imgfs_err *err);
/* 1 removed, 0 there were none. */
int registry_auth_remove(const char *auth_file, const char *host, struct imgfs_err *err);

/* Is `host` (host[:port]) one to talk plain HTTP to by default: 127.0.0.0/8, ::1, localhost, or
 * listed in IMGFS_INSECURE_REGISTRIES (comma-separated host[:port] entries) or in the
 * insecure-registries file ($XDG_CONFIG_HOME or ~/.config/imgfs/registries.conf, one per line)? */
bool registry_host_insecure(const char *host);

#endif
