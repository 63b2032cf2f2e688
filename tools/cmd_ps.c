/* imgfs ps — list containers, with a status that is true even when a monitor was killed. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] = "Usage: imgfs ps [OPTIONS]\n\n"
                            "List containers (running ones; -a for all).\n\n"
                            "Options:\n"
                            "  -a, --all        show every container, not only running ones\n"
                            "  -q, --quiet      only container ids\n"
                            "      --no-trunc   full ids and commands\n"
                            "      --json       one JSON array\n"
                            "  -h, --help       show this help\n";

static void duration(int64_t secs, char *buf, size_t len)
{
    if (secs < 1)
        snprintf(buf, len, "Less than a second");
    else if (secs < 60)
        snprintf(buf, len, "%lld second%s", (long long)secs, secs == 1 ? "" : "s");
    else if (secs < 3600)
        snprintf(buf, len, "%lld minute%s", (long long)secs / 60, secs / 60 == 1 ? "" : "s");
    else if (secs < 86400)
        snprintf(buf, len, "%lld hour%s", (long long)secs / 3600, secs / 3600 == 1 ? "" : "s");
    else
        snprintf(buf, len, "%lld days", (long long)secs / 86400);
}

static void status_text(const struct ctr_state *s, char *buf, size_t len)
{
    char d[64];
    int64_t now = (int64_t)time(NULL);
    switch (s->status) {
    case CTR_CREATED:
        snprintf(buf, len, "Created");
        break;
    case CTR_RUNNING:
        duration(now - s->started, d, sizeof d);
        snprintf(buf, len, "Up %s", d);
        break;
    case CTR_EXITED:
        duration(now - s->finished, d, sizeof d);
        snprintf(buf, len, "Exited (%d) %s ago%s", s->exit_code, d,
                 s->error && !strncmp(s->error, "rootfs lost", 11) ? " (rootfs lost)" : "");
        break;
    }
}

int cmd_ps(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},      {"quiet", no_argument, NULL, 'q'},
        {"no-trunc", no_argument, NULL, 'N'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},     {0},
    };
    bool all = false, quiet = false, no_trunc = false, json = false;
    int c;
    while ((c = cli_getopt(argc, argv, "aqh", longopts)) != -1) {
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
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fprintf(stderr, "See 'imgfs ps --help'.\n");
            return EXIT_IMGFS_FAILED;
        }
    }
    if (optind < argc) {
        cli_error("ps", "takes no arguments");
        return EXIT_IMGFS_FAILED;
    }
    struct imgfs_err err = {0};
    struct ctr_state *list;
    size_t n;
    if (ctr_list(cli->run_dir, &list, &n, &err) < 0) {
        cli_report("ps", &err);
        return EXIT_IMGFS_FAILED;
    }
    json_t *arr = json ? json_array() : NULL;
    if (!quiet && !json)
        printf("%-12s   %-20s %-22s %-18s %-28s %s\n", "CONTAINER ID", "IMAGE", "COMMAND",
               "CREATED", "STATUS", "NAMES");
    for (size_t i = 0; i < n; i++) {
        const struct ctr_state *s = &list[i];
        if (!all && s->status != CTR_RUNNING)
            continue;
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
            continue;
        }
        if (quiet) {
            printf("%.*s\n", no_trunc ? 64 : 12, s->id);
            continue;
        }
        char created[96], d[64];
        duration((int64_t)time(NULL) - s->created, d, sizeof d);
        snprintf(created, sizeof created, "%s ago", d);
        char cmd[64];
        const char *full = s->command ? s->command : "";
        if (!no_trunc && strlen(full) > 20)
            snprintf(cmd, sizeof cmd, "\"%.19s…\"", full);
        else
            snprintf(cmd, sizeof cmd, "\"%.60s\"", full);
        printf("%-12.*s   %-20s %-22s %-18s %-28s %s\n", no_trunc ? 64 : 12, s->id,
               s->image ? s->image : "", no_trunc ? full : cmd, created, status, s->name);
    }
    if (json) {
        char *text = json_dumps(arr, JSON_INDENT(2));
        puts(text ? text : "[]");
        free(text);
        json_decref(arr);
    }
    ctr_state_list_free(list, n);
    return 0;
}
