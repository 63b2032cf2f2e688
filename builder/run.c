/* run.c — RUN: the command runs through the runner on an overlay over the mounted parent image;
 * the overlay's upper directory becomes the step's layer (fs/layerbuild.h layer_from_upper).
 * RUN --mount (cache, bind, tmpfs, secret) and --network are here too. */
#include "../fs/image.h"
#include "../fs/layerbuild.h"
#include "../fs/store.h"
#include "../runner/runner.h"
#include "builder.h"
#include "dockerfile.h"
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct run_mount {
    enum { M_CACHE, M_BIND, M_TMPFS, M_SECRET, M_SSH } type;
    char *target; /* absolute, in the container */
    char *source; /* host path (cache dir, context path, secret file) */
    char *id;     /* cache id / secret id */
    bool readonly, required;
    char *sharing; /* shared, locked, private */
    uint32_t uid, gid, mode;
    bool have_uid, have_gid, have_mode;
    char *size;
    char *env; /* secret: also (or only, without target) as this environment variable */
    /* from=STAGE|IMAGE: the image ("sha256:...") whose tree holds source (a bind) or seeds the
     * fresh cache directory (seed_path in it) */
    char *from_image, *seed_path;
    bool copy; /* rw bind: a copy, discarded with the step */
    int lock_fd;
    /* a private cache mount in use elsewhere: a fresh step directory (its `upper`), locked */
    char private_dir[PATH_MAX];
    int private_lock;
    /* a context bind: the context as sent, when the host tree is not (context_bind) */
    char sent_dir[PATH_MAX];
    int sent_lock;
    char *key_text; /* what goes into the cache key */
};

static int run_fail(struct build *b, const struct df_instruction *ins, struct imgfs_err *err,
                    int code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int run_fail(struct build *b, const struct df_instruction *ins, struct imgfs_err *err,
                    int code, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return df_error_at(b->file, ins->start_line, ins->end_line, err, code, "%s", msg);
}

static bool parse_bool(const char *v, bool dflt)
{
    if (!v)
        return true;
    if (!strcasecmp(v, "true") || !strcmp(v, "1"))
        return true;
    if (!strcasecmp(v, "false") || !strcmp(v, "0"))
        return false;
    return dflt;
}

/* Clean a relative path; -1 when it climbs out. */
static int clean_sub(const char *in, char **out)
{
    struct buf o = {0};
    int depth = 0;
    cleanup_free char *copy = xstrdup(in);
    char *save = NULL;
    char **parts = NULL;
    size_t n = 0;
    for (char *w = strtok_r(copy, "/", &save); w; w = strtok_r(NULL, "/", &save)) {
        if (!strcmp(w, "."))
            continue;
        if (!strcmp(w, "..")) {
            if (!n) {
                free(parts);
                return -1;
            }
            n--;
            depth--;
            continue;
        }
        parts = xrealloc(parts, (n + 1) * sizeof *parts);
        parts[n++] = w;
        depth++;
    }
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append(&o, "/", 1);
        buf_append(&o, parts[i], strlen(parts[i]));
    }
    buf_append(&o, "", 1);
    free(parts);
    *out = (char *)o.data;
    return 0;
}

static void mount_free(struct build *b, struct run_mount *m)
{
    free(m->target);
    free(m->source);
    free(m->id);
    free(m->sharing);
    free(m->size);
    free(m->env);
    free(m->from_image);
    free(m->seed_path);
    free(m->key_text);
    if (m->lock_fd >= 0)
        close(m->lock_fd);
    if (m->sent_dir[0])
        build_discard(b, m->sent_dir);
    if (m->private_dir[0])
        build_discard(b, m->private_dir);
    if (m->private_lock >= 0)
        close(m->private_lock);
    if (m->sent_lock >= 0)
        close(m->sent_lock);
}

/* from=REF of a --mount: a stage (built, committed as an unnamed image the step can mount) or an
 * image (as FROM finds it); `src` resolved in its tree with the image's symlinks kept inside it.
 * *image "sha256:...", *path relative to its root ("" the root); both to free. */
static int mount_from(struct build *b, struct stage *sg, const struct df_instruction *ins,
                      const char *ref, const char *src, char **image, char **path,
                      struct imgfs_err *err)
{
    struct stage *dep = build_find_stage(b, ref);
    struct digest d;
    struct store_read *r = NULL;
    const struct view *v;
    struct view own;
    void *own_copy = NULL;
    char *sub = NULL, *abs = NULL;
    int ret = -1;
    if (dep == sg)
        return run_fail(b, ins, err, EINVAL, "circular dependency detected on stage: %s", ref);
    if (dep) {
        if (build_stage(b, dep, err) < 0 || state_commit(b, &dep->st, NULL, &d, err) < 0 ||
            store_read_begin(b->s, &r, err) < 0 || stage_view(b, dep, r, &v, err) < 0)
            goto out;
    } else {
        struct image img;
        if (build_load_image(b, ref, ins, &img, err) < 0) {
            if (err->code == ENOENT)
                run_fail(b, ins, err, ENOENT,
                         "--mount from=%s: no such stage, or image in the store", ref);
            goto out;
        }
        d = img.digest;
        image_free(&img);
        const void *data;
        size_t len;
        if (store_read_begin(b->s, &r, err) < 0 ||
            store_get(r, STORE_VIEW, &d, &data, &len, err) < 0 ||
            view_open_copy(data, len, &own_copy, &own, err) < 0)
            goto out;
        v = &own;
    }
    if (clean_sub(src, &sub) < 0) {
        run_fail(b, ins, err, EPERM, "--mount from=%s: source `%s` climbs out of its root", ref,
                 src);
        goto out;
    }
    abs = xasprintf("/%s", sub);
    uint32_t ino = 0;
    if (rootfs_resolve(v, abs, true, path, &ino, err) < 0)
        goto out;
    if (!ino) {
        run_fail(b, ins, err, ENOENT, "--mount from=%s: `%s` not found", ref, abs);
        free(*path);
        *path = NULL;
        goto out;
    }
    char ds[DIGEST_STR_SIZE];
    digest_str(&d, ds);
    *image = xstrdup(ds);
    ret = 0;
out:
    free(sub);
    free(abs);
    free(own_copy);
    if (r)
        store_read_end(r);
    return ret;
}

/* One --mount=... value (already expanded); n_ssh: the ssh mounts before it in this RUN. */
static int parse_mount(struct build *b, struct stage *sg, const struct df_instruction *ins,
                       const char *spec, size_t n_ssh, struct run_mount *m, struct imgfs_err *err)
{
    memset(m, 0, sizeof *m);
    m->lock_fd = -1;
    m->sent_lock = -1;
    m->private_lock = -1;
    m->type = M_BIND;
    cleanup_free char *copy = xstrdup(spec), *from = NULL, *src = NULL;
    bool have_rw = false, rw = false;
    char *save = NULL;
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char *v = strchr(f, '=');
        if (v)
            *v++ = 0;
        if (!strcmp(f, "type")) {
            if (!v)
                return run_fail(b, ins, err, EINVAL, "--mount: type needs a value");
            if (!strcmp(v, "cache"))
                m->type = M_CACHE;
            else if (!strcmp(v, "bind"))
                m->type = M_BIND;
            else if (!strcmp(v, "tmpfs"))
                m->type = M_TMPFS;
            else if (!strcmp(v, "secret"))
                m->type = M_SECRET;
            else if (!strcmp(v, "ssh"))
                m->type = M_SSH;
            else
                return run_fail(b, ins, err, EINVAL, "unsupported mount type \"%s\"", v);
        } else if (!strcmp(f, "target") || !strcmp(f, "dst") || !strcmp(f, "destination")) {
            free(m->target);
            m->target = xstrdup(v ? v : "");
        } else if (!strcmp(f, "source") || !strcmp(f, "src")) {
            free(src);
            src = xstrdup(v ? v : "");
        } else if (!strcmp(f, "from")) {
            free(from);
            from = xstrdup(v ? v : "");
        } else if (!strcmp(f, "id")) {
            free(m->id);
            m->id = xstrdup(v ? v : "");
        } else if (!strcmp(f, "sharing")) {
            if (!v || (strcmp(v, "shared") && strcmp(v, "locked") && strcmp(v, "private")))
                return run_fail(b, ins, err, EINVAL, "unrecognized sharing mode \"%s\"",
                                v ? v : "");
            free(m->sharing);
            m->sharing = xstrdup(v);
        } else if (!strcmp(f, "readonly") || !strcmp(f, "ro")) {
            m->readonly = parse_bool(v, true);
        } else if (!strcmp(f, "rw") || !strcmp(f, "readwrite")) {
            have_rw = true;
            rw = parse_bool(v, true);
        } else if (!strcmp(f, "required")) {
            m->required = parse_bool(v, true);
        } else if (!strcmp(f, "uid") || !strcmp(f, "gid") || !strcmp(f, "mode")) {
            char *end;
            unsigned long n = strtoul(v ? v : "", &end, !strcmp(f, "mode") ? 8 : 10);
            if (!v || !*v || *end)
                return run_fail(b, ins, err, EINVAL, "--mount: invalid %s \"%s\"", f, v ? v : "");
            if (*f == 'u')
                m->uid = (uint32_t)n, m->have_uid = true;
            else if (*f == 'g')
                m->gid = (uint32_t)n, m->have_gid = true;
            else
                m->mode = (uint32_t)n, m->have_mode = true;
        } else if (!strcmp(f, "size")) {
            free(m->size);
            m->size = xstrdup(v ? v : "");
        } else if (!strcmp(f, "env")) {
            free(m->env);
            m->env = xstrdup(v ? v : "");
        } else {
            return run_fail(b, ins, err, EINVAL, "unexpected key '%s' in '%s'", f, spec);
        }
    }
    if (m->type == M_SECRET) {
        if (!m->id && m->target) {
            const char *sl = strrchr(m->target, '/');
            m->id = xstrdup(sl ? sl + 1 : m->target);
        }
        if (!m->id && m->env)
            m->id = xstrdup(m->env);
        if (!m->id)
            return run_fail(b, ins, err, EINVAL, "--mount=type=secret needs id or target");
        /* env= alone: the secret is only in the environment (BuildKit) */
        if (!m->target && !m->env)
            m->target = xasprintf("/run/secrets/%s", m->id);
        if (!m->target)
            m->target = xstrdup("");
    }
    if (m->env && m->type != M_SECRET)
        return run_fail(b, ins, err, EINVAL, "--mount: env= is for type=secret only");
    if (m->type == M_SSH) {
        /* BuildKit: id "default", the socket at /run/buildkit/ssh_agent.N, N counting this
         * RUN's ssh mounts */
        if (!m->id || !*m->id) {
            free(m->id);
            m->id = xstrdup("default");
        }
        if (!m->target)
            m->target = xasprintf("/run/buildkit/ssh_agent.%zu", n_ssh);
    }
    bool env_only = m->type == M_SECRET && !*m->target; /* no file: nothing to mount */
    if (!env_only && (!m->target || !*m->target))
        return run_fail(b, ins, err, EINVAL, "--mount: target is required (in `%s`)", spec);
    if (!env_only && m->target[0] != '/') {
        const char *wd = json_string_value(
            json_object_get(json_object_get(sg->st.config, "config"), "WorkingDir"));
        char *abs = xasprintf("%s/%s", wd && *wd ? wd : "", m->target);
        free(m->target);
        m->target = abs;
    }
    switch (m->type) {
    case M_CACHE: {
        if (!m->id || !*m->id) {
            free(m->id);
            m->id = xstrdup(m->target);
        }
        cleanup_free char *sub = NULL;
        if (clean_sub(src ? src : "", &sub) < 0)
            return run_fail(b, ins, err, EPERM,
                            "--mount=type=cache: source `%s` escapes the cache directory", src);
        struct digest d;
        digest_of(m->id, strlen(m->id), &d);
        char hex[DIGEST_HEX_LEN + 1];
        digest_hex(&d, hex);
        cleanup_free char *dir = xasprintf("%s/build-cache-mounts/%s", b->o->root, hex);
        bool fresh = access(dir, F_OK) < 0;
        if (mkdir_p(dir, 0755, err) < 0)
            return -1;
        if (fresh) {
            /* uid/gid/mode apply when the cache is made, as in BuildKit */
            if (chown(dir, m->uid, m->gid) < 0 || chmod(dir, m->have_mode ? m->mode : 0755) < 0)
                return err_sys(err, errno, "preparing cache mount `%s`", dir);
        }
        /* from=: a cache made now starts as a copy of the from's source (BuildKit); the
         * source= then names that path in the from, the cache's root is the mount */
        m->source = *sub && !from ? xasprintf("%s/%s", dir, sub) : xstrdup(dir);
        if (*sub && !from && mkdir_p(m->source, 0755, err) < 0)
            return -1;
        if (from) {
            if (mount_from(b, sg, ins, from, src ? src : "", &m->from_image, &m->seed_path, err) <
                0)
                return -1;
            if (!fresh) {
                free(m->from_image);
                m->from_image = NULL;
            }
            free(sub);
            sub = xstrdup("");
        }
        cleanup_free char *lock = xasprintf("%s.lock", dir);
        const char *sharing = m->sharing ? m->sharing : "shared";
        if (strcmp(sharing, "shared")) {
            m->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (m->lock_fd < 0)
                return err_sys(err, errno, "opening `%s`", lock);
            if (!strcmp(sharing, "locked")) {
                while (flock(m->lock_fd, LOCK_EX) < 0)
                    if (errno != EINTR)
                        return err_sys(err, errno, "locking cache mount `%s`", m->id);
            } else if (flock(m->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                /* private and in use: a fresh, throw-away directory, gone with the step (a
                 * step directory: a killed build's is swept as its other steps' are) */
                if (build_step_dir(b, m->private_dir, sizeof m->private_dir, &m->private_lock,
                                   err) < 0)
                    return err_ctx(err, "making a private cache directory");
                free(m->source);
                m->source = xasprintf("%s/upper", m->private_dir);
            }
        }
        m->key_text = xasprintf("cache:%s:%s:%s:%s", m->id, m->target, sub, from ? from : "");
        return 0;
    }
    case M_BIND: {
        /* rw: the command writes to a copy, gone with the step (never to the context or the
         * stage) */
        m->copy = have_rw && rw;
        m->readonly = !m->copy;
        if (from) {
            cleanup_free char *path = NULL;
            if (mount_from(b, sg, ins, from, src ? src : "", &m->from_image, &path, err) < 0)
                return -1;
            m->source = xstrdup(path);
            m->key_text =
                xasprintf("bind-from:%s:%s:%s:%d", m->target, m->from_image, path, m->copy);
            return 0;
        }
        if (b->context_fd < 0)
            return run_fail(b, ins, err, ENOENT, "--mount=type=bind: there is no build context");
        cleanup_free char *sub = NULL;
        if (clean_sub(src ? src : "", &sub) < 0)
            return run_fail(b, ins, err, EPERM, "forbidden path outside the build context: %s",
                            src);
        char *real = NULL;
        cleanup_free char *p =
            *sub ? xasprintf("%s/%s", b->o->context, sub) : xstrdup(b->o->context);
        real = realpath(p, NULL);
        cleanup_free char *ctx = realpath(b->o->context, NULL);
        if (!real)
            return run_fail(b, ins, err, ENOENT,
                            "--mount=type=bind: `%s` not found in the "
                            "context",
                            sub);
        size_t cl = ctx ? strlen(ctx) : 0;
        if (!ctx || strncmp(real, ctx, cl) || (real[cl] && real[cl] != '/' && cl > 1)) {
            free(real);
            return run_fail(b, ins, err, EPERM, "forbidden path outside the build context: %s",
                            src);
        }
        m->source = real;
        /* what it binds is in the key, as COPY's sources are (BuildKit) */
        struct digest d;
        if (context_bind(b, sg, ins, sub, &d, m->sent_dir, sizeof m->sent_dir, &m->sent_lock, err) <
            0)
            return -1;
        if (m->sent_dir[0]) {
            free(m->source);
            m->source = xasprintf("%s/src", m->sent_dir);
        }
        char ds[DIGEST_STR_SIZE];
        digest_str(&d, ds);
        m->key_text = xasprintf("bind:%s:%s:%d:%s", m->target, sub, m->copy, ds);
        return 0;
    }
    case M_TMPFS:
        m->key_text = xasprintf("tmpfs:%s:%s", m->target, m->size ? m->size : "");
        return 0;
    case M_SSH:
        for (size_t i = 0; i < b->o->n_ssh; i++)
            if (!strcmp(b->o->ssh[i].id, m->id))
                m->source = xstrdup(b->o->ssh[i].socket);
        if (!m->source && m->required)
            return run_fail(b, ins, err, ENOENT,
                            "no SSH key \"%s\" forwarded from the client (imgfs build --ssh "
                            "%s[=SOCKET])",
                            m->id, m->id);
        m->key_text = xasprintf("ssh:%s:%s", m->id, m->target);
        return 0;
    case M_SECRET:
        for (size_t i = 0; i < b->o->n_secrets; i++)
            if (!strcmp(b->o->secrets[i].id, m->id))
                m->source = xstrdup(b->o->secrets[i].src);
        if (!m->source && m->required)
            return run_fail(b, ins, err, ENOENT, "secret %s: not found", m->id);
        /* the secret's content is never part of the key */
        m->key_text = xasprintf("secret:%s:%s:%s", m->id, m->target, m->env ? m->env : "");
        return 0;
    }
    return 0;
}

/* ---- output ---- */

struct pump {
    struct build *b;
    int step;
};

static void pump_output(void *p, const char *data, size_t len)
{
    struct pump *pu = p;
    const struct build_progress *pr = pu->b->o->progress;
    if (pr && pr->step_output)
        pr->step_output(pr->ctx, pu->step, data, len);
}

/* Mount points the runner had to make for --mount targets are not the command's changes: take
 * out of the upper directory each part of a target that the parent image does not have. */
static void drop_mountpoints(const struct view *v, const char *upper, struct run_mount *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *path = xstrdup(m[i].target);
        for (;;) {
            if (!*path || !strcmp(path, "/"))
                break;
            if (view_lookup_path(v, path))
                break; /* the image has it: what the command did there stays */
            cleanup_free char *host = xasprintf("%s%s", upper, path);
            struct stat st;
            if (lstat(host, &st) == 0) {
                if (S_ISDIR(st.st_mode)) {
                    if (rmdir(host) < 0)
                        break; /* not empty: the command wrote below it */
                } else if (st.st_size == 0) {
                    unlink(host);
                }
            }
            char *sl = strrchr(path, '/');
            if (!sl)
                break;
            *sl = 0;
        }
    }
}

/* ---- the step ---- */

static char *heredoc_script(const struct df_instruction *ins, bool *only_heredoc)
{
    const char *line = ins->args[0].s;
    while (*line == ' ' || *line == '\t')
        line++;
    *only_heredoc = false;
    if (ins->n_heredocs == 1 && line[0] == '<' && line[1] == '<') {
        const char *p = line + 2 + (line[2] == '-');
        p += strspn(p, "\"'\\");
        size_t nl = strlen(ins->heredocs[0].name);
        if (!strncmp(p, ins->heredocs[0].name, nl)) {
            p += nl;
            p += strspn(p, "\"' \t");
            if (!*p) {
                *only_heredoc = true;
                return xstrdup(ins->heredocs[0].content);
            }
        }
    }
    struct buf s = {0};
    buf_append(&s, ins->args[0].s, strlen(ins->args[0].s));
    buf_append(&s, "\n", 1);
    for (size_t i = 0; i < ins->n_heredocs; i++) {
        const struct df_heredoc *h = &ins->heredocs[i];
        buf_append(&s, h->content, strlen(h->content));
        buf_append(&s, h->name, strlen(h->name));
        buf_append(&s, "\n", 1);
    }
    buf_append(&s, "", 1);
    return (char *)s.data;
}

int run_step(struct build *b, struct stage *sg, const struct df_instruction *ins,
             struct imgfs_err *err)
{
    struct bstate *st = &sg->st;
    json_t *cfg = json_object_get(st->config, "config");
    struct run_mount *mounts = NULL;
    size_t n_mounts = 0;
    char **argv = NULL, **env = NULL, **lowers = NULL;
    struct store_batch *bt = NULL;
    struct store_read *r = NULL;
    struct layer_build_result res = {0};
    struct build_exec ex = {.lock_fd = -1};
    char *created_by = NULL;
    const char *upper = NULL;
    int ret = -1;

    if (!ins->n_args && !ins->n_heredocs)
        return run_fail(b, ins, err, EINVAL, "RUN requires at least one argument");
    /* the command: exec form as is, shell form through SHELL (heredocs in the script) */
    if (ins->json) {
        for (size_t i = 0; i < ins->n_args; i++)
            argv = strv_append(argv, ins->args[i].s);
    } else {
        json_t *shell = json_object_get(cfg, "Shell");
        if (json_is_array(shell) && json_array_size(shell))
            for (size_t i = 0; i < json_array_size(shell); i++)
                argv = strv_append(argv, json_string_value(json_array_get(shell, i)));
        else {
            argv = strv_append(argv, "/bin/sh");
            argv = strv_append(argv, "-c");
        }
        bool only;
        cleanup_free char *script =
            ins->n_heredocs ? heredoc_script(ins, &only) : xstrdup(ins->args[0].s);
        argv = strv_append(argv, script);
    }
    /* the environment: ARGs, then ENV (which wins) */
    env = state_expand_env(st);

    const char *network = b->o->network == BUILD_NET_HOST   ? "host"
                          : b->o->network == BUILD_NET_NONE ? "none"
                                                            : "private";
    for (size_t i = 0; i < ins->n_flags; i++) {
        const struct df_flag *f = &ins->flags[i];
        if (!strcmp(f->name, "network")) {
            const char *v = f->value ? f->value : "";
            if (!strcmp(v, "default"))
                continue;
            if (!strcmp(v, "host") || !strcmp(v, "none"))
                network = !strcmp(v, "host") ? "host" : "none";
            else {
                run_fail(b, ins, err, EINVAL, "unsupported network mode \"%s\"", v);
                goto out;
            }
        } else if (!strcmp(f->name, "mount")) {
            cleanup_free char *spec = NULL;
            if (build_expand(b, st, ins, f->value ? f->value : "", &spec, err) < 0)
                goto out;
            mounts = xrealloc(mounts, (n_mounts + 1) * sizeof *mounts);
            size_t n_ssh = 0;
            for (size_t k = 0; k < n_mounts; k++)
                n_ssh += mounts[k].type == M_SSH;
            if (parse_mount(b, sg, ins, spec, n_ssh, &mounts[n_mounts], err) < 0) {
                mount_free(b, &mounts[n_mounts]);
                goto out;
            }
            n_mounts++;
        } else if (!strcmp(f->name, "security")) {
            run_fail(b, ins, err, ENOTSUP, "RUN --security is not supported");
            goto out;
        }
    }
    const char *user = json_string_value(json_object_get(cfg, "User"));
    const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));

    /* the key: parent chain + the command + what it runs with */
    struct digest key;
    struct digest_ctx *k = digest_ctx_new();
    key_str(k, "run-v1");
    key_digest(k, &st->chain);
    for (size_t i = 0; argv[i]; i++)
        key_str(k, argv[i]);
    key_str(k, "env");
    for (size_t i = 0; env && env[i]; i++)
        key_str(k, env[i]);
    key_str(k, user);
    key_str(k, wd);
    key_str(k, network);
    for (size_t i = 0; i < n_mounts; i++)
        key_str(k, mounts[i].key_text);
    digest_ctx_final(k, &key);
    digest_ctx_free(k);

    /* history: BuildKit's text (mount flags as written; a secret's content is never there) */
    {
        struct buf h = {0};
        buf_append(&h, "RUN ", 4);
        for (size_t i = 0; i < ins->n_flags; i++) {
            cleanup_free char *fl =
                ins->flags[i].value ? xasprintf("--%s=%s ", ins->flags[i].name, ins->flags[i].value)
                                    : xasprintf("--%s ", ins->flags[i].name);
            buf_append(&h, fl, strlen(fl));
        }
        for (size_t i = 0; argv[i]; i++) {
            if (i)
                buf_append(&h, " ", 1);
            buf_append(&h, argv[i], strlen(argv[i]));
        }
        buf_append(&h, " # buildkit", 12);
        created_by = (char *)h.data;
    }
    bool hit;
    if (cache_lookup(b, st, &key, &hit, err) < 0)
        goto out;
    if (hit) {
        state_history(st, created_by, st->step_empty, st->time);
        ret = 0;
        goto out;
    }

    /* the parent: an image the runner mounts, the build's newer layers stacked on it */
    struct digest parent;
    if (build_lowers(b, st, &parent, &lowers, err) < 0)
        goto out;
    struct pump pu = {.b = b, .step = sg->step};
    int status = 0;
    /* what only the command sees, never the key or the history: secrets as env, the agent */
    bool have_agent = false;
    for (size_t i = 0; i < n_mounts; i++) {
        if (mounts[i].type == M_SECRET && mounts[i].env && mounts[i].source) {
            struct buf v = {0};
            if (read_file(mounts[i].source, 1 << 20, &v, err) < 0) {
                err_ctx(err, "%s:%u: secret %s", b->file->name, ins->start_line, mounts[i].id);
                goto out;
            }
            buf_append(&v, "", 1);
            cleanup_free char *kv = xasprintf("%s=%s", mounts[i].env, (char *)v.data);
            explicit_bzero(v.data, v.len);
            buf_free(&v);
            env = strv_append(env, kv);
            explicit_bzero(kv, strlen(kv));
        } else if (mounts[i].type == M_SSH && mounts[i].source && !have_agent) {
            cleanup_free char *kv = xasprintf("SSH_AUTH_SOCK=%s", mounts[i].target);
            env = strv_append(env, kv);
            have_agent = true;
        }
    }
    ex = (struct build_exec){
        .image = &parent,
        .lowers = lowers,
        .argv = argv,
        .env = env,
        .user = user && *user ? user : NULL,
        .workdir = wd && *wd ? wd : "/",
        .network = network,
        .output = pump_output,
        .output_ctx = &pu,
    };
    struct build_mount *cm = xcalloc(n_mounts + 1, sizeof *cm);
    size_t n_cm = 0;
    for (size_t i = 0; i < n_mounts; i++) {
        const struct run_mount *m = &mounts[i];
        if ((m->type == M_SECRET || m->type == M_SSH) && (!m->source || !*m->target))
            continue;
        bool seed = m->type == M_CACHE && m->from_image;
        cm[n_cm] = (struct build_mount){
            .target = m->target,
            .source = m->type == M_TMPFS ? NULL : m->source,
            .tmpfs = m->type == M_TMPFS,
            .readonly = m->readonly || m->type == M_SECRET,
            .options = m->size ? xasprintf("size=%s", m->size) : NULL,
            .image = seed ? NULL : m->from_image,
            .copy = m->copy,
            .seed_image = seed ? m->from_image : NULL,
            .seed_path = seed ? m->seed_path : NULL,
        };
        n_cm++;
    }
    ex.mounts = cm;
    ex.n_mounts = n_cm;
    int rc = build_exec(b, &ex, &status, err);
    for (size_t i = 0; i < n_cm; i++)
        free(cm[i].options);
    free(cm);
    if (rc < 0) {
        err_ctx(err, "%s:%u: RUN", b->file->name, ins->start_line);
        goto out;
    }
    if (build_stopping(b)) {
        build_stop_error(b, err);
        goto out;
    }
    if (status != 0) {
        sg->failed_status = status;
        struct buf shown = {0};
        for (size_t i = 0; argv[i]; i++) {
            if (i)
                buf_append(&shown, " ", 1);
            buf_append(&shown, argv[i], strlen(argv[i]));
        }
        buf_append(&shown, "", 1);
        run_fail(b, ins, err, ECHILD, "process \"%s\" did not complete successfully: exit code: %d",
                 (char *)shown.data, status);
        buf_free(&shown);
        goto out;
    }
    upper = ex.upper;
    /* the changes, minus our mount points */
    if (n_mounts) {
        if (store_read_begin(b->s, &r, err) < 0)
            goto out;
        const struct view *v;
        if (state_view(b, st, r, &v, err) < 0)
            goto out;
        drop_mountpoints(v, upper, mounts, n_mounts);
        store_read_end(r);
        r = NULL;
    }
    if (store_batch_begin(b->s, &bt, err) < 0)
        goto out;
    if (layer_from_upper(bt, upper, b->o->source_date_epoch, ctr_mount_points, &res, err) < 0) {
        err_ctx(err, "%s:%u: RUN: the new layer", b->file->name, ins->start_line);
        goto out;
    }
    /* a command that changed nothing makes no layer (BuildKit: empty_layer) */
    bool empty = res.files == 0;
    if (cache_record(b, bt, st, &key, empty ? NULL : &res.diff_id, res.size, err) < 0)
        goto out;
    ret = store_batch_commit(bt, err);
    bt = NULL;
    if (ret == 0)
        state_history(st, created_by, empty, st->time);
    /* the next RUN stacks this directory instead of mounting an image of this layer */
    if (ret == 0 && !empty)
        build_keep_upper(b, &ex, &res.diff_id);
out:
    if (r)
        store_read_end(r);
    store_batch_abort(bt);
    buf_free(&res.table);
    build_exec_release(b, &ex);
    for (size_t i = 0; i < n_mounts; i++)
        mount_free(b, &mounts[i]);
    free(mounts);
    strv_free(argv);
    strv_free(env);
    strv_free(lowers);
    free(created_by);
    return ret;
}
