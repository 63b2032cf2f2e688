/* imgfs run and imgfs create — parse Docker's options, resolve the image to its shared mount,
 * hand over to ctr_run or ctr_create (runner/runner.h). The two verbs take the same options. */
#include "../fs/image.h"
#include "../fs/registry.h"
#include "../runner/runner.h"
#include "cli.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static const char usage_run[] =
    "Usage: imgfs run [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
    "Run a command in a new container. IMAGE is an image in the store (name, digest or digest\n"
    "prefix), mounted once and shared by all its containers, or an absolute path to a rootfs\n"
    "directory.\n\n";
static const char usage_create[] =
    "Usage: imgfs create [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
    "Create a new container without starting it (state \"created\"), and print its full ID;\n"
    "`imgfs start` runs it (detached; -a attaches). The options are run's but -d.\n\n";
static const char usage[] =
    "Options:\n"
    "      --name NAME            name the container\n"
    "  -d, --detach               run in the background and print the container id\n"
    "      --restart POLICY       no (default), on-failure[:MAX], always, unless-stopped: the\n"
    "                             container's monitor starts it again when it ends (100 ms,\n"
    "                             then twice as long each time; not after stop or kill; no\n"
    "                             daemon: nothing restarts at host boot, see docs/runner.md)\n"
    "      --rm                   remove the container when it exits\n"
    "      --init                 run imgfs-init as PID 1: it reaps orphans and passes signals\n"
    "                             on to the command (without it the command is PID 1, as in\n"
    "                             Docker, and ignores signals it has no handler for)\n"
    "  -i, --interactive          keep stdin open\n"
    "  -a, --attach STREAM        attach to stdin, stdout or stderr (repeatable; default stdout\n"
    "                             and stderr): a stream not attached is only in `logs`\n"
    "  -t, --tty                  allocate a pseudo-terminal\n"
    "  -e, --env KEY[=VALUE]      set an environment variable (KEY alone: our value)\n"
    "      --env-file FILE        read KEY=VALUE lines from FILE\n"
    "  -w, --workdir DIR          working directory inside the container\n"
    "  -u, --user USER[:GROUP]    user name or uid (and group) to run as\n"
    "      --entrypoint CMD       override the image's entrypoint\n"
    "      --hostname NAME        the container's host name\n"
    "  -v, --volume HOST:CTR[:ro] bind-mount a host path (a missing directory is made)\n"
    "  -v, --volume NAME:CTR[:ro] mount a named volume (made when new, filled from the image)\n"
    "  -v, --volume CTR           mount a new anonymous volume (removed by rm -v, --rm)\n"
    "      --mount type=bind|volume|tmpfs,source=SRC,target=CTR[,readonly][,...]\n"
    "                             Docker's --mount (bind-propagation, volume-nocopy,\n"
    "                             tmpfs-size, tmpfs-mode); a bind source must exist\n"
    "      --device HOST[:CTR[:rwm]]  give the container a host device (node and cgroup rule)\n"
    "      --tmpfs CTR[:OPTIONS]  mount a tmpfs\n"
    "      --read-only            no writable layer: the rootfs is read-only\n"
    "      --cap-add CAP          add a capability (or ALL)\n"
    "      --cap-drop CAP         drop a capability (or ALL)\n"
    "      --privileged           every capability, no seccomp filter, no masked paths\n"
    "      --security-opt OPT     no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json\n"
    "  -m, --memory BYTES         memory limit (suffixes k, m, g)\n"
    "      --pids-limit N         limit the number of processes\n"
    "      --cpus N               CPU limit (e.g. 1.5)\n"
    "      --network MODE         private (default: own namespace + slirp4netns), host, none;\n"
    "                             private:allow_host_loopback=true reaches the host's\n"
    "                             127.0.0.1 at 10.0.2.2 (off by default)\n"
    "  -p, --publish [IP:]HOST:CTR[/tcp|/udp]  publish a container port on the host\n"
    "  -P, --publish-all          publish every EXPOSEd port on a free host port\n"
    "  -l, --label KEY[=VALUE]    set a label on the container (over the image's)\n"
    "      --add-host NAME:IP     add a line to /etc/hosts\n"
    "      --dns IP               a DNS server for /etc/resolv.conf (replaces the default ones)\n"
    "      --dns-search DOMAIN    a DNS search domain\n"
    "      --dns-option OPT       a resolver option (ndots:2, ...)\n"
    "      --stop-signal SIG      the signal `stop` sends (default: the image's, else SIGTERM)\n"
    "      --stop-timeout SECS    how long `stop` waits before SIGKILL (default 10)\n"
    "      --shm-size BYTES       size of /dev/shm (default 64m)\n"
    "      --ulimit NAME=SOFT[:HARD]  a resource limit (nofile, nproc, core, stack, ...)\n"
    "      --group-add GROUP      an additional group (gid or name in the image)\n"
    "      --pid MODE             host: share the host's PID namespace\n"
    "      --ipc MODE             host: share the host's IPC namespace (private: default)\n"
    "      --platform OS/ARCH     warn when the image is for another platform (nothing is\n"
    "                             emulated)\n"
    "      --tls-verify[=BOOL], --ca-file FILE, --authfile FILE\n"
    "                             IMAGE from a registry: how its lazy pull and every later\n"
    "                             fetch of its content talk to the registry (see `imgfs\n"
    "                             pull --help`); remembered for that registry\n"
    "A lazily pulled image (docs/lazy.md), when this run mounts it (run only):\n"
    "      --prefetch WHAT        what to fetch in the background, behind reads: trace (the\n"
    "                             recorded start-up's files, the default), all, none\n"
    "      --fetch-timeout DURATION  how long a read may wait for its chunks, retries\n"
    "                             included, before it fails with EIO (default 5s)\n"
    "      --record-trace         record the files this start-up reads, in order, and keep\n"
    "                             the list with the image (as `imgfs optimize`): `imgfs push`\n"
    "                             writes them first, before the eStargz prefetch landmark.\n"
    "                             The container gets a private mount (needs --rm, not -d)\n"
    "  -h, --help                 show this help\n";

enum {
    OPT_NAME = 256,
    OPT_RM,
    OPT_ENV_FILE,
    OPT_ENTRYPOINT,
    OPT_HOSTNAME,
    OPT_TMPFS,
    OPT_READ_ONLY,
    OPT_CAP_ADD,
    OPT_CAP_DROP,
    OPT_PRIVILEGED,
    OPT_SECURITY_OPT,
    OPT_PIDS_LIMIT,
    OPT_CPUS,
    OPT_NETWORK,
    OPT_ADD_HOST,
    OPT_DNS,
    OPT_DNS_SEARCH,
    OPT_DNS_OPTION,
    OPT_STOP_SIGNAL,
    OPT_STOP_TIMEOUT,
    OPT_PLATFORM,
    OPT_SHM_SIZE,
    OPT_ULIMIT,
    OPT_GROUP_ADD,
    OPT_PID,
    OPT_IPC,
    OPT_RESTART,
    OPT_PREFETCH,
    OPT_FETCH_TIMEOUT,
    OPT_RECORD_TRACE,
    OPT_MOUNT,
    OPT_DEVICE,
    OPT_INIT,
};

static bool is_ip(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

/* "SIGQUIT", "QUIT", "3" (what ctr_stop understands) */
static bool is_signal(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (end != s && !*end)
        return n > 0 && n < NSIG;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (int i = 1; i < NSIG; i++)
        if (sigabbrev_np(i) && !strcasecmp(sigabbrev_np(i), s))
            return true;
    return false;
}

static char **strv_push(char **v, size_t *n, const char *s)
{
    v = xrealloc(v, (*n + 2) * sizeof *v);
    v[(*n)++] = xstrdup(s);
    v[*n] = NULL;
    return v;
}

static void strv_release(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* The anonymous volumes made for a container that never was go with it (those no other
 * container uses). */
static void remove_new_anonymous(const struct cli *cli, const struct ctr_mount *mounts, size_t n)
{
    char **made = NULL;
    size_t n_made = 0;
    for (size_t i = 0; i < n; i++)
        if (mounts[i].anonymous && mounts[i].source)
            made = strv_push(made, &n_made, mounts[i].source);
    ctr_anonymous_volumes_remove(cli->run_dir, made);
    strv_release(made);
}

/* Docker's env-file: KEY=VALUE lines, KEY alone takes our value, # comments, blank lines. */
static int read_env_file(const char *path, char ***env, size_t *n, struct imgfs_err *err)
{
    struct buf b = {0};
    if (read_file(path, 16 << 20, &b, err) < 0)
        return err_ctx(err, "--env-file");
    buf_append(&b, "", 1);
    char *save = NULL;
    for (char *line = strtok_r((char *)b.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[len - 1] = 0;
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        size_t key = strcspn(line, "=");
        if (strcspn(line, " \t") < key) {
            err_set(err, EINVAL,
                    "poorly formatted environment: variable '%.*s' contains whitespaces (in `%s`)",
                    (int)key, line, path);
            buf_free(&b);
            return -1;
        }
        if (key == 0) {
            err_set(err, EINVAL, "invalid environment variable: %s (in `%s`)", line, path);
            buf_free(&b);
            return -1;
        }
        *env = strv_push(*env, n, line);
    }
    buf_free(&b);
    return 0;
}

/* -v HOST:CTR[:MODE], -v NAME:CTR[:MODE] (a named volume), -v CTR (an anonymous volume);
 * MODE: ro, rw, nocopy, comma-separated */
static int parse_volume(const char *spec, struct ctr_mount *m, struct imgfs_err *err)
{
    memset(m, 0, sizeof *m);
    cleanup_free char *copy = xstrdup(spec);
    char *target = strchr(copy, ':');
    if (target == copy || !*copy)
        return err_set(err, EINVAL, "invalid volume specification: '%s'", spec);
    char *mode = NULL, *source = copy;
    if (!target) { /* -v /data: an anonymous volume */
        target = copy;
        source = NULL;
    } else {
        *target++ = 0;
        mode = strchr(target, ':');
        if (mode)
            *mode++ = 0;
    }
    for (char *save = NULL, *w = mode ? strtok_r(mode, ",", &save) : NULL; w;
         w = strtok_r(NULL, ",", &save)) {
        if (!strcmp(w, "ro"))
            m->readonly = true;
        else if (!strcmp(w, "nocopy"))
            m->nocopy = true;
        else if (strcmp(w, "rw") && strcmp(w, "z") && strcmp(w, "Z"))
            return err_set(err, EINVAL, "invalid mode: %s (in volume `%s`)", w, spec);
    }
    if (target[0] != '/')
        return err_set(err, EINVAL,
                       "invalid volume specification: '%s': the container path `%s` must be "
                       "absolute",
                       spec, target);
    if (!target[strspn(target, "/")])
        return err_set(err, EINVAL, "invalid volume specification: '%s': destination can't be '/'",
                       spec);
    m->target = xstrdup(target);
    if (!source || source[0] != '/') {
        /* a volume of the store root, made on first use (ctr_volumes_prepare) */
        if (source && !ctr_volume_name_valid(source))
            return ctr_volume_name_error(source, err);
        m->volume = true;
        m->anonymous = !source;
        m->volume_name = source ? xstrdup(source) : NULL;
        return 0;
    }
    if (m->nocopy)
        return err_set(err, EINVAL, "invalid mode: nocopy (in volume `%s`: only for volumes)",
                       spec);
    /* as Docker: a host directory that does not exist yet is created (mkdir -p, 0755) */
    char *real = realpath(source, NULL);
    if (!real && errno == ENOENT && mkdir_p(source, 0755, err) < 0)
        return err_ctx(err, "creating volume source `%s`", source);
    if (!real)
        real = realpath(source, NULL);
    if (!real)
        return err_sys(err, errno, "volume source `%s`", source);
    m->source = real;
    return 0;
}

static int parse_tmpfs(const char *spec, struct ctr_mount *m, struct imgfs_err *err)
{
    memset(m, 0, sizeof *m);
    m->tmpfs = true;
    const char *colon = strchr(spec, ':');
    m->target = colon ? strndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
    if (m->target[0] != '/')
        return err_set(err, EINVAL, "tmpfs target `%s` must be an absolute path", m->target);
    if (colon && colon[1]) {
        /* "ro" is a mount flag, not a tmpfs option */
        struct buf o = {0};
        cleanup_free char *opts = xstrdup(colon + 1);
        char *save = NULL;
        for (char *w = strtok_r(opts, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
            if (!strcmp(w, "ro")) {
                m->readonly = true;
                continue;
            }
            if (!strcmp(w, "rw"))
                continue;
            if (o.len)
                buf_append(&o, ",", 1);
            buf_append(&o, w, strlen(w));
        }
        buf_append(&o, "", 1);
        m->options = (char *)o.data;
    }
    return 0;
}

static int run_or_create(int argc, char **argv, struct cli *cli, bool create)
{
    const char *verb = create ? "create" : "run";
    static const struct option longopts[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"detach", no_argument, NULL, 'd'},
        {"rm", no_argument, NULL, OPT_RM},
        {"interactive", no_argument, NULL, 'i'},
        {"attach", required_argument, NULL, 'a'},
        {"tty", no_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
        {"hostname", required_argument, NULL, OPT_HOSTNAME},
        {"volume", required_argument, NULL, 'v'},
        {"tmpfs", required_argument, NULL, OPT_TMPFS},
        {"read-only", no_argument, NULL, OPT_READ_ONLY},
        {"cap-add", required_argument, NULL, OPT_CAP_ADD},
        {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
        {"privileged", no_argument, NULL, OPT_PRIVILEGED},
        {"security-opt", required_argument, NULL, OPT_SECURITY_OPT},
        {"memory", required_argument, NULL, 'm'},
        {"pids-limit", required_argument, NULL, OPT_PIDS_LIMIT},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"net", required_argument, NULL, OPT_NETWORK},
        {"publish", required_argument, NULL, 'p'},
        {"label", required_argument, NULL, 'l'},
        {"publish-all", no_argument, NULL, 'P'},
        {"add-host", required_argument, NULL, OPT_ADD_HOST},
        {"dns", required_argument, NULL, OPT_DNS},
        {"dns-search", required_argument, NULL, OPT_DNS_SEARCH},
        {"dns-option", required_argument, NULL, OPT_DNS_OPTION},
        {"stop-signal", required_argument, NULL, OPT_STOP_SIGNAL},
        {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"shm-size", required_argument, NULL, OPT_SHM_SIZE},
        {"ulimit", required_argument, NULL, OPT_ULIMIT},
        {"group-add", required_argument, NULL, OPT_GROUP_ADD},
        {"pid", required_argument, NULL, OPT_PID},
        {"ipc", required_argument, NULL, OPT_IPC},
        {"restart", required_argument, NULL, OPT_RESTART},
        {"prefetch", required_argument, NULL, OPT_PREFETCH},
        {"fetch-timeout", required_argument, NULL, OPT_FETCH_TIMEOUT},
        {"record-trace", no_argument, NULL, OPT_RECORD_TRACE},
        {"mount", required_argument, NULL, OPT_MOUNT},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"init", no_argument, NULL, OPT_INIT},
        {"help", no_argument, NULL, 'h'},
        CLI_REGISTRY_OPTIONS,
        {0},
    };
    struct ctr_spec spec = {.run_dir = cli->run_dir};
    struct imgfs_err err = {0};
    char **env = NULL, **cap_add = NULL, **cap_drop = NULL, **publish = NULL;
    size_t n_env = 0, n_add = 0, n_drop = 0, n_pub = 0;
    char **labels = NULL, **hosts = NULL, **dns = NULL, **dns_search = NULL, **dns_opt = NULL;
    size_t n_labels = 0, n_hosts = 0, n_dns = 0, n_search = 0, n_opt = 0;
    const char *platform = NULL;
    struct registry_options registry = {0};
    char **group_add = NULL;
    size_t n_group_add = 0;
    struct ctr_ulimit *ulimits = NULL;
    size_t n_ulimits = 0;
    struct ctr_mount *mounts = NULL;
    size_t n_mounts = 0;
    struct ctr_device *devices = NULL;
    size_t n_devices = 0;
    char *entrypoint[2] = {NULL, NULL};
    /* lazily pulled images */
    unsigned fetch_timeout_ms = 0;
    int prefetch = 0;
    bool lazy_opts = false, record_trace = false;
    struct cli_trace trace = {0};
    bool have_entrypoint = false, attach_given = false;
    int rc = EXIT_IMGFS_FAILED;
    bool parsed = false; /* the options were fine: a create failing now is Docker's daemon's 1 */
    struct ctr_image *ci = NULL;
    int c;

    while ((c = cli_getopt(argc, argv, "+dite:w:u:v:m:p:Pl:a:h", longopts)) != -1) {
        switch (c) {
        case OPT_NAME:
            spec.name = optarg;
            break;
        case 'd':
            if (create) { /* Docker's create has no -d: start is detached unless -a */
                cli_error(verb, "unknown shorthand flag: 'd' in -d");
                rc = cli_usage_error(verb);
                goto out;
            }
            spec.detach = true;
            break;
        case OPT_RM:
            spec.remove = true;
            break;
        case OPT_INIT:
            spec.init = true;
            break;
        case 'i':
            spec.interactive = true;
            break;
        case 'a':
            /* Docker's names, any case; stdin is attached by -i (without it, as in Docker, the
             * container's stdin stays closed) */
            if (strcasecmp(optarg, "stdin") && strcasecmp(optarg, "stdout") &&
                strcasecmp(optarg, "stderr")) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"-a, --attach\" flag: valid streams are "
                        "STDIN, STDOUT and STDERR",
                        optarg);
                goto fail;
            }
            if (!attach_given)
                spec.mute_stdout = spec.mute_stderr = true;
            attach_given = true;
            if (!strcasecmp(optarg, "stdout"))
                spec.mute_stdout = false;
            if (!strcasecmp(optarg, "stderr"))
                spec.mute_stderr = false;
            break;
        case 't':
            spec.tty = true;
            break;
        case 'e':
            if (optarg[0] == '=' || !optarg[0]) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"%s\" flag: invalid environment variable: %s",
                        optarg, cli_flag_typed(argv, c), optarg);
                goto fail;
            }
            env = strv_push(env, &n_env, optarg);
            break;
        case OPT_ENV_FILE:
            if (read_env_file(optarg, &env, &n_env, &err) < 0)
                goto fail;
            break;
        case 'w':
            if (optarg[0] != '/') {
                err_set(&err, EINVAL, "the working directory `%s` must be an absolute path",
                        optarg);
                goto fail;
            }
            spec.workdir = optarg;
            break;
        case 'u':
            spec.user = optarg;
            break;
        case OPT_ENTRYPOINT:
            have_entrypoint = true;
            entrypoint[0] = *optarg ? optarg : NULL;
            break;
        case OPT_HOSTNAME:
            spec.hostname = optarg;
            break;
        case 'v':
        case OPT_TMPFS:
        case OPT_MOUNT: {
            mounts = xrealloc(mounts, (n_mounts + 1) * sizeof *mounts);
            int r = c == 'v'         ? parse_volume(optarg, &mounts[n_mounts], &err)
                    : c == OPT_TMPFS ? parse_tmpfs(optarg, &mounts[n_mounts], &err)
                                     : ctr_mount_parse(optarg, &mounts[n_mounts], &err);
            n_mounts++;
            if (r < 0)
                goto fail;
            break;
        }
        case OPT_DEVICE:
            if (ctr_device_parse(optarg, &devices, &n_devices, &err) < 0)
                goto fail;
            break;
        case OPT_READ_ONLY:
            spec.read_only = true;
            break;
        case OPT_CAP_ADD:
            cap_add = strv_push(cap_add, &n_add, optarg);
            break;
        case OPT_CAP_DROP:
            cap_drop = strv_push(cap_drop, &n_drop, optarg);
            break;
        case OPT_PRIVILEGED:
            spec.privileged = true;
            break;
        case OPT_SECURITY_OPT:
            if (!strcmp(optarg, "no-new-privileges") || !strcmp(optarg, "no-new-privileges=true") ||
                !strcmp(optarg, "no-new-privileges:true"))
                spec.no_new_privileges = true;
            else if (!strcmp(optarg, "no-new-privileges=false") ||
                     !strcmp(optarg, "no-new-privileges:false"))
                spec.no_new_privileges = false;
            else if (!strncmp(optarg, "seccomp=", 8) || !strncmp(optarg, "seccomp:", 8))
                spec.seccomp = optarg + 8;
            else {
                err_set(&err, EINVAL, "unknown --security-opt `%s`", optarg);
                goto fail;
            }
            break;
        case 'm': {
            uint64_t mem;
            if (cli_parse_bytes(optarg, &mem) < 0 || mem > INT64_MAX) {
                err_set(&err, EINVAL, "invalid argument \"%s\" for \"%s\" flag: invalid size: '%s'",
                        optarg, cli_flag_typed(argv, c), optarg);
                goto fail;
            }
            if (mem < 6 * 1024 * 1024) {
                err_set(&err, EINVAL, "%s %s: the minimum memory limit allowed is 6MB",
                        cli_flag_typed(argv, c), optarg);
                goto fail;
            }
            spec.memory_bytes = (int64_t)mem;
            break;
        }
        case OPT_PIDS_LIMIT: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*end || end == optarg) {
                err_set(&err, EINVAL, "invalid argument \"%s\" for \"%s\" flag", optarg,
                        cli_flag_typed(argv, c));
                goto fail;
            }
            spec.pids_limit = v > 0 ? v : 0;
            break;
        }
        case OPT_CPUS: {
            char *end;
            spec.cpus = strtod(optarg, &end);
            if (*end || end == optarg || spec.cpus != spec.cpus) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"%s\" flag: failed to parse %s as a "
                        "rational number",
                        optarg, cli_flag_typed(argv, c), optarg);
                goto fail;
            }
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            if (spec.cpus != 0 && (spec.cpus < 0.01 || spec.cpus > (double)cores)) {
                err_set(
                    &err, EINVAL,
                    "Range of CPUs is from 0.01 to %ld.00, as there are only %ld CPUs available",
                    cores, cores);
                goto fail;
            }
            break;
        }
        case OPT_NETWORK:
            spec.network = optarg;
            break;
        case 'p':
            publish = strv_push(publish, &n_pub, optarg);
            break;
        case 'P':
            spec.publish_all = true;
            break;
        case 'l':
            if (optarg[0] == '=' || !optarg[0]) {
                err_set(&err, EINVAL, "invalid argument \"%s\" for \"%s\" flag: bad label", optarg,
                        cli_flag_typed(argv, c));
                goto fail;
            }
            labels = strv_push(labels, &n_labels, optarg);
            break;
        case OPT_ADD_HOST: {
            /* Docker's ValidateExtraHost: NAME:IP split at the first colon */
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || strpbrk(optarg, " \t\n") != NULL) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"--add-host\" flag: bad format for "
                        "add-host: \"%s\"",
                        optarg, optarg);
                goto fail;
            }
            if (!is_ip(colon + 1)) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"--add-host\" flag: invalid IP address in "
                        "add-host: \"%s\"",
                        optarg, colon + 1);
                goto fail;
            }
            hosts = strv_push(hosts, &n_hosts, optarg);
            break;
        }
        case OPT_DNS:
            if (!is_ip(optarg)) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"--dns\" flag: %s is not an ip address",
                        optarg, optarg);
                goto fail;
            }
            dns = strv_push(dns, &n_dns, optarg);
            break;
        case OPT_DNS_SEARCH:
        case OPT_DNS_OPTION:
            if (!optarg[0] || strpbrk(optarg, " \t\n")) {
                err_set(&err, EINVAL, "invalid argument \"%s\" for \"%s\" flag", optarg,
                        cli_flag_typed(argv, c));
                goto fail;
            }
            if (c == OPT_DNS_SEARCH)
                dns_search = strv_push(dns_search, &n_search, optarg);
            else
                dns_opt = strv_push(dns_opt, &n_opt, optarg);
            break;
        case OPT_STOP_SIGNAL:
            if (!is_signal(optarg)) {
                err_set(&err, EINVAL, "Invalid signal: %s", optarg);
                goto fail;
            }
            spec.stop_signal = optarg;
            break;
        case OPT_STOP_TIMEOUT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < -1 || v > 86400) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"--stop-timeout\" flag: strconv.ParseInt: "
                        "parsing \"%s\": invalid syntax",
                        optarg, optarg);
                goto fail;
            }
            spec.has_stop_timeout = v >= 0;
            spec.stop_timeout = (int)v;
            break;
        }
        case OPT_SHM_SIZE: {
            uint64_t b;
            if (cli_parse_bytes(optarg, &b) < 0 || b > INT64_MAX || b == 0) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"--shm-size\" flag: invalid size: '%s'",
                        optarg, optarg);
                goto fail;
            }
            spec.shm_bytes = (int64_t)b;
            break;
        }
        case OPT_ULIMIT: {
            struct ctr_ulimit u;
            struct imgfs_err why = {0};
            if (ctr_ulimit_parse(optarg, &u, &why) < 0) {
                err_set(&err, EINVAL, "invalid argument \"%s\" for \"--ulimit\" flag: %s", optarg,
                        why.msg);
                goto fail;
            }
            ulimits = xrealloc(ulimits, (n_ulimits + 1) * sizeof *ulimits);
            ulimits[n_ulimits++] = u;
            break;
        }
        case OPT_GROUP_ADD:
            if (!optarg[0] || strpbrk(optarg, ":\n")) {
                err_set(&err, EINVAL, "invalid argument \"%s\" for \"--group-add\" flag", optarg);
                goto fail;
            }
            group_add = strv_push(group_add, &n_group_add, optarg);
            break;
        case OPT_PID:
            if (strcmp(optarg, "host") && strcmp(optarg, "")) {
                err_set(&err, EINVAL, "--pid: invalid PID mode `%s` (host is the one supported)",
                        optarg);
                goto fail;
            }
            spec.pid_host = !strcmp(optarg, "host");
            break;
        case OPT_IPC:
            if (strcmp(optarg, "host") && strcmp(optarg, "private") && strcmp(optarg, "")) {
                err_set(&err, EINVAL,
                        "--ipc: invalid IPC mode `%s` (host and private are the ones supported)",
                        optarg);
                goto fail;
            }
            spec.ipc_host = !strcmp(optarg, "host");
            break;
        case OPT_RESTART:
            if (ctr_restart_parse(optarg, &spec.restart, &spec.restart_max, &err) < 0) {
                /* what Docker's daemon refuses fails create with 1 (run: 125, as every error) */
                parsed = err.code == EINVAL;
                goto fail;
            }
            break;
        case OPT_PREFETCH:
            lazy_opts = true;
            if (cli_parse_prefetch(verb, optarg, &prefetch) < 0) {
                rc = cli_usage_error(verb);
                goto out;
            }
            break;
        case OPT_FETCH_TIMEOUT:
            lazy_opts = true;
            if (cli_parse_fetch_timeout(verb, optarg, &fetch_timeout_ms) < 0) {
                rc = cli_usage_error(verb);
                goto out;
            }
            break;
        case OPT_RECORD_TRACE:
            record_trace = true;
            break;
        case OPT_PLATFORM:
            platform = optarg;
            if (!cli_platform_valid(platform)) {
                err_set(&err, EINVAL,
                        "invalid argument \"%s\" for \"--platform\" flag: want OS/ARCH[/VARIANT]",
                        platform);
                goto fail;
            }
            break;
        case 'h':
            fputs(create ? usage_create : usage_run, stdout);
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default:
            if (cli_registry_option(c, optarg, &registry, verb) == 0)
                break;
            rc = cli_usage_error(verb);
            goto out;
        }
    }
    if (optind >= argc) {
        rc = cli_wrong_args(verb, "requires at least 1 argument");
        goto out;
    }
    if (spec.restart != CTR_RESTART_NO && spec.remove) {
        cli_error(verb, "conflicting options: cannot specify both --restart and --rm");
        rc = cli_usage_error(verb);
        goto out;
    }
    if (create && (lazy_opts || record_trace)) {
        /* a later `start` mounts the image with the defaults: they would be lost */
        cli_error(verb, "--prefetch, --fetch-timeout and --record-trace are options of run only");
        rc = cli_usage_error(verb);
        goto out;
    }
    if (record_trace && (spec.detach || spec.restart != CTR_RESTART_NO || !spec.remove)) {
        /* the trace is kept when the container ends, which run must see; its rootfs is a private
         * mount that ends with it, so the container cannot outlive the run */
        cli_error(verb, "--record-trace runs the container in the foreground and removes it: %s",
                  spec.detach   ? "not with -d"
                  : spec.remove ? "not with --restart"
                                : "add --rm");
        rc = cli_usage_error(verb);
        goto out;
    }
    if (record_trace && argv[optind][0] == '/') {
        cli_error(verb, "--record-trace records an image's start-up, not a rootfs directory's");
        rc = cli_usage_error(verb);
        goto out;
    }
    if (attach_given && spec.detach) {
        /* Docker's words and status (its client checks this after parsing: 1, no pointer to
         * --help) */
        cli_error(verb, "conflicting options: cannot specify both --attach and --detach");
        rc = 1;
        goto out;
    }
    if (!create && spec.tty && spec.interactive && !isatty(STDIN_FILENO)) {
        /* Docker's words and status: a terminal was asked for, but stdin cannot be one */
        cli_error(verb, "the input device is not a TTY");
        rc = 1;
        goto out;
    }
    parsed = true;
    const char *image = argv[optind];
    spec.image = image;
    spec.command = argv + optind + 1;
    if (have_entrypoint)
        spec.entrypoint = entrypoint;
    spec.env = env;
    spec.cap_add = cap_add;
    spec.cap_drop = cap_drop;
    spec.publish = publish;
    spec.labels = labels;
    spec.group_add = group_add;
    spec.ulimits = ulimits;
    spec.n_ulimits = n_ulimits;
    spec.add_hosts = hosts;
    spec.dns = dns;
    spec.dns_search = dns_search;
    spec.dns_options = dns_opt;
    spec.mounts = mounts;
    spec.n_mounts = n_mounts;
    spec.devices = devices;
    spec.n_devices = n_devices;
    ctr_new_id(spec.id);

    if (image[0] == '/') {
        /* a plain rootfs directory: no config, no shared mount */
        struct stat st;
        if (stat(image, &st) < 0 || !S_ISDIR(st.st_mode)) {
            err_sys(&err, errno ? errno : ENOTDIR, "rootfs directory `%s`", image);
            goto fail;
        }
        spec.lower = image;
    } else {
        /* a registry reference the store does not have: pulled lazily, then run */
        if (cli_lazy_ensure(cli, image, &registry, verb) < 0) {
            rc = EXIT_IMGFS_FAILED;
            goto out;
        }
        if (ctr_image_open(cli->root, image, &ci, &err) < 0)
            goto fail;
        ctr_image_spec(ci, &spec);
        ctr_image_set_lazy(ci, fetch_timeout_ms, prefetch);
        if (record_trace) {
            /* a private mount with a trace, not the shared one: other containers' reads must
             * not count, and the trace ends with this container */
            if (cli_trace_mount(cli, ctr_image_digest(ci), fetch_timeout_ms, prefetch, &trace,
                                &err) < 0)
                goto fail;
            spec.lower = trace.rootfs;
            spec.mount_key = NULL;
            spec.do_mount = NULL;
            spec.mount_ctx = NULL;
        }
    }
    if (platform && spec.config && spec.config->os && spec.config->architecture) {
        /* Docker's warning; nothing is emulated, the run goes on */
        cleanup_free char *have = xasprintf("%s/%s", spec.config->os, spec.config->architecture);
        if (strcmp(platform, have) && strcmp(platform, spec.config->architecture))
            fprintf(stderr,
                    "WARNING: image `%s` is for %s, not the requested platform %s: it runs as it "
                    "is (nothing is emulated)\n",
                    image, have, platform);
    }

    /* named volumes made when new, the image's VOLUMEs as anonymous ones */
    int prepared = ctr_volumes_prepare(cli->root, &spec, &err);
    mounts = spec.mounts;
    n_mounts = spec.n_mounts;
    if (prepared < 0)
        goto fail;
    if (create) {
        if (ctr_create(&spec, &err) < 0) {
            remove_new_anonymous(cli, mounts, n_mounts);
            goto fail;
        }
        printf("%s\n", spec.id);
        rc = 0;
        goto out;
    }
    int status = 0;
    if (ctr_run(&spec, &status, &err) < 0) {
        remove_new_anonymous(cli, mounts, n_mounts);
        goto fail;
    }
    if (spec.detach)
        printf("%s\n", spec.id);
    rc = status;
    if (record_trace) {
        size_t n = 0;
        if (cli_trace_finish(cli, &trace, &ctr_image_get(ci)->digest, &n, &err) < 0)
            goto fail;
        /* on stderr: stdout is the container's */
        if (status)
            fprintf(stderr, "imgfs %s: note: the command did not exit 0; its reads are kept\n",
                    verb);
        fprintf(stderr,
                "Recorded %zu files read by the start-up of %s; imgfs push writes them first\n", n,
                image);
    }
    goto out;

fail:
    cli_report(verb, &err);
    rc = create && parsed ? 1 : EXIT_IMGFS_FAILED;
out:
    cli_trace_end(&trace);
    ctr_image_free(ci);
    strv_release(env);
    strv_release(cap_add);
    strv_release(cap_drop);
    strv_release(publish);
    strv_release(labels);
    strv_release(group_add);
    free(ulimits);
    strv_release(hosts);
    strv_release(dns);
    strv_release(dns_search);
    strv_release(dns_opt);
    for (size_t i = 0; i < n_mounts; i++)
        ctr_mount_free(&mounts[i]);
    free(mounts);
    for (size_t i = 0; i < n_devices; i++) {
        free(devices[i].host);
        free(devices[i].container);
    }
    free(devices);
    return rc;
}

int cmd_run(int argc, char **argv, struct cli *cli)
{
    return run_or_create(argc, argv, cli, false);
}

int cmd_create(int argc, char **argv, struct cli *cli)
{
    return run_or_create(argc, argv, cli, true);
}
