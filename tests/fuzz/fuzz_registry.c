/* fuzz_registry.c — what a registry (or a user) hands the client is untrusted: references,
 * manifests and indexes. Each must parse into something or fail with an error, never crash. */
#include "../../fs/reference.h"
#include "../../fs/registry.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imgfs_err err;
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    struct ref r;
    if (ref_parse(s, &r, &err) == 0) {
        char buf[DIGEST_STR_SIZE];
        free(ref_store_name(&r));
        free(ref_repository(&r));
        (void)ref_registry_reference(&r, buf);
        ref_free(&r);
    }
    struct registry_image img = {0};
    (void)registry_parse_manifest(s, size, &img, &err);
    registry_image_free(&img);
    struct registry_descriptor d;
    if (registry_pick_platform(s, size, NULL, &d, &err) == 0) {
        free(d.media_type);
        if (d.annotations)
            for (char **p = d.annotations; *p; p++)
                free(*p);
        free(d.annotations);
    }
    free(s);
    return 0;
}
