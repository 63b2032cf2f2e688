/* imgfs stats — running containers' CPU, memory, network and pids, from their cgroups. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: imgfs stats [OPTIONS] [CONTAINER...]\n\n"
    "Show running containers' resource use (every running one when none is named): CPU %\n"
    "(over the last sample interval), memory use (without the inactive page cache, as Docker)\n"
    "and its limit (the host's memory when there is none), network bytes received / sent\n"
    "(every interface but lo; none with --network host) and the number of processes. Read\n"
    "from the cgroups (v1 or v2) and the container's network namespace. A named container\n"
    "that is not running shows zeros, as in Docker. No BLOCK I/O column.\n\n"
    "Options:\n"
    "      --no-stream   print one sample (taken over half a second) and exit\n"
    "  -h, --help        show this help\n";

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Docker's binary units for memory: "1.5MiB" */
static void bin_size(uint64_t b, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(buf, len, u ? "%.4g%s" : "%.0f%s", v, units[u]);
}

struct sample {
    char id[65], name[256];
    struct ctr_stats a, b;
    bool ok;
};

/* The containers to show: the named ones, or every running one. */
static int pick(const struct cli *cli, int first, int argc, char **argv, struct sample **out,
                size_t *n)
{
    struct imgfs_err err = {0};
    *out = NULL;
    *n = 0;
    if (first < argc) {
        *out = xcalloc((size_t)(argc - first), sizeof **out);
        for (int i = first; i < argc; i++) {
            struct ctr_state s;
            if (ctr_find(cli->run_dir, argv[i], &s, &err) < 0) {
                cli_report("stats", &err);
                return -1;
            }
            snprintf((*out)[*n].id, sizeof(*out)[*n].id, "%s", s.id);
            snprintf((*out)[*n].name, sizeof(*out)[*n].name, "%s", s.name);
            (*n)++;
            ctr_state_free(&s);
        }
        return 0;
    }
    struct ctr_state *list;
    size_t count;
    if (ctr_list(cli->run_dir, &list, &count, &err) < 0) {
        cli_report("stats", &err);
        return -1;
    }
    *out = xcalloc(count + 1, sizeof **out);
    for (size_t i = 0; i < count; i++)
        if (list[i].status == CTR_RUNNING) {
            snprintf((*out)[*n].id, sizeof(*out)[*n].id, "%s", list[i].id);
            snprintf((*out)[*n].name, sizeof(*out)[*n].name, "%s", list[i].name);
            (*n)++;
        }
    ctr_state_list_free(list, count);
    return 0;
}

static bool take(const struct cli *cli, struct sample *sm, struct ctr_stats *st, bool report)
{
    struct imgfs_err err = {0};
    struct ctr_state s;
    if (ctr_find(cli->run_dir, sm->id, &s, &err) < 0 || ctr_stats(cli->run_dir, &s, st, &err) < 0) {
        if (report)
            cli_report("stats", &err);
        if (s.name && err.code != ENOENT)
            ctr_state_free(&s);
        return false;
    }
    ctr_state_free(&s);
    return true;
}

int cmd_stats(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"no-stream", no_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'}, {0}};
    bool stream = true;
    int c;
    while ((c = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (c == 'S') {
            stream = false;
            continue;
        }
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        return cli_usage_error("stats");
    }
    struct sample *sm;
    size_t n;
    if (pick(cli, optind, argc, argv, &sm, &n) < 0) {
        free(sm);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (!(sm[i].ok = take(cli, &sm[i], &sm[i].a, true)))
            rc = 1;
    double t0 = now_ns();
    for (;;) {
        poll(NULL, 0, stream ? 1000 : 500); /* the sample interval CPU % is measured over */
        double t1 = now_ns();
        if (stream && isatty(1))
            fputs("\033[2J\033[H", stdout);
        printf("%-15s%-20s%-9s%-24s%-9s%-22s%s\n", "CONTAINER ID", "NAME", "CPU %",
               "MEM USAGE / LIMIT", "MEM %", "NET I/O", "PIDS");
        for (size_t i = 0; i < n; i++) {
            if (!sm[i].ok || !take(cli, &sm[i], &sm[i].b, false)) {
                sm[i].ok = false;
                continue;
            }
            struct ctr_stats *a = &sm[i].a, *b = &sm[i].b;
            double cpu = (double)(b->cpu_ns - a->cpu_ns) / (t1 - t0) * 100;
            char mu[32], ml[32], rx[32], tx[32], mem[72], net[72], cpus[16], memp[16];
            bin_size(b->mem_usage, mu, sizeof mu);
            bin_size(b->mem_limit, ml, sizeof ml);
            cli_human_size(b->net_rx, rx, sizeof rx);
            cli_human_size(b->net_tx, tx, sizeof tx);
            snprintf(mem, sizeof mem, "%s / %s", mu, ml);
            snprintf(net, sizeof net, "%s / %s", rx, tx);
            snprintf(cpus, sizeof cpus, "%.2f%%", cpu < 0 ? 0 : cpu);
            snprintf(memp, sizeof memp, "%.2f%%",
                     b->mem_limit ? (double)b->mem_usage * 100 / (double)b->mem_limit : 0);
            printf("%-15.12s%-20s%-9s%-24s%-9s%-22s%llu\n", sm[i].id, sm[i].name, cpus, mem, memp,
                   net, (unsigned long long)b->pids);
            *a = *b;
        }
        fflush(stdout);
        t0 = t1;
        if (!stream)
            break;
    }
    free(sm);
    return rc;
}
