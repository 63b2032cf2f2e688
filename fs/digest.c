#include "digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct digest_ctx {
    EVP_MD_CTX *md;
};

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* OpenSSL 3 looks the digest up in its provider at every init of EVP_sha256() (and asks the engine
 * table first, whose first use loads the configuration): fetched once instead. The statically
 * linked libcrypto (Makefile) is ours alone and does SHA-256 and base64 only, so it reads no
 * openssl.cnf (that is for TLS, which libcurl does with the shared libcrypto it loads) and frees
 * nothing at exit. A shared libcrypto is libcurl's too: its configuration is left to it. */
static void sha256_fetch(void)
{
#ifdef IMGFS_STATIC_LIBCRYPTO
    if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL))
        abort();
#endif
    if (!(sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
        abort();
}

static const EVP_MD *md_sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256;
}

void digest_of(const void *data, size_t len, struct digest *out)
{
    unsigned int n = DIGEST_LEN;
    if (!EVP_Digest(data, len, out->b, &n, md_sha256(), NULL))
        abort();
}

struct digest_ctx *digest_ctx_new(void)
{
    struct digest_ctx *c = malloc(sizeof *c);
    if (!c || !(c->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(c->md, md_sha256(), NULL))
        abort();
    return c;
}

void digest_ctx_update(struct digest_ctx *c, const void *data, size_t len)
{
    if (!EVP_DigestUpdate(c->md, data, len))
        abort();
}

void digest_ctx_final(struct digest_ctx *c, struct digest *out)
{
    unsigned int n = DIGEST_LEN;
    if (!EVP_DigestFinal_ex(c->md, out->b, &n) || !EVP_DigestInit_ex(c->md, md_sha256(), NULL))
        abort();
}

void digest_ctx_free(struct digest_ctx *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->md);
    free(c);
}

void digest_hex(const struct digest *d, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < DIGEST_LEN; i++) {
        hex[2 * i] = digits[d->b[i] >> 4];
        hex[2 * i + 1] = digits[d->b[i] & 15];
    }
    hex[DIGEST_HEX_LEN] = 0;
}

void digest_str(const struct digest *d, char *s)
{
    memcpy(s, "sha256:", 7);
    digest_hex(d, s + 7);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int digest_parse(const char *s, bool allow_bare, struct digest *out)
{
    if (strncmp(s, "sha256:", 7) == 0)
        s += 7;
    else if (!allow_bare)
        return -1;
    if (strlen(s) != DIGEST_HEX_LEN)
        return -1;
    for (int i = 0; i < DIGEST_LEN; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool digest_equal(const struct digest *a, const struct digest *b)
{
    return memcmp(a->b, b->b, DIGEST_LEN) == 0;
}
