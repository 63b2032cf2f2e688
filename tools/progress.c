/* progress.c — transfer progress for pull and push: bars redrawn in place on a terminal (one per
 * layer, and a total with the rate), one line per finished layer otherwise. */
#include "../fs/digest.h"
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cli_progress_start(struct cli_progress *pg, size_t n_layers)
{
    free(pg->layers);
    pg->n = n_layers;
    pg->layers = xcalloc(n_layers + 1, sizeof *pg->layers);
    for (size_t i = 0; i < n_layers; i++)
        snprintf(pg->layers[i].status, sizeof pg->layers[i].status, "Waiting");
    pg->started = now_ms();
    pg->drawn = 0;
}

void cli_progress_free(struct cli_progress *pg)
{
    free(pg->layers);
    pg->layers = NULL;
}

static void bar(char *out, size_t len, uint64_t done, uint64_t total)
{
    const int width = 30;
    int fill = total ? (int)(done * width / total) : 0;
    if (fill > width)
        fill = width;
    size_t k = 0;
    out[k++] = '[';
    for (int i = 0; i < width && k + 2 < len; i++)
        out[k++] = i < fill ? '=' : i == fill ? '>' : ' ';
    out[k++] = ']';
    out[k] = 0;
}

static void redraw(struct cli_progress *pg)
{
    if (pg->drawn)
        printf("\033[%dA", pg->drawn);
    uint64_t done = 0, total = 0;
    for (size_t i = 0; i < pg->n; i++) {
        struct cli_progress_layer *l = &pg->layers[i];
        char d[32], t[32], b[40] = "";
        cli_human_size(l->done, d, sizeof d);
        cli_human_size(l->total, t, sizeof t);
        if (l->active)
            bar(b, sizeof b, l->done, l->total);
        printf("\r%-12s: %-16s %s %s/%s\033[K\n", l->hex, l->status, b, d, t);
        done += l->done;
        total += l->total;
    }
    char d[32], t[32], r[32];
    double secs = (double)(now_ms() - pg->started) / 1000.0;
    cli_human_size(done, d, sizeof d);
    cli_human_size(total, t, sizeof t);
    cli_human_size(secs > 0 ? (uint64_t)((double)done / secs) : 0, r, sizeof r);
    printf("\rTotal: %s/%s  %s/s\033[K\n", d, t, r);
    pg->drawn = (int)pg->n + 1;
    fflush(stdout);
}

void cli_progress_update(struct cli_progress *pg, size_t i, const struct digest *d,
                         const char *status, bool active, uint64_t done, uint64_t total)
{
    if (pg->mode == CLI_PROGRESS_QUIET || pg->mode == CLI_PROGRESS_JSON || i >= pg->n)
        return;
    struct cli_progress_layer *l = &pg->layers[i];
    if (d) {
        char hex[DIGEST_HEX_LEN + 1];
        digest_hex(d, hex);
        snprintf(l->hex, sizeof l->hex, "%.12s", hex);
    }
    bool changed = strcmp(l->status, status) != 0;
    snprintf(l->status, sizeof l->status, "%s", status);
    l->active = active;
    l->done = done;
    l->total = total;
    if (pg->mode == CLI_PROGRESS_TTY) {
        uint64_t now = now_ms();
        if (changed || now - pg->last_draw >= 100) {
            pg->last_draw = now;
            redraw(pg);
        }
    } else if (changed && !active) {
        printf("%s: %s\n", l->hex, status);
        fflush(stdout);
    }
}

bool cli_progress_json_due(struct cli_progress *pg, bool final)
{
    uint64_t now = now_ms();
    if (!final && now - pg->last_draw < 200)
        return false;
    pg->last_draw = now;
    return true;
}

void cli_progress_json(const char *event, const struct digest *d,
                       const struct cli_progress_json_layer *l, size_t n_layers)
{
    char ds[DIGEST_STR_SIZE] = "";
    if (d)
        digest_str(d, ds);
    json_t *j = json_pack("{s:s, s:s}", "event", event, "digest", ds);
    if (l) {
        json_object_set_new(j, "layer", json_integer((json_int_t)l->index + 1));
        json_object_set_new(j, "done", json_integer((json_int_t)l->done));
        json_object_set_new(j, "total", json_integer((json_int_t)l->total));
        if (l->from)
            json_object_set_new(j, "from", json_string(l->from));
    } else {
        json_object_set_new(j, "layers", json_integer((json_int_t)n_layers));
    }
    char *s = json_dumps(j, JSON_COMPACT);
    puts(s);
    fflush(stdout);
    free(s);
    json_decref(j);
}
