/* archive_static.c — what linking libarchive statically needs (see the Makefile).
 *
 * The shared libarchive.so.13 brings libxml2, and libxml2 brings ICU (libicuuc and its 30 MB
 * libicudata) and libstdc++: 17 shared objects that the dynamic loader mapped and relocated at
 * every start of imgfs — 4.4 M instructions, ~2 ms, a tenth of a container's start — for one
 * feature imgfs never uses (xar archives, whose reader and writer parse XML). Linked from
 * libarchive.a instead, only the members imgfs references come in, but one of them
 * (archive_write_set_format.o, which the pax writer needs for a helper) refers to every format's
 * writer, xar's included, and xar's writer needs libxml2; archive_read_support_format_all (`imgfs
 * cp` reading an archive from stdin) does the same with xar's reader. Defining those two entry
 * points here keeps the linker from taking libarchive's, and with them libxml2. Nothing in imgfs
 * writes xar; reading one fails with the message below, the other formats are unaffected
 * (archive_read_support_format_all ignores what one format's registration returns). */
#ifdef IMGFS_STATIC_LIBARCHIVE
#include <archive.h>
#include <errno.h>

int archive_write_set_format_xar(struct archive *a);
int archive_read_support_format_xar(struct archive *a);

int archive_write_set_format_xar(struct archive *a)
{
    archive_set_error(a, ENOTSUP, "xar archives are not supported by imgfs");
    return ARCHIVE_FATAL;
}

int archive_read_support_format_xar(struct archive *a)
{
    archive_set_error(a, ENOTSUP, "xar archives are not supported by imgfs");
    return ARCHIVE_WARN;
}
#endif
