/* fuzz_dockerfile.c — Dockerfiles and .dockerignore files come from whatever context a user
 * builds; none of the Dockerfile language code may crash, leak or loop on them. Each input is
 * parsed as a Dockerfile (with and without the instruction checks, then dumped), every argument
 * and key/value of the result is expanded and split as the executor would, and the input is read
 * as a .dockerignore whose patterns are matched against paths taken from the input itself. */
#include "../../builder/dockerfile.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *env[] = {"PATH=/usr/bin:/bin", "HOME=/root", "EMPTY=", "A=a b  c", NULL};

static void expand_all(const char *word, char escape)
{
    struct imgfs_err err;
    struct df_vars used;
    char *out;
    if (df_expand_word(word, escape, 0, df_lookup_envv, env, &out, &used, &err) == 0) {
        free(out);
        df_vars_free(&used);
    }
    char **words;
    size_t n;
    if (df_expand_words(word, escape, DF_EXPAND_SKIP_UNSET | DF_EXPAND_RAW_QUOTES, df_lookup_envv,
                        env, &words, &n, NULL, &err) == 0)
        df_words_free(words);
}

static void walk(const struct df_instruction *ins, char escape)
{
    for (size_t i = 0; i < ins->n_args; i++)
        expand_all(ins->args[i].s, escape);
    for (size_t i = 0; i < ins->n_kvs; i++) {
        expand_all(ins->kvs[i].key, escape);
        if (ins->kvs[i].value)
            expand_all(ins->kvs[i].value, escape);
    }
    for (size_t i = 0; i < ins->n_heredocs; i++)
        if (ins->heredocs[i].expand)
            expand_all(ins->heredocs[i].content, escape);
    if (ins->inner)
        walk(ins->inner, escape);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct imgfs_err err;
    struct df_file *f;
    if (df_parse("Dockerfile", text, size, 0, &f, &err) == 0)
        df_file_free(f);
    if (df_parse("Dockerfile", text, size, DF_PARSE_SYNTAX_ONLY, &f, &err) == 0) {
        free(df_dump(f));
        for (size_t i = 0; i < f->n_instructions; i++) {
            walk(&f->instructions[i], f->escape);
            df_check_instruction(&f->instructions[i], &err);
        }
        if (f->n_instructions)
            df_error_at(f, f->instructions[0].start_line, f->instructions[0].end_line, &err, EIO,
                        "x");
        df_file_free(f);
    }

    struct df_ignore *ig;
    if (df_ignore_parse(".dockerignore", text, size, &ig, &err) == 0) {
        /* the input's lines, with NUL bytes cut, as paths */
        char *copy = malloc(size + 1);
        memcpy(copy, data, size);
        copy[size] = 0;
        char *save;
        int n = 0;
        for (char *p = strtok_r(copy, "\n", &save); p && n < 64; p = strtok_r(NULL, "\n", &save)) {
            df_ignore_excluded(ig, p);
            df_ignore_must_walk(ig, p);
            n++;
        }
        df_ignore_excluded(ig, "a/b/c");
        free(copy);
        df_ignore_free(ig);
    }
    return 0;
}
