/* digest.h — SHA-256 digests (OpenSSL EVP), the names of everything in the store. */
#ifndef IMGFS_DIGEST_H
#define IMGFS_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIGEST_LEN     32
#define DIGEST_HEX_LEN 64
/* "sha256:" + 64 hex digits + NUL */
#define DIGEST_STR_SIZE (7 + DIGEST_HEX_LEN + 1)

struct digest {
    uint8_t b[DIGEST_LEN];
};

/* One-shot SHA-256. */
void digest_of(const void *data, size_t len, struct digest *out);

/* Streaming SHA-256; digest_ctx_new never fails (aborts when OpenSSL is out of memory). */
struct digest_ctx;
struct digest_ctx *digest_ctx_new(void);
void digest_ctx_update(struct digest_ctx *c, const void *data, size_t len);
/* Finishes the digest and resets the context for reuse. */
void digest_ctx_final(struct digest_ctx *c, struct digest *out);
void digest_ctx_free(struct digest_ctx *c);

/* 64 lowercase hex digits + NUL into `hex` (at least DIGEST_HEX_LEN + 1 bytes). */
void digest_hex(const struct digest *d, char *hex);
/* "sha256:<hex>" into `s` (DIGEST_STR_SIZE bytes). */
void digest_str(const struct digest *d, char *s);
/* Parse "sha256:<64 hex>" (or, when allow_bare, just the 64 hex digits). Returns 0 or -1. */
int digest_parse(const char *s, bool allow_bare, struct digest *out);
bool digest_equal(const struct digest *a, const struct digest *b);

#endif
