/* registry.c — the OCI distribution client. Contract and error codes: registry.h; the reasons
 * behind the choices: docs/registry.md. */
#include "registry.h"
#include "oci.h"
#include "curl.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { SCHEME_UNDECIDED, SCHEME_HTTPS, SCHEME_HTTP };

#define DEFAULT_RETRIES  5
#define STALL_SECONDS    30
#define ERROR_BODY_LIMIT (64u << 10)
#define DEFAULT_CHUNK    (16u << 20)
#define BACKOFF_FIRST_MS 200
#define BACKOFF_MAX_MS   10000
/* a Retry-After asks for at most this long a wait (the call's budget may cut it shorter) */
#define RETRY_AFTER_MAX_S 60

static void cleanup_json_fn(json_t **j)
{
    json_decref(*j);
}
#define cleanup_json __attribute__((cleanup(cleanup_json_fn)))

static void global_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void registry_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init_once);
}

/* ---- the client ---- */

struct registry_client {
    char *host;       /* host[:port] as written in the reference */
    char *base;       /* "https://host" (docker.io → registry-1.docker.io) */
    char *base_plain; /* "http://host" when falling back to plain HTTP is allowed, else NULL */
    int scheme;       /* SCHEME_*: what the first exchange found (atomic) */
    char *repo;       /* path on the registry */
    char *ca_file;
    char *user, *password;
    bool no_verify;
    unsigned timeout_ms, max_retries;
    void (*progress)(void *ctx, const struct digest *blob, uint64_t done, uint64_t total);
    void *progress_ctx;

    pthread_mutex_t auth_lock; /* held while answering a challenge */
    pthread_mutex_t lock;      /* everything below */
    char *authorization;       /* "Authorization: ..." header, NULL before the first challenge */
    char *challenge;           /* the last WWW-Authenticate met, for a 403 that sends none */
    unsigned auth_generation;
    bool push_scope; /* tokens are asked for with push too */
    CURL **pool;
    size_t n_pool, cap_pool;
    bool multirange_broken;

    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    (void)h;
    (void)access;
    struct registry_client *c = ctx;
    pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    (void)h;
    struct registry_client *c = ctx;
    pthread_mutex_unlock(&c->share_locks[data]);
}

static bool env_list_has(const char *list, const char *host)
{
    if (!list)
        return false;
    size_t hl = strlen(host);
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\n' && *e != '\t')
            e++;
        if ((size_t)(e - p) == hl && !strncmp(p, host, hl))
            return true;
        p = e;
    }
    return false;
}

static char *config_path(const char *file)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg)
        return xasprintf("%s/imgfs/%s", xdg, file);
    const char *home = getenv("HOME");
    return xasprintf("%s/.config/imgfs/%s", home && *home ? home : "/root", file);
}

bool registry_host_insecure(const char *host)
{
    char name[256];
    const char *h = host;
    size_t n;
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        n = close ? (size_t)(close - h - 1) : strlen(h);
        h++;
    } else {
        const char *colon = strchr(h, ':');
        n = colon ? (size_t)(colon - h) : strlen(h);
    }
    if (n >= sizeof name)
        return false;
    memcpy(name, h, n);
    name[n] = 0;
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcmp(name, "localhost") ||
        (inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127))
        return true;
    if (inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
        return true;
    if (env_list_has(getenv("IMGFS_INSECURE_REGISTRIES"), host))
        return true;
    cleanup_free char *path = config_path("registries.conf");
    struct buf b = {0};
    struct imgfs_err ignored;
    bool found = false;
    if (read_file(path, 1 << 20, &b, &ignored) == 0) {
        buf_append(&b, "", 1);
        /* one host per line; '#' starts a comment */
        for (char *line = (char *)b.data; line && *line && !found;) {
            char *next = strchr(line, '\n');
            if (next)
                *next++ = 0;
            char *hash = strchr(line, '#');
            if (hash)
                *hash = 0;
            found = env_list_has(line, host);
            line = next;
        }
    }
    buf_free(&b);
    return found;
}

int registry_open(const struct ref *ref, const struct registry_options *opt,
                  struct registry_client **out, struct imgfs_err *err)
{
    static const struct registry_options defaults = {0};
    if (!opt)
        opt = &defaults;
    registry_global_init();
    struct registry_client *c = xcalloc(1, sizeof *c);
    c->host = xstrdup(ref->domain);
    c->repo = xstrdup(ref->path);
    /* Insecure registries (loopback, listed) as Docker treats them: HTTPS first without
     * certificate checks, plain HTTP when the server does not speak TLS (decided by the first
     * exchange, then kept). --tls-verify=false does the same for any host. */
    bool insecure = opt->tls_verify != REGISTRY_TLS_VERIFY && registry_host_insecure(ref->domain);
    const char *api_host =
        strcmp(ref->domain, REF_DEFAULT_DOMAIN) ? ref->domain : "registry-1.docker.io";
    c->base = xasprintf("%s://%s", opt->plain_http ? "http" : "https", api_host);
    if (!opt->plain_http && (insecure || opt->tls_verify == REGISTRY_TLS_NO_VERIFY))
        c->base_plain = xasprintf("http://%s", api_host);
    const char *ca = opt->ca_file ? opt->ca_file : getenv("CURL_CA_BUNDLE");
    c->ca_file = ca && *ca ? xstrdup(ca) : NULL;
    c->no_verify = insecure || opt->tls_verify == REGISTRY_TLS_NO_VERIFY;
    c->timeout_ms = opt->timeout_ms;
    c->max_retries = opt->max_retries ? opt->max_retries : DEFAULT_RETRIES;
    c->push_scope = opt->push;
    c->progress = opt->progress;
    c->progress_ctx = opt->progress_ctx;
    if (opt->username) {
        c->user = xstrdup(opt->username);
        c->password = xstrdup(opt->password ? opt->password : "");
    } else if (registry_auth_get(opt->auth_file, ref->domain, &c->user, &c->password, err) < 0) {
        registry_close(c);
        return err_ctx(err, "reading credentials for %s", ref->domain);
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->auth_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    c->share = curl_share_init();
    if (!c->share)
        abort();
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = c;
    return 0;
}

void registry_close(struct registry_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i]);
    free(c->pool);
    if (c->share) {
        curl_share_cleanup(c->share);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&c->share_locks[i]);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->auth_lock);
    }
    free(c->host);
    free(c->base);
    free(c->base_plain);
    free(c->repo);
    free(c->ca_file);
    free(c->user);
    if (c->password)
        explicit_bzero(c->password, strlen(c->password));
    free(c->password);
    free(c->authorization);
    free(c->challenge);
    free(c);
}

static const char *current_base(const struct registry_client *c)
{
    return c->base_plain && __atomic_load_n(&c->scheme, __ATOMIC_ACQUIRE) == SCHEME_HTTP
               ? c->base_plain
               : c->base;
}

const char *registry_base_url(const struct registry_client *c)
{
    return current_base(c);
}

const char *registry_repository(const struct registry_client *c)
{
    return c->repo;
}

static CURL *handle_take(struct registry_client *c)
{
    pthread_mutex_lock(&c->lock);
    CURL *h = c->n_pool ? c->pool[--c->n_pool] : NULL;
    pthread_mutex_unlock(&c->lock);
    if (!h && !(h = curl_easy_init()))
        abort();
    return h;
}

static void handle_give(struct registry_client *c, CURL *h)
{
    curl_easy_reset(h);
    pthread_mutex_lock(&c->lock);
    if (c->n_pool == c->cap_pool) {
        c->cap_pool = c->cap_pool ? 2 * c->cap_pool : 8;
        c->pool = xrealloc(c->pool, c->cap_pool * sizeof *c->pool);
    }
    c->pool[c->n_pool++] = h;
    pthread_mutex_unlock(&c->lock);
}

/* ---- time ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 0 = no deadline */
static uint64_t deadline_of(const struct registry_client *c, unsigned timeout_ms)
{
    unsigned t = timeout_ms ? timeout_ms : c->timeout_ms;
    return t ? now_ms() + t : 0;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- one HTTP exchange ---- */

struct request {
    const char *method; /* GET HEAD POST PUT PATCH DELETE */
    const char *url;    /* absolute, or a path under base */
    const char *accept; /* Accept header, or NULL */
    const char *range;  /* "0-99" (without "bytes="), or NULL */
    const char *content_type;
    const char *content_range; /* for PATCH */
    /* body: from memory, or pread from fd */
    const void *body;
    int body_fd;
    uint64_t body_offset, body_len;
    bool has_body;
    const struct digest *progress_blob;
    /* response body: to sink when 2xx (a partial transfer is then reported, not retried), else
     * collected up to limit */
    registry_sink_fn sink;
    void *sink_ctx;
    size_t limit;
    uint64_t range_start; /* where `range` starts */
    bool range_suffix;    /* `range` is "-N" */
    uint64_t *skip_out;   /* set to range_start when the server answers 200 to a Range */
};

struct response {
    long status;
    struct buf body;
    bool too_big, started, bad_range;
    uint64_t delivered; /* bytes handed to the sink */
    int sink_rc;
    char *content_type, *docker_digest, *location, *www_authenticate, *content_range, *retry_after,
        *range_header, *link;
    int64_t content_length;
};

static void response_free(struct response *r)
{
    buf_free(&r->body);
    free(r->content_type);
    free(r->docker_digest);
    free(r->location);
    free(r->www_authenticate);
    free(r->content_range);
    free(r->retry_after);
    free(r->range_header);
    free(r->link);
    memset(r, 0, sizeof *r);
}

struct exchange {
    const struct request *rq;
    struct response *rs;
    struct registry_client *c;
    uint64_t sent;
};

static void keep_header(char **slot, const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    free(*slot);
    *slot = strndup(v, n);
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *ctx)
{
    struct exchange *x = ctx;
    struct response *rs = x->rs;
    size_t n = size * nitems;
    if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
        /* a new response (after a redirect or 100 Continue): forget the previous headers */
        const char *sp = memchr(data, ' ', n);
        rs->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        free(rs->content_type);
        free(rs->docker_digest);
        free(rs->location);
        free(rs->www_authenticate);
        free(rs->content_range);
        free(rs->retry_after);
        free(rs->link);
        rs->content_type = rs->docker_digest = rs->location = rs->www_authenticate =
            rs->content_range = rs->retry_after = rs->link = NULL;
        rs->content_length = -1;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t kl = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vl = n - kl - 1;
#define IS(name) (kl == sizeof name - 1 && !strncasecmp(data, name, kl))
    if (IS("Content-Type"))
        keep_header(&rs->content_type, v, vl);
    else if (IS("Docker-Content-Digest"))
        keep_header(&rs->docker_digest, v, vl);
    else if (IS("Location"))
        keep_header(&rs->location, v, vl);
    else if (IS("WWW-Authenticate"))
        keep_header(&rs->www_authenticate, v, vl);
    else if (IS("Content-Range"))
        keep_header(&rs->content_range, v, vl);
    else if (IS("Retry-After"))
        keep_header(&rs->retry_after, v, vl);
    else if (IS("Range"))
        keep_header(&rs->range_header, v, vl);
    else if (IS("Link"))
        keep_header(&rs->link, v, vl);
    else if (IS("Content-Length")) {
        char *s = NULL;
        keep_header(&s, v, vl);
        rs->content_length = s && *s ? strtoll(s, NULL, 10) : -1;
        free(s);
    }
#undef IS
    return n;
}

/* "bytes a-b/total" → a; -1 when malformed */
static int parse_content_range(const char *s, uint64_t *first, uint64_t *last, uint64_t *total)
{
    unsigned long long a, b;
    char tot[32];
    if (!s || sscanf(s, "bytes %llu-%llu/%31s", &a, &b, tot) != 3 || b < a)
        return -1;
    *first = a;
    *last = b;
    *total = tot[0] == '*' ? 0 : strtoull(tot, NULL, 10);
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct exchange *x = ctx;
    struct response *rs = x->rs;
    size_t n = size * nmemb;
    if (x->rq->sink && rs->status >= 200 && rs->status < 300) {
        if (!rs->delivered && !rs->started) {
            rs->started = true;
            /* a server that ignores Range answers 200 with the whole blob */
            if (rs->status == 200 && x->rq->range_start && x->rq->skip_out)
                *x->rq->skip_out = x->rq->range_start;
            if (rs->status == 206 && x->rq->range && !x->rq->range_suffix) {
                uint64_t first, last, total;
                if (parse_content_range(rs->content_range, &first, &last, &total) < 0 ||
                    first != x->rq->range_start) {
                    rs->bad_range = true;
                    return CURL_WRITEFUNC_ERROR;
                }
            }
        }
        int rc = x->rq->sink(x->rq->sink_ctx, data, n);
        if (rc) {
            rs->sink_rc = rc;
            return CURL_WRITEFUNC_ERROR;
        }
        rs->delivered += n;
        if (x->c->progress && x->rq->progress_blob)
            x->c->progress(x->c->progress_ctx, x->rq->progress_blob,
                           x->rq->range_start + rs->delivered, 0);
        return n;
    }
    size_t limit =
        x->rq->sink || !(rs->status >= 200 && rs->status < 300) ? ERROR_BODY_LIMIT : x->rq->limit;
    if (rs->body.len + n > limit) {
        rs->too_big = true;
        return CURL_WRITEFUNC_ERROR;
    }
    buf_append(&rs->body, data, n);
    return n;
}

static size_t read_cb(char *out, size_t size, size_t nitems, void *ctx)
{
    struct exchange *x = ctx;
    const struct request *rq = x->rq;
    size_t want = size * nitems;
    uint64_t left = rq->body_len - x->sent;
    if (want > left)
        want = (size_t)left;
    if (!want)
        return 0;
    if (rq->body) {
        memcpy(out, (const uint8_t *)rq->body + x->sent, want);
    } else {
        ssize_t n;
        do
            n = pread(rq->body_fd, out, want, (off_t)(rq->body_offset + x->sent));
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)n;
    }
    x->sent += want;
    if (x->c->progress && rq->progress_blob)
        x->c->progress(x->c->progress_ctx, rq->progress_blob, rq->body_offset + x->sent, 0);
    return want;
}

static int seek_cb(void *ctx, curl_off_t offset, int origin)
{
    struct exchange *x = ctx;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->rq->body_len)
        return CURL_SEEKFUNC_FAIL;
    x->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static char *absolute_url(const struct registry_client *c, const char *url)
{
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return xstrdup(url);
    return xasprintf("%s%s%s", current_base(c), url[0] == '/' ? "" : "/", url);
}

/* One exchange, no retries. Returns the CURLcode; the status is in rs. */
static CURLcode exchange_once(struct registry_client *c, const struct request *rq,
                              struct response *rs, const char *authorization, uint64_t deadline,
                              char *curl_msg, size_t curl_msg_len)
{
    memset(rs, 0, sizeof *rs);
    rs->content_length = -1;
    struct exchange x = {.rq = rq, .rs = rs, .c = c};
    CURL *h = handle_take(c);
    cleanup_free char *url = absolute_url(c, rq->url);
    struct curl_slist *hdrs = NULL;
    char line[512];
    if (authorization)
        hdrs = curl_slist_append(hdrs, authorization);
    if (rq->accept) {
        snprintf(line, sizeof line, "Accept: %s", rq->accept);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (rq->range) {
        cleanup_free char *r = xasprintf("Range: bytes=%s", rq->range);
        hdrs = curl_slist_append(hdrs, r);
    }
    if (rq->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", rq->content_type);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (rq->content_range) {
        snprintf(line, sizeof line, "Content-Range: %s", rq->content_range);
        hdrs = curl_slist_append(hdrs, line);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "imgfs/0.1");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)STALL_SECONDS);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_msg);
    curl_msg[0] = 0;
    (void)curl_msg_len;
    if (deadline) {
        uint64_t now = now_ms();
        long left = deadline > now ? (long)(deadline - now) : 1;
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, left);
    }
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->no_verify) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!strcmp(rq->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(rq->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        if (rq->has_body) {
            curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(h, CURLOPT_READDATA, &x);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        }
    } else if (!strcmp(rq->method, "PUT") || !strcmp(rq->method, "PATCH")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(rq->has_body ? rq->body_len : 0));
        if (!strcmp(rq->method, "PATCH"))
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
    } else if (strcmp(rq->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    /* the status is needed in write_cb before the first body byte: the header callback sees the
     * status line, so take it from there */
    x.rs->status = 0;
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    curl_slist_free_all(hdrs);
    handle_give(c, h);
    return rc;
}

/* ---- registry error bodies ---- */

static void describe_status(const struct response *rs, char *out, size_t len)
{
    /* {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "...", "detail": ...}]} */
    json_error_t je;
    cleanup_json json_t *j =
        rs->body.len ? json_loadb((const char *)rs->body.data, rs->body.len, 0, &je) : NULL;
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    const char *code = json_string_value(json_object_get(e0, "code"));
    const char *msg = json_string_value(json_object_get(e0, "message"));
    if (code || msg)
        snprintf(out, len, "HTTP %ld %s%s%s", rs->status, code ? code : "", code && msg ? ": " : "",
                 msg ? msg : "");
    else
        snprintf(out, len, "HTTP %ld", rs->status);
}

static int status_errno(long status)
{
    switch (status) {
    case 401:
    case 403:
        return EACCES;
    case 404:
        return ENOENT;
    case 416:
        return ERANGE;
    case 429:
        return EAGAIN;
    default:
        return status >= 500 ? EIO : EPROTO;
    }
}

/* ---- auth ---- */

static char *base64(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

/* key="value" or key=value from a challenge's parameters; caller frees */
static char *challenge_param(const char *params, const char *key)
{
    size_t kl = strlen(key);
    const char *p = params;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *eq = strchr(p, '=');
        if (!eq)
            return NULL;
        bool match = (size_t)(eq - p) == kl && !strncasecmp(p, key, kl);
        const char *v = eq + 1;
        struct buf b = {0};
        if (*v == '"') {
            v++;
            while (*v && *v != '"') {
                if (*v == '\\' && v[1])
                    v++;
                buf_append(&b, v++, 1);
            }
            if (*v == '"')
                v++;
        } else {
            while (*v && *v != ',')
                buf_append(&b, v++, 1);
        }
        buf_append(&b, "", 1);
        if (match)
            return (char *)b.data;
        buf_free(&b);
        p = v;
    }
    return NULL;
}

static size_t collect_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct buf *b = ctx;
    size_t n = size * nmemb;
    if (b->len + n > ERROR_BODY_LIMIT)
        return CURL_WRITEFUNC_ERROR;
    buf_append(b, data, n);
    return n;
}

static char *url_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e)
        abort();
    char *out = xstrdup(e);
    curl_free(e);
    return out;
}

/* GET the token for a Bearer challenge (the caller holds c->auth_lock). */
static int fetch_token(struct registry_client *c, const char *params, uint64_t deadline,
                       char **authorization, struct imgfs_err *err)
{
    cleanup_free char *realm = challenge_param(params, "realm");
    cleanup_free char *service = challenge_param(params, "service");
    cleanup_free char *scope = challenge_param(params, "scope");
    if (!realm || (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7)))
        return err_set(err, EPROTO, "%s: a Bearer challenge without a usable realm", c->host);
    cleanup_free char *own_scope =
        xasprintf("repository:%s:%s", c->repo, c->push_scope ? "pull,push" : "pull");
    struct buf url = {0};
    buf_append(&url, realm, strlen(realm));
    char sep = strchr(realm, '?') ? '&' : '?';
    if (service) {
        cleanup_free char *e = url_escape(service);
        cleanup_free char *part = xasprintf("%cservice=%s", sep, e);
        buf_append(&url, part, strlen(part));
        sep = '&';
    }
    /* a client for a whole registry (login) has no repository: no scope of its own */
    const char *scopes[2] = {*c->repo ? own_scope : NULL,
                             scope && strcmp(scope, own_scope) ? scope : NULL};
    for (int i = 0; i < 2; i++) {
        if (!scopes[i])
            continue;
        cleanup_free char *e = url_escape(scopes[i]);
        cleanup_free char *part = xasprintf("%cscope=%s", sep, e);
        buf_append(&url, part, strlen(part));
        sep = '&';
    }
    buf_append(&url, "", 1);
    CURL *h = handle_take(c);
    struct buf body = {0};
    char msg[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, (char *)url.data);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "imgfs/0.1");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, msg);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)STALL_SECONDS);
    if (deadline) {
        uint64_t now = now_ms();
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, deadline > now ? (long)(deadline - now) : 1L);
    }
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->no_verify) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    handle_give(c, h);
    int ret = 0;
    if (rc != CURLE_OK) {
        ret = err_set(err, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO,
                      "getting a token from %s: %s", realm, msg[0] ? msg : curl_easy_strerror(rc));
    } else if (status == 401 || status == 403) {
        ret = err_set(err, EACCES, "getting a token from %s: HTTP %ld (%s)", realm, status,
                      c->user ? "bad credentials" : "no credentials; run `imgfs login`");
    } else if (status != 200) {
        ret = err_set(err, status >= 500 ? EIO : EPROTO, "getting a token from %s: HTTP %ld", realm,
                      status);
    } else {
        json_error_t je;
        cleanup_json json_t *j = json_loadb((const char *)body.data, body.len, 0, &je);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok)
            tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || !*tok || strpbrk(tok, "\r\n"))
            ret = err_set(err, EPROTO, "getting a token from %s: no token in the answer", realm);
        else
            *authorization = xasprintf("Authorization: Bearer %s", tok);
    }
    buf_free(&body);
    buf_free(&url);
    return ret;
}

/* Answer a challenge: set c->authorization. `seen` is the generation the failed request used:
 * when another thread already renewed the credentials, just use theirs. */
static int authenticate(struct registry_client *c, const char *challenge, unsigned seen,
                        uint64_t deadline, struct imgfs_err *err)
{
    /* one thread at a time answers challenges; c->lock is not held across the token request
     * (it guards the handle pool that request uses) */
    pthread_mutex_lock(&c->auth_lock);
    pthread_mutex_lock(&c->lock);
    bool renewed = c->auth_generation != seen;
    pthread_mutex_unlock(&c->lock);
    int ret = 0;
    char *authorization = NULL;
    if (renewed)
        goto out;
    if (!challenge || !*challenge) {
        ret = err_set(err, EACCES, "%s: access denied", c->host);
    } else if (!strncasecmp(challenge, "Bearer ", 7)) {
        ret = fetch_token(c, challenge + 7, deadline, &authorization, err);
    } else if (!strncasecmp(challenge, "Basic", 5)) {
        if (!c->user) {
            ret = err_set(err, EACCES, "%s: authentication required; run `imgfs login %s`", c->host,
                          c->host);
        } else {
            cleanup_free char *up = xasprintf("%s:%s", c->user, c->password);
            cleanup_free char *b64 = base64(up);
            explicit_bzero(up, strlen(up));
            authorization = xasprintf("Authorization: Basic %s", b64);
        }
    } else {
        ret = err_set(err, EPROTO, "%s: unsupported authentication scheme `%.40s`", c->host,
                      challenge);
    }
    if (ret == 0) {
        pthread_mutex_lock(&c->lock);
        free(c->authorization);
        c->authorization = authorization;
        c->auth_generation++;
        pthread_mutex_unlock(&c->lock);
    }
out:
    pthread_mutex_unlock(&c->auth_lock);
    return ret;
}

static bool retryable_status(long status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
        return true;
    default:
        return false;
    }
}

/* Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date; -1 when absent or malformed. */
static int64_t retry_after_seconds(const char *v)
{
    if (!v || !*v)
        return -1;
    if (*v >= '0' && *v <= '9') {
        char *end;
        unsigned long long s = strtoull(v, &end, 10);
        return *end ? -1 : (int64_t)(s > INT32_MAX ? INT32_MAX : s);
    }
    struct tm tm = {0};
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    time_t at = timegm(&tm), now = time(NULL);
    return at > now ? (int64_t)(at - now) : 0;
}

/* Wait before attempt `n` (1-based retry count): exponential backoff, or Retry-After. Returns
 * false when the deadline would pass first. */
static bool backoff(unsigned n, const char *retry_after, uint64_t deadline)
{
    uint64_t ms = BACKOFF_FIRST_MS << (n > 6 ? 6 : n - 1);
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    int64_t s = retry_after_seconds(retry_after);
    if (s >= 0)
        ms = s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S * 1000 : (uint64_t)s * 1000;
    if (deadline) {
        uint64_t now = now_ms();
        if (now + ms >= deadline)
            return false;
    }
    sleep_ms(ms);
    return true;
}

/* An exchange with auth and retries. Returns 0 with rs filled (any HTTP status the caller must
 * judge, except auth failures and exhausted retries, which are errors), -1 with err. `what` names
 * the request in errors. A request whose body went to a sink is not retried once bytes were
 * delivered: the caller resumes (rs->delivered tells how far it got). */
static int perform_exchange(struct registry_client *c, const struct request *rq,
                            struct response *rs, uint64_t deadline, const char *what,
                            struct imgfs_err *err);

/* On failure only the transfer's counters and flags are left in rs (nothing to free). */
static int perform(struct registry_client *c, const struct request *rq, struct response *rs,
                   uint64_t deadline, const char *what, struct imgfs_err *err)
{
    int ret = perform_exchange(c, rq, rs, deadline, what, err);
    if (ret < 0) {
        struct response keep = {.status = rs->status,
                                .delivered = rs->delivered,
                                .sink_rc = rs->sink_rc,
                                .too_big = rs->too_big,
                                .bad_range = rs->bad_range,
                                .started = rs->started,
                                .content_length = rs->content_length};
        response_free(rs);
        *rs = keep;
    }
    return ret;
}

static int perform_exchange(struct registry_client *c, const struct request *rq,
                            struct response *rs, uint64_t deadline, const char *what,
                            struct imgfs_err *err)
{
    bool reauthed = false;
    unsigned attempt = 0;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        cleanup_free char *authorization = c->authorization ? xstrdup(c->authorization) : NULL;
        unsigned generation = c->auth_generation;
        pthread_mutex_unlock(&c->lock);
        char msg[CURL_ERROR_SIZE];
        CURLcode rc = exchange_once(c, rq, rs, authorization, deadline, msg, sizeof msg);
        if (c->base_plain && __atomic_load_n(&c->scheme, __ATOMIC_ACQUIRE) == SCHEME_UNDECIDED) {
            /* the first answer decides: a TLS handshake the server does not speak means plain
             * HTTP from now on (an HTTP server answers a ClientHello with garbage or closes) */
            bool no_tls =
                rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
            if (rc == CURLE_OK || no_tls)
                __atomic_store_n(&c->scheme, no_tls ? SCHEME_HTTP : SCHEME_HTTPS, __ATOMIC_RELEASE);
            if (no_tls) {
                response_free(rs);
                continue;
            }
        }
        if (rc != CURLE_OK) {
            /* OpenSSL's word for a ClientHello answered in plain HTTP, from a host meant to
             * speak HTTPS: not worth retrying, and what Docker says as "server gave HTTP response
             * to HTTPS client", with the way out. (An insecure host's HTTPS attempts decide for
             * plain HTTP above; one made while another thread decided is simply retried.) */
            if (!c->base_plain && rc == CURLE_SSL_CONNECT_ERROR &&
                strstr(msg, "wrong version number"))
                return err_set(err, EPROTO,
                               "%s: %s: the registry answered HTTPS in plain HTTP (%s); a "
                               "plain-HTTP registry must be named in IMGFS_INSECURE_REGISTRIES "
                               "or registries.conf, or given --tls-verify=false",
                               c->host, what, msg);
            if (rs->bad_range)
                return err_set(err, EPROTO, "%s: %s: wrong Content-Range `%s`", c->host, what,
                               rs->content_range ? rs->content_range : "");
            if (rs->sink_rc)
                return err->code ? -1 : err_set(err, ECANCELED, "%s: %s stopped", c->host, what);
            if (rs->too_big)
                return err_set(err, EPROTO, "%s: %s: the answer is larger than %zu bytes", c->host,
                               what, rq->limit);
            bool timed_out = deadline && now_ms() >= deadline;
            if (rs->delivered || timed_out || !retryable_curl(rc) || ++attempt > c->max_retries ||
                !backoff(attempt, NULL, deadline)) {
                int code = timed_out || rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO;
                if (rs->delivered)
                    code = EIO;
                if (timed_out)
                    return err_set(err, code, "%s: %s: no answer within the time budget (%s)",
                                   c->host, what, msg[0] ? msg : curl_easy_strerror(rc));
                return err_set(err, code, "%s: %s: %s", c->host, what,
                               msg[0] ? msg : curl_easy_strerror(rc));
            }
            response_free(rs);
            continue;
        }
        if ((rs->status == 401 || (rs->status == 403 && authorization)) && !reauthed) {
            reauthed = true;
            cleanup_free char *challenge =
                rs->www_authenticate ? xstrdup(rs->www_authenticate) : NULL;
            /* a registry that refuses an expired token with a bare 403 (no challenge): answer
             * the challenge that gave the token again */
            pthread_mutex_lock(&c->lock);
            if (challenge) {
                free(c->challenge);
                c->challenge = xstrdup(challenge);
            } else if (c->challenge) {
                challenge = xstrdup(c->challenge);
            }
            pthread_mutex_unlock(&c->lock);
            if (rs->status == 403 && !challenge) {
                char st[256];
                describe_status(rs, st, sizeof st);
                return err_set(err, EACCES, "%s: %s: access denied (%s)", c->host, what, st);
            }
            response_free(rs);
            if (authenticate(c, challenge, generation, deadline, err) < 0)
                return err_ctx(err, "%s", what);
            continue;
        }
        if (rs->status == 401 || rs->status == 403) {
            char st[256];
            describe_status(rs, st, sizeof st);
            return err_set(err, EACCES, "%s: %s: %s (%s)", c->host, what,
                           rs->status == 401 ? "authentication failed" : "access denied", st);
        }
        if (retryable_status(rs->status) && !rs->delivered) {
            cleanup_free char *ra = rs->retry_after ? xstrdup(rs->retry_after) : NULL;
            if (++attempt <= c->max_retries && backoff(attempt, ra, deadline)) {
                response_free(rs);
                continue;
            }
            char st[256];
            describe_status(rs, st, sizeof st);
            return err_set(err, deadline && now_ms() >= deadline ? ETIMEDOUT : EIO,
                           "%s: %s: %s (after %u attempts)", c->host, what, st, attempt);
        }
        return 0;
    }
}

/* An unexpected status as an error. */
static int status_error(struct registry_client *c, const struct response *rs, const char *what,
                        struct imgfs_err *err)
{
    char st[512];
    describe_status(rs, st, sizeof st);
    return err_set(err, status_errno(rs->status), "%s: %s: %s", c->host, what, st);
}

int registry_ping(struct registry_client *c, unsigned timeout_ms, struct imgfs_err *err)
{
    struct request rq = {.method = "GET", .url = "/v2/", .limit = ERROR_BODY_LIMIT};
    struct response rs;
    int ret = perform(c, &rq, &rs, deadline_of(c, timeout_ms), "checking the registry API", err);
    if (ret == 0 && rs.status != 200)
        ret = status_error(c, &rs, "GET /v2/", err);
    response_free(&rs);
    return ret;
}

/* ---- tags ---- */

/* The next page of a listing: the URL of a Link header's `<URL>; rel="next"` (the distribution
 * spec's pagination), NULL when there is none. Only a path under /v2/ is followed: the listing
 * stays on the registry it started on. */
static char *next_page(const struct response *rs, struct imgfs_err *err, int *bad)
{
    *bad = 0;
    const char *lt = rs->link ? strchr(rs->link, '<') : NULL;
    const char *gt = lt ? strchr(lt, '>') : NULL;
    if (!gt || !strstr(gt, "rel=\"next\""))
        return NULL;
    cleanup_free char *url = strndup(lt + 1, (size_t)(gt - lt - 1));
    if (strncmp(url, "/v2/", 4) || strchr(url, '#')) {
        *bad = err_set(err, EPROTO, "the tag list's next page is not a path under /v2/: `%s`", url);
        return NULL;
    }
    char *out = url;
    url = NULL;
    return out;
}

void registry_tags_free(char **tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
}

int registry_list_tags(struct registry_client *c, unsigned timeout_ms, char ***tags, size_t *n,
                       struct imgfs_err *err)
{
    *tags = NULL;
    *n = 0;
    uint64_t deadline = deadline_of(c, timeout_ms);
    cleanup_free char *what = xasprintf("listing the tags of %s", c->repo);
    char *url = xasprintf("/v2/%s/tags/list?n=%u", c->repo, REGISTRY_TAGS_PAGE);
    size_t cap = 0;
    int ret = 0;
    for (unsigned page = 0; url && !ret; page++) {
        struct request rq = {.method = "GET", .url = url, .limit = REGISTRY_DOCUMENT_LIMIT};
        struct response rs;
        if (page >= REGISTRY_TAGS_MAX / REGISTRY_TAGS_PAGE + 1) {
            ret = err_set(err, EPROTO, "%s: %s: more than %u pages", c->host, what, page);
            break;
        }
        if (perform(c, &rq, &rs, deadline, what, err) < 0) {
            ret = -1;
            break;
        }
        free(url);
        url = NULL;
        json_error_t je;
        cleanup_json json_t *j =
            rs.status == 200 ? json_loadb((const char *)rs.body.data, rs.body.len, 0, &je) : NULL;
        json_t *list = json_object_get(j, "tags");
        if (rs.status != 200) {
            ret = status_error(c, &rs, what, err);
        } else if (!json_is_object(j) || !(json_is_array(list) || json_is_null(list))) {
            ret =
                err_set(err, EPROTO, "%s: %s: the answer is not {\"tags\": [...]}", c->host, what);
        } else {
            size_t i;
            json_t *t;
            json_array_foreach(list, i, t)
            {
                const char *tag = json_string_value(t);
                if (!tag || !ref_valid_tag(tag)) {
                    ret = err_set(err, EPROTO, "%s: %s: tag %zu is not a valid tag", c->host, what,
                                  *n + 1);
                    break;
                }
                if (*n >= REGISTRY_TAGS_MAX) {
                    ret = err_set(err, EPROTO, "%s: %s: more than %u tags", c->host, what,
                                  REGISTRY_TAGS_MAX);
                    break;
                }
                if (*n == cap) {
                    cap = cap ? 2 * cap : 64;
                    *tags = xrealloc(*tags, cap * sizeof **tags);
                }
                (*tags)[(*n)++] = xstrdup(tag);
            }
            int bad;
            if (!ret && !(url = next_page(&rs, err, &bad)) && bad)
                ret = -1;
        }
        response_free(&rs);
    }
    free(url);
    if (ret < 0) {
        registry_tags_free(*tags, *n);
        *tags = NULL;
        *n = 0;
    }
    return ret;
}

/* ---- manifests ---- */

void registry_document_free(struct registry_document *d)
{
    free(d->media_type);
    buf_free(&d->body);
    memset(d, 0, sizeof *d);
}

static const char ACCEPT_MANIFESTS[] =
    MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST;

/* Media type without parameters ("; charset=utf-8") */
static char *bare_media_type(const char *ct)
{
    size_t n = strcspn(ct, "; \t");
    return strndup(ct, n);
}

/* The media type of a manifest: its mediaType field, else the Content-Type, else guessed from
 * its fields. NULL when the body is not a JSON object. */
static char *document_media_type(const struct buf *body, const char *content_type)
{
    json_error_t je;
    cleanup_json json_t *j = json_loadb((const char *)body->data, body->len, 0, &je);
    if (!json_is_object(j))
        return NULL;
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    if (mt)
        return xstrdup(mt);
    if (content_type)
        return bare_media_type(content_type);
    return xstrdup(json_object_get(j, "manifests") ? MT_OCI_INDEX : MT_OCI_MANIFEST);
}

int registry_get_manifest(struct registry_client *c, const char *reference, unsigned timeout_ms,
                          struct registry_document *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    cleanup_free char *url = xasprintf("/v2/%s/manifests/%s", c->repo, reference);
    cleanup_free char *what = xasprintf("getting manifest %s:%s", c->repo, reference);
    struct request rq = {
        .method = "GET", .url = url, .accept = ACCEPT_MANIFESTS, .limit = REGISTRY_DOCUMENT_LIMIT};
    struct response rs;
    if (perform(c, &rq, &rs, deadline_of(c, timeout_ms), what, err) < 0)
        return -1;
    int ret = 0;
    if (rs.status != 200) {
        ret = status_error(c, &rs, what, err);
        goto out;
    }
    digest_of(rs.body.data, rs.body.len, &out->digest);
    struct digest want;
    if (!strncmp(reference, "sha256:", 7) && digest_parse(reference, false, &want) == 0 &&
        !digest_equal(&want, &out->digest)) {
        char got[DIGEST_STR_SIZE];
        digest_str(&out->digest, got);
        ret =
            err_set(err, EBADMSG, "%s: %s: the manifest served has digest %s", c->host, what, got);
        goto out;
    }
    if (rs.docker_digest && *rs.docker_digest) {
        if (digest_parse(rs.docker_digest, false, &want) < 0) {
            /* another algorithm (sha512): the body's own digest was checked above when asked by
             * digest; nothing to compare with */
        } else if (!digest_equal(&want, &out->digest)) {
            ret = err_set(err, EBADMSG,
                          "%s: %s: Docker-Content-Digest %s does not match the manifest served",
                          c->host, what, rs.docker_digest);
            goto out;
        }
    }
    if (!(out->media_type = document_media_type(&rs.body, rs.content_type))) {
        ret = err_set(err, EPROTO, "%s: %s: the manifest is not a JSON object", c->host, what);
        goto out;
    }
    out->body = rs.body;
    memset(&rs.body, 0, sizeof rs.body);
out:
    response_free(&rs);
    if (ret < 0)
        registry_document_free(out);
    return ret;
}

static void descriptor_free(struct registry_descriptor *d)
{
    free(d->media_type);
    if (d->annotations)
        for (char **p = d->annotations; *p; p++)
            free(*p);
    free(d->annotations);
    memset(d, 0, sizeof *d);
}

const char *registry_descriptor_annotation(const struct registry_descriptor *d, const char *key)
{
    if (!d->annotations)
        return NULL;
    for (char **p = d->annotations; p[0] && p[1]; p += 2)
        if (!strcmp(p[0], key))
            return p[1];
    return NULL;
}

void registry_image_free(struct registry_image *img)
{
    registry_document_free(&img->index);
    registry_document_free(&img->manifest);
    descriptor_free(&img->config);
    for (size_t i = 0; i < img->n_layers; i++)
        descriptor_free(&img->layers[i]);
    free(img->layers);
    memset(img, 0, sizeof *img);
}

static int parse_descriptor(json_t *j, struct registry_descriptor *d, const char *what,
                            struct imgfs_err *err)
{
    memset(d, 0, sizeof *d);
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    const char *dg = json_string_value(json_object_get(j, "digest"));
    json_t *size = json_object_get(j, "size");
    if (!json_is_object(j))
        return err_set(err, EPROTO, "%s is not a descriptor object", what);
    if (!dg)
        return err_set(err, EPROTO, "%s has no digest", what);
    if (strncmp(dg, "sha256:", 7) || digest_parse(dg, false, &d->digest) < 0)
        return err_set(err, EPROTO, "%s: unsupported or malformed digest `%.80s`", what, dg);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return err_set(err, EPROTO, "%s has no valid size", what);
    d->size = (uint64_t)json_integer_value(size);
    d->media_type = xstrdup(mt ? mt : "");
    json_t *ann = json_object_get(j, "annotations");
    if (json_is_object(ann) && json_object_size(ann)) {
        d->annotations = xcalloc(2 * json_object_size(ann) + 1, sizeof(char *));
        size_t k = 0;
        const char *key;
        json_t *v;
        json_object_foreach(ann, key, v)
        {
            if (!json_is_string(v))
                continue;
            d->annotations[k++] = xstrdup(key);
            d->annotations[k++] = xstrdup(json_string_value(v));
        }
    }
    return 0;
}

int registry_parse_manifest(const char *json, size_t len, struct registry_image *out,
                            struct imgfs_err *err)
{
    json_error_t je;
    cleanup_json json_t *j = json_loadb(json, len, 0, &je);
    if (!json_is_object(j))
        return err_set(err, EPROTO, "the manifest is not a JSON object: %s", je.text);
    json_t *sv = json_object_get(j, "schemaVersion");
    if (json_integer_value(sv) != 2)
        return err_set(err, EPROTO,
                       "the manifest's schemaVersion is not 2 (schema 1 manifests "
                       "are not supported)");
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    if (mt && strcmp(mt, MT_OCI_MANIFEST) && strcmp(mt, MT_DOCKER_MANIFEST))
        return err_set(err, EPROTO, "unsupported manifest media type `%.100s`", mt);
    if (parse_descriptor(json_object_get(j, "config"), &out->config, "the manifest's config", err) <
        0)
        return -1;
    if (strcmp(out->config.media_type, MT_OCI_CONFIG) &&
        strcmp(out->config.media_type, MT_DOCKER_CONFIG))
        return err_set(err, EPROTO,
                       "config media type `%.100s` is not an image config (an "
                       "artifact?)",
                       out->config.media_type);
    json_t *layers = json_object_get(j, "layers");
    if (!json_is_array(layers))
        return err_set(err, EPROTO, "the manifest has no layers array");
    size_t n = json_array_size(layers);
    if (n > 1000)
        return err_set(err, EPROTO, "the manifest lists %zu layers (at most 1000)", n);
    out->layers = xcalloc(n + 1, sizeof *out->layers);
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "layer %zu of the manifest", i + 1);
        if (parse_descriptor(json_array_get(layers, i), &out->layers[i], what, err) < 0)
            return -1;
        out->n_layers = i + 1;
        if (!oci_layer_media_type_known(out->layers[i].media_type))
            return err_set(err, EPROTO, "%s: unsupported media type `%.100s`", what,
                           out->layers[i].media_type);
    }
    return 0;
}

int registry_pick_platform(const char *json, size_t len, const char *platform,
                           struct registry_descriptor *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    char os[64] = "linux", arch[64] = "amd64", variant[64] = "";
    if (platform && *platform) {
        int n = sscanf(platform, "%63[^/]/%63[^/]/%63s", os, arch, variant);
        if (n < 2)
            return err_set(err, EINVAL, "bad platform `%s` (OS/ARCH[/VARIANT])", platform);
    }
    json_error_t je;
    cleanup_json json_t *j = json_loadb(json, len, 0, &je);
    json_t *ms = json_object_get(j, "manifests");
    if (!json_is_array(ms))
        return err_set(err, EPROTO, "the index has no manifests array");
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m)
    {
        json_t *p = json_object_get(m, "platform");
        const char *ref_type = json_string_value(
            json_object_get(json_object_get(m, "annotations"), "vnd.docker.reference.type"));
        if (ref_type && !strcmp(ref_type, "attestation-manifest"))
            continue;
        const char *mos = json_string_value(json_object_get(p, "os"));
        const char *march = json_string_value(json_object_get(p, "architecture"));
        const char *mvar = json_string_value(json_object_get(p, "variant"));
        if (!mos || !march || strcmp(mos, os) || strcmp(march, arch))
            continue;
        if (*variant && (!mvar || strcmp(mvar, variant)))
            continue;
        char what[64];
        snprintf(what, sizeof what, "manifest %zu of the index", i + 1);
        if (parse_descriptor(m, out, what, err) < 0)
            return -1;
        return 0;
    }
    return err_set(err, ENOENT, "no manifest for %s/%s%s%s in the index", os, arch,
                   *variant ? "/" : "", variant);
}

int registry_get_document(struct registry_client *c, const struct digest *d, size_t limit,
                          unsigned timeout_ms, struct buf *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    cleanup_free char *url = xasprintf("/v2/%s/blobs/%s", c->repo, ds);
    cleanup_free char *what = xasprintf("getting blob %s", ds);
    struct request rq = {.method = "GET", .url = url, .limit = limit};
    struct response rs;
    if (perform(c, &rq, &rs, deadline_of(c, timeout_ms), what, err) < 0)
        return -1;
    int ret = 0;
    struct digest got;
    if (rs.status != 200) {
        ret = status_error(c, &rs, what, err);
    } else {
        digest_of(rs.body.data, rs.body.len, &got);
        if (!digest_equal(&got, d))
            ret = err_set(err, EBADMSG, "%s: %s: the bytes served do not have that digest", c->host,
                          what);
    }
    if (ret == 0) {
        *out = rs.body;
        memset(&rs.body, 0, sizeof rs.body);
    }
    response_free(&rs);
    return ret;
}

int registry_resolve(struct registry_client *c, const char *reference, const char *platform,
                     unsigned timeout_ms, struct registry_image *out, struct imgfs_err *err)
{
    memset(out, 0, sizeof *out);
    struct registry_document top;
    if (registry_get_manifest(c, reference, timeout_ms, &top, err) < 0)
        return -1;
    if (!strcmp(top.media_type, MT_OCI_INDEX) || !strcmp(top.media_type, MT_DOCKER_LIST)) {
        out->index = top;
        struct registry_descriptor pick;
        if (registry_pick_platform((const char *)top.body.data, top.body.len, platform, &pick,
                                   err) < 0) {
            registry_image_free(out);
            return err_ctx(err, "%s/%s:%s", c->host, c->repo, reference);
        }
        char ds[DIGEST_STR_SIZE];
        digest_str(&pick.digest, ds);
        descriptor_free(&pick);
        if (registry_get_manifest(c, ds, timeout_ms, &out->manifest, err) < 0) {
            registry_image_free(out);
            return -1;
        }
    } else {
        out->manifest = top;
    }
    const char *mt = out->manifest.media_type;
    if (strcmp(mt, MT_OCI_MANIFEST) && strcmp(mt, MT_DOCKER_MANIFEST)) {
        registry_image_free(out);
        return err_set(err, EPROTO, "%s/%s:%s: unsupported manifest media type `%.100s`", c->host,
                       c->repo, reference, mt);
    }
    if (registry_parse_manifest((const char *)out->manifest.body.data, out->manifest.body.len, out,
                                err) < 0) {
        registry_image_free(out);
        return err_ctx(err, "%s/%s:%s", c->host, c->repo, reference);
    }
    return 0;
}

/* ---- blobs ---- */

struct skip_sink {
    registry_sink_fn sink;
    void *ctx;
    uint64_t skip;   /* bytes to drop first (a server that ignored Range) */
    uint64_t passed; /* bytes handed on */
    uint64_t limit;  /* 0 = none */
    bool over;
};

static int skip_sink_fn(void *ctx, const void *data, size_t len)
{
    struct skip_sink *s = ctx;
    const uint8_t *p = data;
    if (s->skip) {
        size_t k = len < s->skip ? len : (size_t)s->skip;
        s->skip -= k;
        p += k;
        len -= k;
    }
    if (!len)
        return 0;
    if (s->limit && s->passed + len > s->limit) {
        s->over = true;
        return 1;
    }
    s->passed += len;
    return s->sink(s->ctx, p, len);
}

int registry_get_blob(struct registry_client *c, const struct digest *d, uint64_t offset,
                      uint64_t expected_size, registry_sink_fn sink, void *ctx, unsigned timeout_ms,
                      struct imgfs_err *err)
{
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    cleanup_free char *url = xasprintf("/v2/%s/blobs/%s", c->repo, ds);
    cleanup_free char *what = xasprintf("getting blob %s", ds);
    uint64_t deadline = deadline_of(c, timeout_ms);
    uint64_t pos = offset;
    unsigned resumes = 0;
    for (;;) {
        char range[48];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)pos);
        struct skip_sink ss = {
            .sink = sink, .ctx = ctx, .limit = expected_size ? expected_size - pos : 0};
        if (expected_size && pos >= expected_size)
            return pos == expected_size ? 0 : err_set(err, EINVAL, "offset past the blob's end");
        struct request rq = {.method = "GET",
                             .url = url,
                             .range = pos ? range : NULL,
                             .range_start = pos,
                             .skip_out = &ss.skip,
                             .sink = skip_sink_fn,
                             .sink_ctx = &ss,
                             .progress_blob = d};
        struct response rs;
        struct imgfs_err e = {0};
        int rc = perform(c, &rq, &rs, deadline, what, &e);
        if (ss.over) {
            response_free(&rs);
            return err_set(err, EPROTO, "%s: %s: more bytes than its size (%llu)", c->host, what,
                           (unsigned long long)expected_size);
        }
        if (rc < 0 && (!rs.delivered || rs.sink_rc || rs.bad_range || rs.too_big)) {
            response_free(&rs);
            *err = e;
            return -1;
        }
        if (rc == 0 && rs.status != 200 && rs.status != 206) {
            int r = status_error(c, &rs, what, err);
            response_free(&rs);
            return r;
        }
        pos += ss.passed;
        response_free(&rs);
        if (rc == 0)
            return 0;
        /* the transfer broke after delivering bytes: resume from where it stopped */
        if (++resumes > c->max_retries || (deadline && now_ms() >= deadline)) {
            *err = e;
            return err_ctx(err, "after %u resumed attempts", resumes - 1);
        }
    }
}

/* The bytes of one range into a caller buffer: [want, want + len) of the blob. */
struct window_sink {
    uint8_t *buf;
    size_t len, got;
    uint64_t skip;
};

static int window_sink_fn(void *ctx, const void *data, size_t len)
{
    struct window_sink *w = ctx;
    const uint8_t *p = data;
    if (w->skip) {
        size_t k = len < w->skip ? len : (size_t)w->skip;
        w->skip -= k;
        p += k;
        len -= k;
    }
    size_t room = w->len - w->got;
    size_t k = len < room ? len : room;
    memcpy(w->buf + w->got, p, k);
    w->got += k;
    /* a server that ignored the Range sends the rest of the blob: stop once the window is full */
    return w->got == w->len && len > k ? 2 : 0;
}

int registry_get_range(struct registry_client *c, const struct digest *d, int64_t offset,
                       size_t len, void *buf, uint64_t *blob_size, unsigned timeout_ms,
                       struct imgfs_err *err)
{
    if (!len)
        return 0;
    char ds[DIGEST_STR_SIZE], range[64];
    digest_str(d, ds);
    if (offset >= 0)
        snprintf(range, sizeof range, "%lld-%llu", (long long)offset,
                 (unsigned long long)offset + len - 1);
    else
        snprintf(range, sizeof range, "-%zu", len);
    cleanup_free char *url = xasprintf("/v2/%s/blobs/%s", c->repo, ds);
    cleanup_free char *what = xasprintf("getting bytes %s of blob %s", range, ds);
    uint64_t deadline = deadline_of(c, timeout_ms);
    unsigned attempt = 0;
    for (;;) {
        struct window_sink w = {.buf = buf, .len = len};
        struct request rq = {.method = "GET",
                             .url = url,
                             .range = range,
                             .range_start = offset >= 0 ? (uint64_t)offset : 0,
                             .range_suffix = offset<0, .skip_out = offset> 0 ? &w.skip : NULL,
                             .sink = window_sink_fn,
                             .sink_ctx = &w};
        struct response rs;
        struct imgfs_err e = {0};
        int rc = perform(c, &rq, &rs, deadline, what, &e);
        bool full_stop = rc < 0 && rs.sink_rc == 2;
        if (rc < 0 && !full_stop) {
            bool again = rs.delivered && !rs.sink_rc && !rs.bad_range &&
                         ++attempt <= c->max_retries && !(deadline && now_ms() >= deadline);
            response_free(&rs);
            if (again)
                continue;
            *err = e;
            return -1;
        }
        int ret = 0;
        if (rs.status == 206) {
            uint64_t first, last, total;
            if (parse_content_range(rs.content_range, &first, &last, &total) < 0 ||
                (offset >= 0 && first != (uint64_t)offset))
                ret = err_set(err, EPROTO, "%s: %s: wrong Content-Range `%s`", c->host, what,
                              rs.content_range ? rs.content_range : "");
            else if (blob_size)
                *blob_size = total;
        } else if (rs.status == 200) {
            if (offset < 0) {
                /* the whole blob for a suffix: only a full blob small enough to have been kept
                 * would do; ask again with an explicit range now that the size is known */
                if (rs.content_length < (int64_t)len) {
                    ret = err_set(err, EPROTO, "%s: %s: the blob is shorter than %zu bytes",
                                  c->host, what, len);
                } else {
                    int64_t size = rs.content_length;
                    response_free(&rs);
                    if (blob_size)
                        *blob_size = (uint64_t)size;
                    return registry_get_range(c, d, size - (int64_t)len, len, buf, NULL, timeout_ms,
                                              err);
                }
            } else if (blob_size && rs.content_length >= 0) {
                *blob_size = (uint64_t)rs.content_length;
            }
        } else if (rs.status == 416) {
            ret = err_set(err, ERANGE, "%s: %s: the range is outside the blob", c->host, what);
        } else {
            ret = status_error(c, &rs, what, err);
        }
        if (ret == 0 && w.got != len && offset >= 0)
            ret = err_set(err, EPROTO, "%s: %s: %zu bytes served instead of %zu", c->host, what,
                          w.got, len);
        if (ret == 0 && offset < 0 && w.got != len)
            ret = err_set(err, EPROTO, "%s: %s: %zu bytes served instead of %zu", c->host, what,
                          w.got, len);
        response_free(&rs);
        return ret;
    }
}

/* Parse a multipart/byteranges body into the ranges asked for. -1 when it is not one. */
static int parse_multipart(const struct response *rs, struct registry_range *ranges, size_t n)
{
    const char *ct = rs->content_type;
    if (!ct || strncasecmp(ct, "multipart/byteranges", 20))
        return -1;
    const char *b = strcasestr(ct, "boundary=");
    if (!b)
        return -1;
    b += 9;
    char boundary[128];
    size_t bl = 0;
    if (*b == '"')
        b++;
    while (b[bl] && b[bl] != '"' && b[bl] != ';' && bl < sizeof boundary - 3)
        bl++;
    snprintf(boundary, sizeof boundary, "--%.*s", (int)bl, b);
    bl = strlen(boundary);
    const char *p = (const char *)rs->body.data, *end = p + rs->body.len;
    size_t filled = 0;
    bool *done = xcalloc(n, 1);
    for (;;) {
        const char *m = memmem(p, (size_t)(end - p), boundary, bl);
        if (!m)
            break;
        p = m + bl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break;
        const char *hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hdr_end)
            break;
        uint64_t first = 0, last = 0, total = 0;
        bool have = false;
        for (const char *h = p; h < hdr_end;) {
            const char *eol = memmem(h, (size_t)(hdr_end + 2 - h), "\r\n", 2);
            if (!eol)
                break;
            if (eol - h > 14 && !strncasecmp(h, "Content-Range:", 14)) {
                char line[128];
                size_t ll = (size_t)(eol - h - 14);
                snprintf(line, sizeof line, "%.*s", (int)(ll < 127 ? ll : 127), h + 14);
                char *v = line;
                while (*v == ' ')
                    v++;
                have = parse_content_range(v, &first, &last, &total) == 0;
            }
            h = eol + 2;
        }
        const char *data = hdr_end + 4;
        uint64_t dl = last - first + 1;
        if (!have || (uint64_t)(end - data) < dl)
            break;
        for (size_t i = 0; i < n; i++) {
            /* a part may cover one range exactly or (coalesced by the server) several */
            if (!done[i] && ranges[i].offset >= first &&
                ranges[i].offset + ranges[i].len <= last + 1) {
                memcpy(ranges[i].buf, data + (ranges[i].offset - first), ranges[i].len);
                done[i] = true;
                filled++;
            }
        }
        p = data + dl;
    }
    free(done);
    return filled == n ? 0 : -1;
}

int registry_get_ranges(struct registry_client *c, const struct digest *d,
                        struct registry_range *ranges, size_t n, unsigned timeout_ms,
                        struct imgfs_err *err)
{
    pthread_mutex_lock(&c->lock);
    bool broken = c->multirange_broken;
    pthread_mutex_unlock(&c->lock);
    uint64_t deadline = deadline_of(c, timeout_ms);
    if (n > 1 && !broken) {
        struct buf spec = {0};
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            char part[64];
            snprintf(part, sizeof part, "%s%llu-%llu", i ? "," : "",
                     (unsigned long long)ranges[i].offset,
                     (unsigned long long)(ranges[i].offset + ranges[i].len - 1));
            buf_append(&spec, part, strlen(part));
            total += ranges[i].len;
        }
        buf_append(&spec, "", 1);
        char ds[DIGEST_STR_SIZE];
        digest_str(d, ds);
        cleanup_free char *url = xasprintf("/v2/%s/blobs/%s", c->repo, ds);
        cleanup_free char *what = xasprintf("getting %zu ranges of blob %s", n, ds);
        struct request rq = {.method = "GET",
                             .url = url,
                             .range = (const char *)spec.data,
                             .limit = total + 256 * n + 4096};
        struct response rs;
        struct imgfs_err e = {0};
        int rc = perform(c, &rq, &rs, deadline, what, &e);
        buf_free(&spec);
        if (rc == 0 && rs.status == 206 && parse_multipart(&rs, ranges, n) == 0) {
            response_free(&rs);
            return 0;
        }
        bool transport = rc < 0 && !rs.too_big;
        if (rc == 0 && rs.status != 206 && rs.status != 200 && rs.status != 400 &&
            rs.status != 416) {
            int r = status_error(c, &rs, what, err);
            response_free(&rs);
            return r;
        }
        response_free(&rs);
        if (transport) {
            *err = e;
            return -1;
        }
        /* 400, 416, a full 200 (cut short by the limit), or a body that is not multipart */
        pthread_mutex_lock(&c->lock);
        c->multirange_broken = true;
        pthread_mutex_unlock(&c->lock);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned left = 0;
        if (deadline) {
            uint64_t now = now_ms();
            if (now >= deadline)
                return err_set(err, ETIMEDOUT, "%s: the time budget ran out", c->host);
            left = (unsigned)(deadline - now);
        }
        if (registry_get_range(c, d, (int64_t)ranges[i].offset, ranges[i].len, ranges[i].buf, NULL,
                               left, err) < 0)
            return -1;
    }
    return 0;
}

int registry_blob_exists(struct registry_client *c, const struct digest *d, uint64_t *size,
                         unsigned timeout_ms, struct imgfs_err *err)
{
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    cleanup_free char *url = xasprintf("/v2/%s/blobs/%s", c->repo, ds);
    cleanup_free char *what = xasprintf("checking blob %s", ds);
    struct request rq = {.method = "HEAD", .url = url, .limit = ERROR_BODY_LIMIT};
    struct response rs;
    if (perform(c, &rq, &rs, deadline_of(c, timeout_ms), what, err) < 0)
        return -1;
    int ret;
    if (rs.status == 200) {
        ret = 1;
        if (size)
            *size = rs.content_length >= 0 ? (uint64_t)rs.content_length : 0;
    } else if (rs.status == 404) {
        ret = 0;
    } else {
        ret = status_error(c, &rs, what, err);
    }
    response_free(&rs);
    return ret;
}

/* Check the digest a registry says it stored. */
static int check_stored_digest(struct registry_client *c, const struct response *rs,
                               const struct digest *d, const char *what, struct imgfs_err *err)
{
    struct digest got;
    if (rs->docker_digest && *rs->docker_digest &&
        (digest_parse(rs->docker_digest, false, &got) < 0 || !digest_equal(&got, d)))
        return err_set(err, EBADMSG, "%s: %s: the registry stored digest %s", c->host, what,
                       rs->docker_digest);
    return 0;
}

/* The upload URL from a 202's Location, with `extra` query parameters appended. */
static char *upload_url(struct registry_client *c, const char *location, const char *extra)
{
    cleanup_free char *abs = absolute_url(c, location);
    if (!extra)
        return xstrdup(abs);
    return xasprintf("%s%c%s", abs, strchr(abs, '?') ? '&' : '?', extra);
}

static int upload_once(struct registry_client *c, const struct digest *d, int fd, uint64_t size,
                       const char *mount_from, size_t chunk, bool *mounted, uint64_t deadline,
                       struct imgfs_err *err)
{
    char ds[DIGEST_STR_SIZE];
    digest_str(d, ds);
    cleanup_free char *what = xasprintf("uploading blob %s", ds);
    cleanup_free char *post = NULL;
    if (mount_from) {
        cleanup_free char *from = url_escape(mount_from);
        post = xasprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", c->repo, ds, from);
    } else {
        post = xasprintf("/v2/%s/blobs/uploads/", c->repo);
    }
    struct request rq = {.method = "POST", .url = post, .limit = ERROR_BODY_LIMIT};
    struct response rs;
    if (perform(c, &rq, &rs, deadline, what, err) < 0)
        return -1;
    if (mount_from && rs.status == 201) {
        int r = check_stored_digest(c, &rs, d, what, err);
        response_free(&rs);
        if (r == 0 && mounted)
            *mounted = true;
        return r;
    }
    if (mount_from && rs.status != 202) {
        /* the spec says a registry that cannot mount answers 202 with an upload session; some
         * refuse the mount outright (no such source, no access to it): upload it then */
        response_free(&rs);
        return upload_once(c, d, fd, size, NULL, chunk, mounted, deadline, err);
    }
    if (rs.status != 202 || !rs.location) {
        int r = rs.status == 202
                    ? err_set(err, EPROTO, "%s: %s: no Location for the upload", c->host, what)
                    : status_error(c, &rs, what, err);
        response_free(&rs);
        return r;
    }
    cleanup_free char *location = xstrdup(rs.location);
    response_free(&rs);
    uint64_t off = 0;
    if (size > chunk) {
        while (off < size) {
            uint64_t n = size - off < chunk ? size - off : chunk;
            char cr[64];
            snprintf(cr, sizeof cr, "%llu-%llu", (unsigned long long)off,
                     (unsigned long long)(off + n - 1));
            cleanup_free char *url = upload_url(c, location, NULL);
            struct request pr = {.method = "PATCH",
                                 .url = url,
                                 .content_type = "application/octet-stream",
                                 .content_range = cr,
                                 .has_body = true,
                                 .body_fd = fd,
                                 .body_offset = off,
                                 .body_len = n,
                                 .progress_blob = d,
                                 .limit = ERROR_BODY_LIMIT};
            if (perform(c, &pr, &rs, deadline, what, err) < 0)
                return -1;
            if (rs.status != 202 || !rs.location) {
                int r = status_error(c, &rs, what, err);
                response_free(&rs);
                return r;
            }
            free(location);
            location = xstrdup(rs.location);
            response_free(&rs);
            off += n;
        }
    }
    cleanup_free char *dparam = xasprintf("digest=%s", ds);
    cleanup_free char *url = upload_url(c, location, dparam);
    struct request put = {.method = "PUT",
                          .url = url,
                          .content_type = "application/octet-stream",
                          .has_body = off < size,
                          .body_fd = fd,
                          .body_offset = off,
                          .body_len = size - off,
                          .progress_blob = d,
                          .limit = ERROR_BODY_LIMIT};
    if (perform(c, &put, &rs, deadline, what, err) < 0)
        return -1;
    int r = rs.status == 201 ? check_stored_digest(c, &rs, d, what, err)
                             : status_error(c, &rs, what, err);
    response_free(&rs);
    return r;
}

int registry_put_blob(struct registry_client *c, const struct digest *d, int fd, uint64_t size,
                      const char *mount_from, size_t chunk_size, bool *mounted, unsigned timeout_ms,
                      struct imgfs_err *err)
{
    if (mounted)
        *mounted = false;
    pthread_mutex_lock(&c->lock);
    if (!c->push_scope) {
        /* tokens for pulling do not allow pushing: ask for a new one at the next challenge */
        c->push_scope = true;
        free(c->authorization);
        c->authorization = NULL;
        c->auth_generation++;
    }
    pthread_mutex_unlock(&c->lock);
    uint64_t deadline = deadline_of(c, timeout_ms);
    size_t chunk = chunk_size ? chunk_size : DEFAULT_CHUNK;
    /* a failed upload session is started again from the beginning (a registry's upload state
     * after a broken PATCH is not reliably resumable) */
    for (unsigned attempt = 0;; attempt++) {
        struct imgfs_err e = {0};
        if (upload_once(c, d, fd, size, mount_from, chunk, mounted, deadline, &e) == 0)
            return 0;
        if (e.code != EIO || attempt + 1 >= c->max_retries ||
            !backoff(attempt + 1, NULL, deadline)) {
            *err = e;
            return -1;
        }
    }
}

int registry_put_manifest(struct registry_client *c, const char *reference, const char *media_type,
                          const void *body, size_t len, unsigned timeout_ms, struct imgfs_err *err)
{
    cleanup_free char *url = xasprintf("/v2/%s/manifests/%s", c->repo, reference);
    cleanup_free char *what = xasprintf("putting manifest %s:%s", c->repo, reference);
    struct request rq = {.method = "PUT",
                         .url = url,
                         .content_type = media_type,
                         .has_body = true,
                         .body = body,
                         .body_len = len,
                         .limit = ERROR_BODY_LIMIT};
    struct response rs;
    if (perform(c, &rq, &rs, deadline_of(c, timeout_ms), what, err) < 0)
        return -1;
    struct digest d;
    digest_of(body, len, &d);
    int r = rs.status == 201 ? check_stored_digest(c, &rs, &d, what, err)
                             : status_error(c, &rs, what, err);
    response_free(&rs);
    return r;
}

/* ---- credentials ---- */

char *registry_auth_path(const char *auth_file)
{
    if (auth_file && *auth_file)
        return xstrdup(auth_file);
    const char *env = getenv("REGISTRY_AUTH_FILE");
    if (env && *env)
        return xstrdup(env);
    return config_path("auth.json");
}

static int auth_load(const char *path, json_t **out, struct imgfs_err *err)
{
    struct buf b = {0};
    if (read_file(path, 4 << 20, &b, err) < 0) {
        if (err->code == ENOENT) {
            err_clear(err);
            *out = json_object();
            return 0;
        }
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)b.data, b.len, 0, &je);
    buf_free(&b);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(err, EINVAL, "%s: not a JSON object (line %d: %s)", path, je.line, je.text);
    }
    *out = j;
    return 0;
}

static const char *auth_key_docker_io = "https://index.docker.io/v1/";

int registry_auth_get(const char *auth_file, const char *host, char **user, char **password,
                      struct imgfs_err *err)
{
    *user = *password = NULL;
    cleanup_free char *path = registry_auth_path(auth_file);
    cleanup_json json_t *j = NULL;
    if (auth_load(path, &j, err) < 0)
        return -1;
    json_t *auths = json_object_get(j, "auths");
    json_t *e = json_object_get(auths, host);
    if (!e && !strcmp(host, REF_DEFAULT_DOMAIN))
        e = json_object_get(auths, auth_key_docker_io);
    const char *b64 = json_string_value(json_object_get(e, "auth"));
    if (!b64 || !*b64)
        return 0;
    size_t n = strlen(b64);
    cleanup_free unsigned char *dec = xmalloc(n + 1);
    int dl = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
    if (dl < 0)
        return err_set(err, EINVAL, "%s: the credentials for %s are not base64", path, host);
    /* EVP_DecodeBlock counts the padding as zero bytes */
    while (n && b64[n - 1] == '=') {
        n--;
        dl--;
    }
    dec[dl] = 0;
    char *colon = memchr(dec, ':', (size_t)dl);
    if (!colon)
        return err_set(err, EINVAL, "%s: the credentials for %s are not user:password", path, host);
    *user = strndup((char *)dec, (size_t)(colon - (char *)dec));
    *password = xstrdup(colon + 1);
    explicit_bzero(dec, (size_t)dl);
    return 1;
}

static int auth_save(const char *path, json_t *j, struct imgfs_err *err)
{
    cleanup_free char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (mkdir_p(dir, 0700, err) < 0)
            return -1;
    }
    cleanup_free char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!text)
        return err_set(err, ENOMEM, "writing %s", path);
    size_t len = strlen(text);
    int r = write_file_atomic(path, text, len, 0600, err);
    explicit_bzero(text, len);
    return r;
}

int registry_auth_set(const char *auth_file, const char *host, const char *user,
                      const char *password, struct imgfs_err *err)
{
    cleanup_free char *path = registry_auth_path(auth_file);
    cleanup_json json_t *j = NULL;
    if (auth_load(path, &j, err) < 0)
        return -1;
    json_t *auths = json_object_get(j, "auths");
    if (!json_is_object(auths)) {
        auths = json_object();
        json_object_set_new(j, "auths", auths);
    }
    cleanup_free char *up = xasprintf("%s:%s", user, password);
    cleanup_free char *b64 = base64(up);
    explicit_bzero(up, strlen(up));
    json_object_set_new(auths, host, json_pack("{s:s}", "auth", b64));
    explicit_bzero(b64, strlen(b64));
    return auth_save(path, j, err);
}

int registry_auth_remove(const char *auth_file, const char *host, struct imgfs_err *err)
{
    cleanup_free char *path = registry_auth_path(auth_file);
    cleanup_json json_t *j = NULL;
    if (auth_load(path, &j, err) < 0)
        return -1;
    json_t *auths = json_object_get(j, "auths");
    int removed = json_object_del(auths, host) == 0;
    if (!strcmp(host, REF_DEFAULT_DOMAIN))
        removed |= json_object_del(auths, auth_key_docker_io) == 0;
    if (!removed)
        return 0;
    return auth_save(path, j, err) < 0 ? -1 : 1;
}
