/*
 * test_power.c - unit tests for stats/power.c: argument checking and exit codes of
 * `abgate power` (its numbers are checked in test_sizing.c and the integration tests).
 */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "power.h"

static int run(int argc, const char **argv)
{
	return power_main(argc, (char **)(uintptr_t)argv);
}

int main(void)
{
	const char *ok1[] = {"power", "--baseline", "0.1", "--mde", "0.02"};
	const char *ok2[] = {"power",	"--sd", "50",	   "--mde", "5",
			     "--alpha", "0.01", "--power", "0.9",   "--json"};
	const char *ok3[] = {"power", "--baseline", "0.1", "--mde", "0.1", "--relative"};
	CHECK_INT(run(5, ok1), 0);
	CHECK_INT(run(10, ok2), 0);
	CHECK_INT(run(6, ok3), 0);
	const char *ok4[] = {"power", "--sd", "50", "--mde", "5", "--requests-per-unit", "8",
			     "--design-effect", "2.5"};
	CHECK_INT(run(9, ok4), 0);
	const char *bad[][7] = {
	    {"power"},
	    {"power", "--baseline", "0.1"},
	    {"power", "--baseline", "0", "--mde", "0.1"},
	    {"power", "--baseline", "0.95", "--mde", "0.1"},
	    {"power", "--baseline", "0.1", "--mde", "0"},
	    {"power", "--baseline", "0.1", "--sd", "2", "--mde", "1"},
	    {"power", "--sd", "0", "--mde", "1"},
	    {"power", "--sd", "1", "--mde", "1", "--relative"},
	    {"power", "--sd", "1", "--mde", "x"},
	    {"power", "--sd", "1", "--mde", "1", "--alpha", "1"},
	    {"power", "--sd", "1", "--mde", "1", "--power", "0"},
	    {"power", "--sd", "1", "--mde", "1", "extra"},
	    {"power", "--frobnicate"},
	    {"power", "--sd", "1", "--mde", "1", "--requests-per-unit", "0.5"},
	    {"power", "--sd", "1", "--mde", "1", "--design-effect", "0"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int argc = 0;
		while (argc < 7 && bad[i][argc])
			argc++;
		CHECK_INT(run(argc, bad[i]), 1);
	}
	fflush(stdout);
	return check_summary("test_power");
}
