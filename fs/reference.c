#include "reference.h"

#include <ctype.h>
#include <string.h>

#define NAME_MAX_LEN 255

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool valid_component(const char *s, size_t n)
{
    size_t i = 0;
    if (!n || !is_lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        size_t sep = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == n || !is_lower_alnum(s[i]) || i == sep)
            return false;
    }
    return true;
}

/* domain := host [ ":" port ]; host a DNS name ([A-Za-z0-9-] labels joined by '.') or an IPv6
 * address in brackets */
static bool valid_domain(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close == s + 1)
            return false;
        for (const char *p = s + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return false;
        i = (size_t)(close - s) + 1;
    } else {
        bool label_start = true;
        for (; i < n && s[i] != ':'; i++) {
            char c = s[i];
            if (c == '.') {
                if (label_start)
                    return false;
                label_start = true;
                continue;
            }
            if (!isalnum((unsigned char)c) && !(c == '-' && !label_start))
                return false;
            label_start = false;
        }
        if (i == 0 || label_start || s[i - 1] == '-')
            return false;
    }
    if (i == n)
        return true;
    if (s[i] != ':' || i + 1 == n)
        return false;
    for (size_t j = i + 1; j < n; j++)
        if (!isdigit((unsigned char)s[j]))
            return false;
    return n - i - 1 <= 5;
}

bool ref_valid_tag(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = isalnum((unsigned char)c) || c == '_' || (i > 0 && (c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

void ref_free(struct ref *r)
{
    free(r->domain);
    free(r->path);
    free(r->tag);
    memset(r, 0, sizeof *r);
}

int ref_parse(const char *s, struct ref *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    if (!*s)
        return err_set(err, EINVAL, "empty image reference");
    cleanup_free char *copy = xstrdup(s);
    char *at = strchr(copy, '@');
    if (at) {
        *at = 0;
        if (strncmp(at + 1, "sha256:", 7) || digest_parse(at + 1, false, &out->digest) < 0)
            return err_set(err, EINVAL,
                           "invalid reference `%s`: the digest after `@` must be sha256:<64 "
                           "lowercase hex digits>",
                           s);
        for (const char *p = at + 8; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                return err_set(err, EINVAL, "invalid reference `%s`: upper-case hex in digest", s);
        out->has_digest = true;
    }
    char *name = copy;
    char *slash = strrchr(name, '/');
    char *colon = strrchr(slash ? slash : name, ':');
    if (colon) {
        *colon = 0;
        if (!ref_valid_tag(colon + 1))
            return err_set(err, EINVAL,
                           "invalid reference `%s`: bad tag `%s` (letters, digits, `_`, `.`, `-`, "
                           "at most 128, not starting with `.` or `-`)",
                           s, colon + 1);
        out->tag = xstrdup(colon + 1);
    }
    if (!*name)
        goto bad_name;
    if (strlen(name) > NAME_MAX_LEN) {
        ref_free(out);
        return err_set(err, EINVAL, "invalid reference `%s`: the name is longer than %d characters",
                       s, NAME_MAX_LEN);
    }
    char *first_end = strchr(name, '/');
    const char *path = name;
    if (first_end) {
        size_t fl = (size_t)(first_end - name);
        bool has_upper = false;
        for (size_t i = 0; i < fl; i++)
            has_upper |= isupper((unsigned char)name[i]);
        if (memchr(name, '.', fl) || memchr(name, ':', fl) || name[0] == '[' ||
            (fl == 9 && !strncmp(name, "localhost", 9)) || has_upper) {
            if (!valid_domain(name, fl)) {
                ref_free(out);
                return err_set(err, EINVAL, "invalid reference `%s`: bad registry host `%.*s`", s,
                               (int)fl, name);
            }
            out->domain = strndup(name, fl);
            path = first_end + 1;
        }
    }
    for (const char *p = path;;) {
        const char *e = strchrnul(p, '/');
        if (!valid_component(p, (size_t)(e - p)))
            goto bad_name;
        if (!*e)
            break;
        p = e + 1;
    }
    if (!out->domain)
        out->domain = xstrdup(REF_DEFAULT_DOMAIN);
    /* docker.io's legacy host names mean the same registry */
    if (!strcmp(out->domain, "index.docker.io") || !strcmp(out->domain, "registry-1.docker.io")) {
        free(out->domain);
        out->domain = xstrdup(REF_DEFAULT_DOMAIN);
    }
    if (!strcmp(out->domain, REF_DEFAULT_DOMAIN) && !strchr(path, '/'))
        out->path = xasprintf("library/%s", path);
    else
        out->path = xstrdup(path);
    return 0;
bad_name:
    ref_free(out);
    return err_set(err, EINVAL,
                   "invalid reference `%s`: a repository name is lowercase letters, digits and "
                   "separators (`.`, `_`, `__`, `-`) between them, in `/`-separated parts",
                   s);
}

char *ref_repository(const struct ref *r)
{
    return xasprintf("%s/%s", r->domain, r->path);
}

char *ref_familiar_repository(const struct ref *r)
{
    if (strcmp(r->domain, REF_DEFAULT_DOMAIN))
        return ref_repository(r);
    if (!strncmp(r->path, "library/", 8) && !strchr(r->path + 8, '/'))
        return xstrdup(r->path + 8);
    return xstrdup(r->path);
}

char *ref_store_name(const struct ref *r)
{
    cleanup_free char *repo = ref_familiar_repository(r);
    if (r->tag || !r->has_digest)
        return xasprintf("%s:%s", repo, r->tag ? r->tag : "latest");
    char ds[DIGEST_STR_SIZE];
    digest_str(&r->digest, ds);
    return xasprintf("%s@%s", repo, ds);
}

char *ref_full_name(const struct ref *r)
{
    cleanup_free char *repo = ref_repository(r);
    char ds[DIGEST_STR_SIZE] = "";
    if (r->has_digest)
        digest_str(&r->digest, ds);
    const char *tag = r->tag ? r->tag : r->has_digest ? NULL : "latest";
    return xasprintf("%s%s%s%s%s", repo, tag ? ":" : "", tag ? tag : "", ds[0] ? "@" : "", ds);
}

const char *ref_registry_reference(const struct ref *r, char buf[DIGEST_STR_SIZE])
{
    if (r->has_digest) {
        digest_str(&r->digest, buf);
        return buf;
    }
    return r->tag ? r->tag : "latest";
}

bool ref_split_name(const char *name, char **repo, const char **rest, bool *is_digest)
{
    if (!strncmp(name, "sha256:", 7))
        return false;
    const char *at = strchr(name, '@');
    if (at) {
        *repo = strndup(name, (size_t)(at - name));
        *rest = at + 1;
        *is_digest = true;
        return true;
    }
    const char *slash = strrchr(name, '/');
    const char *colon = strrchr(slash ? slash : name, ':');
    if (!colon)
        return false;
    *repo = strndup(name, (size_t)(colon - name));
    *rest = colon + 1;
    *is_digest = false;
    return true;
}
