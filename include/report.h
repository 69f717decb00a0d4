/*
 * report.h - the `abgate report` command: outcome logs in, an experiment report out
 * (text, JSON, Markdown or HTML) with a recommendation. See `abgate report --help`.
 */
#ifndef ABGATE_REPORT_H
#define ABGATE_REPORT_H

/*
 * Runs the command; argv[0] is the subcommand name. Returns the exit status: 0 ok, 1 bad input
 * (arguments, configuration, missing log, unknown experiment; one line "abgate report: reason"
 * on standard error), 2 runtime failure (out of memory, read or write error).
 */
int report_main(int argc, char **argv);

#endif
