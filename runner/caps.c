/* caps.c — capability sets. Raw capget/capset/prctl instead of libcap: the init needs four syscalls
 * and nothing that allocates between fork and exec. */
#include "caps.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* capabilities(7), in number order. */
static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};
#define N_CAP_NAMES ((int)(sizeof cap_names / sizeof cap_names[0]))

#define BIT(c) (UINT64_C(1) << (c))

uint64_t caps_default(void)
{
    return BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FSETID) | BIT(CAP_FOWNER) |
           BIT(CAP_MKNOD) | BIT(CAP_NET_RAW) | BIT(CAP_SETGID) | BIT(CAP_SETUID) |
           BIT(CAP_SETFCAP) | BIT(CAP_SETPCAP) | BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_SYS_CHROOT) |
           BIT(CAP_KILL) | BIT(CAP_AUDIT_WRITE);
}

static int last_cap(void)
{
    static int cached = -1;
    if (cached >= 0)
        return cached;
    int last = N_CAP_NAMES - 1;
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char b[16];
        ssize_t n = read_full(fd, b, sizeof b - 1);
        close(fd);
        if (n > 0) {
            b[n] = 0;
            int v = atoi(b);
            if (v > 0 && v < 64)
                last = v;
        }
    }
    return cached = last;
}

uint64_t caps_all(void)
{
    int last = last_cap();
    return last >= 63 ? UINT64_MAX : BIT(last + 1) - 1;
}

int caps_from_name(const char *name)
{
    if (strncasecmp(name, "CAP_", 4) == 0)
        name += 4;
    for (int i = 0; i < N_CAP_NAMES; i++)
        if (strcasecmp(name, cap_names[i]) == 0)
            return i;
    return -1;
}

int caps_name(int cap, char *buf, size_t len)
{
    if (cap < 0 || cap > 63)
        return -1;
    int n = cap < N_CAP_NAMES ? snprintf(buf, len, "CAP_%s", cap_names[cap])
                              : snprintf(buf, len, "CAP_%d", cap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* One list into a mask; "ALL" means every capability. */
static int caps_list_mask(char *const *list, const char *what, uint64_t *out, struct imgfs_err *err)
{
    *out = 0;
    for (; list && *list; list++) {
        if (strcasecmp(*list, "ALL") == 0 || strcasecmp(*list, "CAP_ALL") == 0) {
            *out |= caps_all();
            continue;
        }
        int c = caps_from_name(*list);
        if (c < 0)
            return err_set(err, EINVAL, "%s: unknown capability `%s`", what, *list);
        *out |= BIT(c);
    }
    return 0;
}

int caps_adjust(uint64_t *set, char *const *add, char *const *drop, struct imgfs_err *err)
{
    uint64_t a, d;
    if (caps_list_mask(add, "--cap-add", &a, err) < 0 ||
        caps_list_mask(drop, "--cap-drop", &d, err) < 0)
        return -1;
    *set = (*set & ~d) | a;
    return 0;
}

static int cap_get(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    return (int)syscall(SYS_capget, &h, data);
}

static int cap_set(uint64_t eff, uint64_t prm, uint64_t inh)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2] = {
        {.effective = (uint32_t)eff, .permitted = (uint32_t)prm, .inheritable = (uint32_t)inh},
        {.effective = (uint32_t)(eff >> 32),
         .permitted = (uint32_t)(prm >> 32),
         .inheritable = (uint32_t)(inh >> 32)},
    };
    return (int)syscall(SYS_capset, &h, d);
}

int caps_apply(uint64_t set, bool is_root_user, struct imgfs_err *err)
{
    struct __user_cap_data_struct cur[2];
    if (cap_get(cur) < 0)
        return err_sys(err, errno, "capget");
    uint64_t permitted = cur[0].permitted | (uint64_t)cur[1].permitted << 32;
    set &= permitted;

    /* setuid() to a non-zero uid cleared the effective set even with KEEPCAPS; dropping the
     * bounding set needs CAP_SETPCAP effective, so raise everything we still hold first. */
    if (cap_set(permitted, permitted, 0) < 0)
        return err_sys(err, errno, "raising the effective capability set");

    int last = last_cap();
    for (int c = 0; c <= last; c++) {
        if (set & BIT(c))
            continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return err_sys(err, errno, "dropping capability %d from the bounding set", c);
    }
    /* Ambient capabilities would survive execve for a non-root user; Docker grants none. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return err_sys(err, errno, "clearing the ambient capability set");

    /* Non-root users get the bounding set only, like Docker:
     * file capabilities and setuid binaries can still use it, the process itself holds nothing. */
    uint64_t keep = is_root_user ? set : 0;
    if (cap_set(keep, keep, 0) < 0)
        return err_sys(err, errno, "setting the capability sets");
    return 0;
}
