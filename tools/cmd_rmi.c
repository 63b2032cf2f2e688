#include "../fs/image.h"
#include "../fs/store.h"
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs rmi [OPTIONS] IMAGE [IMAGE...]\n\n"
    "Remove image names. A name removes that name; a digest (or prefix) removes the image's\n"
    "names (all of them only with -f, when it has several). Space is freed by `imgfs gc`.\n"
    "An image's last name is not removed while a container (in any state) was made from it,\n"
    "unless -f.\n\n"
    "Options:\n"
    "  -f, --force   remove every name of an image given by digest, also when a\n"
    "                container uses it\n"
    "  -h, --help    show this help\n";

struct names {
    struct digest target;
    char **v;
    size_t n;
};

static int collect(void *ctx, const struct store_image_entry *e)
{
    struct names *n = ctx;
    if (digest_equal(&e->manifest, &n->target)) {
        n->v = xrealloc(n->v, (n->n + 1) * sizeof *n->v);
        n->v[n->n++] = xstrdup(e->name);
    }
    return 0;
}

static void names_free(struct names *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
}

int cmd_rmi(int argc, char **argv, struct cli *cli)
{
    static const struct option opts[] = {
        {"force", no_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool force = false;
    int c;
    while ((c = cli_getopt(argc, argv, "fh", opts)) != -1) {
        switch (c) {
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage_error("rmi");
        }
    }
    if (optind >= argc) {
        return cli_wrong_args("rmi", "requires at least 1 argument");
    }
    struct store *s = cli_store_open(cli, "rmi", false);
    if (!s)
        return 1;
    int status = 0;
    for (int i = optind; i < argc; i++) {
        struct imgfs_err err = {0};
        struct store_read *r;
        struct names names = {0};
        if (store_read_begin(s, &r, &err) < 0) {
            cli_report("rmi", &err);
            status = 1;
            break;
        }
        int rc = image_resolve(r, argv[i], &names.target, &err);
        cleanup_free char *norm = store_name_normalize(argv[i]);
        if (rc == 0)
            store_image_foreach(r, collect, &names);
        store_read_end(r);
        if (rc < 0) {
            cli_report("rmi", &err);
            status = 1;
            continue;
        }
        /* by name: just that name; by digest: every name of the image */
        bool by_name = false;
        for (size_t k = 0; k < names.n; k++)
            if (!strcmp(names.v[k], norm))
                by_name = true;
        if (!by_name && names.n > 1 && !force) {
            cli_error("rmi", "image `%s` has %zu names; remove them by name or use -f", argv[i],
                      names.n);
            names_free(&names);
            status = 1;
            continue;
        }
        /* the image's last name: not while a container (in any state) was made from it, unless
         * forced, as Docker */
        bool last = !by_name || names.n == 1;
        cleanup_free char *user = last && !force ? cli_container_of(cli, &names.target) : NULL;
        if (user) {
            cli_error("rmi",
                      "conflict: unable to remove repository reference \"%s\" (must force) - "
                      "container %.12s is using its referenced image",
                      argv[i], user);
            names_free(&names);
            status = 1;
            continue;
        }
        struct store_batch *b;
        if (store_batch_begin(s, &b, &err) < 0) {
            cli_report("rmi", &err);
            names_free(&names);
            status = 1;
            continue;
        }
        for (size_t k = 0; k < names.n; k++)
            if (!by_name || !strcmp(names.v[k], norm))
                store_batch_untag(b, names.v[k]);
        if (store_batch_commit(b, &err) < 0) {
            cli_report("rmi", &err);
            status = 1;
        } else {
            for (size_t k = 0; k < names.n; k++)
                if (!by_name || !strcmp(names.v[k], norm))
                    printf("Untagged: %s\n", names.v[k]);
        }
        names_free(&names);
    }
    store_close(s);
    return status;
}
