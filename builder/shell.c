/* shell.c — word expansion (see dockerfile.h). STUB: fails with ENOSYS until implemented. */
#include "dockerfile.h"

bool df_lookup_envv(void *ctx, const char *name, const char **value)
{
    (void)ctx, (void)name, (void)value;
    return false;
}

void df_vars_free(struct df_vars *vars)
{
    (void)vars;
}

int df_expand_word(const char *word, char escape, unsigned flags, df_lookup_fn lookup, void *ctx,
                   char **out, struct df_vars *used, struct imgfs_err *err)
{
    (void)escape, (void)flags, (void)lookup, (void)ctx, (void)out, (void)used;
    return err_set(err, ENOSYS, "expanding \"%s\": not implemented yet", word);
}

int df_expand_words(const char *word, char escape, unsigned flags, df_lookup_fn lookup, void *ctx,
                    char ***words, size_t *n_words, struct df_vars *used, struct imgfs_err *err)
{
    (void)escape, (void)flags, (void)lookup, (void)ctx, (void)words, (void)n_words, (void)used;
    return err_set(err, ENOSYS, "expanding \"%s\": not implemented yet", word);
}

void df_words_free(char **words)
{
    free(words);
}
