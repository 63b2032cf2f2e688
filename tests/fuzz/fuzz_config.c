/* fuzz_config.c — image configs come from untrusted archives; --change lines from users. Neither may
 * crash the parser. Input: a config, then after a 0xff byte, newline-separated changes. */
#include "../../fs/image.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *split = memchr(data, 0xff, size);
    size_t cfg_len = split ? (size_t)(split - data) : size;
    struct imgfs_err err;
    struct image_config c;
    if (image_config_parse((const char *)data, cfg_len, &c, &err) == 0)
        image_config_free(&c);
    if (!split)
        return 0;
    char *changes_text = xmalloc(size - cfg_len);
    memcpy(changes_text, split + 1, size - cfg_len - 1);
    changes_text[size - cfg_len - 1] = 0;
    char *changes[16] = {0};
    int n = 0;
    for (char *save, *l = strtok_r(changes_text, "\n", &save); l && n < 15;
         l = strtok_r(NULL, "\n", &save))
        changes[n++] = l;
    char *out;
    size_t out_len;
    if (image_config_edit((const char *)data, cfg_len, changes, &out, &out_len, &err) == 0)
        free(out);
    if (image_config_edit(NULL, 0, changes, &out, &out_len, &err) == 0)
        free(out);
    free(changes_text);
    return 0;
}
