"""Small-sample statistics for experiments repeated over seeds: the mean with a Student-t 95%
confidence interval, and the paired difference of two arms run on the same seeds.

With S seeds the interval is mean +- t(0.975, S-1) * sd / sqrt(S), sd the sample standard
deviation (divisor S-1). Pure Python: the t quantile comes from scipy when it is installed, else
from a table (S-1 = 1..30) and, beyond it, the Cornish-Fisher expansion of t around the normal
quantile (Abramowitz & Stegun 26.7.5), which is within 1e-5 of the exact value from 30 on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError

# t(0.975, df): the two-sided 95% critical value of Student's t with df degrees of freedom.
T_975: dict[int, float] = {
    1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 5: 2.570582, 6: 2.446912,
    7: 2.364624, 8: 2.306004, 9: 2.262157, 10: 2.228139, 11: 2.200985, 12: 2.178813,
    13: 2.160369, 14: 2.144787, 15: 2.131450, 16: 2.119905, 17: 2.109816, 18: 2.100922,
    19: 2.093024, 20: 2.085963, 21: 2.079614, 22: 2.073873, 23: 2.068658, 24: 2.063899,
    25: 2.059539, 26: 2.055529, 27: 2.051831, 28: 2.048407, 29: 2.045230, 30: 2.042272,
}
Z_975 = 1.959963984540054  # the standard normal's 0.975 quantile


def t_975_table(df: int) -> float:
    """t(0.975, df) without scipy: the table up to 30 degrees of freedom, the Cornish-Fisher
    expansion above."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise WorkbenchError(f"a t quantile needs at least 1 degree of freedom, got {df!r}")
    if df in T_975:
        return T_975[df]
    z = Z_975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def t_975(df: int) -> float:
    """t(0.975, df), from scipy when it is installed, else from `t_975_table`."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise WorkbenchError(f"a t quantile needs at least 1 degree of freedom, got {df!r}")
    try:
        from scipy.stats import t
    except ImportError:
        return t_975_table(df)
    return float(t.ppf(0.975, df))


@dataclass(frozen=True)
class Interval:
    """The mean of n values with its 95% Student-t interval; `sd` and `half_width` are None
    when n < 2 (one value has no spread to estimate), `mean` is None when n = 0."""

    n: int
    mean: float | None
    sd: float | None
    half_width: float | None

    @property
    def low(self) -> float | None:
        return None if self.mean is None or self.half_width is None \
            else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.mean is None or self.half_width is None \
            else self.mean + self.half_width

    @property
    def excludes_zero(self) -> bool | None:
        """Whether the interval lies wholly above or below 0; None when there is none."""
        if self.low is None or self.high is None:
            return None
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "sd": self.sd, "half_width": self.half_width,
                "low": self.low, "high": self.high, "excludes_zero": self.excludes_zero}


def mean_ci(values: Sequence[float]) -> Interval:
    """The mean of `values` and its 95% interval mean +- t(0.975, n-1) * sd / sqrt(n)."""
    n = len(values)
    if n == 0:
        return Interval(0, None, None, None)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(1, mean, None, None)
    sd = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
    return Interval(n, mean, sd, t_975(n - 1) * sd / math.sqrt(n))


def paired_differences(a: Sequence[float | None], b: Sequence[float | None]) -> list[float]:
    """a[i] - b[i] for each pair (seed) where both are defined."""
    if len(a) != len(b):
        raise WorkbenchError(f"paired values need as many of each: {len(a)} against {len(b)}")
    return [x - y for x, y in zip(a, b, strict=True) if x is not None and y is not None]


def paired_ci(a: Sequence[float | None], b: Sequence[float | None]) -> Interval:
    """The mean difference a - b over pairs (same seed) and its 95% interval: the spread
    shared by both arms (the sample, the seed) cancels, so this is tighter than comparing
    the two arms' own intervals."""
    return mean_ci(paired_differences(a, b))
