/* 55_run_step.c — drives the runner's build-step API the way the builder's RUN does (compiled by
 * 55_run_step.sh against the library objects):
 *
 *   run_step STORE RUN_DIR IMAGE UPPER WORK NETWORK [LOWER...] -- COMMAND...
 *       a hidden container on IMAGE (+ LOWERs above it, top first) with the caller's UPPER/WORK,
 *       its stdout and stderr read through one pipe by a thread and printed as "[step] LINE";
 *       exits with the command's status
 *   run_step hold STORE RUN_DIR IMAGE
 *       ctr_image_acquire: print the shared mount's directory, keep it until stdin ends
 *   run_step null-run-dir STORE IMAGE
 *       ctr_image_acquire and ctr_run with a NULL run directory: print each error, exit 1 when
 *       both were refused */
#include "../../runner/runner.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void *relay(void *arg)
{
    FILE *in = fdopen(*(int *)arg, "r");
    char line[4096];
    while (in && fgets(line, sizeof line, in))
        printf("[step] %s%s", line, strchr(line, '\n') ? "" : "\n");
    fflush(stdout);
    if (in)
        fclose(in);
    return NULL;
}

int main(int argc, char **argv)
{
    struct imgfs_err err = {0};
    struct ctr_image *ci;
    if (argc == 4 && !strcmp(argv[1], "null-run-dir")) {
        if (ctr_image_open(argv[2], argv[3], &ci, &err) < 0) {
            fprintf(stderr, "run_step: %s\n", err.msg);
            return 125;
        }
        const char *dir;
        int refused = ctr_image_acquire(NULL, ci, &dir, &err) < 0;
        printf("%s\n", refused ? err.msg : dir);
        char *command[] = {"/bin/true", NULL};
        struct ctr_spec spec = {
            .image = argv[3], .command = command, .network = "none", .hidden = true};
        ctr_image_spec(ci, &spec);
        int status;
        struct imgfs_err err2 = {0};
        int run_refused = ctr_run(&spec, &status, &err2) < 0;
        printf("%s\n", run_refused ? err2.msg : "ran");
        ctr_image_free(ci);
        return refused && run_refused ? 1 : 0;
    }
    if (argc == 5 && !strcmp(argv[1], "hold")) {
        const char *dir;
        if (ctr_image_open(argv[2], argv[4], &ci, &err) < 0 ||
            ctr_image_acquire(argv[3], ci, &dir, &err) < 0) {
            fprintf(stderr, "run_step: %s\n", err.msg);
            return 125;
        }
        printf("%s\n", dir);
        fflush(stdout);
        char buf[64];
        while (fread(buf, 1, sizeof buf, stdin) > 0)
            ;
        int rc = ctr_image_release(ci, &err);
        ctr_image_free(ci);
        if (rc < 0)
            fprintf(stderr, "run_step: %s\n", err.msg);
        return rc < 0 ? 125 : 0;
    }
    int dash = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            dash = i;
            break;
        }
    if (argc < 8 || dash < 7 || dash + 1 >= argc) {
        fprintf(stderr,
                "usage: run_step STORE RUN_DIR IMAGE UPPER WORK NETWORK [LOWER...] -- CMD\n");
        return 2;
    }
    argv[dash] = NULL;
    if (ctr_image_open(argv[1], argv[3], &ci, &err) < 0) {
        fprintf(stderr, "run_step: %s\n", err.msg);
        return 125;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return 125;
    /* the relay thread must not take the monitor's signals (SIGCHLD above all): ctr_run blocks
     * them in its own thread and reads them from a signalfd (runner.h) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t t;
    pthread_create(&t, NULL, relay, &p[0]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    struct ctr_spec spec = {
        .run_dir = argv[2],
        .image = argv[3],
        .command = argv + dash + 1,
        .network = argv[6],
        .hidden = true,
        .upper_dir = argv[4],
        .work_dir = argv[5],
        .lowers = dash > 7 ? argv + 7 : NULL,
        .redirect_output = true,
        .stdout_fd = p[1],
        .stderr_fd = p[1],
    };
    ctr_new_id(spec.id);
    ctr_image_spec(ci, &spec);
    int status = 0;
    int rc = ctr_run(&spec, &status, &err);
    close(p[1]);
    pthread_join(t, NULL);
    ctr_image_free(ci);
    if (rc < 0) {
        fprintf(stderr, "run_step: %s\n", err.msg);
        return 125;
    }
    return status;
}
