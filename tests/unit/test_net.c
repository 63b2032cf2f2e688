/* test_net.c — runner/net.c: port-spec parsing, and (as root, with slirp4netns installed) a real
 * net_attach on a process in a fresh network namespace: `lo` up, tap0 configured, a published port
 * reachable from the host's 127.0.0.1, the outbound path to the host's loopback through 10.0.2.2,
 * a port conflict reported with nothing left running, and the helper gone after net_detach. */
#include "../../runner/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "unit.h"

static void test_parse_port(void)
{
    struct imgfs_err err = {0};
    struct net_port p;

    CHECK(net_parse_port("8080:80", &p, &err) == 0 && p.host_ip[0] == 0 && p.host_port == 8080 &&
              p.ctr_port == 80 && !p.udp,
          "8080:80: %s", err.msg);
    CHECK(net_parse_port("127.0.0.1:18080:8080/tcp", &p, &err) == 0 &&
              !strcmp(p.host_ip, "127.0.0.1") && p.host_port == 18080 && p.ctr_port == 8080 &&
              !p.udp,
          "127.0.0.1:18080:8080/tcp: %s", err.msg);
    CHECK(net_parse_port("53:5353/udp", &p, &err) == 0 && p.udp && p.host_port == 53 &&
              p.ctr_port == 5353,
          "udp: %s", err.msg);
    err_clear(&err);
    CHECK(net_parse_port("[::1]:8080:80", &p, &err) < 0 && strstr(err.msg, "IPv6"),
          "[::1] refused as IPv6: %s", err.msg);
    CHECK(net_parse_port("65535:1", &p, &err) == 0 && p.host_port == 65535 && p.ctr_port == 1,
          "bounds: %s", err.msg);

    CHECK(net_parse_port("80", &p, &err) == 0 && p.host_port == 0 && p.ctr_port == 80 && !p.udp,
          "80 (a free host port): %s", err.msg);
    CHECK(net_parse_port(":53/udp", &p, &err) == 0 && p.host_port == 0 && p.ctr_port == 53 && p.udp,
          ":53/udp: %s", err.msg);
    CHECK(net_parse_port("127.0.0.1::80", &p, &err) == 0 && p.host_port == 0 &&
              !strcmp(p.host_ip, "127.0.0.1") && p.ctr_port == 80,
          "127.0.0.1::80: %s", err.msg);
    const char *bad[] = {"80x",         "",           "/tcp",         "8080:",        "0:80",
                         "65536:80",    "80:65536",   "8080:80/sctp", "a:80",         "80:b",
                         "1.2.3:80:80", "[::1:80:80", "8000-8010:80", "host:8080:80", "-1:80",
                         "1:2:3:4",     "::1:80:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&err);
        CHECK(net_parse_port(bad[i], &p, &err) < 0 && err.code == EINVAL && err.msg[0],
              "`%s` should be refused", bad[i]);
    }

    enum net_mode m;
    CHECK(net_parse_mode("none", &m, NULL, &err) == 0 && m == NET_NONE, "none");
    CHECK(net_parse_mode("host", &m, NULL, &err) == 0 && m == NET_HOST, "host");
    CHECK(net_parse_mode("private", &m, NULL, &err) == 0 && m == NET_PRIVATE, "private");
    CHECK(net_parse_mode("bogus", &m, NULL, &err) < 0, "bogus mode refused");
    unsigned f = 7;
    CHECK(net_parse_mode("private", &m, &f, &err) == 0 && f == 0, "private: no host loopback");
    CHECK(net_parse_mode("private:allow_host_loopback=true", &m, &f, &err) == 0 &&
              m == NET_PRIVATE && f == NET_ALLOW_HOST_LOOPBACK,
          "private:allow_host_loopback=true");
    CHECK(net_parse_mode("slirp4netns:allow_host_loopback=true,allow_host_loopback=false", &m, &f,
                         &err) == 0 &&
              f == 0,
          "the last option wins");
    CHECK(net_parse_mode("none:allow_host_loopback=true", &m, &f, &err) < 0,
          "options only for private networking");
    CHECK(net_parse_mode("private:bogus", &m, &f, &err) < 0 && strstr(err.msg, "bogus"),
          "an unknown option is refused, named: %s", err.msg);
}

/* A free TCP port on 127.0.0.1 (the kernel's choice). */
static uint16_t free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0)
        abort();
    close(s);
    return ntohs(a.sin_port);
}

static int listen_on(uint32_t addr, uint16_t port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr)};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0)
        return -1;
    return s;
}

static int connect_to(const char *ip, uint16_t port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    return s;
}

static bool iface_up(int sock, const char *name)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    return ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
}

/* The child in its own net namespace: reports what it sees, serves one connection on ctr_port with
 * "hello", and connects out to 10.0.2.2:out_port. Each result is one byte on `report`. */
static void ns_child(int go, int report, uint16_t ctr_port, uint16_t out_port, bool private_net)
{
    char c;
    if (read(go, &c, 1) != 1)
        _exit(2);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char r[4] = {iface_up(s, "lo") ? 'y' : 'n', iface_up(s, "tap0") ? 'y' : 'n', '-', '-'};
    if (!private_net) {
        (void)!write(report, r, 2);
        _exit(0);
    }
    int l = listen_on(INADDR_ANY, ctr_port);
    r[2] = l >= 0 ? 'y' : 'n';
    (void)!write(report, r, 3);
    if (l < 0)
        _exit(1);
    int conn = accept(l, NULL, NULL);
    if (conn >= 0) {
        (void)!write(conn, "hello", 5);
        close(conn);
    }
    int out = connect_to("10.0.2.2", out_port);
    char buf[8] = {0};
    r[3] = out >= 0 && read(out, buf, 5) == 5 && !memcmp(buf, "howdy", 5) ? 'y' : 'n';
    (void)!write(report, r + 3, 1);
    _exit(0);
}

/* net_attach needs the child's namespace to exist: wait until /proc/PID/ns/net is not ours. */
static void wait_for_netns(pid_t pid)
{
    char path[64], self[64], target[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
    ssize_t n1 = readlink("/proc/self/ns/net", self, sizeof(self) - 1);
    for (int i = 0; i < 1000000; i++) {
        ssize_t n2 = readlink(path, target, sizeof(target) - 1);
        if (n2 > 0 && (n2 != n1 || memcmp(self, target, (size_t)n2)))
            return;
        sched_yield();
    }
    abort();
}

/* prepared: the network made before the process (net_prepare), which then enters its namespace,
 * as the init is born in it; otherwise net_attach on the process's own new namespace. */
static void test_attach(enum net_mode mode, bool prepared)
{
    bool private_net = mode == NET_PRIVATE;
    char dir[] = "/tmp/test_net.XXXXXX";
    if (!mkdtemp(dir))
        abort();
    struct imgfs_err err = {0};
    struct net_handle *h = NULL;
    if (prepared) {
        CHECK(net_prepare(mode, NET_ALLOW_HOST_LOOPBACK, dir, &h, &err) == 0, "%s", err.msg);
        CHECK(h && net_netns_fd(h) >= 0 && net_helper_pid(h) > 0,
              "a prepared private network has its namespace and its helper");
    }
    uint16_t host_port = free_port(), ctr_port = 8080, out_port = free_port();
    int host_server = listen_on(INADDR_LOOPBACK, out_port);
    int go[2], report[2];
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0 || host_server < 0)
        abort();
    pid_t child = fork();
    if (child == 0) {
        if (prepared ? setns(net_netns_fd(h), CLONE_NEWNET) < 0 : unshare(CLONE_NEWNET) < 0)
            _exit(3);
        ns_child(go[0], report[1], ctr_port, out_port, private_net);
    }
    close(go[0]);
    close(report[1]);
    wait_for_netns(child);

    struct net_port port;
    char spec[64];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u:%u", host_port, ctr_port);
    CHECK(net_parse_port(spec, &port, &err) == 0, "%s", err.msg);
    /* the outbound check below needs the host's loopback (off by default: 70_net_loopback.sh) */
    int rc = prepared ? net_attach_prepared(h, child, &port, 1, dir, &err)
                      : net_attach(child, mode, NET_ALLOW_HOST_LOOPBACK, &port, 1, dir, &h, &err);
    CHECK(rc == 0, "net_attach(%d, prepared %d): %s", mode, prepared, err.msg);
    pid_t helper = net_helper_pid(h);
    CHECK(private_net ? helper > 0 : helper == 0, "helper pid %d", (int)helper);
    (void)!write(go[1], "g", 1);

    char r[4] = {0};
    int conn = -1;
    CHECK(read(report[0], r, private_net ? 3 : 2) == (private_net ? 3 : 2), "child report");
    CHECK(r[0] == 'y', "lo is up in the namespace");
    CHECK(r[1] == (private_net ? 'y' : 'n'), "tap0 present only with private networking: %c", r[1]);
    if (private_net) {
        CHECK(r[2] == 'y', "child listens");
        int c = connect_to("127.0.0.1", host_port);
        char buf[8] = {0};
        CHECK(c >= 0 && read(c, buf, 5) == 5 && !memcmp(buf, "hello", 5),
              "published port %u reaches the container's %u (got `%s`)", host_port, ctr_port, buf);
        if (c >= 0)
            close(c);
        struct pollfd p = {.fd = host_server, .events = POLLIN};
        conn = poll(&p, 1, 10000) == 1 ? accept(host_server, NULL, NULL) : -1;
        CHECK(conn >= 0, "the container reached the host's 127.0.0.1:%u via 10.0.2.2", out_port);
    }
    if (private_net && !prepared) {
        /* The same host port for a second namespace, while the first still holds it: must fail
         * cleanly. */
        int hold[2];
        if (pipe2(hold, O_CLOEXEC) < 0)
            abort();
        pid_t other = fork();
        if (other == 0) {
            char ch;
            close(hold[1]);
            _exit(unshare(CLONE_NEWNET) < 0 || read(hold[0], &ch, 1) < 0);
        }
        close(hold[0]);
        wait_for_netns(other);
        struct net_handle *h2 = NULL;
        char dir2[] = "/tmp/test_net.XXXXXX";
        if (!mkdtemp(dir2))
            abort();
        err_clear(&err);
        CHECK(net_attach(other, mode, 0, &port, 1, dir2, &h2, &err) < 0 && err.msg[0],
              "a port already in use is an error");
        CHECK(strstr(err.msg, "publishing") != NULL, "error names the port: %s", err.msg);
        CHECK(waitpid(-1, NULL, WNOHANG) == 0, "no helper left behind by the failed attach");
        close(hold[1]);
        waitpid(other, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir2);
        (void)!system(cmd);
    }
    if (private_net) {
        if (conn >= 0) {
            (void)!write(conn, "howdy", 5);
            close(conn);
        }
        CHECK(read(report[0], r + 3, 1) == 1 && r[3] == 'y', "outbound exchange");
    }
    net_detach(h);
    if (helper > 0) {
        int st = 0;
        pid_t w = waitpid(helper, &st, 0);
        /* killed, or already gone by itself: closing the exit pipe comes first */
        CHECK((w == helper && (WIFSIGNALED(st) || WIFEXITED(st))) || (w < 0 && errno == ECHILD),
              "net_detach ended the helper");
        CHECK(kill(helper, 0) < 0 && errno == ESRCH, "helper gone after net_detach");
    }
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    close(go[1]);
    close(report[0]);
    close(host_server);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_parse_port();
    if (geteuid() != 0 || system("command -v slirp4netns >/dev/null") != 0) {
        printf("skipping net_attach tests (need root and slirp4netns)\n");
    } else {
        struct net_handle *none = NULL;
        struct imgfs_err err = {0};
        CHECK(net_prepare(NET_NONE, 0, "/nonexistent", &none, &err) == 0 && none == NULL,
              "nothing to prepare without private networking");
        test_attach(NET_NONE, false);
        test_attach(NET_PRIVATE, false);
        test_attach(NET_PRIVATE, true);
    }
    return unit_summary();
}
