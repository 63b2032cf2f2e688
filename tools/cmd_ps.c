/* imgfs ps — list containers, with a status that is true even when a monitor was killed. */
#include "../fs/template.h"
#include "../runner/runner.h"
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: imgfs ps [OPTIONS]\n\n"
    "List containers (running ones; -a for all).\n\n"
    "Options:\n"
    "  -a, --all             show every container, not only running ones\n"
    "  -f, --filter FILTER   only those matching KEY=VALUE: name= (a part of the name),\n"
    "                        id= (an id prefix), status= (created, running, exited; implies\n"
    "                        -a), label=KEY[=VALUE], ancestor= (image name or id prefix).\n"
    "                        The same key again: either; different keys: all\n"
    "      --format TMPL     a Go template per container (docs/cli.md), \"table TMPL\" with\n"
    "                        headers; fields: .ID .Image .Command .CreatedAt .RunningFor .Ports\n"
    "                        .Status .State .Names .Labels .Mounts .Networks\n"
    "  -n, --last N          the N last created containers (all states)\n"
    "  -l, --latest          the last created container (all states)\n"
    "  -q, --quiet           only container ids\n"
    "      --no-trunc        full ids and commands\n"
    "      --json            one JSON array\n"
    "  -h, --help            show this help\n";

static const char default_format[] =
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t"
    "{{.Status}}\\t{{.Ports}}\\t{{.Names}}";

static void status_text(const struct ctr_state *s, char *buf, size_t len)
{
    char d[64];
    int64_t now = (int64_t)time(NULL);
    switch (s->status) {
    case CTR_CREATED:
        snprintf(buf, len, "Created");
        break;
    case CTR_RUNNING:
        cli_human_duration(now - s->started, d, sizeof d);
        snprintf(buf, len, "Up %s", d);
        break;
    case CTR_EXITED:
        cli_human_duration(now - s->finished, d, sizeof d);
        snprintf(buf, len, "Exited (%d) %s ago%s", s->exit_code, d,
                 s->error && !strncmp(s->error, "rootfs lost", 11) ? " (rootfs lost)" : "");
        break;
    case CTR_RESTARTING: /* Docker's: the last exit code, since when it waits */
        cli_human_duration(now - s->finished, d, sizeof d);
        snprintf(buf, len, "Restarting (%d) %s ago", s->exit_code, d);
        break;
    }
}

/* Docker's PORTS text: "0.0.0.0:8080->80/tcp, 53/udp" from NetworkSettings.Ports */
static char *ports_text(json_t *ports)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(ports, k, v)
    {
        if (!json_array_size(v)) {
            fprintf(m, "%s%s", first ? "" : ", ", k);
            first = false;
        }
        size_t i;
        json_t *b;
        json_array_foreach(v, i, b)
        {
            const char *ip = json_string_value(json_object_get(b, "HostIp"));
            fprintf(m, "%s%s:%s->%s", first ? "" : ", ", ip && *ip ? ip : "0.0.0.0",
                    json_string_value(json_object_get(b, "HostPort")), k);
            first = false;
        }
    }
    fclose(m);
    return buf;
}

static char *kv_text(json_t *labels)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach(labels, k, v)
    {
        fprintf(m, "%s%s=%s", first ? "" : ",", k, json_string_value(v));
        first = false;
    }
    fclose(m);
    return buf;
}

/* The row a --format template sees, in Docker's field names (all strings, as Docker's are). */
static json_t *ps_row(const struct ctr_state *s, json_t *insp, bool no_trunc)
{
    char status[96], created[96], d[64], at[64], cmd[96];
    status_text(s, status, sizeof status);
    cli_human_duration((int64_t)time(NULL) - s->created, d, sizeof d);
    snprintf(created, sizeof created, "%s ago", d);
    time_t t = (time_t)s->created;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(at, sizeof at, "%Y-%m-%d %H:%M:%S %z %Z", &tm);
    /* Docker's COMMAND: the words, those with spaces in single quotes */
    cleanup_free char *quoted = NULL;
    size_t qlen = 0;
    FILE *qm = open_memstream(&quoted, &qlen);
    const char *path = json_string_value(json_object_get(insp, "Path"));
    fputs(path && *path ? path : (s->command ? s->command : ""), qm);
    size_t ai;
    json_t *av;
    json_array_foreach(json_object_get(insp, "Args"), ai, av)
    {
        const char *w = json_string_value(av);
        fprintf(qm, strpbrk(w ? w : "", " \t") || !w || !*w ? " '%s'" : " %s", w ? w : "");
    }
    fclose(qm);
    const char *full = quoted;
    if (!no_trunc && strlen(full) > 20)
        snprintf(cmd, sizeof cmd, "\"%.19s…\"", full);
    else
        snprintf(cmd, sizeof cmd, "\"%.90s\"", full);
    json_t *cmd_full = no_trunc ? json_sprintf("\"%s\"", full) : json_string(cmd);
    cleanup_free char *ports =
        ports_text(json_object_get(json_object_get(insp, "NetworkSettings"), "Ports"));
    cleanup_free char *labels = kv_text(json_object_get(json_object_get(insp, "Config"), "Labels"));
    char *mounts = NULL;
    size_t mlen = 0;
    FILE *m = open_memstream(&mounts, &mlen);
    size_t i, volumes = 0;
    json_t *e;
    json_array_foreach(json_object_get(insp, "Mounts"), i, e)
    {
        fprintf(m, "%s%s", i ? "," : "", json_string_value(json_object_get(e, "Destination")));
        volumes += !strcmp(json_string_value(json_object_get(e, "Type")) ?: "", "volume");
    }
    fclose(m);
    const char *net =
        json_string_value(json_object_get(json_object_get(insp, "HostConfig"), "NetworkMode"));
    json_t *o = json_pack(
        "{s:s#, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID", s->id,
        no_trunc ? 64 : 12, "Image", s->image ? s->image : "", "Command", cmd_full, "CreatedAt",
        at, "RunningFor", created, "Ports", ports ? ports : "", "Status", status, "State",
        ctr_status_name(s), "Names", s->name, "Labels", labels ? labels : "", "Mounts",
        mounts ? mounts : "", "Networks", net ? net : "");
    json_object_set_new(o, "LocalVolumes", json_sprintf("%zu", volumes));
    free(mounts);
    return o;
}

struct filters {
    char **name, **id, **status, **label, **ancestor; /* NULL-terminated lists, or NULL */
};

static void push(char ***list, const char *v)
{
    size_t n = 0;
    while (*list && (*list)[n])
        n++;
    *list = xrealloc(*list, (n + 2) * sizeof **list);
    (*list)[n] = (char *)v;
    (*list)[n + 1] = NULL;
}

/* -1: not KEY=VALUE, a usage error (125); -2: a key or status Docker's daemon refuses (1) */
static int filter_add(struct filters *f, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq) {
        cli_error("ps", "bad format of filter (expected name=value): %s", spec);
        return -1;
    }
    size_t k = (size_t)(eq - spec);
    const char *v = eq + 1;
    if (k == 4 && !strncmp(spec, "name", 4))
        push(&f->name, v);
    else if (k == 2 && !strncmp(spec, "id", 2))
        push(&f->id, v);
    else if (k == 6 && !strncmp(spec, "status", 6)) {
        static const char *const known[] = {"created", "restarting", "running", "removing",
                                            "paused",  "exited",     "dead",    NULL};
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok |= !strcmp(known[i], v);
        if (!ok) {
            cli_error("ps", "Invalid filter 'status=%s'", v);
            return -2;
        }
        push(&f->status, v);
    } else if (k == 5 && !strncmp(spec, "label", 5))
        push(&f->label, v);
    else if (k == 8 && !strncmp(spec, "ancestor", 8))
        push(&f->ancestor, v);
    else {
        cli_error("ps", "Invalid filter '%.*s' (known: name, id, status, label, ancestor)", (int)k,
                  spec);
        return -2;
    }
    return 0;
}

static bool any_of(char **list,
                   bool (*match)(const char *want, const struct ctr_state *s, json_t *insp),
                   const struct ctr_state *s, json_t *insp)
{
    if (!list)
        return true;
    for (char **p = list; *p; p++)
        if (match(*p, s, insp))
            return true;
    return false;
}

static bool m_name(const char *w, const struct ctr_state *s, json_t *insp)
{
    (void)insp;
    return strstr(s->name, w) != NULL;
}
static bool m_id(const char *w, const struct ctr_state *s, json_t *insp)
{
    (void)insp;
    return !strncmp(s->id, w, strlen(w));
}
static bool m_status(const char *w, const struct ctr_state *s, json_t *insp)
{
    (void)insp;
    return !strcmp(w, ctr_status_name(s));
}
static bool m_label(const char *w, const struct ctr_state *s, json_t *insp)
{
    (void)s;
    json_t *labels = json_object_get(json_object_get(insp, "Config"), "Labels");
    const char *eq = strchr(w, '=');
    cleanup_free char *key = eq ? strndup(w, (size_t)(eq - w)) : xstrdup(w);
    json_t *v = json_object_get(labels, key);
    return v && (!eq || !strcmp(json_string_value(v), eq + 1));
}
/* "busybox" and "busybox:latest" are one name */
static void with_tag(const char *n, char *buf, size_t len)
{
    const char *slash = strrchr(n, '/');
    bool tagged = strchr(slash ? slash : n, ':') || strchr(n, '@');
    snprintf(buf, len, tagged ? "%s" : "%s:latest", n);
}

static bool m_ancestor(const char *w, const struct ctr_state *s, json_t *insp)
{
    (void)insp;
    char a[512], b[512];
    with_tag(w, a, sizeof a);
    with_tag(s->image ? s->image : "", b, sizeof b);
    if (!strcmp(a, b))
        return true;
    const char *id = s->image_id ? s->image_id : "";
    if (!strncmp(id, "sha256:", 7) && strncmp(w, "sha256:", 7))
        id += 7;
    return strlen(w) >= 4 && !strncmp(id, w, strlen(w));
}

int cmd_ps(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},          {"quiet", no_argument, NULL, 'q'},
        {"no-trunc", no_argument, NULL, 'N'},     {"json", no_argument, NULL, 'j'},
        {"filter", required_argument, NULL, 'f'}, {"format", required_argument, NULL, 'F'},
        {"last", required_argument, NULL, 'n'},   {"latest", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {0},
    };
    bool all = false, quiet = false, no_trunc = false, json = false;
    const char *format = NULL;
    long last = -1;
    struct filters f = {0};
    int c, rc = 0;
    while ((c = cli_getopt(argc, argv, "aqf:n:lh", longopts)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'N':
            no_trunc = true;
            break;
        case 'j':
            json = true;
            break;
        case 'f':
            switch (filter_add(&f, optarg)) {
            case -1:
                rc = cli_usage_error("ps");
                break;
            case -2:
                rc = 1;
                break;
            }
            break;
        case 'F':
            format = optarg;
            break;
        case 'n': {
            char *end;
            last = strtol(optarg, &end, 10);
            if (*end || end == optarg || last < -1) {
                cli_error("ps", "invalid argument \"%s\" for \"%s\" flag: not a number", optarg,
                          cli_flag_typed(argv, c));
                rc = cli_usage_error("ps");
            }
            break;
        }
        case 'l':
            last = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            rc = cli_usage_error("ps");
        }
        if (rc)
            goto out_filters;
    }
    if (optind < argc) {
        rc = cli_wrong_args("ps", "accepts no arguments");
        goto out_filters;
    }
    if (f.status || last >= 0)
        all = true;
    struct cli_format fmt = {0};
    bool formatted = !quiet && !json;
    if (formatted) {
        json_t *headers = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ID",
            "CONTAINER ID", "Image", "IMAGE", "Command", "COMMAND", "CreatedAt", "CREATED AT",
            "RunningFor", "CREATED", "Ports", "PORTS", "Status", "STATUS", "State", "STATE",
            "Names", "NAMES", "Labels", "LABELS", "Mounts", "MOUNTS", "Networks", "NETWORKS",
            "LocalVolumes", "LOCAL VOLUMES", "Size", "SIZE");
        /* Docker's Size needs the writable layers' sizes (ps -s): not there, no value */
        int r = cli_format_begin(&fmt, "ps", format, default_format, headers, "{\"Size\": true}");
        json_decref(headers);
        if (r) {
            rc = r;
            goto out_filters;
        }
    }
    struct imgfs_err err = {0};
    struct ctr_state *list;
    size_t n;
    if (ctr_list(cli->run_dir, &list, &n, &err) < 0) {
        cli_report("ps", &err);
        rc = EXIT_IMGFS_FAILED;
        goto out_filters;
    }
    json_t *arr = json ? json_array() : NULL;
    long shown = 0;
    for (size_t i = 0; i < n && (last < 0 || shown < last); i++) {
        const struct ctr_state *s = &list[i];
        if (!all && s->status != CTR_RUNNING && s->status != CTR_RESTARTING)
            continue;
        json_t *insp = ctr_inspect(cli->run_dir, s);
        bool match = any_of(f.name, m_name, s, insp) && any_of(f.id, m_id, s, insp) &&
                     any_of(f.status, m_status, s, insp) && any_of(f.label, m_label, s, insp) &&
                     any_of(f.ancestor, m_ancestor, s, insp);
        if (!match) {
            json_decref(insp);
            continue;
        }
        shown++;
        char status[96];
        status_text(s, status, sizeof status);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "id", json_string(s->id));
            json_object_set_new(o, "name", json_string(s->name));
            json_object_set_new(o, "image", json_string(s->image ? s->image : ""));
            json_object_set_new(o, "image_id",
                                s->image_id ? json_string(s->image_id) : json_null());
            json_object_set_new(o, "command", json_string(s->command ? s->command : ""));
            json_object_set_new(o, "state", json_string(ctr_status_name(s)));
            json_object_set_new(o, "status", json_string(status));
            json_object_set_new(o, "exit_code",
                                s->status == CTR_EXITED ? json_integer(s->exit_code) : json_null());
            json_object_set_new(o, "error", s->error ? json_string(s->error) : json_null());
            json_object_set_new(o, "created", json_integer(s->created));
            json_object_set_new(o, "started", json_integer(s->started));
            json_object_set_new(o, "finished", json_integer(s->finished));
            json_object_set_new(o, "pid",
                                s->status == CTR_RUNNING ? json_integer(s->init_pid) : json_null());
            json_array_append_new(arr, o);
        } else if (quiet) {
            printf("%.*s\n", no_trunc ? 64 : 12, s->id);
        } else {
            json_t *row = ps_row(s, insp, no_trunc);
            if (cli_format_row(&fmt, row) < 0)
                rc = EXIT_IMGFS_FAILED;
            json_decref(row);
        }
        json_decref(insp);
    }
    if (formatted)
        cli_format_end(&fmt);
    if (json) {
        char *text = json_dumps(arr, JSON_INDENT(2));
        puts(text ? text : "[]");
        free(text);
        json_decref(arr);
    }
    ctr_state_list_free(list, n);
out_filters:
    free(f.name);
    free(f.id);
    free(f.status);
    free(f.label);
    free(f.ancestor);
    return rc;
}
