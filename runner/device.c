/* device.c — --device HOST[:CONTAINER[:PERMISSIONS]]: the host node's type and numbers, checked
 * as Docker checks them; the node is made in the container (rootfs.c) and allowed by its cgroup
 * (cgroup.c). */
#include "ctr_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int ctr_device_parse(const char *spec, struct ctr_device *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    cleanup_free char *copy = xstrdup(spec);
    char *parts[3] = {copy, NULL, NULL};
    size_t n = 1;
    for (char *p = copy; *p && n < 3; p++)
        if (*p == ':') {
            *p = 0;
            parts[n++] = p + 1;
        }
    if (n == 3 && strchr(parts[2], ':'))
        return err_set(err, EINVAL, "invalid device specification: %s", spec);
    /* Docker's reading of HOST:X: X is the permissions when it looks like them */
    const char *perms = "rwm", *ctr = parts[0];
    if (n == 2 && parts[1][0] != '/' && parts[1][0] && strspn(parts[1], "rwm") == strlen(parts[1]))
        perms = parts[1];
    else if (n >= 2)
        ctr = parts[1];
    if (n == 3)
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
    if (S_ISDIR(st.st_mode))
        return err_set(err, ENOTSUP,
                       "adding custom device \"%s\": a directory of devices is not supported here "
                       "(name each device)",
                       parts[0]);
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
        return err_set(err, ENOTBLK,
                       "error gathering device information while adding custom device \"%s\": "
                       "not a device node",
                       parts[0]);
    out->host = xstrdup(parts[0]);
    out->container = xstrdup(ctr);
    out->type = S_ISCHR(st.st_mode) ? 'c' : 'b';
    out->major = major(st.st_rdev);
    out->minor = minor(st.st_rdev);
    out->mode = st.st_mode & 07777;
    out->uid = st.st_uid;
    out->gid = st.st_gid;
    snprintf(out->perms, sizeof out->perms, "%s", perms);
    return 0;
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
