/* verified.c — the boot-scoped table of checked chunk digests (verified.h). */
#include "verified.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PROBES 64

struct slot {
    _Atomic uint64_t head; /* the digest's first 8 bytes; 0 = free */
    uint8_t rest[DIGEST_LEN - 8];
};

struct verified {
    struct slot *slots;
    size_t size;
};

static uint64_t head_of(const struct digest *d)
{
    uint64_t h;
    memcpy(&h, d->b, sizeof h);
    return h;
}

/* Digests are uniformly distributed: their bytes are the hash. */
static size_t index_of(const struct digest *d)
{
    uint64_t h;
    memcpy(&h, d->b + 8, sizeof h);
    return (size_t)(h & (VERIFIED_SLOTS - 1));
}

static int boot_id(char out[64], struct imgfs_err *err)
{
    struct buf b = {0};
    if (read_file("/proc/sys/kernel/random/boot_id", 64, &b, err) < 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < b.len && n < 63; i++) {
        char c = ((const char *)b.data)[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
            out[n++] = c;
    }
    out[n] = 0;
    buf_free(&b);
    if (n < 32)
        return err_set(err, EINVAL, "unexpected /proc/sys/kernel/random/boot_id");
    return 0;
}

/* Remove the tables of other boots. */
static void remove_stale(int dirfd, const char *mine)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "verified.", 9) && strcmp(e->d_name, mine))
            unlinkat(dirfd, e->d_name, 0);
    closedir(d);
}

int verified_open(const char *root, struct verified **out, struct imgfs_err *err)
{
    char id[64];
    if (boot_id(id, err) < 0)
        return -1;
    char name[80];
    snprintf(name, sizeof name, "verified.%s", id);
    cleanup_close int dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return err_sys(err, errno, "opening store `%s`", root);
    cleanup_close int fd =
        openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s/%s`", root, name);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return err_sys(err, errno, "`%s/%s`", root, name);
    /* a table someone else could write would let them mark damaged chunks as checked */
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
        return err_set(err, EACCES, "`%s/%s` is not a private regular file", root, name);
    size_t size = (size_t)VERIFIED_SLOTS * sizeof(struct slot);
    if ((size_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0)
        return err_sys(err, errno, "sizing `%s/%s`", root, name);
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return err_sys(err, errno, "mapping `%s/%s`", root, name);
    remove_stale(dirfd, name);
    struct verified *v = xmalloc(sizeof *v);
    v->slots = map;
    v->size = size;
    *out = v;
    return 0;
}

bool verified_contains(struct verified *v, const struct digest *d)
{
    uint64_t head = head_of(d);
    if (!head)
        return false; /* the free marker: such a digest is never recorded */
    size_t i = index_of(d);
    for (int p = 0; p < PROBES; p++, i = (i + 1) & (VERIFIED_SLOTS - 1)) {
        struct slot *s = &v->slots[i];
        uint64_t h = atomic_load_explicit(&s->head, memory_order_acquire);
        if (!h)
            return false;
        if (h == head && !memcmp(s->rest, d->b + 8, sizeof s->rest))
            return true;
    }
    return false;
}

void verified_add(struct verified *v, const struct digest *d)
{
    uint64_t head = head_of(d);
    if (!head)
        return;
    size_t i = index_of(d);
    for (int p = 0; p < PROBES; p++, i = (i + 1) & (VERIFIED_SLOTS - 1)) {
        struct slot *s = &v->slots[i];
        uint64_t expected = 0;
        if (atomic_compare_exchange_strong(&s->head, &expected, head)) {
            memcpy(s->rest, d->b + 8, sizeof s->rest);
            return;
        }
        if (expected == head && !memcmp(s->rest, d->b + 8, sizeof s->rest))
            return; /* already there */
    }
}

void verified_close(struct verified *v)
{
    if (!v)
        return;
    munmap(v->slots, v->size);
    free(v);
}
