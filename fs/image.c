#include "image.h"
#include "layer.h"
#include "store.h"
#include "view.h"

#include <jansson.h>
#include <string.h>

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
    json_decref(m);
    if (blob_get(r, &out->config_digest, &out->config_json, &out->config_len, err) < 0 ||
        image_config_parse(out->config_json, out->config_len, &out->config, err) < 0) {
        image_free(out);
        return err_ctx(err, "loading the config of image sha256:%.12s", hex);
    }
    return 0;
}

int image_load_ref(struct store_read *r, const char *ref, struct image *out,
                   struct imgfs_err *err)
{
    struct digest d;
    if (store_image_resolve(r, ref, &d, err) < 0)
        return -1;
    return image_load(r, &d, out, err);
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

int store_gc_mark_image(struct store_read *r, const struct digest *manifest,
                        void (*mark)(void *ctx, enum store_db db, const struct digest *d),
                        void *ctx, struct imgfs_err *err)
{
    struct image img;
    struct imgfs_err ignored;
    /* a lease on an image whose records are already gone has nothing left to keep */
    if (image_load(r, manifest, &img, &ignored) < 0)
        return 0;
    mark(ctx, STORE_BLOB, manifest);
    mark(ctx, STORE_BLOB, &img.config_digest);
    mark(ctx, STORE_VIEW, manifest);
    int ret = 0;
    for (size_t i = 0; i < img.n_layers && !ret; i++) {
        mark(ctx, STORE_LAYER, &img.layers[i]);
        const void *table;
        size_t len;
        if (store_get(r, STORE_LAYER, &img.layers[i], &table, &len, &ignored) < 0)
            continue;
        struct layer_reader rd;
        if (layer_reader_init(&rd, table, len, err) < 0) {
            ret = -1;
            break;
        }
        struct layer_entry e;
        int rc;
        while ((rc = layer_next(&rd, &e, err)) > 0)
            for (uint32_t k = 0; k < e.n_extents; k++)
                mark(ctx, STORE_CHUNK, &e.extents[k].chunk);
        layer_reader_free(&rd);
        if (rc < 0)
            ret = -1;
    }
    image_free(&img);
    return ret;
}

/* ---- making ---- */

static json_t *descriptor(const char *media_type, const struct digest *d, uint64_t size)
{
    char s[DIGEST_STR_SIZE];
    digest_str(d, s);
    return json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", s, "size",
                     (json_int_t)size);
}

static int put_json(struct store_batch *b, json_t *j, struct digest *d, size_t *len,
                    struct imgfs_err *err)
{
    /* sorted keys, no whitespace: the same document always has the same digest */
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        return err_set(err, ENOMEM, "encoding JSON");
    *len = strlen(s);
    digest_of(s, *len, d);
    int rc = store_batch_put(b, STORE_BLOB, d, s, *len, err);
    free(s);
    return rc;
}

int image_commit(struct store_batch *b, const char *config_json, size_t config_len,
                 const struct image_layer *layers, size_t n_layers, const char *name,
                 struct digest *out, struct imgfs_err *err)
{
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
        config = json_pack("{s:s, s:s, s:{s:[s]}, s:[{s:s, s:s}]}", "architecture", "amd64", "os",
                           "linux", "config", "Env",
                           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "history", "created_by", "imgfs import", "comment",
                           "imported from a rootfs tarball");
    }
    json_t *diff_ids = json_array();
    for (size_t i = 0; i < n_layers; i++) {
        char s[DIGEST_STR_SIZE];
        digest_str(&layers[i].diff_id, s);
        json_array_append_new(diff_ids, json_string(s));
    }
    json_object_set_new(config, "rootfs", json_pack("{s:s, s:o}", "type", "layers", "diff_ids",
                                                    diff_ids));
    struct digest config_digest, manifest_digest;
    size_t config_size, manifest_size;
    int ret = put_json(b, config, &config_digest, &config_size, err);
    json_decref(config);
    if (ret < 0)
        return -1;

    json_t *ls = json_array();
    for (size_t i = 0; i < n_layers; i++)
        json_array_append_new(ls, descriptor(MT_LAYER, &layers[i].diff_id, layers[i].size));
    json_t *manifest = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
                                 MT_MANIFEST, "config",
                                 descriptor(MT_CONFIG, &config_digest, config_size), "layers", ls);
    ret = put_json(b, manifest, &manifest_digest, &manifest_size, err);
    json_decref(manifest);
    if (ret < 0)
        return -1;

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
