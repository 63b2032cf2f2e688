/* chunker.h — content-defined chunking (FastCDC with normalized chunking, Xia et al., USENIX ATC'16).
 *
 * A cut point depends only on the bytes just before it, so inserting bytes early in a file changes
 * only the chunks near the insert; the rest keep their boundaries and digests and are stored once.
 * Sizes: at least CHUNK_MIN (but a file smaller than that is one chunk), about CHUNK_AVG on average,
 * at most CHUNK_MAX. The gear table is fixed (derived from a constant seed): changing it, or the
 * sizes, changes every chunk digest and so defeats dedup against existing stores. */
#ifndef IMGFS_CHUNKER_H
#define IMGFS_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN (16u * 1024)
#define CHUNK_AVG (64u * 1024)
#define CHUNK_MAX (256u * 1024)

/* Length of the first chunk of data[0..len). The caller must supply at least CHUNK_MAX bytes
 * unless data ends at the end of the file; the result is then <= len and > 0 (for len > 0). */
size_t chunker_cut(const uint8_t *data, size_t len);

#endif
