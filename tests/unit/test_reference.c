/* test_reference.c — the reference grammar (distribution's), the store's familiar names, the
 * registry client's pure parsers (manifests, platform choice) and the loopback rule. Cases from
 * distribution/reference's reference_test.go and normalize_test.go, restated. */
#include "../../fs/reference.h"
#include "../../fs/registry.h"
#include "unit.h"

#include <string.h>

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void parses(const char *in, const char *domain, const char *path, const char *tag,
                   bool digest, const char *store_name)
{
    struct ref r;
    struct imgfs_err err = {0};
    int rc = ref_parse(in, &r, &err);
    CHECK(rc == 0, "`%s` parses: %s", in, err.msg);
    if (rc)
        return;
    CHECK(!strcmp(r.domain, domain), "`%s` domain %s", in, r.domain);
    CHECK(!strcmp(r.path, path), "`%s` path %s", in, r.path);
    CHECK(tag ? r.tag && !strcmp(r.tag, tag) : !r.tag, "`%s` tag %s", in, r.tag ? r.tag : "-");
    CHECK(r.has_digest == digest, "`%s` digest", in);
    char *n = ref_store_name(&r);
    CHECK(!strcmp(n, store_name), "`%s` store name %s (want %s)", in, n, store_name);
    free(n);
    ref_free(&r);
}

static void full_name(const char *in, const char *want)
{
    struct ref r;
    struct imgfs_err err = {0};
    CHECK(ref_parse(in, &r, &err) == 0, "`%s` parses: %s", in, err.msg);
    char *n = ref_full_name(&r);
    CHECK(!strcmp(n, want), "`%s` full name %s (want %s)", in, n, want);
    free(n);
    ref_free(&r);
}

static void rejects(const char *in)
{
    struct ref r;
    struct imgfs_err err = {0};
    CHECK(ref_parse(in, &r, &err) < 0 && err.code == EINVAL && err.msg[0], "`%s` is rejected", in);
}

int main(void)
{
    parses("busybox", "docker.io", "library/busybox", NULL, false, "busybox:latest");
    parses("busybox:1.36", "docker.io", "library/busybox", "1.36", false, "busybox:1.36");
    parses("docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", false,
           "busybox:latest");
    parses("index.docker.io/foo/bar", "docker.io", "foo/bar", NULL, false, "foo/bar:latest");
    parses("foo/bar:v1", "docker.io", "foo/bar", "v1", false, "foo/bar:v1");
    parses("localhost/foo", "localhost", "foo", NULL, false, "localhost/foo:latest");
    parses("localhost:5000/a/b/c:t_1", "localhost:5000", "a/b/c", "t_1", false,
           "localhost:5000/a/b/c:t_1");
    parses("127.0.0.1:5000/x@sha256:" D64, "127.0.0.1:5000", "x", NULL, true,
           "127.0.0.1:5000/x@sha256:" D64);
    parses("reg.example.com/x:1@sha256:" D64, "reg.example.com", "x", "1", true,
           "reg.example.com/x:1");
    parses("Registry.Example.com/a", "Registry.Example.com", "a", NULL, false,
           "Registry.Example.com/a:latest");
    parses("[::1]:5000/a", "[::1]:5000", "a", NULL, false, "[::1]:5000/a:latest");
    parses("a__b/c-d---e/f.g", "docker.io", "a__b/c-d---e/f.g", NULL, false,
           "a__b/c-d---e/f.g:latest");
    parses("localhost:5000", "docker.io", "library/localhost", "5000", false, "localhost:5000");
    parses("tree:v1", "docker.io", "library/tree", "v1", false, "tree:v1");
    /* what docker pull prints last */
    full_name("busybox", "docker.io/library/busybox:latest");
    full_name("foo/bar:v1", "docker.io/foo/bar:v1");
    full_name("127.0.0.1:5000/x@sha256:" D64, "127.0.0.1:5000/x@sha256:" D64);
    full_name("reg.example.com/x:1@sha256:" D64, "reg.example.com/x:1@sha256:" D64);

    rejects("");
    rejects("Busybox");
    rejects("foo/Bar");
    rejects("a/b:");
    rejects("a:-x");
    rejects("a:.x");
    rejects("a//b");
    rejects("/a");
    rejects("a/");
    rejects("a_-b");
    rejects("a@sha256:abc");
    rejects("a@sha512:" D64 D64);
    rejects("a@sha256:"
            "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef");
    rejects("-reg.com/a");
    rejects("reg.com:port/a");
    rejects("a:1:2");
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    rejects(long_name);

    /* ref_split_name: listing store names */
    char *repo;
    const char *rest;
    bool by_digest;
    CHECK(ref_split_name("localhost:5000/a:1", &repo, &rest, &by_digest) &&
              !strcmp(repo, "localhost:5000/a") && !strcmp(rest, "1") && !by_digest,
          "split tagged");
    free(repo);
    CHECK(ref_split_name("a@sha256:" D64, &repo, &rest, &by_digest) && !strcmp(repo, "a") &&
              by_digest && !strcmp(rest, "sha256:" D64),
          "split digest");
    free(repo);
    CHECK(!ref_split_name("sha256:" D64, &repo, &rest, &by_digest), "an untagged image");

    /* loopback is plain HTTP by default, as in Docker */
    CHECK(registry_host_insecure("127.0.0.1:5000"), "127.0.0.1");
    CHECK(registry_host_insecure("127.8.9.1"), "127/8");
    CHECK(registry_host_insecure("localhost:80"), "localhost");
    CHECK(registry_host_insecure("[::1]:5000"), "::1");
    CHECK(!registry_host_insecure("128.0.0.1:5000"), "not loopback");
    CHECK(!registry_host_insecure("localhost.example.com"), "not localhost");
    setenv("IMGFS_INSECURE_REGISTRIES", "reg.lan:5000, other", 1);
    setenv("XDG_CONFIG_HOME", "/nonexistent", 1);
    CHECK(registry_host_insecure("reg.lan:5000") && registry_host_insecure("other") &&
              !registry_host_insecure("reg.lan"),
          "IMGFS_INSECURE_REGISTRIES");

    /* manifests and indexes */
    static const char manifest[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST
        "\",\"config\":{\"mediaType\":\"" MT_DOCKER_CONFIG "\",\"digest\":\"sha256:" D64
        "\",\"size\":12},\"layers\":[{\"mediaType\""
        ":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"sha256:" D64 "\","
        "\"size\":34,\"annotations\":{\"k\":\"v\"}}]}";
    struct registry_image img = {0};
    struct imgfs_err err = {0};
    CHECK(registry_parse_manifest(manifest, strlen(manifest), &img, &err) == 0, "manifest: %s",
          err.msg);
    CHECK(img.n_layers == 1 && img.layers[0].size == 34 && img.config.size == 12, "descriptors");
    CHECK(img.n_layers == 1 && registry_descriptor_annotation(&img.layers[0], "k") &&
              !strcmp(registry_descriptor_annotation(&img.layers[0], "k"), "v"),
          "annotations");
    registry_image_free(&img);
    static const char artifact[] =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config\","
        "\"digest\":\"sha256:" D64 "\",\"size\":1},\"layers\":[]}";
    CHECK(registry_parse_manifest(artifact, strlen(artifact), &img, &err) < 0 &&
              strstr(err.msg, "artifact"),
          "an artifact is refused: %s", err.msg);
    registry_image_free(&img);
    static const char negative[] =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":"
        "\"sha256:" D64 "\",\"size\":-1},\"layers\":[]}";
    CHECK(registry_parse_manifest(negative, strlen(negative), &img, &err) < 0, "negative size");
    registry_image_free(&img);

    static const char index[] =
        "{\"schemaVersion\":2,\"manifests\":["
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":1,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"sha256:1" D64 "\",\"size\":2,"
        "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"},"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"sha256:" D64 "\",\"size\":3,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
    struct registry_descriptor d;
    CHECK(registry_pick_platform(index, strlen(index), NULL, &d, &err) == 0 && d.size == 3,
          "linux/amd64 picked, attestation skipped: %s", err.msg);
    free(d.media_type);
    free(d.annotations);
    CHECK(registry_pick_platform(index, strlen(index), "linux/arm64", &d, &err) == 0 && d.size == 1,
          "linux/arm64");
    free(d.media_type);
    CHECK(registry_pick_platform(index, strlen(index), "linux/arm64/v7", &d, &err) < 0 &&
              err.code == ENOENT,
          "no linux/arm64/v7");
    CHECK(registry_pick_platform(index, strlen(index), "linux", &d, &err) < 0 && err.code == EINVAL,
          "a platform needs OS/ARCH");
    return unit_summary();
}
