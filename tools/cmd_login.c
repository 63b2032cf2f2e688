#include "../fs/registry.h"
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static const char login_usage[] =
    "Usage: imgfs login [OPTIONS] REGISTRY\n\n"
    "Check credentials against REGISTRY (HOST[:PORT]; docker.io when omitted) and store them in\n"
    "the auth file (Docker's config.json layout, mode 0600).\n\n"
    "Options:\n"
    "  -u, --username USER         user name (asked for on a terminal)\n"
    "  -p, --password PASS         password (visible in ps: prefer --password-stdin)\n"
    "      --password-stdin        read the password from standard input\n" CLI_REGISTRY_HELP
    "  -h, --help                  show this help\n";

static const char logout_usage[] =
    "Usage: imgfs logout [OPTIONS] [REGISTRY]\n\n"
    "Remove the stored credentials for REGISTRY (default docker.io).\n\n"
    "Options:\n"
    "      --authfile FILE         the auth file\n"
    "  -h, --help                  show this help\n";

/* "https://host:5000/v2/" or "host:5000" -> "host:5000"; docker.io's aliases -> docker.io */
static char *registry_host(const char *arg)
{
    const char *p = arg;
    if (!strncmp(p, "https://", 8))
        p += 8;
    else if (!strncmp(p, "http://", 7))
        p += 7;
    char *h = strndup(p, strcspn(p, "/"));
    if (!strcmp(h, "index.docker.io") || !strcmp(h, "registry-1.docker.io")) {
        free(h);
        h = xstrdup(REF_DEFAULT_DOMAIN);
    }
    return h;
}

/* A line from the terminal or stdin, without its newline. */
static char *read_line(FILE *f, bool echo)
{
    struct termios old, quiet;
    bool tty = !echo && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(f), TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (tty) {
        tcsetattr(fileno(f), TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    return line;
}

int cmd_login(int argc, char **argv, struct cli *cli)
{
    (void)cli;
    static const struct option opts[] = {{"username", required_argument, 0, 'u'},
                                         {"password", required_argument, 0, 'p'},
                                         {"password-stdin", no_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_REGISTRY_OPTIONS,
                                         {0, 0, 0, 0}};
    struct registry_options o = {0};
    const char *user_arg = NULL, *pass_arg = NULL;
    bool pass_stdin = false;
    int c;
    while ((c = cli_getopt(argc, argv, "u:p:h", opts)) != -1) {
        switch (c) {
        case 'u':
            user_arg = optarg;
            break;
        case 'p':
            pass_arg = optarg;
            break;
        case 'S':
            pass_stdin = true;
            break;
        case 'h':
            fputs(login_usage, stdout);
            return 0;
        default:
            if (cli_registry_option(c, optarg, &o, "login") == 0)
                break;
            return cli_usage_error("login");
        }
    }
    if (optind + 1 < argc) {
        return cli_wrong_args("login", "requires at most 1 argument");
    }
    if (pass_stdin && pass_arg) {
        cli_error("login", "--password and --password-stdin are mutually exclusive");
        return EXIT_REFUSED;
    }
    cleanup_free char *host = registry_host(optind < argc ? argv[optind] : REF_DEFAULT_DOMAIN);
    cleanup_free char *user = user_arg ? xstrdup(user_arg) : NULL;
    cleanup_free char *pass = pass_arg ? xstrdup(pass_arg) : NULL;
    if (pass_stdin && !user) {
        cli_error("login", "--password-stdin needs --username");
        return EXIT_REFUSED;
    }
    if (pass_arg)
        fputs("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n", stderr);
    if ((!user || (!pass && !pass_stdin)) && !isatty(STDIN_FILENO)) {
        /* as docker's: prompts need a terminal (a script gives -u and --password-stdin) */
        cli_error("login", "cannot perform an interactive login from a non TTY device (use "
                           "-u USER --password-stdin)");
        return EXIT_REFUSED;
    }
    if (!user) {
        fprintf(stderr, "Username: ");
        user = read_line(stdin, true);
    }
    if (!pass) {
        if (!pass_stdin)
            fprintf(stderr, "Password: ");
        pass = read_line(stdin, pass_stdin);
    }
    if (!user || !*user || !pass) {
        cli_error("login", "a user name and a password are needed");
        return EXIT_REFUSED;
    }
    struct ref r = {.domain = host, .path = (char *)""};
    o.username = user;
    o.password = pass;
    struct imgfs_err err = {0};
    struct registry_client *rc;
    if (registry_open(&r, &o, &rc, &err) < 0 || registry_ping(rc, 0, &err) < 0) {
        registry_close(rc);
        explicit_bzero(pass, strlen(pass));
        cli_report("login", &err);
        return EXIT_REFUSED;
    }
    registry_close(rc);
    int ret = registry_auth_set(o.auth_file, host, user, pass, &err);
    explicit_bzero(pass, strlen(pass));
    if (ret < 0) {
        cli_report("login", &err);
        return EXIT_REFUSED;
    }
    puts("Login Succeeded");
    return 0;
}

int cmd_logout(int argc, char **argv, struct cli *cli)
{
    (void)cli;
    static const struct option opts[] = {
        {"authfile", required_argument, 0, 'A'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *auth_file = NULL;
    int c;
    while ((c = cli_getopt(argc, argv, "h", opts)) != -1) {
        switch (c) {
        case 'A':
            auth_file = optarg;
            break;
        case 'h':
            fputs(logout_usage, stdout);
            return 0;
        default:
            return cli_usage_error("logout");
        }
    }
    if (optind + 1 < argc) {
        return cli_wrong_args("logout", "requires at most 1 argument");
    }
    cleanup_free char *host = registry_host(optind < argc ? argv[optind] : REF_DEFAULT_DOMAIN);
    struct imgfs_err err = {0};
    int rc = registry_auth_remove(auth_file, host, &err);
    if (rc < 0) {
        cli_report("logout", &err);
        return EXIT_REFUSED;
    }
    if (rc == 0) {
        /* as docker's: nothing to remove is no failure (a cleanup's logout succeeds) */
        printf("Not logged in to %s\n", host);
        return 0;
    }
    printf("Removing login credentials for %s\n", host);
    return 0;
}
