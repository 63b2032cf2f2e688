/* user.c — who the command runs as and what it runs: Docker's rules for User, Env, Entrypoint and
 * Cmd. /etc/passwd and /etc/group come from the image and are parsed here by hand: NSS would load
 * the image's libraries into our process. */
#include "ctr_internal.h"
#include "../fs/image.h"

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **strv_dup(char *const *v)
{
    if (!v)
        return NULL;
    size_t n = strv_len(v);
    char **out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char **strv_append(char **v, const char *s)
{
    size_t n = strv_len(v);
    v = xrealloc(v, (n + 2) * sizeof *v);
    v[n] = xstrdup(s);
    v[n + 1] = NULL;
    return v;
}

char *strv_join(char *const *v, const char *sep)
{
    struct buf b = {0};
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            buf_append(&b, sep, strlen(sep));
        buf_append(&b, v[i], strlen(v[i]));
    }
    buf_append(&b, "", 1);
    return (char *)b.data;
}

char **user_command(const struct image_config *c, char **entrypoint, char **command,
                    struct imgfs_err *err)
{
    /* --entrypoint replaces the image's Entrypoint and drops its Cmd; arguments replace Cmd */
    char *const *ep = entrypoint ? entrypoint : (c ? c->entrypoint : NULL);
    char *const *cmd = (command && command[0]) ? command : entrypoint ? NULL : (c ? c->cmd : NULL);
    size_t ne = strv_len(ep), nc = strv_len(cmd);
    if (ne + nc == 0) {
        err_set(err, EINVAL, "no command specified");
        return NULL;
    }
    char **argv = xcalloc(ne + nc + 1, sizeof *argv);
    for (size_t i = 0; i < ne; i++)
        argv[i] = xstrdup(ep[i]);
    for (size_t i = 0; i < nc; i++)
        argv[ne + i] = xstrdup(cmd[i]);
    return argv;
}

static void env_set(char ***env, const char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (size_t i = 0; (*env)[i]; i++)
        if (!strncmp((*env)[i], kv, klen) && (*env)[i][klen] == '=') {
            free((*env)[i]);
            (*env)[i] = xstrdup(kv);
            return;
        }
    *env = strv_append(*env, kv);
}

static const char *env_get(char *const *env, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], key, klen) && env[i][klen] == '=')
            return env[i] + klen + 1;
    return NULL;
}

char **user_env(const struct image_config *c, char **extra, const char *hostname, bool tty)
{
    char **env = xcalloc(1, sizeof *env);
    env = strv_append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (hostname) {
        cleanup_free char *h = xasprintf("HOSTNAME=%s", hostname);
        env = strv_append(env, h);
    }
    for (size_t i = 0; c && c->env && c->env[i]; i++)
        env_set(&env, c->env[i]);
    if (tty && !env_get(env, "TERM"))
        env = strv_append(env, "TERM=xterm");
    for (size_t i = 0; extra && extra[i]; i++) {
        if (strchr(extra[i], '=')) {
            env_set(&env, extra[i]);
        } else {
            /* "-e NAME": the value from our own environment, nothing when we have none */
            const char *v = getenv(extra[i]);
            if (v) {
                cleanup_free char *kv = xasprintf("%s=%s", extra[i], v);
                env_set(&env, kv);
            }
        }
    }
    return env;
}

void user_env_home(char ***env, const char *home)
{
    if (!env_get(*env, "HOME")) {
        cleanup_free char *kv = xasprintf("HOME=%s", home && *home ? home : "/");
        *env = strv_append(*env, kv);
    }
}

int user_find_executable(const char *argv0, char *const *env, char *out, size_t len,
                         struct imgfs_err *err)
{
    struct stat st;
    if (strchr(argv0, '/')) {
        if (snprintf(out, len, "%s", argv0) >= (int)len)
            return err_set(err, ENAMETOOLONG, "exec: `%s`: name too long", argv0), 127;
        if (stat(out, &st) < 0) {
            err_sys(err, errno, "exec: `%s`", argv0);
            return errno == ENOENT || errno == ENOTDIR ? CTR_EXIT_NOT_FOUND
                                                       : CTR_EXIT_NOT_EXECUTABLE;
        }
        if (S_ISDIR(st.st_mode))
            return err_set(err, EISDIR, "exec: `%s`: is a directory", argv0), 126;
        return 0;
    }
    const char *path = env_get(env, "PATH");
    if (!path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    bool denied = false;
    while (*path) {
        size_t n = strcspn(path, ":");
        int w = snprintf(out, len, "%.*s%s%s", (int)n, n ? path : ".", "/", argv0);
        path += n + (path[n] == ':');
        if (w < 0 || (size_t)w >= len)
            continue;
        if (stat(out, &st) < 0 || S_ISDIR(st.st_mode))
            continue;
        if (access(out, X_OK) == 0)
            return 0;
        denied = true;
    }
    if (denied)
        return err_set(err, EACCES, "exec: `%s`: permission denied", argv0), 126;
    err_set(err, ENOENT, "exec: `%s`: executable file not found in $PATH", argv0);
    return CTR_EXIT_NOT_FOUND;
}

/* ---- /etc/passwd and /etc/group ---- */

/* The image's (or the running container's) /etc/passwd or /etc/group, resolved inside its root.
 * The container may have made it anything: opened without blocking (a FIFO would hang us), it must
 * be a regular file of at most 16 MiB. Returns 0, 1 when there is none, -1 with err set. */
#define ETC_FILE_MAX (16 << 20)
static int read_etc(int rootfd, const char *path, struct buf *out, struct imgfs_err *err)
{
    cleanup_close int fd = rootfs_open(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, err);
    if (fd < 0) {
        if (err->code == ENOENT || err->code == ENOTDIR) {
            err_clear(err);
            return 1;
        }
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return err_sys(err, errno, "`%s` in the container", path);
    if (!S_ISREG(st.st_mode))
        return err_set(err, EINVAL, "`%s` in the container is not a regular file (%s)", path,
                       S_ISFIFO(st.st_mode)   ? "a FIFO"
                       : S_ISDIR(st.st_mode)  ? "a directory"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "a device");
    if (st.st_size > ETC_FILE_MAX)
        return err_set(err, EFBIG, "`%s` in the container is too large (%lld bytes, at most %d)",
                       path, (long long)st.st_size, ETC_FILE_MAX);
    buf_reserve(out, (size_t)st.st_size + 1);
    ssize_t n = read_full(fd, out->data, (size_t)st.st_size);
    if (n < 0)
        return err_sys(err, errno, "reading `%s` in the container", path);
    out->len = (size_t)n;
    out->data[n] = 0;
    return 0;
}

/* Split one line into `max` colon-separated fields; returns how many. */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ':') {
            *p = 0;
            f[n++] = p + 1;
        }
    return n;
}

static bool parse_id(const char *s, unsigned long *out)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v > 0x7fffffffUL)
        return false;
    *out = v;
    return true;
}

int user_resolve(int rootfd, const char *spec, struct ctr_user *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->home, sizeof out->home, "/");
    if (!spec || !*spec)
        spec = "0";
    cleanup_free char *copy = xstrdup(spec);
    char *group = strchr(copy, ':');
    if (group)
        *group++ = 0;
    const char *user = copy;
    unsigned long uid_num = 0, gid_num = 0;
    bool user_numeric = parse_id(user, &uid_num);
    bool group_numeric = group && parse_id(group, &gid_num);
    char username[256] = "";

    struct buf pw = {0};
    bool found = false;
    int r = read_etc(rootfd, "/etc/passwd", &pw, err);
    if (r < 0) {
        buf_free(&pw);
        return -1;
    }
    if (r == 0) {
        char *save = NULL;
        for (char *line = strtok_r((char *)pw.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char *f[7];
            if (split_fields(line, f, 7) < 7)
                continue;
            unsigned long u, g;
            if (!parse_id(f[2], &u) || !parse_id(f[3], &g))
                continue;
            if (user_numeric ? u != uid_num : strcmp(f[0], user) != 0)
                continue;
            found = true;
            out->uid = (uid_t)u;
            out->gid = (gid_t)g;
            snprintf(username, sizeof username, "%s", f[0]);
            snprintf(out->home, sizeof out->home, "%s", *f[5] ? f[5] : "/");
            break;
        }
    }
    buf_free(&pw);
    if (!found) {
        if (!user_numeric)
            return err_set(err, ENOENT,
                           "unable to find user %s: no matching entries in passwd file", user);
        out->uid = (uid_t)uid_num;
        out->gid = 0;
    }

    struct buf gr = {0};
    bool group_found = !group || group_numeric;
    if (group_numeric)
        out->gid = (gid_t)gid_num;
    r = read_etc(rootfd, "/etc/group", &gr, err);
    if (r < 0) {
        buf_free(&gr);
        return -1;
    }
    if (r == 0) {
        char *save = NULL;
        for (char *line = strtok_r((char *)gr.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            char *f[4];
            if (split_fields(line, f, 4) < 4)
                continue;
            unsigned long g;
            if (!parse_id(f[2], &g))
                continue;
            if (group && !group_numeric && !strcmp(f[0], group)) {
                out->gid = (gid_t)g;
                group_found = true;
            }
            /* supplementary groups: those that list the user by name (only when no group was
             * given explicitly, as Docker does) */
            if (!group && *username) {
                char *save2 = NULL;
                for (char *m = strtok_r(f[3], ",", &save2); m; m = strtok_r(NULL, ",", &save2))
                    if (!strcmp(m, username) && out->n_groups < 64) {
                        out->groups[out->n_groups++] = (gid_t)g;
                        break;
                    }
            }
        }
    }
    buf_free(&gr);
    if (!group_found)
        return err_set(err, ENOENT, "unable to find group %s: no matching entries in group file",
                       group);
    return 0;
}

int user_group_add(int rootfd, const char *group, struct ctr_user *u, struct imgfs_err *err)
{
    if (u->n_groups >= 64)
        return err_set(err, E2BIG, "--group-add %s: too many groups", group);
    unsigned long g;
    if (parse_id(group, &g)) {
        u->groups[u->n_groups++] = (gid_t)g;
        return 0;
    }
    struct buf gr = {0};
    int r = read_etc(rootfd, "/etc/group", &gr, err);
    bool found = false;
    if (r == 0) {
        char *save = NULL;
        for (char *line = strtok_r((char *)gr.data, "\n", &save); line && !found;
             line = strtok_r(NULL, "\n", &save)) {
            char *f[4];
            if (split_fields(line, f, 4) >= 3 && !strcmp(f[0], group) && parse_id(f[2], &g))
                found = true;
        }
    }
    buf_free(&gr);
    if (r < 0)
        return -1;
    if (!found) /* Docker's words */
        return err_set(err, ENOENT, "Unable to find group %s: no matching entries in group file",
                       group);
    u->groups[u->n_groups++] = (gid_t)g;
    return 0;
}

int user_switch(const struct ctr_user *u, struct imgfs_err *err)
{
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return err_sys(err, errno, "PR_SET_KEEPCAPS");
    gid_t groups[65];
    size_t n = 0;
    groups[n++] = u->gid;
    for (size_t i = 0; i < u->n_groups; i++)
        if (u->groups[i] != u->gid)
            groups[n++] = u->groups[i];
    if (setgroups(n, groups) < 0)
        return err_sys(err, errno, "setgroups");
    if (setresgid(u->gid, u->gid, u->gid) < 0)
        return err_sys(err, errno, "setgid %u", (unsigned)u->gid);
    if (setresuid(u->uid, u->uid, u->uid) < 0)
        return err_sys(err, errno, "setuid %u", (unsigned)u->uid);
    return 0;
}
