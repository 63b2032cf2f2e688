/* fuzz_oci.c — an image archive (OCI layout tar or docker save) is untrusted JSON, digests and tar
 * members: oci_detect and oci_import must end in an image or an error, never a crash. The importer
 * takes a path and reads the archive more than once, so the input is written to a memfd (reopened
 * through /proc/self/fd: the same bytes as a file, without a disk write per input). One store per
 * process (fuzz_store.h). */
#include "../../fs/import.h"
#include "../../fs/oci.h"
#include "fuzz_store.h"

#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-oci-input", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    struct imgfs_err err;
    enum oci_source_kind kind;
    if (oci_detect(path, &kind, &err) < 0 || kind == OCI_SOURCE_ROOTFS)
        return 0;
    struct store_batch *b;
    if (store_batch_begin(fuzz_store(), &b, &err) < 0)
        abort();
    struct digest d;
    struct import_limits limits;
    import_limits_init(&limits);
    oci_import(b, path, kind, NULL, &limits, &d, NULL, &err);
    store_batch_abort(b);
    return 0;
}
