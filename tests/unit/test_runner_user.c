/* test_runner_user.c — the image config as a container sees it (runner/user.c): Entrypoint/Cmd
 * override rules, the environment, users and groups parsed from a crafted /etc, PATH lookup. */
#include "../../fs/image.h"
#include "../../runner/ctr_internal.h"
#include "unit.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static char *joined(char **v)
{
    static char buf[1024];
    char *s = strv_join(v, "|");
    snprintf(buf, sizeof buf, "%s", s);
    free(s);
    strv_free(v);
    return buf;
}

static void write_at(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    struct imgfs_err err = {0};
    char *ep[] = {"/entry", "e1", NULL}, *cmd[] = {"c1", "c2", NULL};
    struct image_config c = {.entrypoint = ep, .cmd = cmd};
    char *args[] = {"a1", NULL}, *none[] = {NULL}, *over[] = {"/other", NULL}, *empty[] = {NULL};

    CHECK(!strcmp(joined(user_command(&c, NULL, NULL, &err)), "/entry|e1|c1|c2"), "image's own");
    CHECK(!strcmp(joined(user_command(&c, NULL, none, &err)), "/entry|e1|c1|c2"), "no args");
    CHECK(!strcmp(joined(user_command(&c, NULL, args, &err)), "/entry|e1|a1"), "args replace Cmd");
    CHECK(!strcmp(joined(user_command(&c, over, NULL, &err)), "/other"), "--entrypoint drops Cmd");
    CHECK(!strcmp(joined(user_command(&c, over, args, &err)), "/other|a1"), "--entrypoint + args");
    CHECK(!strcmp(joined(user_command(&c, empty, args, &err)), "a1"), "--entrypoint ''");
    CHECK(user_command(&c, empty, NULL, &err) == NULL && err.code == EINVAL, "nothing to run");
    CHECK(user_command(NULL, NULL, NULL, &err) == NULL, "no config, no args");

    char *ienv[] = {"PATH=/bin", "A=image", NULL};
    struct image_config ce = {.env = ienv};
    char *extra[] = {"A=option", "B=b", "UNIT_FROM_HOST", "UNIT_UNSET", NULL};
    setenv("UNIT_FROM_HOST", "host", 1);
    unsetenv("UNIT_UNSET");
    char **env = user_env(&ce, extra, "h1", true);
    user_env_home(&env, "/home/x");
    CHECK(!strcmp(joined(env),
                  "PATH=/bin|HOSTNAME=h1|A=option|TERM=xterm|B=b|UNIT_FROM_HOST=host|HOME=/home/x"),
          "env order and overrides: %s", "");
    env = user_env(NULL, NULL, NULL, false);
    CHECK(!strcmp(joined(env), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
          "default PATH only");

    char dir[] = "/tmp/imgfs-unit-user.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char etc[4000];
    snprintf(etc, sizeof etc, "%s/etc", dir);
    mkdir(etc, 0755);
    write_at(etc, "passwd",
             "root:x:0:0:root:/root:/bin/sh\n"
             "broken line\n"
             "app:x:1000:1000::/home/app:/bin/sh\n"
             "nohome:x:1001:1001:::/bin/sh\n");
    write_at(etc, "group",
             "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nextra:x:2000:other,app\n");
    int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct ctr_user u;
    CHECK(user_resolve(root, NULL, &u, &err) == 0 && u.uid == 0 && !strcmp(u.home, "/root"),
          "default root");
    CHECK(user_resolve(root, "app", &u, &err) == 0 && u.uid == 1000 && u.gid == 1000 &&
              u.n_groups == 2 && u.groups[0] == 10 && u.groups[1] == 2000 &&
              !strcmp(u.home, "/home/app"),
          "name: uid, gid, supplementary groups, home");
    CHECK(user_resolve(root, "1000", &u, &err) == 0 && u.gid == 1000 && u.n_groups == 2,
          "uid in passwd");
    CHECK(user_resolve(root, "4321", &u, &err) == 0 && u.uid == 4321 && u.gid == 0 &&
              !strcmp(u.home, "/"),
          "uid not in passwd");
    CHECK(user_resolve(root, "app:wheel", &u, &err) == 0 && u.gid == 10 && u.n_groups == 0,
          "name:group");
    CHECK(user_resolve(root, "5:6", &u, &err) == 0 && u.uid == 5 && u.gid == 6, "uid:gid");
    CHECK(user_resolve(root, "nohome", &u, &err) == 0 && !strcmp(u.home, "/"), "empty home");
    CHECK(user_resolve(root, "nobody-here", &u, &err) < 0 && err.code == ENOENT, "unknown name");
    CHECK(user_resolve(root, "app:nogroup", &u, &err) < 0 && err.code == ENOENT, "unknown group");

    /* an image whose /etc/passwd is a symlink out of the root reads the root's own /etc/passwd */
    char link[4200];
    snprintf(link, sizeof link, "%s/passwd", etc);
    unlink(link);
    CHECK(symlink("../../../../../../etc/passwd", link) == 0, "symlink");
    write_at(dir, "passwd-target-check", "");
    CHECK(user_resolve(root, "app", &u, &err) < 0, "passwd symlink resolved inside the root");

    char path[4096];
    char *penv[] = {"PATH=/nonexistent:/bin", NULL};
    CHECK(user_find_executable("sh", penv, path, sizeof path, &err) == 0 &&
              !strcmp(path, "/bin/sh"),
          "PATH search: %s", path);
    CHECK(user_find_executable("no-such-cmd-x", penv, path, sizeof path, &err) == 127, "not found");
    CHECK(user_find_executable("/etc/hostname", penv, path, sizeof path, &err) == 0,
          "a path is taken as is");
    CHECK(user_find_executable("/nonexistent/x", penv, path, sizeof path, &err) == 127,
          "missing path");
    CHECK(user_find_executable("/etc", penv, path, sizeof path, &err) == 126, "a directory");

    close(root);
    char rm[4200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    CHECK(system(rm) == 0, "cleanup");
    return unit_summary();
}
