/* test_dockerignore.c — .dockerignore matching (builder/dockerignore.c), cases modelled on moby's
 * patternmatcher and ignorefile tests: wildcards, `**`, classes, escapes, exceptions and their
 * order, cleaning, comments, bad patterns, and when an excluded directory must still be walked. */
#include "../../builder/dockerfile.h"
#include "unit.h"

#include <string.h>

static struct df_ignore *load(const char *text)
{
    struct df_ignore *ig = NULL;
    struct imgfs_err err;
    if (df_ignore_parse(".dockerignore", text, strlen(text), &ig, &err) < 0) {
        printf("FAIL parse: %s\n", err.msg);
        return NULL;
    }
    return ig;
}

/* Each case: the file, then paths prefixed with '-' (must be excluded) or '+' (kept). */
static const struct {
    const char *file;
    const char *paths[8];
} cases[] = {
    {"*.go\n", {"-main.go", "+a/main.go", "+main.goo", "+gogo"}},
    {"**/*.go\n", {"-main.go", "-a/b/main.go", "+a/b/main.c"}},
    {"docs\n", {"-docs", "-docs/a", "-docs/a/b.md", "+docsx", "+a/docs"}},
    {"docs/**\n", {"+docs", "-docs/a", "-docs/a/b"}},
    {"**\n", {"-a", "-a/b"}},
    {"**/foo\n", {"-foo", "-a/foo", "-a/b/foo/c", "+a/xfoo"}},
    {"a/**/b\n", {"-a/b", "-a/x/y/b", "-a/x/b/c", "+a/xb", "+b"}},
    {"a?c\n", {"-abc", "+a/c", "+abbc"}},
    {"[a-c]x\n[^a]y\n", {"-bx", "+dx", "-by", "+ay"}},
    {"a\\*b\n", {"-a*b", "+axb"}},
    {"*.md\n!README.md\n", {"-a.md", "+README.md", "-x.md/y", "+sub/a.md"}},
    {"!README.md\n*.md\n", {"-README.md", "-a.md"}},
    {"docs\n!docs/keep.md\n", {"-docs/other", "+docs/keep.md", "-docs"}},
    {"/abs/path\n./rel\nfoo/../bar\n", {"-abs/path", "-rel", "-bar", "+foo"}},
    {"# comment\n #notcomment\n\n   \n  spaced  \n", {"+comment", "-#notcomment", "-spaced"}},
    {"\xef\xbb\xbf"
     "bom\n",
     {"-bom"}},
    {"dir/\n", {"-dir/x", "-dir"}},
    {"!  spaced-exception\n*\n", {"-spaced-exception", "-x"}},
    {"*\n!  keep \n", {"+keep", "-x"}},
};

static void matching(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct df_ignore *ig = load(cases[i].file);
        CHECK(ig != NULL, "case %zu parses", i);
        for (size_t j = 0; ig && j < 8 && cases[i].paths[j]; j++) {
            const char *p = cases[i].paths[j];
            bool want = p[0] == '-';
            CHECK(df_ignore_excluded(ig, p + 1) == want, "case %zu (%s): %s should be %s", i,
                  cases[i].file, p + 1, want ? "excluded" : "kept");
        }
        df_ignore_free(ig);
    }
    CHECK(!df_ignore_excluded(NULL, "x"), "no matcher excludes nothing");

    /* a pattern plain backtracking would take ages on; the memo answers at once */
    struct df_ignore *ig = load("*a*a*a*a*a*a*a*a*a*a*a*b\n**/a**/a**/a**/a**/a**/c\n");
    char path[400];
    for (size_t i = 0; i < sizeof(path) - 1; i++)
        path[i] = i % 2 ? '/' : 'a';
    path[sizeof(path) - 1] = 0;
    CHECK(ig && !df_ignore_excluded(ig, path), "pathological patterns do not match");
    path[sizeof(path) - 2] = 'c';
    CHECK(ig && df_ignore_excluded(ig, path), "... and match when they should");
    df_ignore_free(ig);
}

static void errors(void)
{
    struct df_ignore *ig;
    struct imgfs_err err;
    CHECK(df_ignore_parse("ctx/.dockerignore", "a\n!\n", 4, &ig, &err) < 0 &&
              strstr(err.msg, "ctx/.dockerignore:2: illegal exclusion pattern"),
          "lone !: %s", err.msg);
    CHECK(df_ignore_parse(".dockerignore", "ok\n[abc\n", 8, &ig, &err) < 0 &&
              strstr(err.msg, ".dockerignore:2") && strstr(err.msg, "bad pattern"),
          "unterminated class: %s", err.msg);
    CHECK(df_ignore_parse(".dockerignore", "a\\", 2, &ig, &err) < 0, "trailing backslash");
    /* what Go's filepath.Match calls malformed: '-' or ']' as a range end, an empty class */
    static const char *bad[] = {"[a-]", "[-a]", "[]a]", "[^]", "x[a-]y", "\\go", "a\\d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CHECK(df_ignore_parse(".dockerignore", bad[i], strlen(bad[i]), &ig, &err) < 0,
              "bad pattern %s refused", bad[i]);
    }
    CHECK(df_ignore_parse(".dockerignore", "a]\n\\[x\n", 7, &ig, &err) == 0 &&
              df_ignore_excluded(ig, "a]") && df_ignore_excluded(ig, "[x"),
          "a lone ] and an escaped [ are literals");
    df_ignore_free(ig);
    CHECK(df_ignore_parse(".dockerignore", "", 0, &ig, &err) == 0 && df_ignore_count(ig) == 0 &&
              !df_ignore_has_exceptions(ig),
          "empty file");
    CHECK(df_ignore_add(ig, "*.tmp", &err) == 0 && df_ignore_add(ig, "!keep.tmp", &err) == 0 &&
              df_ignore_count(ig) == 2 && df_ignore_has_exceptions(ig) &&
              df_ignore_excluded(ig, "a.tmp") && !df_ignore_excluded(ig, "keep.tmp"),
          "patterns added by the executor");
    CHECK(df_ignore_add(ig, "[", &err) < 0 && df_ignore_count(ig) == 2, "bad added pattern");
    df_ignore_free(ig);
}

static void walking(void)
{
    struct df_ignore *ig = load("vendor\nnode_modules\n!vendor/keep/*\n");
    CHECK(ig && df_ignore_excluded(ig, "vendor") && df_ignore_must_walk(ig, "vendor"),
          "vendor must be walked for vendor/keep/*");
    CHECK(ig && df_ignore_must_walk(ig, "vendor/keep") && !df_ignore_must_walk(ig, "vendor/other"),
          "only towards the exception");
    CHECK(ig && !df_ignore_must_walk(ig, "node_modules"), "node_modules skipped whole");
    CHECK(ig && !df_ignore_excluded(ig, "vendor/keep/a") && df_ignore_excluded(ig, "vendor/x"),
          "the re-included file");
    df_ignore_free(ig);
    ig = load("*\n!**/keep\n");
    CHECK(ig && df_ignore_must_walk(ig, "any/dir"), "** exceptions walk everything");
    df_ignore_free(ig);
    ig = load("*\n!*/keep\n");
    CHECK(ig && df_ignore_must_walk(ig, "x") && !df_ignore_must_walk(ig, "x/y"),
          "wildcard component");
    df_ignore_free(ig);
    ig = load("build\n");
    CHECK(ig && !df_ignore_must_walk(ig, "build"), "no exceptions: never walk");
    df_ignore_free(ig);
}

int main(void)
{
    matching();
    errors();
    walking();
    return unit_summary();
}
