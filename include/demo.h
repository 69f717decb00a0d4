/*
 * demo.h - `abgate demo`: the zero-setup first run. Starts two model backends and the proxy,
 * drives traffic and outcomes through it with a live progress line, then prints the report.
 */
#ifndef ABGATE_DEMO_H
#define ABGATE_DEMO_H

/* The demo's configuration as a printf format; its arguments, in order: the proxy port, the
 * admin port, the outcome log path, the model-v1 port, the model-v2 port. conf/demo.yaml is this
 * text with 8080, 9901, var/outcomes.jsonl, 9001, 9002 (a test checks that they agree). */
extern const char demo_config_template[];

/* Runs `abgate demo [--duration S]`; argv[0] is "demo". Returns the exit code. */
int demo_main(int argc, char **argv);

#endif
