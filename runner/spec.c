/* spec.c — a container's options kept on disk (RUN_DIR/containers/ID/spec.json), so that `start`
 * can run a created or exited container again as `run` would have: `create` writes it, `run`
 * writes it too (a stopped container can be started again), `start` reads it. The image is not
 * in it, only its manifest digest: `start` opens it in the store again. */
#include "ctr_internal.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *str(const char *s)
{
    return s ? json_string(s) : json_null();
}

int ctr_spec_save(const char *dir, const struct ctr_spec *spec, struct imgfs_err *err)
{
    /* "-e NAME": the value it has now, as Docker resolves it when the container is created */
    json_t *env = json_array();
    for (size_t i = 0; spec->env && spec->env[i]; i++) {
        if (strchr(spec->env[i], '=')) {
            json_array_append_new(env, json_string(spec->env[i]));
            continue;
        }
        const char *v = getenv(spec->env[i]);
        if (v)
            json_array_append_new(env, json_sprintf("%s=%s", spec->env[i], v));
    }
    json_t *mounts = json_array();
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct ctr_mount *m = &spec->mounts[i];
        json_array_append_new(
            mounts,
            json_pack("{s:o, s:s, s:b, s:b, s:o, s:b, s:o, s:b, s:b, s:b, s:o}", "source",
                      str(m->source), "target", m->target, "readonly", m->readonly, "tmpfs",
                      m->tmpfs, "options", str(m->options), "volume", m->volume, "volume_name",
                      str(m->volume_name), "anonymous", m->anonymous, "nocopy", m->nocopy,
                      "mount_flag", m->mount_flag, "propagation", str(m->propagation)));
    }
    json_t *devices = json_array();
    for (size_t i = 0; i < spec->n_devices; i++) {
        const struct ctr_device *d = &spec->devices[i];
        json_array_append_new(
            devices, json_pack("{s:s, s:s, s:s#, s:i, s:i, s:i, s:i, s:i, s:s}", "host", d->host,
                               "container", d->container, "type", &d->type, (size_t)1, "major",
                               (int)d->major, "minor", (int)d->minor, "mode", (int)d->mode, "uid",
                               (int)d->uid, "gid", (int)d->gid, "perms", d->perms));
    }
    json_t *ulimits = json_array();
    for (size_t i = 0; i < spec->n_ulimits; i++)
        json_array_append_new(ulimits,
                              json_pack("{s:i, s:I, s:I}", "resource", spec->ulimits[i].resource,
                                        "soft", (json_int_t)spec->ulimits[i].soft, "hard",
                                        (json_int_t)spec->ulimits[i].hard));
    /* a profile file by absolute path: start runs from anywhere */
    char profile[PATH_MAX];
    const char *seccomp = spec->seccomp;
    if (seccomp && strcmp(seccomp, "unconfined") && realpath(seccomp, profile))
        seccomp = profile;

    json_t *o = json_object();
    json_object_set_new(o, "image", str(spec->image));
    json_object_set_new(o, "mount_key", str(spec->mount_key));
    json_object_set_new(o, "lower", str(spec->mount_key ? NULL : spec->lower));
    json_object_set_new(o, "command", ctr_json_words(spec->command));
    json_object_set_new(o, "entrypoint", ctr_json_words(spec->entrypoint));
    json_object_set_new(o, "env", env);
    json_object_set_new(o, "workdir", str(spec->workdir));
    json_object_set_new(o, "user", str(spec->user));
    json_object_set_new(o, "hostname", str(spec->hostname));
    json_object_set_new(o, "tty", json_boolean(spec->tty));
    json_object_set_new(o, "interactive", json_boolean(spec->interactive));
    json_object_set_new(o, "remove", json_boolean(spec->remove));
    json_object_set_new(o, "read_only", json_boolean(spec->read_only));
    json_object_set_new(o, "privileged", json_boolean(spec->privileged));
    json_object_set_new(o, "no_new_privileges", json_boolean(spec->no_new_privileges));
    json_object_set_new(o, "mounts", mounts);
    json_object_set_new(o, "devices", devices);
    json_object_set_new(o, "cap_add", ctr_json_words(spec->cap_add));
    json_object_set_new(o, "cap_drop", ctr_json_words(spec->cap_drop));
    json_object_set_new(o, "seccomp", str(seccomp));
    json_object_set_new(o, "memory_bytes", json_integer(spec->memory_bytes));
    json_object_set_new(o, "pids_limit", json_integer(spec->pids_limit));
    json_object_set_new(o, "cpus", json_real(spec->cpus));
    json_object_set_new(o, "network", str(spec->network));
    json_object_set_new(o, "publish", ctr_json_words(spec->publish));
    json_object_set_new(o, "labels", ctr_json_words(spec->labels));
    json_object_set_new(o, "add_hosts", ctr_json_words(spec->add_hosts));
    json_object_set_new(o, "dns", ctr_json_words(spec->dns));
    json_object_set_new(o, "dns_search", ctr_json_words(spec->dns_search));
    json_object_set_new(o, "dns_options", ctr_json_words(spec->dns_options));
    json_object_set_new(o, "group_add", ctr_json_words(spec->group_add));
    json_object_set_new(o, "pid_host", json_boolean(spec->pid_host));
    json_object_set_new(o, "ipc_host", json_boolean(spec->ipc_host));
    json_object_set_new(o, "shm_bytes", json_integer(spec->shm_bytes));
    json_object_set_new(o, "ulimits", ulimits);
    json_object_set_new(o, "stop_signal", str(spec->stop_signal));
    json_object_set_new(o, "stop_timeout",
                        spec->has_stop_timeout ? json_integer(spec->stop_timeout) : json_null());
    json_object_set_new(o, "restart", json_string(ctr_restart_name(spec->restart)));
    json_object_set_new(o, "restart_max", json_integer(spec->restart_max));

    return ctr_json_write(dir, "spec.json", o, err);
}

static const char *get_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool get_bool(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

/* A NULL-terminated list pointing into the JSON (NULL for null), remembered to be freed. */
static char **get_words(struct ctr_saved_spec *s, json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a))
        return NULL;
    char **v = xcalloc(json_array_size(a) + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *w = json_string_value(json_array_get(a, i));
        if (w)
            v[n++] = (char *)w;
    }
    s->lists = xrealloc(s->lists, (s->n_lists + 1) * sizeof *s->lists);
    s->lists[s->n_lists++] = v;
    return v;
}

int ctr_spec_load(const char *dir, struct ctr_saved_spec *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    cleanup_free char *path = xasprintf("%s/spec.json", dir);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return err_set(err, access(path, F_OK) < 0 ? ENOENT : EINVAL,
                       "reading `%s`: %s (a container made before `start` existed cannot be "
                       "started again)",
                       path, je.text);
    }
    out->json = o;
    struct ctr_spec *sp = &out->spec;
    sp->image = get_str(o, "image");
    sp->mount_key = get_str(o, "mount_key");
    sp->lower = get_str(o, "lower");
    sp->command = get_words(out, o, "command");
    sp->entrypoint = get_words(out, o, "entrypoint");
    sp->env = get_words(out, o, "env");
    sp->workdir = get_str(o, "workdir");
    sp->user = get_str(o, "user");
    sp->hostname = get_str(o, "hostname");
    sp->tty = get_bool(o, "tty");
    sp->interactive = get_bool(o, "interactive");
    sp->remove = get_bool(o, "remove");
    sp->read_only = get_bool(o, "read_only");
    sp->privileged = get_bool(o, "privileged");
    sp->no_new_privileges = get_bool(o, "no_new_privileges");
    json_t *mounts = json_object_get(o, "mounts");
    sp->n_mounts = json_array_size(mounts);
    struct ctr_mount *m = xcalloc(sp->n_mounts + 1, sizeof *m);
    for (size_t i = 0; i < sp->n_mounts; i++) {
        json_t *j = json_array_get(mounts, i);
        m[i].source = (char *)get_str(j, "source");
        m[i].target = (char *)get_str(j, "target");
        m[i].readonly = get_bool(j, "readonly");
        m[i].tmpfs = get_bool(j, "tmpfs");
        m[i].options = (char *)get_str(j, "options");
        m[i].volume = get_bool(j, "volume");
        m[i].volume_name = (char *)get_str(j, "volume_name");
        m[i].anonymous = get_bool(j, "anonymous");
        m[i].nocopy = get_bool(j, "nocopy");
        m[i].mount_flag = get_bool(j, "mount_flag");
        m[i].propagation = (char *)get_str(j, "propagation");
        if (!m[i].target || (!m[i].tmpfs && !m[i].source)) {
            free(m);
            ctr_saved_spec_free(out);
            return err_set(err, EINVAL, "`%s`: mount %zu has no target or source", path, i);
        }
    }
    sp->mounts = m;
    json_t *devices = json_object_get(o, "devices");
    sp->n_devices = json_array_size(devices);
    sp->devices = xcalloc(sp->n_devices + 1, sizeof *sp->devices);
    for (size_t i = 0; i < sp->n_devices; i++) {
        json_t *j = json_array_get(devices, i);
        struct ctr_device *d = &sp->devices[i];
        d->host = (char *)get_str(j, "host");
        d->container = (char *)get_str(j, "container");
        const char *type = get_str(j, "type"), *perms = get_str(j, "perms");
        d->type = type && *type == 'b' ? 'b' : 'c';
        d->major = (unsigned)json_integer_value(json_object_get(j, "major"));
        d->minor = (unsigned)json_integer_value(json_object_get(j, "minor"));
        d->mode = (mode_t)json_integer_value(json_object_get(j, "mode"));
        d->uid = (uid_t)json_integer_value(json_object_get(j, "uid"));
        d->gid = (gid_t)json_integer_value(json_object_get(j, "gid"));
        snprintf(d->perms, sizeof d->perms, "%s", perms ? perms : "rwm");
        if (!d->host || !d->container || d->container[0] != '/') {
            ctr_saved_spec_free(out);
            return err_set(err, EINVAL, "`%s`: device %zu has no host or container path", path, i);
        }
    }
    sp->cap_add = get_words(out, o, "cap_add");
    sp->cap_drop = get_words(out, o, "cap_drop");
    sp->seccomp = get_str(o, "seccomp");
    sp->memory_bytes = json_integer_value(json_object_get(o, "memory_bytes"));
    sp->pids_limit = json_integer_value(json_object_get(o, "pids_limit"));
    sp->cpus = json_number_value(json_object_get(o, "cpus"));
    sp->network = get_str(o, "network");
    sp->publish = get_words(out, o, "publish");
    sp->labels = get_words(out, o, "labels");
    sp->add_hosts = get_words(out, o, "add_hosts");
    sp->dns = get_words(out, o, "dns");
    sp->dns_search = get_words(out, o, "dns_search");
    sp->dns_options = get_words(out, o, "dns_options");
    sp->group_add = get_words(out, o, "group_add");
    sp->pid_host = get_bool(o, "pid_host");
    sp->ipc_host = get_bool(o, "ipc_host");
    sp->shm_bytes = json_integer_value(json_object_get(o, "shm_bytes"));
    json_t *ulimits = json_object_get(o, "ulimits");
    sp->n_ulimits = json_array_size(ulimits);
    sp->ulimits = xcalloc(sp->n_ulimits + 1, sizeof *sp->ulimits);
    for (size_t i = 0; i < sp->n_ulimits; i++) {
        json_t *j = json_array_get(ulimits, i);
        sp->ulimits[i].resource = (int)json_integer_value(json_object_get(j, "resource"));
        sp->ulimits[i].soft = (uint64_t)json_integer_value(json_object_get(j, "soft"));
        sp->ulimits[i].hard = (uint64_t)json_integer_value(json_object_get(j, "hard"));
    }
    sp->stop_signal = get_str(o, "stop_signal");
    json_t *timeout = json_object_get(o, "stop_timeout");
    sp->has_stop_timeout = json_is_integer(timeout);
    sp->stop_timeout = (int)json_integer_value(timeout);
    const char *restart = get_str(o, "restart");
    int ignored_max;
    if (restart && ctr_restart_parse(restart, &sp->restart, &ignored_max, err) < 0) {
        ctr_saved_spec_free(out);
        return err_ctx(err, "`%s`", path);
    }
    sp->restart_max = (int)json_integer_value(json_object_get(o, "restart_max"));
    if (!sp->mount_key && !sp->lower) {
        ctr_saved_spec_free(out);
        return err_set(err, EINVAL, "`%s`: neither an image nor a rootfs directory", path);
    }
    return 0;
}

void ctr_saved_spec_free(struct ctr_saved_spec *s)
{
    for (size_t i = 0; i < s->n_lists; i++)
        free(s->lists[i]);
    free(s->lists);
    free(s->spec.mounts);
    free(s->spec.devices);
    free(s->spec.ulimits);
    json_decref(s->json);
    memset(s, 0, sizeof *s);
}
