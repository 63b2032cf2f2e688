#include "chunker.h"

#include <pthread.h>

/* Normalized chunking: a stricter mask (more bits) before the average size and a looser one after
 * it pulls chunk sizes toward CHUNK_AVG (2^16). */
#define MASK_STRICT 0xffffc00000000000ull /* 18 bits: hash bits 46..63 see the last 64 bytes */
#define MASK_LOOSE  0xfffc000000000000ull /* 14 bits */

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_init(void)
{
    /* splitmix64 from a fixed seed: any good fixed table works; this one must never change. */
    uint64_t x = 0x696d676673636463ull; /* "imgfscdc" */
    for (int i = 0; i < 256; i++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        gear[i] = z ^ (z >> 31);
    }
}

size_t chunker_cut(const uint8_t *data, size_t len)
{
    pthread_once(&gear_once, gear_init);
    if (len <= CHUNK_MIN)
        return len;
    size_t limit = len < CHUNK_MAX ? len : CHUNK_MAX;
    size_t normal = CHUNK_AVG < limit ? CHUNK_AVG : limit;
    uint64_t h = 0;
    size_t i = CHUNK_MIN;
    for (; i < normal; i++) {
        h = (h << 1) + gear[data[i]];
        if (!(h & MASK_STRICT))
            return i + 1;
    }
    for (; i < limit; i++) {
        h = (h << 1) + gear[data[i]];
        if (!(h & MASK_LOOSE))
            return i + 1;
    }
    return limit;
}
