/* net.c — container networking: loopback up, slirp4netns for private networking, published ports.
 *
 * Why slirp4netns and not a veth pair + NAT: it needs no host firewall rules, no bridge and no IP
 * allocation, so a container leaves nothing behind on the host if imgfs dies, and it is the stack
 * rootless Podman uses. Its cost is a user-space TCP/IP stack (see docs/benchmarks.md). It runs in
 * its own session (Ctrl-C on `imgfs run` must reach the container, not kill its network) and ends
 * when the monitor closes — or dies and so closes — the exit pipe (`--exit-fd`), so it can never
 * outlive the container's monitor. */
#include "net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

/* How long slirp4netns may take to configure the namespace or answer an API request. It normally
 * takes milliseconds; the bound only turns a wedged helper into an error instead of a hang. */
#define NET_HELPER_TIMEOUT_MS 10000

#define NET_API_SOCKET "slirp4netns.sock"
#define NET_HELPER_LOG "slirp4netns.log"
#define NET_TAP_NAME   "tap0"
/* Podman's choice: a large MTU lets slirp move big segments, several times faster than 1500. */
#define NET_MTU "65520"

struct net_handle {
    enum net_mode mode;
    pid_t helper_pid; /* slirp4netns, 0 when none */
    int exit_fd;      /* write end of the pipe slirp4netns watches; closing it ends the helper */
    int netns_fd;     /* the namespace net_prepare made, -1 otherwise */
    int ready_fd;     /* read end of the helper's ready pipe until its byte was read */
    int route_fd;     /* net_prepare: a netlink socket in the namespace that hears its routes */
    char *state_dir;  /* net_prepare: where the helper's log is, for net_confirm's errors */
};

int net_parse_mode(const char *s, enum net_mode *out, unsigned *flags, struct imgfs_err *err)
{
    unsigned f = 0;
    size_t n = strcspn(s, ":");
    cleanup_free char *name = xasprintf("%.*s", (int)n, s);
    if (!strcmp(name, "private") || !strcmp(name, "slirp4netns") || !strcmp(name, "bridge") ||
        !strcmp(name, "default"))
        *out = NET_PRIVATE;
    else if (!strcmp(name, "host"))
        *out = NET_HOST;
    else if (!strcmp(name, "none"))
        *out = NET_NONE;
    else
        return err_set(err, EINVAL, "unknown network mode `%s` (expected private, host or none)",
                       name);
    if (s[n]) {
        cleanup_free char *opts = xstrdup(s + n + 1);
        char *save = NULL;
        for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
            if (*out == NET_PRIVATE && !strcmp(o, "allow_host_loopback=true"))
                f |= NET_ALLOW_HOST_LOOPBACK;
            else if (*out == NET_PRIVATE && !strcmp(o, "allow_host_loopback=false"))
                f &= ~NET_ALLOW_HOST_LOOPBACK;
            else
                return err_set(err, EINVAL,
                               "unknown network option `%s` for `%s` (private networking takes "
                               "allow_host_loopback=true|false)",
                               o, name);
        }
    }
    if (flags)
        *flags = f;
    return 0;
}

const char *net_nameserver(enum net_mode mode)
{
    return mode == NET_PRIVATE ? "10.0.2.3" : NULL;
}

static int net_parse_port_number(const char *s, size_t len, uint16_t *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int net_parse_port(const char *spec, struct net_port *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof(*out));
    const char *end = spec + strlen(spec);
    const char *slash = strchr(spec, '/');
    if (slash) {
        if (!strcmp(slash + 1, "udp"))
            out->udp = true;
        else if (strcmp(slash + 1, "tcp"))
            return err_set(err, EINVAL, "port `%s`: protocol must be tcp or udp", spec);
        end = slash;
    }

    /* The container port is after the last colon, the host port before it, the address before that
     * (an IPv6 address is bracketed, so its colons do not count). */
    const char *last = NULL;
    for (const char *p = end; p > spec; p--)
        if (p[-1] == ':') {
            last = p - 1;
            break;
        }
    if (!last) {
        /* CTR alone: a free host port on every address, as Docker's */
        if (net_parse_port_number(spec, (size_t)(end - spec), &out->ctr_port) < 0)
            return err_set(err, EINVAL,
                           "port `%s`: bad container port (1-65535; ranges unsupported)", spec);
        return 0;
    }
    if (net_parse_port_number(last + 1, (size_t)(end - last - 1), &out->ctr_port) < 0)
        return err_set(err, EINVAL, "port `%s`: bad container port (1-65535; ranges unsupported)",
                       spec);

    const char *host_start = spec;
    if (spec[0] == '[') {
        const char *close = memchr(spec, ']', (size_t)(last - spec));
        if (!close || close[1] != ':')
            return err_set(err, EINVAL, "port `%s`: bad bracketed IPv6 address", spec);
        size_t ip_len = (size_t)(close - spec - 1);
        if (ip_len >= sizeof(out->host_ip))
            return err_set(err, EINVAL, "port `%s`: address too long", spec);
        memcpy(out->host_ip, spec + 1, ip_len);
        host_start = close + 2;
    } else {
        const char *colon = memchr(spec, ':', (size_t)(last - spec));
        if (colon) {
            size_t ip_len = (size_t)(colon - spec);
            if (ip_len >= sizeof(out->host_ip))
                return err_set(err, EINVAL, "port `%s`: address too long", spec);
            memcpy(out->host_ip, spec, ip_len);
            host_start = colon + 1;
        }
    }
    /* an empty host port (":CTR", "IP::CTR"): a free one, as Docker's */
    if (host_start != last &&
        net_parse_port_number(host_start, (size_t)(last - host_start), &out->host_port) < 0)
        return err_set(err, EINVAL, "port `%s`: bad host port (1-65535; ranges unsupported)", spec);
    if (out->host_ip[0]) {
        unsigned char addr[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET6, out->host_ip, addr) == 1)
            return err_set(err, EINVAL,
                           "port `%s`: IPv6 host addresses are not supported (slirp4netns "
                           "publishes on IPv4 only)",
                           spec);
        if (inet_pton(AF_INET, out->host_ip, addr) != 1)
            return err_set(err, EINVAL, "port `%s`: `%s` is not an IPv4 address", spec,
                           out->host_ip);
    }
    return 0;
}

/* Sets `lo` up inside the container's namespace. The socket is made while this thread is in that
 * namespace (setns of a net namespace is per thread, so other threads are unaffected), then the
 * thread returns home; the socket stays bound to the namespace it was made in, which is all the
 * ioctl needs. No fork, so this costs microseconds. */
static int net_loopback_up(pid_t pid, struct imgfs_err *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
    cleanup_close int target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0)
        return err_sys(err, errno, "opening `%s`", path);
    cleanup_close int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return err_sys(err, errno, "opening /proc/thread-self/ns/net");
    if (setns(target, CLONE_NEWNET) < 0)
        return err_sys(err, errno, "entering the network namespace of pid %d", (int)pid);
    cleanup_close int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int saved = errno;
    if (setns(home, CLONE_NEWNET) < 0)
        /* This thread would keep acting in the container's network: nothing sane can follow. */
        abort();
    if (sock < 0)
        return err_sys(err, saved, "creating a socket in the container's network namespace");

    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        return err_sys(err, errno, "reading the flags of `lo`");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
        return err_sys(err, errno, "bringing up `lo`");
    return 0;
}

static int64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll() one descriptor until `deadline_ms` (monotonic), retrying EINTR. 1 ready, 0 timeout. */
static int net_poll_until(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - net_now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -1;
    }
}

/* The last line of the helper's log, for error messages. */
static void net_helper_log_tail(int dir_fd, char *out, size_t len)
{
    out[0] = 0;
    cleanup_close int fd = openat(dir_fd, NET_HELPER_LOG, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char data[4096];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t start = size > (off_t)sizeof(data) - 1 ? size - (off_t)sizeof(data) + 1 : 0;
    ssize_t n = pread(fd, data, sizeof(data) - 1, start);
    if (n <= 0)
        return;
    data[n] = 0;
    /* the last non-empty line, but not the standing "seccomp is experimental" warning */
    const char *last = NULL;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n"))
        if (*line && !strstr(line, "WARNING: Support for seccomp"))
            last = line;
    if (!last)
        return;
    size_t n_copy = strnlen(last, len - 1);
    memcpy(out, last, n_copy);
    out[n_copy] = 0;
}

static void net_helper_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    /* ECHILD: the monitor's reaper already collected it; nothing is left either way. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Send one request to the helper's API socket and check its answer. */
static int net_api_call(int dir_fd, json_t *request, struct imgfs_err *err)
{
    /* Through /proc/self/fd: the state dir's path can exceed sun_path's 108 bytes. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" NET_API_SOCKET, dir_fd);
    cleanup_close int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return err_sys(err, errno, "creating a unix socket");
    if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return err_sys(err, errno, "connecting to slirp4netns's API socket");
    cleanup_free char *text = json_dumps(request, JSON_COMPACT);
    if (!text)
        return err_set(err, ENOMEM, "encoding an API request");
    /* send(MSG_NOSIGNAL), not write: a helper that died must be an error, not a SIGPIPE that kills
     * the monitor. The request is far smaller than the socket buffer, so one call sends it all. */
    ssize_t sent;
    size_t len = strlen(text);
    while ((sent = send(sock, text, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (sent < 0)
        return err_sys(err, errno, "writing to slirp4netns's API socket");
    if ((size_t)sent != len)
        return err_set(err, EIO, "short write to slirp4netns's API socket");
    shutdown(sock, SHUT_WR);

    char reply[4096];
    size_t got = 0;
    int64_t deadline = net_now_ms() + NET_HELPER_TIMEOUT_MS;
    for (;;) {
        int r = net_poll_until(sock, POLLIN, deadline);
        if (r < 0)
            return err_sys(err, errno, "waiting for slirp4netns's answer");
        if (r == 0)
            return err_set(err, ETIMEDOUT, "slirp4netns did not answer");
        ssize_t n = read(sock, reply + got, sizeof(reply) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_sys(err, errno, "reading slirp4netns's answer");
        if (n == 0 || (got += (size_t)n) == sizeof(reply) - 1)
            break;
    }
    reply[got] = 0;
    json_error_t jerr;
    json_t *answer = json_loads(reply, 0, &jerr);
    if (!answer)
        return err_set(err, EPROTO, "slirp4netns's answer is not JSON: %s", jerr.text);
    json_t *error = json_object_get(answer, "error");
    int rc = 0;
    if (error || !json_object_get(answer, "return")) {
        const char *desc = json_string_value(json_object_get(error, "desc"));
        rc = err_set(err, EIO, "slirp4netns refused: %s", desc ? desc : reply);
    }
    json_decref(answer);
    return rc;
}

/* slirp4netns only says "slirp_add_hostfwd failed"; the usual cause is a taken port, which is
 * worth naming. */
static bool net_port_in_use(const struct net_port *p)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    const char *ip = p->host_ip[0] ? p->host_ip : "0.0.0.0";
    if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(p->host_port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(p->host_port);
        len = sizeof(*in6);
    } else {
        return false;
    }
    cleanup_close int s =
        socket(ss.ss_family, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return false;
    return bind(s, (struct sockaddr *)&ss, len) < 0 && errno == EADDRINUSE;
}

static int net_publish(int dir_fd, const struct net_port *p, struct imgfs_err *err)
{
    json_t *req =
        json_pack("{s:s, s:{s:s, s:s, s:i, s:i}}", "execute", "add_hostfwd", "arguments", "proto",
                  p->udp ? "udp" : "tcp", "host_addr", p->host_ip[0] ? p->host_ip : "0.0.0.0",
                  "host_port", (int)p->host_port, "guest_port", (int)p->ctr_port);
    if (!req)
        return err_set(err, ENOMEM, "building an API request");
    int rc = net_api_call(dir_fd, req, err);
    json_decref(req);
    if (rc < 0 && net_port_in_use(p))
        err_set(err, EADDRINUSE, "the host port is already in use");
    if (rc < 0)
        return err_ctx(err, "publishing %s%s%u -> %u/%s", p->host_ip, p->host_ip[0] ? ":" : "",
                       p->host_port, p->ctr_port, p->udp ? "udp" : "tcp");
    return 0;
}

/* Start slirp4netns on the namespace of `pid`; returns its pid, and the exit pipe's write end in
 * *exit_fd, once it reports the tap device configured. */
/* Start slirp4netns on the namespace of `pid`, or (pid 0) on `netns_fd`, not waiting for it:
 * *ready_fd is where it says it configured the tap device (net_helper_wait). */
static pid_t net_helper_spawn(pid_t pid, int netns_fd, int dir_fd, const char *state_dir,
                              unsigned flags, int *exit_fd, int *ready_fd, struct imgfs_err *err)
{
    int ready[2], exitp[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return err_sys(err, errno, "creating a pipe");
    cleanup_close int ready_r = ready[0], ready_w = ready[1];
    if (pipe2(exitp, O_CLOEXEC) < 0)
        return err_sys(err, errno, "creating a pipe");
    cleanup_close int exit_r = exitp[0], exit_w = exitp[1];
    cleanup_close int log_fd =
        openat(dir_fd, NET_HELPER_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        return err_sys(err, errno, "creating `%s/%s`", state_dir, NET_HELPER_LOG);
    cleanup_close int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0)
        return err_sys(err, errno, "opening /dev/null");

    char pid_arg[16];
    snprintf(pid_arg, sizeof(pid_arg), "%d", (int)pid);
    /* The helper finds its pipes at 3 (exit) and 4 (ready), a namespace given by descriptor at 5;
     * everything else of ours is closed. */
    char *argv[18];
    size_t argc = 0;
    argv[argc++] = "slirp4netns";
    argv[argc++] = "--configure";
    argv[argc++] = "--mtu=" NET_MTU;
    argv[argc++] = "--exit-fd=3";
    argv[argc++] = "--ready-fd=4";
    argv[argc++] = "--api-socket=" NET_API_SOCKET;
    argv[argc++] = "--enable-sandbox";
    argv[argc++] = "--enable-seccomp";
    /* the host's 127.0.0.1 stays out of reach unless asked for (net.h) */
    if (!(flags & NET_ALLOW_HOST_LOOPBACK))
        argv[argc++] = "--disable-host-loopback";
    if (!pid) {
        argv[argc++] = "--netns-type=path";
        argv[argc++] = "/proc/self/fd/5";
    } else {
        argv[argc++] = pid_arg;
    }
    argv[argc++] = NET_TAP_NAME;
    argv[argc] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* dup2 onto 3 and 4 could clobber a source that happens to be 3 or 4: go through fds >= 10. */
    cleanup_close int exit_hi = fcntl(exit_r, F_DUPFD_CLOEXEC, 10);
    cleanup_close int ready_hi = fcntl(ready_w, F_DUPFD_CLOEXEC, 10);
    cleanup_close int netns_hi = pid ? -1 : fcntl(netns_fd, F_DUPFD_CLOEXEC, 10);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    int rc = exit_hi < 0 || ready_hi < 0 || (!pid && netns_hi < 0) ? errno : 0;
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, null_fd, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, exit_hi, 3);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, ready_hi, 4);
    if (!rc && !pid)
        rc = posix_spawn_file_actions_adddup2(&fa, netns_hi, 5);
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, pid ? 5 : 6);
    /* The API socket's path is relative to the state dir: an absolute one may not fit sun_path. */
    if (!rc)
        rc = posix_spawn_file_actions_addchdir_np(&fa, state_dir);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    pid_t helper = -1;
    if (!rc)
        rc = posix_spawnp(&helper, "slirp4netns", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc == ENOENT)
        return err_set(err, ENOENT,
                       "slirp4netns is not installed (apt-get install slirp4netns, "
                       "or use --network none or --network host)");
    if (rc)
        return err_sys(err, rc, "starting slirp4netns");

    /* Only the helper may hold the write end now, so its death reads as end of file. */
    close(take_fd(&ready_w));
    *ready_fd = take_fd(&ready_r);
    *exit_fd = take_fd(&exit_w);
    return helper;
}

/* Wait until the helper configured the namespace (it writes '1' on the ready pipe). */
static int net_helper_wait(pid_t helper, int ready_r, int dir_fd, struct imgfs_err *err)
{
    int64_t deadline = net_now_ms() + NET_HELPER_TIMEOUT_MS;
    char c = 0;
    ssize_t n = -1;
    for (;;) {
        int r = net_poll_until(ready_r, POLLIN, deadline);
        if (r <= 0)
            break;
        n = read(ready_r, &c, 1);
        if (n >= 0 || errno != EINTR)
            break;
    }
    if (n != 1 || c != '1') {
        char tail[512];
        net_helper_stop(helper);
        net_helper_log_tail(dir_fd, tail, sizeof(tail));
        return err_set(err, EIO, "slirp4netns did not get ready%s%s", tail[0] ? ": " : "", tail);
    }
    return 0;
}

static pid_t net_helper_start(pid_t pid, int dir_fd, const char *state_dir, unsigned flags,
                              int *exit_fd, struct imgfs_err *err)
{
    int ready_r = -1;
    pid_t helper = net_helper_spawn(pid, -1, dir_fd, state_dir, flags, exit_fd, &ready_r, err);
    if (helper < 0)
        return -1;
    int rc = net_helper_wait(helper, ready_r, dir_fd, err);
    close(ready_r);
    if (rc < 0) {
        close(*exit_fd);
        *exit_fd = -1;
        return -1;
    }
    return helper;
}

static bool net_init_gone(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd < 0 && (errno == ENOENT || errno == ESRCH);
}

int net_attach(pid_t init_pid, enum net_mode mode, unsigned flags, const struct net_port *ports,
               size_t n_ports, const char *state_dir, struct net_handle **out,
               struct imgfs_err *err)
{
    struct net_handle *h = xcalloc(1, sizeof(*h));
    h->mode = mode;
    h->exit_fd = h->netns_fd = h->ready_fd = h->route_fd = -1;
    if (mode == NET_HOST) {
        *out = h;
        return 0;
    }
    if (net_loopback_up(init_pid, err) < 0)
        goto fail;
    if (mode == NET_PRIVATE) {
        cleanup_close int dir_fd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
            err_sys(err, errno, "opening `%s`", state_dir);
            goto fail;
        }
        pid_t helper = net_helper_start(init_pid, dir_fd, state_dir, flags, &h->exit_fd, err);
        if (helper < 0)
            goto fail;
        h->helper_pid = helper;
        for (size_t i = 0; i < n_ports; i++)
            if (net_publish(dir_fd, &ports[i], err) < 0)
                goto fail;
    }
    *out = h;
    return 0;
fail:
    net_detach(h);
    /* An init that failed on its own (a bad -w, a volume) takes its namespace with it, and the
     * helper's failure is only a symptom: say so, so that the caller can report the init's error.
     */
    if (net_init_gone(init_pid))
        return err_set(err, ESRCH, "the container's init (pid %d) ended before its network was up",
                       (int)init_pid);
    return err_ctx(err, "setting up the container's network");
}

pid_t net_helper_pid(const struct net_handle *h)
{
    return h ? h->helper_pid : 0;
}

/* A netlink socket of the calling thread's network namespace that hears every IPv4 route added
 * there, or -1 (then the caller waits for the helper's ready byte alone). */
static int net_route_listen(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0)
        return -1;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_ROUTE};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads what is queued on the route socket: 1 once the namespace has its IPv4 default route in the
 * main table, 0 not yet, -1 when the socket cannot tell (an overflow lost messages). */
static int net_route_default_seen(int fd)
{
    for (;;) {
        char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
             nh = NLMSG_NEXT(nh, n)) {
            if (nh->nlmsg_type != RTM_NEWROUTE ||
                nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
                continue;
            const struct rtmsg *rt = NLMSG_DATA(nh);
            if (rt->rtm_family == AF_INET && rt->rtm_dst_len == 0 && rt->rtm_table == RT_TABLE_MAIN)
                return 1;
        }
    }
}

/* Waits until the helper has configured the namespace — `tap0` up with its address, and last (as
 * slirp4netns 1.2's --configure does it, seen in strace) the default route — or has said it is
 * ready, whichever comes first. 1: configured, its ready byte still to come (net_confirm);
 * 0: ready (the byte is read); -1: it failed (stopped, `err` says why). */
static int net_helper_wait_configured(struct net_handle *h, int dir_fd, struct imgfs_err *err)
{
    int64_t deadline = net_now_ms() + NET_HELPER_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - net_now_ms();
        struct pollfd p[2] = {{h->ready_fd, POLLIN, 0}, {h->route_fd, POLLIN, 0}};
        int r = poll(p, 2, left < 0 ? 0 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || p[0].revents)
            break; /* ready, dead, or timed out: the ready byte says which */
        int seen = net_route_default_seen(h->route_fd);
        if (seen == 1)
            return 1;
        if (seen < 0)
            break;
    }
    return net_helper_wait(h->helper_pid, h->ready_fd, dir_fd, err);
}

int net_prepare(enum net_mode mode, unsigned flags, const char *state_dir, struct net_handle **out,
                struct imgfs_err *err)
{
    *out = NULL;
    if (mode != NET_PRIVATE)
        return 0;
    struct net_handle *h = xcalloc(1, sizeof(*h));
    h->mode = mode;
    h->exit_fd = h->netns_fd = h->ready_fd = h->route_fd = -1;
    h->state_dir = xstrdup(state_dir);
    cleanup_close int dir_fd = -1;
    cleanup_close int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) {
        err_sys(err, errno, "opening /proc/thread-self/ns/net");
        goto fail;
    }
    /* made by this thread alone (a net namespace is per thread), which then goes back home */
    if (unshare(CLONE_NEWNET) < 0) {
        err_sys(err, errno, "creating the container's network namespace");
        goto fail;
    }
    h->netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int saved = errno;
    h->route_fd = net_route_listen();
    if (setns(home, CLONE_NEWNET) < 0)
        abort(); /* this thread would go on in the container's network */
    if (h->netns_fd < 0) {
        err_sys(err, saved, "opening the container's network namespace");
        goto fail;
    }
    dir_fd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        err_sys(err, errno, "opening `%s`", state_dir);
        goto fail;
    }
    h->helper_pid =
        net_helper_spawn(0, h->netns_fd, dir_fd, state_dir, flags, &h->exit_fd, &h->ready_fd, err);
    if (h->helper_pid < 0) {
        h->helper_pid = 0;
        goto fail;
    }
    *out = h;
    return 0;
fail:
    net_detach(h);
    return err_ctx(err, "setting up the container's network");
}

int net_netns_fd(const struct net_handle *h)
{
    return h ? h->netns_fd : -1;
}

int net_pending_fd(const struct net_handle *h)
{
    return h ? h->ready_fd : -1;
}

int net_confirm(struct net_handle *h, struct imgfs_err *err)
{
    if (!h || h->ready_fd < 0)
        return 0;
    cleanup_close int dir_fd = open(h->state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int rc = net_helper_wait(h->helper_pid, h->ready_fd, dir_fd, err);
    close(h->ready_fd);
    h->ready_fd = -1;
    if (rc < 0) {
        h->helper_pid = 0; /* stopped by net_helper_wait */
        return err_ctx(err, "setting up the container's network");
    }
    return 0;
}

int net_attach_prepared(struct net_handle *h, pid_t init_pid, const struct net_port *ports,
                        size_t n_ports, const char *state_dir, struct imgfs_err *err)
{
    cleanup_close int dir_fd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return err_sys(err, errno, "opening `%s`", state_dir);
    if (net_loopback_up(init_pid, err) < 0)
        goto fail;
    /* Without ports nothing needs the helper's API before the command runs: the namespace
     * configured is enough, and what the command sends meanwhile waits in the tap device's queue
     * until slirp4netns reads it. Its sandbox, seccomp filter and libslirp set-up then run beside
     * the command's start instead of before it; net_confirm reads the ready byte later. Ports are
     * published through the API, which answers only once the helper is ready. */
    int rc = n_ports == 0 && h->route_fd >= 0
                 ? net_helper_wait_configured(h, dir_fd, err)
                 : net_helper_wait(h->helper_pid, h->ready_fd, dir_fd, err);
    if (h->route_fd >= 0)
        close(h->route_fd);
    h->route_fd = -1;
    if (rc != 1) {
        close(h->ready_fd);
        h->ready_fd = -1;
    }
    if (rc < 0) {
        h->helper_pid = 0; /* stopped by net_helper_wait */
        goto fail;
    }
    for (size_t i = 0; i < n_ports; i++)
        if (net_publish(dir_fd, &ports[i], err) < 0)
            goto fail;
    return 0;
fail:
    if (net_init_gone(init_pid))
        return err_set(err, ESRCH, "the container's init (pid %d) ended before its network was up",
                       (int)init_pid);
    return err_ctx(err, "setting up the container's network");
}

void net_detach(struct net_handle *h)
{
    if (!h)
        return;
    if (h->exit_fd >= 0)
        close(h->exit_fd);
    if (h->ready_fd >= 0)
        close(h->ready_fd);
    if (h->route_fd >= 0)
        close(h->route_fd);
    free(h->state_dir);
    if (h->netns_fd >= 0)
        close(h->netns_fd);
    /* Not waited for: the helper's exit tears down its tap device, which takes the kernel tens of
     * milliseconds (an RCU grace period) that `imgfs run --rm` would otherwise add to every run.
     * SIGKILLed, it can do nothing more; the zombie goes to whoever reaps the monitor's children.
     */
    if (h->helper_pid > 0) {
        kill(h->helper_pid, SIGKILL);
        (void)waitpid(h->helper_pid, NULL, WNOHANG);
    }
    free(h);
}
