/* imgfs — the command line. One file per verb (cmd_*.c); this one only dispatches. */
#include "../builder/builder.h"
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define IMGFS_VERSION "0.1.0"

void cli_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "imgfs %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_report(const char *verb, const struct imgfs_err *err)
{
    fprintf(stderr, "imgfs %s: %s\n", verb, err->msg[0] ? err->msg : "unknown error");
}

/* Levenshtein distance, counting a swap of two neighbours as one edit ("rnu" -> "run"). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return SIZE_MAX;
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The verb a mistyped one most likely meant: within two edits (one for short words), or NULL. */
static const char *closest_verb(const char *typed)
{
    static const char *const verbs[] = {
#define X(name, help) #name,
        IMGFS_VERBS(X)
#undef X
    };
    const char *best = NULL;
    size_t best_d = strlen(typed) <= 3 ? 2 : 3;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        size_t d = edit_distance(typed, verbs[i]);
        if (d < best_d) {
            best_d = d;
            best = verbs[i];
        }
    }
    return best;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: imgfs [--root DIR] [--run-dir DIR] COMMAND [ARG...]\n\n"
               "Images as content-addressed, deduplicated filesystems, and containers on them.\n\n"
               "Options:\n"
               "  --root DIR      store directory (default $IMGFS_ROOT or /var/lib/imgfs)\n"
               "  --run-dir DIR   runtime state (default $IMGFS_RUN_DIR or /run/imgfs)\n"
               "  -h, --help      show this help\n"
               "  -v, --version   show the version\n\n"
               "Commands:\n");
#define X(name, help) fprintf(f, "  %-10s %s\n", #name, help);
    IMGFS_VERBS(X)
#undef X
    fprintf(f, "\nRun 'imgfs COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    struct cli cli = {
        .root = getenv("IMGFS_ROOT"),
        .run_dir = getenv("IMGFS_RUN_DIR"),
        .argv0 = argv[0],
    };
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--version")) {
            printf("imgfs version %s\n", IMGFS_VERSION);
            return 0;
        } else if (!strcmp(a, "--root") && i + 1 < argc) {
            cli.root = argv[++i];
        } else if (!strncmp(a, "--root=", 7)) {
            cli.root = a + 7;
        } else if (!strcmp(a, "--run-dir") && i + 1 < argc) {
            cli.run_dir = argv[++i];
        } else if (!strncmp(a, "--run-dir=", 10)) {
            cli.run_dir = a + 10;
        } else {
            fprintf(stderr, "imgfs: unknown option `%s`\nSee 'imgfs --help'.\n", a);
            return EXIT_IMGFS_FAILED;
        }
    }
    if (!cli.root || !*cli.root)
        cli.root = "/var/lib/imgfs";
    if (!cli.run_dir || !*cli.run_dir)
        cli.run_dir = "/run/imgfs";
    if (i >= argc) {
        usage(stderr);
        return EXIT_IMGFS_FAILED;
    }
    const char *verb = argv[i];
    /* the build's step monitor (builder.h): exec'ed by imgfs build itself */
    if (!strcmp(verb, "__build-step"))
        return build_exec_main(argc - i + 1, argv + i - 1);
    /* getopt in the verbs starts from argv[1] of their own vector */
    optind = 1;
#define X(name, help)                                                                              \
    if (!strcmp(verb, #name))                                                                      \
        return cmd_##name(argc - i, argv + i, &cli);
    IMGFS_VERBS(X)
#undef X
    fprintf(stderr, "imgfs: `%s` is not an imgfs command.\n", verb);
    const char *near = closest_verb(verb);
    if (near)
        fprintf(stderr, "Did you mean `imgfs %s`?\n", near);
    fprintf(stderr, "See 'imgfs --help'.\n");
    return EXIT_IMGFS_FAILED;
}
