/* build.c — the executor: stages, the metadata instructions, the build cache and the commit.
 * COPY/ADD are in copy.c, RUN in run.c; the language (parsing, expansion) in dockerfile.h. */
#include "../fs/image.h"
#include "../fs/layer.h"
#include "../fs/lazy.h"
#include "../fs/pull.h"
#include "../fs/reference.h"
#include "../fs/store.h"
#include "builder.h"
#include "dockerfile.h"
#include "internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* BuildKit's automatic platform args (amd64 only: the runner runs what the host runs). */
static const char *const platform_args[] = {
    "TARGETPLATFORM=linux/amd64", "TARGETOS=linux", "TARGETARCH=amd64", "TARGETVARIANT=",
    "BUILDPLATFORM=linux/amd64",  "BUILDOS=linux",  "BUILDARCH=amd64",  "BUILDVARIANT=",
};

/* ---- small helpers ---- */

void key_str(struct digest_ctx *c, const char *s)
{
    uint64_t n = s ? strlen(s) : UINT64_MAX;
    digest_ctx_update(c, &n, sizeof n);
    if (s)
        digest_ctx_update(c, s, strlen(s));
}

void key_digest(struct digest_ctx *c, const struct digest *d)
{
    digest_ctx_update(c, d->b, DIGEST_LEN);
}

/* "K=V" list: the value of K (NULL when absent; "" when "K" alone or "K="); last wins. */
static const char *kv_get(char *const *v, const char *k, bool *present)
{
    size_t kl = strlen(k);
    const char *val = NULL;
    bool found = false;
    for (size_t i = 0; v && v[i]; i++) {
        if (strncmp(v[i], k, kl))
            continue;
        if (v[i][kl] == '=') {
            val = v[i] + kl + 1;
            found = true;
        } else if (!v[i][kl]) {
            val = NULL;
            found = true;
        }
    }
    if (present)
        *present = found;
    return val;
}

/* Replace or add K in a "K=V" list. */
static char **kv_set(char **v, const char *k, const char *val)
{
    size_t kl = strlen(k);
    char *entry = val ? xasprintf("%s=%s", k, val) : xstrdup(k);
    for (size_t i = 0; v && v[i]; i++) {
        if (!strncmp(v[i], k, kl) && (v[i][kl] == '=' || !v[i][kl])) {
            free(v[i]);
            v[i] = entry;
            return v;
        }
    }
    size_t n = strv_len(v);
    v = xrealloc(v, (n + 2) * sizeof *v);
    v[n] = entry;
    v[n + 1] = NULL;
    return v;
}

static char *lower(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static json_t *cfg_section(json_t *config)
{
    json_t *c = json_object_get(config, "config");
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(config, "config", c);
    }
    return c;
}

static char *time_str(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return xstrdup(buf);
}

/* ---- progress ---- */

static int step_begin(struct build *b, struct stage *sg, size_t pos, const char *text)
{
    pthread_mutex_lock(&b->mu);
    int step = ++b->step;
    sg->step = step;
    pthread_mutex_unlock(&b->mu);
    const struct build_progress *p = b->o->progress;
    if (p && p->step_start) {
        cleanup_free char *name = NULL;
        if (sg->name)
            name = xasprintf("[%s %zu/%d] %s", sg->name, pos, sg->n_steps, text);
        else
            name = xasprintf("[stage-%zu %zu/%d] %s", sg->index, pos, sg->n_steps, text);
        if (b->n_stages == 1) {
            free(name);
            name = xasprintf("[%zu/%d] %s", pos, sg->n_steps, text);
        }
        p->step_start(p->ctx, step, name);
    }
    return step;
}

static void step_end(struct build *b, int step, bool cached, struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
    pthread_mutex_lock(&b->mu);
    b->res->steps++;
    if (cached)
        b->res->cached++;
    pthread_mutex_unlock(&b->mu);
    const struct build_progress *p = b->o->progress;
    if (p && p->step_done)
        p->step_done(p->ctx, step, cached, secs);
}

static void note(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct build *b, const char *fmt, ...)
{
    const struct build_progress *p = b->o->progress;
    if (!p || !p->note)
        return;
    va_list ap;
    va_start(ap, fmt);
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->note(p->ctx, msg);
}

/* ---- expansion ---- */

char **state_expand_env(const struct bstate *st)
{
    char **env = NULL;
    for (size_t i = 0; st->args && st->args[i]; i++)
        if (strchr(st->args[i], '='))
            env = strv_append(env, st->args[i]);
    json_t *e = json_object_get(cfg_section(st->config), "Env");
    for (size_t i = 0; i < json_array_size(e); i++) {
        const char *s = json_string_value(json_array_get(e, i));
        if (s)
            env = strv_append(env, s);
    }
    return env;
}

static void mark_used(struct build *b, const struct df_vars *used)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < used->n; i++)
        for (size_t k = 0; b->build_args && b->build_args[k]; k++) {
            size_t n = strcspn(b->build_args[k], "=");
            if (strlen(used->names[i]) == n && !strncmp(used->names[i], b->build_args[k], n))
                b->build_arg_used[k] = true;
        }
    pthread_mutex_unlock(&b->mu);
}

static int expand_in(struct build *b, char **env, const struct df_instruction *ins,
                     const char *word, bool split, char **out, char ***words, size_t *n,
                     struct imgfs_err *err)
{
    struct df_vars used = {0};
    int rc =
        split ? df_expand_words(word, b->file->escape, 0, df_lookup_envv, env, words, n, &used, err)
              : df_expand_word(word, b->file->escape, 0, df_lookup_envv, env, out, &used, err);
    if (rc < 0) {
        struct imgfs_err inner = *err;
        return df_error_at(b->file, ins->start_line, ins->end_line, err, EINVAL, "%s", inner.msg);
    }
    mark_used(b, &used);
    df_vars_free(&used);
    return 0;
}

int build_expand(struct build *b, const struct bstate *st, const struct df_instruction *ins,
                 const char *word, char **out, struct imgfs_err *err)
{
    char **env = state_expand_env(st);
    int rc = expand_in(b, env, ins, word, false, out, NULL, NULL, err);
    strv_free(env);
    return rc;
}

int build_expand_words(struct build *b, const struct bstate *st, const struct df_instruction *ins,
                       const char *word, char ***out, size_t *n, struct imgfs_err *err)
{
    char **env = state_expand_env(st);
    int rc = expand_in(b, env, ins, word, true, NULL, out, n, err);
    strv_free(env);
    return rc;
}

/* ---- states ---- */

static void state_drop_view(struct bstate *st)
{
    free(st->view_copy);
    st->view_copy = NULL;
    st->have_view = false;
}

static void state_free(struct bstate *st)
{
    json_decref(st->config);
    free(st->layers);
    free(st->sizes);
    strv_free(st->args);
    state_drop_view(st);
    memset(st, 0, sizeof *st);
}

static void state_copy(struct bstate *dst, const struct bstate *src)
{
    memset(dst, 0, sizeof *dst);
    dst->config = json_deep_copy(src->config);
    dst->n_layers = src->n_layers;
    dst->layers = xcalloc(src->n_layers + 1, sizeof *dst->layers);
    dst->sizes = xcalloc(src->n_layers + 1, sizeof *dst->sizes);
    memcpy(dst->layers, src->layers, src->n_layers * sizeof *dst->layers);
    memcpy(dst->sizes, src->sizes, src->n_layers * sizeof *dst->sizes);
    dst->chain = src->chain;
    dst->time = src->time;
    dst->lower_image = src->lower_image;
    dst->lower_layers = src->lower_layers;
    dst->has_lower_image = src->has_lower_image;
}

static void state_add_layer(struct bstate *st, const struct digest *layer, uint64_t size)
{
    st->has_image = false;
    st->layers = xrealloc(st->layers, (st->n_layers + 1) * sizeof *st->layers);
    st->sizes = xrealloc(st->sizes, (st->n_layers + 1) * sizeof *st->sizes);
    st->layers[st->n_layers] = *layer;
    st->sizes[st->n_layers++] = size;
    state_drop_view(st);
}

void state_history(struct bstate *st, const char *created_by, bool empty_layer, int64_t when)
{
    json_t *h = json_object_get(st->config, "history");
    if (!json_is_array(h)) {
        h = json_array();
        json_object_set_new(st->config, "history", h);
    }
    cleanup_free char *t = time_str(when);
    json_t *e = json_pack("{s:s, s:s, s:s}", "created", t, "created_by", created_by, "comment",
                          "buildkit.dockerfile.v0");
    if (empty_layer)
        json_object_set_new(e, "empty_layer", json_true());
    json_array_append_new(h, e);
    json_object_set_new(st->config, "created", json_string(t));
}

/* The tables of a state's first n layers, read in `r` (valid while it is). */
static int state_tables(struct bstate *st, size_t n, struct store_read *r, struct image_layer **out,
                        struct imgfs_err *err)
{
    struct image_layer *ls = xcalloc(n + 1, sizeof *ls);
    for (size_t i = 0; i < n; i++) {
        const void *t;
        size_t len;
        if (store_get(r, STORE_LAYER, &st->layers[i], &t, &len, err) < 0) {
            free(ls);
            return -1;
        }
        ls[i] = (struct image_layer){
            .diff_id = st->layers[i], .size = st->sizes[i], .table = t, .table_len = len};
    }
    *out = ls;
    return 0;
}

int state_view(struct build *b, struct bstate *st, struct store_read *r, const struct view **v,
               struct imgfs_err *err)
{
    (void)b;
    if (!st->have_view && st->has_image) {
        /* still the base image: its stored view is this tree (a copy, no merge) */
        const void *data;
        size_t len;
        struct imgfs_err ignored;
        if (store_get(r, STORE_VIEW, &st->image, &data, &len, &ignored) == 0 &&
            view_open_copy(data, len, &st->view_copy, &st->view, err) == 0)
            st->have_view = true;
    }
    if (!st->have_view) {
        struct image_layer *ls;
        if (state_tables(st, st->n_layers, r, &ls, err) < 0)
            return -1;
        struct layer_table *t = xcalloc(st->n_layers + 1, sizeof *t);
        for (size_t i = 0; i < st->n_layers; i++)
            t[i] = (struct layer_table){.data = ls[i].table, .len = ls[i].table_len};
        struct buf out = {0};
        int rc = view_build(t, st->n_layers, &out, err);
        free(t);
        free(ls);
        if (rc < 0 || view_open(out.data, out.len, &st->view, err) < 0) {
            buf_free(&out);
            return -1;
        }
        st->view_copy = out.data;
        st->have_view = true;
    }
    *v = &st->view;
    return 0;
}

static int name_is(void *ctx, const struct store_image_entry *e)
{
    return !strcmp(e->name, ctx);
}

static int commit_layers(struct build *b, struct bstate *st, size_t n_layers, char *const *names,
                         struct digest *out, struct imgfs_err *err)
{
    struct store_batch *bt = NULL;
    struct store_read *r = NULL;
    struct image_layer *ls = NULL;
    char *config = NULL;
    int ret = -1;
    if (store_batch_begin(b->s, &bt, err) < 0 || store_read_begin(b->s, &r, err) < 0)
        goto out;
    if (state_tables(st, n_layers, r, &ls, err) < 0)
        goto out;
    config = json_dumps(st->config, JSON_COMPACT | JSON_SORT_KEYS);
    if (image_commit(bt, config, strlen(config), ls, n_layers, names && names[0] ? names[0] : NULL,
                     out, err) < 0)
        goto out;
    if (names) {
        for (size_t i = 1; names[i]; i++)
            store_batch_tag(bt, names[i], out);
        /* a rebuild from the cache that changes nothing writes nothing (no sync either) */
        bool same = !store_batch_wrote(bt);
        for (size_t i = 0; same && names[i]; i++) {
            struct digest had;
            struct imgfs_err ignored;
            cleanup_free char *n = store_name_normalize(names[i]);
            same = store_image_foreach(r, name_is, n) &&
                   store_image_resolve(r, n, &had, &ignored) == 0 && digest_equal(&had, out);
        }
        if (same) {
            ret = 0;
            goto out;
        }
    } else {
        /* image_commit names an unnamed image by its digest; an intermediate image must stay
         * invisible (the build's pin keeps it from gc), unless it already had that name */
        if (!store_batch_wrote(bt)) {
            /* built before (and still whole): its records are there, its names as they were */
            ret = 0;
            goto out;
        }
        char ds[DIGEST_STR_SIZE];
        digest_str(out, ds);
        if (!store_image_foreach(r, name_is, ds))
            store_batch_untag(bt, ds);
    }
    store_read_end(r);
    r = NULL;
    ret = store_batch_commit(bt, err);
    bt = NULL;
out:
    if (r)
        store_read_end(r);
    store_batch_abort(bt);
    free(ls);
    free(config);
    return ret;
}

int state_commit(struct build *b, struct bstate *st, char *const *names, struct digest *out,
                 struct imgfs_err *err)
{
    return commit_layers(b, st, st->n_layers, names, out, err);
}

int state_commit_layers(struct build *b, struct bstate *st, size_t n, struct digest *out,
                        struct imgfs_err *err)
{
    return commit_layers(b, st, n, NULL, out, err);
}

/* ---- the cache ---- */

int cache_lookup(struct build *b, struct bstate *st, const struct digest *key, bool *hit,
                 struct imgfs_err *err)
{
    *hit = false;
    if (b->o->no_cache)
        return 0;
    struct store_read *r;
    if (store_read_begin(b->s, &r, err) < 0)
        return -1;
    const void *data;
    size_t len;
    struct imgfs_err ignored;
    struct store_cache_value v;
    if (store_get(r, STORE_CACHE, key, &data, &len, &ignored) == 0 && len == sizeof v) {
        memcpy(&v, data, sizeof v);
        /* the layer must still be whole: its table and every chunk */
        bool ok = true;
        if (!(v.flags & STORE_CACHE_EMPTY_LAYER)) {
            const void *t;
            size_t tl;
            ok = store_get(r, STORE_LAYER, &v.layer, &t, &tl, &ignored) == 0;
        }
        if (ok) {
            if (!(v.flags & STORE_CACHE_EMPTY_LAYER))
                state_add_layer(st, &v.layer, v.size);
            st->time = v.created;
            *hit = true;
            st->step_cached = true;
            st->step_empty = v.flags & STORE_CACHE_EMPTY_LAYER;
        }
    }
    store_read_end(r);
    st->chain = *key;
    return 0;
}

int cache_record(struct build *b, struct store_batch *bt, struct bstate *st,
                 const struct digest *key, const struct digest *layer, uint64_t size,
                 struct imgfs_err *err)
{
    struct store_cache_value v = {.created = b->now, .size = size};
    if (layer)
        v.layer = *layer;
    else
        v.flags = STORE_CACHE_EMPTY_LAYER;
    if (store_batch_put(bt, STORE_CACHE, key, &v, sizeof v, err) < 0)
        return -1;
    if (layer)
        state_add_layer(st, layer, size);
    st->time = b->now;
    st->chain = *key;
    return 0;
}

/* ---- stages ---- */

struct stage *build_find_stage(struct build *b, const char *ref)
{
    cleanup_free char *l = lower(ref);
    for (size_t i = 0; i < b->n_stages; i++)
        if (b->stages[i].name && !strcmp(b->stages[i].name, l))
            return &b->stages[i];
    char *end;
    unsigned long idx = strtoul(ref, &end, 10);
    if (*ref && !*end && idx < b->n_stages)
        return &b->stages[idx];
    return NULL;
}

/* Expand a FROM line's words with the meta args (ARGs before the first FROM). */
static int expand_meta(struct build *b, const struct df_instruction *ins, const char *word,
                       char **out, struct imgfs_err *err)
{
    char **env = NULL;
    for (size_t i = 0; i < sizeof platform_args / sizeof *platform_args; i++)
        env = strv_append(env, platform_args[i]);
    for (size_t i = 0; b->meta_args && b->meta_args[i]; i++)
        if (strchr(b->meta_args[i], '='))
            env = strv_append(env, b->meta_args[i]);
    int rc = expand_in(b, env, ins, word, false, out, NULL, NULL, err);
    strv_free(env);
    return rc;
}

/* An ARG: its value is the build arg, else its default (expanded), else (inside a stage) the meta
 * arg of that name. Returns "K=V" or "K" (declared, no value). */
static int arg_value(struct build *b, const struct bstate *st, const struct df_instruction *ins,
                     const struct df_kv *kv, bool meta, char **out, struct imgfs_err *err)
{
    for (size_t k = 0; b->build_args && b->build_args[k]; k++) {
        size_t n = strcspn(b->build_args[k], "=");
        if (strlen(kv->key) == n && !strncmp(kv->key, b->build_args[k], n)) {
            pthread_mutex_lock(&b->mu);
            b->build_arg_used[k] = true;
            pthread_mutex_unlock(&b->mu);
            *out = xstrdup(b->build_args[k]);
            return 0;
        }
    }
    if (kv->value) {
        cleanup_free char *v = NULL;
        if (meta ? expand_meta(b, ins, kv->value, &v, err) < 0
                 : build_expand(b, st, ins, kv->value, &v, err) < 0)
            return -1;
        *out = xasprintf("%s=%s", kv->key, v);
        return 0;
    }
    bool present;
    const char *mv = NULL;
    if (!meta) {
        mv = kv_get(b->meta_args, kv->key, &present);
        if (!present) {
            for (size_t i = 0; i < sizeof platform_args / sizeof *platform_args; i++) {
                size_t n = strcspn(platform_args[i], "=");
                if (strlen(kv->key) == n && !strncmp(platform_args[i], kv->key, n)) {
                    *out = xstrdup(platform_args[i]);
                    return 0;
                }
            }
        }
    }
    *out = mv ? xasprintf("%s=%s", kv->key, mv) : xstrdup(kv->key);
    return 0;
}

static int split_stages(struct build *b, struct imgfs_err *err)
{
    const struct df_file *f = b->file;
    size_t i = 0;
    for (; i < f->n_instructions && f->instructions[i].keyword == DF_ARG; i++) {
        const struct df_instruction *ins = &f->instructions[i];
        for (size_t k = 0; k < ins->n_kvs; k++) {
            cleanup_free char *v = NULL;
            if (arg_value(b, NULL, ins, &ins->kvs[k], true, &v, err) < 0)
                return -1;
            size_t kl = strcspn(v, "=");
            cleanup_free char *key = strndup(v, kl);
            b->meta_args = kv_set(b->meta_args, key, v[kl] ? v + kl + 1 : NULL);
        }
    }
    for (; i < f->n_instructions; i++) {
        const struct df_instruction *ins = &f->instructions[i];
        if (ins->keyword != DF_FROM) {
            if (!b->n_stages)
                return df_error_at(f, ins->start_line, ins->end_line, err, EINVAL,
                                   "no build stage in current context");
            b->stages[b->n_stages - 1].end = i + 1;
            if (ins->keyword != DF_ARG || true)
                b->stages[b->n_stages - 1].n_steps++;
            continue;
        }
        b->stages = xrealloc(b->stages, (b->n_stages + 1) * sizeof *b->stages);
        struct stage *sg = &b->stages[b->n_stages];
        memset(sg, 0, sizeof *sg);
        sg->index = b->n_stages++;
        sg->from = ins;
        sg->first = sg->end = i + 1;
        sg->base_stage = -1;
        sg->n_steps = 1;
        if (ins->n_args < 1 || (ins->n_args != 1 && ins->n_args != 3))
            return df_error_at(f, ins->start_line, ins->end_line, err, EINVAL,
                               "FROM requires either one or three arguments");
        if (ins->n_args == 3) {
            if (strcasecmp(ins->args[1].s, "AS"))
                return df_error_at(f, ins->start_line, ins->end_line, err, EINVAL,
                                   "FROM requires either one or three arguments");
            sg->name = lower(ins->args[2].s);
            for (size_t k = 0; k + 1 < b->n_stages; k++)
                if (b->stages[k].name && !strcmp(b->stages[k].name, sg->name))
                    return df_error_at(f, ins->start_line, ins->end_line, err, EINVAL,
                                       "duplicate stage name \"%s\"", sg->name);
        }
        if (expand_meta(b, ins, ins->args[0].s, &sg->base, err) < 0)
            return -1;
        if (!*sg->base)
            return df_error_at(f, ins->start_line, ins->end_line, err, EINVAL,
                               "base name (%s) should not be blank", ins->args[0].s);
        const struct df_flag *pf = df_flag_find(ins, "platform");
        if (pf && pf->value) {
            cleanup_free char *p = NULL;
            if (expand_meta(b, ins, pf->value, &p, err) < 0)
                return -1;
            if (strcmp(p, "linux/amd64") && strcmp(p, "linux/x86_64") && strcmp(p, "amd64"))
                return df_error_at(f, ins->start_line, ins->end_line, err, EINVAL,
                                   "platform %s is not supported: imgfs builds linux/amd64 only",
                                   p);
        }
    }
    if (!b->n_stages)
        return err_set(err, EINVAL, "%s: no build stage (no FROM)", f->name);
    /* FROM naming an earlier stage */
    for (size_t k = 0; k < b->n_stages; k++) {
        struct stage *sg = &b->stages[k];
        cleanup_free char *l = lower(sg->base);
        for (size_t j = 0; j < k; j++)
            if (b->stages[j].name && !strcmp(b->stages[j].name, l))
                sg->base_stage = (int)j;
    }
    return 0;
}

/* ---- the metadata instructions ---- */

static int fail_at(struct build *b, const struct df_instruction *ins, struct imgfs_err *err,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_at(struct build *b, const struct df_instruction *ins, struct imgfs_err *err,
                   const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return df_error_at(b->file, ins->start_line, ins->end_line, err, EINVAL, "%s", msg);
}

/* Exec form as is; shell form wrapped in the stage's SHELL. */
static json_t *command_words(struct bstate *st, const struct df_instruction *ins, size_t from)
{
    if (ins->json) {
        json_t *a = json_array();
        for (size_t i = from; i < ins->n_args; i++)
            json_array_append_new(a, json_stringn(ins->args[i].s, ins->args[i].len));
        return a;
    }
    json_t *a = json_array();
    json_t *shell = json_object_get(cfg_section(st->config), "Shell");
    if (json_is_array(shell) && json_array_size(shell)) {
        for (size_t i = 0; i < json_array_size(shell); i++)
            json_array_append(a, json_array_get(shell, i));
    } else {
        json_array_append_new(a, json_string("/bin/sh"));
        json_array_append_new(a, json_string("-c"));
    }
    if (ins->n_args > from)
        json_array_append_new(a, json_string(ins->args[from].s));
    return a;
}

/* Docker's rendering of a word list in history: ["a" "b"] (Go's %q of a []string). */
static char *words_repr(json_t *a)
{
    struct buf o = {0};
    buf_append(&o, "[", 1);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (i)
            buf_append(&o, " ", 1);
        buf_append(&o, "\"", 1);
        for (const char *p = s; p && *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_append(&o, "\\", 1);
            buf_append(&o, p, 1);
        }
        buf_append(&o, "\"", 1);
    }
    buf_append(&o, "]", 2);
    return (char *)o.data;
}

static void env_set(json_t *cfg, const char *k, const char *v)
{
    json_t *env = json_object_get(cfg, "Env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(cfg, "Env", env);
    }
    size_t kl = strlen(k);
    for (size_t i = 0; i < json_array_size(env); i++) {
        const char *e = json_string_value(json_array_get(env, i));
        if (e && !strncmp(e, k, kl) && e[kl] == '=') {
            json_array_set_new(env, i, json_sprintf("%s=%s", k, v));
            return;
        }
    }
    json_array_append_new(env, json_sprintf("%s=%s", k, v));
}

static json_t *obj_field(json_t *cfg, const char *name)
{
    json_t *o = json_object_get(cfg, name);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(cfg, name, o);
    }
    return o;
}

static int parse_duration(const char *s, int64_t *ns)
{
    /* Go's time.ParseDuration for the forms HEALTHCHECK takes: 30s, 1m30s, 500ms, 1h */
    int64_t total = 0;
    const char *p = s;
    if (!*p)
        return -1;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p)
            return -1;
        int64_t unit;
        if (!strncmp(end, "ns", 2))
            unit = 1, end += 2;
        else if (!strncmp(end, "us", 2))
            unit = 1000, end += 2;
        else if (!strncmp(end, "ms", 2))
            unit = 1000000, end += 2;
        else if (*end == 's')
            unit = 1000000000LL, end++;
        else if (*end == 'm')
            unit = 60 * 1000000000LL, end++;
        else if (*end == 'h')
            unit = 3600 * 1000000000LL, end++;
        else if (v == 0 && !*end)
            unit = 1;
        else
            return -1;
        total += (int64_t)(v * (double)unit);
        p = end;
    }
    *ns = total;
    return 0;
}

static int do_healthcheck(struct build *b, struct bstate *st, const struct df_instruction *ins,
                          struct imgfs_err *err)
{
    json_t *cfg = cfg_section(st->config);
    if (ins->n_args < 1)
        return fail_at(b, ins, err, "HEALTHCHECK requires an argument");
    if (!strcasecmp(ins->args[0].s, "NONE")) {
        json_object_set_new(cfg, "Healthcheck", json_pack("{s:[s]}", "Test", "NONE"));
        return 0;
    }
    json_t *hc = json_object();
    json_t *cmd = command_words(st, ins, 1);
    json_t *test = json_array();
    json_array_append_new(test, json_string(ins->json ? "CMD" : "CMD-SHELL"));
    if (ins->json) {
        json_array_extend(test, cmd);
    } else {
        json_array_append(test, json_array_get(cmd, json_array_size(cmd) - 1));
    }
    json_decref(cmd);
    json_object_set_new(hc, "Test", test);
    static const char *const durations[][2] = {{"interval", "Interval"},
                                               {"timeout", "Timeout"},
                                               {"start-period", "StartPeriod"},
                                               {"start-interval", "StartInterval"}};
    for (size_t i = 0; i < 4; i++) {
        const struct df_flag *f = df_flag_find(ins, durations[i][0]);
        if (!f || !f->value)
            continue;
        int64_t ns;
        if (parse_duration(f->value, &ns) < 0)
            return fail_at(b, ins, err, "invalid --%s duration `%s`", durations[i][0], f->value);
        json_object_set_new(hc, durations[i][1], json_integer(ns));
    }
    const struct df_flag *r = df_flag_find(ins, "retries");
    if (r && r->value) {
        char *end;
        long n = strtol(r->value, &end, 10);
        if (*end || n < 0)
            return fail_at(b, ins, err, "invalid --retries value `%s`", r->value);
        json_object_set_new(hc, "Retries", json_integer(n));
    }
    json_object_set_new(cfg, "Healthcheck", hc);
    return 0;
}

static int do_expose(struct build *b, struct bstate *st, const struct df_instruction *ins,
                     struct imgfs_err *err, struct buf *hist)
{
    json_t *ports = obj_field(cfg_section(st->config), "ExposedPorts");
    for (size_t i = 0; i < ins->n_args; i++) {
        char **words = NULL;
        size_t n = 0;
        if (build_expand_words(b, st, ins, ins->args[i].s, &words, &n, err) < 0)
            return -1;
        for (size_t k = 0; k < n; k++) {
            cleanup_free char *w = lower(words[k]);
            char *proto = strchr(w, '/');
            if (proto)
                *proto++ = 0;
            else
                proto = "tcp";
            char *dash = strchr(w, '-');
            char *e1, *e2 = NULL;
            unsigned long lo = strtoul(w, &e1, 10), hi = lo;
            if (dash)
                hi = strtoul(dash + 1, &e2, 10);
            if (!*w || (dash ? e1 != dash || *e2 : *e1 != 0) || hi < lo || hi > 65535 ||
                (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp"))) {
                df_words_free(words);
                return fail_at(b, ins, err, "invalid port `%s`", words[k]);
            }
            for (unsigned long p = lo; p <= hi; p++) {
                cleanup_free char *key = xasprintf("%lu/%s", p, proto);
                json_object_set_new(ports, key, json_object());
            }
        }
        df_words_free(words);
    }
    /* Docker's history text: EXPOSE map[8080/tcp:{}] */
    buf_append(hist, "EXPOSE map[", 11);
    const char *k;
    json_t *v;
    bool first = true;
    void *it;
    (void)v;
    /* sorted, as Go prints maps */
    json_t *sorted = json_array();
    json_object_foreach_safe(ports, it, k, v) json_array_append_new(sorted, json_string(k));
    size_t np = json_array_size(sorted);
    const char **names = xcalloc(np + 1, sizeof *names);
    for (size_t i = 0; i < np; i++)
        names[i] = json_string_value(json_array_get(sorted, i));
    for (size_t i = 0; i < np; i++)
        for (size_t j = i + 1; j < np; j++)
            if (strcmp(names[j], names[i]) < 0) {
                const char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < np; i++) {
        if (!first)
            buf_append(hist, " ", 1);
        first = false;
        buf_append(hist, names[i], strlen(names[i]));
        buf_append(hist, ":{}", 3);
    }
    free(names);
    json_decref(sorted);
    buf_append(hist, "]", 1);
    return 0;
}

/* One metadata instruction: the config changes, and the history text. */
static int do_metadata(struct build *b, struct stage *sg, const struct df_instruction *ins,
                       struct buf *hist, struct imgfs_err *err)
{
    struct bstate *st = &sg->st;
    json_t *cfg = cfg_section(st->config);
    const char *kw = df_keyword_name(ins->keyword);
    switch (ins->keyword) {
    case DF_ENV:
    case DF_LABEL: {
        buf_append(hist, kw, strlen(kw));
        for (size_t i = 0; i < ins->n_kvs; i++) {
            cleanup_free char *v = NULL, *k = NULL;
            if (build_expand(b, st, ins, ins->kvs[i].value ? ins->kvs[i].value : "", &v, err) < 0)
                return -1;
            if (ins->keyword == DF_LABEL) {
                if (build_expand(b, st, ins, ins->kvs[i].key, &k, err) < 0)
                    return -1;
                json_object_set_new(obj_field(cfg, "Labels"), k, json_string(v));
            } else {
                k = xstrdup(ins->kvs[i].key);
                if (!*k)
                    return fail_at(b, ins, err, "ENV names can not be blank");
                env_set(cfg, k, v);
            }
            cleanup_free char *pair =
                ins->keyword == DF_LABEL ? xasprintf(" %s=%s", k, v) : xasprintf(" %s=%s", k, v);
            buf_append(hist, pair, strlen(pair));
        }
        return 0;
    }
    case DF_MAINTAINER: {
        cleanup_free char *v = NULL;
        if (build_expand(b, st, ins, ins->n_args ? ins->args[0].s : "", &v, err) < 0)
            return -1;
        json_object_set_new(st->config, "author", json_string(v));
        cleanup_free char *h = xasprintf("MAINTAINER %s", v);
        buf_append(hist, h, strlen(h));
        return 0;
    }
    case DF_EXPOSE:
        return do_expose(b, st, ins, err, hist);
    case DF_CMD:
    case DF_ENTRYPOINT: {
        json_t *w = command_words(st, ins, 0);
        if (!ins->json && !ins->n_args) {
            json_decref(w);
            w = json_array();
        }
        cleanup_free char *r = words_repr(w);
        cleanup_free char *h = xasprintf("%s %s", kw, r);
        buf_append(hist, h, strlen(h));
        if (ins->keyword == DF_CMD) {
            json_object_set_new(cfg, "Cmd", w);
            st->cmd_set = true;
        } else {
            json_object_set_new(cfg, "Entrypoint", w);
            if (!st->cmd_set) /* an inherited CMD is for the old entrypoint */
                json_object_set_new(cfg, "Cmd", json_null());
        }
        return 0;
    }
    case DF_SHELL: {
        if (!ins->json)
            return fail_at(b, ins, err, "SHELL requires the arguments to be in JSON form");
        json_t *w = command_words(st, ins, 0);
        cleanup_free char *r = words_repr(w);
        cleanup_free char *h = xasprintf("SHELL %s", r);
        buf_append(hist, h, strlen(h));
        json_object_set_new(cfg, "Shell", w);
        return 0;
    }
    case DF_USER:
    case DF_STOPSIGNAL: {
        cleanup_free char *v = NULL;
        if (build_expand(b, st, ins, ins->n_args ? ins->args[0].s : "", &v, err) < 0)
            return -1;
        json_object_set_new(cfg, ins->keyword == DF_USER ? "User" : "StopSignal", json_string(v));
        cleanup_free char *h = xasprintf("%s %s", kw, v);
        buf_append(hist, h, strlen(h));
        return 0;
    }
    case DF_VOLUME: {
        json_t *vols = obj_field(cfg, "Volumes");
        buf_append(hist, "VOLUME [", 8);
        bool first = true;
        for (size_t i = 0; i < ins->n_args; i++) {
            char **words = NULL;
            size_t n = 0;
            if (ins->json) {
                words = xcalloc(2, sizeof *words);
                if (build_expand(b, st, ins, ins->args[i].s, &words[0], err) < 0) {
                    free(words);
                    return -1;
                }
                n = 1;
            } else if (build_expand_words(b, st, ins, ins->args[i].s, &words, &n, err) < 0) {
                return -1;
            }
            for (size_t k = 0; k < n; k++) {
                if (!*words[k]) {
                    df_words_free(words);
                    return fail_at(b, ins, err, "VOLUME specified can not be an empty string");
                }
                json_object_set_new(vols, words[k], json_object());
                if (!first)
                    buf_append(hist, " ", 1);
                first = false;
                buf_append(hist, words[k], strlen(words[k]));
            }
            df_words_free(words);
        }
        buf_append(hist, "]", 1);
        return 0;
    }
    case DF_HEALTHCHECK: {
        if (do_healthcheck(b, st, ins, err) < 0)
            return -1;
        cleanup_free char *h = xasprintf("HEALTHCHECK %s", ins->original + strlen(kw) + 1);
        buf_append(hist, h, strlen(h));
        return 0;
    }
    case DF_ONBUILD: {
        json_t *ob = json_object_get(cfg, "OnBuild");
        if (!json_is_array(ob)) {
            ob = json_array();
            json_object_set_new(cfg, "OnBuild", ob);
        }
        const char *trigger = ins->original + strlen(ins->keyword_text);
        while (*trigger == ' ' || *trigger == '\t')
            trigger++;
        json_array_append_new(ob, json_string(trigger));
        cleanup_free char *h = xasprintf("ONBUILD %s", trigger);
        buf_append(hist, h, strlen(h));
        return 0;
    }
    case DF_ARG: {
        buf_append(hist, "ARG", 3);
        for (size_t i = 0; i < ins->n_kvs; i++) {
            cleanup_free char *v = NULL;
            if (arg_value(b, st, ins, &ins->kvs[i], false, &v, err) < 0)
                return -1;
            st->args =
                kv_set(st->args, ins->kvs[i].key, strchr(v, '=') ? strchr(v, '=') + 1 : NULL);
            buf_append(hist, " ", 1);
            buf_append(hist, v, strlen(v));
        }
        return 0;
    }
    default:
        return fail_at(b, ins, err, "%s is not a metadata instruction", kw);
    }
}

/* ---- running a stage ---- */

/* A lazy pull pulls a layer with no eStargz TOC whole: say so, as `imgfs pull --lazy` does. */
static void note_whole_layer(void *ctx, const struct pull_event *e)
{
    if (e->kind == PULL_LAYER_WHOLE)
        note(ctx, "%s: pulling this layer whole", e->note);
}

/* An image FROM or COPY --from names: from the store, or (a reference naming a registry,
 * HOST[:PORT]/NAME[:TAG]) pulled lazily into it when the store lacks it, and always with --pull.
 * Anything else must be in the store: there is no Docker Hub offline. Errors name ins's line. */
/* Pull registry image `ref` into the store, once per build: the first step that needs it (FROM,
 * COPY --from, RUN --mount from=) pulls, and a step of another stage asking for it meanwhile
 * waits for that pull and shares its result, error included, instead of fetching the manifest,
 * the config and the TOCs a second time (two stages FROM one image start together). */
static int pull_once(struct build *b, const char *ref, struct digest *pulled, struct imgfs_err *err)
{
    pthread_mutex_lock(&b->mu);
    struct build_pull *p = NULL;
    for (size_t i = 0; i < b->n_pulls && !p; i++)
        if (!strcmp(b->pulls[i]->ref, ref))
            p = b->pulls[i];
    if (p) {
        while (!p->done)
            pthread_cond_wait(&b->cond, &b->mu);
        int rc = p->rc;
        if (rc < 0)
            *err = p->err;
        else
            *pulled = p->pulled;
        pthread_mutex_unlock(&b->mu);
        return rc;
    }
    p = xcalloc(1, sizeof *p);
    p->ref = xstrdup(ref);
    b->pulls = xrealloc(b->pulls, (b->n_pulls + 1) * sizeof *b->pulls);
    b->pulls[b->n_pulls++] = p;
    pthread_mutex_unlock(&b->mu);

    note(b, "pulling %s lazily", ref);
    struct pull_options po = {.event = note_whole_layer, .event_ctx = b};
    bool whole = false;
    int rc = lazy_pull(b->s, ref, &po, pulled, NULL, &whole, err);
    if (rc < 0 && whole) { /* no layer has an eStargz TOC: nothing can be read lazily */
        note(b, "%s: pulling %s whole", err->msg, ref);
        err_clear(err);
        rc = pull_image(b->s, ref, &po, pulled, NULL, err);
    }

    rc = rc < 0 ? -1 : 0;
    pthread_mutex_lock(&b->mu);
    p->done = true;
    p->rc = rc;
    if (rc < 0)
        p->err = *err;
    else
        p->pulled = *pulled;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int build_load_image(struct build *b, const char *ref, const struct df_instruction *ins,
                     struct image *img, struct imgfs_err *err)
{
    struct ref parsed;
    struct imgfs_err e2;
    bool remote = false;
    if (ref_parse(ref, &parsed, &e2) == 0) {
        remote = strcmp(parsed.domain, "docker.io") != 0;
        ref_free(&parsed);
    }
    struct store_read *r;
    int rc = -1;
    if (!(remote && b->o->pull)) {
        if (store_read_begin(b->s, &r, err) < 0)
            return -1;
        rc = image_load_ref(r, ref, img, err);
        store_read_end(r);
        if (rc < 0 && err->code != ENOENT)
            return -1;
    }
    if (rc < 0 && remote) {
        struct digest pulled;
        if (pull_once(b, ref, &pulled, err) < 0) {
            struct imgfs_err inner = *err;
            /* the pull's message starts with the reference most of the time: say it once */
            const char *why = inner.msg;
            size_t n = strlen(ref);
            if (!strncmp(why, ref, n) && !strncmp(why + n, ": ", 2))
                why += n + 2;
            return df_error_at(b->file, ins->start_line, ins->end_line, err, inner.code,
                               "pulling %s: %s", ref, why);
        }
        if (store_read_begin(b->s, &r, err) < 0)
            return -1;
        rc = image_load(r, &pulled, img, err);
        store_read_end(r);
        if (rc < 0)
            return -1;
    }
    if (rc < 0)
        return df_error_at(b->file, ins->start_line, ins->end_line, err, ENOENT,
                           "%s: no such image in the store (imgfs import, imgfs pull, "
                           "tools/mkbase.sh; a registry reference HOST/NAME:TAG is pulled)",
                           ref);
    return 0;
}

static int stage_base(struct build *b, struct stage *sg, struct imgfs_err *err)
{
    struct bstate *st = &sg->st;
    if (sg->base_stage >= 0) {
        struct stage *dep = &b->stages[sg->base_stage];
        if (build_stage(b, dep, err) < 0)
            return -1;
        state_copy(st, &dep->st);
        return 0;
    }
    if (!strcasecmp(sg->base, "scratch")) {
        memset(st, 0, sizeof *st);
        st->config =
            json_pack("{s:s, s:s, s:{s:[s]}}", "architecture", "amd64", "os", "linux", "config",
                      "Env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        struct digest_ctx *c = digest_ctx_new();
        key_str(c, "scratch");
        digest_ctx_final(c, &st->chain);
        digest_ctx_free(c);
        st->time = b->o->source_date_epoch >= 0 ? b->o->source_date_epoch : 0;
        return 0;
    }
    struct image img;
    if (build_load_image(b, sg->base, sg->from, &img, err) < 0)
        return -1;
    memset(st, 0, sizeof *st);
    json_error_t je;
    st->config = json_loadb(img.config_json, img.config_len, 0, &je);
    if (!json_is_object(st->config)) {
        image_free(&img);
        return err_set(err, EINVAL, "image %s: its config is not a JSON object", sg->base);
    }
    st->n_layers = img.n_layers;
    st->layers = xcalloc(img.n_layers + 1, sizeof *st->layers);
    st->sizes = xcalloc(img.n_layers + 1, sizeof *st->sizes);
    memcpy(st->layers, img.layers, img.n_layers * sizeof *st->layers);
    memcpy(st->sizes, img.layer_sizes, img.n_layers * sizeof *st->sizes);
    st->image = img.digest;
    st->has_image = true;
    st->lower_image = img.digest;
    st->lower_layers = img.n_layers;
    st->has_lower_image = true;
    struct digest_ctx *c = digest_ctx_new();
    key_str(c, "image");
    for (size_t i = 0; i < img.n_layers; i++)
        key_digest(c, &img.layers[i]);
    digest_ctx_final(c, &st->chain);
    digest_ctx_free(c);
    const char *created = json_string_value(json_object_get(st->config, "created"));
    struct tm tm = {0};
    st->time = 0;
    if (created && strptime(created, "%Y-%m-%dT%H:%M:%S", &tm))
        st->time = (int64_t)timegm(&tm);
    if (b->o->source_date_epoch >= 0)
        st->time = b->o->source_date_epoch;
    image_free(&img);
    return 0;
}

static int dispatch(struct build *b, struct stage *sg, const struct df_instruction *ins, size_t pos,
                    struct imgfs_err *err);

/* ONBUILD triggers of the base run first, once: the new image does not inherit them. */
static int run_onbuild(struct build *b, struct stage *sg, struct imgfs_err *err)
{
    json_t *cfg = cfg_section(sg->st.config);
    json_t *ob = json_object_get(cfg, "OnBuild");
    if (!json_is_array(ob) || !json_array_size(ob)) {
        json_object_del(cfg, "OnBuild");
        return 0;
    }
    json_incref(ob);
    json_object_del(cfg, "OnBuild");
    int ret = 0;
    for (size_t i = 0; i < json_array_size(ob) && !ret; i++) {
        const char *t = json_string_value(json_array_get(ob, i));
        if (!t)
            continue;
        cleanup_free char *text = xasprintf("FROM scratch\n%s\n", t);
        struct df_file *f;
        cleanup_free char *name = xasprintf("ONBUILD trigger %zu of %s", i + 1, sg->base);
        if (df_parse(name, text, strlen(text), 0, &f, err) < 0)
            return -1;
        if (f->n_instructions < 2) {
            df_file_free(f);
            continue;
        }
        struct df_instruction *trig = &f->instructions[1];
        if (trig->keyword == DF_ONBUILD || trig->keyword == DF_FROM ||
            trig->keyword == DF_MAINTAINER) {
            df_file_free(f);
            return err_set(err, EINVAL, "%s isn't allowed as an ONBUILD trigger",
                           df_keyword_name(trig->keyword));
        }
        /* errors point at the FROM line: the trigger came with the base */
        trig->start_line = sg->from->start_line;
        trig->end_line = sg->from->end_line;
        ret = dispatch(b, sg, trig, 0, err);
        df_file_free(f);
    }
    json_decref(ob);
    return ret;
}

int workdir_step(struct build *b, struct stage *sg, const struct df_instruction *ins,
                 const char *dir, struct imgfs_err *err);

static int dispatch(struct build *b, struct stage *sg, const struct df_instruction *ins, size_t pos,
                    struct imgfs_err *err)
{
    struct bstate *st = &sg->st;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (build_stopping(b))
        return build_stop_error(b, err);
    int step = step_begin(b, sg, pos, ins->original);
    st->step_cached = false;
    bool layer_step = ins->keyword == DF_RUN || ins->keyword == DF_COPY || ins->keyword == DF_ADD ||
                      ins->keyword == DF_WORKDIR;
    int rc;
    if (ins->keyword == DF_RUN) {
        rc = run_step(b, sg, ins, err);
    } else if (ins->keyword == DF_COPY || ins->keyword == DF_ADD) {
        rc = copy_step(b, sg, ins, err);
    } else if (ins->keyword == DF_WORKDIR) {
        cleanup_free char *dir = NULL;
        rc = build_expand(b, st, ins, ins->n_args ? ins->args[0].s : "", &dir, err);
        if (rc == 0) {
            json_t *cfg = cfg_section(st->config);
            const char *cur = json_string_value(json_object_get(cfg, "WorkingDir"));
            cleanup_free char *abs =
                dir[0] == '/' ? xstrdup(dir) : xasprintf("%s/%s", cur && *cur ? cur : "", dir);
            /* clean: no trailing slash, no doubled ones */
            char *o = abs;
            for (char *p = abs; *p; p++)
                if (!(*p == '/' && (p[1] == '/' || (p[1] == 0 && o != abs))))
                    *o++ = *p;
            *o = 0;
            json_object_set_new(cfg, "WorkingDir", json_string(abs));
            rc = workdir_step(b, sg, ins, abs, err);
        }
    } else {
        struct buf hist = {0};
        rc = do_metadata(b, sg, ins, &hist, err);
        if (rc == 0 && ins->keyword != DF_ARG) {
            buf_append(&hist, "", 1);
            state_history(st, (char *)hist.data, true, st->time);
        }
        buf_free(&hist);
    }
    if (rc < 0) {
        const struct build_progress *p = b->o->progress;
        if (p && p->step_failed)
            p->step_failed(p->ctx, step, err->code == ECANCELED || err->code == EINTR);
        return -1;
    }
    step_end(b, step, layer_step && st->step_cached, &t0);
    return 0;
}

/* The stage this thread is building (NULL in a thread that builds none). */
static __thread struct stage *building;

static int stage_steps(struct build *b, struct stage *sg, struct imgfs_err *err)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (stage_base(b, sg, err) < 0)
        return -1;
    int step = step_begin(b, sg, 1, sg->from->original);
    step_end(b, step, false, &t0);
    if (run_onbuild(b, sg, err) < 0)
        return -1;
    size_t pos = 2;
    for (size_t i = sg->first; i < sg->end; i++, pos++)
        if (dispatch(b, sg, &b->file->instructions[i], pos, err) < 0)
            return -1;
    return 0;
}

int build_stage(struct build *b, struct stage *sg, struct imgfs_err *err)
{
    struct stage *me = building;
    pthread_mutex_lock(&b->mu);
    while (sg->started && !sg->built && !sg->failed && !b->stop) {
        /* another thread builds it: wait, unless the chain of waits leads back to us */
        for (struct stage *w = sg; w; w = w->waits_for)
            if (w == me) {
                pthread_mutex_unlock(&b->mu);
                return df_error_at(b->file, sg->from->start_line, sg->from->end_line, err, EINVAL,
                                   "circular dependency detected on stage: %s",
                                   sg->name ? sg->name : sg->base);
            }
        if (me)
            me->waits_for = sg;
        pthread_cond_wait(&b->cond, &b->mu);
        if (me)
            me->waits_for = NULL;
    }
    if (sg->built) {
        pthread_mutex_unlock(&b->mu);
        return 0;
    }
    if (sg->started || b->stop) {
        pthread_mutex_unlock(&b->mu);
        return err_set(err, ECANCELED, "stage %s did not build", sg->name ? sg->name : sg->base);
    }
    sg->started = true;
    if (me) /* built here, for `me`: a wait as well */
        me->waits_for = sg;
    pthread_mutex_unlock(&b->mu);

    building = sg;
    int rc = stage_steps(b, sg, err);
    building = me;

    pthread_mutex_lock(&b->mu);
    if (me)
        me->waits_for = NULL;
    if (rc == 0) {
        sg->built = true;
    } else {
        sg->failed = true;
        b->stop = true; /* the other stages stop too, their containers now */
        for (size_t i = 0; i < b->n_monitors; i++)
            kill(b->monitors[i], SIGKILL);
    }
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int stage_view(struct build *b, struct stage *sg, struct store_read *r, const struct view **v,
               struct imgfs_err *err)
{
    pthread_mutex_lock(&sg->view_mu);
    int rc = state_view(b, &sg->st, r, v, err);
    pthread_mutex_unlock(&sg->view_mu);
    return rc;
}

bool build_stopping(struct build *b)
{
    if (b->o->interrupted && *b->o->interrupted)
        return true;
    pthread_mutex_lock(&b->mu);
    bool stop = b->stop;
    pthread_mutex_unlock(&b->mu);
    return stop;
}

int build_stop_error(struct build *b, struct imgfs_err *err)
{
    if (b->o->interrupted && *b->o->interrupted)
        return err_set(err, EINTR, "interrupted");
    return err_set(err, ECANCELED, "canceled: another stage failed");
}

void build_monitor_add(struct build *b, pid_t pid)
{
    pthread_mutex_lock(&b->mu);
    b->monitors = xrealloc(b->monitors, (b->n_monitors + 1) * sizeof *b->monitors);
    b->monitors[b->n_monitors++] = pid;
    if (b->stop)
        kill(pid, SIGKILL);
    pthread_mutex_unlock(&b->mu);
}

void build_monitor_remove(struct build *b, pid_t pid)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n_monitors; i++)
        if (b->monitors[i] == pid)
            b->monitors[i] = b->monitors[--b->n_monitors];
    pthread_mutex_unlock(&b->mu);
}

/* ---- the stage graph and its scheduler ---- */

static void add_dep(struct stage *sg, struct stage *dep)
{
    if (!dep || dep == sg)
        return;
    for (size_t i = 0; i < sg->n_deps; i++)
        if (sg->deps[i] == dep->index)
            return;
    sg->deps = xrealloc(sg->deps, (sg->n_deps + 1) * sizeof *sg->deps);
    sg->deps[sg->n_deps++] = dep->index;
}

/* The `from=` of a --mount value, or NULL. */
static char *mount_from_field(const char *spec)
{
    cleanup_free char *copy = xstrdup(spec);
    char *save = NULL;
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save))
        if (!strncmp(f, "from=", 5))
            return xstrdup(f + 5);
    return NULL;
}

/* What each stage needs, as far as it is known before running: FROM an earlier stage, and the
 * --from of COPY/ADD and of RUN --mount when they hold no variable (those are found when the
 * step expands them, and built then, in the step's thread). */
static void stage_graph(struct build *b)
{
    for (size_t k = 0; k < b->n_stages; k++) {
        struct stage *sg = &b->stages[k];
        pthread_mutex_init(&sg->view_mu, NULL);
        sg->have_view_mu = true;
        if (sg->base_stage >= 0)
            add_dep(sg, &b->stages[sg->base_stage]);
        for (size_t i = sg->first; i < sg->end; i++) {
            const struct df_instruction *ins = &b->file->instructions[i];
            for (size_t f = 0; f < ins->n_flags; f++) {
                const struct df_flag *fl = &ins->flags[f];
                cleanup_free char *ref = NULL;
                if (!fl->value)
                    continue;
                if ((ins->keyword == DF_COPY || ins->keyword == DF_ADD) &&
                    !strcmp(fl->name, "from"))
                    ref = xstrdup(fl->value);
                else if (ins->keyword == DF_RUN && !strcmp(fl->name, "mount"))
                    ref = mount_from_field(fl->value);
                if (ref && !strchr(ref, '$'))
                    add_dep(sg, build_find_stage(b, ref));
            }
        }
    }
}

static void mark_needed(struct build *b, struct stage *sg)
{
    if (sg->needed)
        return;
    sg->needed = true;
    for (size_t i = 0; i < sg->n_deps; i++)
        mark_needed(b, &b->stages[sg->deps[i]]);
}

struct scheduler {
    struct build *b;
    int done_fd;          /* a byte per worker that ends */
    struct imgfs_err err; /* the first stage error */
    bool failed;
};

/* Under b->mu: a needed stage nobody started whose known needs are built. When every stage left
 * waits for another that nobody builds, there is a cycle: start one anyway, its build_stage of
 * the dependency reports it. */
static struct stage *next_ready(struct build *b, bool *all_started)
{
    struct stage *waiting = NULL;
    bool running = false;
    *all_started = true;
    for (size_t k = 0; k < b->n_stages; k++) {
        struct stage *sg = &b->stages[k];
        if (sg->started && !sg->built && !sg->failed)
            running = true;
        if (!sg->needed || sg->started)
            continue;
        *all_started = false;
        bool ready = true;
        for (size_t i = 0; i < sg->n_deps && ready; i++)
            ready = b->stages[sg->deps[i]].built;
        if (ready)
            return sg;
        if (!waiting)
            waiting = sg;
    }
    return running ? NULL : waiting;
}

static void *worker(void *arg)
{
    struct scheduler *sc = arg;
    struct build *b = sc->b;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        bool all_started;
        struct stage *sg = b->stop ? NULL : next_ready(b, &all_started);
        if (!sg) {
            if (b->stop || all_started)
                break;
            pthread_cond_wait(&b->cond, &b->mu);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        struct imgfs_err err = {0};
        int rc = build_stage(b, sg, &err);
        pthread_mutex_lock(&b->mu);
        if (rc < 0 && !sc->failed) {
            sc->failed = true;
            sc->err = err;
        } else if (rc < 0 && sc->err.code == ECANCELED && err.code != ECANCELED) {
            sc->err = err; /* the cause, not a stage that stopped because of it */
        }
    }
    pthread_mutex_unlock(&b->mu);
    char one = 1;
    (void)!write(sc->done_fd, &one, 1);
    return NULL;
}

static size_t cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (size_t)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

/* Build the target and what it needs: ready stages in worker threads, at most one per CPU.
 * The calling thread only waits, so that Ctrl-C (delivered to it: the workers block SIGINT and
 * SIGTERM) interrupts its wait and it can end every running build container at once. It keeps
 * them blocked too, except inside ppoll: a signal that came while it was doing anything else
 * (starting the workers, counting one that ended) is delivered there, so it is never caught
 * before a wait that would then sleep through it until the running steps end. */
static int build_stages(struct build *b, struct stage *target, struct imgfs_err *err)
{
    stage_graph(b);
    mark_needed(b, target);
    size_t n_needed = 0;
    for (size_t k = 0; k < b->n_stages; k++)
        n_needed += b->stages[k].needed;
    size_t n_workers = cpu_count();
    if (n_workers > n_needed)
        n_workers = n_needed;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return err_sys(err, errno, "pipe");
    struct scheduler sc = {.b = b, .done_fd = pfd[1]};
    pthread_t *threads = xcalloc(n_workers, sizeof *threads);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    size_t started = 0;
    int ret = 0;
    for (; started < n_workers; started++) {
        int e = pthread_create(&threads[started], NULL, worker, &sc);
        if (e) {
            err_sys(err, e, "starting a build thread");
            ret = -1;
            pthread_mutex_lock(&b->mu);
            b->stop = true;
            pthread_cond_broadcast(&b->cond);
            pthread_mutex_unlock(&b->mu);
            break;
        }
    }
    bool stopped = false;
    for (size_t ended = 0; ended < started;) {
        if (!stopped && b->o->interrupted && *b->o->interrupted) {
            stopped = true;
            pthread_mutex_lock(&b->mu);
            b->stop = true;
            for (size_t i = 0; i < b->n_monitors; i++)
                kill(b->monitors[i], SIGKILL);
            pthread_cond_broadcast(&b->cond);
            pthread_mutex_unlock(&b->mu);
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int n = ppoll(&p, 1, NULL, &old);
        if (n < 0 && errno != EINTR)
            break; /* cannot happen with our own pipe; join below waits anyway */
        char c;
        if (n > 0 && read(pfd[0], &c, 1) == 1)
            ended++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    close(pfd[0]);
    close(pfd[1]);
    if (ret < 0)
        return -1;
    if (sc.failed) {
        *err = sc.err;
        return -1;
    }
    if (!target->built)
        return err_set(err, EINTR, "interrupted");
    return 0;
}

/* ---- the whole build ---- */

static int load_ignore(struct build *b, struct imgfs_err *err)
{
    if (b->context_fd < 0)
        return 0;
    /* FILE.dockerignore beside the Dockerfile wins over the context's .dockerignore */
    const char *df = b->o->dockerfile_path;
    cleanup_free char *specific = df && strcmp(df, "-") ? xasprintf("%s.dockerignore", df) : NULL;
    struct buf text = {0};
    const char *name = NULL;
    struct imgfs_err e2;
    if (specific && read_file(specific, 16 << 20, &text, &e2) == 0) {
        name = specific;
    } else {
        cleanup_close int fd = openat(b->context_fd, ".dockerignore", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            cleanup_free char *p = xasprintf("%s/.dockerignore", b->o->context);
            if (read_file(p, 16 << 20, &text, err) < 0)
                return -1;
            name = "./.dockerignore";
        }
    }
    if (!name)
        return 0;
    int rc = df_ignore_parse(name, (const char *)text.data, text.len, &b->ignore, err);
    buf_free(&text);
    return rc;
}

int build_run(const struct build_options *o, struct build_result *res, int *failed_status,
              struct imgfs_err *err)
{
    memset(res, 0, sizeof *res);
    *failed_status = 0;
    struct build b = {.o = o, .context_fd = -1, .res = res, .trash_lock = -1};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cond, NULL);
    int pin = -1, ret = -1;
    b.now = o->source_date_epoch >= 0 ? o->source_date_epoch : (int64_t)time(NULL);
    /* messages name the file as BuildKit does: its base name ("Dockerfile:3") */
    const char *name = o->dockerfile_path ? o->dockerfile_path : "Dockerfile";
    if (strrchr(name, '/'))
        name = strrchr(name, '/') + 1;
    if (df_parse(name, o->dockerfile, o->dockerfile_len, 0, &b.file, err) < 0)
        return -1;
    for (size_t i = 0; i < b.file->n_warnings; i++)
        note(&b, "WARNING: %s", b.file->warnings[i]);
    for (size_t i = 0; o->build_args && o->build_args[i]; i++) {
        const char *a = o->build_args[i];
        if (strchr(a, '=')) {
            b.build_args = strv_append(b.build_args, a);
        } else {
            const char *v = getenv(a);
            if (v) { /* `--build-arg K` alone: our value, or nothing when unset */
                cleanup_free char *kv = xasprintf("%s=%s", a, v);
                b.build_args = strv_append(b.build_args, kv);
            }
        }
    }
    b.build_arg_used = xcalloc(strv_len(b.build_args) + 1, sizeof *b.build_arg_used);
    if (o->context) {
        b.context_fd = open(o->context, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (b.context_fd < 0) {
            err_sys(err, errno, "unable to prepare context: path \"%s\" not found", o->context);
            goto out;
        }
    }
    if (load_ignore(&b, err) < 0 || split_stages(&b, err) < 0)
        goto out;
    struct stage *target = &b.stages[b.n_stages - 1];
    if (o->target) {
        target = build_find_stage(&b, o->target);
        if (!target || !target->name) {
            err_set(err, ENOENT, "target stage \"%s\" could not be found", o->target);
            goto out;
        }
    }
    /* COPY --from and RUN --mount from= an image pulled lazily read its chunks through this
     * fetcher; a build waits longer for them than a FUSE read does */
    struct lazy_options lo = {.fetch_timeout_ms = 60000, .image = "build"};
    if (store_open(o->root, 0, &b.s, err) < 0 || store_pin(b.s, &pin, err) < 0 ||
        lazy_attach(b.s, &lo, &b.lazy, err) < 0)
        goto out;
    build_sweep(o->root);
    if (build_stages(&b, target, err) < 0) {
        for (size_t i = 0; i < b.n_stages; i++)
            if (b.stages[i].failed_status && !*failed_status)
                *failed_status = b.stages[i].failed_status;
        goto out;
    }
    /* --label goes on the final image only */
    for (size_t i = 0; o->labels && o->labels[i]; i++) {
        const char *eq = strchr(o->labels[i], '=');
        cleanup_free char *k =
            eq ? strndup(o->labels[i], (size_t)(eq - o->labels[i])) : xstrdup(o->labels[i]);
        json_object_set_new(obj_field(cfg_section(target->st.config), "Labels"), k,
                            json_string(eq ? eq + 1 : ""));
    }
    for (size_t i = 0; b.build_args && b.build_args[i]; i++)
        if (!b.build_arg_used[i]) {
            size_t n = strcspn(b.build_args[i], "=");
            note(&b, "[Warning] One or more build-args [%.*s] were not consumed", (int)n,
                 b.build_args[i]);
        }
    /* Ctrl-C as the last step ended: nothing is named */
    if (o->interrupted && *o->interrupted) {
        build_stop_error(&b, err);
        goto out;
    }
    note(&b, "exporting to image");
    if (state_commit(&b, &target->st, o->tags, &res->image, err) < 0)
        goto out;
    ret = 0;
out:
    build_holds_release(&b);
    build_lowers_free(&b);
    build_trash_release(&b);
    for (size_t i = 0; i < b.n_stages; i++) {
        free(b.stages[i].deps);
        if (b.stages[i].have_view_mu)
            pthread_mutex_destroy(&b.stages[i].view_mu);
        free(b.stages[i].name);
        free(b.stages[i].base);
        if (b.stages[i].st.config)
            state_free(&b.stages[i].st);
    }
    free(b.stages);
    strv_free(b.meta_args);
    strv_free(b.build_args);
    free(b.build_arg_used);
    df_ignore_free(b.ignore);
    df_file_free(b.file);
    if (b.context_fd >= 0)
        close(b.context_fd);
    if (pin >= 0)
        close(pin);
    lazy_detach(b.lazy);
    store_close(b.s);
    free(b.monitors);
    for (size_t i = 0; i < b.n_pulls; i++) {
        free(b.pulls[i]->ref);
        free(b.pulls[i]);
    }
    free(b.pulls);
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.mu);
    return ret;
}
