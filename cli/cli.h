/* cli.h - the subcommands of the one mnistd binary. Each takes the
 * arguments after its name and returns the process exit status: 0, 1 for
 * a failure it reported on stderr, 2 for a usage error. */
#ifndef MN_CLI_H
#define MN_CLI_H

int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_backprop(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_grid_report(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
