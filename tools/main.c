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

/* Docker's management forms: `imgfs container ls` is `imgfs ps`, `imgfs image rm` is `imgfs rmi`,
 * and so on. `verb` is the argv[0] the verb is called with (its messages say `imgfs ps: ...`);
 * `type` is inserted as `--type TYPE` after it (container inspect, image inspect). */
struct group_verb {
    const char *group, *sub, *verb, *type;
    int (*run)(int argc, char **argv, struct cli *cli);
    const char *help;
};
static const struct group_verb group_verbs[] = {
    {"container", "attach", "attach", NULL, cmd_attach, "Not supported: use logs -f or exec -it"},
    {"container", "commit", "commit", NULL, cmd_commit,
     "Create an image from a container's changes"},
    {"container", "cp", "cp", NULL, cmd_cp, "Copy files between a container and the host"},
    {"container", "create", "create", NULL, cmd_create, "Create a new container"},
    {"container", "diff", "diff", NULL, cmd_diff, "List the changes to a container's files"},
    {"container", "exec", "exec", NULL, cmd_exec, "Run a command in a running container"},
    {"container", "inspect", "inspect", "container", cmd_inspect,
     "Show containers (Docker's JSON)"},
    {"container", "kill", "kill", NULL, cmd_kill, "Send a signal to containers"},
    {"container", "logs", "logs", NULL, cmd_logs, "Show a container's output"},
    {"container", "ls", "ps", NULL, cmd_ps, "List containers (ps)"},
    {"container", "list", "ps", NULL, cmd_ps, NULL},
    {"container", "port", "port", NULL, cmd_port, "List a container's published ports"},
    {"container", "prune", "prune", NULL, cmd_container_prune, "Remove all stopped containers"},
    {"container", "rename", "rename", NULL, cmd_rename, "Rename a container"},
    {"container", "restart", "restart", NULL, cmd_restart, "Stop containers and start them again"},
    {"container", "rm", "rm", NULL, cmd_rm, "Remove containers"},
    {"container", "run", "run", NULL, cmd_run, "Run a command in a new container"},
    {"container", "start", "start", NULL, cmd_start, "Start created or stopped containers"},
    {"container", "stats", "stats", NULL, cmd_stats, "Show containers' resource use"},
    {"container", "stop", "stop", NULL, cmd_stop, "Stop containers"},
    {"container", "top", "top", NULL, cmd_top, "Display the running processes of a container"},
    {"container", "wait", "wait", NULL, cmd_wait, "Block until containers stop, print exit codes"},
    {"image", "build", "build", NULL, cmd_build, "Build an image from a Dockerfile"},
    {"image", "history", "history", NULL, cmd_history, "Show the history of an image"},
    {"image", "import", "import", NULL, cmd_import,
     "Import a tarball, docker-save archive or OCI layout"},
    {"image", "inspect", "inspect", "image", cmd_inspect, "Show images"},
    {"image", "load", "load", NULL, cmd_load, "Load images from a docker-save archive"},
    {"image", "ls", "images", NULL, cmd_images, "List images (images)"},
    {"image", "list", "images", NULL, cmd_images, NULL},
    {"image", "prune", "prune", NULL, cmd_image_prune, "Free images no name refers to"},
    {"image", "pull", "pull", NULL, cmd_pull, "Download an image from a registry"},
    {"image", "push", "push", NULL, cmd_push, "Upload an image to a registry"},
    {"image", "rm", "rmi", NULL, cmd_rmi, "Remove image names (rmi)"},
    {"image", "save", "save", NULL, cmd_save, "Write an image as a docker-save archive"},
    {"image", "tag", "tag", NULL, cmd_tag, "Give an image another name"},
};

static void group_usage(FILE *f, const char *group)
{
    fprintf(f,
            "Usage: imgfs %s COMMAND\n\n"
            "Manage %ss: Docker's names for the verbs of imgfs --help.\n\nCommands:\n",
            group, group);
    for (size_t i = 0; i < sizeof group_verbs / sizeof group_verbs[0]; i++)
        if (!strcmp(group_verbs[i].group, group) && group_verbs[i].help)
            fprintf(f, "  %-10s %s\n", group_verbs[i].sub, group_verbs[i].help);
    fprintf(f, "\nRun 'imgfs %s COMMAND --help' for a command's options.\n", group);
}

/* argv[0] is the group, argv[1] the subcommand */
static int group_dispatch(int argc, char **argv, struct cli *cli)
{
    const char *group = argv[0];
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        group_usage(stdout, group); /* Docker: the usage, exit 0, also without a subcommand */
        return 0;
    }
    for (size_t i = 0; i < sizeof group_verbs / sizeof group_verbs[0]; i++) {
        const struct group_verb *g = &group_verbs[i];
        if (strcmp(g->group, group) || strcmp(g->sub, argv[1]))
            continue;
        char **args = xcalloc((size_t)argc + 3, sizeof *args);
        int n = 0;
        args[n++] = (char *)g->verb;
        if (g->type) {
            args[n++] = "--type";
            args[n++] = (char *)g->type;
        }
        for (int j = 2; j < argc; j++)
            args[n++] = argv[j];
        optind = 1;
        int rc = g->run(n, args, cli);
        free(args);
        return rc;
    }
    fprintf(stderr, "imgfs %s: unknown command `%s`\n", group, argv[1]);
    return cli_usage_error(group);
}

int cmd_container(int argc, char **argv, struct cli *cli)
{
    return group_dispatch(argc, argv, cli);
}

int cmd_image(int argc, char **argv, struct cli *cli)
{
    return group_dispatch(argc, argv, cli);
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
    /* a build's remover of its step directories (builder.h): spawned by imgfs build */
    if (!strcmp(verb, "__remove-trash"))
        return build_trash_main(argc - i + 1, argv + i - 1);
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
