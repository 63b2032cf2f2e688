/* test_chunker.c — FastCDC boundaries: sizes in range, deterministic, and stable under inserts
 * (an insert early in a file changes only the chunks near it). */
#include "../../fs/chunker.h"
#include "../../fs/digest.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

struct cut {
    size_t off, len;
    struct digest d;
};

static size_t chunk_all(const uint8_t *data, size_t len, struct cut *cuts)
{
    size_t n = 0, off = 0;
    while (off < len) {
        size_t c = chunker_cut(data + off, len - off);
        cuts[n].off = off;
        cuts[n].len = c;
        digest_of(data + off, c, &cuts[n].d);
        n++;
        off += c;
    }
    return n;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
}

int main(void)
{
    enum { SIZE = 16 << 20 };
    uint8_t *a = malloc(SIZE + 4096), *b = malloc(SIZE + 4096);
    struct cut *ca = calloc(SIZE / CHUNK_MIN + 2, sizeof *ca);
    struct cut *cb = calloc(SIZE / CHUNK_MIN + 2, sizeof *cb);
    fill_random(a, SIZE, 42);

    /* sizes */
    size_t na = chunk_all(a, SIZE, ca);
    size_t bad = 0;
    for (size_t i = 0; i + 1 < na; i++)
        if (ca[i].len < CHUNK_MIN || ca[i].len > CHUNK_MAX)
            bad++;
    CHECK(bad == 0, "%zu chunks outside [%u, %u]", bad, CHUNK_MIN, CHUNK_MAX);
    size_t avg = SIZE / na;
    CHECK(avg > CHUNK_AVG / 2 && avg < CHUNK_AVG * 2, "average chunk %zu, want about %u", avg,
          CHUNK_AVG);

    /* small input: one chunk */
    CHECK(chunker_cut(a, 100) == 100, "a 100-byte file is one chunk");
    CHECK(chunker_cut(a, CHUNK_MIN) == CHUNK_MIN, "a CHUNK_MIN file is one chunk");
    CHECK(chunker_cut(a, 0) == 0, "empty input has no chunk");

    /* deterministic */
    size_t nb = chunk_all(a, SIZE, cb);
    CHECK(nb == na && !memcmp(ca, cb, na * sizeof *ca), "same input, same chunks");

    /* insert 100 bytes early: nearly every chunk after the insert is unchanged */
    memcpy(b, a, 1000);
    fill_random(b + 1000, 100, 7);
    memcpy(b + 1100, a + 1000, SIZE - 1000);
    nb = chunk_all(b, SIZE + 100, cb);
    size_t common = 0;
    for (size_t i = 0, j = 0; i < na && j < nb;) {
        if (ca[i].off + 100 == cb[j].off || (ca[i].off == 0 && cb[j].off == 0)) {
            if (digest_equal(&ca[i].d, &cb[j].d))
                common++;
            i++, j++;
        } else if (ca[i].off + 100 < cb[j].off) {
            i++;
        } else {
            j++;
        }
    }
    CHECK(common + 3 >= na, "after an insert only nearby chunks change: %zu of %zu kept", common,
          na);

    /* and a change in the middle changes only chunks around it */
    memcpy(b, a, SIZE);
    b[SIZE / 2] ^= 0xff;
    nb = chunk_all(b, SIZE, cb);
    size_t differ = 0;
    for (size_t i = 0; i < na && i < nb; i++)
        if (!digest_equal(&ca[i].d, &cb[i].d))
            differ++;
    CHECK(nb == na && differ <= 2, "one flipped byte changes %zu chunks (want <= 2)", differ);

    /* repeated content dedups: two copies of one 1 MiB block give repeated chunk digests */
    memcpy(b, a, 1 << 20);
    memcpy(b + (1 << 20), a, 1 << 20);
    nb = chunk_all(b, 2 << 20, cb);
    size_t repeats = 0;
    for (size_t i = 0; i < nb; i++)
        for (size_t j = i + 1; j < nb; j++)
            if (digest_equal(&cb[i].d, &cb[j].d))
                repeats++;
    CHECK(repeats + 3 >= nb / 2, "a repeated block repeats its chunks (%zu of %zu)", repeats, nb);

    free(a);
    free(b);
    free(ca);
    free(cb);
    return unit_summary();
}
