/* test_dockerfile.c — the Dockerfile parser (builder/dockerfile.c): BuildKit's 33 parser cases
 * (the AST dump must equal `result`), its 4 negative cases, the line numbers of testfile-line,
 * then what those leave out: heredocs, directives, the instruction checks and the error format. */
#include "../../builder/dockerfile.h"
#include "conformance.h"
#include "unit.h"

#include <dirent.h>
#include <string.h>

static int parse_str(const char *text, unsigned flags, struct df_file **f, struct imgfs_err *err)
{
    return df_parse("Dockerfile", text, strlen(text), flags, f, err);
}

static int names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case directories under REL, sorted. */
static size_t case_dirs(const char *rel, char ***out)
{
    char *path = xasprintf("%s/%s", conformance_dir(), rel);
    DIR *d = opendir(path);
    CHECK(d != NULL, "cannot open %s", path);
    free(path);
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        names = xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = xstrdup(e->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof(*names), names_cmp);
    *out = names;
    return n;
}

static void parse_cases(void)
{
    char **dirs;
    size_t n = case_dirs("testfiles", &dirs), passed = 0;
    for (size_t i = 0; i < n; i++) {
        char *df_rel = xasprintf("testfiles/%s/Dockerfile", dirs[i]);
        char *res_rel = xasprintf("testfiles/%s/result", dirs[i]);
        struct buf df, want;
        conformance_read(df_rel, &df);
        conformance_read(res_rel, &want);
        struct df_file *f = NULL;
        struct imgfs_err err;
        int rc = df_parse(df_rel, (char *)df.data, df.len, DF_PARSE_SYNTAX_ONLY, &f, &err);
        CHECK(rc == 0, "%s: %s", dirs[i], err.msg);
        if (rc == 0) {
            char *got = df_dump(f);
            bool same = !strcmp(got, (char *)want.data);
            CHECK(same, "%s: dump differs\n--- want\n%s--- got\n%s", dirs[i], (char *)want.data,
                  got);
            passed += same;
            free(got);
            df_file_free(f);
        }
        buf_free(&df);
        buf_free(&want);
        free(df_rel);
        free(res_rel);
        free(dirs[i]);
    }
    free(dirs);
    CHECK(n == 33 && passed == 33, "parser cases: %zu of %zu match (33 expected)", passed, n);
}

static void negative_cases(void)
{
    char **dirs;
    size_t n = case_dirs("testfiles-negative", &dirs), failed = 0;
    for (size_t i = 0; i < n; i++) {
        char *rel = xasprintf("testfiles-negative/%s/Dockerfile", dirs[i]);
        struct buf df;
        conformance_read(rel, &df);
        struct df_file *f = NULL;
        struct imgfs_err err;
        int rc = df_parse(rel, (char *)df.data, df.len, DF_PARSE_SYNTAX_ONLY, &f, &err);
        CHECK(rc < 0, "%s parsed but must be refused", dirs[i]);
        if (rc < 0) {
            failed++;
            CHECK(strstr(err.msg, rel) == err.msg, "%s: message names the file: %s", dirs[i],
                  err.msg);
        } else {
            df_file_free(f);
        }
        buf_free(&df);
        free(rel);
        free(dirs[i]);
    }
    free(dirs);
    CHECK(n == 4 && failed == 4, "negative cases: %zu of %zu refused (4 expected)", failed, n);
}

static void line_numbers(void)
{
    struct buf df;
    conformance_read("testfile-line/Dockerfile", &df);
    struct df_file *f = NULL;
    struct imgfs_err err;
    CHECK(df_parse("Dockerfile", (char *)df.data, df.len, 0, &f, &err) == 0, "testfile-line: %s",
          err.msg);
    static const unsigned want[3][2] = {{5, 5}, {11, 12}, {17, 31}};
    CHECK(f && f->n_instructions == 3, "testfile-line: 3 instructions");
    for (size_t i = 0; f && i < 3 && i < f->n_instructions; i++)
        CHECK(f->instructions[i].start_line == want[i][0] &&
                  f->instructions[i].end_line == want[i][1],
              "testfile-line instruction %zu: lines %u-%u, want %u-%u", i,
              f->instructions[i].start_line, f->instructions[i].end_line, want[i][0], want[i][1]);
    df_file_free(f);
    buf_free(&df);
}

static void heredocs(void)
{
    struct df_file *f;
    struct imgfs_err err;
    const char *text = "FROM busybox\n"
                       "RUN <<EOF\n"
                       "echo $HOME\n"
                       "EOF\n"
                       "COPY <<-\"A\" <<'B' /dest/\n"
                       "\t\tindented\n"
                       "\tA\n"
                       "b1\n"
                       "b2\n"
                       "B\n"
                       "RUN 3<<X cat <&3\n"
                       "X\n"
                       "RUN [\"sh\", \"-c\", \"<<EOF\"]\n"
                       "CMD x\n";
    CHECK(parse_str(text, 0, &f, &err) == 0, "heredocs: %s", err.msg);
    if (!f)
        return;
    CHECK(f->n_instructions == 6, "heredocs: %zu instructions", f->n_instructions);
    struct df_instruction *run = &f->instructions[1], *copy = &f->instructions[2];
    CHECK(run->n_heredocs == 1 && !strcmp(run->heredocs[0].name, "EOF") &&
              !strcmp(run->heredocs[0].content, "echo $HOME\n") && run->heredocs[0].expand &&
              !run->heredocs[0].chomp,
          "RUN <<EOF");
    CHECK(run->start_line == 2 && run->end_line == 4, "RUN <<EOF spans lines %u-%u",
          run->start_line, run->end_line);
    CHECK(run->n_args == 1 && !strcmp(run->args[0].s, "<<EOF"), "RUN keeps its shell form");
    CHECK(copy->n_heredocs == 2 && !strcmp(copy->heredocs[0].name, "A") &&
              copy->heredocs[0].chomp && !copy->heredocs[0].expand &&
              !strcmp(copy->heredocs[0].content, "indented\n") &&
              !strcmp(copy->heredocs[1].name, "B") && !copy->heredocs[1].expand &&
              !strcmp(copy->heredocs[1].content, "b1\nb2\n"),
          "two heredocs on one COPY line, chomped and quoted");
    CHECK(copy->n_args == 3 && copy->start_line == 5 && copy->end_line == 10,
          "COPY args and lines (%zu, %u-%u)", copy->n_args, copy->start_line, copy->end_line);
    CHECK(f->instructions[3].n_heredocs == 1 && f->instructions[3].heredocs[0].fd == 3,
          "fd before <<");
    CHECK(f->instructions[4].n_heredocs == 0 && f->instructions[4].json,
          "no heredocs in exec form");
    df_file_free(f);

    CHECK(parse_str("FROM a\nONBUILD COPY <<EOF /x\nhi\nEOF\n", 0, &f, &err) == 0 &&
              f->instructions[1].n_heredocs == 1 &&
              !strcmp(f->instructions[1].heredocs[0].content, "hi\n") &&
              f->instructions[1].inner->keyword == DF_COPY && f->instructions[1].end_line == 4,
          "an ONBUILD trigger's heredoc");
    df_file_free(f);
    CHECK(parse_str("FROM a\nRUN <<EOF\nnever ends\n", 0, &f, &err) < 0 &&
              strstr(err.msg, "Dockerfile:2: unterminated heredoc"),
          "unterminated heredoc: %s", err.msg);
    CHECK(parse_str("FROM a\nCOPY <<EOF <<EOF2\nx\nEOF\n", 0, &f, &err) < 0,
          "the second heredoc unterminated");
}

static void directives(void)
{
    struct df_file *f;
    struct imgfs_err err;
    CHECK(parse_str("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN x `\n  y\n", 0, &f,
                    &err) == 0,
          "directives: %s", err.msg);
    if (f) {
        CHECK(f->escape == '`' && f->syntax && !strcmp(f->syntax, "docker/dockerfile:1") &&
                  f->n_warnings == 1 && strstr(f->warnings[0], "syntax"),
              "escape and syntax directives");
        CHECK(f->n_instructions == 2 && !strcmp(f->instructions[1].args[0].s, "x   y"),
              "backtick continuation: %s", f->instructions[1].args[0].s);
        df_file_free(f);
    }
    CHECK(parse_str("# escape=x\nFROM a\n", 0, &f, &err) < 0 &&
              strstr(err.msg, "Dockerfile:1: invalid escape token 'x' does not match ` or \\"),
          "bad escape directive: %s", err.msg);
    CHECK(parse_str("# escape=\\\n# escape=`\nFROM a\n", 0, &f, &err) < 0 &&
              strstr(err.msg, "only one escape parser directive can be used"),
          "repeated directive: %s", err.msg);
    /* a directive after an instruction, a blank line or another comment is a comment */
    CHECK(parse_str("FROM a\n# escape=`\nRUN x \\\n y\n", 0, &f, &err) == 0 && f->escape == '\\',
          "late directive ignored");
    df_file_free(f);
    CHECK(parse_str("\n# escape=`\nFROM a\n", 0, &f, &err) == 0 && f->escape == '\\',
          "directive after a blank line ignored");
    df_file_free(f);
    CHECK(parse_str("FROM a\nRUN a \\\n\n  b\n", 0, &f, &err) == 0 && f->n_warnings == 1 &&
              strstr(f->warnings[0], "Empty continuation line"),
          "empty continuation warning");
    df_file_free(f);
}

/* Every class of error once: the message and the FILE:LINE it names. */
static void errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"FROM a\nFOOBAR x\n", "Dockerfile:2: unknown instruction: FOOBAR"},
        {"FROM a\nRUNN x\n", "unknown instruction: RUNN (did you mean RUN?)"},
        {"FROM a\nCOPY --fro=x a b\n", "Dockerfile:2: unknown flag: --fro"},
        {"FROM a\nCOPY --from a b\n", "missing a value on flag: --from"},
        {"FROM a\nCOPY --from=a --from=b a b\n", "duplicate flag specified: --from"},
        {"FROM a\nCOPY --link=maybe a b\n", "expecting boolean value for flag --link, not: maybe"},
        {"FROM a\nCOPY a\n", "COPY requires at least two arguments"},
        {"FROM a\nCOPY a <<EOF\nEOF\n", "COPY cannot accept a heredoc as a destination"},
        {"FROM a\nENV\n", "ENV requires at least one argument"},
        {"FROM a\nENV x\n", "Dockerfile:2: ENV must have two arguments"},
        {"FROM a\nENV a=b c\n", "Syntax error - can't find = in \"c\""},
        {"FROM a\nLABEL =x\n", "LABEL names can not be blank"},
        {"FROM a\nARG =x\n", "ARG names can not be blank"},
        {"FROM a\nWORKDIR\n", "WORKDIR requires exactly one argument"},
        {"FROM a b\n", "FROM requires either one or three arguments"},
        {"FROM a AS 1x\n", "invalid name for build stage: \"1x\""},
        {"FROM a\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD"},
        {"FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger"},
        {"FROM a\nHEALTHCHECK CONNECT x\n", "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"},
        {"FROM a\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"},
        {"FROM a\nHEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD"},
        {"FROM a\nHEALTHCHECK --interval=1us CMD x\n", "cannot be less than 1ms"},
        {"FROM a\nHEALTHCHECK --timeout=abc CMD x\n", "invalid --timeout"},
        {"FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "--retries cannot be negative"},
        {"FROM a\nSHELL sh -c\n", "SHELL requires the arguments to be in JSON form"},
        {"FROM a\nVOLUME [\"\"]\n", "VOLUME specified can not be an empty string"},
        {"FROM a\nCMD [\"a\", 1]\n", "arrays must be comprised of strings only"},
        {"FROM a\nCMD [\"a\\u0000b\"]\n", "contains a NUL character"},
        {"RUN x\n", "Dockerfile:1: no build stage in current context"},
        {"# only a comment\n\n", "file with no instructions"},
        {"", "file with no instructions"},
        {"FROM a\n\0RUN x\n", "Dockerfile:2: file contains a NUL byte"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct df_file *f = NULL;
        struct imgfs_err err = {0};
        size_t len = strlen(cases[i].text);
        if (strstr(cases[i].want, "NUL byte"))
            len = 13;
        int rc = df_parse("Dockerfile", cases[i].text, len, 0, &f, &err);
        CHECK(rc < 0 && err.code == EINVAL && strstr(err.msg, cases[i].want) &&
                  !strncmp(err.msg, "Dockerfile:", 11),
              "case %zu: want \"%s\", got \"%s\"", i, cases[i].want, rc < 0 ? err.msg : "success");
        if (rc == 0)
            df_file_free(f);
    }

    /* the snippet: the offending lines marked, some context before */
    struct df_file *f = NULL;
    struct imgfs_err err;
    CHECK(parse_str("FROM a\nRUN ok\nCOPY \\\n  --chwon=1 a b\nCMD x\n", 0, &f, &err) < 0,
          "bad flag");
    CHECK(strstr(err.msg, "Dockerfile:3: unknown flag: --chwon\n--------------------\n") &&
              strstr(err.msg, "   2 |     RUN ok\n   3 | >>> COPY \\\n   4 | >>>   --chwon=1 a b\n"
                              "--------------------") &&
              !strstr(err.msg, "CMD x"),
          "snippet: %s", err.msg);

    /* the executor's errors in the same format */
    CHECK(parse_str("FROM a\nRUN false\n", 0, &f, &err) == 0, "parse for df_error_at");
    CHECK(df_error_at(f, 2, 0, &err, EIO,
                      "process \"%s\" did not complete successfully: exit code: 1",
                      "/bin/sh -c false") == -1 &&
              err.code == EIO && strstr(err.msg, "Dockerfile:2: process") &&
              strstr(err.msg, "   2 | >>> RUN false"),
          "df_error_at: %s", err.msg);
    df_file_free(f);

    /* the syntax pass alone accepts what only the checks refuse; BuildKit dumps an unknown
     * instruction with one empty argument, and an empty keyword without a blank */
    CHECK(parse_str("FOOBAR x\nCOPY --nope a\n\\\n\n", DF_PARSE_SYNTAX_ONLY, &f, &err) == 0 &&
              f->instructions[0].keyword == DF_UNKNOWN,
          "DF_PARSE_SYNTAX_ONLY");
    char *dump = f ? df_dump(f) : NULL;
    CHECK(dump && !strcmp(dump, "(foobar \"\")\n(copy [\"--nope\"] \"a\")\n(\"\")\n"), "dump: %s",
          dump);
    free(dump);
    df_file_free(f);
}

static void instructions(void)
{
    struct df_file *f;
    struct imgfs_err err;
    const char *text = "ARG BASE=debian VERSION\n"
                       "FROM --platform=linux/amd64 ${BASE}:${VERSION} AS Build\n"
                       "RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/t "
                       "--network=none go build\n"
                       "COPY --from=build --chown=1:1 --chmod=0755 --link --parents "
                       "--exclude=*.md --exclude=x a b /dst/\n"
                       "ENV A=1 B=\"two words\"\n"
                       "ENV LEGACY value with  spaces\n"
                       "ONBUILD RUN echo hi\n"
                       "HEALTHCHECK --interval=1m30s --retries=3 CMD [\"curl\", \"-f\", \"x\"]\n"
                       "HEALTHCHECK NONE\n"
                       "EXPOSE 80/tcp 443\n";
    CHECK(parse_str(text, 0, &f, &err) == 0, "instructions: %s", err.msg);
    if (!f)
        return;
    struct df_instruction *ins = f->instructions;
    CHECK(ins[0].keyword == DF_ARG && ins[0].n_kvs == 2 && !strcmp(ins[0].kvs[0].key, "BASE") &&
              !strcmp(ins[0].kvs[0].value, "debian") && ins[0].kvs[0].equals &&
              !strcmp(ins[0].kvs[1].key, "VERSION") && !ins[0].kvs[1].value,
          "ARG kvs");
    CHECK(ins[1].n_args == 3 && !strcmp(ins[1].args[0].s, "${BASE}:${VERSION}") &&
              !strcmp(df_flag_find(&ins[1], "platform")->value, "linux/amd64"),
          "FROM");
    CHECK(ins[2].n_flags == 3 && !strcmp(ins[2].flags[1].value, "type=tmpfs,target=/t") &&
              ins[2].n_args == 1 && !strcmp(ins[2].args[0].s, "go build") && !ins[2].json,
          "RUN flags");
    CHECK(ins[3].n_flags == 7 && !df_flag_find(&ins[3], "link")->value &&
              !strcmp(df_flag_find(&ins[3], "exclude")->value, "x") && ins[3].n_args == 3,
          "COPY flags");
    CHECK(ins[4].n_kvs == 2 && !strcmp(ins[4].kvs[1].value, "\"two words\""), "ENV k=v");
    CHECK(ins[5].n_kvs == 1 && !ins[5].kvs[0].equals &&
              !strcmp(ins[5].kvs[0].value, "value with  spaces"),
          "ENV legacy");
    CHECK(ins[6].inner && ins[6].inner->keyword == DF_RUN &&
              !strcmp(ins[6].inner->original, "RUN echo hi") && ins[6].inner->start_line == 7 &&
              ins[6].inner->end_line == 7,
          "ONBUILD trigger");
    CHECK(ins[7].json && ins[7].n_args == 4 && !strcmp(ins[7].args[0].s, "CMD"),
          "HEALTHCHECK exec form");
    int64_t ns = 0;
    CHECK(df_duration_parse("1m30s", &ns) == 0 && ns == 90000000000LL, "1m30s = %lld",
          (long long)ns);
    CHECK(df_duration_parse("1.5ms", &ns) == 0 && ns == 1500000, "1.5ms");
    CHECK(df_duration_parse("5", &ns) < 0 && df_duration_parse("", &ns) < 0 &&
              df_duration_parse("s", &ns) < 0,
          "bad durations");
    CHECK(!strcmp(df_keyword_name(ins[9].keyword), "EXPOSE") && ins[9].n_args == 2, "EXPOSE words");
    df_file_free(f);

    /* a BOM, CRLF line ends, a file without a final newline */
    CHECK(parse_str("\xef\xbb\xbf"
                    "FROM a\r\nRUN b \\\r\n c\r\nCMD d",
                    0, &f, &err) == 0 &&
              f->n_instructions == 3 && !strcmp(f->instructions[1].args[0].s, "b  c") &&
              !strcmp(f->instructions[2].args[0].s, "d"),
          "BOM and CRLF");
    df_file_free(f);
}

int main(void)
{
    parse_cases();
    negative_cases();
    line_numbers();
    heredocs();
    directives();
    errors();
    instructions();
    return unit_summary();
}
