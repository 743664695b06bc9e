"""The report's statistics against scipy's reference implementations, and the
sequential test's promise: peeking at an A/A test does not inflate false positives."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from metricflow.serving import mean_ci, msprt, two_proportion_z_test, welch_t_test, wilson_ci
from metricflow.serving._stats import betainc, norm_ppf, t_ppf, t_sf2


@pytest.mark.parametrize("a,b,x", [(0.5, 0.5, 0.3), (2.0, 3.0, 0.999), (150.0, 0.5, 0.97),
                                   (0.5, 1e4, 1e-5), (40.0, 40.0, 0.5)])
def test_incomplete_beta(a: float, b: float, x: float) -> None:
    assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("df", [1, 2.5, 7, 30, 412.9, 1e5, 2e6, 1e9])
def test_student_t_tails_and_quantiles(df: float) -> None:
    for t in (0.0, 0.3, 1.96, 4.0, 12.0):
        assert t_sf2(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-8, abs=1e-300)
    for q in (0.55, 0.9, 0.975, 0.995, 0.99999):
        assert t_ppf(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-9)


def test_normal_quantiles() -> None:
    for q in (1e-300, 1e-12, 1e-5, 0.01, 0.0243, 0.3, 0.5, 0.7, 0.975, 0.99999, 1 - 1e-12):
        assert norm_ppf(q) == pytest.approx(stats.norm.ppf(q), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(5, rng.uniform(0.5, 3), int(rng.integers(3, 2000)))
    b = rng.normal(5 + rng.normal(0, 0.3), rng.uniform(0.5, 3), int(rng.integers(3, 2000)))
    r = welch_t_test(a, b, 0.9)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert (r.statistic, r.p_value, r.df) == pytest.approx(
        (ref.statistic, ref.pvalue, ref.df), rel=1e-8)
    ci = ref.confidence_interval(0.9)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-8)
    assert r.difference == pytest.approx(b.mean() - a.mean())


def test_mean_interval_matches_scipy() -> None:
    x = np.random.default_rng(3).lognormal(0, 1, 57)
    lo, hi = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    ci = mean_ci(x, 0.9)
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((x.mean(), lo, hi), rel=1e-10)
    assert math.isnan(mean_ci(x[:1]).low) and math.isnan(mean_ci(x[:0]).estimate)


@pytest.mark.parametrize("xa,na,xb,nb", [(50, 1000, 70, 1000), (0, 30, 3, 40),
                                         (480, 5000, 455, 4600)])
def test_two_proportion_z_matches_scipy(xa: int, na: int, xb: int, nb: int) -> None:
    r = two_proportion_z_test(xa, na, xb, nb)
    p = (xa + xb) / (na + nb)
    z = (xb / nb - xa / na) / math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
    assert (r.statistic, r.p_value) == pytest.approx((z, 2 * stats.norm.sf(abs(z))), rel=1e-10)
    se = math.sqrt((xa / na) * (1 - xa / na) / na + (xb / nb) * (1 - xb / nb) / nb)
    half = stats.norm.ppf(0.975) * se
    assert (r.ci_low, r.ci_high) == pytest.approx(
        (xb / nb - xa / na - half, xb / nb - xa / na + half), rel=1e-9)
    # The same as a chi-square test of the 2x2 table without continuity correction.
    chi2 = stats.chi2_contingency([[xa, na - xa], [xb, nb - xb]], correction=False)
    assert r.p_value == pytest.approx(chi2.pvalue, rel=1e-8)


def test_wilson_interval() -> None:
    ci = wilson_ci(5, 100, 0.95)
    z = stats.norm.ppf(0.975)
    p, n = 0.05, 100
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (ci.low, ci.high) == pytest.approx((c - h, c + h), rel=1e-10)
    assert wilson_ci(0, 10).low == 0.0 and wilson_ci(10, 10).high == pytest.approx(1.0)


def test_degenerate_inputs_are_nan_not_errors() -> None:
    one, const = np.array([1.0]), np.ones(10)
    assert math.isnan(welch_t_test(one, const).p_value)
    assert math.isnan(welch_t_test(const, const).p_value)
    assert math.isnan(two_proportion_z_test(0, 0, 1, 2).p_value)
    assert math.isnan(two_proportion_z_test(0, 5, 0, 5).p_value)
    assert math.isnan(msprt(const, const).p_value)


def test_msprt_finds_a_real_difference() -> None:
    rng = np.random.default_rng(11)
    r = msprt(rng.normal(0, 1, 4000), rng.normal(0.25, 1, 4000))
    assert r.test == "msprt" and r.p_value < 1e-6


def test_msprt_is_safe_to_peek_where_the_t_test_is_not() -> None:
    """A/A tests, each looked at 20 times as data arrive: stopping at the first p < 0.05
    rejects far more than 5% with the t-test, at most 5% with the mSPRT."""
    rng = np.random.default_rng(5)
    trials, n, looks = 300, 400, 20
    t_hits = m_hits = 0
    for _ in range(trials):
        a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
        cuts = np.linspace(n // looks, n, looks).astype(int)
        t_hits += any(welch_t_test(a[:k], b[:k]).p_value < 0.05 for k in cuts)
        m_hits += msprt(a, b, looks=looks).p_value < 0.05
    assert t_hits / trials > 0.12  # peeking breaks the fixed-horizon test ...
    assert m_hits / trials <= 0.05  # ... but not the always-valid one


@pytest.mark.parametrize("dist", ["lognormal", "rare_rate"])
def test_msprt_keeps_alpha_on_skewed_a_a_data_read_once_and_peeked(dist: str) -> None:
    """Skewed A/A data on a 90/10 split (latency-like lognormal; a 5% rate), a few hundred
    seeded experiments: the always-valid p-value is below 0.05 in at most 5% (+ 1 point
    of simulation noise) of them, read once at the end and read 10 times as data arrive.
    A plug-in variance from an early look's 2-3 values gave 15% and 37% here."""
    rng = np.random.default_rng(19)
    trials, na, nb = 300, 3000, 300

    def draw(n: int) -> np.ndarray:
        if dist == "lognormal":
            return rng.lognormal(1.0, 1.2, n)
        return (rng.random(n) < 0.05).astype(np.float64)

    once = peeked = 0
    for _ in range(trials):
        a, b = draw(na), draw(nb)
        once += msprt(a, b).p_value < 0.05
        peeked += any(msprt(a[:int(f * na)], b[:int(f * nb)]).p_value < 0.05
                      for f in np.linspace(0.1, 1.0, 10))
    assert once / trials <= 0.06, once / trials
    assert peeked / trials <= 0.06, peeked / trials


def test_msprt_needs_a_minimum_sample_per_arm() -> None:
    """Below MSPRT_MIN_N values in either arm the p-value is 1 whatever the data."""
    r = msprt(np.zeros(29) + np.arange(29) * 1e-3, np.full(29, 10.0) + np.arange(29) * 1e-3)
    assert r.p_value == 1.0 and r.difference == pytest.approx(10.0)
    assert msprt(np.arange(30.0), np.arange(30.0) + 100).p_value < 1e-6  # 30 each: a verdict


def test_msprt_confidence_sequence_covers_the_true_difference() -> None:
    """The sequential interval holds the true difference in >= 95% of experiments (all
    looks at once), and is wider than the fixed-horizon Welch interval of the same data."""
    rng = np.random.default_rng(8)
    covered, wider = 0, 0
    trials = 200
    for _ in range(trials):
        a, b = rng.normal(0, 1, 300), rng.normal(0.2, 1.5, 300)
        r = msprt(a, b, looks=20)
        covered += r.ci_low <= 0.2 <= r.ci_high
        w = welch_t_test(a, b)
        wider += (r.ci_high - r.ci_low) > (w.ci_high - w.ci_low)
    assert covered / trials >= 0.95
    assert wider == trials
