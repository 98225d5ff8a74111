/* floodgate: one binary, a command per server. Dispatches argv[1] to the
 * server's entry point; each server parses its own flags. */
#include <stdio.h>
#include <string.h>

int gw_main(int argc, char **argv);
int echo_main(int argc, char **argv);
int fl_main(int argc, char **argv);
int broker_main(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"gateway", gw_main, "HTTP reverse proxy, load balancer and API gateway"},
    {"broker", broker_main, "durable message queues with Amazon SQS semantics (SQS API and native API)"},
    {"echo", echo_main, "a tiny configurable HTTP backend for tests and benchmarks"},
    {"flood", fl_main, "load generator: closed and open loop, profiles, mixes, many clients"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: floodgate <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'floodgate <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "floodgate: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
