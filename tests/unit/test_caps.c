/* test_caps.c — capability names, --cap-add/--cap-drop, and caps_apply in real children (root and a
 * non-root uid), read back from /proc/self/status as a container would see them. */
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "../../runner/caps.h"
#include "unit.h"

#define BIT(c) (UINT64_C(1) << (c))

static uint64_t status_field(const char *name)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    uint64_t v = UINT64_MAX;
    size_t n = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && line[n] == ':')
            v = strtoull(line + n + 1, NULL, 16);
    if (f)
        fclose(f);
    return v;
}

static void test_sets(void)
{
    struct imgfs_err err = {0};
    CHECK(caps_default() == UINT64_C(0xa80425fb), "default set %llx",
          (unsigned long long)caps_default());
    CHECK(__builtin_popcountll(caps_default()) == 14, "14 default capabilities");
    CHECK((caps_all() & caps_default()) == caps_default() && caps_all() & BIT(CAP_SYS_ADMIN),
          "all");

    char name[32];
    CHECK(caps_name(CAP_NET_ADMIN, name, sizeof name) == 0 && strcmp(name, "CAP_NET_ADMIN") == 0,
          "%s", name);
    CHECK(caps_name(CAP_CHOWN, name, 4) < 0, "short buffer");
    CHECK(caps_name(-1, name, sizeof name) < 0, "negative");
    CHECK(caps_from_name("net_admin") == CAP_NET_ADMIN &&
              caps_from_name("CAP_SYS_ADMIN") == CAP_SYS_ADMIN && caps_from_name("NOPE") < 0,
          "names");

    uint64_t s = caps_default();
    char *add[] = {"NET_ADMIN", "cap_sys_ptrace", NULL}, *drop[] = {"CHOWN", NULL};
    CHECK(caps_adjust(&s, add, drop, &err) == 0, "%s", err.msg);
    CHECK(s == ((caps_default() | BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_PTRACE)) & ~BIT(CAP_CHOWN)),
          "adjusted");

    s = caps_default();
    char *all[] = {"ALL", NULL}, *one[] = {"KILL", NULL};
    CHECK(caps_adjust(&s, one, all, &err) == 0 && s == BIT(CAP_KILL), "drop ALL, add KILL: %llx",
          (unsigned long long)s);
    s = caps_default();
    CHECK(caps_adjust(&s, all, NULL, &err) == 0 && s == caps_all(), "add ALL");

    s = caps_default();
    char *bad[] = {"KILL", "FLY", NULL};
    CHECK(caps_adjust(&s, bad, NULL, &err) < 0 && err.code == EINVAL && strstr(err.msg, "FLY"),
          "%s", err.msg);
    CHECK(s == caps_default(), "unchanged after an error");
}

/* In a child: optionally become uid/gid 1000 keeping capabilities, apply, report the sets. */
static void check_applied(uint64_t set, bool root, uint64_t want_eff, uint64_t want_bnd)
{
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        struct imgfs_err err = {0};
        uint64_t r[4] = {0};
        if (!root &&
            (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgid(1000) < 0 || setuid(1000) < 0))
            _exit(2);
        if (caps_apply(set, root, &err) < 0) {
            fprintf(stderr, "caps_apply: %s\n", err.msg);
            _exit(3);
        }
        r[0] = status_field("CapEff");
        r[1] = status_field("CapBnd");
        r[2] = status_field("CapPrm");
        r[3] = status_field("CapAmb") | status_field("CapInh");
        if (write(pipefd[1], r, sizeof r) != sizeof r)
            _exit(4);
        _exit(0);
    }
    close(pipefd[1]);
    uint64_t r[4] = {0};
    ssize_t n = read(pipefd[0], r, sizeof r);
    close(pipefd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == sizeof r, "child status %d", st);
    CHECK(r[0] == want_eff, "CapEff %llx, want %llx", (unsigned long long)r[0],
          (unsigned long long)want_eff);
    CHECK(r[2] == want_eff, "CapPrm %llx, want %llx", (unsigned long long)r[2],
          (unsigned long long)want_eff);
    CHECK(r[1] == want_bnd, "CapBnd %llx, want %llx", (unsigned long long)r[1],
          (unsigned long long)want_bnd);
    CHECK(r[3] == 0, "ambient/inheritable %llx", (unsigned long long)r[3]);
}

int main(void)
{
    test_sets();
    if (geteuid() == 0) {
        uint64_t have = status_field("CapBnd");
        check_applied(caps_default(), true, caps_default(), caps_default());
        check_applied(caps_default(), false, 0, caps_default());
        check_applied(BIT(CAP_KILL), true, BIT(CAP_KILL), BIT(CAP_KILL));
        /* --privileged on a host that withheld some capability from us: what we have */
        check_applied(caps_all(), true, caps_all() & have, caps_all() & have);
    } else {
        printf("SKIP caps_apply tests need root\n");
    }
    return unit_summary();
}
