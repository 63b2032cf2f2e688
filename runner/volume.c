/* volume.c — named and anonymous volumes: directories of the store root, as Docker's local
 * driver keeps them (ROOT/volumes/NAME/_data, with the volume's own record beside it in
 * volume.json: creation time, labels, whether it is anonymous). A volume is in use while a
 * container that still exists (running or not) lists it in its config.json Mounts; that is what
 * `volume rm` and `volume prune` check, and what `rm -v` / `run --rm` remove with the container
 * (anonymous ones only, as Docker). */
#include "ctr_internal.h"
#include "../fs/image.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bool ctr_volume_name_valid(const char *name)
{
    /* Docker's local driver: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least two characters) */
    return strlen(name) >= 2 && ctr_name_valid(name);
}

static char *volumes_dir(const char *store_root)
{
    return xasprintf("%s/volumes", store_root);
}

int ctr_volume_name_error(const char *name, struct imgfs_err *err)
{
    /* Docker's local driver checks the length first */
    if (strlen(name) == 1)
        return err_set(err, EINVAL,
                       "create %s: volume name is too short, names should be at least two "
                       "alphanumeric characters",
                       name);
    return err_set(err, EINVAL,
                   "create %s: \"%s\" includes invalid characters for a local volume name, only "
                   "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                   "directory, use absolute path",
                   name, name);
}

static int volume_load(const char *store_root, const char *name, struct ctr_volume *out,
                       struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    if (!ctr_volume_name_valid(name))
        return err_set(err, ENOENT, "get %s: no such volume", name);
    cleanup_free char *dir = xasprintf("%s/volumes/%s", store_root, name);
    cleanup_free char *path = xasprintf("%s/volume.json", dir);
    json_t *o = json_load_file(path, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        struct stat st;
        if (stat(dir, &st) < 0 && errno == ENOENT)
            return err_set(err, ENOENT, "get %s: no such volume", name);
        return err_set(err, EIO, "volume %s: `%s` is missing or damaged", name, path);
    }
    out->name = xstrdup(name);
    out->mountpoint = xasprintf("%s/_data", dir);
    out->created = (int64_t)json_integer_value(json_object_get(o, "CreatedAt"));
    out->anonymous = json_is_true(json_object_get(o, "Anonymous"));
    json_t *labels = json_object_get(o, "Labels");
    if (json_object_size(labels)) {
        out->labels = xcalloc(json_object_size(labels) + 1, sizeof *out->labels);
        size_t n = 0;
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v)
        {
            out->labels[n++] =
                xasprintf("%s=%s", k, json_string_value(v) ? json_string_value(v) : "");
        }
    }
    json_decref(o);
    return 0;
}

int ctr_volume_get(const char *store_root, const char *name, struct ctr_volume *out,
                   struct imgfs_err *err)
{
    return volume_load(store_root, name, out, err);
}

void ctr_volume_free(struct ctr_volume *v)
{
    free(v->name);
    free(v->mountpoint);
    strv_free(v->labels);
    memset(v, 0, sizeof *v);
}

void ctr_volume_list_free(struct ctr_volume *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ctr_volume_free(&v[i]);
    free(v);
}

int ctr_volume_create(const char *store_root, const char *name, char *const *labels, bool anonymous,
                      struct ctr_volume *out, struct imgfs_err *err)
{
    char id[65];
    if (!name) {
        ctr_new_id(id);
        name = id;
    }
    if (!ctr_volume_name_valid(name))
        return ctr_volume_name_error(name, err);
    cleanup_free char *base = volumes_dir(store_root);
    if (mkdir_p(base, 0700, err) < 0)
        return err_ctx(err, "create %s", name);
    cleanup_free char *dir = xasprintf("%s/%s", base, name);
    struct stat st;
    if (stat(dir, &st) == 0) /* Docker: creating an existing volume gives it back */
        return volume_load(store_root, name, out, err);

    /* made aside and renamed into place: a volume is visible complete or not at all */
    char tmp_id[65];
    ctr_new_id(tmp_id);
    cleanup_free char *tmp = xasprintf("%s/.new-%.16s", base, tmp_id);
    cleanup_free char *data = xasprintf("%s/_data", tmp);
    cleanup_free char *meta = xasprintf("%s/volume.json", tmp);
    if (mkdir(tmp, 0700) < 0 || mkdir(data, 0755) < 0) {
        err_sys(err, errno, "create %s: creating `%s`", name, data);
        goto fail;
    }
    json_t *lab = json_object();
    for (size_t i = 0; labels && labels[i]; i++) {
        const char *eq = strchr(labels[i], '=');
        char *k = eq ? strndup(labels[i], (size_t)(eq - labels[i])) : xstrdup(labels[i]);
        json_object_set_new(lab, k, json_string(eq ? eq + 1 : ""));
        free(k);
    }
    json_t *o = json_pack("{s:I, s:o, s:b}", "CreatedAt", (json_int_t)time(NULL), "Labels", lab,
                          "Anonymous", anonymous);
    int r = json_dump_file(o, meta, JSON_COMPACT);
    json_decref(o);
    if (r < 0) {
        err_sys(err, errno ? errno : EIO, "create %s: writing `%s`", name, meta);
        goto fail;
    }
    if (rename(tmp, dir) < 0) {
        if (errno != EEXIST && errno != ENOTEMPTY) {
            err_sys(err, errno, "create %s: renaming `%s`", name, tmp);
            goto fail;
        }
        /* made by someone else meanwhile: theirs it is */
        ctr_remove_tree(tmp, err);
        return volume_load(store_root, name, out, err);
    }
    return volume_load(store_root, name, out, err);
fail:
    ctr_remove_tree(tmp, &(struct imgfs_err){0});
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct ctr_volume *)a)->name, ((const struct ctr_volume *)b)->name);
}

int ctr_volume_list(const char *store_root, struct ctr_volume **out, size_t *n,
                    struct imgfs_err *err)
{
    *out = NULL;
    *n = 0;
    cleanup_free char *base = volumes_dir(store_root);
    DIR *d = opendir(base);
    if (!d)
        return errno == ENOENT ? 0 : err_sys(err, errno, "reading `%s`", base);
    struct dirent *e;
    size_t cap = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        struct ctr_volume v;
        struct imgfs_err ignored;
        if (volume_load(store_root, e->d_name, &v, &ignored) < 0)
            continue; /* a damaged one is not listed (volume inspect says why) */
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = v;
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof **out, by_name);
    return 0;
}

/* The volumes a container's config.json lists: for each Mounts entry of type volume, its name
 * and source. */
static json_t *container_mounts(const char *run_dir, const char *id)
{
    cleanup_free char *path = xasprintf("%s/containers/%s/config.json", run_dir, id);
    json_t *c = json_load_file(path, 0, NULL);
    json_t *m = json_incref(json_object_get(c, "Mounts"));
    json_decref(c);
    return m;
}

char **ctr_volume_users(const char *run_dir, const char *mountpoint)
{
    char **ids = NULL;
    cleanup_free char *base = xasprintf("%s/containers", run_dir);
    DIR *d = opendir(base);
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        json_t *mounts = container_mounts(run_dir, e->d_name);
        size_t i;
        json_t *m;
        bool uses = false;
        json_array_foreach(mounts, i, m)
        {
            const char *src = json_string_value(json_object_get(m, "Source"));
            if (src && !strcmp(json_string_value(json_object_get(m, "Type")) ?: "", "volume") &&
                !strcmp(src, mountpoint))
                uses = true;
        }
        json_decref(mounts);
        if (uses)
            ids = strv_append(ids, e->d_name);
    }
    closedir(d);
    return ids;
}

/* Remove the volume whose data directory is `mountpoint` (ROOT/volumes/NAME/_data). */
static int remove_volume_dir(const char *run_dir, const char *name, const char *mountpoint,
                             bool force, struct imgfs_err *err)
{
    if (!force) {
        char **users = ctr_volume_users(run_dir, mountpoint);
        if (users) {
            cleanup_free char *list = strv_join(users, ", ");
            strv_free(users);
            return err_set(err, EBUSY, "remove %s: volume is in use - [%s]", name, list);
        }
    }
    cleanup_free char *copy = xstrdup(mountpoint);
    cleanup_free char *dir = xstrdup(dirname(copy));
    /* renamed out of the way first: no half-removed volume is ever visible under its name */
    cleanup_free char *copy2 = xstrdup(dir);
    char id[65];
    ctr_new_id(id);
    cleanup_free char *gone = xasprintf("%s/.gone-%.16s", dirname(copy2), id);
    if (rename(dir, gone) < 0)
        return err_sys(err, errno, "remove %s", name);
    if (ctr_remove_tree(gone, err) < 0)
        return err_ctx(err, "remove %s", name);
    return 0;
}

int ctr_volume_remove(const char *store_root, const char *run_dir, const char *name, bool force,
                      struct imgfs_err *err)
{
    struct ctr_volume v;
    if (volume_load(store_root, name, &v, err) < 0)
        return -1;
    int r = remove_volume_dir(run_dir, name, v.mountpoint, force, err);
    ctr_volume_free(&v);
    return r;
}

static uint64_t tree_bytes(int dirfd, int depth)
{
    if (depth > 256)
        return 0;
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return 0;
    }
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                total += tree_bytes(sub, depth + 1);
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            total += (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return total;
}

uint64_t ctr_volume_size(const struct ctr_volume *v)
{
    int fd = open(v->mountpoint, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? 0 : tree_bytes(fd, 0);
}

int ctr_volumes_prepare(const char *store_root, struct ctr_spec *spec, struct imgfs_err *err)
{
    /* the image's VOLUMEs that no -v, --mount or --tmpfs covers: an anonymous volume each */
    char *const *image_volumes = spec->config ? spec->config->volumes : NULL;
    for (size_t i = 0; image_volumes && image_volumes[i]; i++) {
        bool covered = false;
        for (size_t j = 0; j < spec->n_mounts && !covered; j++) {
            const char *a = spec->mounts[j].target, *b = image_volumes[i];
            size_t la = strlen(a), lb = strlen(b);
            while (la > 1 && a[la - 1] == '/')
                la--;
            while (lb > 1 && b[lb - 1] == '/')
                lb--;
            covered = la == lb && !strncmp(a, b, la);
        }
        if (covered || image_volumes[i][0] != '/')
            continue;
        spec->mounts = xrealloc(spec->mounts, (spec->n_mounts + 1) * sizeof *spec->mounts);
        spec->mounts[spec->n_mounts++] = (struct ctr_mount){
            .target = xstrdup(image_volumes[i]),
            .volume = true,
            .anonymous = true,
        };
    }
    for (size_t i = 0; i < spec->n_mounts; i++) {
        struct ctr_mount *m = &spec->mounts[i];
        if (!m->volume || m->source)
            continue;
        struct ctr_volume v;
        if (ctr_volume_create(store_root, m->volume_name, NULL, m->anonymous, &v, err) < 0)
            return -1;
        if (!m->volume_name)
            m->volume_name = xstrdup(v.name);
        m->source = xstrdup(v.mountpoint);
        ctr_volume_free(&v);
    }
    return 0;
}

static bool dir_empty(int fd)
{
    int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return false;
    }
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

int ctr_volumes_populate(const struct ctr_spec *spec, struct imgfs_err *err)
{
    if (!spec->lower)
        return 0;
    cleanup_close int lower = open(spec->lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (lower < 0)
        return err_sys(err, errno, "opening the image's rootfs `%s`", spec->lower);
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct ctr_mount *m = &spec->mounts[i];
        if (!m->volume || m->nocopy || !m->source)
            continue;
        cleanup_close int data = open(m->source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (data < 0)
            return err_sys(err, errno, "volume `%s`", m->source);
        if (!dir_empty(data))
            continue;
        /* Docker copies what the image has at the target into a volume that is empty: resolved
         * in the image's root, so a symlink there never leads out of it */
        struct imgfs_err ignored = {0};
        cleanup_close int from = rootfs_open(lower, m->target, O_RDONLY | O_DIRECTORY, 0, &ignored);
        if (from < 0)
            continue; /* nothing there, or not a directory: nothing to copy */
        struct stat st;
        if (fstat(from, &st) < 0)
            return err_sys(err, errno, "volume target `%s` in the image", m->target);
        if (ctr_copy_contents(from, data, CTR_COPY_ARCHIVE, err) < 0)
            return err_ctx(err, "copying the image's `%s` into volume %s", m->target,
                           m->volume_name ? m->volume_name : m->source);
        /* the volume's root takes the owner and mode of the image's directory, as Docker's */
        if (fchown(data, st.st_uid, st.st_gid) < 0 || fchmod(data, st.st_mode & 07777) < 0)
            return err_sys(err, errno, "volume `%s`", m->source);
    }
    return 0;
}

char **ctr_anonymous_volumes(const char *run_dir, const char *id)
{
    char **out = NULL;
    json_t *mounts = container_mounts(run_dir, id);
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        const char *src = json_string_value(json_object_get(m, "Source"));
        if (!src || strcmp(json_string_value(json_object_get(m, "Type")) ?: "", "volume"))
            continue;
        cleanup_free char *copy = xstrdup(src);
        cleanup_free char *meta = xasprintf("%s/volume.json", dirname(copy));
        json_t *o = json_load_file(meta, 0, NULL);
        if (json_is_true(json_object_get(o, "Anonymous")))
            out = strv_append(out, src);
        json_decref(o);
    }
    json_decref(mounts);
    return out;
}

void ctr_anonymous_volumes_remove(const char *run_dir, char **mountpoints)
{
    for (size_t i = 0; mountpoints && mountpoints[i]; i++) {
        cleanup_free char *copy = xstrdup(mountpoints[i]);
        cleanup_free char *name = xstrdup(basename(dirname(copy)));
        struct imgfs_err ignored = {0};
        /* still used by another container (--volumes-from is not there, but two containers
         * may name the same anonymous volume by its id): kept */
        remove_volume_dir(run_dir, name, mountpoints[i], false, &ignored);
    }
}

void ctr_strv_free(char **v)
{
    strv_free(v);
}

void ctr_mount_free(struct ctr_mount *m)
{
    free(m->source);
    free(m->target);
    free(m->options);
    free(m->volume_name);
    free(m->propagation);
    memset(m, 0, sizeof *m);
}

/* Go's strconv.ParseBool, which Docker's --mount uses for its flags */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcmp(s, yes[i]))
            return *out = true, 0;
        if (!strcmp(s, no[i]))
            return *out = false, 0;
    }
    return -1;
}

/* Docker's RAMInBytes: "64m", "1.5g", "512" (powers of 1024, an optional b) */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    double mult = 1;
    switch (*end | 0x20) {
    case 'k':
        mult = 1024.0;
        end++;
        break;
    case 'm':
        mult = 1024.0 * 1024;
        end++;
        break;
    case 'g':
        mult = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 't':
        mult = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if ((*end | 0x20) == 'b')
        end++;
    if (*end || v * mult > 9.2e18)
        return -1;
    *out = (uint64_t)(v * mult);
    return 0;
}

/* Docker's daemon checks what bind-propagation needs of the host: shared/rshared a source on a
 * shared mount (the container's mounts below it then reach the host), slave/rslave one on a
 * shared or slave mount (the host's reach the container); with the source on a private mount
 * there is nothing to propagate and Docker refuses, in these words. The source's mount is the
 * mountinfo entry with the longest mount point above it (the last of equals: it is on top). */
static int source_propagation_check(const struct ctr_mount *m, struct imgfs_err *err)
{
    bool want_shared = strstr(m->propagation, "shared") != NULL;
    if (!want_shared && !strstr(m->propagation, "slave"))
        return 0;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return err_sys(err, errno, "reading /proc/self/mountinfo");
    char *line = NULL, best[PATH_MAX] = "";
    size_t cap = 0, best_len = 0;
    bool shared = false, master = false;
    while (getline(&line, &cap, f) > 0) {
        char point[PATH_MAX], *tok, *save = NULL;
        int field = 0;
        bool is_shared = false, is_master = false, ok = false;
        for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
            field++;
            if (field == 5) { /* the mount point, with \NNN escapes */
                size_t o = 0;
                for (const char *c = tok; *c && o + 1 < sizeof point; c++) {
                    if (c[0] == '\\' && c[1] >= '0' && c[1] <= '3' && c[2] && c[3]) {
                        point[o++] = (char)((c[1] - '0') * 64 + (c[2] - '0') * 8 + (c[3] - '0'));
                        c += 3;
                    } else {
                        point[o++] = *c;
                    }
                }
                point[o] = 0;
                ok = true;
            } else if (field > 6 && !strcmp(tok, "-")) {
                break;
            } else if (field > 6) {
                is_shared |= !strncmp(tok, "shared:", 7);
                is_master |= !strncmp(tok, "master:", 7);
            }
        }
        size_t n = ok ? strlen(point) : 0;
        bool above = ok && (!strcmp(point, "/") || (!strncmp(m->source, point, n) &&
                                                    (m->source[n] == '/' || m->source[n] == 0)));
        if (above && n >= best_len) {
            best_len = n;
            snprintf(best, sizeof best, "%s", point);
            shared = is_shared;
            master = is_master;
        }
    }
    free(line);
    fclose(f);
    if (want_shared && !shared)
        return err_set(err, EINVAL, "path %s is mounted on %s but it is not a shared mount",
                       m->source, best);
    if (!want_shared && !shared && !master)
        return err_set(err, EINVAL,
                       "path %s is mounted on %s but it is not a shared or slave mount", m->source,
                       best);
    return 0;
}

static bool is_propagation(const char *p)
{
    static const char *const modes[] = {"private", "rprivate", "slave",
                                        "rslave",  "shared",   "rshared"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(p, modes[i]))
            return true;
    return false;
}

int ctr_mount_parse(const char *spec, struct ctr_mount *m, struct imgfs_err *err)
{
    memset(m, 0, sizeof *m);
    m->mount_flag = true;
    cleanup_free char *copy = xstrdup(spec);
    cleanup_free char *type = NULL, *source = NULL, *tmpfs_opts = NULL;
    bool have_bind = false, have_volume = false, have_tmpfs = false, nonrecursive = false;
    uint64_t tmpfs_size = 0;
    long tmpfs_mode = -1;
    char *save = NULL;
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(f, '=');
        const char *val = eq ? eq + 1 : NULL;
        if (eq)
            *eq = 0;
        bool flag;
        if (!strcmp(f, "readonly") || !strcmp(f, "ro") || !strcmp(f, "volume-nocopy") ||
            !strcmp(f, "bind-nonrecursive")) {
            if (val && parse_bool(val, &flag) < 0)
                goto bad_value;
            if (!val)
                flag = true;
            if (f[0] == 'r')
                m->readonly = flag;
            else if (f[0] == 'v')
                m->nocopy = flag, have_volume = true;
            else
                nonrecursive = flag, have_bind = true;
            continue;
        }
        if (!val) {
            if (eq)
                *eq = '=';
            ctr_mount_free(m);
            err_set(err, EINVAL,
                    "invalid argument \"%s\" for \"--mount\" flag: invalid field '%s' must be a "
                    "key=value pair",
                    spec, f);
            return -1;
        }
        if (!strcmp(f, "type")) {
            free(type);
            type = xstrdup(val);
        } else if (!strcmp(f, "source") || !strcmp(f, "src")) {
            free(source);
            source = xstrdup(val);
        } else if (!strcmp(f, "target") || !strcmp(f, "dst") || !strcmp(f, "destination")) {
            free(m->target);
            m->target = xstrdup(val);
        } else if (!strcmp(f, "bind-propagation")) {
            have_bind = true;
            free(m->propagation);
            m->propagation = xstrdup(val);
        } else if (!strcmp(f, "volume-driver")) {
            have_volume = true;
            if (strcmp(val, "local")) {
                ctr_mount_free(m);
                return err_set(err, EINVAL, "volume-driver `%s`: only the local driver exists here",
                               val);
            }
        } else if (!strcmp(f, "volume-label")) {
            have_volume = true; /* labels of a volume made here: not kept (a new volume has none) */
        } else if (!strcmp(f, "tmpfs-size")) {
            have_tmpfs = true;
            if (parse_size(val, &tmpfs_size) < 0)
                goto bad_value;
        } else if (!strcmp(f, "tmpfs-mode")) {
            have_tmpfs = true;
            char *end;
            tmpfs_mode = strtol(val, &end, 8);
            if (end == val || *end || tmpfs_mode < 0 || tmpfs_mode > 07777)
                goto bad_value;
        } else {
            ctr_mount_free(m);
            return err_set(err, EINVAL,
                           "invalid argument \"%s\" for \"--mount\" flag: unexpected key '%s' in "
                           "'%s=%s'",
                           spec, f, f, val);
        }
        continue;
    bad_value:
        ctr_mount_free(m);
        return err_set(err, EINVAL,
                       "invalid argument \"%s\" for \"--mount\" flag: invalid value for %s: %s",
                       spec, f, val ? val : "");
    }
    const char *t = type ? type : "volume";
    if (!m->target) {
        ctr_mount_free(m);
        return err_set(err, EINVAL,
                       "invalid argument \"%s\" for \"--mount\" flag: target is required", spec);
    }
    const char *mixed = have_volume && strcmp(t, "volume") ? "volume"
                        : have_bind && strcmp(t, "bind")   ? "bind"
                        : have_tmpfs && strcmp(t, "tmpfs") ? "tmpfs"
                                                           : NULL;
    if (mixed) {
        ctr_mount_free(m);
        return err_set(err, EINVAL,
                       "invalid argument \"%s\" for \"--mount\" flag: cannot mix '%s-*' options "
                       "with mount type '%s'",
                       spec, mixed, t);
    }
    /* the daemon's checks, with its words */
    const char *why = NULL;
    cleanup_free char *why_buf = NULL;
    if (strcmp(t, "bind") && strcmp(t, "volume") && strcmp(t, "tmpfs"))
        why = "mount type unknown";
    else if (m->target[0] != '/')
        why = why_buf =
            xasprintf("invalid mount path: '%s' mount path must be absolute", m->target);
    else if (!m->target[strspn(m->target, "/")])
        why = "invalid specification: destination can't be '/'";
    else if (!strcmp(t, "bind") && (!source || !*source))
        why = "field Source must not be empty";
    else if (!strcmp(t, "tmpfs") && source && *source)
        why = "field Source must not be specified";
    else if (m->propagation && !is_propagation(m->propagation))
        why = why_buf = xasprintf("invalid propagation mode: %s", m->propagation);
    if (why) {
        err_set(err, EINVAL, "invalid mount config for type \"%s\": %s", t, why);
        ctr_mount_free(m);
        return -1;
    }
    (void)nonrecursive; /* binds are recursive (rbind) as Docker's default; nonrecursive: same */
    if (!strcmp(t, "tmpfs")) {
        m->tmpfs = true;
        struct buf o = {0};
        if (tmpfs_size) {
            cleanup_free char *s = xasprintf("size=%llu", (unsigned long long)tmpfs_size);
            buf_append(&o, s, strlen(s));
        }
        if (tmpfs_mode >= 0) {
            cleanup_free char *s = xasprintf("%smode=%lo", o.len ? "," : "", tmpfs_mode);
            buf_append(&o, s, strlen(s));
        }
        if (o.len) {
            buf_append(&o, "", 1);
            m->options = (char *)o.data;
        }
        return 0;
    }
    if (!strcmp(t, "volume")) {
        m->volume = true;
        if (source && *source) {
            if (!ctr_volume_name_valid(source)) {
                ctr_volume_name_error(source, err);
                ctr_mount_free(m);
                return -1;
            }
            m->volume_name = xstrdup(source);
        } else {
            m->anonymous = true;
        }
        return 0;
    }
    /* bind: the source must exist (unlike -v, which makes a missing directory) */
    char *real = realpath(source, NULL);
    if (!real) {
        int e = errno;
        ctr_mount_free(m);
        if (e == ENOENT)
            return err_set(err, ENOENT,
                           "invalid mount config for type \"bind\": bind source path does not "
                           "exist: %s",
                           source);
        return err_sys(err, e, "invalid mount config for type \"bind\": bind source `%s`", source);
    }
    m->source = real;
    if (m->propagation && source_propagation_check(m, err) < 0) {
        ctr_mount_free(m);
        return -1;
    }
    return 0;
}
