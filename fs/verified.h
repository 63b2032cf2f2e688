/* verified.h — the chunks of a store whose SHA-256 was checked since this boot, shared by every
 * process that serves the store (mount daemons, the daemons a keeper restarts, later mounts).
 *
 * A mount daemon hashes each chunk the first time it serves it. Without this table every new
 * daemon — each `imgfs run` of an image that is not mounted yet, each daemon a keeper restarts —
 * hashes everything again. The table is a file ROOT/verified.BOOT_ID (BOOT_ID from
 * /proc/sys/kernel/random/boot_id), mapped shared: an open-addressing table of VERIFIED_SLOTS
 * digests, sparse (only touched pages take space). Files of other boots are removed when the table
 * is opened: what a previous boot checked says nothing about the disk now. Within a boot, at-rest
 * damage of a chunk already checked is not seen by reads (`imgfs fsck` hashes everything).
 *
 * Lock-free: a slot is claimed by a compare-and-swap of its first 8 bytes, the other 24 are written
 * after; a lookup accepts only a full match, so a slot being written reads as "not checked" (the
 * reader hashes again), never the reverse. A full neighbourhood drops the add. Thread- and
 * process-safe. */
#ifndef IMGFS_VERIFIED_H
#define IMGFS_VERIFIED_H

#include "digest.h"
#include "util.h"

#define VERIFIED_SLOTS (1u << 21) /* 64 MiB of address space, 2M chunks (~128 GiB of content) */

struct verified;
/* Open (creating) the table of the store at `root`. Fails (EACCES, EROFS...) when the store
 * directory is not writable or the file is not a regular file of ours; callers then keep their
 * own per-process set. */
int verified_open(const char *root, struct verified **out, struct imgfs_err *err);
bool verified_contains(struct verified *v, const struct digest *d);
void verified_add(struct verified *v, const struct digest *d);
void verified_close(struct verified *v);

#endif
