#include "../fs/image.h"
#include "../fs/store.h"
#include "../fs/template.h"
#include "../fs/view.h"
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs inspect [OPTIONS] NAME|ID [NAME|ID...]\n\n"
    "Show containers and images. A container (name, id or id prefix) is looked for first,\n"
    "then an image (name, digest or digest prefix), as docker inspect does.\n\n"
    "Options:\n"
    "      --type TYPE      only containers (container) or only images (image)\n"
    "      --json           images: a JSON array with the manifest, config and layers\n"
    "                       (containers are always shown as Docker's JSON array)\n"
    "  -f, --format TMPL    a Go template per object, Docker's subset: {{.State.Status}},\n"
    "                       {{json .Config}}, {{index .M \"k\"}}, {{range}}, {{if}}, text\n"
    "                       (docs/cli.md). Images are seen in Docker's shape: .Id is the\n"
    "                       config digest, .RepoTags, .Config.Env, .RootFS.Layers, plus\n"
    "                       .Digest (the registry's digest of a pulled image). A bare word\n"
    "                       (Digest, Id, Config, Size, Layers) prints imgfs's own field: Id\n"
    "                       there is the stored manifest's digest\n"
    "  -h, --help           show this help\n";

/* REPO@DIGEST names of the image (Docker's RepoDigests: recorded by pull and push). */
struct repo_digests {
    const struct digest *manifest;
    json_t *names;
};

static int repo_digest_one(void *ctx, const struct store_image_entry *e)
{
    struct repo_digests *rd = ctx;
    if (strchr(e->name, '@') && digest_equal(&e->manifest, rd->manifest))
        json_array_append_new(rd->names, json_string(e->name));
    return 0;
}

static json_t *repo_digests(struct store_read *r, const struct digest *manifest)
{
    struct repo_digests rd = {manifest, json_array()};
    store_image_foreach(r, repo_digest_one, &rd);
    return rd.names;
}

static json_t *image_json(struct store_read *r, const char *ref, const struct image *img,
                          uint64_t size)
{
    char d[DIGEST_STR_SIZE], c[DIGEST_STR_SIZE], id[DIGEST_STR_SIZE];
    digest_str(image_registry_digest(img), d);
    digest_str(&img->digest, id);
    digest_str(&img->config_digest, c);
    json_t *layers = json_array();
    for (size_t i = 0; i < img->n_layers; i++) {
        char l[DIGEST_STR_SIZE];
        digest_str(&img->layers[i], l);
        json_array_append_new(
            layers, json_pack("{s:s, s:I}", "Digest", l, "Size", (json_int_t)img->layer_sizes[i]));
    }
    json_t *manifest = json_loadb(img->manifest_json, img->manifest_len, 0, NULL);
    json_t *config = json_loadb(img->config_json, img->config_len, 0, NULL);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o*, s:o*}", "Name", ref, "Digest",
                          d, "Id", id, "ConfigDigest", c, "Size", (json_int_t)size, "RepoDigests",
                          repo_digests(r, &img->digest), "Layers", layers, "Manifest", manifest,
                          "Config", config);
    if (img->has_source) {
        char sm[DIGEST_STR_SIZE], sc[DIGEST_STR_SIZE], si[DIGEST_STR_SIZE];
        digest_str(&img->source.manifest, sm);
        digest_str(&img->source.config, sc);
        json_t *src = json_pack("{s:s, s:s}", "Manifest", sm, "Config", sc);
        if (img->source.has_index) {
            digest_str(&img->source.index, si);
            json_object_set_new(src, "Index", json_string(si));
        }
        json_object_set_new(j, "Source", src);
    }
    return j;
}

static void print_list(const char *label, char **v)
{
    if (!v)
        return;
    printf("%-14s", label);
    for (char **p = v; *p; p++)
        printf("%s%s", p == v ? "" : "\n              ", *p);
    printf("%s\n", *v ? "" : "[]");
}

static void print_human(struct store_read *r, const char *ref, const struct image *img,
                        uint64_t size)
{
    char d[DIGEST_STR_SIZE], c[DIGEST_STR_SIZE], sz[32];
    digest_str(image_registry_digest(img), d);
    digest_str(&img->config_digest, c);
    cli_human_size(size, sz, sizeof sz);
    const struct image_config *cf = &img->config;
    printf("Name:         %s\nDigest:       %s\n", ref, d);
    if (img->has_source) {
        char id[DIGEST_STR_SIZE];
        digest_str(&img->digest, id);
        printf("Id:           %s (the stored image)\n", id);
    }
    json_t *rd = repo_digests(r, &img->digest);
    size_t k;
    json_t *v;
    json_array_foreach(rd, k, v)
        printf("%s%s\n", k ? "              " : "RepoDigests:  ", json_string_value(v));
    json_decref(rd);
    printf("Config:       %s\n", c);
    printf("Platform:     %s/%s\nSize:         %s (%llu bytes)\n", cf->os ? cf->os : "?",
           cf->architecture ? cf->architecture : "?", sz, (unsigned long long)size);
    print_list("Env:", cf->env);
    print_list("Entrypoint:", cf->entrypoint);
    print_list("Cmd:", cf->cmd);
    if (cf->working_dir)
        printf("WorkingDir:   %s\n", cf->working_dir);
    if (cf->user)
        printf("User:         %s\n", cf->user);
    print_list("ExposedPorts:", cf->exposed_ports);
    print_list("Volumes:", cf->volumes);
    print_list("Labels:", cf->labels);
    if (cf->stop_signal)
        printf("StopSignal:   %s\n", cf->stop_signal);
    printf("Layers:\n");
    for (size_t i = 0; i < img->n_layers; i++) {
        char l[DIGEST_STR_SIZE], ls[32];
        digest_str(&img->layers[i], l);
        cli_human_size(img->layer_sizes[i], ls, sizeof ls);
        printf("  %2zu  %s  %s\n", i + 1, l, ls);
    }
}

/* "{{.Digest}}" or "Digest" */
static int print_field(const char *format, const struct image *img, uint64_t size)
{
    char field[64];
    if (sscanf(format, " {{ .%63[A-Za-z] }}", field) != 1 &&
        sscanf(format, "%63[A-Za-z]", field) != 1)
        return -1;
    char s[DIGEST_STR_SIZE];
    if (!strcmp(field, "Digest")) {
        digest_str(image_registry_digest(img), s);
        puts(s);
    } else if (!strcmp(field, "Id") || !strcmp(field, "ID")) {
        digest_str(&img->digest, s);
        puts(s);
    } else if (!strcmp(field, "Config") || !strcmp(field, "ConfigDigest")) {
        digest_str(&img->config_digest, s);
        puts(s);
    } else if (!strcmp(field, "Size")) {
        printf("%llu\n", (unsigned long long)size);
    } else if (!strcmp(field, "Layers")) {
        for (size_t i = 0; i < img->n_layers; i++) {
            digest_str(&img->layers[i], s);
            puts(s);
        }
    } else {
        return -1;
    }
    return 0;
}

/* An image as Docker's image inspect shows it, for templates. */
struct tags_ctx {
    const struct digest *manifest;
    json_t *tags;
};

static int tag_one(void *ctx, const struct store_image_entry *e)
{
    struct tags_ctx *t = ctx;
    if (!strchr(e->name, '@') && digest_equal(&e->manifest, t->manifest))
        json_array_append_new(t->tags, json_string(e->name));
    return 0;
}

/* a new reference to o[k], or "" */
static json_t *get_or_empty(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v ? json_incref(v) : json_string("");
}

static json_t *docker_image_json(struct store_read *r, const struct image *img, uint64_t size)
{
    char d[DIGEST_STR_SIZE], c[DIGEST_STR_SIZE], m[DIGEST_STR_SIZE];
    digest_str(image_registry_digest(img), d);
    digest_str(&img->config_digest, c);
    digest_str(&img->digest, m);
    struct tags_ctx t = {&img->digest, json_array()};
    store_image_foreach(r, tag_one, &t);
    json_t *config = json_loadb(img->config_json, img->config_len, 0, NULL);
    json_t *layers = json_array();
    for (size_t i = 0; i < img->n_layers; i++) {
        char l[DIGEST_STR_SIZE];
        digest_str(&img->layers[i], l);
        json_array_append_new(layers, json_string(l));
    }
    json_t *inner = json_object_get(config, "config");
    json_t *o =
        json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:{s:s, s:o}, s:s, s:s}", "Id", c,
                  "RepoTags", t.tags, "RepoDigests", repo_digests(r, &img->digest), "Created",
                  get_or_empty(config, "created"), "Architecture",
                  get_or_empty(config, "architecture"), "Os", get_or_empty(config, "os"), "Size",
                  (json_int_t)size, "Config", inner ? json_incref(inner) : json_object(), "RootFS",
                  "Type", "layers", "Layers", layers, "Digest", d, "ManifestDigest", m);
    json_decref(config);
    return o;
}

/* What Docker's inspect values have that imgfs's lack (tmpl_render's `known`): a template may name
 * them (no value), while a field Docker does not have is an error, as Docker's ("map has no entry
 * for key"). true: a Go map (Labels: a missing key has no value) or a field imgfs leaves out. */
static const char container_known[] =
    "{\"AppArmorProfile\": true, \"Driver\": true, \"ExecIDs\": true, \"GraphDriver\": true,"
    " \"HostnamePath\": true, \"HostsPath\": true, \"LogPath\": true, \"MountLabel\": true,"
    " \"Platform\": true, \"ProcessLabel\": true, \"ResolvConfPath\": true, \"SizeRw\": true,"
    " \"SizeRootFs\": true, \"State\": {\"Health\": true},"
    " \"Mounts\": {\"Name\": true, \"Driver\": true, \"Mode\": true, \"RW\": true,"
    " \"Propagation\": true},"
    " \"Config\": {\"Domainname\": true, \"AttachStdin\": true, \"AttachStdout\": true,"
    " \"AttachStderr\": true, \"StdinOnce\": true, \"Volumes\": true, \"OnBuild\": true,"
    " \"Labels\": true, \"ExposedPorts\": true, \"StopSignal\": true, \"StopTimeout\": true,"
    " \"Healthcheck\": true, \"ArgsEscaped\": true, \"MacAddress\": true,"
    " \"NetworkDisabled\": true, \"Shell\": true},"
    " \"HostConfig\": {\"PortBindings\": {}, \"RestartPolicy\": {}, \"Tmpfs\": true,"
    " \"LogConfig\": true, \"Sysctls\": true, \"StorageOpt\": true, \"Annotations\": true,"
    " \"BlkioDeviceReadBps\": true, \"BlkioDeviceReadIOps\": true,"
    " \"BlkioDeviceWriteBps\": true, \"BlkioDeviceWriteIOps\": true, \"BlkioWeight\": true,"
    " \"BlkioWeightDevice\": true, \"Cgroup\": true, \"CgroupParent\": true,"
    " \"CgroupnsMode\": true, \"ConsoleSize\": true, \"ContainerIDFile\": true,"
    " \"CpuCount\": true, \"CpuPercent\": true, \"CpuPeriod\": true, \"CpuQuota\": true,"
    " \"CpuRealtimePeriod\": true, \"CpuRealtimeRuntime\": true, \"CpuShares\": true,"
    " \"CpusetCpus\": true, \"CpusetMems\": true, \"DeviceCgroupRules\": true,"
    " \"DeviceRequests\": true, \"Devices\": true, \"Dns\": true, \"DnsOptions\": true,"
    " \"DnsSearch\": true, \"ExtraHosts\": true, \"GroupAdd\": true,"
    " \"IOMaximumBandwidth\": true, \"IOMaximumIOps\": true, \"IpcMode\": true,"
    " \"Isolation\": true, \"KernelMemory\": true, \"KernelMemoryTCP\": true, \"Links\": true,"
    " \"MaskedPaths\": true, \"MemoryReservation\": true, \"MemorySwap\": true,"
    " \"MemorySwappiness\": true, \"Mounts\": true, \"OomKillDisable\": true,"
    " \"OomScoreAdj\": true, \"PidMode\": true, \"PublishAllPorts\": true,"
    " \"ReadonlyPaths\": true, \"Runtime\": true, \"SecurityOpt\": true, \"ShmSize\": true,"
    " \"UTSMode\": true, \"Ulimits\": true, \"UsernsMode\": true, \"VolumeDriver\": true,"
    " \"VolumesFrom\": true, \"Init\": true},"
    " \"NetworkSettings\": {\"Bridge\": true, \"SandboxID\": true, \"HairpinMode\": true,"
    " \"LinkLocalIPv6Address\": true, \"LinkLocalIPv6PrefixLen\": true, \"SandboxKey\": true,"
    " \"SecondaryIPAddresses\": true, \"SecondaryIPv6Addresses\": true, \"EndpointID\": true,"
    " \"Gateway\": true, \"GlobalIPv6Address\": true, \"GlobalIPv6PrefixLen\": true,"
    " \"IPAddress\": true, \"IPPrefixLen\": true, \"IPv6Gateway\": true, \"MacAddress\": true,"
    " \"Networks\": true}}";
static const char image_known[] =
    "{\"Parent\": true, \"Comment\": true, \"Container\": true, \"ContainerConfig\": true,"
    " \"DockerVersion\": true, \"Author\": true, \"VirtualSize\": true, \"GraphDriver\": true,"
    " \"Metadata\": true, \"Variant\": true, \"OsVersion\": true,"
    " \"RootFS\": {\"BaseLayer\": true},"
    " \"Config\": {\"Hostname\": true, \"Domainname\": true, \"User\": true,"
    " \"AttachStdin\": true, \"AttachStdout\": true, \"AttachStderr\": true, \"Tty\": true,"
    " \"OpenStdin\": true, \"StdinOnce\": true, \"Env\": true, \"Cmd\": true, \"Image\": true,"
    " \"Volumes\": true, \"WorkingDir\": true, \"Entrypoint\": true, \"OnBuild\": true,"
    " \"Labels\": true, \"ExposedPorts\": true, \"StopSignal\": true, \"Healthcheck\": true,"
    " \"ArgsEscaped\": true, \"Shell\": true}}";

static int print_template(const char *format, json_t *data, const char *known_json)
{
    struct imgfs_err err = {0};
    char *out;
    json_t *known = json_loads(known_json, 0, NULL);
    int r = tmpl_render(format, data, known, &out, &err);
    json_decref(known);
    if (r < 0) {
        cli_report("inspect", &err);
        return -1;
    }
    puts(out);
    free(out);
    return 0;
}

int cmd_inspect(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"format", required_argument, 0, 'f'},
                                         {"type", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    bool json = false;
    const char *format = NULL, *type = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "f:h", opts)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'f':
            format = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("inspect");
        }
    }
    if (optind >= argc) {
        return cli_wrong_args("inspect", "requires at least 1 argument");
    }
    if (type && strcmp(type, "container") && strcmp(type, "image")) {
        cli_error("inspect", "\"%s\" is not a valid value for --type", type);
        return cli_usage_error("inspect");
    }
    struct imgfs_err err = {0};
    bool is_template = format && strstr(format, "{{");
    int check = is_template ? cli_template_check("inspect", format, 64) : 0;
    if (check)
        return check;
    bool want_images = !type || !strcmp(type, "image");
    bool want_ctrs = !type || !strcmp(type, "container");
    struct store *s = NULL;
    struct store_read *r = NULL;
    int status = 0;
    json_t *all = json_array();
    bool any_image = false;
    for (int i = optind; i < argc; i++) {
        if (want_ctrs) {
            struct ctr_state st;
            if (ctr_find(cli->run_dir, argv[i], &st, &err) == 0) {
                json_t *o = ctr_inspect(cli->run_dir, &st);
                ctr_state_free(&st);
                if (format) {
                    if ((is_template ? print_template(format, o, container_known)
                                     : (cli_error("inspect", "a container's --format is a "
                                                             "template ({{.Field}})"),
                                        -1)) < 0)
                        status = 1;
                    json_decref(o);
                } else {
                    json_array_append_new(all, o);
                }
                continue;
            }
            if (err.code == EINVAL || !want_images) {
                cli_report("inspect", &err);
                status = 1;
                continue;
            }
        }
        if (!s) {
            if (!(s = cli_store_open(cli, "inspect", true))) {
                json_decref(all);
                return 1;
            }
            if (store_read_begin(s, &r, &err) < 0) {
                cli_report("inspect", &err);
                store_close(s);
                json_decref(all);
                return 1;
            }
        }
        struct image img;
        if (image_load_ref(r, argv[i], &img, &err) < 0) {
            if (err.code == ENOENT)
                cli_error("inspect", "Error: No such object: %s", argv[i]);
            else
                cli_report("inspect", &err);
            status = 1;
            continue;
        }
        struct view_header h;
        uint64_t size = cli_view_header(r, &img.digest, &h) ? h.total_size : 0;
        if (is_template) {
            json_t *o = docker_image_json(r, &img, size);
            if (print_template(format, o, image_known) < 0)
                status = 1;
            json_decref(o);
        } else if (format) {
            if (print_field(format, &img, size) < 0) {
                cli_error("inspect",
                          "unknown format `%s` (known: Digest, Id, Config, Size, "
                          "Layers, or a template)",
                          format);
                status = 1;
            }
        } else if (json || json_array_size(all)) {
            json_array_append_new(all, image_json(r, argv[i], &img, size));
        } else {
            if (any_image)
                putchar('\n');
            any_image = true;
            print_human(r, argv[i], &img, size);
        }
        image_free(&img);
    }
    if (json_array_size(all)) {
        char *out = json_dumps(all, JSON_INDENT(4));
        puts(out);
        free(out);
    } else if (!format && !any_image && status == 0 && json) {
        puts("[]");
    }
    json_decref(all);
    if (r)
        store_read_end(r);
    if (s)
        store_close(s);
    return status;
}
