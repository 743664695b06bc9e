"""The statistics of the deployment report, on numpy and the standard library only.

- `mean_ci`: a mean with its Student-t confidence interval.
- `wilson_ci`: a rate with its Wilson score interval.
- `welch_t_test`: difference of two means with unequal variances (Welch-Satterthwaite df).
- `two_proportion_z_test`: difference of two rates, pooled standard error.
- `msprt`: the mixture sequential probability ratio test (normal mixture over the
  difference), whose p-value is valid at every look ("always valid"), so reading the
  report while traffic accrues does not inflate false positives.

The Student-t distribution is computed through the regularized incomplete beta
function (a continued fraction); the tests compare every figure with scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EPS = 1e-15
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
          + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| > |t|) of Student's t with `df` degrees of freedom."""
    if df > 1e7:  # Fisher's normalizing transform (error O(1/df²)); betainc loses digits
        z = abs(t) * (1.0 - 1.0 / (4.0 * df)) / math.sqrt(1.0 + t * t / (2.0 * df)) \
            if math.isfinite(df) else abs(t)
        return math.erfc(z / math.sqrt(2.0))
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def _t_pdf(t: float, df: float) -> float:
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                    - 0.5 * math.log(df * math.pi) - (df + 1) / 2 * math.log1p(t * t / df))


def t_ppf(q: float, df: float) -> float:
    """The q-quantile (0.5 < q < 1) of Student's t: Newton steps on `t_sf2` from the
    normal quantile, checked, with bisection as the fallback."""
    target = 2.0 * (1.0 - q)  # two-sided tail mass beyond the quantile
    z = norm_ppf(q)
    if df > 1e6:  # the Cornish-Fisher expansion is exact to ~1e-18 here; betainc is not
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)
    t = z
    for _ in range(50):
        f = t_sf2(t, df) - target
        step = f / (2.0 * _t_pdf(t, df))
        if not math.isfinite(step) or t + step <= 0:
            break
        t += step
        if abs(step) < 1e-13 * max(1.0, t):
            return t
    lo, hi = 0.0, 1.0
    while t_sf2(hi, df) > target:
        hi *= 2.0
        if hi > 1e12:
            return hi
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_sf2(mid, df) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)


def norm_ppf(q: float) -> float:
    """The q-quantile (0 < q < 1) of the standard normal: a rational first guess
    (Acklam's coefficients, ~1e-9) refined by two Halley steps on erfc, in the lower
    half (1 - q is exact for q >= 0.5, so the upper half is its mirror)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    if q > 0.5:
        return -norm_ppf(1.0 - q)
    if q < 0.02425:
        r = math.sqrt(-2 * math.log(q))
        x = (((((_C[0] * r + _C[1]) * r + _C[2]) * r + _C[3]) * r + _C[4]) * r + _C[5]) / \
            ((((_D[0] * r + _D[1]) * r + _D[2]) * r + _D[3]) * r + 1)
    else:
        r = (q - 0.5) ** 2
        x = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * \
            (q - 0.5) / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
    for _ in range(2):
        e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - q
        u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
        x -= u / (1 + x * u / 2)
    return x


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def mean_ci(x: np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean of `x` with the Student-t interval (NaN bounds for fewer than 2 values)."""
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    m = float(np.mean(x))
    if n < 2:
        return Interval(m, math.nan, math.nan)
    se = float(np.std(x, ddof=1)) / math.sqrt(n)
    half = t_ppf(0.5 + confidence / 2.0, n - 1) * se
    return Interval(m, m - half, m + half)


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """A rate with its Wilson score interval (good near 0 and 1, unlike the Wald one)."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    p = successes / n
    z = norm_ppf(0.5 + confidence / 2.0)
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, center - half), min(1.0, center + half))


@dataclass(frozen=True)
class Comparison:
    test: str
    """"welch_t", "two_proportion_z" or "msprt"."""
    difference: float
    """treatment minus baseline."""
    statistic: float
    p_value: float
    df: float = math.nan
    ci_low: float = math.nan
    """Confidence interval of the difference (for msprt: an always-valid one)."""
    ci_high: float = math.nan


def welch_t_test(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> Comparison:
    """Welch's t-test of mean(b) - mean(a) (two-sided), as scipy's ttest_ind(equal_var=False),
    with the Welch confidence interval of the difference."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return Comparison("welch_t", math.nan, math.nan, math.nan)
    ma, mb = float(np.mean(a)), float(np.mean(b))
    va, vb = float(np.var(a, ddof=1)) / na, float(np.var(b, ddof=1)) / nb
    diff = mb - ma
    if va + vb == 0:
        return Comparison("welch_t", diff, math.nan, math.nan)
    se = math.sqrt(va + vb)
    t = diff / se
    df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    half = t_ppf(0.5 + confidence / 2.0, df) * se
    return Comparison("welch_t", diff, t, t_sf2(t, df), df, diff - half, diff + half)


def two_proportion_z_test(xa: int, na: int, xb: int, nb: int,
                          confidence: float = 0.95) -> Comparison:
    """Two-sided z-test of rate(b) - rate(a) with the pooled standard error; the interval
    of the difference is the Wald one (unpooled standard error)."""
    if na == 0 or nb == 0:
        return Comparison("two_proportion_z", math.nan, math.nan, math.nan)
    pa, pb = xa / na, xb / nb
    pooled = (xa + xb) / (na + nb)
    se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    if se == 0:
        return Comparison("two_proportion_z", pb - pa, math.nan, math.nan)
    z = (pb - pa) / se
    half = norm_ppf(0.5 + confidence / 2.0) * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    return Comparison("two_proportion_z", pb - pa, z, math.erfc(abs(z) / math.sqrt(2.0)),
                      ci_low=pb - pa - half, ci_high=pb - pa + half)


MSPRT_TAU = 0.1
"""The mixture's scale, in units of the outcome's standard deviation: the prior over
the true difference is N(0, (MSPRT_TAU * sd)^2), i.e. differences of about a tenth of a
standard deviation are what the test is tuned to find."""


MSPRT_MIN_N = 30
"""Looks count only once each arm has this many values; until then the p-value is 1."""


def _log_lambda(diff: float, v: float, tau2: float) -> float:
    """log of the normal-mixture likelihood ratio for an estimate `diff` with variance `v`."""
    return 0.5 * math.log(v / (v + tau2)) + tau2 * diff * diff / (2.0 * v * (v + tau2))


def msprt(a: np.ndarray, b: np.ndarray, *, looks: int = 100, tau: float = MSPRT_TAU,
          confidence: float = 0.95, min_n: int = MSPRT_MIN_N) -> Comparison:
    """Always-valid p-value for mean(b) - mean(a) (mixture SPRT, Johari et al. 2017).

    `a` and `b` are in arrival order. The likelihood ratio Λ of the difference is
    evaluated at `looks` evenly spaced points of the combined sequence (and at the end);
    the p-value is min(1, 1 / max Λ) over the looks, which stays valid however often
    and whenever the report is read. The mixture variance tau² is (tau · pooled sd)² of
    all the data.

    The variance of each look's difference is where a plug-in mSPRT goes wrong on skewed
    or heavy-tailed data (latency, rare 0/1 outcomes): an early look's handful of values
    rarely holds the large ones, so its variance is far too small and its Λ far too large.
    So looks start once each arm has `min_n` values (before that p = 1), and each arm's
    variance at a look is never taken below the pooled within-arm variance of all the
    data so far (under the null hypothesis both arms share it): on skewed A/A data this
    keeps the false-positive rate under α where the plug-in variance gave 17-34%
    (tests/unit/serving/test_report_stats.py), at a small cost in power.
    The interval is the matching confidence sequence: the differences θ whose ratio
    Λ(θ) stays below 1 / (1 - confidence) at every look (intersected over the looks).
    """
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return Comparison("msprt", math.nan, math.nan, math.nan)
    sd = float(np.std(np.concatenate([a, b]), ddof=1))
    diff = float(np.mean(b)) - float(np.mean(a))
    if sd == 0:
        return Comparison("msprt", diff, math.nan, math.nan)
    if na < min_n or nb < min_n:
        return Comparison("msprt", diff, 1.0, 1.0)  # Λ = 1: no evidence yet
    tau2 = (tau * sd) ** 2
    # the pooled within-arm variance of all the data (not inflated by a real difference)
    floor = (float(np.var(a, ddof=1)) * (na - 1) + float(np.var(b, ddof=1)) * (nb - 1)) \
        / (na + nb - 2)
    # Cumulative sums give every look's means and variances in O(n).
    best = -math.inf
    lo, hi = -math.inf, math.inf
    log_alpha = math.log(1.0 / (1.0 - confidence))
    ca, ca2 = np.cumsum(a), np.cumsum(a * a)
    cb, cb2 = np.cumsum(b), np.cumsum(b * b)
    fracs = np.linspace(0.0, 1.0, looks + 1)[1:]
    for f in fracs:
        ka, kb = int(round(f * na)), int(round(f * nb))
        if ka < min_n or kb < min_n:
            continue
        ma, mb = ca[ka - 1] / ka, cb[kb - 1] / kb
        va = max((ca2[ka - 1] - ka * ma * ma) / (ka - 1), floor) / ka
        vb = max((cb2[kb - 1] - kb * mb * mb) / (kb - 1), floor) / kb
        v = va + vb
        if v <= 0:  # both arms constant so far
            continue
        d = float(mb - ma)
        best = max(best, _log_lambda(d, v, tau2))
        # Λ(θ) < 1/α  <=>  (d - θ)² < 2 v (v + τ²) / τ² · (log(1/α) + ½ log((v + τ²) / v))
        half = math.sqrt(2.0 * v * (v + tau2) / tau2
                         * (log_alpha + 0.5 * math.log((v + tau2) / v)))
        lo, hi = max(lo, d - half), min(hi, d + half)
        last = (d - half, d + half)
    if best == -math.inf:
        return Comparison("msprt", diff, math.nan, math.nan)
    p = 1.0 if best <= 0 else min(1.0, math.exp(-best))
    if lo > hi:  # the looks disagree (by chance, rarely): the last look's interval
        lo, hi = last
    return Comparison("msprt", diff, math.exp(min(best, 700.0)), p, ci_low=lo, ci_high=hi)


def msprt_proportions(a: np.ndarray, b: np.ndarray, *, looks: int = 100,
                      tau: float = MSPRT_TAU, min_n: int = MSPRT_MIN_N) -> Comparison:
    """`msprt` on 0/1 outcomes (the same normal mixture over the difference of rates)."""
    return msprt(a.astype(np.float64), b.astype(np.float64), looks=looks, tau=tau,
                 min_n=min_n)


def percentiles(x: np.ndarray, qs: tuple[float, ...] = (50.0, 95.0, 99.0)) -> list[float]:
    """Percentiles with linear interpolation (numpy's default); NaN when empty."""
    if len(x) == 0:
        return [math.nan] * len(qs)
    return [float(v) for v in np.percentile(x, qs)]
