#include "digest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct digest_ctx {
    EVP_MD_CTX *md;
};

void digest_of(const void *data, size_t len, struct digest *out)
{
    unsigned int n = DIGEST_LEN;
    if (!EVP_Digest(data, len, out->b, &n, EVP_sha256(), NULL))
        abort();
}

struct digest_ctx *digest_ctx_new(void)
{
    struct digest_ctx *c = malloc(sizeof *c);
    if (!c || !(c->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL))
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
    if (!EVP_DigestFinal_ex(c->md, out->b, &n) || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL))
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
