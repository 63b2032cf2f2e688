/* test_shell.c — word expansion (builder/shell.c) against BuildKit's envVarTest and wordsTest
 * (tests/conformance/buildkit), plus the cases those files leave out: the variables used, the
 * backtick escape token, raw/skip options. */
#include "../../builder/dockerfile.h"
#include "conformance.h"
#include "unit.h"

#include <string.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* envVarTest: PLATFORM|input|expected, for A and U lines. */
static void env_var_test(void)
{
    char *env[] = {"PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL=", NULL};
    struct buf b;
    conformance_read("envVarTest", &b);
    int lines = 0;
    char *save;
    for (char *line = strtok_r((char *)b.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || !*trim(line))
            continue;
        char *plat = line, *bar1 = strchr(line, '|'), *bar2 = bar1 ? strrchr(line, '|') : NULL;
        CHECK(bar1 && bar2 && bar2 > bar1, "malformed envVarTest line: %s", line);
        if (!bar1 || !bar2 || bar2 == bar1)
            continue;
        *bar1 = *bar2 = 0;
        plat = trim(plat);
        if (strcmp(plat, "A") && strcmp(plat, "U"))
            continue;
        char *input = trim(bar1 + 1), *expected = trim(bar2 + 1);
        char *out = NULL;
        struct imgfs_err err;
        int rc = df_expand_word(input, '\\', 0, df_lookup_envv, env, &out, NULL, &err);
        if (!strcmp(expected, "error"))
            CHECK(rc < 0, "envVarTest %s: expected an error, got \"%s\"", input, rc ? "" : out);
        else
            CHECK(rc == 0 && !strcmp(out, expected), "envVarTest %s: expected \"%s\", got \"%s\"",
                  input, expected, rc ? err.msg : out);
        free(out);
        lines++;
    }
    CHECK(lines > 200, "envVarTest: only %d lines run", lines);
    buf_free(&b);
}

/* wordsTest: input|w1,w2 lines; ENV k=v lines extend the environment. */
static void words_test(void)
{
    char *env[64] = {0};
    size_t n_env = 0;
    struct buf b;
    conformance_read("wordsTest", &b);
    int lines = 0;
    char *save;
    for (char *line = strtok_r((char *)b.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || !*line)
            continue;
        if (!strncmp(line, "ENV ", 4)) {
            if (n_env < 63)
                env[n_env++] = line + 4; /* the value keeps its trailing spaces */
            continue;
        }
        char *bar = strchr(line, '|');
        CHECK(bar != NULL, "malformed wordsTest line: %s", line);
        if (!bar)
            continue;
        *bar = 0;
        char *input = trim(line), *expected = bar + 1;
        /* as BuildKit's test: only the leading blanks of the expected list are trimmed (words
         * may end in spaces) */
        while (*expected == ' ')
            expected++;
        char **words = NULL;
        size_t n = 0;
        struct imgfs_err err;
        int rc = df_expand_words(input, '\\', 0, df_lookup_envv, env, &words, &n, NULL, &err);
        if (!strncmp(expected, "error", 5) && !expected[5 + strspn(expected + 5, " ")]) {
            CHECK(rc < 0, "wordsTest %s: expected an error", input);
        } else if (rc < 0) {
            CHECK(0, "wordsTest %s: %s", input, err.msg);
        } else {
            struct buf got = {0};
            for (size_t i = 0; i < n; i++) {
                if (i)
                    buf_append(&got, ",", 1);
                buf_append(&got, words[i], strlen(words[i]));
            }
            buf_append(&got, "", 1);
            CHECK(!strcmp((char *)got.data, expected), "wordsTest %s: expected [%s], got [%s]",
                  input, expected, (char *)got.data);
            buf_free(&got);
        }
        df_words_free(words);
        lines++;
    }
    CHECK(lines >= 20, "wordsTest: only %d lines run", lines);
    buf_free(&b);
}

static char *expand(const char *word, char escape, unsigned flags, char **env)
{
    char *out;
    struct imgfs_err err;
    if (df_expand_word(word, escape, flags, df_lookup_envv, env, &out, NULL, &err) < 0)
        return xasprintf("ERROR %s", err.msg);
    return out;
}

#define EXPECT(word, escape, flags, env, want)                                                     \
    do {                                                                                           \
        char *got_ = expand(word, escape, flags, env);                                             \
        CHECK(!strcmp(got_, want), "%s -> \"%s\", want \"%s\"", word, got_, want);                 \
        free(got_);                                                                                \
    } while (0)

static void more(void)
{
    char *env[] = {"A=a b", "P=/usr/local/bin/x.tar.gz", "E=", "A=again", NULL};
    EXPECT("$A", '\\', 0, env, "again"); /* the last entry wins */
    EXPECT("${P##*/}", '\\', 0, env, "x.tar.gz");
    EXPECT("${P#*/}", '\\', 0, env, "usr/local/bin/x.tar.gz");
    EXPECT("${P%.*}", '\\', 0, env, "/usr/local/bin/x.tar");
    EXPECT("${P%%.*}", '\\', 0, env, "/usr/local/bin/x");
    EXPECT("${P/local/opt}", '\\', 0, env, "/usr/opt/bin/x.tar.gz");
    EXPECT("${P//\\//:}", '\\', 0, env, ":usr:local:bin:x.tar.gz");
    EXPECT("${P/#/x}", '\\', 0, env, "/usr/local/bin/x.tar.gz"); /* no anchors: '#' literal */
    EXPECT("${E:-def}", '\\', 0, env, "def");
    char *kenv[] = {"K=한국어", "S=a*b?c", NULL};
    EXPECT("${K#?}", '\\', 0, kenv, "국어"); /* `?` is one character, not one byte */
    EXPECT("${K%?}", '\\', 0, kenv, "한국");
    EXPECT("${K/국/-}", '\\', 0, kenv, "한-어");
    EXPECT("${S/\\*/x}", '\\', 0, kenv, "axb?c"); /* escaped wildcards are literal */
    EXPECT("${S#*\\?}", '\\', 0, kenv, "c");
    EXPECT("${S//?/.}", '\\', 0, kenv, ".....");
    EXPECT("${E-def}", '\\', 0, env, "");
    EXPECT("${E:+alt}", '\\', 0, env, "");
    EXPECT("${E+alt}", '\\', 0, env, "alt");
    EXPECT("${nope:-$A}", '\\', 0, env, "again");
    EXPECT("${E:?must be set}", '\\', 0, env,
           "ERROR failed to process \"${E:?must be set}\": E: must be set");
    EXPECT("${nope?}", '\\', 0, env,
           "ERROR failed to process \"${nope?}\": nope: is not allowed to be unset");
    /* the backtick escape token (# escape=`): a backslash is an ordinary character */
    EXPECT("C:\\dir`$A", '`', 0, env, "C:\\dir$A");
    EXPECT("\"`\"q\"", '`', 0, env, "\"q");
    EXPECT("\xef\xbb\xbf$A", '\\', 0, env,
           "again"); /* a leading BOM is dropped, as Go's scanner does */
    /* options */
    EXPECT("'$A'\"x\"", '\\', DF_EXPAND_RAW_QUOTES, env, "'$A'\"x\"");
    EXPECT("a\\ b", '\\', DF_EXPAND_RAW_ESCAPES, env, "a\\ b");
    EXPECT("$nope${nope}${nope:-x}$A", '\\', DF_EXPAND_SKIP_UNSET, env,
           "$nope${nope}${nope:-x}again");
    EXPECT("'$A'", '\\', DF_EXPAND_NO_QUOTES, env, "'again'");

    /* a pattern that backtracking would take ages on: the automaton answers at once */
    struct buf lb = {0};
    buf_append(&lb, "L=", 2);
    for (int i = 0; i < 3000; i++)
        buf_append(&lb, "a", 1);
    buf_append(&lb, "", 1);
    char *lenv[] = {(char *)lb.data, NULL};
    EXPECT("${L##*a*a*a*a*a*a*a*a}x", '\\', 0, lenv, "x");
    EXPECT("${L%%a*a*a*a*a*a*a*a*a}x", '\\', 0, lenv, "x");
    char *got = expand("${L//*a*a*a*a*b/-}", '\\', 0, lenv);
    CHECK(strlen(got) == 3000, "no match leaves the value (%zu)", strlen(got));
    free(got);
    buf_free(&lb);

    /* the variables used, set or not, once each */
    struct df_vars used;
    char *out;
    struct imgfs_err err;
    CHECK(df_expand_word("$A ${B:-$A} ${E}", '\\', 0, df_lookup_envv, env, &out, &used, &err) == 0,
          "expansion with used variables");
    CHECK(used.n == 3 && !strcmp(used.names[0], "A") && used.found[0] &&
              !strcmp(used.names[1], "B") && !used.found[1] && !strcmp(used.names[2], "E") &&
              used.found[2],
          "used = %zu variables", used.n);
    free(out);
    df_vars_free(&used);
    CHECK(df_expand_word("${B", '\\', 0, df_lookup_envv, env, &out, &used, &err) < 0 && used.n == 0,
          "a failed expansion leaves no variables");

    char **words;
    size_t n;
    CHECK(df_expand_words("<<EOF cat <<- 'x' \"\" ''", '\\', 0, NULL, NULL, &words, &n, NULL,
                          &err) == 0 &&
              n == 4 && !strcmp(words[0], "<<EOF") && !strcmp(words[2], "<<-") &&
              !strcmp(words[3], "x"),
          "heredoc markers are words, empty quotes are none (%zu words)", n);
    df_words_free(words);
}

int main(void)
{
    env_var_test();
    words_test();
    more();
    return unit_summary();
}
