/* imgfs volume — Docker's volume verbs: create, ls, inspect, rm, prune (runner/runner.h's
 * ctr_volume_*: ROOT/volumes/NAME/_data). */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: imgfs volume COMMAND\n\n"
    "Manage volumes: directories of the store root (ROOT/volumes/NAME/_data) that containers\n"
    "mount with -v NAME:PATH or --mount type=volume. A new volume is filled from the image's\n"
    "content at the path it is mounted on, the first time it is used empty (as Docker).\n\n"
    "Commands:\n"
    "  create [OPTIONS] [VOLUME]   create a volume (a random name without VOLUME)\n"
    "  ls [OPTIONS]                list volumes\n"
    "  inspect [OPTIONS] VOLUME... show volumes as JSON\n"
    "  rm [OPTIONS] VOLUME...      remove volumes (not one a container uses)\n"
    "  prune [OPTIONS]             remove unused anonymous volumes (-a: all unused ones)\n\n"
    "Run 'imgfs volume COMMAND --help' for a command's options.\n";

static const char create_usage[] =
    "Usage: imgfs volume create [OPTIONS] [VOLUME]\n\n"
    "Create a volume; one that exists is given back unchanged (as Docker). Prints its name.\n\n"
    "Options:\n"
    "  -d, --driver NAME    only `local` exists\n"
    "      --label K[=V]    set a label\n"
    "      --name NAME      the volume's name (instead of VOLUME)\n"
    "  -h, --help           show this help\n";

static const char ls_usage[] =
    "Usage: imgfs volume ls [OPTIONS]\n\n"
    "List volumes, sorted by name.\n\n"
    "Options:\n"
    "  -f, --filter K=V     dangling=true|false (not used by any container), name=PART,\n"
    "                       label=KEY or label=KEY=VALUE, driver=local\n"
    "      --format TMPL    Go template ({{.Name}} {{.Driver}} {{.Mountpoint}} {{.Labels}}\n"
    "                       {{.Scope}} {{.CreatedAt}}); `table TMPL` prints a header\n"
    "  -q, --quiet          only names\n"
    "  -h, --help           show this help\n";

static const char inspect_usage[] = "Usage: imgfs volume inspect [OPTIONS] VOLUME...\n\n"
                                    "Show volumes in Docker's JSON.\n\n"
                                    "Options:\n"
                                    "  -f, --format TMPL    a Go template per volume\n"
                                    "  -h, --help           show this help\n";

static const char rm_usage[] =
    "Usage: imgfs volume rm [OPTIONS] VOLUME...\n\n"
    "Remove volumes. A volume a container (running or stopped) mounts is not removed.\n\n"
    "Options:\n"
    "  -f, --force          remove it even when a container uses it\n"
    "  -h, --help           show this help\n";

static const char prune_usage[] =
    "Usage: imgfs volume prune [OPTIONS]\n\n"
    "Remove every volume no container uses, named or anonymous (Docker 20.10's rule).\n\n"
    "Options:\n"
    "  -a, --all            the same (Docker 23's flag for this rule; its default is\n"
    "                       anonymous volumes only)\n"
    "      --filter K=V     label=KEY[=VALUE], label!=KEY[=VALUE]\n"
    "  -f, --force          do not ask for confirmation\n"
    "  -h, --help           show this help\n";

static json_t *labels_object(char *const *labels)
{
    json_t *o = json_object();
    for (size_t i = 0; labels && labels[i]; i++) {
        const char *eq = strchr(labels[i], '=');
        cleanup_free char *k =
            eq ? strndup(labels[i], (size_t)(eq - labels[i])) : xstrdup(labels[i]);
        json_object_set_new(o, k, json_string(eq ? eq + 1 : ""));
    }
    return o;
}

static json_t *rfc3339(int64_t t)
{
    char buf[64];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

/* what `docker volume inspect` shows */
static json_t *volume_json(const struct ctr_volume *v)
{
    json_t *labels = v->labels ? labels_object(v->labels) : json_null();
    return json_pack("{s:o, s:s, s:o, s:s, s:s, s:n, s:s}", "CreatedAt", rfc3339(v->created),
                     "Driver", "local", "Labels", labels, "Mountpoint", v->mountpoint, "Name",
                     v->name, "Options", "Scope", "local");
}

static int parse_or_usage(int argc, char **argv, const char *verb, const char *text,
                          const char *shortopts, const struct option *longopts, int *c)
{
    *c = cli_getopt(argc, argv, shortopts, longopts);
    if (*c == 'h') {
        fputs(text, stdout);
        return 0;
    }
    if (*c == '?')
        return cli_usage_error(verb);
    return -1; /* go on */
}

static int volume_create(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"driver", required_argument, NULL, 'd'}, {"label", required_argument, NULL, 'l'},
        {"name", required_argument, NULL, 'N'},   {"opt", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},         {0}};
    char **labels = NULL;
    size_t n_labels = 0;
    const char *name = NULL;
    int c, rc;
    while ((rc = parse_or_usage(argc, argv, "volume create", create_usage, "d:o:h", longopts, &c)) <
               0 &&
           c != -1) {
        if (c == 'd' && strcmp(optarg, "local")) {
            cli_error("volume create", "driver `%s`: only the local driver exists here", optarg);
            rc = 1;
            goto out;
        }
        if (c == 'o') {
            cli_error("volume create",
                      "-o/--opt `%s`: driver options are not supported (local "
                      "volumes are plain directories)",
                      optarg);
            rc = 1;
            goto out;
        }
        if (c == 'l') {
            labels = xrealloc(labels, (n_labels + 2) * sizeof *labels);
            labels[n_labels++] = optarg;
            labels[n_labels] = NULL;
        }
        if (c == 'N')
            name = optarg;
    }
    if (rc >= 0)
        goto out;
    if (argc - optind > 1) {
        rc = cli_wrong_args("volume create", "requires at most 1 argument");
        goto out;
    }
    if (name && argc - optind == 1 && strcmp(name, argv[optind])) {
        cli_error("volume create",
                  "conflicting options: either specify --name or provide positional arg, not both");
        rc = cli_usage_error("volume create");
        goto out;
    }
    if (argc - optind == 1)
        name = argv[optind];
    struct imgfs_err err = {0};
    struct ctr_volume v;
    if (ctr_volume_create(cli->root, name, labels, false, &v, &err) < 0) {
        cli_report("volume create", &err);
        rc = 1;
        goto out;
    }
    printf("%s\n", v.name);
    ctr_volume_free(&v);
    rc = 0;
out:
    free(labels);
    return rc;
}

static bool label_matches(const struct ctr_volume *v, const char *want)
{
    size_t kl = strcspn(want, "=");
    for (size_t i = 0; v->labels && v->labels[i]; i++) {
        if (strncmp(v->labels[i], want, kl) || (v->labels[i][kl] != '=' && v->labels[i][kl]))
            continue;
        if (!want[kl])
            return true;
        return !strcmp(v->labels[i] + kl, want + kl);
    }
    return false;
}

static bool in_use(const struct cli *cli, const struct ctr_volume *v)
{
    char **users = ctr_volume_users(cli->run_dir, v->mountpoint);
    bool used = users != NULL;
    ctr_strv_free(users);
    return used;
}

static int volume_ls(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {{"filter", required_argument, NULL, 'f'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    const char *filters[16], *format = NULL;
    size_t n_filters = 0;
    bool quiet = false;
    int c, rc;
    while ((rc = parse_or_usage(argc, argv, "volume ls", ls_usage, "f:qh", longopts, &c)) < 0 &&
           c != -1) {
        if (c == 'q')
            quiet = true;
        else if (c == 'F')
            format = optarg;
        else if (c == 'f') {
            const char *eq = strchr(optarg, '=');
            bool known = eq && (!strncmp(optarg, "dangling=", 9) || !strncmp(optarg, "name=", 5) ||
                                !strncmp(optarg, "label=", 6) || !strncmp(optarg, "driver=", 7));
            if (!known) { /* Docker's words and status (the daemon refuses it) */
                cli_error("volume ls", "Invalid filter '%.*s'", (int)strcspn(optarg, "="), optarg);
                return 1;
            }
            if (!strncmp(optarg, "dangling=", 9) && strcmp(eq + 1, "true") &&
                strcmp(eq + 1, "false") && strcmp(eq + 1, "1") && strcmp(eq + 1, "0")) {
                cli_error("volume ls", "invalid filter 'dangling=%s'", eq + 1);
                return cli_usage_error("volume ls");
            }
            if (n_filters == sizeof filters / sizeof filters[0]) {
                cli_error("volume ls", "too many filters");
                return cli_usage_error("volume ls");
            }
            filters[n_filters++] = optarg;
        }
    }
    if (rc >= 0)
        return rc;
    if (optind != argc) {
        return cli_wrong_args("volume ls", "accepts no arguments");
    }
    if (quiet && !format)
        format = "{{.Name}}";
    struct cli_format fmt;
    json_t *headers =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Driver", "DRIVER", "Name",
                  "VOLUME NAME", "Mountpoint", "MOUNTPOINT", "Labels", "LABELS", "Scope", "SCOPE",
                  "CreatedAt", "CREATED AT", "Links", "LINKS", "Size", "SIZE");
    int r =
        cli_format_begin(&fmt, "volume ls", format, "table {{.Driver}}\t{{.Name}}", headers, NULL);
    json_decref(headers);
    if (r)
        return r;
    struct imgfs_err err = {0};
    struct ctr_volume *list;
    size_t n;
    if (ctr_volume_list(cli->root, &list, &n, &err) < 0) {
        cli_report("volume ls", &err);
        cli_format_end(&fmt);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        bool keep = true;
        for (size_t f = 0; f < n_filters && keep; f++) {
            const char *val = strchr(filters[f], '=') + 1;
            if (!strncmp(filters[f], "dangling=", 9))
                keep = in_use(cli, &list[i]) != (!strcmp(val, "true") || !strcmp(val, "1"));
            else if (!strncmp(filters[f], "name=", 5))
                keep = strstr(list[i].name, val) != NULL;
            else if (!strncmp(filters[f], "label=", 6))
                keep = label_matches(&list[i], val);
            else
                keep = !strcmp(val, "local");
        }
        if (!keep)
            continue;
        cleanup_free char *labels = NULL;
        {
            struct buf b = {0};
            for (size_t k = 0; list[i].labels && list[i].labels[k]; k++) {
                if (k)
                    buf_append(&b, ",", 1);
                buf_append(&b, list[i].labels[k], strlen(list[i].labels[k]));
            }
            buf_append(&b, "", 1);
            labels = (char *)b.data;
        }
        json_t *created = rfc3339(list[i].created);
        /* Links and Size: Docker's N/A outside `system df -v` */
        json_t *row =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "Driver", "local", "Name",
                      list[i].name, "Mountpoint", list[i].mountpoint, "Labels", labels, "Scope",
                      "local", "CreatedAt", created, "Links", "N/A", "Size", "N/A");
        cli_format_row(&fmt, row);
        json_decref(row);
    }
    cli_format_end(&fmt);
    ctr_volume_list_free(list, n);
    return 0;
}

static int volume_inspect(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *format = NULL;
    int c, rc;
    while ((rc = parse_or_usage(argc, argv, "volume inspect", inspect_usage, "f:h", longopts, &c)) <
               0 &&
           c != -1)
        if (c == 'f')
            format = optarg;
    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        return cli_wrong_args("volume inspect", "requires at least 1 argument");
    }
    struct cli_format fmt;
    /* Docker's volume has these too: maps (a missing key has no value) or fields left out */
    if (format && (rc = cli_format_begin(&fmt, "volume inspect", format, NULL, NULL,
                                         "{\"Labels\": true, \"Options\": true, \"Status\": "
                                         "true, \"UsageData\": true}")) != 0)
        return rc;
    json_t *all = json_array();
    rc = 0;
    for (int i = optind; i < argc; i++) {
        struct imgfs_err err = {0};
        struct ctr_volume v;
        if (ctr_volume_get(cli->root, argv[i], &v, &err) < 0) {
            cli_report("volume inspect", &err);
            rc = 1;
            continue;
        }
        json_t *o = volume_json(&v);
        if (format && cli_format_row(&fmt, o) < 0)
            rc = 1;
        json_array_append_new(all, o);
        ctr_volume_free(&v);
    }
    if (format) {
        cli_format_end(&fmt);
    } else {
        char *text = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
    }
    json_decref(all);
    return rc;
}

static int volume_rm(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool force = false;
    int c, rc;
    while ((rc = parse_or_usage(argc, argv, "volume rm", rm_usage, "fh", longopts, &c)) < 0 &&
           c != -1)
        if (c == 'f')
            force = true;
    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        return cli_wrong_args("volume rm", "requires at least 1 argument");
    }
    rc = 0;
    for (int i = optind; i < argc; i++) {
        struct imgfs_err err = {0};
        /* -f: a volume that does not exist is no error (as Docker), one in use is removed */
        if (ctr_volume_remove(cli->root, cli->run_dir, argv[i], force, &err) < 0) {
            if (force && err.code == ENOENT)
                continue;
            cli_report("volume rm", &err);
            rc = 1;
            continue;
        }
        printf("%s\n", argv[i]);
    }
    return rc;
}

static int volume_prune(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {{"all", no_argument, NULL, 'a'},
                                             {"filter", required_argument, NULL, 'F'},
                                             {"force", no_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    bool force = false;
    const char *filters[16];
    size_t n_filters = 0;
    int c, rc;
    while ((rc = parse_or_usage(argc, argv, "volume prune", prune_usage, "afh", longopts, &c)) <
               0 &&
           c != -1) {
        if (c == 'a')
            continue; /* Docker 20.10 prunes every unused volume: -a is what it does anyway */
        if (c == 'f')
            force = true;
        else if (c == 'F') {
            if ((strncmp(optarg, "label=", 6) && strncmp(optarg, "label!=", 7)) ||
                n_filters == sizeof filters / sizeof filters[0]) {
                cli_error("volume prune", "invalid filter '%s'", optarg);
                return cli_usage_error("volume prune");
            }
            filters[n_filters++] = optarg;
        }
    }
    if (rc >= 0)
        return rc;
    if (optind != argc) {
        return cli_wrong_args("volume prune", "accepts no arguments");
    }
    if (!force && !cli_prune_confirm(
                      "This will remove all local volumes not used by at least one container."))
        return 0;
    struct imgfs_err err = {0};
    struct ctr_volume *list;
    size_t n;
    if (ctr_volume_list(cli->root, &list, &n, &err) < 0) {
        cli_report("volume prune", &err);
        return 1;
    }
    uint64_t total = 0;
    bool any = false;
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = false;
        for (size_t f = 0; f < n_filters && !keep; f++) {
            bool negate = filters[f][5] == '!';
            keep = label_matches(&list[i], filters[f] + (negate ? 7 : 6)) == negate;
        }
        if (keep)
            continue;
        uint64_t size = ctr_volume_size(&list[i]);
        if (ctr_volume_remove(cli->root, cli->run_dir, list[i].name, false, &err) < 0) {
            if (err.code != EBUSY) { /* in use: not pruned, not an error */
                cli_report("volume prune", &err);
                rc = 1;
            }
            err_clear(&err);
            continue;
        }
        cli_prune_deleted(&any, "Deleted Volumes:", list[i].name);
        total += size;
    }
    ctr_volume_list_free(list, n);
    cli_prune_total(any, total);
    return rc;
}

int cmd_volume(int argc, char **argv, struct cli *cli)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_IMGFS_FAILED : 0;
    }
    static const struct {
        const char *name, *alias;
        int (*fn)(int, char **, struct cli *);
    } subs[] = {
        {"create", NULL, volume_create},   {"ls", "list", volume_ls},
        {"inspect", NULL, volume_inspect}, {"rm", "remove", volume_rm},
        {"prune", NULL, volume_prune},
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name) || (subs[i].alias && !strcmp(argv[1], subs[i].alias))) {
            optind = 1;
            return subs[i].fn(argc - 1, argv + 1, cli);
        }
    fprintf(stderr, "imgfs volume: unknown command `%s` (known: create, ls, inspect, rm, prune)\n",
            argv[1]);
    return cli_usage_error("volume");
}
