// libcurl loaded on first use: see curl.h.
#define IMGFS_CURL_IMPL
#include "curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define CURL_SONAME "libcurl.so.4"

static struct {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_reset) *easy_reset;
    __typeof__(curl_easy_perform) *easy_perform;
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_easy_escape) *easy_escape;
    __typeof__(curl_free) *free;
    __typeof__(curl_share_init) *share_init;
    __typeof__(curl_share_cleanup) *share_cleanup;
    CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
} fn;

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "imgfs: %s: no symbol %s\n", CURL_SONAME, name);
        exit(125);
    }
    return p;
}

static void load_once(void)
{
    void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "imgfs: cannot load %s (install libcurl4): %s\n", CURL_SONAME, dlerror());
        exit(125);
    }
    fn.global_init = sym(lib, "curl_global_init");
    fn.easy_init = sym(lib, "curl_easy_init");
    fn.easy_cleanup = sym(lib, "curl_easy_cleanup");
    fn.easy_reset = sym(lib, "curl_easy_reset");
    fn.easy_perform = sym(lib, "curl_easy_perform");
    fn.easy_setopt = sym(lib, "curl_easy_setopt");
    fn.easy_getinfo = sym(lib, "curl_easy_getinfo");
    fn.easy_strerror = sym(lib, "curl_easy_strerror");
    fn.easy_escape = sym(lib, "curl_easy_escape");
    fn.free = sym(lib, "curl_free");
    fn.share_init = sym(lib, "curl_share_init");
    fn.share_cleanup = sym(lib, "curl_share_cleanup");
    fn.share_setopt = sym(lib, "curl_share_setopt");
    fn.slist_append = sym(lib, "curl_slist_append");
    fn.slist_free_all = sym(lib, "curl_slist_free_all");
}

static void load(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load_once);
}

CURLcode imgfs_curl_global_init(long flags)
{
    load();
    return fn.global_init(flags);
}

CURL *imgfs_curl_easy_init(void)
{
    load();
    return fn.easy_init();
}

void imgfs_curl_easy_cleanup(CURL *h)
{
    load();
    fn.easy_cleanup(h);
}

void imgfs_curl_easy_reset(CURL *h)
{
    load();
    fn.easy_reset(h);
}

CURLcode imgfs_curl_easy_perform(CURL *h)
{
    load();
    return fn.easy_perform(h);
}

// The option number says the type of its argument (curl.h, CURLOPTTYPE_*).
CURLcode imgfs_curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    load();
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        rc = fn.easy_setopt(h, opt, v);
    } else if (opt >= CURLOPTTYPE_FUNCTIONPOINT && opt < CURLOPTTYPE_OFF_T) {
        void (*f)(void) = va_arg(ap, void (*)(void));
        rc = fn.easy_setopt(h, opt, f);
    } else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        rc = fn.easy_setopt(h, opt, v);
    } else {
        void *p = va_arg(ap, void *);
        rc = fn.easy_setopt(h, opt, p);
    }
    va_end(ap);
    return rc;
}

// Every CURLINFO_* takes a pointer to where the value goes.
CURLcode imgfs_curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    load();
    va_list ap;
    va_start(ap, info);
    void *p = va_arg(ap, void *);
    va_end(ap);
    return fn.easy_getinfo(h, info, p);
}

const char *imgfs_curl_easy_strerror(CURLcode code)
{
    load();
    return fn.easy_strerror(code);
}

char *imgfs_curl_easy_escape(CURL *h, const char *s, int len)
{
    load();
    return fn.easy_escape(h, s, len);
}

void imgfs_curl_free(void *p)
{
    load();
    fn.free(p);
}

CURLSH *imgfs_curl_share_init(void)
{
    load();
    return fn.share_init();
}

CURLSHcode imgfs_curl_share_cleanup(CURLSH *sh)
{
    load();
    return fn.share_cleanup(sh);
}

// SHARE/UNSHARE take an int (curl_lock_data); the others a function or data pointer.
CURLSHcode imgfs_curl_share_setopt(CURLSH *sh, CURLSHoption opt, ...)
{
    load();
    va_list ap;
    va_start(ap, opt);
    CURLSHcode rc;
    if (opt == CURLSHOPT_SHARE || opt == CURLSHOPT_UNSHARE) {
        int v = va_arg(ap, int);
        rc = fn.share_setopt(sh, opt, v);
    } else if (opt == CURLSHOPT_LOCKFUNC || opt == CURLSHOPT_UNLOCKFUNC) {
        void (*f)(void) = va_arg(ap, void (*)(void));
        rc = fn.share_setopt(sh, opt, f);
    } else {
        void *p = va_arg(ap, void *);
        rc = fn.share_setopt(sh, opt, p);
    }
    va_end(ap);
    return rc;
}

struct curl_slist *imgfs_curl_slist_append(struct curl_slist *l, const char *s)
{
    load();
    return fn.slist_append(l, s);
}

void imgfs_curl_slist_free_all(struct curl_slist *l)
{
    load();
    fn.slist_free_all(l);
}
