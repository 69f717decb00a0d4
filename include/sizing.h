/*
 * sizing.h - sample size and power for two-arm tests with equal allocation (per arm).
 *
 * Two-sided level alpha, power 1 - beta; z-approximations (the closed forms of the statistics
 * reference, section 3.2). Every function returns NAN for invalid input (non-finite values,
 * proportions outside (0, 1), alpha or power outside (0, 1), a zero effect, a variance <= 0).
 * Sample sizes are not rounded: callers take ceil().
 */
#ifndef ABGATE_SIZING_H
#define ABGATE_SIZING_H

/* Two proportions p1, p2 (pooled variance under H0, as R's power.prop.test). */
double sizing_n_props(double p1, double p2, double alpha, double power);
/* Two proportions with the unpooled variance p1 q1 + p2 q2 under both hypotheses. */
double sizing_n_props_unpooled(double p1, double p2, double alpha, double power);
/* Two means with variances var1 and var2 and a difference delta. */
double sizing_n_means(double var1, double var2, double delta, double alpha, double power);
/* One-sided non-inferiority: margin and true difference d (harm positive), level alpha. */
double sizing_n_noninferiority(double var1, double var2, double margin, double d, double alpha,
			       double power);
/* Power of the two-sided test of a true difference delta with standard error se. */
double sizing_power(double delta, double se, double alpha);
/* Power at n per arm for two proportions (unpooled). */
double sizing_power_props(double n, double p1, double p2, double alpha);

#endif
