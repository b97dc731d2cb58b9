/* main.c - the one mnistd binary: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"serve", cmd_serve, "serve [--host H] [--port P] [--models DIR] ... (serve --help)"},
    {"train", cmd_train, "train SPEC.json [--models DIR] [--data DIR] [--epochs N] [--seed N] [--threads N] [--grid-index N]"},
    {"grid-report", cmd_grid_report, "grid-report NAME [--json]  (the table of a grid trained with --grid-index)"},
    {"predict", cmd_predict, "predict [--model NAME[:VERSION]] [--preprocess digit|frame|none] FILE.png..."},
    {"evaluate", cmd_evaluate, "evaluate --model NAME[:VERSION] [--dataset D] [--limit N]"},
    {"summary", cmd_summary, "summary (--model NAME[:VERSION] | SPEC.json)"},
    {"import", cmd_import, "import FILE.onnx --name NAME [--preprocess digit|frame|none] "
                           "[--classes A,B,...] [--into SPEC.json]"},
    {"export", cmd_export, "export (--model NAME[:VERSION] | --spec SPEC.json) [-o FILE.onnx]"},
    {"backprop", cmd_backprop, "backprop FILE.json"},
    {"health", cmd_health, "health [--port P] [--ready] [--tls]  (exit 0 when a local server is live)"},
};

static int usage(FILE *out)
{
    fprintf(out, "usage: mnistd COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  mnistd %s\n", commands[i].usage);
    fprintf(out, "\nshared options: --models DIR (MNISTD_MODELS, default ./models), "
                 "--data DIR (MNISTD_DATA, default ./data), --max-params N\n");
    return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "mnistd: unknown command \"%s\"\n", argv[1]);
    return usage(stderr);
}
