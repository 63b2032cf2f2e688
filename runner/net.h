/* net.h — a container's network: loopback, and for private networking a slirp4netns user-space
 * stack with published ports.
 *
 * Modes (`imgfs run --network MODE`):
 *   NET_PRIVATE (default) the container has its own net namespace with `lo` up and a `tap0`
 * interface served by slirp4netns (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3). Outbound traffic
 * leaves through slirp4netns's sockets on the host; 10.0.2.2 is the host's loopback. Published
 * ports (`-p`) are host sockets that slirp4netns forwards in. NET_NONE              own net
 * namespace with only `lo` (up). NET_HOST              the host's namespace; the core creates no
 * net namespace and net_attach does nothing.
 *
 * Lifetime: net_attach runs in the container's monitor process (the init's parent) once the init
 * exists in its new net namespace and before it execs the user's command (or net_prepare before the
 * init exists, then net_attach_prepared: below); the returned handle owns
 * the slirp4netns process, which the monitor keeps until the container ends and then net_detach
 * stops it. Errors follow fs/util.h: 0 on success, -1 with `err` filled. */
#ifndef IMGFS_RUNNER_NET_H
#define IMGFS_RUNNER_NET_H

#include "../fs/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum net_mode { NET_PRIVATE, NET_HOST, NET_NONE };

/* Parse "private" (also "slirp4netns", "bridge", "default"), "host" or "none". */
/* MODE[:OPTION[,OPTION]]. The one option, for private networking (Podman's spelling):
 * allow_host_loopback=true|false — may the container reach the host's 127.0.0.1 through 10.0.2.2?
 * Off by default (slirp4netns --disable-host-loopback): a service bound to the host's loopback is
 * not meant for containers. `flags` (NET_* below) may be NULL. */
#define NET_ALLOW_HOST_LOOPBACK 1u
int net_parse_mode(const char *s, enum net_mode *out, unsigned *flags, struct imgfs_err *err);

struct net_port {
    char host_ip[64]; /* "" = every address (0.0.0.0) */
    uint16_t host_port, ctr_port;
    bool udp;
};

/* "[[IP:]HOST:]CTR[/tcp|/udp]". IP is IPv4 (slirp4netns 1.2 publishes on IPv4 only; a bracketed
 * IPv6 address is recognised and refused with a message saying so); without it, every address.
 * Without HOST ("80", ":80", "IP::80") host_port is 0: the runner picks a free port at create, as
 * Docker does. Port ranges are refused. */
int net_parse_port(const char *spec, struct net_port *out, struct imgfs_err *err);

struct net_handle;

/* Bring up `lo` in /proc/INIT_PID/ns/net and, for NET_PRIVATE, start slirp4netns on that namespace
 * (its state — API socket, pid, log — under state_dir, which must exist), wait until its tap device
 * is configured, and publish `ports` through its API socket. For NET_NONE only `lo`; for NET_HOST
 * nothing (and `ports` are ignored: the container already listens on the host). On failure nothing
 * is left running. *out is always set on success (a handle for NET_HOST/NET_NONE too). When the
 * init died meanwhile (its namespace is gone) the error code is ESRCH: the init's own error is then
 * the one to report. */
int net_attach(pid_t init_pid, enum net_mode mode, unsigned flags, const struct net_port *ports,
               size_t n_ports, const char *state_dir, struct net_handle **out,
               struct imgfs_err *err);

/* Private networking started before the init exists, so that slirp4netns's own start-up (its
 * loader, its libraries: milliseconds) runs beside the rest of the container's making instead of
 * after the clone: for NET_PRIVATE a new net namespace (made by this thread, which then returns to
 * its own) and slirp4netns started on it, not waited for; *out = NULL for the other modes (nothing
 * to prepare). The init is then born in that namespace (net_netns_fd: clone it from a thread that
 * setns'd there, without CLONE_NEWNET), and net_attach_prepared finishes: `lo` up, wait for the
 * tap device, publish `ports`. On a failure of either, the handle is still the caller's to
 * net_detach. */
int net_prepare(enum net_mode mode, unsigned flags, const char *state_dir, struct net_handle **out,
                struct imgfs_err *err);
int net_netns_fd(const struct net_handle *h); /* -1 for NULL or a handle net_attach made */
int net_attach_prepared(struct net_handle *h, pid_t init_pid, const struct net_port *ports,
                        size_t n_ports, const char *state_dir, struct imgfs_err *err);

/* Without ports, net_attach_prepared returns as soon as the namespace is configured (`tap0` up,
 * address, default route: packets the command sends wait in the tap device until slirp4netns
 * reads them), before the helper has finished its own start (sandbox, seccomp, libslirp) and said
 * it is ready. net_pending_fd is then the descriptor that becomes readable when it says so — or
 * dies — and net_confirm reads it: 0 ready (or nothing pending: -1 from net_pending_fd, a NULL
 * handle), -1 the helper failed (it is stopped; the container must not go on without its
 * network). net_confirm blocks (bounded, as the first wait) until the helper says either. */
int net_pending_fd(const struct net_handle *h);
int net_confirm(struct net_handle *h, struct imgfs_err *err);

/* The nameserver the container's /etc/resolv.conf should name: "10.0.2.3" (slirp4netns's DNS
 * forwarder) for NET_PRIVATE; NULL otherwise (the caller copies the host's file, as Docker does).
 */
const char *net_nameserver(enum net_mode mode);

/* pid of the slirp4netns helper, or 0 when there is none (NET_NONE, NET_HOST). */
pid_t net_helper_pid(const struct net_handle *h);

/* Stop helpers and free; NULL is fine. The helper is SIGKILLed but not waited for (its exit takes
 * the kernel tens of milliseconds): it is reaped here only if already dead, otherwise it stays a
 * zombie child of the caller until the caller reaps it (waitpid(-1)/its own exit; compare against
 * net_helper_pid() first if you count your children). */
void net_detach(struct net_handle *h);

#endif
