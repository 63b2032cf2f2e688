/* A remote reference given to mount or run: lazily pulled when it is not in the store
 * (docs/lazy.md), as `docker run` pulls an image it does not have. */
#include "../fs/lazy.h"
#include "../fs/pull.h"
#include "../fs/store.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Does `ref` name a registry explicitly (a first part with a dot or a port, or localhost)? Plain
 * names ("busybox") stay local: a typo must not become a pull from docker.io. */
static bool names_a_registry(const char *ref)
{
    const char *slash = strchr(ref, '/');
    if (!slash)
        return false;
    size_t n = (size_t)(slash - ref);
    return memchr(ref, '.', n) || memchr(ref, ':', n) || (n == 9 && !strncmp(ref, "localhost", 9));
}

int cli_lazy_ensure(const struct cli *cli, const char *ref, const char *verb)
{
    if (!names_a_registry(ref))
        return 0;
    struct imgfs_err err = {0};
    struct store *s;
    if (store_open(cli->root, STORE_READONLY, &s, &err) == 0) {
        struct store_read *r;
        struct digest d;
        bool local = false;
        if (store_read_begin(s, &r, &err) == 0) {
            local = store_image_resolve(r, ref, &d, &err) == 0;
            store_read_end(r);
        }
        store_close(s);
        if (local)
            return 0;
    }
    s = cli_store_open(cli, verb, false);
    if (!s)
        return -1;
    fprintf(stderr, "Unable to find image '%s' locally; pulling it lazily\n", ref);
    struct pull_options o = {0};
    bool whole = false;
    struct digest d;
    int rc = lazy_pull(s, ref, &o, &d, NULL, &whole, &err);
    if (rc < 0 && whole) {
        fprintf(stderr, "imgfs %s: note: %s: pulling the image whole\n", verb, err.msg);
        err_clear(&err);
        rc = pull_image(s, ref, &o, &d, NULL, &err);
    }
    store_close(s);
    if (rc < 0) {
        cli_report(verb, &err);
        return -1;
    }
    return 0;
}
