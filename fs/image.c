#include "image.h"
#include "layer.h"
#include "store.h"
#include "view.h"

#include <jansson.h>
#include <string.h>
#include <time.h>

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG   "application/vnd.oci.image.config.v1+json"
#define MT_LAYER    "application/vnd.oci.image.layer.v1.tar"

/* ---- config ---- */

static char **str_array(json_t *a)
{
    if (!json_is_array(a))
        return NULL;
    size_t n = json_array_size(a), k = 0;
    char **out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (s)
            out[k++] = xstrdup(s);
    }
    return out;
}

/* Keys of an object ("ExposedPorts": {"80/tcp": {}}), or "key=value" for string values. */
static char **obj_keys(json_t *o, bool with_values)
{
    if (!json_is_object(o))
        return NULL;
    char **out = xcalloc(json_object_size(o) + 1, sizeof *out);
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (with_values)
            out[k++] = xasprintf("%s=%s", key, json_is_string(v) ? json_string_value(v) : "");
        else
            out[k++] = xstrdup(key);
    }
    return out;
}

static char *opt_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? xstrdup(s) : NULL;
}

int image_config_parse(const char *json, size_t len, struct image_config *out,
                       struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return err_set(err, EINVAL, "image config is not valid JSON: %s (line %d)", je.text,
                       je.line);
    }
    json_t *c = json_object_get(root, "config");
    out->env = str_array(json_object_get(c, "Env"));
    out->entrypoint = str_array(json_object_get(c, "Entrypoint"));
    out->cmd = str_array(json_object_get(c, "Cmd"));
    out->working_dir = opt_str(c, "WorkingDir");
    out->user = opt_str(c, "User");
    out->exposed_ports = obj_keys(json_object_get(c, "ExposedPorts"), false);
    out->volumes = obj_keys(json_object_get(c, "Volumes"), false);
    out->labels = obj_keys(json_object_get(c, "Labels"), true);
    out->stop_signal = opt_str(c, "StopSignal");
    out->architecture = opt_str(root, "architecture");
    out->os = opt_str(root, "os");
    json_decref(root);
    return 0;
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

void image_config_free(struct image_config *c)
{
    free_strv(c->env);
    free_strv(c->entrypoint);
    free_strv(c->cmd);
    free(c->working_dir);
    free(c->user);
    free_strv(c->exposed_ports);
    free_strv(c->volumes);
    free_strv(c->labels);
    free(c->stop_signal);
    free(c->architecture);
    free(c->os);
    memset(c, 0, sizeof *c);
}

/* ---- loading ---- */

static int parse_descriptor(json_t *d, struct digest *digest, uint64_t *size)
{
    const char *s = json_string_value(json_object_get(d, "digest"));
    if (!s || digest_parse(s, false, digest) < 0)
        return -1;
    if (size)
        *size = (uint64_t)json_integer_value(json_object_get(d, "size"));
    return 0;
}

static int blob_get(struct store_read *r, const struct digest *d, char **out, size_t *len,
                    struct imgfs_err *err)
{
    const void *data;
    if (store_get(r, STORE_BLOB, d, &data, len, err) < 0)
        return -1;
    *out = xmalloc(*len + 1);
    memcpy(*out, data, *len);
    (*out)[*len] = 0;
    return 0;
}

int image_load(struct store_read *r, const struct digest *manifest, struct image *out,
               struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    out->digest = *manifest;
    char hex[DIGEST_HEX_LEN + 1];
    digest_hex(manifest, hex);
    if (blob_get(r, manifest, &out->manifest_json, &out->manifest_len, err) < 0)
        return err_ctx(err, "loading image sha256:%.12s", hex);
    json_error_t je;
    json_t *m = json_loadb(out->manifest_json, out->manifest_len, 0, &je);
    json_t *layers = json_object_get(m, "layers");
    if (!m || parse_descriptor(json_object_get(m, "config"), &out->config_digest, NULL) < 0 ||
        !json_is_array(layers)) {
        json_decref(m);
        image_free(out);
        return err_set(err, EIO, "image sha256:%.12s: its manifest is corrupt", hex);
    }
    out->n_layers = json_array_size(layers);
    out->layers = xcalloc(out->n_layers + 1, sizeof *out->layers);
    out->layer_sizes = xcalloc(out->n_layers + 1, sizeof *out->layer_sizes);
    for (size_t i = 0; i < out->n_layers; i++) {
        if (parse_descriptor(json_array_get(layers, i), &out->layers[i], &out->layer_sizes[i]) <
            0) {
            json_decref(m);
            image_free(out);
            return err_set(err, EIO, "image sha256:%.12s: layer %zu of its manifest is corrupt",
                           hex, i + 1);
        }
    }
    json_t *ann = json_object_get(m, "annotations");
    const char *sm = json_string_value(json_object_get(ann, IMAGE_ANNOT_SOURCE_MANIFEST));
    const char *sc = json_string_value(json_object_get(ann, IMAGE_ANNOT_SOURCE_CONFIG));
    const char *si = json_string_value(json_object_get(ann, IMAGE_ANNOT_SOURCE_INDEX));
    if (sm && sc && digest_parse(sm, false, &out->source.manifest) == 0 &&
        digest_parse(sc, false, &out->source.config) == 0) {
        out->has_source = true;
        out->source.has_index = si && digest_parse(si, false, &out->source.index) == 0;
    }
    json_decref(m);
    if (blob_get(r, &out->config_digest, &out->config_json, &out->config_len, err) < 0 ||
        image_config_parse(out->config_json, out->config_len, &out->config, err) < 0) {
        image_free(out);
        return err_ctx(err, "loading the config of image sha256:%.12s", hex);
    }
    return 0;
}

int image_config_digest(struct store_read *r, const struct digest *manifest, struct digest *config,
                        struct imgfs_err *err)
{
    const void *data;
    size_t len;
    if (store_get(r, STORE_BLOB, manifest, &data, &len, err) < 0)
        return -1;
    json_t *m = json_loadb(data, len, 0, NULL);
    int rc = m && parse_descriptor(json_object_get(m, "config"), config, NULL) == 0 ? 0 : -1;
    json_decref(m);
    if (rc < 0) {
        char hex[DIGEST_HEX_LEN + 1];
        digest_hex(manifest, hex);
        return err_set(err, EIO, "image sha256:%.12s: its manifest is corrupt", hex);
    }
    return 0;
}

struct config_scan {
    struct store_read *r;
    const char *hex;
    size_t n;
    int found;
    struct digest match;
};

static int config_scan_one(void *ctx, const struct store_image_entry *e)
{
    struct config_scan *sc = ctx;
    struct digest config;
    struct imgfs_err ignored;
    char hex[DIGEST_HEX_LEN + 1];
    if (image_config_digest(sc->r, &e->manifest, &config, &ignored) < 0)
        return 0; /* fsck's business */
    digest_hex(&config, hex);
    if (strncmp(hex, sc->hex, sc->n))
        return 0;
    if (sc->found && !digest_equal(&sc->match, &e->manifest))
        return 1; /* two images: ambiguous */
    sc->match = e->manifest;
    sc->found = 1;
    return 0;
}

int image_resolve(struct store_read *r, const char *ref, struct digest *manifest,
                  struct imgfs_err *err)
{
    if (store_image_resolve(r, ref, manifest, err) == 0)
        return 0;
    if (err->code != ENOENT)
        return -1;
    const char *hex = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
    size_t n = strlen(hex);
    if (n < 4 || n > DIGEST_HEX_LEN || strspn(hex, "0123456789abcdef") != n)
        return -1; /* store_image_resolve's ENOENT stands */
    struct config_scan sc = {.r = r, .hex = hex, .n = n};
    int rc = store_image_foreach(r, config_scan_one, &sc);
    if (rc == 1)
        return err_set(err, EINVAL, "`%s` matches more than one image", ref);
    if (rc < 0)
        return err_set(err, EIO, "listing images to resolve `%s`", ref);
    if (!sc.found)
        return -1;
    *manifest = sc.match;
    return 0;
}

int image_load_ref(struct store_read *r, const char *ref, struct image *out,
                   struct imgfs_err *err)
{
    struct digest d;
    if (image_resolve(r, ref, &d, err) < 0)
        return -1;
    return image_load(r, &d, out, err);
}

const struct digest *image_registry_digest(const struct image *img)
{
    if (!img->has_source)
        return &img->digest;
    return img->source.has_index ? &img->source.index : &img->source.manifest;
}

void image_free(struct image *img)
{
    free(img->manifest_json);
    free(img->config_json);
    free(img->layers);
    free(img->layer_sizes);
    image_config_free(&img->config);
    memset(img, 0, sizeof *img);
}

int store_gc_mark_layer(struct store_read *r, const struct digest *diff_id,
                        void (*mark)(void *ctx, enum store_db db, const struct digest *d),
                        void *ctx, struct imgfs_err *err)
{
    mark(ctx, STORE_LAYER, diff_id);
    const void *table;
    size_t len;
    char hex[DIGEST_STR_SIZE];
    digest_str(diff_id, hex);
    if (store_get(r, STORE_LAYER, diff_id, &table, &len, err) < 0)
        return err_ctx(err, "layer %s", hex);
    struct layer_reader rd;
    if (layer_reader_init(&rd, table, len, err) < 0)
        return err_ctx(err, "layer %s", hex);
    struct layer_entry e;
    int rc;
    while ((rc = layer_next(&rd, &e, err)) > 0)
        for (uint32_t k = 0; k < e.n_extents; k++)
            mark(ctx, STORE_CHUNK, &e.extents[k].chunk);
    layer_reader_free(&rd);
    return rc < 0 ? err_ctx(err, "layer %s", hex) : 0;
}

int store_gc_mark_image(struct store_read *r, const struct digest *manifest,
                        void (*mark)(void *ctx, enum store_db db, const struct digest *d),
                        void *ctx, struct imgfs_err *err)
{
    struct image img;
    if (image_load(r, manifest, &img, err) < 0)
        return -1;
    mark(ctx, STORE_BLOB, manifest);
    mark(ctx, STORE_BLOB, &img.config_digest);
    mark(ctx, STORE_VIEW, manifest);
    if (img.has_source) {
        mark(ctx, STORE_BLOB, &img.source.manifest);
        mark(ctx, STORE_BLOB, &img.source.config);
        if (img.source.has_index)
            mark(ctx, STORE_BLOB, &img.source.index);
    }
    int ret = 0;
    for (size_t i = 0; i < img.n_layers && !ret; i++)
        ret = store_gc_mark_layer(r, &img.layers[i], mark, ctx, err);
    image_free(&img);
    return ret;
}

/* ---- editing ---- */

static json_t *fresh_config(void)
{
    return json_pack("{s:s, s:s, s:{s:[s]}, s:[{s:s, s:s}]}", "architecture", "amd64", "os",
                     "linux", "config", "Env",
                     "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     "history", "created_by", "imgfs import", "comment",
                     "imported from a rootfs tarball");
}

static json_t *config_section(json_t *root)
{
    json_t *c = json_object_get(root, "config");
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(root, "config", c);
    }
    return c;
}

/* The words of an instruction's argument: a JSON array (exec form) or, for `shell`, the shell form
 * wrapped in /bin/sh -c; without `shell`, whitespace-separated words. */
static json_t *words(const char *arg, bool shell, struct imgfs_err *err)
{
    while (*arg == ' ' || *arg == '\t')
        arg++;
    if (*arg == '[') {
        json_error_t je;
        json_t *a = json_loads(arg, 0, &je);
        bool ok = json_is_array(a);
        for (size_t i = 0; ok && i < json_array_size(a); i++)
            ok = json_is_string(json_array_get(a, i));
        if (ok)
            return a;
        json_decref(a);
        if (shell) /* Docker runs a malformed JSON form as a shell command */
            return json_pack("[s, s, s]", "/bin/sh", "-c", arg);
        err_set(err, EINVAL, "`%s` is not a JSON array of strings", arg);
        return NULL;
    }
    if (shell)
        return json_pack("[s, s, s]", "/bin/sh", "-c", arg);
    json_t *a = json_array();
    cleanup_free char *copy = xstrdup(arg);
    for (char *save, *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
        json_array_append_new(a, json_string(w));
    return a;
}

/* KEY=VALUE pairs (values may be double-quoted) or the old `KEY VALUE` form. */
static int key_values(const char *arg, json_t *(*apply)(json_t *target, const char *k,
                                                        const char *v),
                      json_t *target, struct imgfs_err *err)
{
    cleanup_free char *copy = xstrdup(arg);
    char *p = copy;
    while (*p == ' ')
        p++;
    char *eq = strchr(p, '='), *sp = strpbrk(p, " \t");
    if (!eq || (sp && sp < eq)) { /* KEY VALUE */
        if (!sp)
            return err_set(err, EINVAL, "`%s` needs a value", arg);
        *sp++ = 0;
        while (*sp == ' ' || *sp == '\t')
            sp++;
        apply(target, p, sp);
        return 0;
    }
    while (*p) {
        char *key = p;
        eq = strchr(p, '=');
        if (!eq)
            return err_set(err, EINVAL, "`%s`: expected KEY=VALUE", key);
        *eq = 0;
        char *v = eq + 1, *end;
        if (*v == '"') {
            v++;
            end = strchr(v, '"');
            if (!end)
                return err_set(err, EINVAL, "`%s`: unterminated quote", arg);
            *end++ = 0;
        } else {
            end = v + strcspn(v, " \t");
            if (*end)
                *end++ = 0;
        }
        apply(target, key, v);
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    return 0;
}

static json_t *set_env(json_t *env, const char *k, const char *v)
{
    size_t kl = strlen(k);
    for (size_t i = 0; i < json_array_size(env); i++) {
        const char *e = json_string_value(json_array_get(env, i));
        if (e && !strncmp(e, k, kl) && e[kl] == '=') {
            json_array_set_new(env, i, json_sprintf("%s=%s", k, v));
            return env;
        }
    }
    json_array_append_new(env, json_sprintf("%s=%s", k, v));
    return env;
}

static json_t *set_label(json_t *labels, const char *k, const char *v)
{
    json_object_set_new(labels, k, json_string(v));
    return labels;
}

static json_t *object_at(json_t *c, const char *key)
{
    json_t *o = json_object_get(c, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(c, key, o);
    }
    return o;
}

static int apply_change(json_t *root, const char *change, struct imgfs_err *err)
{
    json_t *c = config_section(root);
    char op[16] = {0};
    size_t n = strcspn(change, " \t");
    if (n >= sizeof op)
        return err_set(err, EINVAL, "unknown instruction in `%s`", change);
    for (size_t i = 0; i < n; i++)
        op[i] = (char)(change[i] >= 'a' && change[i] <= 'z' ? change[i] - 32 : change[i]);
    const char *arg = change + n;
    while (*arg == ' ' || *arg == '\t')
        arg++;
    if (!*arg)
        return err_set(err, EINVAL, "`%s` needs an argument", change);
    json_t *w;
    if (!strcmp(op, "CMD") || !strcmp(op, "ENTRYPOINT")) {
        if (!(w = words(arg, true, err)))
            return -1;
        json_object_set_new(c, op[0] == 'C' ? "Cmd" : "Entrypoint", w);
        if (op[0] == 'E') /* as in Docker: a new ENTRYPOINT resets an inherited CMD */
            json_object_del(c, "Cmd");
    } else if (!strcmp(op, "ENV")) {
        json_t *env = json_object_get(c, "Env");
        if (!json_is_array(env)) {
            env = json_array();
            json_object_set_new(c, "Env", env);
        }
        return key_values(arg, set_env, env, err);
    } else if (!strcmp(op, "LABEL")) {
        return key_values(arg, set_label, object_at(c, "Labels"), err);
    } else if (!strcmp(op, "EXPOSE")) {
        json_t *ports = object_at(c, "ExposedPorts");
        if (!(w = words(arg, false, err)))
            return -1;
        for (size_t i = 0; i < json_array_size(w); i++) {
            const char *p = json_string_value(json_array_get(w, i));
            char *end;
            unsigned long port = strtoul(p, &end, 10);
            if (end == p || port == 0 || port > 65535 ||
                (*end && strcmp(end, "/tcp") && strcmp(end, "/udp") && strcmp(end, "/sctp"))) {
                err_set(err, EINVAL, "EXPOSE: `%s` is not a PORT[/PROTOCOL]", p);
                json_decref(w);
                return -1;
            }
            cleanup_free char *key = xasprintf("%lu%s", port, *end ? end : "/tcp");
            json_object_set_new(ports, key, json_object());
        }
        json_decref(w);
    } else if (!strcmp(op, "VOLUME")) {
        json_t *vols = object_at(c, "Volumes");
        if (!(w = words(arg, false, err)))
            return -1;
        for (size_t i = 0; i < json_array_size(w); i++)
            json_object_set_new(vols, json_string_value(json_array_get(w, i)), json_object());
        json_decref(w);
    } else if (!strcmp(op, "WORKDIR") || !strcmp(op, "USER") || !strcmp(op, "STOPSIGNAL")) {
        const char *key = op[0] == 'W' ? "WorkingDir" : op[0] == 'U' ? "User" : "StopSignal";
        if (op[0] == 'W' && arg[0] != '/')
            return err_set(err, EINVAL, "WORKDIR `%s` must be an absolute path", arg);
        json_object_set_new(c, key, json_string(arg));
    } else {
        return err_set(err, EINVAL, "`%s`: only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, "
                       "USER, VOLUME and WORKDIR can be changed", op);
    }
    return 0;
}

/* The config to edit: `config_json` parsed, or a fresh one when NULL. */
static json_t *config_or_fresh(const char *config_json, size_t len, struct imgfs_err *err)
{
    if (!config_json)
        return fresh_config();
    json_error_t je;
    json_t *root = json_loadb(config_json, len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        err_set(err, EINVAL, "image config is not a JSON object: %s", je.text);
        return NULL;
    }
    return root;
}

/* Encode (compact, sorted keys: the digest depends on content only) and drop `root`. */
static int config_dump(json_t *root, char **out, size_t *out_len, struct imgfs_err *err)
{
    *out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!*out)
        return err_set(err, ENOMEM, "encoding the config");
    *out_len = strlen(*out);
    return 0;
}

int image_config_edit(const char *config_json, size_t len, char *const *changes, char **out,
                      size_t *out_len, struct imgfs_err *err)
{
    json_t *root = config_or_fresh(config_json, len, err);
    if (!root)
        return -1;
    for (char *const *c = changes; c && *c; c++) {
        if (apply_change(root, *c, err) < 0) {
            json_decref(root);
            return err_ctx(err, "--change `%s`", *c);
        }
    }
    return config_dump(root, out, out_len, err);
}

/* ---- making ---- */

static json_t *descriptor(const char *media_type, const struct digest *d, uint64_t size)
{
    char s[DIGEST_STR_SIZE];
    digest_str(d, s);
    return json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", s, "size",
                     (json_int_t)size);
}

int image_commit(struct store_batch *b, const char *config_json, size_t config_len,
                 const struct image_layer *layers, size_t n_layers, const char *name,
                 struct digest *out, struct imgfs_err *err)
{
    return image_commit_source(b, config_json, config_len, layers, n_layers, NULL, name, out,
                               err);
}

static char *json_dump_sorted(json_t *j, size_t *len)
{
    /* sorted keys, no whitespace: the same document always has the same digest */
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    if (s)
        *len = strlen(s);
    return s;
}

int image_documents(const char *config_json, size_t config_len, const struct image_layer *layers,
                    size_t n_layers, const struct image_source *source, struct image_documents *out,
                    struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *config;
    if (config_json) {
        json_error_t je;
        config = json_loadb(config_json, config_len, 0, &je);
        if (!config || !json_is_object(config)) {
            json_decref(config);
            return err_set(err, EINVAL, "image config is not a JSON object: %s (line %d)",
                           je.text, je.line);
        }
    } else {
        config = fresh_config();
    }
    json_t *diff_ids = json_array();
    for (size_t i = 0; i < n_layers; i++) {
        char s[DIGEST_STR_SIZE];
        digest_str(&layers[i].diff_id, s);
        json_array_append_new(diff_ids, json_string(s));
    }
    json_object_set_new(config, "rootfs", json_pack("{s:s, s:o}", "type", "layers", "diff_ids",
                                                    diff_ids));
    out->config = json_dump_sorted(config, &out->config_len);
    json_decref(config);
    if (!out->config)
        return err_set(err, ENOMEM, "encoding the config");
    digest_of(out->config, out->config_len, &out->config_digest);

    json_t *ls = json_array();
    for (size_t i = 0; i < n_layers; i++)
        json_array_append_new(ls, descriptor(MT_LAYER, &layers[i].diff_id, layers[i].size));
    json_t *manifest =
        json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType", MT_MANIFEST, "config",
                  descriptor(MT_CONFIG, &out->config_digest, out->config_len), "layers", ls);
    if (source) {
        char sm[DIGEST_STR_SIZE], sc[DIGEST_STR_SIZE], si[DIGEST_STR_SIZE];
        digest_str(&source->manifest, sm);
        digest_str(&source->config, sc);
        json_t *ann = json_pack("{s:s, s:s}", IMAGE_ANNOT_SOURCE_MANIFEST, sm,
                                IMAGE_ANNOT_SOURCE_CONFIG, sc);
        if (source->has_index) {
            digest_str(&source->index, si);
            json_object_set_new(ann, IMAGE_ANNOT_SOURCE_INDEX, json_string(si));
        }
        json_object_set_new(manifest, "annotations", ann);
    }
    out->manifest = json_dump_sorted(manifest, &out->manifest_len);
    json_decref(manifest);
    if (!out->manifest) {
        image_documents_free(out);
        return err_set(err, ENOMEM, "encoding the manifest");
    }
    digest_of(out->manifest, out->manifest_len, &out->manifest_digest);
    return 0;
}

void image_documents_free(struct image_documents *d)
{
    free(d->config);
    free(d->manifest);
    memset(d, 0, sizeof *d);
}

int image_commit_source(struct store_batch *b, const char *config_json, size_t config_len,
                        const struct image_layer *layers, size_t n_layers,
                        const struct image_source *source, const char *name, struct digest *out,
                        struct imgfs_err *err)
{
    struct image_documents docs;
    if (image_documents(config_json, config_len, layers, n_layers, source, &docs, err) < 0)
        return -1;
    int ret =
        store_batch_put(b, STORE_BLOB, &docs.config_digest, docs.config, docs.config_len, err);
    if (ret == 0)
        ret = store_batch_put(b, STORE_BLOB, &docs.manifest_digest, docs.manifest,
                              docs.manifest_len, err);
    struct digest manifest_digest = docs.manifest_digest;
    image_documents_free(&docs);
    if (ret < 0)
        return -1;

    /* the view is named by the manifest: one already stored is this one (a rebuild from the
     * build cache, the same image imported again) */
    if (!store_batch_has(b, STORE_VIEW, &manifest_digest)) {
        struct layer_table *tables = xcalloc(n_layers + 1, sizeof *tables);
        for (size_t i = 0; i < n_layers; i++)
            tables[i] = (struct layer_table){.data = layers[i].table, .len = layers[i].table_len};
        struct buf view = {0};
        ret = view_build(tables, n_layers, &view, err);
        free(tables);
        if (ret == 0)
            ret = store_batch_put(b, STORE_VIEW, &manifest_digest, view.data, view.len, err);
        buf_free(&view);
        if (ret < 0)
            return -1;
    }
    if (name) {
        store_batch_tag(b, name, &manifest_digest);
    } else {
        char s[DIGEST_STR_SIZE];
        digest_str(&manifest_digest, s);
        store_batch_tag(b, s, &manifest_digest);
    }
    *out = manifest_digest;
    return 0;
}

int image_commit_on(struct store_batch *b, struct store_read *r, const struct image *parent,
                    const char *config_json, size_t config_len, const struct image_layer *layers,
                    size_t n_layers, const char *name, struct digest *out, struct imgfs_err *err)
{
    size_t n_parent = parent ? parent->n_layers : 0;
    struct image_layer *all = xcalloc(n_parent + n_layers + 1, sizeof *all);
    for (size_t i = 0; i < n_parent; i++) {
        const void *table;
        size_t len;
        if (store_get(r, STORE_LAYER, &parent->layers[i], &table, &len, err) < 0) {
            free(all);
            char s[DIGEST_STR_SIZE];
            digest_str(&parent->layers[i], s);
            return err_ctx(err, "layer %s of the parent image", s);
        }
        all[i] = (struct image_layer){.diff_id = parent->layers[i],
                                      .size = parent->layer_sizes[i],
                                      .table = table,
                                      .table_len = len};
    }
    for (size_t i = 0; i < n_layers; i++)
        all[n_parent + i] = layers[i];
    if (!config_json && parent) {
        config_json = parent->config_json;
        config_len = parent->config_len;
    }
    int ret = image_commit(b, config_json, config_len, all, n_parent + n_layers, name, out, err);
    free(all);
    return ret;
}

int image_config_add_history(const char *config_json, size_t len, const struct image_history *h,
                             char **out, size_t *out_len, struct imgfs_err *err)
{
    json_t *root = config_or_fresh(config_json, len, err);
    if (!root)
        return -1;
    json_t *hist = json_object_get(root, "history");
    if (!json_is_array(hist)) {
        hist = json_array();
        json_object_set_new(root, "history", hist);
    }
    json_t *e = json_object();
    char when[64] = "";
    if (h->created >= 0) {
        time_t t = (time_t)h->created;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(e, "created", json_string(when));
        json_object_set_new(root, "created", json_string(when));
    }
    if (h->created_by)
        json_object_set_new(e, "created_by", json_string(h->created_by));
    if (h->comment && *h->comment)
        json_object_set_new(e, "comment", json_string(h->comment));
    if (h->author && *h->author) {
        json_object_set_new(e, "author", json_string(h->author));
        json_object_set_new(root, "author", json_string(h->author));
    }
    if (h->empty_layer)
        json_object_set_new(e, "empty_layer", json_true());
    json_array_append_new(hist, e);
    return config_dump(root, out, out_len, err);
}

int image_check_view(struct store_read *r, const struct image *img, struct imgfs_err *err)
{
    const void *stored;
    size_t stored_len;
    if (store_get(r, STORE_VIEW, &img->digest, &stored, &stored_len, err) < 0)
        return err_ctx(err, "its view");
    void *copy;
    struct view v;
    if (view_open_copy(stored, stored_len, &copy, &v, err) < 0)
        return err_ctx(err, "its view does not open");
    free(copy);
    struct layer_table *tables = xcalloc(img->n_layers + 1, sizeof *tables);
    int ret = 0;
    for (size_t i = 0; i < img->n_layers && ret == 0; i++) {
        char hex[DIGEST_STR_SIZE];
        digest_str(&img->layers[i], hex);
        if (store_get(r, STORE_LAYER, &img->layers[i], &tables[i].data, &tables[i].len, err) < 0)
            ret = err_ctx(err, "layer %s", hex);
    }
    struct buf want = {0};
    if (ret == 0 && view_build(tables, img->n_layers, &want, err) < 0)
        ret = err_ctx(err, "building the view from its layers");
    if (ret == 0 && (want.len != stored_len || memcmp(want.data, stored, stored_len))) {
        size_t at = 0;
        while (at < want.len && at < stored_len && want.data[at] == ((const uint8_t *)stored)[at])
            at++;
        ret = err_set(err, EIO, "its view differs from the view its layers make (first at byte %zu "
                      "of %zu)", at, stored_len);
    }
    buf_free(&want);
    free(tables);
    return ret;
}
