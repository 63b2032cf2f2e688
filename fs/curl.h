// libcurl, loaded on first use (dlopen) instead of at every start of the binary.
//
// libcurl.so.4 brings 24 shared libraries of its own (GnuTLS, Kerberos, LDAP, SASL, ...): linked
// normally, the dynamic loader maps and relocates them for every `imgfs` process, about 12 million
// instructions, more than half of what a container start costs the CLI before its first syscall of
// its own (docs/runner.md, "Where the start time goes"). Only pull, push and ADD URL use libcurl,
// so its users include this header instead of <curl/curl.h>: the curl_* calls they make go through
// the wrappers below, which load the library the first time one of them is called. A missing
// library ends the process with a message and exit code 125, as the loader would have at start.
#ifndef IMGFS_FS_CURL_H
#define IMGFS_FS_CURL_H

#include <curl/curl.h>

CURLcode imgfs_curl_global_init(long flags);
CURL *imgfs_curl_easy_init(void);
void imgfs_curl_easy_cleanup(CURL *h);
void imgfs_curl_easy_reset(CURL *h);
CURLcode imgfs_curl_easy_perform(CURL *h);
CURLcode imgfs_curl_easy_setopt(CURL *h, CURLoption opt, ...);
CURLcode imgfs_curl_easy_getinfo(CURL *h, CURLINFO info, ...);
const char *imgfs_curl_easy_strerror(CURLcode code);
char *imgfs_curl_easy_escape(CURL *h, const char *s, int len);
void imgfs_curl_free(void *p);
CURLSH *imgfs_curl_share_init(void);
CURLSHcode imgfs_curl_share_cleanup(CURLSH *sh);
CURLSHcode imgfs_curl_share_setopt(CURLSH *sh, CURLSHoption opt, ...);
struct curl_slist *imgfs_curl_slist_append(struct curl_slist *l, const char *s);
void imgfs_curl_slist_free_all(struct curl_slist *l);

#ifndef IMGFS_CURL_IMPL
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_global_init    imgfs_curl_global_init
#define curl_easy_init      imgfs_curl_easy_init
#define curl_easy_cleanup   imgfs_curl_easy_cleanup
#define curl_easy_reset     imgfs_curl_easy_reset
#define curl_easy_perform   imgfs_curl_easy_perform
#define curl_easy_setopt    imgfs_curl_easy_setopt
#define curl_easy_getinfo   imgfs_curl_easy_getinfo
#define curl_easy_strerror  imgfs_curl_easy_strerror
#define curl_easy_escape    imgfs_curl_easy_escape
#define curl_free           imgfs_curl_free
#define curl_share_init     imgfs_curl_share_init
#define curl_share_cleanup  imgfs_curl_share_cleanup
#define curl_share_setopt   imgfs_curl_share_setopt
#define curl_slist_append   imgfs_curl_slist_append
#define curl_slist_free_all imgfs_curl_slist_free_all
#endif

#endif
