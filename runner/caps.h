/* caps.h — Linux capability sets for containers: Docker's default set, --cap-add/--cap-drop, and
 * applying a set in the container's init.
 *
 * A set is a bitmask of CAP_* numbers (bit N = capability N, see capabilities(7)). */
#ifndef IMGFS_RUNNER_CAPS_H
#define IMGFS_RUNNER_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../fs/util.h"

/* Docker's 14 default capabilities: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID
 * SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE (CapEff 00000000a80425fb). */
uint64_t caps_default(void);
/* Every capability the running kernel knows (0 .. /proc/sys/kernel/cap_last_cap): --privileged. */
uint64_t caps_all(void);
/* Apply --cap-add / --cap-drop to *set. Names are case-insensitive, with or without "CAP_", or
 * "ALL". Both lists are NULL-terminated (either may be NULL). Docker's order: drops first, then
 * adds, so `--cap-drop ALL --cap-add NET_ADMIN` leaves only NET_ADMIN. Unknown name: EINVAL, *set
 * unchanged. */
int caps_adjust(uint64_t *set, char *const *add, char *const *drop, struct imgfs_err *err);
/* Name of capability `cap` as "CAP_CHOWN"; "CAP_<number>" for a number this build does not know.
 * Returns 0, or -1 when `cap` is out of range or `len` too small. */
int caps_name(int cap, char *buf, size_t len);
/* Parse one name ("NET_ADMIN", "cap_net_admin") into its number; -1 when unknown. */
int caps_from_name(const char *name);

/* In the container's init (or an exec'd process), after setgroups/setgid/setuid were done with
 * prctl(PR_SET_KEEPCAPS, 1) so the permitted set survived the uid change. Sets, as Docker does:
 *   bounding = set; inheritable = ambient = empty;
 *   permitted = effective = set for root (uid 0), empty for any other user.
 * Capabilities the calling process does not hold itself are left out silently (a set can only
 * shrink; --privileged on a host that withheld a capability from us gets what we have). Needs
 * CAP_SETPCAP in the permitted set (to drop the bounding set); raises it in the effective set
 * itself. Does not allocate: safe between fork and exec. */
int caps_apply(uint64_t set, bool is_root_user, struct imgfs_err *err);

#endif
