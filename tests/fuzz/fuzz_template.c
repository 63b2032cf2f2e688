/* fuzz_template.c — --format templates (fs/template.c): any text is rendered or refused, never a
 * crash, against a fixed container-like value. */
#include "../../fs/template.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *dot;
    if (!dot)
        dot = json_loads("{\"Id\":\"x\",\"A\":[1,\"b\",null,{\"c\":[]}],\"M\":{\"k\":true}}", 0,
                         NULL);
    char *tmpl = xmalloc(size + 1);
    memcpy(tmpl, data, size);
    tmpl[size] = 0;
    struct imgfs_err err;
    char *out = NULL;
    static json_t *known;
    if (!known)
        known = json_loads("{\"N\":true,\"M\":{\"x\":true}}", 0, NULL);
    if (tmpl_render(tmpl, dot, size % 2 ? known : NULL, &out, &err) == 0)
        free(out);
    tmpl_check(tmpl, &err);
    free(tmpl);
    return 0;
}
