/*
 * power.h - the `abgate power` command: the sample size per variant needed to detect a given
 * effect (binary: baseline rate and difference; continuous: standard deviation and difference).
 * See `abgate power --help`.
 */
#ifndef ABGATE_POWER_H
#define ABGATE_POWER_H

/* Runs the command; argv[0] is the subcommand name. Returns 0, or 1 for bad arguments (one line
 * "abgate power: reason" on standard error). */
int power_main(int argc, char **argv);

#endif
