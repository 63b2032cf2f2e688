/* dockerfile.c — the Dockerfile parser (see dockerfile.h). STUB: the header's contract is final;
 * the implementation follows. Every entry point fails with ENOSYS until then. */
#include "dockerfile.h"

#include <string.h>

int df_parse(const char *name, const char *text, size_t len, unsigned flags, struct df_file **out,
             struct imgfs_err *err)
{
    (void)text, (void)len, (void)flags, (void)out;
    return err_set(err, ENOSYS, "%s: the Dockerfile parser is not implemented yet", name);
}

void df_file_free(struct df_file *file)
{
    free(file);
}

const char *df_keyword_name(enum df_keyword keyword)
{
    (void)keyword;
    return "";
}

const struct df_flag *df_flag_find(const struct df_instruction *ins, const char *name)
{
    for (size_t i = ins->n_flags; i-- > 0;)
        if (!strcmp(ins->flags[i].name, name))
            return &ins->flags[i];
    return NULL;
}

char *df_dump(const struct df_file *file)
{
    (void)file;
    return xstrdup("");
}

int df_error_at(const struct df_file *file, unsigned start, unsigned end, struct imgfs_err *err,
                int code, const char *fmt, ...)
{
    (void)end, (void)fmt;
    return err_set(err, code, "%s:%u: error", file->name, start);
}
