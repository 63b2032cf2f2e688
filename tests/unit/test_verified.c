/* test_verified.c — the boot-scoped table of checked chunks: what one handle adds another sees (it
 * is one shared file), a digest differing only past the first 8 bytes is not taken for a checked
 * one, the all-zero head is never recorded, tables of other boots are removed, and a table others
 * could write is refused. */
#include "../../fs/verified.h"
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct digest digest_n(unsigned n)
{
    struct digest d;
    digest_of(&n, sizeof n, &d);
    return d;
}

int main(void)
{
    struct imgfs_err err = {0};
    char dir[] = "/tmp/imgfs-unit-verified.XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    char stale[128];
    snprintf(stale, sizeof stale, "%s/verified.0123456789abcdef0123456789abcdef", dir);
    int fd = open(stale, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0, "a table of another boot");
    close(fd);

    struct verified *a = NULL, *b = NULL;
    CHECK(verified_open(dir, &a, &err) == 0, "open: %s", err.msg);
    CHECK(verified_open(dir, &b, &err) == 0, "open again: %s", err.msg);
    CHECK(access(stale, F_OK) < 0, "the other boot's table is removed");

    unsigned before = 0;
    for (unsigned i = 0; i < 1000; i++) {
        struct digest d = digest_n(i);
        before += verified_contains(b, &d);
        verified_add(a, &d);
    }
    CHECK(before == 0, "nothing checked before it is added (%u)", before);
    unsigned seen = 0;
    for (unsigned i = 0; i < 1000; i++) {
        struct digest d = digest_n(i);
        seen += verified_contains(b, &d);
    }
    CHECK(seen == 1000, "the other handle sees all adds (%u)", seen);

    struct digest near = digest_n(5);
    near.b[31] ^= 1;
    CHECK(!verified_contains(b, &near), "a digest differing in its last byte is not checked");
    struct digest zero_head = digest_n(7);
    memset(zero_head.b, 0, 8);
    verified_add(a, &zero_head);
    CHECK(!verified_contains(a, &zero_head), "the free marker is never recorded");
    verified_close(a);
    verified_close(b);

    /* a table others may write is refused */
    char bootid[64] = {0};
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    CHECK(f && fgets(bootid, sizeof bootid, f), "boot_id");
    if (f)
        fclose(f);
    bootid[strcspn(bootid, "\n")] = 0;
    char path[160], hex[64] = {0};
    size_t n = 0;
    for (char *c = bootid; *c; c++)
        if (*c != '-')
            hex[n++] = *c;
    snprintf(path, sizeof path, "%s/verified.%s", dir, hex);
    CHECK(chmod(path, 0666) == 0, "chmod");
    CHECK(verified_open(dir, &a, &err) < 0 && err.code == EACCES,
          "a group/world-writable table is refused");

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return unit_summary();
}
