/*
 * seqtest.h - always-valid inference: asymptotic confidence sequences and sequential p-values
 * (Waudby-Smith et al., as used by GrowthBook) and the normal-mixture SPRT (Johari et al.).
 *
 * A confidence sequence holds at every look at once, so an analyst (or the daemon) may watch
 * the result as often as they like without inflating the false-positive rate. The tuning
 * constant N* (decision.sequential_n) is the total sample size (both arms) at which the
 * sequence is narrowest relative to the fixed-horizon interval.
 *
 * Arguments: delta is the estimate (difference or lift), se its standard error, n the total
 * sample size of the comparison (both arms). Functions return NAN on invalid input (non-finite
 * values, se < 0, n or N* <= 0, alpha outside (0, 1)).
 */
#ifndef ABGATE_SEQTEST_H
#define ABGATE_SEQTEST_H

/* The mixing parameter rho for error level a (a = alpha two-sided, 2 * alpha one-sided). */
double seqtest_rho(double a, double nstar);

/* Half-width of the two-sided 1 - alpha confidence sequence. */
double seqtest_halfwidth(double se, double n, double nstar, double alpha);

/* Half-width of the one-sided 1 - alpha confidence sequence (rho taken at 2 * alpha). */
double seqtest_halfwidth_one_sided(double se, double n, double nstar, double alpha);

/*
 * Two-sided always-valid p-value, with the mixture tuned at level alpha (the same rho as the
 * confidence sequence, so p < alpha exactly when the sequence excludes 0). se = 0 gives 1 for
 * delta = 0 and 0 otherwise.
 */
double seqtest_p(double delta, double se, double n, double nstar, double alpha);

/*
 * One-sided always-valid p-value for the alternative delta > 0, with the mixture tuned at level
 * alpha (rho at 2 * alpha, as the one-sided sequence): the level at which the one-sided
 * sequence's bound touches 0, in closed form, so p < alpha exactly when the one-sided sequence
 * at alpha excludes 0. delta <= 0 gives 1; se = 0 gives 0 for delta > 0.
 */
double seqtest_p_one_sided(double delta, double se, double n, double nstar, double alpha);

/*
 * mSPRT with a normal mixture N(theta0, tau2) after n paired observations per arm, dbar the
 * difference of means, v the sum of the two per-observation variances: the mixture
 * likelihood ratio Lambda_n (the always-valid p-value is the running minimum of 1/Lambda) and
 * the half-width of the always-valid 1 - alpha interval around dbar.
 */
double seqtest_msprt_lambda(double n, double dbar, double v, double tau2, double theta0);
double seqtest_msprt_halfwidth(double n, double v, double tau2, double alpha);

#endif
