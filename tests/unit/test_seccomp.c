/* test_seccomp.c — our default seccomp profile against Docker's (tests/data/docker/
 * seccomp-default.json: moby/profiles, provenance in its README.md), by running both compiled
 * programs over every syscall number and the argument values their rules look at; Docker-format
 * parsing; the cache; and a real filter in a child. */
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../../runner/caps.h"
#include "../../runner/seccomp.h"
#include "unit.h"

/* A classic-BPF interpreter for what libseccomp emits; returns the SECCOMP_RET_* value, or 0xdead
 * for an instruction it does not know (which fails the comparisons loudly). */
static uint32_t bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d)
{
    uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {0};
    const uint8_t *data = (const uint8_t *)d;
    for (size_t pc = 0; pc < n; pc++) {
        const struct sock_filter *i = &f[pc];
        uint32_t src = BPF_SRC(i->code) == BPF_X ? x : i->k;
        switch (BPF_CLASS(i->code)) {
        case BPF_LD:
            if (BPF_MODE(i->code) == BPF_ABS && BPF_SIZE(i->code) == BPF_W && i->k + 4 <= sizeof *d)
                memcpy(&a, data + i->k, 4);
            else if (BPF_MODE(i->code) == BPF_IMM)
                a = i->k;
            else if (BPF_MODE(i->code) == BPF_MEM)
                a = mem[i->k % BPF_MEMWORDS];
            else
                return 0xdead;
            break;
        case BPF_LDX:
            if (BPF_MODE(i->code) == BPF_IMM)
                x = i->k;
            else if (BPF_MODE(i->code) == BPF_MEM)
                x = mem[i->k % BPF_MEMWORDS];
            else
                return 0xdead;
            break;
        case BPF_ST:
            mem[i->k % BPF_MEMWORDS] = a;
            break;
        case BPF_STX:
            mem[i->k % BPF_MEMWORDS] = x;
            break;
        case BPF_ALU:
            switch (BPF_OP(i->code)) {
            case BPF_AND:
                a &= src;
                break;
            case BPF_OR:
                a |= src;
                break;
            case BPF_ADD:
                a += src;
                break;
            case BPF_SUB:
                a -= src;
                break;
            case BPF_LSH:
                a <<= src;
                break;
            case BPF_RSH:
                a >>= src;
                break;
            case BPF_NEG:
                a = -a;
                break;
            default:
                return 0xdead;
            }
            break;
        case BPF_JMP: {
            bool t;
            switch (BPF_OP(i->code)) {
            case BPF_JA:
                pc += i->k;
                continue;
            case BPF_JEQ:
                t = a == src;
                break;
            case BPF_JGT:
                t = a > src;
                break;
            case BPF_JGE:
                t = a >= src;
                break;
            case BPF_JSET:
                t = (a & src) != 0;
                break;
            default:
                return 0xdead;
            }
            pc += t ? i->jt : i->jf;
            break;
        }
        case BPF_RET:
            return BPF_RVAL(i->code) == BPF_A ? a : i->k;
        case BPF_MISC:
            if (BPF_MISCOP(i->code) == BPF_TAX)
                x = a;
            else
                a = x;
            break;
        default:
            return 0xdead;
        }
    }
    return 0xdead;
}

struct prog {
    const struct sock_filter *f;
    size_t n;
};

static uint32_t eval(struct prog p, uint32_t arch, int nr, const uint64_t args[6])
{
    struct seccomp_data d = {.nr = nr, .arch = arch};
    for (int i = 0; i < 6; i++)
        d.args[i] = args ? args[i] : 0;
    return bpf_run(p.f, p.n, &d);
}

static struct prog prog_of(const struct ctr_seccomp *s)
{
    struct prog p;
    p.f = seccomp_program(s, &p.n);
    return p;
}

/* Argument vectors worth trying: the values the profiles' conditions compare against, each side. */
static size_t arg_cases(uint64_t cases[][6], size_t max)
{
    static const uint64_t first[] = {0,
                                     1,
                                     8,
                                     0x20000,
                                     0x20008,
                                     0xffffffff,
                                     0x400000,
                                     37,
                                     38,
                                     39,
                                     40,
                                     41,
                                     16,
                                     CLONE_NEWNS,
                                     CLONE_NEWUSER,
                                     CLONE_NEWNET,
                                     CLONE_NEWPID,
                                     CLONE_NEWCGROUP,
                                     CLONE_VM | CLONE_FS,
                                     SIGCHLD,
                                     0x7E020000,
                                     UINT64_C(0x100000000)};
    size_t n = 0;
    for (size_t i = 0; i < sizeof first / sizeof first[0] && n < max; i++) {
        memset(cases[n], 0, sizeof cases[n]);
        cases[n++][0] = first[i];
        if (n < max) { /* s390 puts clone's flags second; cheap to cover everywhere */
            memset(cases[n], 0, sizeof cases[n]);
            cases[n++][1] = first[i];
        }
    }
    return n;
}

/* Every syscall number of x86_64, i386 and x32, with every interesting argument vector: same
 * answer. */
static void compare_programs(struct prog ours, struct prog theirs, const char *what)
{
    static const struct {
        uint32_t arch;
        int base;
    } abis[] = {{AUDIT_ARCH_X86_64, 0}, {AUDIT_ARCH_I386, 0}, {AUDIT_ARCH_X86_64, 0x40000000}};
    uint64_t cases[64][6];
    size_t n_cases = arg_cases(cases, 64);
    int differences = 0;
    for (size_t a = 0; a < sizeof abis / sizeof abis[0]; a++)
        for (int nr = 0; nr < 600; nr++)
            for (size_t c = 0; c < n_cases; c++) {
                uint32_t o = eval(ours, abis[a].arch, abis[a].base + nr, cases[c]);
                uint32_t t = eval(theirs, abis[a].arch, abis[a].base + nr, cases[c]);
                if (o != t && differences++ < 10)
                    printf("  %s: arch %08x nr %d arg0 %llx arg1 %llx: ours %08x, Docker's %08x\n",
                           what, abis[a].arch, abis[a].base + nr, (unsigned long long)cases[c][0],
                           (unsigned long long)cases[c][1], o, t);
            }
    CHECK(differences == 0, "%s: %d differences from Docker's profile", what, differences);
}

static char *docker_profile_path(void)
{
    const char *env = getenv("IMGFS_DOCKER_SECCOMP");
    if (env)
        return access(env, R_OK) == 0 ? strdup(env) : NULL;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        /* build/unit/test_seccomp -> the repository -> tests/data/docker */
        char *repo = dirname(dirname(dirname(exe)));
        char *p = xasprintf("%s/tests/data/docker/seccomp-default.json", repo);
        if (access(p, R_OK) == 0)
            return p;
        free(p);
    }
    char *p = strdup("tests/data/docker/seccomp-default.json");
    if (access(p, R_OK) == 0)
        return p;
    free(p);
    return NULL;
}

static int x86_64_nr(const char *name)
{
    int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
    if (nr >= 0)
        return nr;
    /* newer than our libseccomp (see newer_syscall_nr in runner/seccomp.c) */
    static const struct {
        const char *name;
        int nr;
    } newer[] = {{"uretprobe", 335},
                 {"statmount", 457},
                 {"listmount", 458},
                 {"lsm_get_self_attr", 459},
                 {"lsm_set_self_attr", 460},
                 {"lsm_list_modules", 461},
                 {"mseal", 462},
                 {"setxattrat", 463},
                 {"getxattrat", 464},
                 {"listxattrat", 465},
                 {"removexattrat", 466}};
    for (size_t i = 0; i < sizeof newer / sizeof newer[0]; i++)
        if (strcmp(newer[i].name, name) == 0)
            return newer[i].nr;
    return -1;
}

/* Docker's unconditional amd64 allowlist, read from its JSON directly (not through our parser):
 * every name must be allowed by our default filter. */
static void check_unconditional_names(const char *path, struct prog ours)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    CHECK(root != NULL, "loading %s: %s", path, je.text);
    if (!root)
        return;
    size_t i, j, checked = 0, unknown = 0;
    json_t *rule, *name;
    json_array_foreach(json_object_get(root, "syscalls"), i, rule)
    {
        json_t *inc = json_object_get(rule, "includes"), *exc = json_object_get(rule, "excludes");
        if (strcmp(json_string_value(json_object_get(rule, "action")), "SCMP_ACT_ALLOW") != 0 ||
            json_array_size(json_object_get(rule, "args")) || json_object_size(exc) ||
            json_object_get(inc, "caps"))
            continue;
        json_t *arches = json_object_get(inc, "arches");
        bool amd64 = !arches;
        size_t k;
        json_t *a;
        json_array_foreach(arches, k, a) amd64 |= strcmp(json_string_value(a), "amd64") == 0;
        if (!amd64)
            continue;
        json_array_foreach(json_object_get(rule, "names"), j, name)
        {
            int nr = x86_64_nr(json_string_value(name));
            if (nr < 0) {
                unknown++; /* a 32-bit-only or other-architecture name */
                continue;
            }
            checked++;
            uint32_t r = eval(ours, AUDIT_ARCH_X86_64, nr, NULL);
            CHECK(r == SECCOMP_RET_ALLOW,
                  "Docker allows %s (%d) unconditionally, ours answers %08x",
                  json_string_value(name), nr, r);
        }
    }
    CHECK(checked > 300, "only %zu unconditional names checked", checked);
    printf("  %zu unconditional amd64 names allowed by ours (%zu are not x86_64 syscalls)\n",
           checked, unknown);
    json_decref(root);
}

static void test_against_docker(void)
{
    char *path = docker_profile_path();
    /* part of the repository: missing is a failure, never a skip */
    CHECK(path != NULL, "Docker's seccomp-default.json not found (tests/data/docker)");
    if (!path)
        return;
    const uint64_t cap_sets[] = {
        caps_default(),
        caps_all(),
        0,
        caps_default() | (UINT64_C(1) << CAP_SYS_PTRACE) | (UINT64_C(1) << CAP_SYS_TIME),
        caps_default() | (UINT64_C(1) << CAP_SYS_ADMIN),
    };
    for (size_t i = 0; i < sizeof cap_sets / sizeof cap_sets[0]; i++) {
        struct imgfs_err err = {0};
        struct ctr_seccomp *ours = NULL, *theirs = NULL;
        CHECK(seccomp_prepare(NULL, cap_sets[i], NULL, &ours, &err) == 0, "default profile: %s",
              err.msg);
        CHECK(seccomp_prepare(path, cap_sets[i], NULL, &theirs, &err) == 0, "Docker's profile: %s",
              err.msg);
        if (ours && theirs) {
            char what[64];
            snprintf(what, sizeof what, "caps %016llx", (unsigned long long)cap_sets[i]);
            compare_programs(prog_of(ours), prog_of(theirs), what);
            if (i == 0)
                check_unconditional_names(path, prog_of(ours));
        }
        seccomp_free(ours);
        seccomp_free(theirs);
    }
    free(path);
}

/* Specific answers of the default filter for the default capability set. */
static void test_default_answers(void)
{
    struct imgfs_err err = {0};
    struct ctr_seccomp *s = NULL;
    CHECK(seccomp_prepare(NULL, caps_default(), NULL, &s, &err) == 0, "%s", err.msg);
    if (!s)
        return;
    struct prog p = prog_of(s);
    uint64_t flags_plain[6] = {CLONE_VM | SIGCHLD}, flags_ns[6] = {CLONE_NEWNS | SIGCHLD};
    uint64_t vsock[6] = {40}, inet[6] = {2}, query[6] = {0xffffffff}, odd[6] = {0x0400000};
    const uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_read, NULL) == SECCOMP_RET_ALLOW, "read");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_mount, NULL) == eperm, "mount");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_unshare, NULL) == eperm, "unshare");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_keyctl, NULL) == eperm, "keyctl");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_bpf, NULL) == eperm, "bpf");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_clone3, NULL) == (SECCOMP_RET_ERRNO | ENOSYS), "clone3");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_clone, flags_plain) == SECCOMP_RET_ALLOW, "clone");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_clone, flags_ns) == eperm, "clone(CLONE_NEWNS)");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_socket, inet) == SECCOMP_RET_ALLOW, "socket(AF_INET)");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_socket, vsock) == eperm, "socket(AF_VSOCK)");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_personality, query) == SECCOMP_RET_ALLOW,
          "personality query");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_personality, odd) == eperm,
          "personality(ADDR_NO_RANDOMIZE)");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_arch_prctl, NULL) == SECCOMP_RET_ALLOW, "arch_prctl");
    CHECK(eval(p, AUDIT_ARCH_X86_64, 462, NULL) == SECCOMP_RET_ALLOW,
          "mseal (newer than libseccomp)");
    CHECK(eval(p, AUDIT_ARCH_I386, 3 /* read */, NULL) == SECCOMP_RET_ALLOW, "i386 read");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_ptrace, NULL) == SECCOMP_RET_ALLOW,
          "ptrace (kernel >= 4.8)");
    /* newer than anything the profile knows: ENOSYS, so libc falls back (runc's stub) */
    const uint32_t enosys = SECCOMP_RET_ERRNO | ENOSYS;
    CHECK(eval(p, AUDIT_ARCH_X86_64, 467, NULL) == enosys, "x86_64 467: %08x",
          eval(p, AUDIT_ARCH_X86_64, 467, NULL));
    CHECK(eval(p, AUDIT_ARCH_X86_64, 1000, NULL) == enosys, "x86_64 1000");
    CHECK(eval(p, AUDIT_ARCH_X86_64, 466, NULL) == SECCOMP_RET_ALLOW, "x86_64 466 (removexattrat)");
    CHECK(eval(p, AUDIT_ARCH_X86_64, 335, NULL) == SECCOMP_RET_ALLOW, "x86_64 335 (uretprobe)");
    CHECK(eval(p, AUDIT_ARCH_X86_64, 0x40000000 + 600, NULL) == enosys, "x32 600");
    CHECK(eval(p, AUDIT_ARCH_X86_64, 0x40000000 + 1, NULL) == SECCOMP_RET_ALLOW, "x32 write");
    CHECK(eval(p, AUDIT_ARCH_I386, 900, NULL) == enosys, "i386 900");
    CHECK(eval(p, AUDIT_ARCH_X86_64, 167 /* swapon, known */, NULL) == eperm, "swapon stays EPERM");
    seccomp_free(s);

    /* CAP_SYS_ADMIN unlocks mount and namespace flags */
    CHECK(seccomp_prepare(NULL, caps_default() | (UINT64_C(1) << CAP_SYS_ADMIN), NULL, &s, &err) ==
              0,
          "%s", err.msg);
    p = prog_of(s);
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_mount, NULL) == SECCOMP_RET_ALLOW, "mount with SYS_ADMIN");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_clone, flags_ns) == SECCOMP_RET_ALLOW,
          "clone(NEWNS) with SYS_ADMIN");
    CHECK(eval(p, AUDIT_ARCH_X86_64, SYS_clone3, NULL) == SECCOMP_RET_ALLOW,
          "clone3 with SYS_ADMIN");
    seccomp_free(s);

    CHECK(seccomp_prepare("unconfined", caps_default(), NULL, &s, &err) == 0, "unconfined");
    size_t n;
    CHECK(seccomp_program(s, &n) == NULL && n == 0, "unconfined has no program");
    CHECK(seccomp_apply(s, &err) == 0, "applying unconfined is a no-op");
    seccomp_free(s);
}

static char *write_temp(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    struct imgfs_err err;
    if (write_file_atomic(p, text, strlen(text), 0600, &err) < 0)
        printf("writing %s: %s\n", p, err.msg);
    return p;
}

static void test_json_profiles(const char *dir)
{
    struct imgfs_err err = {0};
    struct ctr_seccomp *s = NULL;
    /* a blocklist: everything allowed but mkdir (EACCES) and chmod with two conditions on arg 1 */
    char *p = write_temp(
        dir, "block.json",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
        "\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":13},"
        "{\"name\":\"chmod\",\"action\":\"SCMP_ACT_ERRNO\",\"args\":["
        "{\"index\":1,\"value\":511,\"op\":\"SCMP_CMP_EQ\"},"
        "{\"index\":1,\"value\":448,\"op\":\"SCMP_CMP_EQ\"}]},"
        "{\"names\":[\"reboot\"],\"action\":\"SCMP_ACT_ERRNO\",\"includes\":{\"caps\":[\"CAP_"
        "NOPE\"]}}]}");
    CHECK(seccomp_prepare(p, caps_default(), NULL, &s, &err) == 0, "blocklist profile: %s",
          err.msg);
    if (s) {
        struct prog pr = prog_of(s);
        uint64_t a777[6] = {0, 0777}, a700[6] = {0, 0700}, a755[6] = {0, 0755};
        CHECK(eval(pr, AUDIT_ARCH_X86_64, SYS_mkdir, NULL) == (SECCOMP_RET_ERRNO | EACCES),
              "mkdir EACCES");
        CHECK(eval(pr, AUDIT_ARCH_X86_64, SYS_chmod, a777) == (SECCOMP_RET_ERRNO | EPERM),
              "chmod 777");
        CHECK(eval(pr, AUDIT_ARCH_X86_64, SYS_chmod, a700) == (SECCOMP_RET_ERRNO | EPERM),
              "chmod 700");
        CHECK(eval(pr, AUDIT_ARCH_X86_64, SYS_chmod, a755) == SECCOMP_RET_ALLOW, "chmod 755");
        CHECK(eval(pr, AUDIT_ARCH_X86_64, SYS_reboot, NULL) == SECCOMP_RET_ALLOW,
              "rule for unknown cap skipped");
        CHECK(eval(pr, AUDIT_ARCH_I386, 3, NULL) != SECCOMP_RET_ALLOW, "i386 not in architectures");
        CHECK(eval(pr, AUDIT_ARCH_X86_64, 1000, NULL) == SECCOMP_RET_ALLOW,
              "a permissive profile gets no ENOSYS stub");
    }
    seccomp_free(s);
    s = NULL;
    free(p);

    static const char *const bad[] = {
        "{",
        "[]",
        "{\"defaultAction\":\"SCMP_ACT_NOTIFY\"}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":{}}",
        "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],\"action\":"
        "\"SCMP_ACT_ALLOW\","
        "\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
        "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],\"action\":"
        "\"SCMP_ACT_ALLOW\","
        "\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_WAT\"}]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_temp(dir, "bad.json", bad[i]);
        err.msg[0] = 0;
        CHECK(seccomp_prepare(p, caps_default(), NULL, &s, &err) < 0 && err.msg[0],
              "bad profile %zu accepted", i);
        free(p);
    }
    CHECK(seccomp_prepare("/nonexistent/profile.json", 0, NULL, &s, &err) < 0 && err.code == ENOENT,
          "missing profile: %s", err.msg);
}

static void test_cache(const char *dir)
{
    char *cache = xasprintf("%s/cache", dir);
    struct imgfs_err err = {0};
    struct ctr_seccomp *a = NULL, *b = NULL, *c = NULL;
    CHECK(seccomp_prepare(NULL, caps_default(), cache, &a, &err) == 0, "%s", err.msg);
    CHECK(seccomp_prepare(NULL, caps_default(), cache, &b, &err) == 0, "%s", err.msg);
    CHECK(seccomp_prepare(NULL, caps_default() | 1u << CAP_SYS_ADMIN, cache, &c, &err) == 0, "%s",
          err.msg);
    size_t na, nb, nc;
    const void *pa = seccomp_program(a, &na), *pb = seccomp_program(b, &nb),
               *pc = seccomp_program(c, &nc);
    CHECK(na && na == nb && memcmp(pa, pb, na * sizeof(struct sock_filter)) == 0,
          "cached program differs");
    CHECK(na != nc || memcmp(pa, pc, na * sizeof(struct sock_filter)) != 0,
          "caps not in the cache key");
    int files = 0;
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "ls %s/*.bpf | wc -l", cache);
    FILE *f = popen(cmd, "r");
    if (f) {
        if (fscanf(f, "%d", &files) != 1)
            files = -1;
        pclose(f);
    }
    CHECK(files == 2, "expected 2 cached programs, found %d", files);

    /* a damaged cache entry is compiled again, not installed */
    snprintf(cmd, sizeof cmd, "for f in %s/*.bpf; do printf abc > $f; done", cache);
    CHECK(system(cmd) == 0, "damaging the cache");
    struct ctr_seccomp *d = NULL;
    CHECK(seccomp_prepare(NULL, caps_default(), cache, &d, &err) == 0, "%s", err.msg);
    size_t nd;
    const void *pd = seccomp_program(d, &nd);
    CHECK(nd == na && memcmp(pa, pd, na * sizeof(struct sock_filter)) == 0, "damaged cache used");
    seccomp_free(a);
    seccomp_free(b);
    seccomp_free(c);
    seccomp_free(d);
    free(cache);
}

/* The filter for real, in a child: no_new_privs, default caps' filter, then forbidden calls. */
static void test_apply(void)
{
    struct imgfs_err err = {0};
    struct ctr_seccomp *s = NULL;
    CHECK(seccomp_prepare(NULL, caps_default(), NULL, &s, &err) == 0, "%s", err.msg);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_apply(s, &err) < 0)
            _exit(100);
        bad |= (unshare(CLONE_NEWNS) == 0 || errno != EPERM) << 0;
        bad |= (mount("none", "/mnt", "tmpfs", 0, NULL) == 0 || errno != EPERM) << 1;
        bad |= (syscall(SYS_clone3, NULL, 0) == 0 || errno != ENOSYS) << 2;
        bad |= (syscall(SYS_keyctl, 0, 0, 0, 0, 0) == 0 || errno != EPERM) << 3;
        bad |= (syscall(SYS_bpf, 0, NULL, 0) == 0 || errno != EPERM) << 4;
        bad |= (socket(40 /* AF_VSOCK */, SOCK_STREAM, 0) >= 0 || errno != EPERM) << 5;
        bad |= (getpid() <= 0) << 6;
        bad |= (syscall(1000) == 0 || errno != ENOSYS) << 8; /* the ENOSYS stub, for real */
        pid_t c = fork(); /* glibc: clone3 -> ENOSYS -> clone without namespace flags */
        if (c == 0)
            _exit(7);
        int st;
        bad |= (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7) << 7;
        _exit(bad ? 1 + (bad & 0x7f) + (bad >> 8) * 64 : 0); /* fits an exit status */
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid, "fork/wait");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "child under the filter: status %d (bit mask of failures)",
          WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    seccomp_free(s);
}

int main(void)
{
    char dir[] = "/tmp/imgfs-test-seccomp.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_default_answers();
    test_against_docker();
    test_json_profiles(dir);
    test_cache(dir);
    test_apply();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    return unit_summary();
}
