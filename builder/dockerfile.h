/* dockerfile.h — the Dockerfile language: parsing (dockerfile.c), word expansion (shell.c) and
 * .dockerignore matching (dockerignore.c). Pure logic: nothing here reads files, runs anything or
 * touches the store; the executor (builder/build.c) hands text in and gets plain data back.
 *
 * The reference for every behaviour is BuildKit (moby/buildkit frontend/dockerfile/parser,
 * .../instructions and .../shell) and moby/patternmatcher; docs/builder.md lists the differences.
 *
 * Errors follow fs/util.h: functions return 0 (or a count) on success and -1 on failure, with
 * `struct imgfs_err` filled in. Parse errors carry the file name and line and a snippet of the
 * offending lines, formatted as BuildKit prints them:
 *
 *     Dockerfile:3: unknown instruction: FOOBAR
 *     --------------------
 *        2 |     FROM alpine
 *        3 | >>> FOOBAR x
 *     --------------------
 *
 * Thread-safety: no global state; distinct objects may be used from distinct threads freely, and a
 * parsed file or ignore matcher may be read from several threads at once. */
#ifndef IMGFS_BUILDER_DOCKERFILE_H
#define IMGFS_BUILDER_DOCKERFILE_H

#include "../fs/util.h"

#include <stdbool.h>
#include <stddef.h>

/* ==== The parsed file ========================================================================= */

enum df_keyword {
    DF_UNKNOWN = 0, /* not an instruction (accepted only with DF_PARSE_SYNTAX_ONLY) */
    DF_ADD,
    DF_ARG,
    DF_CMD,
    DF_COPY,
    DF_ENTRYPOINT,
    DF_ENV,
    DF_EXPOSE,
    DF_FROM,
    DF_HEALTHCHECK,
    DF_LABEL,
    DF_MAINTAINER,
    DF_ONBUILD,
    DF_RUN,
    DF_SHELL,
    DF_STOPSIGNAL,
    DF_USER,
    DF_VOLUME,
    DF_WORKDIR,
};

/* A string that may contain NUL bytes: an exec-form JSON array may hold "\u0000". `s` is always
 * NUL-terminated as well (s[len] == 0), so it can be used as a C string when strlen(s) == len. */
struct df_str {
    char *s;
    size_t len;
};

/* A flag written before the arguments: `--from=build` is {name "from", value "build"}; `--link`
 * is {name "link", value NULL}; `--x=` is {name "x", value ""}. Quotes and escapes inside a flag
 * word are already removed (BuildKit's flag splitting); `--` ends the flags and is not listed. */
struct df_flag {
    char *name;
    char *value;
};

/* A key/value pair, for ENV, LABEL and ARG. Values are as written: quotes and escapes are kept
 * and nothing is expanded (expand them with df_expand_word when the instruction runs).
 *  - ENV/LABEL `KEY=VALUE ...`: `equals` true, value the text after the first '='.
 *  - ENV/LABEL `KEY rest of line` (the legacy form): `equals` false, value the rest of the line
 *    verbatim (inner whitespace kept).
 *  - ARG `NAME=DEFAULT`: `equals` true; ARG `NAME`: `equals` false and value NULL. */
struct df_kv {
    char *key;
    char *value;
    bool equals;
};

/* A heredoc attached to a RUN, COPY or ADD (shell form only): `<<EOF`, `<<-EOF`, `<<"EOF"`.
 * content: the lines between the instruction and the terminator, each with its newline, as in
 *          the file — except that with `chomp` (`<<-`) leading tabs are already removed from every
 *          line. An empty heredoc has content "".
 * expand:  false when the delimiter was quoted in any way (`<<"EOF"`, `<<'EOF'`, `<<\EOF`): the
 *          content is to be used literally; true means variables in it are to be expanded.
 * fd:      the file descriptor number written before `<<` (`3<<EOF`), 0 when none. */
struct df_heredoc {
    char *name;
    char *content;
    bool expand, chomp;
    unsigned fd;
};

/* One instruction. What `args` holds depends on the keyword (BuildKit's parser):
 *  FROM, EXPOSE            the words, split on whitespace: FROM img AS name -> "img" "AS" "name"
 *  RUN, CMD, ENTRYPOINT,   exec form (`json` true): the array's strings; shell form: one string,
 *  SHELL                   the rest of the line (continuations joined); no arguments: none
 *  ADD, COPY, VOLUME       exec form: the array's strings; otherwise the whitespace-split words
 *  HEALTHCHECK             args[0] the type as written ("CMD", "NONE"), then the command as for
 *                          CMD (json tells its form)
 *  MAINTAINER, USER,       one string, the rest of the line
 *  WORKDIR, STOPSIGNAL
 *  ARG                     the words (quotes kept, split on unquoted whitespace); also in kvs
 *  ENV, LABEL              none: see kvs
 *  ONBUILD                 none: see inner
 *  unknown                 none
 * Nothing in args is expanded: variables, quotes and escapes are as written (exec-form strings
 * are JSON-decoded). */
struct df_instruction {
    enum df_keyword keyword;
    char *keyword_text;            /* as written ("copy", "Copy", "FOOBAR") */
    unsigned start_line, end_line; /* 1-based lines in the file, the heredoc bodies included */
    char *original;                /* the logical line: continuations joined, comments gone */
    struct df_flag *flags;         /* in the order written; a repeated flag appears again */
    size_t n_flags;
    bool json; /* exec form (valid JSON array of strings) */
    struct df_str *args;
    size_t n_args;
    struct df_kv *kvs;
    size_t n_kvs;
    /* in the order of their `<<` on the line; an ONBUILD trigger's heredocs are here, on the
     * ONBUILD instruction, as BuildKit keeps them */
    struct df_heredoc *heredocs;
    size_t n_heredocs;
    /* ONBUILD: the trigger, parsed (its `original` is the trigger's text; its start/end lines are
     * the ONBUILD's) */
    struct df_instruction *inner;
};

struct df_file {
    char *name; /* as given to df_parse, used in messages */
    struct df_instruction *instructions;
    size_t n_instructions;
    char escape;  /* the escape token in effect: '\\' or '`' */
    char *syntax; /* `# syntax=` directive value, or NULL; not acted on (see warnings) */
    char *check;  /* `# check=` directive value, or NULL; not acted on (see warnings) */
    /* Notes for the user that do not stop the build, one line each without a trailing newline, in
     * BuildKit's wording where it has one ("Empty continuation line found in: ...", "the syntax
     * directive is ignored: ..."). The caller decides whether to print them. */
    char **warnings;
    size_t n_warnings;
    /* private: the source, kept for error snippets (df_error_at) */
    char *source_;
    size_t source_len_;
};

/* df_parse flags */
enum {
    /* Stop after BuildKit's syntactic parser: unknown instructions, unknown flags, missing or extra
     * arguments are all accepted (what the conformance dump compares). Without it every
     * instruction is also checked as BuildKit's instructions package does: the keyword is known;
     * the flags are the instruction's (names, values, booleans, no duplicates of single flags);
     * the argument counts; FROM's `AS name`; ONBUILD's trigger; HEALTHCHECK's type; the first
     * instruction is FROM or ARG; exec-form strings hold no NUL. */
    DF_PARSE_SYNTAX_ONLY = 1,
};

/* Parse a Dockerfile.
 *  name   the file's name for messages ("Dockerfile", "app/Dockerfile.dev", "-"); copied.
 *  text   the contents, `len` bytes; need not be NUL-terminated; a UTF-8 BOM is skipped; may hold
 *         any bytes (a NUL byte is an error: "Dockerfile:N: file contains a NUL byte").
 *  flags  0 or DF_PARSE_SYNTAX_ONLY.
 *  out    on success, a new file to free with df_file_free; untouched on failure.
 * Errors (err->code EINVAL, message "NAME:LINE: what" + snippet): a bad parser directive
 * ("invalid escape token", a repeated directive), an unterminated heredoc, a JSON array of
 * non-strings, "ENV must have two arguments", "file with no instructions" (an empty file or only
 * comments), and without DF_PARSE_SYNTAX_ONLY the instruction checks listed above. Nothing is
 * allocated on failure. */
int df_parse(const char *name, const char *text, size_t len, unsigned flags, struct df_file **out,
             struct imgfs_err *err);

void df_file_free(struct df_file *file);

/* The checks df_parse makes without DF_PARSE_SYNTAX_ONLY, for one instruction (all but the
 * stage order): for an ONBUILD trigger the executor parses in a child build. Errors (EINVAL) carry
 * BuildKit's message without a location ("unknown flag: --foo"); wrap them with df_error_at. */
int df_check_instruction(const struct df_instruction *ins, struct imgfs_err *err);

/* A Go duration ("1m30s", "5s", "250ms", "0") as HEALTHCHECK's flags take it, in nanoseconds.
 * Returns 0, or -1 when `s` is not one (nothing set). */
int df_duration_parse(const char *s, int64_t *ns);

/* The upper-case name of a keyword ("COPY"); "" for DF_UNKNOWN. Static storage. */
const char *df_keyword_name(enum df_keyword keyword);

/* The last flag named `name` (without the leading "--") of `ins`, or NULL. For repeatable flags
 * (--mount, --exclude) walk ins->flags instead. The pointer lives as long as the file. */
const struct df_flag *df_flag_find(const struct df_instruction *ins, const char *name);

/* BuildKit's AST dump (parser.Node.Dump): one S-expression line per instruction, each followed
 * by "\n" — `(copy ["--from=x"] "a" "b")`, `(env "k" "v" "=")`, `(onbuild (run "x"))` — with
 * strings quoted as Go's strconv.Quote does. For tests and a hidden --dump-ast. Returns a new
 * NUL-terminated string to free(). */
char *df_dump(const struct df_file *file);

/* Fill `err` with a message about lines start..end of `file` (1-based, end >= start; end 0 means
 * start) in the parser's format — "NAME:START: message" and the snippet — and return -1. For the
 * executor's errors that point into the file (a failing RUN, a missing COPY source). `code` is
 * the errno to store. */
int df_error_at(const struct df_file *file, unsigned start, unsigned end, struct imgfs_err *err,
                int code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ==== Word expansion (BuildKit's shell lexer) ================================================= */

/* Look a variable up: return true and set *value (a NUL-terminated string the callee keeps alive
 * until the expansion returns) when `name` is set — to "" when set but empty; false when unset. */
typedef bool (*df_lookup_fn)(void *ctx, const char *name, const char **value);

/* A ready lookup over an environment array: ctx is a `char **` of "KEY=VALUE" strings terminated
 * by NULL; the last entry for a key wins; an entry without '=' sets the key to "". */
bool df_lookup_envv(void *ctx, const char *name, const char **value);

/* df_expand_* flags (BuildKit's Lex options) */
enum {
    DF_EXPAND_RAW_QUOTES = 1,  /* keep quote characters in the result (still honoured as quotes) */
    DF_EXPAND_RAW_ESCAPES = 2, /* keep escape tokens in the result */
    DF_EXPAND_SKIP_UNSET = 4,  /* leave `$x`, `${x...}` of unset variables as written */
    DF_EXPAND_NO_QUOTES = 8,   /* quotes are ordinary characters */
};

/* The variables an expansion looked up, each name once, in first-use order. `found[i]` tells
 * whether names[i] was set. The executor uses them for cache keys (the build args a step uses)
 * and for "undefined variable" notes. */
struct df_vars {
    char **names;
    bool *found;
    size_t n;
};
void df_vars_free(struct df_vars *vars); /* frees the arrays and zeroes *vars; NULL-safe */

/* Expand one word: `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`,
 * `${v?msg}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`; single quotes
 * (literal), double quotes (expansion inside), the escape token (`escape`, '\\' or '`').
 *  word    NUL-terminated.
 *  lookup  called for every variable referenced, with ctx.
 *  out     on success a new string to free(): the word with quotes removed and variables
 *          replaced; whitespace is kept (this is ENV/LABEL/WORKDIR/USER... processing).
 *  used    if not NULL, on success filled with the variables looked up (free with
 *          df_vars_free); on failure left empty.
 * Errors (EINVAL): an unterminated quote or `${`, a bad substitution (`${}`, `${:}`), an
 * unsupported modifier, `${v:?msg}` on an unset/empty variable ("v: msg" or "v: is not allowed
 * to be unset"), a bad pattern. The message is BuildKit's, prefixed with `failed to process
 * "WORD"`.
 */
int df_expand_word(const char *word, char escape, unsigned flags, df_lookup_fn lookup, void *ctx,
                   char **out, struct df_vars *used, struct imgfs_err *err);

/* Expand and split into words as BuildKit's ProcessWords (ADD/COPY/EXPOSE/VOLUME arguments, FROM
 * and heredoc detection): unquoted whitespace — in the text or in an unquoted variable's value —
 * separates words; quoted text never does; an empty quoted string alone is no word.
 *  words, n_words  on success a new NULL-terminated array of n_words strings (free with
 *                  df_words_free); on failure untouched.
 * Other arguments and errors as df_expand_word. */
int df_expand_words(const char *word, char escape, unsigned flags, df_lookup_fn lookup, void *ctx,
                    char ***words, size_t *n_words, struct df_vars *used, struct imgfs_err *err);

void df_words_free(char **words); /* NULL-safe */

/* ==== .dockerignore (moby's patternmatcher) ====================================================
 */

/* Patterns are matched against paths relative to the context root, '/'-separated, without a
 * leading "/" or "./" (clean them first: "a/b", not "./a//b/"). The last matching pattern wins: a
 * path is excluded when the last pattern matching it, or one of its parent directories, is a plain
 * pattern, and re-included when it is a `!` exception.
 * Syntax: `*` (any run of characters but '/'), `?` (one character but '/'), `[...]` (a class,
 * `[^...]` negated), `\` escapes the next character, `**` (any number of directories, zero
 * included); a pattern matches the path itself and everything below it. Patterns are cleaned
 * like Go's filepath.Clean and a leading '/' is dropped. */
struct df_ignore;

/* Read a .dockerignore file's text (`len` bytes): one pattern a line, surrounding whitespace
 * trimmed, blank lines and lines starting with '#' skipped, `!` for exceptions, a BOM skipped.
 *  name  for messages ("./.dockerignore", "Dockerfile.dockerignore"); copied.
 *  out   a new matcher to free with df_ignore_free (empty when the text has no patterns).
 * Errors (EINVAL): "NAME:LINE: illegal exclusion pattern: "!"", "NAME:LINE: bad pattern: P" (an
 * unterminated class). The executor picks the file (FILE.dockerignore beside the Dockerfile
 * wins over the context's .dockerignore) and calls this once. */
int df_ignore_parse(const char *name, const char *text, size_t len, struct df_ignore **out,
                    struct imgfs_err *err);

/* Append one pattern (as a line of the file would be: "!" prefix for an exception) — for
 * patterns the executor adds itself. Errors as df_ignore_parse. */
int df_ignore_add(struct df_ignore *ignore, const char *pattern, struct imgfs_err *err);

void df_ignore_free(struct df_ignore *ignore); /* NULL-safe */

/* Number of patterns, and whether any is a `!` exception. */
size_t df_ignore_count(const struct df_ignore *ignore);
bool df_ignore_has_exceptions(const struct df_ignore *ignore);

/* Whether `path` is excluded from the context (patternmatcher's MatchesOrParentMatches). A NULL
 * matcher excludes nothing. */
bool df_ignore_excluded(const struct df_ignore *ignore, const char *path);

/* For an excluded directory `dir`: whether an exception pattern could re-include something below
 * it, so a walker must still descend into it (and test each entry with df_ignore_excluded)
 * instead of skipping it whole. Conservative: true when unsure (a pattern with `**`). */
bool df_ignore_must_walk(const struct df_ignore *ignore, const char *dir);

#endif
