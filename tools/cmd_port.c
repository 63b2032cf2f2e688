/* imgfs port — a running container's published ports, as docker port prints them. */
#include "../runner/runner.h"
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: imgfs port CONTAINER [PRIVATE_PORT[/PROTO]]\n\n"
    "List the container's port mappings (\"80/tcp -> 127.0.0.1:8080\"), or the host addresses of\n"
    "one port (PROTO defaults to tcp). A container that is not running publishes nothing.\n\n"
    "Options:\n"
    "  -h, --help   show this help\n";

static void print_bindings(const char *key, json_t *list, bool with_key)
{
    size_t i;
    json_t *b;
    json_array_foreach(list, i, b)
    {
        const char *ip = json_string_value(json_object_get(b, "HostIp"));
        const char *port = json_string_value(json_object_get(b, "HostPort"));
        if (with_key)
            printf("%s -> ", key);
        printf("%s:%s\n", ip && *ip ? ip : "0.0.0.0", port ? port : "");
    }
}

int cmd_port(int argc, char **argv, struct cli *cli)
{
    int hrc = cli_help_only(argc, argv, "port", usage, false);
    if (hrc != -1)
        return hrc;
    if (argc - optind < 1 || argc - optind > 2) {
        return cli_wrong_args("port", "requires at least 1 and at most 2 arguments");
    }
    struct ctr_state s;
    int found = cli_find_container(cli, "port", argv[optind], &s);
    if (found != 0)
        return found;
    json_t *o = ctr_inspect(cli->run_dir, &s);
    json_t *ports = json_object_get(json_object_get(o, "NetworkSettings"), "Ports");
    int rc = 0;
    if (optind + 1 < argc) {
        const char *want = argv[optind + 1];
        char key[64];
        snprintf(key, sizeof key, strchr(want, '/') ? "%s" : "%s/tcp", want);
        json_t *list = json_object_get(ports, key);
        if (!json_array_size(list)) {
            cli_error("port", "Error: No public port '%s' published for %s", key, argv[optind]);
            rc = 1;
        } else {
            print_bindings(key, list, false);
        }
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(ports, k, v) print_bindings(k, v, true);
    }
    json_decref(o);
    ctr_state_free(&s);
    return rc;
}
