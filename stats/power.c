/*
 * power.c - `abgate power` (see include/power.h): sample size per variant for a two-arm test
 * with equal allocation, two-sided alpha.
 *
 *   binary:     --baseline P --mde D [--relative]   p1 = P, p2 = P + D (or P (1 + D));
 *               n = [z_{1-a/2} sqrt(2 pbar qbar) + z_{1-b} sqrt(p1 q1 + p2 q2)]^2 / (p1 - p2)^2
 *               (the pooled formula, as R's power.prop.test)
 *   continuous: --sd S --mde D                      n = (z_{1-a/2} + z_{1-b})^2 2 S^2 / D^2
 *
 * For a metric measured per request when units come back (--requests-per-unit M, default 1)
 * with a design effect E (--design-effect, default 1: the variance of the mean over the
 * variance independent requests would give, as `abgate report` shows it), the test needs
 * n E requests per variant, that is n E / M units.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htest.h"
#include "power.h"
#include "sizing.h"

static void err1(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err1(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("abgate power: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The shortest decimal that reads back as v (for JSON). */
static const char *shortest(char *buf, size_t len, double v)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

static void usage(FILE *f)
{
	fputs(
	    "usage: abgate power --baseline P --mde D [--relative] [--alpha A] [--power B]\n"
	    "                    [--requests-per-unit M] [--design-effect E]\n"
	    "       abgate power --sd S --mde D [--alpha A] [--power B] [...]\n"
	    "\n"
	    "Prints the sample size per variant in units (two arms, equal allocation, two-sided\n"
	    "test).\n"
	    "\n"
	    "  --baseline P  control conversion rate, 0 < P < 1 (binary metric)\n"
	    "  --mde D       minimum detectable effect: an absolute difference (0.02 = two\n"
	    "                percentage points) or, with --relative, a fraction of P (0.1 = +10%)\n"
	    "  --relative    read --mde as relative to the baseline\n"
	    "  --sd S        standard deviation of a continuous metric (then D is in its units)\n"
	    "  --alpha A     significance level, two-sided (default 0.05)\n"
	    "  --power B     power, 1 - beta (default 0.8)\n"
	    "  --requests-per-unit M  requests per unit of a per-request metric (default 1)\n"
	    "  --design-effect E      the metric's design effect at M requests per unit (default\n"
	    "                1; `abgate report` shows it per variant): the test needs n E\n"
	    "                requests, n E / M units, per variant\n"
	    "  --json        print the result as one JSON object\n"
	    "\n"
	    "Binary: pooled two-proportion z test (as R power.prop.test). Continuous: two-sample\n"
	    "z approximation (R power.t.test, which uses the t distribution, gives about 1 "
	    "more).\n",
	    f);
}

/* Parses a finite double; false (with a message) otherwise. */
static bool num_arg(const char *opt, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) {
		err1("%s: '%s' is not a number", opt, s);
		return false;
	}
	*out = v;
	return true;
}

int power_main(int argc, char **argv)
{
	enum { O_BASE = 256, O_MDE, O_SD, O_ALPHA, O_POWER, O_REL, O_JSON, O_RPU, O_DEFF };
	static const struct option opts[] = {
	    {"baseline", required_argument, NULL, O_BASE},
	    {"mde", required_argument, NULL, O_MDE},
	    {"sd", required_argument, NULL, O_SD},
	    {"alpha", required_argument, NULL, O_ALPHA},
	    {"power", required_argument, NULL, O_POWER},
	    {"relative", no_argument, NULL, O_REL},
	    {"json", no_argument, NULL, O_JSON},
	    {"requests-per-unit", required_argument, NULL, O_RPU},
	    {"design-effect", required_argument, NULL, O_DEFF},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	double base = NAN, mde = NAN, sd = NAN, alpha = 0.05, power = 0.8, rpu = 1, deff = 1;
	bool relative = false, json = false;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case O_BASE:
			if (!num_arg("--baseline", optarg, &base))
				return 1;
			break;
		case O_MDE:
			if (!num_arg("--mde", optarg, &mde))
				return 1;
			break;
		case O_SD:
			if (!num_arg("--sd", optarg, &sd))
				return 1;
			break;
		case O_ALPHA:
			if (!num_arg("--alpha", optarg, &alpha))
				return 1;
			break;
		case O_POWER:
			if (!num_arg("--power", optarg, &power))
				return 1;
			break;
		case O_REL:
			relative = true;
			break;
		case O_RPU:
			if (!num_arg("--requests-per-unit", optarg, &rpu))
				return 1;
			break;
		case O_DEFF:
			if (!num_arg("--design-effect", optarg, &deff))
				return 1;
			break;
		case O_JSON:
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			err1("option %s needs an argument", argv[optind - 1]);
			return 1;
		default:
			err1("unknown option '%s' (see --help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc) {
		err1("unexpected argument '%s' (see --help)", argv[optind]);
		return 1;
	}
	htest_init();
	bool binary = !isnan(base);
	if (binary == !isnan(sd)) {
		err1("give either --baseline (binary) or --sd (continuous)");
		return 1;
	}
	if (isnan(mde)) {
		err1("--mde is required");
		return 1;
	}
	if (!(alpha > 0 && alpha < 1)) {
		err1("--alpha must be in (0, 1)");
		return 1;
	}
	if (!(power > 0 && power < 1)) {
		err1("--power must be in (0, 1)");
		return 1;
	}
	if (mde == 0) {
		err1("--mde must not be 0");
		return 1;
	}
	if (!(rpu >= 1)) {
		err1("--requests-per-unit must be >= 1");
		return 1;
	}
	if (!(deff > 0)) {
		err1("--design-effect must be > 0");
		return 1;
	}
	bool clustered = rpu != 1 || deff != 1;
	double n, p2 = NAN;
	if (binary) {
		if (!(base > 0 && base < 1)) {
			err1("--baseline must be in (0, 1)");
			return 1;
		}
		p2 = relative ? base * (1 + mde) : base + mde;
		if (!(p2 > 0 && p2 < 1)) {
			err1("baseline %g with mde %g gives a rate %g outside (0, 1)", base, mde,
			     p2);
			return 1;
		}
		n = sizing_n_props(base, p2, alpha, power);
	} else {
		if (relative) {
			err1("--relative needs --baseline");
			return 1;
		}
		if (!(sd > 0)) {
			err1("--sd must be > 0");
			return 1;
		}
		n = sizing_n_means(sd * sd, sd * sd, mde, alpha, power);
	}
	if (!isfinite(n) || n > 1e15) {
		err1("no finite sample size for these inputs");
		return 1;
	}
	/* n independent values; clustered: n E requests from n E / M units */
	double nreq = n * deff, nunits = nreq / rpu;
	double nc = ceil(nunits);
	if (json) {
		char b[5][32];
		if (binary)
			printf("{\"kind\":\"binary\",\"baseline\":%s,\"target\":%s,\"mde\":%s,"
			       "\"relative\":%s,",
			       shortest(b[0], sizeof(b[0]), base), shortest(b[1], sizeof(b[1]), p2),
			       shortest(b[2], sizeof(b[2]), mde), relative ? "true" : "false");
		else
			printf("{\"kind\":\"continuous\",\"sd\":%s,\"mde\":%s,",
			       shortest(b[0], sizeof(b[0]), sd), shortest(b[1], sizeof(b[1]), mde));
		printf("\"alpha\":%s,\"power\":%s,", shortest(b[2], sizeof(b[2]), alpha),
		       shortest(b[3], sizeof(b[3]), power));
		if (clustered)
			printf("\"requests_per_unit\":%s,\"design_effect\":%s,"
			       "\"requests_per_variant\":%.0f,",
			       shortest(b[0], sizeof(b[0]), rpu), shortest(b[1], sizeof(b[1]), deff),
			       ceil(nreq));
		printf("\"n_exact\":%s,\"n_per_variant\":%.0f,\"n_total\":%.0f,"
		       "\"n_in\":\"units\"}\n",
		       shortest(b[4], sizeof(b[4]), nunits), nc, 2 * nc);
	} else {
		if (binary)
			printf("binary metric: baseline %g -> %g (mde %g%s)\n", base, p2, mde,
			       relative ? " relative" : " absolute");
		else
			printf("continuous metric: sd %g, mde %g\n", sd, mde);
		printf("alpha %g (two-sided), power %g\n", alpha, power);
		if (clustered)
			printf("at %g requests per unit with design effect %g: %.0f requests per "
			       "variant\n",
			       rpu, deff, ceil(nreq));
		printf("n per variant: %.0f units (exact %.4f); both arms: %.0f\n", nc, nunits,
		       2 * nc);
	}
	return fflush(stdout) == 0 ? 0 : 2;
}
