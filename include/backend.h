/*
 * backend.h - `abgate backend`: a deterministic model server for tests, the demo and benchmarks.
 */
#ifndef ABGATE_BACKEND_H
#define ABGATE_BACKEND_H

/*
 * Runs `abgate backend --port N --model NAME [--host ADDR] [--latency-ms M] [--error-rate R]
 * [--seed S] [--fail-after N]`; argv[0] is "backend". Serves until SIGTERM or SIGINT.
 * Returns the exit code: 0 after a signal or --help, 1 on bad arguments (one line
 * "abgate backend: <reason>" on stderr), 2 on a runtime failure (cannot listen).
 */
int backend_main(int argc, char **argv);

#endif
