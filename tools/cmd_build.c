/* imgfs build — Docker's `build` options, the Dockerfile and context found, the build run by
 * builder/builder.h, its progress rendered (TTY: steps with times and the last lines of output,
 * collapsing when done; plain: BuildKit's `#N` prefixed lines). */
#include "../builder/builder.h"
#include "../builder/dockerfile.h"
#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "Usage: imgfs build [OPTIONS] CONTEXT|-\n\n"
    "Build an image from a Dockerfile. CONTEXT is a directory whose files COPY and ADD read\n"
    "(filtered by .dockerignore); `-` reads the Dockerfile from stdin with no context. A\n"
    "registry image the store lacks is pulled lazily: the chunks of the files a step reads\n"
    "are fetched, the rest stays remote (imgfs du).\n\n"
    "Options:\n"
    "  -t, --tag NAME             name the image (repeatable)\n"
    "  -f, --file FILE            the Dockerfile (default CONTEXT/Dockerfile; `-`: stdin)\n"
    "      --build-arg K=V        set a build argument (K alone: our environment's value)\n"
    "      --target STAGE         build this stage and what it needs\n"
    "      --no-cache             run every step, use no cached result\n"
    "      --pull                 resolve a registry image (HOST/NAME:TAG) FROM or COPY\n"
    "                             --from names again, even one the store has\n"
    "      --network MODE         RUN's network: private (default), host, none\n"
    "      --secret id=ID,src=FILE  a secret for RUN --mount=type=secret (never in the image)\n"
    "      --ssh default|ID[=SOCKET]  forward an SSH agent socket to RUN --mount=type=ssh\n"
    "                             (default: $SSH_AUTH_SOCK)\n"
    "      --label K=V            a label on the image (repeatable)\n"
    "      --iidfile FILE         write the image id to FILE\n"
    "      --progress MODE        auto (default), plain, tty, quiet\n"
    "  -q, --quiet                print only the image id\n"
    "      --platform PLATFORM    linux/amd64 (the only one)\n"
    "      --go PACKAGE           no Dockerfile: `go build` PACKAGE on the host (CGO_ENABLED=0,\n"
    "                             -trimpath, your Go build cache) and put the binary at\n"
    "                             /app/NAME of one layer on the base, as its entrypoint\n"
    "      --base IMAGE           the base for --go (default: static:latest, tools/mkbase.sh)\n"
    "  -h, --help                 show this help\n\n"
    "SOURCE_DATE_EPOCH (environment or build arg) fixes every timestamp: the same inputs give\n"
    "the same image digest on any store.\n";

enum {
    OPT_BUILD_ARG = 256,
    OPT_TARGET,
    OPT_NO_CACHE,
    OPT_PULL,
    OPT_NETWORK,
    OPT_SECRET,
    OPT_LABEL,
    OPT_IIDFILE,
    OPT_PROGRESS,
    OPT_PLATFORM,
    OPT_GO,
    OPT_BASE,
    OPT_DUMP_AST,
    OPT_SSH,
};

/* ---- progress ---- */

/* Steps of stages that build in parallel are active at the same time: plain mode prefixes every
 * line with its step (#N), the TTY mode keeps a live area at the bottom with each active step and
 * its last lines, and prints a step's collapsed line above it when it ends. */

enum mode { P_PLAIN, P_TTY, P_QUIET };

#define TAIL_LINES 6

struct step_view {
    int step;
    char *name;
    struct timespec start;
    struct buf out; /* everything it printed (shown again when it fails on a TTY) */
    char *partial;  /* plain mode: the line not yet ended */
};

struct progress {
    enum mode mode;
    FILE *f;
    pthread_mutex_t mu;
    struct timespec t0;
    struct step_view **active; /* in the order they started */
    size_t n_active;
    int drawn; /* TTY: lines of the live area on screen */
};

static double since(const struct timespec *t)
{
    struct timespec n;
    clock_gettime(CLOCK_MONOTONIC, &n);
    return (double)(n.tv_sec - t->tv_sec) + (double)(n.tv_nsec - t->tv_nsec) / 1e9;
}

static struct step_view *find_step(struct progress *p, int step, size_t *pos)
{
    for (size_t i = 0; i < p->n_active; i++)
        if (p->active[i]->step == step) {
            if (pos)
                *pos = i;
            return p->active[i];
        }
    return NULL;
}

static void step_view_free(struct progress *p, struct step_view *v)
{
    size_t pos;
    if (find_step(p, v->step, &pos) == v) {
        memmove(&p->active[pos], &p->active[pos + 1], (p->n_active - pos - 1) * sizeof *p->active);
        p->n_active--;
    }
    buf_free(&v->out);
    free(v->name);
    free(v->partial);
    free(v);
}

static void tty_erase(struct progress *p)
{
    for (int i = 0; i < p->drawn; i++)
        fputs("\033[1A\033[2K", p->f);
    p->drawn = 0;
}

/* The live area: each active step's name and its last lines, redrawn in place. */
static void tty_draw(struct progress *p)
{
    tty_erase(p);
    for (size_t k = 0; k < p->n_active; k++) {
        struct step_view *v = p->active[k];
        fprintf(p->f, "\033[34m => %s %.1fs\033[0m\n", v->name, since(&v->start));
        p->drawn++;
        const char *s = (const char *)v->out.data;
        size_t len = v->out.len;
        size_t start = len;
        int lines = 0;
        while (start > 0 && lines <= TAIL_LINES) {
            start--;
            if (s[start] == '\n' && start + 1 < len)
                lines++;
        }
        if (lines > TAIL_LINES)
            start++;
        const char *q = s + start;
        while (q < s + len) {
            const char *nl = memchr(q, '\n', (size_t)(s + len - q));
            size_t n = nl ? (size_t)(nl - q) : (size_t)(s + len - q);
            if (n > 120)
                n = 120;
            fprintf(p->f, "\033[2m #%d %.*s\033[0m\n", v->step, (int)n, q);
            p->drawn++;
            q = nl ? nl + 1 : s + len;
        }
    }
    fflush(p->f);
}

static void p_step_start(void *ctx, int step, const char *name)
{
    struct progress *p = ctx;
    pthread_mutex_lock(&p->mu);
    struct step_view *v = xcalloc(1, sizeof *v);
    v->step = step;
    v->name = xstrdup(name);
    clock_gettime(CLOCK_MONOTONIC, &v->start);
    p->active = xrealloc(p->active, (p->n_active + 1) * sizeof *p->active);
    p->active[p->n_active++] = v;
    if (p->mode == P_PLAIN)
        fprintf(p->f, "#%d %s\n", step, name);
    else if (p->mode == P_TTY)
        tty_draw(p);
    fflush(p->f);
    pthread_mutex_unlock(&p->mu);
}

/* Plain mode: the ended lines of `v`'s output, each prefixed with the step and its time. */
static void plain_lines(struct progress *p, struct step_view *v, const char *data, size_t len)
{
    struct buf line = {0};
    if (v->partial)
        buf_append(&line, v->partial, strlen(v->partial));
    free(v->partial);
    v->partial = NULL;
    buf_append(&line, data, len);
    const char *s = (const char *)line.data, *end = s + line.len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) {
            v->partial = strndup(s, (size_t)(end - s));
            break;
        }
        fprintf(p->f, "#%d %.3f %.*s\n", v->step, since(&v->start), (int)(nl - s), s);
        s = nl + 1;
    }
    buf_free(&line);
}

static void plain_flush(struct progress *p, struct step_view *v)
{
    if (v->partial) {
        fprintf(p->f, "#%d %.3f %s\n", v->step, since(&v->start), v->partial);
        free(v->partial);
        v->partial = NULL;
    }
}

static void p_step_output(void *ctx, int step, const char *data, size_t len)
{
    struct progress *p = ctx;
    pthread_mutex_lock(&p->mu);
    struct step_view *v = find_step(p, step, NULL);
    if (v) {
        if (v->out.len < (16u << 20))
            buf_append(&v->out, data, len);
        if (p->mode == P_PLAIN)
            plain_lines(p, v, data, len);
        else if (p->mode == P_TTY)
            tty_draw(p);
        fflush(p->f);
    }
    pthread_mutex_unlock(&p->mu);
}

/* A step's view is done: dropped, the live area redrawn without it; unlocks. */
static void step_end_locked(struct progress *p, struct step_view *v)
{
    if (v)
        step_view_free(p, v);
    if (p->mode == P_TTY)
        tty_draw(p);
    fflush(p->f);
    pthread_mutex_unlock(&p->mu);
}

static void p_step_done(void *ctx, int step, bool cached, double secs)
{
    struct progress *p = ctx;
    pthread_mutex_lock(&p->mu);
    struct step_view *v = find_step(p, step, NULL);
    if (p->mode == P_PLAIN) {
        if (v)
            plain_flush(p, v);
        if (cached)
            fprintf(p->f, "#%d CACHED\n\n", step);
        else
            fprintf(p->f, "#%d DONE %.1fs\n\n", step, secs);
    } else if (p->mode == P_TTY && v) {
        tty_erase(p);
        if (cached)
            fprintf(p->f, " => CACHED %s\n", v->name);
        else
            fprintf(p->f, " => %-60s %5.1fs\n", v->name, secs);
    }
    step_end_locked(p, v);
}

/* A step that failed: its whole output (the TTY showed only its tail); one that stopped because
 * another failed or the build was interrupted: CANCELED, as BuildKit. */
static void p_step_failed(void *ctx, int step, bool canceled)
{
    struct progress *p = ctx;
    pthread_mutex_lock(&p->mu);
    struct step_view *v = find_step(p, step, NULL);
    if (v && p->mode != P_QUIET) {
        if (p->mode == P_TTY)
            tty_erase(p);
        if (p->mode == P_PLAIN) {
            plain_flush(p, v);
            fprintf(p->f, canceled ? "#%d CANCELED\n\n" : "#%d ERROR\n\n", step);
        } else if (canceled) {
            fprintf(p->f, " => CANCELED %s\n", v->name);
        }
        if (!canceled && p->mode != P_PLAIN && v->out.len) {
            fprintf(p->f, "------\n > %s:\n", v->name);
            fwrite(v->out.data, 1, v->out.len, p->f);
            if (v->out.data[v->out.len - 1] != '\n')
                fputc('\n', p->f);
            fputs("------\n", p->f);
        }
    }
    step_end_locked(p, v);
}

static void p_note(void *ctx, const char *msg)
{
    struct progress *p = ctx;
    if (p->mode == P_QUIET && strncmp(msg, "WARNING", 7) && strncmp(msg, "[Warning]", 9))
        return;
    pthread_mutex_lock(&p->mu);
    if (p->mode == P_TTY)
        tty_erase(p);
    fprintf(p->f, p->mode == P_PLAIN ? "#0 %s\n" : " => %s\n", msg);
    if (p->mode == P_TTY)
        tty_draw(p);
    fflush(p->f);
    pthread_mutex_unlock(&p->mu);
}

/* The build ended: a step still shown (a failed Go fast path reports no failed step) as failed;
 * the display's memory freed. */
static void p_failed(struct progress *p)
{
    while (p->n_active)
        p_step_failed(p, p->active[0]->step, false);
    free(p->active);
    p->active = NULL;
}

/* ---- options ---- */

static char **push(char **v, size_t *n, const char *s)
{
    v = xrealloc(v, (*n + 2) * sizeof *v);
    v[(*n)++] = (char *)s;
    v[*n] = NULL;
    return v;
}

static int parse_secret(const char *spec, struct build_secret *s)
{
    cleanup_free char *copy = xstrdup(spec);
    memset(s, 0, sizeof *s);
    char *save = NULL;
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char *v = strchr(f, '=');
        if (!v)
            return -1;
        *v++ = 0;
        if (!strcmp(f, "id"))
            s->id = xstrdup(v);
        else if (!strcmp(f, "src") || !strcmp(f, "source"))
            s->src = xstrdup(v);
        else if (!strcmp(f, "type") && !strcmp(v, "file"))
            ;
        else
            return -1;
    }
    if (!s->id && s->src) {
        const char *b = strrchr(s->src, '/');
        s->id = xstrdup(b ? b + 1 : s->src);
    }
    if (!s->id || !s->src)
        return -1;
    return 0;
}

static volatile int interrupted;
static void on_signal(int sig)
{
    interrupted = sig;
}

/* SOURCE_DATE_EPOCH (NULL or "": unset, *out untouched); prints the error. */
static int parse_source_date_epoch(const char *sde, int64_t *out)
{
    if (!sde || !*sde)
        return 0;
    char *end;
    long long v = strtoll(sde, &end, 10);
    if (*end || v < 0) {
        cli_error("build", "invalid SOURCE_DATE_EPOCH `%s`: want seconds since 1970", sde);
        return -1;
    }
    *out = v;
    return 0;
}

static void progress_init(struct progress *p, struct build_progress *pr, bool quiet,
                          const char *mode)
{
    *p = (struct progress){.f = stderr};
    pthread_mutex_init(&p->mu, NULL);
    clock_gettime(CLOCK_MONOTONIC, &p->t0);
    if (quiet || !strcmp(mode, "quiet"))
        p->mode = P_QUIET;
    else if (!strcmp(mode, "plain"))
        p->mode = P_PLAIN;
    else if (!strcmp(mode, "tty") || isatty(2))
        p->mode = P_TTY;
    else
        p->mode = P_PLAIN;
    *pr = (struct build_progress){.ctx = p,
                                  .step_start = p_step_start,
                                  .step_output = p_step_output,
                                  .step_done = p_step_done,
                                  .step_failed = p_step_failed,
                                  .note = p_note};
}

/* The image id, the names and the summary, as Docker prints them; --iidfile. */
static int report_built(struct progress *p, const struct build_result *res, char **tags,
                        size_t n_tags, const char *iidfile)
{
    struct imgfs_err err = {0};
    char id[DIGEST_STR_SIZE];
    digest_str(&res->image, id);
    if (p->mode == P_QUIET) {
        printf("%s\n", id);
    } else {
        fprintf(stderr,
                p->mode == P_PLAIN ? "#0 writing image %s done\n" : " => writing image %s done\n",
                id);
        for (size_t i = 0; i < n_tags; i++) {
            char *n = NULL;
            const char *t = tags[i];
            if (!strchr(t + (strrchr(t, '/') ? (size_t)(strrchr(t, '/') - t) : 0), ':'))
                n = xasprintf("%s:latest", t);
            fprintf(stderr,
                    p->mode == P_PLAIN ? "#0 naming to %s done\n" : " => naming to %s done\n",
                    n ? n : t);
            free(n);
        }
        fprintf(stderr, "Built %s in %.1fs (%d steps, %d cached)\n", id, since(&p->t0), res->steps,
                res->cached);
    }
    if (iidfile) {
        cleanup_free char *line = xstrdup(id);
        if (write_file_atomic(iidfile, line, strlen(line), 0644, &err) < 0) {
            cli_report("build", &err);
            return EXIT_IMGFS_FAILED;
        }
    }
    return 0;
}

/* --go PACKAGE: the Go fast path (builder.h build_go), no Dockerfile and no context. */
static int build_go_verb(const struct cli *cli, const char *package, const char *base, char **tags,
                         size_t n_tags, bool quiet, const char *progress_mode, const char *iidfile)
{
    struct build_go_options g = {
        .root = cli->root, .package = package, .base = base, .tags = tags, .source_date_epoch = -1};
    if (parse_source_date_epoch(getenv("SOURCE_DATE_EPOCH"), &g.source_date_epoch) < 0)
        return EXIT_IMGFS_FAILED;
    struct progress p;
    struct build_progress pr;
    progress_init(&p, &pr, quiet, progress_mode);
    g.progress = &pr;
    struct build_result res;
    struct imgfs_err err = {0};
    if (build_go(&g, &res, &err) < 0) {
        p_failed(&p);
        cli_report("build", &err);
        return err.code == ECHILD ? 1 : EXIT_IMGFS_FAILED;
    }
    p_failed(&p); /* nothing is left active: frees the display */
    return report_built(&p, &res, tags, n_tags, iidfile);
}

/* The hidden --dump-ast FILE (`-`: stdin): BuildKit's parser dump (df_dump, the form of the
 * conformance data's `result` files), after the syntactic pass only, as the conformance test
 * parses; nothing is built. */
static int dump_ast(const char *file)
{
    struct buf text = {0};
    struct imgfs_err err = {0};
    if (!strcmp(file, "-")) {
        char chunk[65536];
        ssize_t n;
        while ((n = read(0, chunk, sizeof chunk)) > 0)
            buf_append(&text, chunk, (size_t)n);
    } else if (read_file(file, 16 << 20, &text, &err) < 0) {
        cli_error("build", "failed to read dockerfile: open %s: %s", file, strerror(err.code));
        return 1;
    }
    struct df_file *f = NULL;
    int rc = df_parse(strcmp(file, "-") ? file : "Dockerfile", text.data ? (char *)text.data : "",
                      text.len, DF_PARSE_SYNTAX_ONLY, &f, &err);
    buf_free(&text);
    if (rc < 0) {
        cli_report("build", &err);
        return 1;
    }
    cleanup_free char *dump = df_dump(f);
    df_file_free(f);
    fputs(dump, stdout);
    return 0;
}

int cmd_build(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"tag", required_argument, NULL, 't'},
        {"file", required_argument, NULL, 'f'},
        {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
        {"target", required_argument, NULL, OPT_TARGET},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"pull", no_argument, NULL, OPT_PULL},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"ssh", required_argument, NULL, OPT_SSH},
        {"label", required_argument, NULL, OPT_LABEL},
        {"iidfile", required_argument, NULL, OPT_IIDFILE},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        {"quiet", no_argument, NULL, 'q'},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"go", required_argument, NULL, OPT_GO},
        {"base", required_argument, NULL, OPT_BASE},
        {"dump-ast", required_argument, NULL, OPT_DUMP_AST},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct build_options o = {.root = cli->root, .run_dir = cli->run_dir, .source_date_epoch = -1};
    char **tags = NULL, **args = NULL, **labels = NULL;
    size_t n_tags = 0, n_args = 0, n_labels = 0;
    struct build_secret *secrets = NULL;
    size_t n_secrets = 0;
    struct build_ssh *ssh = NULL;
    size_t n_ssh = 0;
    const char *file = NULL, *iidfile = NULL, *progress_mode = "auto";
    bool quiet = false;
    int rc = EXIT_IMGFS_FAILED, c;
    struct buf text = {0};
    struct imgfs_err err = {0};
    char *default_file = NULL;
    const char *go_package = NULL, *go_base = NULL;

    while ((c = cli_getopt(argc, argv, "t:f:qh", longopts)) != -1) {
        switch (c) {
        case 't':
            if (!cli_valid_name(optarg)) {
                cli_error("build",
                          "invalid argument \"%s\" for \"-t, --tag\" flag: invalid "
                          "reference format",
                          optarg);
                goto out;
            }
            tags = push(tags, &n_tags, optarg);
            break;
        case 'f':
            file = optarg;
            break;
        case OPT_BUILD_ARG:
            args = push(args, &n_args, optarg);
            break;
        case OPT_TARGET:
            o.target = optarg;
            break;
        case OPT_NO_CACHE:
            o.no_cache = true;
            break;
        case OPT_PULL:
            o.pull = true;
            break;
        case OPT_NETWORK:
            if (!strcmp(optarg, "private") || !strcmp(optarg, "default") ||
                !strcmp(optarg, "bridge"))
                o.network = BUILD_NET_PRIVATE;
            else if (!strcmp(optarg, "host"))
                o.network = BUILD_NET_HOST;
            else if (!strcmp(optarg, "none"))
                o.network = BUILD_NET_NONE;
            else {
                cli_error("build", "network mode \"%s\" not supported: private, host or none",
                          optarg);
                goto out;
            }
            break;
        case OPT_SECRET:
            secrets = xrealloc(secrets, (n_secrets + 1) * sizeof *secrets);
            if (parse_secret(optarg, &secrets[n_secrets]) < 0) {
                cli_error("build", "invalid secret `%s`: want id=ID,src=FILE", optarg);
                goto out;
            }
            if (access(secrets[n_secrets].src, R_OK) < 0) {
                cli_error("build", "failed to stat secret source %s: %s", secrets[n_secrets].src,
                          strerror(errno));
                n_secrets++;
                goto out;
            }
            n_secrets++;
            break;
        case OPT_SSH: {
            /* Docker's form: ID[=SOCKET[,SOCKET]]; no socket: $SSH_AUTH_SOCK */
            const char *eq = strchr(optarg, '=');
            cleanup_free char *id = eq ? strndup(optarg, (size_t)(eq - optarg)) : xstrdup(optarg);
            const char *sock = eq ? eq + 1 : getenv("SSH_AUTH_SOCK");
            if (!*id) {
                cli_error("build", "invalid --ssh `%s`: want default|ID[=SOCKET]", optarg);
                goto out;
            }
            if (!sock || !*sock) {
                cli_error(
                    "build",
                    "invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set (--ssh %s)",
                    optarg);
                goto out;
            }
            if (strchr(sock, ',')) {
                cli_error("build", "--ssh %s: imgfs forwards an agent socket, not key files",
                          optarg);
                goto out;
            }
            struct stat sst;
            if (stat(sock, &sst) < 0 || !S_ISSOCK(sst.st_mode)) {
                cli_error("build", "--ssh %s: `%s` is not a socket: %s", optarg, sock,
                          errno && !S_ISSOCK(sst.st_mode) ? strerror(errno) : "not a socket");
                goto out;
            }
            ssh = xrealloc(ssh, (n_ssh + 1) * sizeof *ssh);
            ssh[n_ssh].id = xstrdup(id);
            ssh[n_ssh++].socket = xstrdup(sock);
            break;
        }
        case OPT_LABEL:
            labels = push(labels, &n_labels, optarg);
            break;
        case OPT_IIDFILE:
            iidfile = optarg;
            break;
        case OPT_PROGRESS:
            if (strcmp(optarg, "auto") && strcmp(optarg, "plain") && strcmp(optarg, "tty") &&
                strcmp(optarg, "quiet")) {
                cli_error("build", "unknown --progress `%s`: auto, plain, tty or quiet", optarg);
                goto out;
            }
            progress_mode = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case OPT_PLATFORM:
            if (strcmp(optarg, "linux/amd64") && strcmp(optarg, "linux/x86_64")) {
                cli_error("build", "platform %s is not supported: linux/amd64 only", optarg);
                goto out;
            }
            break;
        case OPT_GO:
            go_package = optarg;
            break;
        case OPT_BASE:
            go_base = optarg;
            break;
        case OPT_DUMP_AST:
            rc = dump_ast(optarg);
            goto out;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default:
            rc = cli_usage_error("build");
            goto out;
        }
    }
    if (go_base && !go_package) {
        cli_error("build", "--base goes with --go (a Dockerfile names its base in FROM)");
        rc = cli_usage_error("build");
        goto out;
    }
    if (go_package) {
        if (optind != argc) {
            cli_error("build", "--go PACKAGE takes no context argument");
            rc = cli_usage_error("build");
            goto out;
        }
        if (file || n_args || n_labels || n_secrets || o.target) {
            cli_error("build", "--go builds without a Dockerfile: no -f, --build-arg, --label, "
                               "--secret or --target");
            rc = cli_usage_error("build");
            goto out;
        }
        rc = build_go_verb(cli, go_package, go_base, tags, n_tags, quiet, progress_mode, iidfile);
        goto out;
    }
    if (optind != argc - 1) {
        rc = cli_wrong_args("build", "requires exactly 1 argument (the context: a directory, "
                                     "or - for a Dockerfile on stdin)");
        goto out;
    }
    const char *context = argv[optind];
    if (!strcmp(context, "-")) {
        if (file && strcmp(file, "-")) {
            cli_error("build", "a Dockerfile on stdin (context `-`) takes no -f");
            goto out;
        }
        file = "-";
        o.context = NULL;
    } else {
        struct stat st;
        if (stat(context, &st) < 0 || !S_ISDIR(st.st_mode)) {
            cli_error("build", "unable to prepare context: path \"%s\" not found", context);
            rc = 1;
            goto out;
        }
        o.context = context;
        if (!file)
            file = default_file = xasprintf("%s/Dockerfile", context);
    }
    if (!strcmp(file, "-")) {
        char chunk[65536];
        ssize_t n;
        while ((n = read(0, chunk, sizeof chunk)) > 0)
            buf_append(&text, chunk, (size_t)n);
        o.dockerfile_path = "Dockerfile";
    } else {
        if (read_file(file, 16 << 20, &text, &err) < 0) {
            cli_error("build", "failed to read dockerfile: open %s: %s", file, strerror(err.code));
            rc = 1;
            goto out;
        }
        o.dockerfile_path = file;
    }
    o.dockerfile = text.data ? (const char *)text.data : "";
    o.dockerfile_len = text.len;
    o.tags = tags;
    o.labels = labels;
    o.secrets = secrets;
    o.n_secrets = n_secrets;
    o.ssh = ssh;
    o.n_ssh = n_ssh;
    /* SOURCE_DATE_EPOCH: the build arg wins over the environment, as in BuildKit */
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    for (size_t i = 0; i < n_args; i++)
        if (!strncmp(args[i], "SOURCE_DATE_EPOCH=", 18))
            sde = args[i] + 18;
    if (parse_source_date_epoch(sde, &o.source_date_epoch) < 0)
        goto out;
    o.build_args = args;

    struct progress p;
    struct build_progress pr;
    progress_init(&p, &pr, quiet, progress_mode);
    o.progress = &pr;
    o.interrupted = &interrupted;

    /* Ctrl-C: the container gets it through the process group and the step fails; we clean up
     * and exit as Docker does */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct build_result res;
    int failed = 0;
    if (build_run(&o, &res, &failed, &err) < 0) {
        p_failed(&p);
        if (interrupted)
            fprintf(stderr, "imgfs build: interrupted\n");
        if (!interrupted || err.code != EINTR) /* not the same words twice */
            cli_report("build", &err);
        rc = interrupted ? 130 : 1;
        goto out;
    }
    p_failed(&p); /* nothing is left active: frees the display */
    rc = report_built(&p, &res, tags, n_tags, iidfile);
out:
    for (size_t i = 0; i < n_secrets; i++) {
        free((char *)secrets[i].id);
        free((char *)secrets[i].src);
    }
    free(secrets);
    for (size_t i = 0; i < n_ssh; i++) {
        free((char *)ssh[i].id);
        free((char *)ssh[i].socket);
    }
    free(ssh);
    free(tags);
    free(args);
    free(labels);
    buf_free(&text);
    free(default_file);
    return rc;
}
