/* dockerignore.c — .dockerignore patterns with the semantics of moby/patternmatcher (and its
 * ignorefile reader), which BuildKit and Docker use: the last matching pattern wins, a pattern
 * matching a directory covers what is below it, `!` re-includes.
 *
 * patternmatcher turns a pattern into a Go regexp, or for simple shapes into a plain string
 * comparison (exact; a prefix when the pattern ends in `**`; a suffix when it starts with `**` and
 * has no other wildcard); the shapes decide a few corner cases, so they are kept here. Instead of a
 * regexp each pattern compiles to a short token list matched by a backtracking matcher. */
#include "dockerfile.h"

#include <stdio.h>
#include <string.h>

enum token_type {
    T_LITERAL,  /* one byte */
    T_STAR,     /* `*`: any run of characters but '/' */
    T_ONE,      /* `?`: one character but '/' */
    T_CLASS,    /* `[...]`: one character in (or, negated, not in) the set */
    T_DIRS,     /* `**` or `** /` inside a pattern: (.* /)? — any number of directories */
    T_ANYTHING, /* `**` at the end after other wildcards: .* */
};

struct token {
    enum token_type type;
    char c;            /* T_LITERAL */
    const char *class; /* T_CLASS: the text between `[` (after `^`) and `]` */
    size_t class_len;
    bool negated;
};

enum match_type { M_EXACT, M_PREFIX, M_SUFFIX, M_TOKENS };

struct pattern {
    char *text; /* cleaned, without the `!` */
    bool exclusion;
    enum match_type type;
    struct token *tokens;
    size_t n_tokens;
};

struct df_ignore {
    char *name;
    struct pattern *patterns;
    size_t n;
    bool exceptions;
};

/* ---- Go's filepath.Clean ---- */

static char *clean_path(const char *p)
{
    size_t n = strlen(p);
    bool rooted = n && p[0] == '/';
    char *out = xmalloc(n + 2);
    size_t w = 0, r = 0, dotdot = 0;
    if (rooted)
        out[w++] = '/', r = 1, dotdot = 1;
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.', out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            while (r < n && p[r] != '/')
                out[w++] = p[r++];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = 0;
    return out;
}

/* ---- compiling ---- */

static size_t utf8_len(const char *p)
{
    unsigned char c = (unsigned char)*p;
    size_t n = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

/* One character of a class, as Go's filepath.Match reads it (getEsc): not an unescaped '-' or ']',
 * `\` escapes, and something must follow. Returns the position after it, or NULL. */
static const char *class_char_end(const char *p)
{
    if (!*p || *p == '-' || *p == ']')
        return NULL;
    if (*p == '\\' && !*++p)
        return NULL;
    p += utf8_len(p);
    return *p ? p : NULL;
}

/* The end of a `[...]` class starting at p (just after '['), or NULL when Go's filepath.Match
 * calls it malformed: unterminated, empty, a range end that is '-' or ']', a trailing `\`. */
static const char *class_end(const char *p)
{
    if (*p == '^')
        p++;
    for (size_t n = 0;; n++) {
        if (*p == ']' && n > 0)
            return p;
        if (!(p = class_char_end(p)))
            return NULL;
        if (*p == '-' && !(p = class_char_end(p + 1)))
            return NULL;
    }
}

static void add_token(struct pattern *pat, struct token t)
{
    pat->tokens = xgrow(pat->tokens, pat->n_tokens, sizeof(*pat->tokens));
    pat->tokens[pat->n_tokens++] = t;
}

static int compile(struct pattern *pat, struct imgfs_err *err)
{
    const char *p = pat->text;
    enum match_type type = M_EXACT;
    for (size_t i = 0; *p; i++) {
        char c = *p++;
        if (c == '*' && *p == '*') {
            p++;
            if (*p == '/')
                p++;
            if (!*p) {
                if (type == M_EXACT) {
                    type = M_PREFIX;
                } else {
                    add_token(pat, (struct token){.type = T_ANYTHING});
                    type = M_TOKENS;
                }
            } else {
                add_token(pat, (struct token){.type = T_DIRS});
                type = M_TOKENS;
            }
            if (i == 0)
                type = M_SUFFIX;
        } else if (c == '*') {
            add_token(pat, (struct token){.type = T_STAR});
            type = M_TOKENS;
        } else if (c == '?') {
            add_token(pat, (struct token){.type = T_ONE});
            type = M_TOKENS;
        } else if (c == '\\') {
            if (!*p)
                return err_set(err, EINVAL, "bad pattern: %s: syntax error in pattern", pat->text);
            /* patternmatcher hands `\x` to Go's regexp, which reads `\d`, `\w`, `\t`... as
             * classes and refuses most other letters: only punctuation is a plain escape */
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
                return err_set(err, EINVAL, "bad pattern: %s: unsupported escape \\%c", pat->text,
                               *p);
            add_token(pat, (struct token){.type = T_LITERAL, .c = *p++});
            type = M_TOKENS;
        } else if (c == '[') {
            const char *start = p, *end = class_end(p);
            if (!end)
                return err_set(err, EINVAL, "bad pattern: %s: syntax error in pattern", pat->text);
            bool neg = *start == '^';
            if (neg)
                start++;
            add_token(pat, (struct token){.type = T_CLASS,
                                          .class = start,
                                          .class_len = (size_t)(end - start),
                                          .negated = neg});
            p = end + 1;
            type = M_TOKENS;
        } else if (c == ']') {
            /* a lone ']' is a literal for filepath.Match and the regexp alike */
            add_token(pat, (struct token){.type = T_LITERAL, .c = c});
            type = M_TOKENS;
        } else {
            add_token(pat, (struct token){.type = T_LITERAL, .c = c});
        }
    }
    pat->type = type;
    return 0;
}

/* ---- matching ---- */

/* One class character at q (after an optional `\`): its code point-ish value as the bytes of a
 * UTF-8 sequence compared lexicographically, which orders like code points. */
static size_t class_char(const char **q, char out[4])
{
    if (**q == '\\')
        (*q)++;
    size_t n = utf8_len(*q);
    memcpy(out, *q, n);
    *q += n;
    return n;
}

static int cmp_chars(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (int)an - (int)bn;
}

static bool class_match(const struct token *t, const char *s, size_t n)
{
    const char *q = t->class, *end = t->class + t->class_len;
    bool in = false;
    while (q < end) {
        char lo[4], hi[4];
        size_t lon = class_char(&q, lo), hin = lon;
        memcpy(hi, lo, lon);
        if (q < end && *q == '-') {
            q++;
            hin = class_char(&q, hi);
        }
        if (cmp_chars(s, n, lo, lon) >= 0 && cmp_chars(s, n, hi, hin) <= 0)
            in = true;
    }
    return in != t->negated;
}

/* Backtracking over `*` and `**` with a memo of the (token, position) pairs known to fail, so
 * that no pattern takes more than O(tokens x length^2) steps. */
struct memo {
    const struct token *tokens;
    size_t n_tokens;
    const char *base;
    size_t len;
    unsigned char *failed; /* bit per (token index, offset) */
};

static bool match_from(struct memo *m, size_t ti, const char *s);

static bool try_at(struct memo *m, size_t ti, const char *s)
{
    size_t bit = ti * (m->len + 1) + (size_t)(s - m->base);
    if (m->failed[bit / 8] & (1u << (bit % 8)))
        return false;
    if (match_from(m, ti, s))
        return true;
    m->failed[bit / 8] |= (unsigned char)(1u << (bit % 8));
    return false;
}

static bool match_from(struct memo *m, size_t ti, const char *s)
{
    for (; ti < m->n_tokens; ti++) {
        const struct token *t = &m->tokens[ti];
        switch (t->type) {
        case T_LITERAL:
            if (*s != t->c)
                return false;
            s++;
            break;
        case T_ONE:
        case T_CLASS: {
            if (!*s)
                return false;
            size_t n = utf8_len(s);
            if (t->type == T_ONE ? *s == '/' : !class_match(t, s, n))
                return false;
            s += n;
            break;
        }
        case T_STAR:
            /* [^/]* : every length up to the next '/' */
            for (const char *e = s;; e++) {
                if (try_at(m, ti + 1, e))
                    return true;
                if (!*e || *e == '/')
                    return false;
            }
        case T_DIRS:
            /* (.* /)? : nothing, or anything ending in '/' */
            if (try_at(m, ti + 1, s))
                return true;
            for (const char *e = s; *e; e++)
                if (*e == '/' && try_at(m, ti + 1, e + 1))
                    return true;
            return false;
        case T_ANYTHING:
            for (const char *e = s;; e++) {
                if (try_at(m, ti + 1, e))
                    return true;
                if (!*e)
                    return false;
            }
        }
    }
    return !*s;
}

static bool tokens_match(const struct token *t, size_t nt, const char *s)
{
    size_t len = strlen(s);
    struct memo m = {.tokens = t, .n_tokens = nt, .base = s, .len = len};
    m.failed = xcalloc((nt + 1) * (len + 1) / 8 + 1, 1);
    bool hit = match_from(&m, 0, s);
    free(m.failed);
    return hit;
}

static bool pattern_match(const struct pattern *pat, const char *path)
{
    size_t n = strlen(pat->text), pn = strlen(path);
    switch (pat->type) {
    case M_EXACT:
        return !strcmp(path, pat->text);
    case M_PREFIX:
        return !strncmp(path, pat->text, n - 2);
    case M_SUFFIX: {
        const char *suffix = pat->text + 2;
        size_t sn = n - 2;
        if (pn >= sn && !memcmp(path + pn - sn, suffix, sn))
            return true;
        return sn && suffix[0] == '/' && !strcmp(path, suffix + 1);
    }
    case M_TOKENS:
        return tokens_match(pat->tokens, pat->n_tokens, path);
    }
    return false;
}

/* The pattern matches `path` or one of its parent directories. */
static bool matches_or_parent(const struct pattern *pat, const char *path)
{
    if (pattern_match(pat, path))
        return true;
    size_t n = strlen(path);
    char *copy = xmalloc(n + 1);
    bool hit = false;
    /* parents from the top: "a", "a/b", ... (not the path itself) */
    for (size_t i = 0; i < n && !hit; i++) {
        if (path[i] != '/')
            continue;
        memcpy(copy, path, i);
        copy[i] = 0;
        hit = pattern_match(pat, copy);
    }
    free(copy);
    return hit;
}

bool df_ignore_excluded(const struct df_ignore *ignore, const char *path)
{
    if (!ignore)
        return false;
    bool matched = false;
    for (size_t i = 0; i < ignore->n; i++) {
        const struct pattern *pat = &ignore->patterns[i];
        /* an exclusion can only change an excluded path, a plain pattern an included one */
        if (pat->exclusion != matched)
            continue;
        if (matches_or_parent(pat, path))
            matched = !pat->exclusion;
    }
    return matched;
}

/* Whether one '/'-free component of a pattern can match the directory name `name`. */
static bool component_match(const char *comp, size_t len, const char *name, size_t name_len)
{
    char *c = xmalloc(len + 1), *nm = xmalloc(name_len + 1);
    memcpy(c, comp, len), c[len] = 0;
    memcpy(nm, name, name_len), nm[name_len] = 0;
    struct pattern pat = {.text = c};
    struct imgfs_err err;
    bool hit = compile(&pat, &err) < 0 || pattern_match(&pat, nm);
    free(pat.tokens);
    free(c);
    free(nm);
    return hit;
}

bool df_ignore_must_walk(const struct df_ignore *ignore, const char *dir)
{
    if (!ignore || !ignore->exceptions)
        return false;
    for (size_t i = 0; i < ignore->n; i++) {
        const struct pattern *pat = &ignore->patterns[i];
        if (!pat->exclusion)
            continue;
        /* walk the pattern's and the directory's components side by side */
        const char *p = pat->text, *d = dir;
        bool possible = true;
        while (*p && *d) {
            const char *pe = strchr(p, '/'), *de = strchr(d, '/');
            size_t pl = pe ? (size_t)(pe - p) : strlen(p), dl = de ? (size_t)(de - d) : strlen(d);
            if (memmem(p, pl, "**", 2))
                return true;
            if (!component_match(p, pl, d, dl)) {
                possible = false;
                break;
            }
            p += pl + (pe != NULL);
            d += dl + (de != NULL);
        }
        /* the pattern matches the directory or an ancestor (so re-includes it all), or it goes
         * on below it */
        if (possible)
            return true;
    }
    return false;
}

/* ---- building ---- */

static bool is_white(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* s without surrounding white space (Go's strings.TrimSpace, ASCII), as a new string; NULL when
 * nothing is left. */
static char *trimmed_copy(const char *s)
{
    const char *e = s + strlen(s);
    while (s < e && is_white(*s))
        s++;
    while (e > s && is_white(e[-1]))
        e--;
    if (s == e)
        return NULL;
    char *t = xmalloc((size_t)(e - s) + 1);
    memcpy(t, s, (size_t)(e - s));
    t[e - s] = 0;
    return t;
}

static int add_pattern(struct df_ignore *ignore, const char *raw, unsigned line,
                       struct imgfs_err *err)
{
    /* patternmatcher.New: trim, clean, `!` */
    char *trimmed = trimmed_copy(raw);
    if (!trimmed)
        return 0;
    char *cleaned = clean_path(trimmed);
    free(trimmed);
    struct pattern pat = {0};
    const char *body = cleaned;
    if (*body == '!') {
        if (!body[1]) {
            free(cleaned);
            if (line)
                return err_set(err, EINVAL, "%s:%u: illegal exclusion pattern: \"!\"", ignore->name,
                               line);
            return err_set(err, EINVAL, "%s: illegal exclusion pattern: \"!\"", ignore->name);
        }
        pat.exclusion = true;
        body++;
    }
    pat.text = xstrdup(body);
    free(cleaned);
    if (compile(&pat, err) < 0) {
        free(pat.text);
        free(pat.tokens);
        if (line)
            return err_ctx(err, "%s:%u", ignore->name, line);
        return err_ctx(err, "%s", ignore->name);
    }
    ignore->patterns = xgrow(ignore->patterns, ignore->n, sizeof(*ignore->patterns));
    ignore->patterns[ignore->n++] = pat;
    ignore->exceptions |= pat.exclusion;
    return 0;
}

/* ignorefile.ReadAll's handling of one line, then add_pattern. */
static int add_line(struct df_ignore *ignore, const char *line, unsigned number,
                    struct imgfs_err *err)
{
    if (line[0] == '#')
        return 0;
    cleanup_free char *t = trimmed_copy(line);
    if (!t)
        return 0;
    bool invert = t[0] == '!';
    cleanup_free char *body = invert ? trimmed_copy(t + 1) : xstrdup(t);
    cleanup_free char *pattern = body ? clean_path(body) : xstrdup("");
    const char *p = pattern;
    if (strlen(p) > 1 && p[0] == '/')
        p++;
    cleanup_free char *full = xasprintf("%s%s", invert ? "!" : "", p);
    return add_pattern(ignore, full, number, err);
}

int df_ignore_parse(const char *name, const char *text, size_t len, struct df_ignore **out,
                    struct imgfs_err *err)
{
    struct df_ignore *ignore = xcalloc(1, sizeof(*ignore));
    ignore->name = xstrdup(name);
    size_t pos = 0;
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        pos = 3;
    for (unsigned number = 1; pos < len; number++) {
        const char *start = text + pos, *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + 1;
        if (memchr(start, 0, n))
            continue; /* a NUL byte cannot be in a path: the pattern could never match */
        char *line = xmalloc(n + 1);
        memcpy(line, start, n);
        line[n] = 0;
        int rc = add_line(ignore, line, number, err);
        free(line);
        if (rc < 0) {
            df_ignore_free(ignore);
            return -1;
        }
    }
    *out = ignore;
    return 0;
}

int df_ignore_add(struct df_ignore *ignore, const char *pattern, struct imgfs_err *err)
{
    return add_line(ignore, pattern, 0, err);
}

void df_ignore_free(struct df_ignore *ignore)
{
    if (!ignore)
        return;
    for (size_t i = 0; i < ignore->n; i++) {
        free(ignore->patterns[i].text);
        free(ignore->patterns[i].tokens);
    }
    free(ignore->patterns);
    free(ignore->name);
    free(ignore);
}

size_t df_ignore_count(const struct df_ignore *ignore)
{
    return ignore ? ignore->n : 0;
}

bool df_ignore_has_exceptions(const struct df_ignore *ignore)
{
    return ignore && ignore->exceptions;
}
