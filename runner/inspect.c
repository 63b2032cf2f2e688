/* inspect.c — a container as `docker inspect` shows it. What the state file does not keep (the
 * command's words, the config the container was made with, its mounts and ports) is written once
 * by the monitor as RUN_DIR/containers/ID/config.json, in Docker's shapes, and merged with the
 * live state here. */
#include "ctr_internal.h"
#include "net.h"
#include "../fs/image.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

json_t *ctr_json_words(char *const *v)
{
    if (!v)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *nstr(const char *s)
{
    return json_string(s ? s : "");
}

/* "key=value" list as an object */
static json_t *kv_object(char *const *v)
{
    json_t *o = json_object();
    for (size_t i = 0; v && v[i]; i++) {
        const char *eq = strchr(v[i], '=');
        cleanup_free char *k = eq ? strndup(v[i], (size_t)(eq - v[i])) : xstrdup(v[i]);
        json_object_set_new(o, k, json_string(eq ? eq + 1 : ""));
    }
    return o;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ctr_config_write(const char *dir, const struct ctr_spec *spec, char *const *argv,
                     char *const *env, struct imgfs_err *err)
{
    const struct image_config *ic = spec->config;
    json_t *exposed = json_object();
    for (size_t i = 0; ic && ic->exposed_ports && ic->exposed_ports[i]; i++)
        json_object_set_new(exposed, ic->exposed_ports[i], json_object());
    json_t *bindings = json_object();
    for (size_t i = 0; spec->publish && spec->publish[i]; i++) {
        struct net_port p;
        struct imgfs_err ignored;
        if (net_parse_port(spec->publish[i], &p, &ignored) < 0)
            continue;
        char key[32], port[16];
        snprintf(key, sizeof key, "%u/%s", p.ctr_port, p.udp ? "udp" : "tcp");
        snprintf(port, sizeof port, "%u", p.host_port);
        json_t *list = json_object_get(bindings, key);
        if (!list) {
            list = json_array();
            json_object_set_new(bindings, key, list);
        }
        json_array_append_new(list, json_pack("{s:s, s:s}", "HostIp", p.host_ip, "HostPort", port));
        if (!json_object_get(exposed, key))
            json_object_set_new(exposed, key, json_object());
    }
    json_t *mounts = json_array(), *binds = json_array(), *tmpfs = json_object();
    json_t *host_mounts = json_array();
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct ctr_mount *m = &spec->mounts[i];
        if (m->tmpfs && m->mount_flag) {
            json_t *hm = json_pack("{s:s, s:s}", "Type", "tmpfs", "Target", m->target);
            if (m->readonly)
                json_object_set_new(hm, "ReadOnly", json_true());
            json_array_append_new(host_mounts, hm);
        } else if (m->tmpfs) {
            json_object_set_new(tmpfs, m->target, json_string(m->options ? m->options : ""));
        }
        if (m->tmpfs) {
            json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "Type",
                                                    "tmpfs", "Source", "", "Destination", m->target,
                                                    "Mode", "", "RW", 1, "Propagation", ""));
            continue;
        }
        if (m->volume) {
            /* Docker's shapes: -v NAME:CTR is in Binds (mode "z"), --mount in HostConfig.Mounts,
             * an anonymous one of the image or `-v CTR` in neither */
            if (m->mount_flag) {
                json_t *hm = json_pack("{s:s, s:s, s:s}", "Type", "volume", "Source",
                                       m->anonymous ? "" : m->volume_name, "Target", m->target);
                if (m->readonly)
                    json_object_set_new(hm, "ReadOnly", json_true());
                if (m->nocopy)
                    json_object_set_new(hm, "VolumeOptions", json_pack("{s:b}", "NoCopy", 1));
                json_array_append_new(host_mounts, hm);
            } else if (!m->anonymous)
                json_array_append_new(binds, json_sprintf("%s:%s%s", m->volume_name, m->target,
                                                          m->readonly ? ":ro" : ""));
            json_array_append_new(
                mounts,
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "volume", "Name",
                          m->volume_name ? m->volume_name : "", "Source",
                          m->source ? m->source : "", "Destination", m->target, "Driver", "local",
                          "Mode", m->anonymous ? "" : "z", "RW", !m->readonly, "Propagation", ""));
            continue;
        }
        if (m->mount_flag) {
            json_t *hm = json_pack("{s:s, s:s, s:s}", "Type", "bind", "Source", m->source, "Target",
                                   m->target);
            if (m->readonly)
                json_object_set_new(hm, "ReadOnly", json_true());
            if (m->propagation)
                json_object_set_new(hm, "BindOptions",
                                    json_pack("{s:s}", "Propagation", m->propagation));
            json_array_append_new(host_mounts, hm);
        } else
            json_array_append_new(
                binds, json_sprintf("%s:%s%s", m->source, m->target, m->readonly ? ":ro" : ""));
        json_array_append_new(mounts,
                              json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "bind", "Source",
                                        m->source, "Destination", m->target, "Mode",
                                        m->readonly ? "ro" : "", "RW", !m->readonly, "Propagation",
                                        m->propagation ? m->propagation : "rprivate"));
    }
    if (!json_array_size(host_mounts)) {
        json_decref(host_mounts);
        host_mounts = json_null();
    }
    /* Docker's Config.Env: the -e entries, then the image's not overridden */
    json_t *envs = json_array();
    for (size_t i = 0; spec->env && spec->env[i]; i++)
        json_array_append_new(envs, json_string(spec->env[i]));
    for (size_t i = 0; ic && ic->env && ic->env[i]; i++) {
        size_t kl = strcspn(ic->env[i], "=");
        bool overridden = false;
        for (size_t j = 0; spec->env && spec->env[j] && !overridden; j++)
            overridden = !strncmp(spec->env[j], ic->env[i], kl) &&
                         (spec->env[j][kl] == '=' || !spec->env[j][kl]);
        if (!overridden)
            json_array_append_new(envs, json_string(ic->env[i]));
    }
    (void)env;
    /* Docker's Config.Volumes: the image's VOLUMEs and the -v CTR ones; null when none */
    char **paths = strv_dup(ic ? ic->volumes : NULL);
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (spec->mounts[i].volume && spec->mounts[i].anonymous && !spec->mounts[i].mount_flag)
            paths = strv_append(paths, spec->mounts[i].target);
    if (paths) /* in Go's order for a map: sorted */
        qsort(paths, strv_len(paths), sizeof *paths, by_string);
    json_t *volumes = json_object();
    for (size_t i = 0; paths && paths[i]; i++)
        json_object_set_new(volumes, paths[i], json_object());
    strv_free(paths);
    if (!json_object_size(volumes)) {
        json_decref(volumes);
        volumes = json_null();
    }
    if (!json_object_size(exposed)) { /* Docker omits an empty set: null */
        json_decref(exposed);
        exposed = json_null();
    }
    const char *network = spec->network ? spec->network : "private";
    json_t *labels = kv_object(ic ? ic->labels : NULL);
    json_t *own_labels = kv_object(spec->labels);
    json_object_update(labels, own_labels); /* --label wins over the image's */
    json_decref(own_labels);
    char hostname[64];
    snprintf(hostname, sizeof hostname, "%.12s", spec->id);
    json_t *o = json_pack(
        "{s:s, s:o, s:o, s:{s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:b},"
        " s:{s:s, s:o, s:b, s:b, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o}, s:o}",
        "Path", argv && argv[0] ? argv[0] : "", "Args",
        ctr_json_words(argv && argv[0] ? argv + 1 : NULL), "Mounts", mounts, "Config", "Hostname",
        spec->hostname ? spec->hostname : hostname, "User",
        spec->user       ? spec->user
        : ic && ic->user ? ic->user
                         : "",
        "Env", envs, "Cmd",
        ctr_json_words(spec->command && spec->command[0] ? spec->command
                       : ic                              ? ic->cmd
                                                         : NULL),
        "Image", spec->image ? spec->image : "", "WorkingDir",
        spec->workdir           ? spec->workdir
        : ic && ic->working_dir ? ic->working_dir
                                : "",
        "Entrypoint",
        ctr_json_words(spec->entrypoint ? spec->entrypoint
                       : ic             ? ic->entrypoint
                                        : NULL),
        "Labels", labels, "ExposedPorts", exposed, "Volumes", volumes, "Tty", spec->tty,
        "OpenStdin", spec->interactive, "AttachStdout", !spec->detach, "HostConfig", "NetworkMode",
        !strcmp(network, "private") ? "slirp4netns" : network, "PortBindings", bindings,
        "Privileged", spec->privileged, "ReadonlyRootfs", spec->read_only, "Memory",
        (json_int_t)spec->memory_bytes, "NanoCpus", (json_int_t)(spec->cpus * 1e9), "PidsLimit",
        (json_int_t)spec->pids_limit, "Binds", binds, "Mounts", host_mounts, "Tmpfs", tmpfs,
        "CapAdd", ctr_json_words(spec->cap_add), "CapDrop", ctr_json_words(spec->cap_drop),
        "AutoRemove", json_boolean(spec->remove));
    if (!o)
        return err_set(err, ENOMEM, "encoding the container's config");
    /* Docker: null unless --init was given */
    json_object_set_new(json_object_get(o, "HostConfig"), "Init",
                        spec->init ? json_true() : json_null());
    return ctr_json_write(dir, "config.json", o, err);
}

/* RFC 3339 in UTC, as Docker prints its times; Go's zero time for 0 */
static json_t *rfc3339(int64_t t)
{
    if (t <= 0)
        return json_string("0001-01-01T00:00:00Z");
    char buf[64];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *ctr_inspect(const char *run_dir, const struct ctr_state *s)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/config.json", run_dir, s->id);
    json_t *c = json_load_file(path, 0, NULL);
    if (!json_is_object(c)) { /* a container made before config.json was written */
        json_decref(c);
        c = json_pack("{s:s, s:[], s:[], s:{}, s:{}}", "Path", s->command ? s->command : "", "Args",
                      "Mounts", "Config", "HostConfig");
    }
    bool running = s->status == CTR_RUNNING;
    bool restarting = s->status == CTR_RESTARTING; /* Docker: Running and Restarting, no Pid */
    json_t *o = json_object();
    json_object_set_new(o, "Id", json_string(s->id));
    json_object_set_new(o, "Created", rfc3339(s->created));
    json_object_set(o, "Path", json_object_get(c, "Path"));
    json_object_set(o, "Args", json_object_get(c, "Args"));
    json_object_set_new(o, "State",
                        json_pack("{s:s, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:s, s:o, s:o}",
                                  "Status", ctr_status_name(s), "Running", running || restarting,
                                  "Paused", 0, "Restarting", restarting, "OOMKilled", s->oom_killed,
                                  "Dead", 0, "Pid", running ? (int)s->init_pid : 0, "ExitCode",
                                  s->status == CTR_EXITED || restarting ? s->exit_code : 0, "Error",
                                  s->error ? s->error : "", "StartedAt", rfc3339(s->started),
                                  "FinishedAt", rfc3339(s->finished)));
    json_object_set_new(o, "Image", nstr(s->image_id));
    json_object_set_new(o, "Name", json_sprintf("/%s", s->name));
    json_object_set_new(o, "RestartCount", json_integer(s->restart_count));
    json_t *host = json_object_get(c, "HostConfig");
    if (json_is_object(host))
        json_object_set_new(host, "RestartPolicy",
                            json_pack("{s:s, s:i}", "Name", ctr_restart_name(s->restart),
                                      "MaximumRetryCount", s->restart_max));
    json_object_set(o, "HostConfig", host);
    json_object_set(o, "Mounts", json_object_get(c, "Mounts"));
    json_t *config = json_object_get(c, "Config");
    json_object_set(o, "Config", config);
    /* Docker's NetworkSettings.Ports: each exposed port, with its bindings or null */
    json_t *ports = json_object();
    json_t *bindings = json_object_get(json_object_get(c, "HostConfig"), "PortBindings");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(config, "ExposedPorts"), k, v)
    {
        json_t *b = running ? json_object_get(bindings, k) : NULL;
        json_object_set_new(ports, k, b ? json_deep_copy(b) : json_null());
    }
    json_object_set_new(o, "NetworkSettings", json_pack("{s:o}", "Ports", ports));
    json_decref(c);
    return o;
}
