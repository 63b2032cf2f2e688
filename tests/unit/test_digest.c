/* test_digest.c — SHA-256 against FIPS 180-2 vectors, and digest strings. */
#include "../../fs/digest.h"
#include "unit.h"

#include <string.h>

int main(void)
{
    struct digest d, e;
    char s[DIGEST_STR_SIZE];
    digest_of("abc", 3, &d);
    digest_str(&d, s);
    CHECK(!strcmp(s, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
          "sha256(abc) = %s", s);
    digest_of("", 0, &d);
    digest_str(&d, s);
    CHECK(!strcmp(s, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
          "sha256('') = %s", s);

    struct digest_ctx *c = digest_ctx_new();
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t i = 0; msg[i]; i++)
        digest_ctx_update(c, msg + i, 1);
    digest_ctx_final(c, &d);
    digest_str(&d, s);
    CHECK(!strcmp(s, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
          "streamed two-block vector = %s", s);
    digest_ctx_update(c, "abc", 3); /* the context is reusable after final */
    digest_ctx_final(c, &e);
    digest_of("abc", 3, &d);
    CHECK(digest_equal(&d, &e), "context reused after final");
    digest_ctx_free(c);

    CHECK(digest_parse(s, false, &e) == 0, "parse what digest_str made");
    CHECK(digest_parse(s + 7, false, &e) < 0, "bare hex refused unless allowed");
    CHECK(digest_parse(s + 7, true, &e) == 0, "bare hex allowed");
    CHECK(digest_parse("sha256:xyz", false, &e) < 0, "bad hex refused");
    CHECK(digest_parse("sha256:ABCD", false, &e) < 0, "short digest refused");
    char upper[DIGEST_STR_SIZE];
    strcpy(upper, s);
    upper[10] = 'G';
    CHECK(digest_parse(upper, false, &e) < 0, "non-hex refused");
    return unit_summary();
}
