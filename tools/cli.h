/* cli.h — what every verb of the `imgfs` command line shares. Only tools/ prints for people. */
#ifndef IMGFS_CLI_H
#define IMGFS_CLI_H

#include "../fs/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli {
    const char *root;    /* store root: --root, IMGFS_ROOT, or /var/lib/imgfs */
    const char *run_dir; /* runtime state: --run-dir, IMGFS_RUN_DIR, or /run/imgfs */
    const char *argv0;
};

/* Each verb: argv[0] is the verb's name. Returns the process exit status. */
#define IMGFS_VERBS(X)                                                                             \
    X(build, "Build an image from a Dockerfile")                                                   \
    X(import, "Import a rootfs tarball, docker-save archive or OCI layout")                        \
    X(export, "Write an image as an OCI layout, docker-save archive or rootfs tar")                \
    X(save, "Write an image as a docker-save archive (export -f docker)")                          \
    X(load, "Load images from a docker-save archive (import)")                                     \
    X(images, "List images")                                                                       \
    X(history, "Show the history of an image")                                                     \
    X(inspect, "Show containers and images (Docker's JSON, --format templates)")                   \
    X(tag, "Give an image another name")                                                           \
    X(rmi, "Remove image names")                                                                   \
    X(du, "Show logical and stored bytes and the dedup ratio")                                     \
    X(gc, "Free what no image references")                                                         \
    X(fsck, "Verify every chunk and reference in the store")                                       \
    X(mount, "Mount an image read-only on a directory")                                            \
    X(umount, "Unmount an image mounted with imgfs mount")                                         \
    X(run, "Run a command in a new container")                                                     \
    X(create, "Create a new container (started later by start)")                                   \
    X(start, "Start created or stopped containers")                                                \
    X(restart, "Stop containers and start them again")                                             \
    X(exec, "Run a command in a running container")                                                \
    X(ps, "List containers")                                                                       \
    X(logs, "Show a container's output")                                                           \
    X(wait, "Block until containers stop, then print their exit codes")                            \
    X(rename, "Rename a container")                                                                \
    X(port, "List a container's published ports")                                                  \
    X(top, "Display the running processes of a container")                                         \
    X(stats, "Show containers' CPU, memory, network and pids use")                                 \
    X(attach, "Not supported (--help says why): use logs -f or exec -it")                          \
    X(cp, "Copy files between a container and the host")                                           \
    X(diff, "List the changes to the files of a container's image")                                \
    X(container, "Manage containers: container ls, rm, inspect, ... (the verbs above)")            \
    X(image, "Manage images: image ls, rm, inspect, ... (the verbs above)")                        \
    X(system, "Show the space images and containers use: system df")                               \
    X(volume, "Manage volumes: create, ls, inspect, rm, prune")                                    \
    X(stop, "Stop a container (SIGTERM, then SIGKILL)")                                            \
    X(kill, "Send a signal to a container")                                                        \
    X(rm, "Remove containers")                                                                     \
    X(pull, "Download an image from a registry")                                                   \
    X(push, "Upload an image to a registry")                                                       \
    X(login, "Store credentials for a registry (checked against it)")                              \
    X(logout, "Remove stored credentials for a registry")                                          \
    X(commit, "Create an image from a container's changes")                                        \
    X(optimize, "Record which files a command's start-up reads (push puts them first)")

#define X(name, help) int cmd_##name(int argc, char **argv, struct cli *cli);
IMGFS_VERBS(X)
#undef X
/* `imgfs container prune`, `imgfs image prune`: argv[0] is "prune" */
int cmd_container_prune(int argc, char **argv, struct cli *cli);
int cmd_image_prune(int argc, char **argv, struct cli *cli);

/* Print "imgfs VERB: message" to stderr. */
void cli_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print an imgfs_err as "imgfs VERB: message". */
void cli_report(const char *verb, const struct imgfs_err *err);
struct store;
/* Open the store at cli->root; prints the error itself and returns NULL on failure. */
struct store *cli_store_open(const struct cli *cli, const char *verb, bool readonly);
/* `ref` names a registry (host.domain/..., host:port/..., localhost/...) and is not in the store:
 * pull it lazily with `ro` (tools/remote.c). TLS options given in `ro` are remembered for that
 * registry's lazy fetches even when the image is local (lazy_registry_remember). 0 when the image
 * is local now; -1 after reporting why not. */
struct registry_options;
int cli_lazy_ensure(const struct cli *cli, const char *ref, const struct registry_options *ro,
                    const char *verb);
/* `image` was pulled lazily and some of its chunks are still remote: fetch them now (progress on
 * stderr), for the verbs that need every byte (export, save, push). 0 when it is complete now
 * (or not in the store: the verb reports that); -1 after reporting why not (the registry is
 * unreachable: nothing is written). */
int cli_lazy_complete(const struct cli *cli, const char *image, const char *verb);
/* --fetch-timeout DURATION (500ms, 5s, 1m) and --prefetch trace|landmark|all|none of mount and
 * run; -1 after saying what is wrong. */
int cli_parse_fetch_timeout(const char *verb, const char *arg, unsigned *ms);
int cli_parse_prefetch(const char *verb, const char *arg, int *what);
/* A start-up being recorded (run --record-trace, optimize): `image` mounted privately at
 * t->rootfs with a trace (fs/mount.h trace_path); cli_trace_finish unmounts it and keeps the
 * trace with the image (lazy_trace_record); cli_trace_end cleans up (always call it). */
struct cli_trace {
    char *dir, *rootfs, *file;
    bool mounted;
};
struct digest;
int cli_trace_mount(const struct cli *cli, const char *image, unsigned fetch_timeout_ms,
                    int prefetch, struct cli_trace *t, struct imgfs_err *err);
int cli_trace_finish(const struct cli *cli, struct cli_trace *t, const struct digest *manifest,
                     size_t *n, struct imgfs_err *err);
void cli_trace_end(struct cli_trace *t);
struct store_read;
struct digest;
struct view_header;
/* The header of an image's view (its file count and logical size); false when it is missing. */
bool cli_view_header(struct store_read *r, const struct digest *manifest, struct view_header *h);
struct ctr_state;
/* For `stop`, `kill` and `rm`: run `act` on each container named in argv[optind..argc), printing
 * each name that succeeded (as Docker does) and each error. Returns the exit status: 0, or 1 when
 * any failed; with `missing_ok` a container that does not exist is reported but not a failure
 * (Docker's rm -f). */
int cli_each_container(const struct cli *cli, const char *verb, bool missing_ok, int optind_,
                       int argc, char **argv,
                       int (*act)(const char *run_dir, struct ctr_state *s, void *ctx,
                                  struct imgfs_err *err),
                       void *ctx);
/* "5 minutes"-style durations, as docker's CREATED and STATUS columns print them. */
void cli_human_duration(int64_t secs, char *buf, size_t len);
/* An RFC 3339 time of an image config ("2024-01-02T03:04:05.123Z", taken as UTC) in unix
 * seconds; 0 when missing or unreadable. */
int64_t cli_parse_time(const char *s);
/* "12.3MB"-style sizes, as docker prints them (decimal units). */
void cli_human_size(uint64_t bytes, char *buf, size_t len);
/* The id of a container (any state) made from the image whose manifest is `manifest`, or NULL
 * (rmi and image prune -a keep such an image's last name, as Docker). */
char *cli_container_of(const struct cli *cli, const struct digest *manifest);
/* The same in a list ctr_list made (for a verb that asks about many images): its id, or NULL. */
const char *cli_container_in(const struct ctr_state *list, size_t n, const struct digest *manifest);
/* The prune verbs' output, as Docker's: HEADING ("Deleted Volumes:") before the first name
 * deleted (*any says whether it has been printed), then "Total reclaimed space: SIZE", after a
 * blank line when a name was printed. */
void cli_prune_deleted(bool *any, const char *heading, const char *name);
/* Docker's prune prompt on stderr ("WARNING! WARNING\nAre you sure you want to continue? [y/N] ");
 * false, after printing "Total reclaimed space: 0B" as Docker does, unless the answer is yes. */
bool cli_prune_confirm(const char *warning);
void cli_prune_total(bool any, uint64_t bytes);
/* A byte count as Docker's options take it: "512", "1.5g", "64m", "10k", "2t" (powers of 1024;
 * an optional trailing b). */
int cli_parse_bytes(const char *s, uint64_t *out);
/* True for a --platform value of the form OS/ARCH[/VARIANT] (each part non-empty). */
bool cli_platform_valid(const char *p);
/* True when argv[1..] asks for help ("-h" or "--help" anywhere before "--"). */
bool cli_wants_help(int argc, char **argv);

struct option;
/* getopt_long for every verb: the same results, but a long option must be spelled out in full
 * (getopt_long would take "--priv" for "--privileged"), and errors are printed here in Docker's
 * words ("imgfs run: unknown flag: --priv"). Every error comes back as '?': the caller then
 * returns cli_usage_error(verb). argv[0] is the verb. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* The option parsing of a verb whose only option is -h/--help: -1 when the verb goes on with its
 * arguments at argv[optind], else the status to exit with (0 after printing `usage`, 125 after a
 * bad flag). `in_order`: stop at the first non-option (what follows it is not ours, as top's). */
int cli_help_only(int argc, char **argv, const char *verb, const char *usage, bool in_order);
/* The option cli_getopt just returned (`c`) as the user typed it ("--memory", "-m"), for messages
 * about its value. Valid until the next call. */
const char *cli_flag_typed(char **argv, int c);
/* ctr_find for a verb: 0 and the container in *out, or the error printed and the exit status to
 * return (1 for a missing container or an ambiguous prefix, as Docker; 125 otherwise). */
int cli_find_container(const struct cli *cli, const char *verb, const char *ref,
                       struct ctr_state *out);
/* Too few or too many arguments, for every verb: Docker's words ("imgfs stop: 'imgfs stop'
 * requires at least 1 argument", `requirement` being "requires at least 1 argument"), the pointer
 * to --help, and 125, as every usage error (Docker 20.10 exits 1 for these: docs/cli.md). */
int cli_wrong_args(const char *verb, const char *requirement);
/* "See 'imgfs VERB --help'." on stderr; returns 125, the exit status of every usage error. */
int cli_usage_error(const char *verb);

/* A name `imgfs` accepts for an image: REPOSITORY[:TAG], Docker's rules (lowercase repository). */
bool cli_valid_name(const char *name);

/* Options every registry verb (pull, push, login) takes: --tls-verify[=BOOL], --authfile FILE,
 * --ca-file FILE. Put CLI_REGISTRY_OPTIONS in the getopt_long table and CLI_REGISTRY_HELP in the
 * usage; pass unknown option characters to cli_registry_option (0 = it was one of them). */
#define CLI_REGISTRY_OPT_TLS      0x1001
#define CLI_REGISTRY_OPT_AUTHFILE 0x1002
#define CLI_REGISTRY_OPT_CAFILE   0x1003
#define CLI_REGISTRY_OPTIONS                                                                       \
    {"tls-verify", optional_argument, 0, CLI_REGISTRY_OPT_TLS},                                    \
        {"authfile", required_argument, 0, CLI_REGISTRY_OPT_AUTHFILE},                             \
    {                                                                                              \
        "ca-file", required_argument, 0, CLI_REGISTRY_OPT_CAFILE                                   \
    }
#define CLI_REGISTRY_HELP                                                                          \
    "      --tls-verify[=BOOL]     true: HTTPS with certificate checks even for loopback\n"        \
    "                              registries; false: HTTPS without checks (default: checks,\n"    \
    "                              plain HTTP for 127.0.0.0/8, localhost and insecure ones)\n"     \
    "      --authfile FILE         credentials (default $REGISTRY_AUTH_FILE or\n"                  \
    "                              ~/.config/imgfs/auth.json)\n"                                   \
    "      --ca-file FILE          also trust these CA certificates (PEM; or $CURL_CA_BUNDLE)\n"
struct registry_options;
int cli_registry_option(int c, const char *arg, struct registry_options *o, const char *verb);

/* REPO@DIGEST names (what pull and push record, Docker's RepoDigests): the digest of repo's
 * such name for `manifest` ("sha256:...", caller frees; NULL when none), and whether repo also has
 * a tagged name for it (then `images` shows the digest name in that row, not in its own). */
char *cli_repo_digest(struct store_read *r, const char *repo, const struct digest *manifest);
bool cli_repo_has_tag(struct store_read *r, const char *repo, const struct digest *manifest);

/* Transfer progress (tools/progress.c) for pull and push. */
enum cli_progress_mode {
    CLI_PROGRESS_PLAIN,
    CLI_PROGRESS_TTY,
    CLI_PROGRESS_QUIET,
    CLI_PROGRESS_JSON
};
struct cli_progress_layer {
    char status[96]; /* a copy: "Mounted from REPO" is made for the call */
    bool active;     /* a bar is drawn */
    uint64_t done, total;
    char hex[13];
};
struct cli_progress {
    enum cli_progress_mode mode;
    struct cli_progress_layer *layers;
    size_t n;
    int drawn;
    uint64_t last_draw, started;
};
struct digest;
void cli_progress_start(struct cli_progress *pg, size_t n_layers);
/* Layer i's state; a line is printed (plain mode) when it ends (active false, status changed):
 * docker's `HEX: STATUS`, without a size. */
void cli_progress_update(struct cli_progress *pg, size_t i, const struct digest *d,
                         const char *status, bool active, uint64_t done, uint64_t total);
/* For --json: whether a progress event is due now (at most 5 a second; final ones always). */
bool cli_progress_json_due(struct cli_progress *pg, bool final);
void cli_progress_free(struct cli_progress *pg);
/* One --json event line: {"event", "digest", and "layer", "done", "total" ("from") for a layer
 * event (l not NULL), else "layers"}. */
struct cli_progress_json_layer {
    size_t index;
    uint64_t done, total;
    const char *from;
};
void cli_progress_json(const char *event, const struct digest *d,
                       const struct cli_progress_json_layer *l, size_t n_layers);

/* --format for listings: Docker's Go-template subset (fs/template.h), one row per object; a
 * "table " prefix prints a header row (the template over `headers`, an object of column titles
 * with a row's keys) and aligns the tab-separated cells as Docker's tabwriter does. Errors are
 * printed. */
struct json_t;
struct cli_format {
    const char *verb, *tmpl;
    bool table;
    char **rows;
    size_t n;
    struct json_t *known;
};
/* format NULL: default_table (which starts with "table "); default_table NULL: an inspect's
 * format (no table). `known`: the fields of Docker's rows that imgfs's lack, as JSON
 * (tmpl_render's `known`: '{"Size":true}'), or NULL. 0, or the exit status after the error was
 * printed: cli_template_check's for the syntax, 1 for a field Docker's rows do not have (checked
 * on `headers`, so also when no row follows). */
/* Check a --format template before any work: 0, or the exit status after the error was printed:
 * Docker's for a template Go's parser refuses (`parse_status`: 1 for listings, 64 for inspects,
 * as Docker 20.10's), 125 for one it takes but imgfs's subset has not (docs/cli.md). */
int cli_template_check(const char *verb, const char *tmpl, int parse_status);
int cli_format_begin(struct cli_format *f, const char *verb, const char *format,
                     const char *default_table, struct json_t *headers, const char *known);
int cli_format_row(struct cli_format *f, struct json_t *row);
void cli_format_end(struct cli_format *f);

/* Exit status for an error: 125 is imgfs's own failure, as in Docker. */
#define EXIT_IMGFS_FAILED 125
/* What Docker's daemon (or a registry through it) refuses exits 1: pull, push, login, logout
 * after their options were read (docs/cli.md). */
#define EXIT_REFUSED 1

#endif
