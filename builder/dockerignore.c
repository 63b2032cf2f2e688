/* dockerignore.c — .dockerignore matching (see dockerfile.h). STUB until implemented. */
#include "dockerfile.h"

int df_ignore_parse(const char *name, const char *text, size_t len, struct df_ignore **out,
                    struct imgfs_err *err)
{
    (void)text, (void)len, (void)out;
    return err_set(err, ENOSYS, "%s: .dockerignore matching is not implemented yet", name);
}

int df_ignore_add(struct df_ignore *ignore, const char *pattern, struct imgfs_err *err)
{
    (void)ignore;
    return err_set(err, ENOSYS, "%s: .dockerignore matching is not implemented yet", pattern);
}

void df_ignore_free(struct df_ignore *ignore)
{
    free(ignore);
}

size_t df_ignore_count(const struct df_ignore *ignore)
{
    (void)ignore;
    return 0;
}

bool df_ignore_has_exceptions(const struct df_ignore *ignore)
{
    (void)ignore;
    return false;
}

bool df_ignore_excluded(const struct df_ignore *ignore, const char *path)
{
    (void)ignore, (void)path;
    return false;
}

bool df_ignore_must_walk(const struct df_ignore *ignore, const char *dir)
{
    (void)ignore, (void)dir;
    return false;
}
