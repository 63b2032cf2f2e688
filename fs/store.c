#include "store.h"
#include "reference.h"

#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#define SCHEMA_VERSION "1"
/* Only address space: the data file grows as it is written. Overridable with IMGFS_MAP_SIZE. */
#define DEFAULT_MAP_SIZE (1ull << 40)
/* Content-addressed records are committed in transactions of about this many bytes. */
#define BATCH_BYTES (64u << 20)

enum { DB_CHUNK, DB_BLOB, DB_LAYER, DB_VIEW, DB_IMAGE, DB_REMOTE, DB_META, DB_CACHE, DB_COUNT };
static const char *const db_names[DB_COUNT] = {"chunk", "blob",   "layer", "view",
                                               "image", "remote", "meta",  "buildcache"};

struct store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    char *root;
    int lock_fd;      /* ROOT/lock: shared by batches, exclusive by gc */
    unsigned batches; /* open batches of this process (under mu): the lock is one per fd, so it
                         is taken by the first and released by the last */
    store_fetch_fn fetch;
    void *fetch_ctx;
    pthread_mutex_t mu;
    bool no_cache_db; /* opened read-only before any build made the `buildcache` database */
};

struct store_read {
    struct store *s;
    MDB_txn *txn;
    /* snapshots begun after a fetch: a reply may hold pointers into txn and each of these, so
     * none is renewed or ended before store_read_end */
    MDB_txn **later;
    size_t n_later;
};

struct pending_name {
    char *name;
    struct digest manifest;
    bool remove;
};

struct store_batch {
    struct store *s;
    MDB_txn *txn;
    size_t pending;
    bool wrote; /* some put added a record */
    struct pending_name *names;
    size_t n_names;
};

struct store_lease {
    int fd;
    char *path;
};

static int mdb_fail(struct imgfs_err *err, int rc, const char *what)
{
    int code = rc == MDB_MAP_FULL ? ENOSPC : rc > 0 && rc < 1000 ? rc : EIO;
    if (rc == MDB_MAP_FULL)
        return err_set(err, ENOSPC, "%s: the store's map is full (raise IMGFS_MAP_SIZE, in bytes)",
                       what);
    return err_set(err, code, "%s: %s", what, mdb_strerror(rc));
}

/* LMDB reports a write cut short by a full disk as EIO; say what really happened. */
static int write_fail(struct store *s, struct imgfs_err *err, int rc, const char *what)
{
    struct statvfs fs;
    if ((rc == EIO || rc == ENOSPC) && statvfs(s->root, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < 2 * (uint64_t)BATCH_BYTES)
        return err_set(err, ENOSPC, "%s: no space left on the device of `%s` (%llu bytes free)",
                       what, s->root, (unsigned long long)fs.f_bavail * fs.f_frsize);
    return mdb_fail(err, rc, what);
}

static MDB_val val_of(const void *data, size_t len)
{
    return (MDB_val){.mv_size = len, .mv_data = (void *)data};
}

int store_open(const char *root, unsigned flags, struct store **out, struct imgfs_err *err)
{
    bool readonly = flags & STORE_READONLY;
    if (!readonly) {
        if (mkdir_p(root, 0700, err) < 0)
            return err_ctx(err, "creating store `%s`", root);
        cleanup_free char *leases = xasprintf("%s/leases", root);
        cleanup_free char *tmp = xasprintf("%s/tmp", root);
        if (mkdir_p(leases, 0700, err) < 0 || mkdir_p(tmp, 0700, err) < 0)
            return err_ctx(err, "creating store `%s`", root);
    }
    cleanup_free char *data = xasprintf("%s/data.mdb", root);
    cleanup_free char *lock = xasprintf("%s/lock", root);
    if (readonly && access(data, F_OK) < 0)
        return err_set(err, ENOENT, "no store at `%s` (import an image first)", root);

    struct store *s = xcalloc(1, sizeof *s);
    s->root = xstrdup(root);
    s->lock_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    int rc = mdb_env_create(&s->env);
    if (rc) {
        mdb_fail(err, rc, "creating LMDB environment");
        goto fail;
    }
    uint64_t map = DEFAULT_MAP_SIZE;
    const char *m = getenv("IMGFS_MAP_SIZE");
    if (m && *m)
        map = strtoull(m, NULL, 0);
    mdb_env_set_mapsize(s->env, map);
    mdb_env_set_maxdbs(s->env, DB_COUNT + 2);
    mdb_env_set_maxreaders(s->env, 1024);
    /* NOTLS: FUSE worker threads and readers are not tied one-to-one.
     * NOMETASYNC: data pages are synced at every commit, the meta page at the next one; LMDB
     * documents this keeps the database consistent, a crash may only undo the last commit. */
    unsigned envflags = MDB_NOTLS | MDB_NOMETASYNC | (readonly ? MDB_RDONLY : 0);
    rc = mdb_env_open(s->env, root, envflags, 0600);
    if (rc) {
        mdb_fail(err, rc, "opening store");
        err_ctx(err, "`%s`", root);
        goto fail;
    }
    /* A process killed inside a read transaction (a mount daemon under kill -9) leaves its reader
     * slot behind, and that pins every page newer than its snapshot: free them. */
    int stale;
    mdb_reader_check(s->env, &stale);
    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
    if (rc) {
        mdb_fail(err, rc, "opening store databases");
        goto fail;
    }
    for (int i = 0; i < DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], readonly ? 0 : MDB_CREATE, &s->dbi[i]);
        if (rc == MDB_NOTFOUND && readonly && i == DB_CACHE) {
            /* a store no build has written to yet: its (empty) build cache is made by the
             * first writer; reads of it find nothing */
            s->no_cache_db = true;
            continue;
        }
        if (rc) {
            mdb_txn_abort(txn);
            mdb_fail(err, rc, "opening store database");
            err_ctx(err, "`%s` in `%s`", db_names[i], root);
            goto fail;
        }
    }
    MDB_val key = val_of("schema", 6), val;
    rc = mdb_get(txn, s->dbi[DB_META], &key, &val);
    if (rc == MDB_NOTFOUND && !readonly) {
        val = val_of(SCHEMA_VERSION, 1);
        rc = mdb_put(txn, s->dbi[DB_META], &key, &val, 0);
    } else if (rc == 0 && (val.mv_size != 1 || memcmp(val.mv_data, SCHEMA_VERSION, 1))) {
        mdb_txn_abort(txn);
        err_set(err, EPROTO, "store `%s` has schema %.*s; this imgfs knows schema %s", root,
                (int)val.mv_size, (char *)val.mv_data, SCHEMA_VERSION);
        goto fail;
    }
    if (rc && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        mdb_fail(err, rc, "reading store schema");
        goto fail;
    }
    /* commit even a read-only txn: aborting it would close the dbi handles it opened */
    rc = mdb_txn_commit(txn);
    if (rc) {
        mdb_fail(err, rc, "initialising store");
        goto fail;
    }
    s->lock_fd = open(lock, (readonly ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 && !readonly) {
        err_sys(err, errno, "opening `%s`", lock);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->mu);
    free(s->root);
    free(s);
}

const char *store_root(const struct store *s)
{
    return s->root;
}

static int txn_begin(struct store *s, unsigned flags, MDB_txn **txn, struct imgfs_err *err);
static int batch_flush(struct store_batch *b, struct imgfs_err *err);

void store_set_fetcher(struct store *s, store_fetch_fn fn, void *ctx)
{
    s->fetch = fn;
    s->fetch_ctx = ctx;
}

bool store_has_fetcher(const struct store *s)
{
    return s->fetch != NULL;
}

bool store_has_remote(struct store *s)
{
    MDB_txn *txn;
    struct imgfs_err ignored;
    if (txn_begin(s, MDB_RDONLY, &txn, &ignored) < 0)
        return false;
    MDB_stat st;
    bool any = mdb_stat(txn, s->dbi[DB_REMOTE], &st) == 0 && st.ms_entries > 0;
    mdb_txn_abort(txn);
    return any;
}

int store_chunks_ensure(struct store *s, const struct digest *chunks, size_t n,
                        struct imgfs_err *err)
{
    if (!s->fetch || !n)
        return 0;
    MDB_txn *txn;
    if (txn_begin(s, MDB_RDONLY, &txn, err) < 0)
        return -1;
    struct digest stack[64], *absent = n <= 64 ? stack : xmalloc(n * sizeof *absent);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        MDB_val key = val_of(chunks[i].b, DIGEST_LEN), v;
        if (mdb_get(txn, s->dbi[DB_CHUNK], &key, &v) == MDB_NOTFOUND)
            absent[k++] = chunks[i];
    }
    mdb_txn_abort(txn);
    int ret = k ? s->fetch(s->fetch_ctx, s, absent, k, err) : 0;
    if (absent != stack)
        free(absent);
    return ret;
}

int store_chunks_put(struct store *s, const struct store_chunk_in *chunks, size_t n,
                     struct imgfs_err *err)
{
    if (s->lock_fd < 0)
        return err_set(err, EROFS, "store `%s` is open read-only", s->root);
    MDB_txn *txn;
    if (txn_begin(s, 0, &txn, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        MDB_val k = val_of(chunks[i].digest.b, DIGEST_LEN);
        MDB_val v = val_of(chunks[i].data, chunks[i].len);
        int rc = mdb_put(txn, s->dbi[DB_CHUNK], &k, &v, MDB_NOOVERWRITE);
        if (rc && rc != MDB_KEYEXIST) {
            mdb_txn_abort(txn);
            return write_fail(s, err, rc, "storing fetched chunks");
        }
    }
    int rc = mdb_txn_commit(txn);
    if (rc)
        return write_fail(s, err, rc, "committing fetched chunks");
    return 0;
}

/* remote values: version 1 (u8), flags (u8), blob digest, offset, end, inner (u64 LE each), size
 * (u32 LE), then the source ("host[:port]/repository") to the end */
#define REMOTE_FIXED (2 + DIGEST_LEN + 8 * 3 + 4)

int store_batch_put_remote(struct store_batch *b, const struct digest *chunk,
                           const struct store_remote *loc, struct imgfs_err *err)
{
    if (!b->txn && txn_begin(b->s, 0, &b->txn, err) < 0)
        return -1;
    size_t slen = strlen(loc->source);
    cleanup_free uint8_t *v = xmalloc(REMOTE_FIXED + slen);
    uint8_t *p = v;
    *p++ = 1;
    *p++ = loc->flags;
    memcpy(p, loc->blob.b, DIGEST_LEN);
    p += DIGEST_LEN;
    memcpy(p, &loc->offset, 8);
    memcpy(p + 8, &loc->end, 8);
    memcpy(p + 16, &loc->inner, 8);
    memcpy(p + 24, &loc->size, 4);
    memcpy(v + REMOTE_FIXED, loc->source, slen);
    MDB_val k = val_of(chunk->b, DIGEST_LEN), val = val_of(v, REMOTE_FIXED + slen);
    /* the newest location wins: the image pulled last is the likeliest to still be there */
    int rc = mdb_put(b->txn, b->s->dbi[DB_REMOTE], &k, &val, 0);
    if (rc) {
        mdb_txn_abort(b->txn);
        b->txn = NULL;
        return write_fail(b->s, err, rc, "storing a remote record");
    }
    b->pending += REMOTE_FIXED + slen + DIGEST_LEN;
    if (b->pending >= BATCH_BYTES)
        return batch_flush(b, err);
    return 0;
}

static int remote_decode(const MDB_val *v, struct store_remote *out, char *source, size_t size)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < REMOTE_FIXED || p[0] != 1 || v->mv_size - REMOTE_FIXED >= size)
        return -1;
    out->flags = p[1];
    p += 2;
    memcpy(out->blob.b, p, DIGEST_LEN);
    p += DIGEST_LEN;
    memcpy(&out->offset, p, 8);
    memcpy(&out->end, p + 8, 8);
    memcpy(&out->inner, p + 16, 8);
    memcpy(&out->size, p + 24, 4);
    size_t slen = v->mv_size - REMOTE_FIXED;
    memcpy(source, (const uint8_t *)v->mv_data + REMOTE_FIXED, slen);
    source[slen] = 0;
    out->source = source;
    if (out->end <= out->offset || memchr(source, 0, slen))
        return -1;
    return 0;
}

int store_remote_get(struct store_read *r, const struct digest *chunk, struct store_remote *out,
                     char *source, size_t source_size, struct imgfs_err *err)
{
    MDB_val k = val_of(chunk->b, DIGEST_LEN), v;
    int rc = mdb_get(r->txn, r->s->dbi[DB_REMOTE], &k, &v);
    if (rc == MDB_NOTFOUND) {
        char hex[DIGEST_HEX_LEN + 1];
        digest_hex(chunk, hex);
        return err_set(err, ENOENT, "chunk sha256:%s is not in the store and no registry has it",
                       hex);
    }
    if (rc)
        return mdb_fail(err, rc, "reading a remote record");
    if (remote_decode(&v, out, source, source_size) < 0) {
        char hex[DIGEST_HEX_LEN + 1];
        digest_hex(chunk, hex);
        return err_set(err, EIO, "the remote record of chunk sha256:%s is corrupt", hex);
    }
    return 0;
}

/* Another process grew the map: adopt its size and try again (LMDB's documented protocol). */
static int txn_begin(struct store *s, unsigned flags, MDB_txn **txn, struct imgfs_err *err)
{
    int rc = mdb_txn_begin(s->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        pthread_mutex_lock(&s->mu);
        mdb_env_set_mapsize(s->env, 0);
        pthread_mutex_unlock(&s->mu);
        rc = mdb_txn_begin(s->env, NULL, flags, txn);
    }
    if (rc)
        return mdb_fail(err, rc,
                        flags & MDB_RDONLY ? "starting a store read" : "starting a store write");
    return 0;
}

/* ---- reading ---- */

int store_read_begin(struct store *s, struct store_read **out, struct imgfs_err *err)
{
    MDB_txn *txn;
    if (txn_begin(s, MDB_RDONLY, &txn, err) < 0)
        return -1;
    struct store_read *r = xcalloc(1, sizeof *r);
    r->s = s;
    r->txn = txn;
    *out = r;
    return 0;
}

void store_read_end(struct store_read *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_later; i++)
        mdb_txn_abort(r->later[i]);
    free(r->later);
    mdb_txn_abort(r->txn);
    free(r);
}

static int get_raw(struct store_read *r, int db, const void *key, size_t klen, MDB_val *val)
{
    if (db == DB_CACHE && r->s->no_cache_db)
        return MDB_NOTFOUND;
    MDB_val k = val_of(key, klen);
    return mdb_get(r->txn, r->s->dbi[db], &k, val);
}

bool store_chunk_present(struct store_read *r, const struct digest *d)
{
    MDB_val v;
    return get_raw(r, DB_CHUNK, d->b, DIGEST_LEN, &v) == 0;
}

int store_chunk_get(struct store_read *r, const struct digest *d, bool verify, const void **data,
                    size_t *len, struct imgfs_err *err)
{
    char hex[DIGEST_HEX_LEN + 1];
    MDB_val v;
    int rc = get_raw(r, DB_CHUNK, d->b, DIGEST_LEN, &v);
    if (rc == MDB_NOTFOUND && r->s->fetch) {
        /* committed since our snapshot began (by another reader's fetch, or ours)? Look in a
         * newer snapshot: the old one stays, pointers from it may be in a reply being built */
        MDB_txn *later = r->n_later ? r->later[r->n_later - 1] : NULL;
        MDB_val key = val_of(d->b, DIGEST_LEN);
        if (later)
            rc = mdb_get(later, r->s->dbi[DB_CHUNK], &key, &v);
        if (rc == MDB_NOTFOUND) {
            if (r->s->fetch(r->s->fetch_ctx, r->s, d, 1, err) < 0) {
                digest_hex(d, hex);
                return err_ctx(err, "fetching chunk sha256:%s", hex);
            }
            if (txn_begin(r->s, MDB_RDONLY, &later, err) < 0)
                return -1;
            r->later = xrealloc(r->later, (r->n_later + 1) * sizeof *r->later);
            r->later[r->n_later++] = later;
            rc = mdb_get(later, r->s->dbi[DB_CHUNK], &key, &v);
        }
    }
    if (rc == MDB_NOTFOUND) {
        digest_hex(d, hex);
        return err_set(err, EIO, "chunk sha256:%s is not in the store", hex);
    }
    if (rc)
        return mdb_fail(err, rc, "reading chunk");
    if (verify) {
        struct digest got;
        digest_of(v.mv_data, v.mv_size, &got);
        if (!digest_equal(&got, d)) {
            digest_hex(d, hex);
            return err_set(err, EIO, "chunk sha256:%s is corrupt (its content hash differs)", hex);
        }
    }
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

static int db_of(enum store_db db)
{
    switch (db) {
    case STORE_CHUNK:
        return DB_CHUNK;
    case STORE_BLOB:
        return DB_BLOB;
    case STORE_LAYER:
        return DB_LAYER;
    case STORE_VIEW:
        return DB_VIEW;
    case STORE_CACHE:
        return DB_CACHE;
    case STORE_REMOTE:
        return DB_REMOTE;
    default:
        return DB_BLOB;
    }
}

int store_get(struct store_read *r, enum store_db db, const struct digest *key, const void **data,
              size_t *len, struct imgfs_err *err)
{
    MDB_val v;
    int rc = get_raw(r, db_of(db), key->b, DIGEST_LEN, &v);
    if (rc == MDB_NOTFOUND) {
        char hex[DIGEST_HEX_LEN + 1];
        digest_hex(key, hex);
        return err_set(err, ENOENT, "%s sha256:%s is not in the store", db_names[db_of(db)], hex);
    }
    if (rc)
        return mdb_fail(err, rc, "reading store");
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

char *store_name_normalize(const char *name)
{
    struct ref r;
    struct imgfs_err ignored;
    if (strncmp(name, "sha256:", 7) == 0 || ref_parse(name, &r, &ignored) < 0)
        return xstrdup(name); /* a digest, or no name at all: looked up as it is */
    char *out = ref_store_name(&r);
    ref_free(&r);
    return out;
}

static bool is_hex(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

int store_image_resolve(struct store_read *r, const char *ref, struct digest *manifest,
                        struct imgfs_err *err)
{
    if (!*ref)
        return err_set(err, EINVAL, "empty image reference");
    cleanup_free char *name = store_name_normalize(ref);
    MDB_val v;
    int rc = get_raw(r, DB_IMAGE, name, strlen(name), &v);
    if (rc == 0 && v.mv_size >= DIGEST_LEN) {
        memcpy(manifest->b, v.mv_data, DIGEST_LEN);
        return 0;
    }
    if (rc && rc != MDB_NOTFOUND)
        return mdb_fail(err, rc, "looking up image");
    /* A digest or a unique prefix of one, among the images that have names. */
    const char *hex = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
    size_t n = strlen(hex);
    /* A whole digest names an image in the store even without a name (a build's intermediate
     * images, mounted for its RUN steps): its view is what makes it mountable. */
    struct digest whole;
    if (n == DIGEST_HEX_LEN && digest_parse(hex, true, &whole) == 0 &&
        get_raw(r, DB_VIEW, whole.b, DIGEST_LEN, &v) == 0) {
        *manifest = whole;
        return 0;
    }
    if (n >= 12 && n <= DIGEST_HEX_LEN && is_hex(hex)) {
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(r->txn, r->s->dbi[DB_IMAGE], &c)))
            return mdb_fail(err, rc, "listing images");
        MDB_val k;
        int found = 0;
        struct digest match = {0};
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (v.mv_size < DIGEST_LEN)
                continue;
            char h[DIGEST_HEX_LEN + 1];
            struct digest d;
            memcpy(d.b, v.mv_data, DIGEST_LEN);
            digest_hex(&d, h);
            if (strncmp(h, hex, n) == 0) {
                if (found && !digest_equal(&d, &match)) {
                    mdb_cursor_close(c);
                    return err_set(err, EINVAL, "`%s` matches more than one image", ref);
                }
                match = d;
                found = 1;
            }
        }
        mdb_cursor_close(c);
        if (found) {
            *manifest = match;
            return 0;
        }
    }
    return err_set(err, ENOENT, "no such image: %s", ref);
}

int store_image_foreach(struct store_read *r,
                        int (*fn)(void *ctx, const struct store_image_entry *e), void *ctx)
{
    MDB_cursor *c;
    if (mdb_cursor_open(r->txn, r->s->dbi[DB_IMAGE], &c))
        return -1;
    MDB_val k, v;
    int ret = 0, rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size < DIGEST_LEN)
            continue;
        cleanup_free char *name = xmalloc(k.mv_size + 1);
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        struct store_image_entry e = {.name = name};
        memcpy(e.manifest.b, v.mv_data, DIGEST_LEN);
        if (v.mv_size >= DIGEST_LEN + 8)
            memcpy(&e.tagged_at, (char *)v.mv_data + DIGEST_LEN, 8);
        ret = fn(ctx, &e);
        if (ret)
            break;
    }
    if (!ret && rc != MDB_NOTFOUND)
        ret = -1; /* a read error ended the walk: the caller must not take it for the end */
    mdb_cursor_close(c);
    return ret;
}

int store_foreach(struct store_read *r, enum store_db db,
                  int (*fn)(void *ctx, const struct digest *key, const void *data, size_t len),
                  void *ctx)
{
    MDB_cursor *c;
    if (db_of(db) == DB_CACHE && r->s->no_cache_db)
        return 0;
    if (mdb_cursor_open(r->txn, r->s->dbi[db_of(db)], &c))
        return -1;
    MDB_val k, v;
    int ret = 0, rc;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != DIGEST_LEN)
            continue;
        struct digest d;
        memcpy(d.b, k.mv_data, DIGEST_LEN);
        ret = fn(ctx, &d, v.mv_data, v.mv_size);
        if (ret)
            break;
    }
    if (!ret && rc != MDB_NOTFOUND)
        ret = -1; /* a read error ended the walk: the caller must not take it for the end */
    mdb_cursor_close(c);
    return ret;
}

/* ---- writing ---- */

static int flock_retry(int fd, int op)
{
    int rc;
    do
        rc = flock(fd, op);
    while (rc < 0 && errno == EINTR);
    return rc;
}

int store_batch_begin(struct store *s, struct store_batch **out, struct imgfs_err *err)
{
    if (s->lock_fd < 0)
        return err_set(err, EROFS, "store `%s` is open read-only", s->root);
    /* Shared: several imports at once; gc takes it exclusively. The lock is held by this open
     * file description until the batch ends (or the process dies). */
    pthread_mutex_lock(&s->mu);
    if (s->batches == 0 && flock_retry(s->lock_fd, LOCK_SH) < 0) {
        int e = errno;
        pthread_mutex_unlock(&s->mu);
        return err_sys(err, e, "locking store `%s`", s->root);
    }
    s->batches++;
    pthread_mutex_unlock(&s->mu);
    struct store_batch *b = xcalloc(1, sizeof *b);
    b->s = s;
    *out = b;
    return 0;
}

static int batch_flush(struct store_batch *b, struct imgfs_err *err)
{
    if (!b->txn)
        return 0;
    int rc = mdb_txn_commit(b->txn);
    b->txn = NULL;
    b->pending = 0;
    if (rc)
        return write_fail(b->s, err, rc, "writing to the store");
    return 0;
}

int store_batch_flush(struct store_batch *b, struct imgfs_err *err)
{
    return batch_flush(b, err);
}

int store_batch_put(struct store_batch *b, enum store_db db, const struct digest *key,
                    const void *data, size_t len, struct imgfs_err *err)
{
    if (!b->txn && txn_begin(b->s, 0, &b->txn, err) < 0)
        return -1;
    MDB_val k = val_of(key->b, DIGEST_LEN), v = val_of(data, len);
    int rc = mdb_put(b->txn, b->s->dbi[db_of(db)], &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return 0;
    if (rc) {
        mdb_txn_abort(b->txn);
        b->txn = NULL;
        return write_fail(b->s, err, rc, "storing a record");
    }
    b->pending += len + DIGEST_LEN;
    b->wrote = true;
    if (b->pending >= BATCH_BYTES)
        return batch_flush(b, err);
    return 0;
}

int store_pin(struct store *s, int *fd_out, struct imgfs_err *err)
{
    if (s->lock_fd < 0)
        return err_set(err, EROFS, "store `%s` is open read-only", s->root);
    cleanup_free char *lock = xasprintf("%s/lock", s->root);
    /* a new open file description: flock locks belong to it, not to the batches' descriptor */
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return err_sys(err, errno, "opening `%s`", lock);
    if (flock_retry(fd, LOCK_SH) < 0) {
        err_sys(err, errno, "locking store `%s`", s->root);
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return 0;
}

bool store_batch_wrote(const struct store_batch *b)
{
    return b->wrote;
}

bool store_batch_has(struct store_batch *b, enum store_db db, const struct digest *key)
{
    struct imgfs_err ignored;
    if (!b->txn && txn_begin(b->s, 0, &b->txn, &ignored) < 0)
        return false;
    MDB_val k = val_of(key->b, DIGEST_LEN), v;
    return mdb_get(b->txn, b->s->dbi[db_of(db)], &k, &v) == 0;
}

static void batch_name(struct store_batch *b, const char *name, const struct digest *m, bool rm)
{
    b->names = xrealloc(b->names, (b->n_names + 1) * sizeof *b->names);
    b->names[b->n_names++] = (struct pending_name){
        .name = store_name_normalize(name),
        .manifest = m ? *m : (struct digest){{0}},
        .remove = rm,
    };
}

void store_batch_tag(struct store_batch *b, const char *name, const struct digest *manifest)
{
    batch_name(b, name, manifest, false);
}

void store_batch_untag(struct store_batch *b, const char *name)
{
    batch_name(b, name, NULL, true);
}

static void batch_free(struct store_batch *b)
{
    if (b->txn)
        mdb_txn_abort(b->txn);
    for (size_t i = 0; i < b->n_names; i++)
        free(b->names[i].name);
    free(b->names);
    pthread_mutex_lock(&b->s->mu);
    if (--b->s->batches == 0)
        flock_retry(b->s->lock_fd, LOCK_UN);
    pthread_mutex_unlock(&b->s->mu);
    free(b);
}

int store_batch_commit(struct store_batch *b, struct imgfs_err *err)
{
    int ret = -1;
    if (!b->txn && txn_begin(b->s, 0, &b->txn, err) < 0)
        goto out;
    int64_t now = time(NULL);
    for (size_t i = 0; i < b->n_names; i++) {
        struct pending_name *n = &b->names[i];
        MDB_val k = val_of(n->name, strlen(n->name));
        int rc;
        if (n->remove) {
            rc = mdb_del(b->txn, b->s->dbi[DB_IMAGE], &k, NULL);
            if (rc == MDB_NOTFOUND) {
                err_set(err, ENOENT, "no such image: %s", n->name);
                goto out;
            }
        } else {
            uint8_t v[DIGEST_LEN + 8];
            memcpy(v, n->manifest.b, DIGEST_LEN);
            memcpy(v + DIGEST_LEN, &now, 8);
            MDB_val val = val_of(v, sizeof v);
            rc = mdb_put(b->txn, b->s->dbi[DB_IMAGE], &k, &val, 0);
        }
        if (rc) {
            mdb_fail(err, rc, "naming image");
            err_ctx(err, "`%s`", n->name);
            goto out;
        }
    }
    if (batch_flush(b, err) < 0)
        goto out;
    int rc = mdb_env_sync(b->s->env, 1);
    if (rc) {
        write_fail(b->s, err, rc, "syncing the store");
        goto out;
    }
    ret = 0;
out:
    batch_free(b);
    return ret;
}

void store_batch_abort(struct store_batch *b)
{
    if (b)
        batch_free(b);
}

/* ---- leases ---- */

int store_lease_take(struct store *s, const struct digest *manifest, struct store_lease **out,
                     struct imgfs_err *err)
{
    static int counter;
    char hex[DIGEST_HEX_LEN + 1];
    digest_hex(manifest, hex);
    cleanup_free char *dir = xasprintf("%s/leases", s->root);
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    char *path =
        xasprintf("%s/%s.%d.%d", dir, hex, (int)getpid(), __sync_fetch_and_add(&counter, 1));
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock_retry(fd, LOCK_EX) < 0) {
        err_sys(err, errno, "taking lease `%s`", path);
        if (fd >= 0)
            close(fd);
        free(path);
        return -1;
    }
    struct store_lease *l = xmalloc(sizeof *l);
    l->fd = fd;
    l->path = path;
    *out = l;
    return 0;
}

void store_lease_release(struct store_lease *l)
{
    if (!l)
        return;
    unlink(l->path);
    close(l->fd);
    free(l->path);
    free(l);
}

int store_lease_note(struct store_lease *l, const char *note, struct imgfs_err *err)
{
    if (ftruncate(l->fd, 0) < 0 || write_full(l->fd, note, strlen(note)) < 0)
        return err_sys(err, errno, "writing lease `%s`", l->path);
    return 0;
}

bool store_lease_held(const char *root, const char *note)
{
    cleanup_free char *dir = xasprintf("%s/leases", root);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    size_t len = strlen(note);
    bool held = false;
    struct dirent *de;
    while (!held && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        cleanup_free char *path = xasprintf("%s/%s", dir, de->d_name);
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        char text[128];
        ssize_t n = fd < 0 ? -1 : pread(fd, text, sizeof text, 0);
        if (n != (ssize_t)len || memcmp(text, note, len))
            continue;
        /* a shared lock fails while the holder's exclusive one stands; taken, it is let go at once
         */
        held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    }
    closedir(d);
    return held;
}

/* ---- gc ---- */

/* A set of digests: open addressing on the digest's own (uniformly random) bytes. */
struct dset {
    struct digest *slots;
    uint8_t *used;
    size_t cap, n;
};

static void dset_add(struct dset *s, const struct digest *d);

static void dset_grow(struct dset *s)
{
    struct dset old = *s;
    s->cap = old.cap ? old.cap * 2 : 1024;
    s->slots = xcalloc(s->cap, sizeof *s->slots);
    s->used = xcalloc(s->cap, 1);
    s->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.used[i])
            dset_add(s, &old.slots[i]);
    free(old.slots);
    free(old.used);
}

static size_t dset_hash(const struct digest *d)
{
    size_t h;
    memcpy(&h, d->b, sizeof h);
    return h;
}

static void dset_add(struct dset *s, const struct digest *d)
{
    if ((s->n + 1) * 2 > s->cap)
        dset_grow(s);
    for (size_t i = dset_hash(d) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->used[i]) {
            s->used[i] = 1;
            s->slots[i] = *d;
            s->n++;
            return;
        }
        if (digest_equal(&s->slots[i], d))
            return;
    }
}

static bool dset_has(const struct dset *s, const struct digest *d)
{
    if (!s->cap)
        return false;
    for (size_t i = dset_hash(d) & (s->cap - 1); s->used[i]; i = (i + 1) & (s->cap - 1))
        if (digest_equal(&s->slots[i], d))
            return true;
    return false;
}

static void dset_free(struct dset *s)
{
    free(s->slots);
    free(s->used);
}

struct marks {
    struct dset live[DB_COUNT];
};

static void mark_fn(void *ctx, enum store_db db, const struct digest *d)
{
    struct marks *m = ctx;
    dset_add(&m->live[db_of(db)], d);
}

struct mark_names {
    struct store_read *r;
    struct marks *marks;
    struct imgfs_err *err;
};

/* A named image that cannot be loaded stops gc: freeing what it could not mark would lose the
 * rest of an image that is still named. */
static int mark_name(void *ctx, const struct store_image_entry *e)
{
    struct mark_names *mn = ctx;
    if (store_gc_mark_image(mn->r, &e->manifest, mark_fn, mn->marks, mn->err) == 0)
        return 0;
    char hex[DIGEST_STR_SIZE];
    digest_str(&e->manifest, hex);
    err_ctx(mn->err, "image `%s` (%.19s) is damaged", e->name, hex);
    return -1;
}

/* Live leases name roots; a lease file nobody holds is left by a dead process. */
static void collect_leases(struct store *s, struct dset *roots)
{
    cleanup_free char *dir = xasprintf("%s/leases", s->root);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char hex[DIGEST_HEX_LEN + 1];
        snprintf(hex, sizeof hex, "%.64s", de->d_name);
        struct digest m;
        if (digest_parse(hex, true, &m) < 0)
            continue;
        cleanup_free char *path = xasprintf("%s/%s", dir, de->d_name);
        cleanup_close int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlink(path);
        else
            dset_add(roots, &m);
    }
    closedir(d);
}

/* Build cache records are roots while young; an old one survives only while a named image still
 * uses its layer (then it still saves a rebuild). Runs after the images are marked. */
static int mark_build_cache(struct store *s, struct store_read *r, struct marks *m,
                            struct imgfs_err *err)
{
    int64_t keep = STORE_CACHE_KEEP_DEFAULT;
    const char *e = getenv("IMGFS_BUILD_CACHE_KEEP");
    if (e && *e)
        keep = strtoll(e, NULL, 10);
    int64_t now = time(NULL);
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, s->dbi[DB_CACHE], &c);
    if (rc)
        return mdb_fail(err, rc, "gc: reading the build cache");
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct store_cache_value cv;
        bool ok = v.mv_size == sizeof cv;
        if (ok)
            memcpy(&cv, v.mv_data, sizeof cv);
        bool young = ok && now - cv.created < keep;
        bool used = ok && dset_has(&m->live[DB_LAYER], &cv.layer);
        if (ok && (cv.flags & STORE_CACHE_EMPTY_LAYER) && young)
            continue;
        if (young && !used) {
            /* a cache record whose layer is gone caches nothing: it keeps nothing either */
            if (store_gc_mark_layer(r, &cv.layer, mark_fn, m, err) < 0 && err->code != ENOENT) {
                mdb_cursor_close(c);
                return err_ctx(err, "gc: a build cache record");
            }
        } else if (!young && !used) {
            if ((rc = mdb_cursor_del(c, 0))) {
                mdb_cursor_close(c);
                return mdb_fail(err, rc, "gc: deleting a build cache record");
            }
        }
    }
    mdb_cursor_close(c);
    return 0;
}

int store_cache_drop(struct store *s, uint64_t *dropped, struct imgfs_err *err)
{
    *dropped = 0;
    if (s->lock_fd < 0)
        return err_set(err, EROFS, "store `%s` is open read-only", s->root);
    MDB_txn *txn;
    if (txn_begin(s, 0, &txn, err) < 0)
        return -1;
    MDB_stat st;
    int rc = mdb_stat(txn, s->dbi[DB_CACHE], &st);
    if (rc == 0)
        rc = mdb_drop(txn, s->dbi[DB_CACHE], 0);
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(err, rc, "dropping the build cache");
    }
    if ((rc = mdb_txn_commit(txn)))
        return write_fail(s, err, rc, "dropping the build cache");
    *dropped = st.ms_entries;
    return 0;
}

int store_gc(struct store *s, struct store_gc_stats *stats, struct imgfs_err *err)
{
    memset(stats, 0, sizeof *stats);
    if (s->lock_fd < 0)
        return err_set(err, EROFS, "store `%s` is open read-only", s->root);
    if (flock_retry(s->lock_fd, LOCK_EX) < 0)
        return err_sys(err, errno, "locking store `%s` for gc", s->root);

    int ret = -1;
    struct dset roots = {0};
    struct marks marks;
    memset(&marks, 0, sizeof marks);
    MDB_txn *txn = NULL;
    /* The write transaction is the snapshot marking works on: no other writer can add a name
     * between mark and sweep, and batches are excluded by the lock. */
    if (txn_begin(s, 0, &txn, err) < 0)
        goto out;
    struct store_read r = {.s = s, .txn = txn};
    struct mark_names mn = {.r = &r, .marks = &marks, .err = err};
    err->code = 0;
    if (store_image_foreach(&r, mark_name, &mn) != 0) {
        if (!err->code)
            err_set(err, EIO, "reading the image names");
        err_ctx(err, "gc refused, nothing was freed (run `imgfs fsck`; `imgfs rmi` of the name "
                     "lets gc free the image)");
        goto out;
    }
    collect_leases(s, &roots);
    for (size_t i = 0; i < roots.cap; i++) {
        if (!roots.used[i])
            continue;
        const void *data;
        size_t len;
        struct imgfs_err absent;
        /* a lease on an image whose records a gc already freed (after rmi) keeps nothing */
        if (store_get(&r, STORE_BLOB, &roots.slots[i], &data, &len, &absent) < 0 &&
            absent.code == ENOENT)
            continue;
        if (store_gc_mark_image(&r, &roots.slots[i], mark_fn, &marks, err) < 0) {
            char hex[DIGEST_STR_SIZE];
            digest_str(&roots.slots[i], hex);
            err_ctx(err, "gc refused, nothing was freed: mounted image %.19s is damaged", hex);
            goto out;
        }
    }
    if (mark_build_cache(s, &r, &marks, err) < 0)
        goto out;
    static const int swept[] = {DB_CHUNK, DB_BLOB, DB_LAYER, DB_VIEW, DB_REMOTE};
    for (size_t i = 0; i < sizeof swept / sizeof *swept; i++) {
        int db = swept[i];
        MDB_cursor *c;
        int rc = mdb_cursor_open(txn, s->dbi[db], &c);
        if (rc) {
            mdb_fail(err, rc, "gc");
            goto out;
        }
        MDB_val k, v;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            struct digest d = {0};
            if (k.mv_size == DIGEST_LEN)
                memcpy(d.b, k.mv_data, DIGEST_LEN);
            /* a remote record lives as long as its chunk is referenced */
            int live_db = db == DB_REMOTE ? DB_CHUNK : db;
            if (k.mv_size == DIGEST_LEN && dset_has(&marks.live[live_db], &d))
                continue;
            size_t sz = v.mv_size;
            if ((rc = mdb_cursor_del(c, 0))) {
                mdb_cursor_close(c);
                mdb_fail(err, rc, "gc: deleting");
                goto out;
            }
            if (db == DB_CHUNK) {
                stats->chunks_freed++;
                stats->bytes_freed += sz;
            } else if (db == DB_BLOB) {
                stats->blobs_freed++;
            } else if (db == DB_LAYER) {
                stats->layers_freed++;
            } else if (db == DB_REMOTE) {
                stats->remotes_freed++;
            } else {
                stats->views_freed++;
            }
        }
        mdb_cursor_close(c);
    }
    int rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        mdb_fail(err, rc, "gc: committing");
        goto out;
    }
    /* recorded start-ups (ROOT/traces/<manifest hex>, lazy.c) of images gc just freed: a trace
     * lives as long as its manifest record; names that are no manifest digest are not ours */
    char *traces = xasprintf("%s/traces", s->root);
    DIR *td = opendir(traces);
    free(traces);
    if (td) {
        struct dirent *de;
        while ((de = readdir(td))) {
            struct digest m;
            if (strlen(de->d_name) != DIGEST_HEX_LEN || digest_parse(de->d_name, true, &m) < 0 ||
                dset_has(&marks.live[DB_BLOB], &m))
                continue;
            if (unlinkat(dirfd(td), de->d_name, 0) == 0)
                stats->traces_freed++;
        }
        closedir(td);
    }
    /* temp files of dead imports */
    char *tmp = xasprintf("%s/tmp", s->root);
    DIR *d = opendir(tmp);
    free(tmp);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.')
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    ret = 0;
out:
    if (txn)
        mdb_txn_abort(txn);
    dset_free(&roots);
    for (int i = 0; i < DB_COUNT; i++)
        dset_free(&marks.live[i]);
    flock_retry(s->lock_fd, LOCK_UN);
    return ret;
}

int store_usage(struct store *s, struct store_usage *u, struct imgfs_err *err)
{
    memset(u, 0, sizeof *u);
    MDB_txn *txn;
    if (txn_begin(s, MDB_RDONLY, &txn, err) < 0)
        return -1;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi[DB_CHUNK], &c);
    if (rc) {
        mdb_txn_abort(txn);
        return mdb_fail(err, rc, "reading chunks");
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        u->chunks++;
        u->chunk_bytes += v.mv_size;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    cleanup_free char *data = xasprintf("%s/data.mdb", s->root);
    struct stat st;
    if (stat(data, &st) == 0)
        u->map_bytes = st.st_size;
    return 0;
}
