/* device.c — --device HOST[:CONTAINER[:PERMISSIONS]]: the host node's type and numbers, checked
 * as Docker checks them (a directory: every node below it); the node is made in the container
 * (rootfs.c) and allowed by its cgroup (cgroup.c). */
#include "ctr_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static void device_add(struct ctr_device **devs, size_t *n, const char *host, const char *ctr,
                       const struct stat *st, const char *perms)
{
    *devs = xrealloc(*devs, (*n + 1) * sizeof **devs);
    struct ctr_device *d = &(*devs)[(*n)++];
    memset(d, 0, sizeof *d);
    d->host = xstrdup(host);
    d->container = xstrdup(ctr);
    d->type = S_ISCHR(st->st_mode) ? 'c' : 'b';
    d->major = major(st->st_rdev);
    d->minor = minor(st->st_rdev);
    d->mode = st->st_mode & 07777;
    d->uid = st->st_uid;
    d->gid = st->st_gid;
    snprintf(d->perms, sizeof d->perms, "%s", perms);
}

/* Every device node below the host directory `host`, as Docker's DevicesFromPath walks it
 * (filepath.Walk: lexical order, symlinks not followed, anything that is not a node skipped,
 * unreadable directories too), each at the same place below `ctr`. */
static void device_walk(struct ctr_device **devs, size_t *n, const char *host, const char *ctr,
                        const char *perms, unsigned depth)
{
    struct dirent **names;
    int k = depth < 64 ? scandir(host, &names, NULL, alphasort) : -1;
    if (k < 0)
        return;
    for (int i = 0; i < k; i++) {
        const char *e = names[i]->d_name;
        if (strcmp(e, ".") && strcmp(e, "..")) {
            cleanup_free char *h = xasprintf("%s/%s", host, e);
            cleanup_free char *c = xasprintf("%s/%s", ctr, e);
            struct stat st;
            if (lstat(h, &st) == 0) {
                if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
                    device_add(devs, n, h, c, &st, perms);
                else if (S_ISDIR(st.st_mode))
                    device_walk(devs, n, h, c, perms, depth + 1);
            }
        }
        free(names[i]);
    }
    free(names);
}

int ctr_device_parse(const char *spec, struct ctr_device **devs, size_t *n, struct imgfs_err *err)
{
    cleanup_free char *copy = xstrdup(spec);
    char *parts[3] = {copy, NULL, NULL};
    size_t n_parts = 1;
    for (char *p = copy; *p && n_parts < 3; p++)
        if (*p == ':') {
            *p = 0;
            parts[n_parts++] = p + 1;
        }
    if (n_parts == 3 && strchr(parts[2], ':'))
        return err_set(err, EINVAL, "invalid device specification: %s", spec);
    /* Docker's reading of HOST:X: X is the permissions when it looks like them */
    const char *perms = "rwm", *ctr = parts[0];
    if (n_parts == 2 && parts[1][0] != '/' && parts[1][0] &&
        strspn(parts[1], "rwm") == strlen(parts[1]))
        perms = parts[1];
    else if (n_parts >= 2)
        ctr = parts[1];
    if (n_parts == 3)
        perms = parts[2];
    if (!perms[0] || strspn(perms, "rwm") != strlen(perms) || strlen(perms) > 3)
        return err_set(err, EINVAL, "bad mode specified: %s", perms);
    if (ctr[0] != '/')
        return err_set(err, EINVAL, "%s is not an absolute path", ctr);
    if (!ctr[strspn(ctr, "/")])
        return err_set(err, EINVAL,
                       "invalid device specification: %s: the container path can't be '/'", spec);
    struct stat st;
    if (stat(parts[0], &st) < 0) {
        /* Go's words for the error, as Docker prints them: "no such file or directory" */
        int e = errno;
        char why[128];
        snprintf(why, sizeof why, "%s", strerror(e));
        why[0] = (char)tolower((unsigned char)why[0]);
        return err_set(err, e,
                       "error gathering device information while adding custom device \"%s\": %s",
                       parts[0], why);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        device_add(devs, n, parts[0], ctr, &st, perms);
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        /* Docker walks the directory with the symlink resolved (a link to /dev/snd as HOST) */
        cleanup_free char *dir = realpath(parts[0], NULL);
        size_t before = *n;
        if (dir) {
            /* the container path without trailing slashes, so the entries' paths have one */
            cleanup_free char *base = xstrdup(ctr);
            for (size_t len = strlen(base); len > 1 && base[len - 1] == '/'; len--)
                base[len - 1] = 0;
            device_walk(devs, n, dir, base, perms, 0);
        }
        if (*n > before)
            return 0;
    }
    return err_set(err, ENOTBLK,
                   "error gathering device information while adding custom device \"%s\": "
                   "not a device node",
                   parts[0]);
}

char **ctr_device_rules(const struct ctr_device *d, size_t n)
{
    char **rules = NULL;
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *r =
            xasprintf("%c %u:%u %s", d[i].type, d[i].major, d[i].minor, d[i].perms);
        rules = strv_append(rules, r);
    }
    return rules;
}
