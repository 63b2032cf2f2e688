#include "cli.h"
#include "../fs/reference.h"
#include "../fs/store.h"
#include "../fs/view.h"
#include "../runner/runner.h"

#include <stdio.h>
#include <string.h>

struct store *cli_store_open(const struct cli *cli, const char *verb, bool readonly)
{
    struct imgfs_err err = {0};
    struct store *s;
    if (store_open(cli->root, readonly ? STORE_READONLY : 0, &s, &err) < 0) {
        cli_report(verb, &err);
        return NULL;
    }
    return s;
}

void cli_human_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%lluB", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.*f%s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return true;
    }
    return false;
}

bool cli_valid_name(const char *name)
{
    struct ref r;
    struct imgfs_err err;
    if (!strncmp(name, "sha256:", 7) || ref_parse(name, &r, &err) < 0)
        return false;
    bool ok = !r.has_digest;
    ref_free(&r);
    return ok;
}

bool cli_view_header(struct store_read *r, const struct digest *manifest, struct view_header *h)
{
    const void *data;
    size_t len;
    struct imgfs_err err;
    return store_get(r, STORE_VIEW, manifest, &data, &len, &err) == 0 &&
           view_header_of(data, len, h) == 0;
}

int cli_each_container(const struct cli *cli, const char *verb, int optind_, int argc, char **argv,
                       int (*act)(const char *run_dir, struct ctr_state *s, void *ctx,
                                  struct imgfs_err *err),
                       void *ctx)
{
    int rc = 0;
    for (int i = optind_; i < argc; i++) {
        struct imgfs_err err = {0};
        struct ctr_state s;
        if (ctr_find(cli->run_dir, argv[i], &s, &err) < 0) {
            cli_report(verb, &err);
            rc = 1;
            continue;
        }
        if (act(cli->run_dir, &s, ctx, &err) < 0) {
            cli_report(verb, &err);
            rc = 1;
        } else {
            printf("%s\n", argv[i]);
        }
        ctr_state_free(&s);
    }
    return rc;
}
