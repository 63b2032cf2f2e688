/* template.c — a small Go text/template subset over jansson values (template.h has the language).
 * One pass: the template is executed as it is parsed; a block that is not taken ({{if}} false, an
 * empty {{range}}) is still parsed, with output off, so errors are found wherever they are. */
#include "template.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum stop { STOP_EOF, STOP_END, STOP_ELSE };

struct tctx {
    const char *src;
    FILE *out;
    struct imgfs_err *err;
    int depth;
    bool trim_next; /* the last action ended with -}} */
};

static int fail(struct tctx *t, const char *at, const char *what)
{
    return err_set(t->err, EINVAL, "template: %s at offset %zu", what, (size_t)(at - t->src));
}

/* Go's parser takes it, imgfs's subset does not (ENOTSUP: tmpl_render's contract). */
static int fail_unsupported(struct tctx *t, const char *at, const char *what)
{
    return err_set(t->err, ENOTSUP, "template: %s at offset %zu", what, (size_t)(at - t->src));
}

/* An error of the data, not of the template's syntax (ENOENT: tmpl_render's contract). */
static int fail_value(struct tctx *t, const char *at, const char *path, const char *what,
                      const char *name)
{
    return err_set(t->err, ENOENT, "template: executing at <.%s>: %s \"%s\" (offset %zu)", path,
                   what, name, (size_t)(at - t->src));
}

/* The shape `known` gives of what Docker has besides the data (template.h): a node for a key, true
 * for everything below, or NULL (strict). */
static json_t *known_child(json_t *known, const char *key)
{
    if (json_is_true(known))
        return known;
    return json_is_object(known) ? json_object_get(known, key) : NULL;
}

/* ---- printing values as Go's fmt %v does ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_value(FILE *out, json_t *v)
{
    if (!v) {
        fputs("<no value>", out);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        fwrite(json_string_value(v), 1, json_string_length(v), out);
        break;
    case JSON_INTEGER:
        fprintf(out, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        fprintf(out, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        fputs("true", out);
        break;
    case JSON_FALSE:
        fputs("false", out);
        break;
    case JSON_NULL:
        fputs("<nil>", out);
        break;
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        fputc('[', out);
        json_array_foreach(v, i, e)
        {
            if (i)
                fputc(' ', out);
            print_value(out, e);
        }
        fputc(']', out);
        break;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = xcalloc(n + 1, sizeof *keys);
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) keys[i++] = k;
        qsort(keys, n, sizeof *keys, cmp_str);
        fputs("map[", out);
        for (i = 0; i < n; i++) {
            fprintf(out, "%s%s:", i ? " " : "", keys[i]);
            print_value(out, json_object_get(v, keys[i]));
        }
        fputc(']', out);
        free(keys);
        break;
    }
    }
}

static bool truth(json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_TRUE:
        return true;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return false;
    }
}

/* ---- an action's words ---- */

enum tok_kind { T_FIELD, T_STRING, T_NUMBER, T_IDENT };
struct tok {
    enum tok_kind kind;
    char *text; /* field path without the leading '.', string contents, number or identifier */
    const char *at;
};
#define MAX_TOKS 8

static void toks_free(struct tok *toks, int n)
{
    for (int i = 0; i < n; i++)
        free(toks[i].text);
}

/* Split [p, end) into words. */
static int tokenize(struct tctx *t, const char *p, const char *end, struct tok *toks, int *n)
{
    *n = 0;
    while (p < end) {
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        if (*n == MAX_TOKS)
            return fail_unsupported(t, p, "too many words in an action");
        struct tok *k = &toks[(*n)++];
        k->at = p;
        const char *s = p;
        if (*p == '"') {
            char *buf = xmalloc((size_t)(end - p) + 1), *o = buf;
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) {
                    p++;
                    *o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                } else {
                    *o++ = *p;
                }
            }
            *o = 0;
            k->kind = T_STRING;
            k->text = buf;
            if (p >= end)
                return fail(t, s, "unterminated string");
            p++;
            continue;
        }
        while (p < end && !isspace((unsigned char)*p))
            p++;
        size_t len = (size_t)(p - s);
        if (*s == '.') {
            k->kind = T_FIELD;
            k->text = strndup(s + 1, len - 1);
            for (const char *c = k->text; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
                    return fail(t, s, "bad field name");
        } else if (isdigit((unsigned char)*s) || *s == '-') {
            k->kind = T_NUMBER;
            k->text = strndup(s, len);
        } else if (isalpha((unsigned char)*s)) {
            k->kind = T_IDENT;
            k->text = strndup(s, len);
            for (const char *c = k->text; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '_')
                    return fail_unsupported(
                        t, s,
                        "unsupported syntax (variables, pipes and parentheses are "
                        "not in imgfs's template subset)");
        } else {
            k->text = NULL;
            return fail_unsupported(
                t, s,
                "unsupported syntax (variables, pipes and parentheses are not in "
                "imgfs's template subset)");
        }
    }
    return 0;
}

/* The value of a field path from dot: *out a new reference, or NULL for no value (a key `known`
 * allows, or anything below a null); *out_known the shape of that value. A key neither in the
 * data nor in `known`, or a field of a string, number or list, is an error, as Go's for Docker's
 * structs ("map has no entry for key"). */
static int field(struct tctx *t, const char *at, json_t *dot, json_t *known, const char *path,
                 json_t **out, json_t **out_known)
{
    json_t *v = dot;
    const char *full = path;
    while (v && *path) {
        const char *dotp = strchr(path, '.');
        size_t len = dotp ? (size_t)(dotp - path) : strlen(path);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)len, path);
        if (json_is_null(v)) { /* Go: a nil map below has no value */
            v = NULL;
            break;
        }
        if (!json_is_object(v))
            return fail_value(t, at, full, "can't evaluate field", name);
        json_t *child = json_object_get(v, name);
        json_t *k = known_child(known, name);
        if (!child && !k)
            return fail_value(t, at, full, "map has no entry for key", name);
        v = child;
        known = k;
        path += len + (dotp ? 1 : 0);
    }
    if (out_known)
        *out_known = v ? known : NULL;
    *out = v ? json_incref(v) : NULL;
    return 0;
}

static int arg_value(struct tctx *t, struct tok *k, json_t *dot, json_t *known, json_t **out,
                     json_t **out_known)
{
    *out = NULL;
    if (out_known)
        *out_known = NULL;
    switch (k->kind) {
    case T_FIELD:
        return field(t, k->at, dot, known, k->text, out, out_known);
    case T_STRING:
        *out = json_string(k->text);
        return 0;
    case T_NUMBER:
        *out = json_integer(strtoll(k->text, NULL, 10));
        return 0;
    default:
        return 0;
    }
}

static const char *const functions[] = {"json", "index", "join", "upper", "lower", "len", NULL};

static int arity(const char *fn)
{
    return !strcmp(fn, "index") || !strcmp(fn, "join") ? 2 : 1;
}

/* Evaluate words (a field, a literal, or a function with its arguments); *out a new reference or
 * NULL (no value), *out_known (when asked) the shape of a field's value. With eval false only the
 * syntax is checked. */
static int evaluate(struct tctx *t, struct tok *toks, int n, json_t *dot, json_t *known, bool eval,
                    json_t **out, json_t **out_known)
{
    *out = NULL;
    if (out_known)
        *out_known = NULL;
    if (n == 0)
        return fail(t, t->src, "empty action");
    if (toks[0].kind != T_IDENT) {
        if (n != 1)
            return fail(t, toks[1].at, "unexpected word after a value");
        return eval ? arg_value(t, &toks[0], dot, known, out, out_known) : 0;
    }
    const char *fn = toks[0].text;
    bool is_function = false;
    for (int i = 0; functions[i]; i++)
        is_function |= !strcmp(functions[i], fn);
    if (!is_function) {
        /* Go's and Docker's functions parse in Docker; any other name is Go's parse error */
        static const char *const elsewhere[] = {
            "and",   "or",    "not",    "eq",      "ne",       "lt", "le",       "gt",
            "ge",    "print", "printf", "println", "html",     "js", "urlquery", "call",
            "slice", "split", "title",  "pad",     "truncate", NULL};
        bool known_elsewhere = false;
        for (int i = 0; elsewhere[i]; i++)
            known_elsewhere |= !strcmp(elsewhere[i], fn);
        return (known_elsewhere ? fail_unsupported : fail)(
            t, toks[0].at, "unknown function (known: json, index, join, upper, lower, len)");
    }
    if (n - 1 != arity(fn))
        return fail(t, toks[0].at, "wrong number of arguments");
    for (int i = 1; i < n; i++)
        if (toks[i].kind == T_IDENT)
            return fail(t, toks[i].at, "a function's argument must be a field or a literal");
    if (!eval)
        return 0;
    json_t *a = NULL, *b = NULL;
    int r = arg_value(t, &toks[1], dot, known, &a, NULL);
    if (r == 0 && n > 2)
        r = arg_value(t, &toks[2], dot, known, &b, NULL);
    if (r < 0) {
        json_decref(a);
        return r;
    }
    if (!strcmp(fn, "json")) {
        char *s = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        *out = json_string(s ? s : "null");
        free(s);
    } else if (!strcmp(fn, "index")) {
        if (json_is_object(a) && json_is_string(b)) {
            /* Go's index of a missing map key is the element's zero value: "" for the string
             * maps Docker users index (Labels) */
            json_t *v = json_object_get(a, json_string_value(b));
            *out = v ? json_incref(v) : json_string("");
        } else if (json_is_array(a) && json_is_integer(b)) {
            json_int_t i = json_integer_value(b);
            if (i < 0 || (size_t)i >= json_array_size(a))
                r = fail(t, toks[0].at, "index out of range");
            else
                *out = json_incref(json_array_get(a, (size_t)i));
        } else if (a && !json_is_null(a)) {
            r = fail(t, toks[0].at, "can't index this value");
        }
    } else if (!strcmp(fn, "join")) {
        if (!json_is_array(a) || !json_is_string(b)) {
            r = fail(t, toks[0].at, "join wants a list and a separator");
        } else {
            char *buf = NULL;
            size_t len = 0;
            FILE *m = open_memstream(&buf, &len);
            size_t i;
            json_t *e;
            json_array_foreach(a, i, e)
            {
                if (i)
                    fputs(json_string_value(b), m);
                print_value(m, e);
            }
            fclose(m);
            *out = json_stringn(buf, len);
            free(buf);
        }
    } else if (!strcmp(fn, "upper") || !strcmp(fn, "lower")) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        print_value(m, a);
        fclose(m);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(fn[0] == 'u' ? toupper((unsigned char)buf[i])
                                         : tolower((unsigned char)buf[i]));
        *out = json_stringn(buf, len);
        free(buf);
    } else { /* len */
        if (json_is_array(a))
            *out = json_integer((json_int_t)json_array_size(a));
        else if (json_is_object(a))
            *out = json_integer((json_int_t)json_object_size(a));
        else if (json_is_string(a))
            *out = json_integer((json_int_t)json_string_length(a));
        else
            r = fail(t, toks[0].at, "len of a value that has none");
    }
    json_decref(a);
    json_decref(b);
    return r;
}

/* ---- text and blocks ---- */

static void emit_text(struct tctx *t, const char *s, size_t n, bool emit)
{
    if (t->trim_next) {
        while (n && isspace((unsigned char)*s))
            s++, n--;
        t->trim_next = false;
    }
    if (!emit)
        return;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && strchr("tn\\", s[i + 1])) {
            i++;
            fputc(s[i] == 't' ? '\t' : s[i] == 'n' ? '\n' : '\\', t->out);
        } else {
            fputc(s[i], t->out);
        }
    }
}

/* The end of the action that starts at `open` ("{{"): the position of its "}}", quotes skipped. */
static const char *action_end(const char *open)
{
    bool quoted = false;
    for (const char *p = open + 2; *p; p++) {
        if (quoted && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && p[0] == '}' && p[1] == '}')
            return p;
    }
    return NULL;
}

static int exec_block(struct tctx *t, const char **pp, json_t *dot, json_t *known, bool emit,
                      enum stop *stop);

/* A {{range}}, {{if}} or {{with}} whose action was just read; *pp after its action. v is its
 * value, vk that value's shape: a list's elements take it, a map's values when it is true. */
static int exec_control(struct tctx *t, const char *kw, const char **pp, json_t *dot, json_t *known,
                        json_t *v, json_t *vk, bool emit)
{
    enum stop stop;
    const char *body = *pp;
    if (!strcmp(kw, "range")) {
        bool any = false;
        if (emit && v && (json_is_array(v) || json_is_object(v))) {
            json_t *items = json_is_array(v) ? json_incref(v) : json_array();
            if (json_is_object(v)) { /* Go ranges over a map's values in key order */
                size_t n = json_object_size(v), i = 0;
                const char **keys = xcalloc(n + 1, sizeof *keys);
                const char *k;
                json_t *e;
                json_object_foreach(v, k, e) keys[i++] = k;
                qsort(keys, n, sizeof *keys, cmp_str);
                for (i = 0; i < n; i++)
                    json_array_append(items, json_object_get(v, keys[i]));
                free(keys);
            }
            for (size_t i = 0; i < json_array_size(items); i++) {
                any = true;
                *pp = body;
                json_t *ek = json_is_array(v) || json_is_true(vk) ? vk : NULL;
                if (exec_block(t, pp, json_array_get(items, i), ek, true, &stop) < 0) {
                    json_decref(items);
                    return -1;
                }
            }
            json_decref(items);
        } else if (emit && v && !json_is_null(v)) {
            return fail(t, body, "range over a value that is not a list or a map");
        }
        if (!any) {
            *pp = body;
            if (exec_block(t, pp, NULL, NULL, false, &stop) < 0)
                return -1;
        }
        if (stop == STOP_ELSE && exec_block(t, pp, dot, known, emit && !any, &stop) < 0)
            return -1;
    } else { /* if, with */
        bool taken = emit && truth(v), with = !strcmp(kw, "with");
        if (exec_block(t, pp, with ? v : dot, with ? vk : known, taken, &stop) < 0)
            return -1;
        if (stop == STOP_ELSE && exec_block(t, pp, dot, known, emit && !taken, &stop) < 0)
            return -1;
    }
    if (stop != STOP_END)
        return fail(t, body, "missing {{end}}");
    return 0;
}

/* Text and actions up to the {{end}} or {{else}} of this block (or the end of the template). */
static int exec_block(struct tctx *t, const char **pp, json_t *dot, json_t *known, bool emit,
                      enum stop *stop)
{
    const char *p = *pp;
    if (++t->depth > 32)
        return fail_unsupported(t, p, "blocks nested too deep");
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            emit_text(t, p, strlen(p), emit);
            *pp = p + strlen(p);
            *stop = STOP_EOF;
            t->depth--;
            return 0;
        }
        const char *close = action_end(open);
        if (!close)
            return fail(t, open, "unclosed action");
        const char *a = open + 2, *b = close;
        size_t text_len = (size_t)(open - p);
        if (a[0] == '-' && (isspace((unsigned char)a[1]) || a + 1 == b)) {
            a++;
            while (text_len && isspace((unsigned char)p[text_len - 1]))
                text_len--;
        }
        emit_text(t, p, text_len, emit);
        bool trim_after = b - a >= 2 && b[-1] == '-' && isspace((unsigned char)b[-2]);
        if (trim_after)
            b--;
        p = close + 2;
        struct tok toks[MAX_TOKS];
        int n = 0;
        if (tokenize(t, a, b, toks, &n) < 0) {
            toks_free(toks, n);
            return -1;
        }
        t->trim_next = trim_after;
        int r = 0;
        const char *kw = n && toks[0].kind == T_IDENT ? toks[0].text : "";
        if (!strcmp(kw, "end") || !strcmp(kw, "else")) {
            if (n != 1 || t->depth == 1)
                r = fail(t, open,
                         n != 1 ? "unexpected words" : "{{end}} or {{else}} outside a block");
            *stop = !strcmp(kw, "end") ? STOP_END : STOP_ELSE;
            toks_free(toks, n);
            if (r < 0)
                return r;
            *pp = p;
            t->depth--;
            return 0;
        }
        if (!strcmp(kw, "range") || !strcmp(kw, "if") || !strcmp(kw, "with")) {
            char keyword[8];
            snprintf(keyword, sizeof keyword, "%s", kw);
            json_t *v = NULL, *vk = NULL;
            r = evaluate(t, toks + 1, n - 1, dot, known, emit, &v, &vk);
            toks_free(toks, n);
            if (r == 0)
                r = exec_control(t, keyword, &p, dot, known, v, vk, emit);
            json_decref(v);
            if (r < 0)
                return r;
            continue;
        }
        json_t *v = NULL;
        r = evaluate(t, toks, n, dot, known, emit, &v, NULL);
        toks_free(toks, n);
        if (r < 0)
            return r;
        if (emit)
            print_value(t->out, v);
        json_decref(v);
    }
}

static int run(const char *tmpl, json_t *data, json_t *known, bool emit, char **out,
               struct imgfs_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return err_sys(err, errno, "template");
    struct tctx t = {.src = tmpl, .out = m, .err = err};
    const char *p = tmpl;
    enum stop stop;
    int r = exec_block(&t, &p, data, known, emit, &stop);
    fclose(m);
    if (r < 0) {
        free(buf);
        return -1;
    }
    if (out)
        *out = buf;
    else
        free(buf);
    return 0;
}

int tmpl_render(const char *tmpl, json_t *data, json_t *known, char **out, struct imgfs_err *err)
{
    return run(tmpl, data, known, true, out, err);
}

int tmpl_check(const char *tmpl, struct imgfs_err *err)
{
    return run(tmpl, NULL, NULL, false, NULL, err);
}
