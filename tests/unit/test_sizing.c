/*
 * test_sizing.c - unit tests for stats/sizing.c (V12 of the statistics reference).
 */
#include <math.h>

#include "check.h"
#include "htest.h"
#include "sizing.h"

#define REL 1e-9

int main(void)
{
	htest_init();
	CHECK_REL(sizing_n_props(0.10, 0.12, 0.05, 0.8), 3840.84748244, REL);
	CHECK_INT((long long)ceil(sizing_n_props(0.10, 0.12, 0.05, 0.8)), 3841);
	CHECK_REL(sizing_n_props(0.12, 0.10, 0.05, 0.8), 3840.84748244, REL);
	CHECK_REL(sizing_n_props_unpooled(0.10, 0.12, 0.05, 0.8), 3838.1021901, REL);
	CHECK_INT((long long)ceil(sizing_n_props_unpooled(0.10, 0.12, 0.05, 0.8)), 3839);
	CHECK_REL(sizing_n_means(2500, 2500, 5, 0.05, 0.8), 1569.77594687, REL);
	CHECK_INT((long long)ceil(sizing_n_means(2500, 2500, -5, 0.05, 0.8)), 1570);
	CHECK_REL(sizing_power_props(4000, 0.10, 0.12, 0.05), 0.815966878946, REL);
	/* the power at the computed n is the requested power (unpooled forms are inverses) */
	double n = sizing_n_props_unpooled(0.2, 0.25, 0.01, 0.9);
	CHECK_REL(sizing_power_props(n, 0.2, 0.25, 0.01), 0.9, 1e-6);
	/* non-inferiority: one-sided z_{0.95} */
	double z = 1.64485362695147 + 0.841621233572914;
	CHECK_REL(sizing_n_noninferiority(1, 1, 0.1, 0, 0.05, 0.8), z * z * 2 / 0.01, REL);
	/* invalid input */
	CHECK(isnan(sizing_n_props(0, 0.1, 0.05, 0.8)));
	CHECK(isnan(sizing_n_props(0.1, 0.1, 0.05, 0.8)));
	CHECK(isnan(sizing_n_props(0.1, 1.2, 0.05, 0.8)));
	CHECK(isnan(sizing_n_props(0.1, 0.12, 0, 0.8)));
	CHECK(isnan(sizing_n_props(0.1, 0.12, 0.05, 1)));
	CHECK(isnan(sizing_n_means(0, 0, 5, 0.05, 0.8)));
	CHECK(isnan(sizing_n_means(1, 1, 0, 0.05, 0.8)));
	CHECK(isnan(sizing_n_means(1, 1, NAN, 0.05, 0.8)));
	CHECK(isnan(sizing_power(1, 0, 0.05)));
	return check_summary("test_sizing");
}
