/* shell.c — word expansion with the semantics of BuildKit's shell lexer
 * (frontend/dockerfile/shell/lex.go): quotes, the escape token, `$v`, `${v}` and the modifiers
 * `:-` `-` `:+` `+` `:?` `?` `#` `##` `%` `%%` `/` `//`. Not a shell: no command substitution, no
 * arithmetic, no globbing — exactly what a Dockerfile's ENV, ARG, COPY... see.
 *
 * The input is walked byte by byte; multi-byte UTF-8 sequences are copied whole so that `?` in a
 * pattern and the whitespace test of word splitting see characters, as Go's runes do. */
#include "dockerfile.h"

#include <stdio.h>
#include <string.h>

#define END (-1)

struct words {
    struct buf cur;
    bool in_word;
    char **list;
    size_t n, cap;
};

struct lexer {
    const char *p, *end;
    char escape;
    unsigned flags;
    bool raw_escapes;
    df_lookup_fn lookup;
    void *ctx;
    struct df_vars *used;
    struct imgfs_err *err;
};

/* Length of the UTF-8 sequence starting at p (1 for ASCII and for malformed bytes). */
static size_t utf8_len(const char *p, const char *end)
{
    unsigned char c = (unsigned char)*p;
    size_t n = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 1;
    if ((size_t)(end - p) < n)
        return 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

/* Whether the character at p (n bytes) is white space as Go's unicode.IsSpace says. */
static bool is_space(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    if (n == 1)
        return *u == ' ' || (*u >= '\t' && *u <= '\r');
    if (n == 2)
        return u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0);
    if (n == 3 && u[0] == 0xe1)
        return u[1] == 0x9a && u[2] == 0x80;
    if (n == 3 && u[0] == 0xe2)
        return (u[1] == 0x80 && (u[2] <= 0x8a || u[2] == 0xa8 || u[2] == 0xa9 || u[2] == 0xaf)) ||
               (u[1] == 0x81 && u[2] == 0x9f);
    if (n == 3 && u[0] == 0xe3)
        return u[1] == 0x80 && u[2] == 0x80;
    return false;
}

static void buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* A NUL-terminated copy of the buffer's contents; the buffer is emptied. */
static char *buf_take(struct buf *b)
{
    buf_putc(b, 0);
    char *s = (char *)b->data;
    *b = (struct buf){0};
    return s;
}

/* The buffer's bytes from `off` on (an empty buffer has no data pointer yet). */
static const char *buf_at(const struct buf *b, size_t off)
{
    return b->data ? (const char *)b->data + off : "";
}

static void words_push(struct words *w)
{
    if (w->n + 2 > w->cap) {
        w->cap = w->cap ? 2 * w->cap : 8;
        w->list = xrealloc(w->list, w->cap * sizeof(*w->list));
    }
    w->list[w->n++] = buf_take(&w->cur);
    w->list[w->n] = NULL;
    w->in_word = false;
}

static void words_raw(struct words *w, const char *s, size_t n)
{
    if (w) {
        buf_append(&w->cur, s, n);
        w->in_word = true;
    }
}

/* Add unquoted text: white space ends the current word. */
static void words_text(struct words *w, const char *s, size_t n)
{
    if (!w)
        return;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(s + i, s + n);
        if (is_space(s + i, l)) {
            if (w->in_word && w->cur.len)
                words_push(w);
        } else {
            words_raw(w, s + i, l);
        }
        i += l;
    }
}

static void words_free(struct words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->list[i]);
    free(w->list);
    buf_free(&w->cur);
}

static int peek(const struct lexer *lx)
{
    return lx->p < lx->end ? (unsigned char)*lx->p : END;
}

/* Consume one character (a whole UTF-8 sequence) and append it to `out` (if not NULL). */
static void take(struct lexer *lx, struct buf *out)
{
    size_t n = utf8_len(lx->p, lx->end);
    if (out)
        buf_append(out, lx->p, n);
    lx->p += n;
}

static bool lookup_var(struct lexer *lx, const char *name, const char **value)
{
    const char *v = NULL;
    bool found = lx->lookup && lx->lookup(lx->ctx, name, &v) && v;
    *value = found ? v : "";
    struct df_vars *u = lx->used;
    if (u) {
        size_t i = 0;
        while (i < u->n && strcmp(u->names[i], name))
            i++;
        if (i == u->n) {
            u->names = xrealloc(u->names, (u->n + 1) * sizeof(*u->names));
            u->found = xrealloc(u->found, (u->n + 1) * sizeof(*u->found));
            u->names[u->n] = xstrdup(name);
            u->found[u->n++] = found;
        }
    }
    return found;
}

static int lex_fail(struct lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lex_fail(struct lexer *lx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lx->err->code = EINVAL;
    vsnprintf(lx->err->msg, sizeof(lx->err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int process_until(struct lexer *lx, int stop, bool raw_escapes, struct buf *out,
                         struct words *w);

static int single_quote(struct lexer *lx, struct buf *out)
{
    take(lx, (lx->flags & DF_EXPAND_RAW_QUOTES) ? out : NULL);
    for (;;) {
        int c = peek(lx);
        if (c == END)
            return lex_fail(lx, "unexpected end of statement while looking for matching "
                                "single-quote");
        if (c == '\'') {
            take(lx, (lx->flags & DF_EXPAND_RAW_QUOTES) ? out : NULL);
            return 0;
        }
        take(lx, out);
    }
}

static int dollar(struct lexer *lx, struct buf *out);

static int double_quote(struct lexer *lx, struct buf *out)
{
    take(lx, (lx->flags & DF_EXPAND_RAW_QUOTES) ? out : NULL);
    for (;;) {
        int c = peek(lx);
        if (c == END)
            return lex_fail(lx, "unexpected end of statement while looking for matching "
                                "double-quote");
        if (c == '"') {
            take(lx, (lx->flags & DF_EXPAND_RAW_QUOTES) ? out : NULL);
            return 0;
        }
        if (c == '$') {
            if (dollar(lx, out) < 0)
                return -1;
            continue;
        }
        if (c != (unsigned char)lx->escape) {
            take(lx, out);
            continue;
        }
        /* Inside double quotes the escape token only escapes `"`, `$` and itself; before any
         * other character it stays (and with raw escapes BuildKit writes it twice). */
        lx->p++;
        if (lx->raw_escapes)
            buf_putc(out, lx->escape);
        int n = peek(lx);
        if (n == END)
            continue;
        if (n == '"' || n == '$' || n == (unsigned char)lx->escape)
            take(lx, out);
        else
            buf_putc(out, lx->escape);
    }
}

static bool is_name_char(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80; /* non-ASCII: Go accepts any Unicode letter; we accept any character */
}

/* A variable name after `$`: digits (positional), one special parameter, or letters, digits and
 * underscores. Returns a new string, "" when there is none. */
static char *take_name(struct lexer *lx)
{
    struct buf name = {0};
    int c = peek(lx);
    if (c >= '0' && c <= '9') {
        while ((c = peek(lx)) >= '0' && c <= '9')
            take(lx, &name);
    } else if (c != END && strchr("@*#?-$!", c)) {
        take(lx, &name);
    } else {
        while ((c = peek(lx)) != END && is_name_char(c))
            take(lx, &name);
    }
    return buf_take(&name);
}

/* ---- shell patterns for # % / ---- */

/* Check a pattern's escapes as BuildKit does: `\` may precede `*`, `?`, `\`, `}` and `/` only. */
static int pattern_check(struct lexer *lx, const char *pat)
{
    for (const char *p = pat; *p; p++) {
        if (*p != '\\')
            continue;
        char n = p[1];
        if (n == '}' || n == '/')
            continue;
        if (n != '*' && n != '?' && n != '\\')
            return lex_fail(lx, "invalid pattern (%s) in substitution: invalid escape '\\%c'", pat,
                            n ? n : ' ');
        p++;
    }
    return 0;
}

/* A shell pattern as tokens: `*` (any run), `?` (one character) and literal characters (a whole
 * UTF-8 sequence each, `\` escapes removed). Matching simulates the pattern as an automaton over
 * the characters of the value, so every question below costs O(length x pattern) per start,
 * never exponential time, whatever the pattern. */
struct ptok {
    char type; /* '*', '?' or 'l' */
    unsigned char len;
    char c[4];
};

static size_t tokenize(const char *pat, struct ptok *out)
{
    size_t n = 0;
    const char *end = pat + strlen(pat);
    for (const char *p = pat; *p;) {
        if (*p == '*' || *p == '?') {
            out[n++] = (struct ptok){.type = *p++};
            continue;
        }
        if (*p == '\\' && p[1])
            p++;
        size_t l = utf8_len(p, end);
        out[n] = (struct ptok){.type = 'l', .len = (unsigned char)l};
        memcpy(out[n++].c, p, l);
        p += l;
    }
    return n;
}

/* The character boundaries of v: offsets of each character's start, then strlen(v). */
static size_t char_offsets(const char *v, size_t n, size_t *off)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i += utf8_len(v + i, v + n))
        off[k++] = i;
    off[k] = n;
    return k;
}

static void closure(const struct ptok *t, size_t nt, bool *st, bool backward)
{
    if (!backward) {
        for (size_t i = 0; i < nt; i++)
            if (st[i] && t[i].type == '*')
                st[i + 1] = true;
    } else {
        for (size_t i = nt; i > 0; i--)
            if (st[i] && t[i - 1].type == '*')
                st[i - 1] = true;
    }
}

/* Run the pattern from character index `from` of v (forward) or backwards from the end of v.
 * Returns the number of characters of the shortest (or longest) match, or -1. For backward, the
 * match is a suffix. */
static long glob_run(const struct ptok *t, size_t nt, const char *v, const size_t *off, size_t nc,
                     size_t from, bool longest, bool backward)
{
    bool *cur = xcalloc(nt + 1, 1), *next = xcalloc(nt + 1, 1);
    long best = -1;
    size_t accept = backward ? 0 : nt;
    cur[backward ? nt : 0] = true;
    closure(t, nt, cur, backward);
    size_t steps = backward ? nc : nc - from;
    for (size_t k = 0;; k++) {
        if (cur[accept]) {
            best = (long)k;
            if (!longest)
                break;
        }
        if (k == steps)
            break;
        size_t ci = backward ? nc - 1 - k : from + k;
        const char *ch = v + off[ci];
        size_t cl = off[ci + 1] - off[ci];
        bool any = false;
        memset(next, 0, nt + 1);
        for (size_t i = 0; i <= nt; i++) {
            if (!cur[i])
                continue;
            /* the token to consume: t[i] going forward, t[i-1] going backward */
            if (backward ? i == 0 : i == nt)
                continue;
            const struct ptok *tok = &t[backward ? i - 1 : i];
            size_t to = backward ? i - 1 : i + 1;
            if (tok->type == '*')
                next[i] = any = true;
            else if (tok->type == '?' || (tok->len == cl && !memcmp(tok->c, ch, cl)))
                next[to] = any = true;
        }
        if (!any)
            break;
        closure(t, nt, next, backward);
        bool *tmp = cur;
        cur = next;
        next = tmp;
    }
    free(cur);
    free(next);
    return best;
}

struct glob {
    struct ptok *t;
    size_t nt, nc, *off;
};

static void glob_init(struct glob *g, const char *pat, const char *v)
{
    size_t n = strlen(v);
    g->t = xmalloc((strlen(pat) + 1) * sizeof(*g->t));
    g->nt = tokenize(pat, g->t);
    g->off = xmalloc((n + 1) * sizeof(*g->off));
    g->nc = char_offsets(v, n, g->off);
}

static void glob_free(struct glob *g)
{
    free(g->t);
    free(g->off);
}

/* ${v#p} ${v##p}: the byte length of the shortest (longest when greedy) prefix matched, or -1. */
static long match_prefix(const char *pat, const char *v, bool greedy)
{
    struct glob g;
    glob_init(&g, pat, v);
    long k = glob_run(g.t, g.nt, v, g.off, g.nc, 0, greedy, false);
    long r = k < 0 ? -1 : (long)g.off[k];
    glob_free(&g);
    return r;
}

/* ${v%p} ${v%%p}: where the shortest (longest when greedy) suffix matched starts, or -1. */
static long match_suffix(const char *pat, const char *v, bool greedy)
{
    struct glob g;
    glob_init(&g, pat, v);
    long k = glob_run(g.t, g.nt, v, g.off, g.nc, 0, greedy, true);
    long r = k < 0 ? -1 : (long)g.off[g.nc - (size_t)k];
    glob_free(&g);
    return r;
}

/* The leftmost match of `pat` starting at or after byte `from`, longest at that start:
 * *mstart, *mend (bytes). */
static bool match_anywhere(const char *pat, const char *v, size_t from, size_t *mstart,
                           size_t *mend)
{
    struct glob g;
    glob_init(&g, pat, v);
    bool found = false;
    for (size_t ci = 0; ci <= g.nc && !found; ci++) {
        if (g.off[ci] < from)
            continue;
        long k = glob_run(g.t, g.nt, v, g.off, g.nc, ci, true, false);
        if (k >= 0) {
            *mstart = g.off[ci];
            *mend = g.off[ci + (size_t)k];
            found = true;
        }
    }
    glob_free(&g);
    return found;
}

/* The replacement as Go's Regexp.ReplaceAllString expands it: `$$` is `$`, `$0`/`${0}` the match,
 * any other `$name`/`${name}` (there are no groups) nothing; a lone `$` stays. */
static void append_replacement(struct buf *out, const char *r, const char *m, size_t mlen)
{
    for (const char *p = r; *p; p++) {
        if (*p != '$') {
            buf_putc(out, *p);
            continue;
        }
        if (p[1] == '$') {
            buf_putc(out, '$');
            p++;
            continue;
        }
        const char *q = p + 1, *name, *name_end;
        bool brace = *q == '{';
        if (brace)
            q++;
        name = q;
        while (*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
               (*q >= '0' && *q <= '9'))
            q++;
        name_end = q;
        if (name_end == name || (brace && *q != '}')) {
            buf_putc(out, '$');
            continue;
        }
        if (name_end - name == 1 && *name == '0')
            buf_append(out, m, mlen);
        p = brace ? q : q - 1;
    }
}

static void replace(struct buf *out, const char *v, const char *pat, const char *rep, bool all)
{
    size_t n = strlen(v), pos = 0, last_end = 0, ms, me;
    bool any = false;
    while (pos <= n && match_anywhere(pat, v, pos, &ms, &me)) {
        buf_append(out, v + last_end, ms - last_end);
        /* as Go: no replacement for an empty match right after a previous match */
        if (me > last_end || ms == 0 || !any)
            append_replacement(out, rep, v + ms, me - ms);
        last_end = me;
        any = true;
        if (!all)
            break;
        size_t w = pos < n ? utf8_len(v + pos, v + n) : 1;
        pos = pos + w > me ? pos + w : me;
    }
    buf_append(out, v + last_end, n - last_end);
}

/* ---- $ ---- */

static int dollar(struct lexer *lx, struct buf *out)
{
    lx->p++; /* '$' */
    bool skip_unset = lx->flags & DF_EXPAND_SKIP_UNSET;
    const char *value;
    if (peek(lx) != '{') {
        cleanup_free char *name = take_name(lx);
        if (!*name) {
            buf_putc(out, '$');
        } else if (!lookup_var(lx, name, &value) && skip_unset) {
            buf_putc(out, '$');
            buf_puts(out, name);
        } else {
            buf_puts(out, value);
        }
        return 0;
    }
    lx->p++; /* '{' */
    int c = peek(lx);
    if (c == END)
        return lex_fail(lx, "syntax error: missing '}'");
    if (c == '{' || c == '}' || c == ':')
        return lex_fail(lx, "syntax error: bad substitution");
    cleanup_free char *name = take_name(lx);
    int op = peek(lx);
    if (op == END)
        return lex_fail(lx, "syntax error: missing '}'");
    lx->p++;
    char mod[3] = {(char)op, 0, 0};
    bool null_is_unset = false;

    if (op == '}') {
        if (!lookup_var(lx, name, &value) && skip_unset)
            buf_puts(out, "${"), buf_puts(out, name), buf_putc(out, '}');
        else
            buf_puts(out, value);
        return 0;
    }
    if (op == '/') {
        bool all = peek(lx) == '/';
        if (all)
            lx->p++;
        struct buf pat = {0}, rep = {0};
        if (process_until(lx, '/', true, &pat, NULL) < 0) {
            buf_free(&pat);
            return peek(lx) == END ? lex_fail(lx, "syntax error: missing '/' in ${}") : -1;
        }
        cleanup_free char *pattern = buf_take(&pat);
        if (process_until(lx, '}', true, &rep, NULL) < 0) {
            buf_free(&rep);
            return peek(lx) == END ? lex_fail(lx, "syntax error: missing '}'") : -1;
        }
        cleanup_free char *replacement = buf_take(&rep);
        if (!lookup_var(lx, name, &value) && skip_unset) {
            buf_puts(out, "${"), buf_puts(out, name), buf_puts(out, all ? "//" : "/");
            buf_puts(out, pattern), buf_putc(out, '/'), buf_puts(out, replacement);
            buf_putc(out, '}');
            return 0;
        }
        if (pattern_check(lx, pattern) < 0)
            return -1;
        replace(out, value, pattern, replacement, all);
        return 0;
    }
    if (op == ':') {
        null_is_unset = true;
        op = peek(lx);
        if (op == END)
            return lex_fail(lx, "syntax error: missing '}'");
        lx->p++;
        mod[1] = (char)op;
    }
    if (!strchr("+-?#%", op) && !null_is_unset)
        return lex_fail(lx, "unsupported modifier (%s) in substitution", mod);
    bool raw = op == '#' || op == '%';
    if (null_is_unset && raw)
        return lex_fail(lx, "unsupported modifier (%s) in substitution", mod);
    struct buf wb = {0};
    if (process_until(lx, '}', raw, &wb, NULL) < 0) {
        buf_free(&wb);
        return peek(lx) == END ? lex_fail(lx, "syntax error: missing '}'") : -1;
    }
    cleanup_free char *word = buf_take(&wb);
    bool set = lookup_var(lx, name, &value);
    if (skip_unset && !set) {
        buf_puts(out, "${"), buf_puts(out, name), buf_puts(out, mod), buf_puts(out, word);
        buf_putc(out, '}');
        return 0;
    }
    bool empty = !set || (null_is_unset && !*value);
    switch (op) {
    case '-':
        buf_puts(out, empty ? word : value);
        return 0;
    case '+':
        buf_puts(out, empty ? "" : word);
        return 0;
    case '?':
        if (!set)
            return lex_fail(lx, "%s: %s", name, *word ? word : "is not allowed to be unset");
        if (empty)
            return lex_fail(lx, "%s: %s", name, *word ? word : "is not allowed to be empty");
        buf_puts(out, value);
        return 0;
    case '#':
    case '%': {
        const char *pat = word;
        bool greedy = *pat == op;
        if (greedy)
            pat++;
        if (pattern_check(lx, pat) < 0)
            return -1;
        size_t n = strlen(value);
        if (op == '#') {
            long k = match_prefix(pat, value, greedy);
            buf_puts(out, k < 0 ? value : value + k);
        } else {
            long k = match_suffix(pat, value, greedy);
            buf_append(out, value, k < 0 ? n : (size_t)k);
        }
        return 0;
    }
    default:
        return lex_fail(lx, "unsupported modifier (%s) in substitution", mod);
    }
}

/* `<<` and the blanks after it are kept together, so that `<< EOF` stays one word. */
static void possible_heredoc(struct lexer *lx, struct buf *out, struct words *w)
{
    size_t start = out->len;
    take(lx, out);
    if (peek(lx) == '<') {
        take(lx, out);
        int c;
        while ((c = peek(lx)) == ' ' || c == '\t' || c == '\r')
            take(lx, out);
    }
    words_raw(w, buf_at(out, start), out->len - start);
}

/* The lexer's main loop: up to `stop` (consumed) or the end when stop is END. The expanded text
 * goes to `out`, the words (if w) to w. */
static int process_until(struct lexer *lx, int stop, bool raw_escapes, struct buf *out,
                         struct words *w)
{
    bool saved_raw = lx->raw_escapes;
    lx->raw_escapes = raw_escapes;
    int rc = 0;
    while (lx->p < lx->end) {
        int c = peek(lx);
        if (stop != END && c == stop) {
            lx->p++;
            goto done;
        }
        size_t start = out->len;
        if (c == '$') {
            if ((rc = dollar(lx, out)) < 0)
                goto done;
            words_text(w, buf_at(out, start), out->len - start);
        } else if (c == '<') {
            possible_heredoc(lx, out, w);
        } else if ((c == '\'' || c == '"') && !(lx->flags & DF_EXPAND_NO_QUOTES)) {
            if ((rc = c == '\'' ? single_quote(lx, out) : double_quote(lx, out)) < 0)
                goto done;
            words_raw(w, buf_at(out, start), out->len - start);
        } else if (c == (unsigned char)lx->escape) {
            lx->p++;
            if (lx->raw_escapes)
                buf_putc(out, lx->escape);
            if (lx->p < lx->end)
                take(lx, out);
            words_raw(w, buf_at(out, start), out->len - start);
        } else {
            take(lx, out);
            words_text(w, buf_at(out, start), out->len - start);
        }
    }
    if (stop != END)
        rc = lex_fail(lx, "unexpected end of statement while looking for matching %c", stop);
done:
    lx->raw_escapes = saved_raw;
    return rc;
}

static int expand(const char *word, char escape, unsigned flags, df_lookup_fn lookup, void *ctx,
                  struct buf *out, struct words *w, struct df_vars *used, struct imgfs_err *err)
{
    struct lexer lx = {
        .p = word,
        .end = word + strlen(word),
        .escape = escape,
        .flags = flags,
        .lookup = lookup,
        .ctx = ctx,
        .used = used,
        .err = err,
    };
    if (used)
        *used = (struct df_vars){0};
    /* Go's text/scanner, under BuildKit's lexer, skips a byte order mark at the start */
    if (lx.end - lx.p >= 3 && !memcmp(lx.p, "\xef\xbb\xbf", 3))
        lx.p += 3;
    if (process_until(&lx, END, flags & DF_EXPAND_RAW_ESCAPES, out, w) < 0) {
        df_vars_free(used);
        return err_ctx(err, "failed to process \"%s\"", word);
    }
    return 0;
}

int df_expand_word(const char *word, char escape, unsigned flags, df_lookup_fn lookup, void *ctx,
                   char **out, struct df_vars *used, struct imgfs_err *err)
{
    struct buf b = {0};
    if (expand(word, escape, flags, lookup, ctx, &b, NULL, used, err) < 0) {
        buf_free(&b);
        return -1;
    }
    *out = buf_take(&b);
    return 0;
}

int df_expand_words(const char *word, char escape, unsigned flags, df_lookup_fn lookup, void *ctx,
                    char ***words, size_t *n_words, struct df_vars *used, struct imgfs_err *err)
{
    struct buf b = {0};
    struct words w = {0};
    int rc = expand(word, escape, flags, lookup, ctx, &b, &w, used, err);
    buf_free(&b);
    if (rc < 0) {
        words_free(&w);
        return -1;
    }
    if (w.cur.len)
        words_push(&w);
    buf_free(&w.cur);
    if (!w.list)
        w.list = xcalloc(1, sizeof(*w.list));
    *words = w.list;
    *n_words = w.n;
    return 0;
}

void df_words_free(char **words)
{
    if (!words)
        return;
    for (char **p = words; *p; p++)
        free(*p);
    free(words);
}

void df_vars_free(struct df_vars *vars)
{
    if (!vars)
        return;
    for (size_t i = 0; i < vars->n; i++)
        free(vars->names[i]);
    free(vars->names);
    free(vars->found);
    *vars = (struct df_vars){0};
}

bool df_lookup_envv(void *ctx, const char *name, const char **value)
{
    size_t n = strlen(name);
    bool found = false;
    for (char **e = ctx; e && *e; e++) {
        if (strncmp(*e, name, n))
            continue;
        if ((*e)[n] == '=') {
            *value = *e + n + 1;
            found = true;
        } else if (!(*e)[n]) {
            *value = "";
            found = true;
        }
    }
    return found;
}
