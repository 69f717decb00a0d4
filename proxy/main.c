/*
 * main.c - the abgate command line: one binary, one subcommand per task.
 */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "conf.h"
#include "demo.h"
#include "power.h"
#include "report.h"
#include "router.h"
#include "server.h"
#include "tls.h"

#define ABGATE_VERSION "0.1.0"

static void warn_ramp(void *arg, const struct conf_experiment *e, const char *msg)
{
	fprintf(stderr, "%s: warning: experiment %s: %s\n", *(const char **)arg, e->name, msg);
}

static int check_main(int argc, char **argv)
{
	const char *path = NULL, *previous = NULL;
	char err[1024];
	struct conf *c;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--previous") == 0 && i + 1 < argc) {
			previous = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: abgate check -c FILE [--previous OLD]\n"
			       "  Validates FILE; exit 0, or print FILE:LINE:COL: message and exit 1.\n"
			       "  With --previous, also warns (on stderr, still exit 0) for each\n"
			       "  experiment whose change from OLD moves users between variants other\n"
			       "  than from one that shrinks into one that grows.\n");
			return 0;
		} else {
			fprintf(stderr, "abgate check: unexpected argument '%s'\n", argv[i]);
			return 1;
		}
	}
	if (path == NULL) {
		fprintf(stderr, "abgate check: needs -c FILE\n");
		return 1;
	}
	if (conf_load(path, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (tls_prepare_conf(c, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		conf_free(c);
		return 1;
	}
	if (previous != NULL) {
		struct conf *was;
		if (conf_load(previous, &was, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			conf_free(c);
			return 1;
		}
		router_ramp_check(was, c, warn_ramp, &path);
		conf_free(was);
	}
	printf("%s: ok (%zu backend(s), %zu experiment(s))\n", path, c->nbackends, c->nexperiments);
	conf_free(c);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: abgate COMMAND [OPTIONS]\n\n"
		   "commands:\n"
		   "  serve -c FILE         run the proxy (SIGHUP reloads, SIGTERM drains)\n"
		   "  check -c FILE         validate a configuration\n"
		   "  report [-c FILE] [--format text|json|md|html] [-o OUT] LOG...\n"
		   "                        analyse outcome logs (several instances' logs merge)\n"
		   "  power --baseline P --mde D [--alpha A] [--power B]\n"
		   "  power --sd S --mde D  sample size per variant\n"
		   "  demo [--duration S]   the zero-setup demo: backends, proxy, traffic, report\n"
		   "  backend --port N --model NAME [--latency-ms M] [--error-rate R]\n"
		   "                        a model backend for tests and the demo\n\n"
		   "abgate COMMAND --help shows a command's options.\n");
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} commands[] = {
		{"serve", server_main},
		{"check", check_main},
		{"backend", backend_main},
		{"report", report_main},
		{"power", power_main},
		{"demo", demo_main},
	};

	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("abgate %s\n", ABGATE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "abgate: unknown command '%s' (see abgate --help)\n", argv[1]);
	return 1;
}
