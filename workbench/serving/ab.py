"""The online A/B test of the paper's step 5: sticky assignment of sessions to arms, and the
analysis of served requests by export (completion) rate.

`parse_arms` reads `--ab teacher=50,student:<run>=50`; `assign` maps a session to an arm by a
hash, so a session always lands in the same arm; `analyse` compares the arms over the rows of
`workbench.store.serving.served_rows`: per arm the export rate overall and per tool with 95%
intervals by bootstrap over sessions, each student arm's ratio to the control (the paper's
measure), a sample-ratio-mismatch check and the minimum detectable effect at the current size;
`rates_over_time` gives each arm's export rate per hour or day with the same intervals.

Why sessions: the requests of one session share a user, an image and a mood, so their exports
are correlated; treating them as independent would make every interval too narrow. Sessions are
the unit of assignment, so they are the unit of resampling too.

Pure Python and numpy: no duckdb, no torch, no web framework (the server and the CLI call this).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.tools import TOOLS

LEVEL = 0.95                 # every interval here is a central 95% interval
ALPHA = 0.05                 # the MDE's two-sided significance level
POWER = 0.80                 # and its power
SRM_ALPHA = 0.001            # a sample ratio mismatch is flagged below this p-value
MIN_SESSIONS = 30            # per arm, with at least one answered request, before a verdict
BOOT = 2000
SEED = 0
OK = "ok"
NO_ARMS = ("no requests served under an A/B arm yet: run `workbench serve --ab ...`, then "
           "ingest its spool")

# Per session, the counts every rate is a ratio of sums of (columns of the (S, C) matrix):
# answered requests, exported ones, then per tool in TOOLS order: answers that used the tool,
# and those of them exported with that tool.
_OK, _EXPORTED = 0, 1
_COLUMNS = 2 + 2 * len(TOOLS)


# ------------------------------------------------------------------------------ assignment

def parse_arms(text: str) -> dict[str, float]:
    """Arms and their weights from `teacher=50,student:<run>=50`, in the order given.

    Weights are positive numbers in any unit (they are normalised: `a=1,b=3` sends a quarter of
    the sessions to `a`). Names are non-empty, without spaces, and unique."""
    if not isinstance(text, str) or not text.strip():
        raise WorkbenchError("no arms given: expected NAME=WEIGHT pairs separated by commas, "
                             "e.g. teacher=50,student:latest=50")
    arms: dict[str, float] = {}
    for part in text.split(","):
        name, equals, weight_text = part.strip().rpartition("=")
        name = name.strip()
        if not equals or not name:
            raise WorkbenchError(f"arm {part.strip()!r} is not NAME=WEIGHT (e.g. teacher=50) in "
                                 f"{text!r}")
        if any(character.isspace() for character in name):
            raise WorkbenchError(f"arm name {name!r} has a space in it (in {text!r})")
        try:
            weight = float(weight_text)
        except ValueError:
            raise WorkbenchError(f"the weight of arm {name!r} is not a number: {weight_text!r} "
                                 f"(in {text!r})") from None
        if not math.isfinite(weight) or weight <= 0:
            raise WorkbenchError(f"the weight of arm {name!r} must be a positive number, got "
                                 f"{weight_text.strip()!r} (in {text!r})")
        if name in arms:
            raise WorkbenchError(f"arm {name!r} is named twice in {text!r}")
        arms[name] = weight
    return arms


def unit_hash(key: str) -> float:
    """A number in [0, 1) from the first 8 bytes of sha256(key): uniform, and the same in every
    process and on every machine (Python's own `hash` of a string is salted per process)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(session_id: str | None, arms: Mapping[str, float], salt: str = "") -> str:
    """The arm of a session: sha256(salt + session id) as a number in [0, 1), against the
    cumulative normalised weights in the mapping's order. Sticky: the same session, salt and
    arms give the same arm in every request and every process.

    A request without a session id has nothing to stick to: the caller passes the request id
    instead (each such request is a session of its own; the analysis counts it so too).
    Changing the salt reshuffles everyone, which starts a fresh experiment."""
    if session_id is None:
        raise WorkbenchError("assign needs a session id: pass the request id for a request "
                             "that came without one")
    if not arms:
        raise WorkbenchError("assign needs at least one arm")
    weights = list(arms.values())
    if any(not math.isfinite(w) or w <= 0 for w in weights):
        raise WorkbenchError(f"arm weights must be positive numbers, got {dict(arms)}")
    point = unit_hash(salt + session_id) * math.fsum(weights)
    cumulative = 0.0
    for name, weight in arms.items():
        cumulative += weight
        if point < cumulative:
            return name
    return list(arms)[-1]    # rounding put the point at the very top: the last arm's


# ------------------------------------------------------------------------------ results

@dataclass(frozen=True)
class _Plain:
    """`to_dict()` for the result dataclasses: plain dicts and lists, ready for JSON."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rate(_Plain):
    """`exported` of `of` requests; `value` is their ratio (None when `of` is 0), `low` and
    `high` the 95% bootstrap interval over sessions (None without a defined resample).
    `undefined_resamples` counts the resamples whose denominator was 0, left out."""

    exported: int
    of: int
    value: float | None
    low: float | None
    high: float | None
    undefined_resamples: int


@dataclass(frozen=True)
class ArmSummary(_Plain):
    """One arm: every request served under it (`requests`, whatever its status), the answered
    ones (`ok`, the only ones in the rates), the others by status, the sessions (a request
    without a session id is a session of its own), the models that answered (`student:latest`
    resolves to a run) and the export rates, overall and per tool."""

    arm: str
    requests: int
    ok: int
    errors: dict[str, int]
    sessions: int
    sessions_answered: int
    models: dict[str, int]
    latency_p50_ms: float | None
    overall: Rate
    tools: dict[str, Rate]


@dataclass(frozen=True)
class Ratio(_Plain):
    """An arm's overall export rate divided by the control's, with its 95% interval: sessions
    resampled within each arm independently, the ratio taken resample by resample."""

    arm: str
    control: str
    value: float | None
    low: float | None
    high: float | None
    undefined_resamples: int


@dataclass(frozen=True)
class SampleRatioCheck(_Plain):
    """Chi-square goodness of fit of the sessions per arm against the expected shares.
    A mismatch (p < 0.001) means the split is not what was asked for (a bug, a crash in one
    arm, sessions lost in logging), and the comparison may be biased."""

    basis: str                       # "equal shares of the arms seen" or "the given weights"
    observed: dict[str, int]         # sessions per arm
    expected_share: dict[str, float]
    chi2: float | None
    df: int
    p_value: float | None            # None with fewer than two arms
    flagged: bool


@dataclass(frozen=True)
class DetectableEffect(_Plain):
    """The minimum detectable effect on the ratio at the current size: the ratio must be below
    1 - `mde` (or above 1 + `mde`) for a two-sided test at alpha 0.05 to see it with power 0.8.
    None (with `reason`) when the control's rate leaves no spread to work with."""

    arm: str
    control_rate: float | None
    control_requests: int
    arm_requests: int
    design_effect: float | None
    mde: float | None
    reason: str | None


@dataclass(frozen=True)
class Comparison(_Plain):
    arm: str
    ratio: Ratio
    detectable: DetectableEffect
    verdict: str


@dataclass(frozen=True)
class Analysis(_Plain):
    """The online test. `arms` lists the control first, then the other arms by name; requests
    served under an explicitly named model (no arm) are counted apart, by model, and are not
    in the comparison."""

    control: str
    boot: int
    seed: int
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    sample_ratio: SampleRatioCheck
    explicit_requests: int
    explicit_models: dict[str, int]
    sessions_in_several_arms: int
    verdicts: tuple[str, ...]


# ------------------------------------------------------------------------------ statistics

def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X chi-square with `df` degrees of freedom, in closed form for whole df:
    even df = 2k: exp(-x/2) * sum_{i<k} (x/2)^i / i!; odd df = 2k+1: erfc(sqrt(x/2)) +
    exp(-x/2) * sum_{i<k} (x/2)^(i+1/2) / Gamma(i+3/2). Terms are summed in logs."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise WorkbenchError(f"a chi-square test needs at least 1 degree of freedom, got {df!r}")
    if x <= 0:
        return 1.0
    half = x / 2.0
    log_half = math.log(half)
    if df % 2 == 0:
        total = math.fsum(math.exp(-half + i * log_half - math.lgamma(i + 1))
                          for i in range(df // 2))
    else:
        total = math.erfc(math.sqrt(half)) + math.fsum(
            math.exp(-half + (i + 0.5) * log_half - math.lgamma(i + 1.5))
            for i in range(df // 2))
    return min(1.0, total)


def sample_ratio_check(sessions: Mapping[str, int],
                       expected: Mapping[str, float] | None = None) -> SampleRatioCheck:
    """Chi-square goodness of fit of `sessions` per arm against `expected` weights (normalised;
    default equal shares of the arms seen). An expected arm without sessions counts as 0; an
    arm with sessions but no expected weight is an error (the weights are not the ones served)."""
    if expected is None:
        basis = "equal shares of the arms seen"
        shares = {arm: 1.0 / len(sessions) for arm in sessions} if sessions else {}
    else:
        basis = "the given weights"
        unknown = sorted(arm for arm in sessions if arm not in expected)
        if unknown:
            raise WorkbenchError(f"arm(s) {', '.join(map(repr, unknown))} served sessions but "
                                 f"have no expected weight (expected: {', '.join(expected)})")
        if any(not math.isfinite(w) or w <= 0 for w in expected.values()):
            raise WorkbenchError(f"expected weights must be positive numbers, got "
                                 f"{dict(expected)}")
        total_weight = math.fsum(expected.values())
        shares = {arm: weight / total_weight for arm, weight in expected.items()}
    observed = {arm: int(sessions.get(arm, 0)) for arm in shares}
    n = sum(observed.values())
    df = len(shares) - 1
    if df < 1 or n == 0:
        return SampleRatioCheck(basis, observed, shares, None, max(df, 0), None, False)
    chi2 = math.fsum((observed[arm] - n * share) ** 2 / (n * share)
                     for arm, share in shares.items())
    p_value = chi2_sf(chi2, df)
    return SampleRatioCheck(basis, observed, shares, chi2, df, p_value, p_value < SRM_ALPHA)


def design_effect(exported: np.ndarray, answered: np.ndarray) -> float | None:
    """How much the clustering of requests in sessions inflates the variance of a rate.

    With y_i exported of m_i answered requests in session i, n = sum m_i, p = sum y_i / n: the
    variance of p over sessions (the linearised variance of a ratio of sums, what the bootstrap
    over sessions measures) is sum (y_i - p m_i)^2 / n^2; if the n requests were independent it
    would be p (1 - p) / n. D is their quotient, sum (y_i - p m_i)^2 / (n p (1 - p)), floored at
    1 (it is exactly 1 when every session has one request; below 1 is noise, not a bonus).
    In the textbook's terms D = 1 + (m_w - 1) rho, m_w the size-weighted mean session size and
    rho the within-session correlation, estimated here in one step. None when p is 0 or 1."""
    n = float(answered.sum())
    if n == 0:
        return None
    p = float(exported.sum()) / n
    if p <= 0 or p >= 1:
        return None
    spread = float(np.sum((exported - p * answered) ** 2))
    return max(1.0, spread / (n * p * (1 - p)))


def minimum_detectable_effect(control_rate: float, control_requests: int, arm_requests: int,
                              design: float, alpha: float = ALPHA,
                              power: float = POWER) -> float:
    """The smallest change of the ratio arm rate / control rate that a two-sided test at
    `alpha` detects with `power`:

        MDE = (z(1 - alpha/2) + z(power)) * sqrt(D * (1 - p) / p * (1/n_c + 1/n_a))

    p the control's export rate, n_c and n_a the answered requests of the control and the arm
    (sessions times their mean size), D the design effect of the sessions. It is the delta
    method's standard error of the ratio under no difference (both arms at p: Var(R) =
    Var(p_a)/p^2 + Var(p_c)/p^2 with Var(p_x) = D p (1 - p) / n_x), times the z sum."""
    if not 0 < control_rate < 1:
        raise WorkbenchError(f"the MDE needs a control rate strictly between 0 and 1, got "
                             f"{control_rate}")
    if control_requests <= 0 or arm_requests <= 0:
        raise WorkbenchError("the MDE needs answered requests in both arms")
    normal = NormalDist()
    z = normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)
    return z * math.sqrt(design * (1 - control_rate) / control_rate
                         * (1 / control_requests + 1 / arm_requests))


def _arm_generator(seed: int, arm: str) -> np.random.Generator:
    """Each arm's own random stream, from the seed and the arm's name: an arm's intervals do
    not change when another arm is added or the rows come in another order."""
    return np.random.default_rng([seed, int.from_bytes(
        hashlib.sha256(arm.encode("utf-8")).digest()[:8], "big")])


def resampled_sums(counts: np.ndarray, boot: int, rng: np.random.Generator) -> np.ndarray:
    """(boot, C) column sums of `boot` resamples of the S rows of `counts` (S, C), each drawn
    with replacement: a resample is how often each row was drawn (a bincount of S draws), so
    its sums are one vector-matrix product. One resample at a time keeps memory at O(S)."""
    sessions = counts.shape[0]
    out = np.empty((boot, counts.shape[1]))
    for b in range(boot):
        drawn = np.bincount(rng.integers(0, sessions, size=sessions), minlength=sessions)
        out[b] = drawn @ counts
    return out


def _quotients(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator element-wise, NaN where the denominator is 0."""
    result = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


def _interval(values: np.ndarray) -> tuple[float | None, float | None, int]:
    """The central 95% percentile interval of the defined values, and how many were not."""
    defined = values[np.isfinite(values)]
    undefined = int(values.size - defined.size)
    if defined.size == 0:
        return None, None, undefined
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high), undefined


def _rate(exported: float, of: float, resampled: np.ndarray) -> Rate:
    low, high, undefined = _interval(resampled)
    return Rate(int(exported), int(of), exported / of if of else None, low, high, undefined)


# ------------------------------------------------------------------------------ the analysis

@dataclass
class _Arm:
    """What `analyse` gathers of one arm before it computes anything."""

    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    sessions: dict[str, list[int]] = field(default_factory=dict)  # session key -> counts (C,)


def _session_key(row: Mapping[str, Any]) -> str:
    """Sessions by id; a request without one is a session of its own (the server assigns it by
    its request id). The prefixes keep a session id that looks like a request id apart."""
    session = row.get("session_id")
    return f"s:{session}" if session is not None else f"r:{row['request_id']}"


def _add_counts(session: list[int], row: Mapping[str, Any]) -> None:
    """Add one answered request to its session's counts (see `_COLUMNS`)."""
    exports = [int(row[f"exports_{tool}"]) for tool in TOOLS]
    session[_OK] += 1
    session[_EXPORTED] += sum(exports) > 0
    for j, tool in enumerate(TOOLS):
        if row[f"used_{tool}"]:
            session[2 + 2 * j] += 1
            session[3 + 2 * j] += exports[j] > 0


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _verdict(control: str, arm: str, control_sessions: int, arm_sessions: int, ratio: Ratio,
             detectable: DetectableEffect, mismatch: SampleRatioCheck) -> str:
    """The comparison in one sentence, as the paper would state it, and a warning after it
    when the split itself is suspect."""
    text = _comparison_text(control, arm, control_sessions, arm_sessions, ratio, detectable)
    if mismatch.flagged:
        text += (f". Warning: the sessions are not split as expected (sample ratio mismatch, "
                 f"p = {mismatch.p_value:.2g}): find out why before trusting this")
    return text


def _comparison_text(control: str, arm: str, control_sessions: int, arm_sessions: int,
                     ratio: Ratio, detectable: DetectableEffect) -> str:
    if control_sessions == 0:
        return f"{arm}: no answered sessions in the control arm {control!r}, nothing to compare"
    if ratio.value is None:
        return (f"{arm}: the control {control!r} has no exports yet, so there is no ratio "
                f"({control_sessions} and {arm_sessions} sessions)")
    keeps = f"{arm} keeps {_percent(ratio.value)} of the {control}'s export rate"
    interval = f"95% CI {_percent(ratio.low)}-{_percent(ratio.high)}"
    if min(control_sessions, arm_sessions) < MIN_SESSIONS:
        text = (f"{keeps} so far ({interval}), but too few sessions to tell: {arm_sessions} "
                f"in {arm}, {control_sessions} in the {control}; at least {MIN_SESSIONS} per "
                "arm")
    elif ratio.high is not None and ratio.high < 1:
        text = f"{keeps} ({interval}): lower than the {control}"
    elif ratio.low is not None and ratio.low > 1:
        text = f"{keeps} ({interval}): higher than the {control}"
    else:
        size = ("" if detectable.mde is None else
                f"; this size detects a change of about {_percent(detectable.mde)} with 80% "
                "power")
        text = f"{keeps} ({interval}): not distinguishable from the {control} at this size{size}"
    return text


def analyse(rows: Iterable[Mapping[str, Any]], *, control: str = "teacher", boot: int = BOOT,
            seed: int = SEED, expected: Mapping[str, float] | None = None) -> Analysis:
    """The online test over served requests (the rows of `served_rows`).

    Per arm: requests, sessions, the export rate (a request is exported when its three export
    counts sum above 0) overall and per tool (among answers that used the tool, the share
    exported with it), each with a 95% percentile interval from `boot` resamples of the arm's
    sessions (drawn with replacement, the rate recomputed as a ratio of sums). Only requests
    with status "ok" are in the rates; the others are counted per arm by status. Each other
    arm is compared with `control` by the ratio of overall rates (interval: both arms resampled
    independently, the ratio taken per resample), the MDE at this size and a verdict; the
    sample ratio check tests sessions per arm against `expected` (default: equal shares).
    Requests without an arm (the caller named the model) are counted apart. Seeded: the same
    rows, boot and seed give the same numbers in any row order."""
    if isinstance(boot, bool) or not isinstance(boot, int) or boot < 1:
        raise WorkbenchError(f"the number of bootstrap resamples must be a positive whole "
                             f"number, got {boot!r}")
    gathered: dict[str, _Arm] = {}
    explicit: Counter[str] = Counter()
    arms_of_session: dict[str, set[str]] = {}
    for row in rows:
        arm_name = row["arm"]
        if arm_name is None:
            explicit[str(row["model"])] += 1
            continue
        arm = gathered.get(str(arm_name))
        if arm is None:
            arm = gathered[str(arm_name)] = _Arm()
        key = _session_key(row)
        arms_of_session.setdefault(key, set()).add(str(arm_name))
        arm.requests += 1
        arm.statuses[str(row["status"])] += 1
        session = arm.sessions.setdefault(key, [0] * _COLUMNS)
        if row["status"] != OK:
            continue
        arm.models[str(row["model"])] += 1
        if row.get("latency_ms") is not None:
            arm.latencies.append(float(row["latency_ms"]))
        _add_counts(session, row)

    order = ([control] if control in gathered else []) + sorted(a for a in gathered
                                                                 if a != control)
    summaries: dict[str, ArmSummary] = {}
    overall_draws: dict[str, np.ndarray] = {}
    session_counts: dict[str, np.ndarray] = {}
    for name in order:
        arm = gathered[name]
        counts = np.array([arm.sessions[key] for key in sorted(arm.sessions)],
                          dtype=float)                                            # (S, C)
        session_counts[name] = counts
        sums = resampled_sums(counts, boot, _arm_generator(seed, name))         # (boot, C)
        totals = counts.sum(axis=0)
        overall_draws[name] = _quotients(sums[:, _EXPORTED], sums[:, _OK])
        tools = {tool: _rate(totals[3 + 2 * j], totals[2 + 2 * j],
                             _quotients(sums[:, 3 + 2 * j], sums[:, 2 + 2 * j]))
                 for j, tool in enumerate(TOOLS)}
        summaries[name] = ArmSummary(
            arm=name, requests=arm.requests, ok=int(totals[_OK]),
            errors={status: n for status, n in sorted(arm.statuses.items()) if status != OK},
            sessions=len(arm.sessions), sessions_answered=int(np.sum(counts[:, _OK] > 0)),
            models=dict(sorted(arm.models.items())),
            latency_p50_ms=float(np.median(arm.latencies)) if arm.latencies else None,
            overall=_rate(totals[_EXPORTED], totals[_OK], overall_draws[name]), tools=tools)

    mismatch = sample_ratio_check({name: summaries[name].sessions for name in order}, expected)
    comparisons = []
    for name in order:
        if name == control:
            continue
        comparisons.append(_compare(control, name, summaries, overall_draws, session_counts,
                                    mismatch))
    if not order:
        verdicts: tuple[str, ...] = (NO_ARMS,)
    elif not comparisons:
        verdicts = (f"only one arm ({order[0]!r}) served requests: nothing to compare",)
    else:
        verdicts = tuple(comparison.verdict for comparison in comparisons)
    return Analysis(
        control=control, boot=boot, seed=seed, arms=tuple(summaries[name] for name in order),
        comparisons=tuple(comparisons), sample_ratio=mismatch,
        explicit_requests=sum(explicit.values()), explicit_models=dict(sorted(explicit.items())),
        sessions_in_several_arms=sum(1 for arms in arms_of_session.values() if len(arms) > 1),
        verdicts=verdicts)


def _compare(control: str, name: str, summaries: Mapping[str, ArmSummary],
             overall_draws: Mapping[str, np.ndarray], session_counts: Mapping[str, np.ndarray],
             mismatch: SampleRatioCheck) -> Comparison:
    """One arm against the control: the ratio with its interval, the MDE and the verdict."""
    arm = summaries[name]
    base = summaries.get(control)
    base_rate = base.overall.value if base is not None else None
    if base is None or arm.overall.value is None or not base_rate:
        ratio = Ratio(name, control, None, None, None, 0)
    else:
        # Independent resamples of the two arms, paired by index only to form the ratios.
        draws = _quotients(overall_draws[name], overall_draws[control])
        low, high, undefined = _interval(draws)
        ratio = Ratio(name, control, arm.overall.value / base_rate, low, high, undefined)

    if base is None or base_rate is None:
        detectable = DetectableEffect(name, None, 0, arm.ok, None, None,
                                      f"no answered requests in the control arm {control!r}")
    else:
        counts = session_counts[control]
        design = design_effect(counts[:, _EXPORTED], counts[:, _OK])
        if design is None or arm.ok == 0:
            reason = (f"no answered requests in {name!r}" if arm.ok == 0 else
                      f"the control's export rate is {base_rate:.0%}: no spread to test against")
            detectable = DetectableEffect(name, base_rate, base.ok, arm.ok, design, None, reason)
        else:
            detectable = DetectableEffect(
                name, base_rate, base.ok, arm.ok, design,
                minimum_detectable_effect(base_rate, base.ok, arm.ok, design), None)
    verdict = _verdict(control, name, base.sessions_answered if base is not None else 0,
                       arm.sessions_answered, ratio, detectable, mismatch)
    return Comparison(name, ratio, detectable, verdict)


# ------------------------------------------------------------------------------ over time

HOUR, DAY = "hour", "day"
_WINDOW_LENGTH = {HOUR: timedelta(hours=1), DAY: timedelta(days=1)}
HOURLY_BELOW = timedelta(days=2)     # data spanning less than this is shown per hour


@dataclass(frozen=True)
class WindowRate(_Plain):
    """One arm's export rate over the answered requests created in [start, start + window),
    with its 95% interval by bootstrap over the sessions seen in that window."""

    arm: str
    start: datetime                  # UTC, at the start of the hour or day
    window: str                      # HOUR or DAY
    sessions: int
    rate: Rate


def _utc(value: Any) -> datetime:
    """A row's created_at as an aware UTC datetime (a naive one is taken as UTC)."""
    if not isinstance(value, datetime):
        raise WorkbenchError(f"created_at must be a datetime, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window_for(rows: Iterable[Mapping[str, Any]]) -> str:
    """DAY when the rows' created_at span two days or more, else HOUR (a short test still
    shows a trend)."""
    times = [_utc(row["created_at"]) for row in rows]
    return DAY if times and max(times) - min(times) >= HOURLY_BELOW else HOUR


def _window_start(moment: datetime, window: str) -> datetime:
    if window == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def rates_over_time(rows: Iterable[Mapping[str, Any]], *, window: str | None = None,
                    boot: int = BOOT, seed: int = SEED) -> list[WindowRate]:
    """Each arm's export rate per time window (`window_for` the rows unless given), with the
    95% interval of `analyse`: the window's sessions resampled with replacement, the rate a
    ratio of sums. A session whose requests fall in two windows counts in each, with the
    requests of that window. Only requests under an arm with status "ok" count; windows
    without any are left out. Sorted by arm, then time; seeded per arm and window."""
    if isinstance(boot, bool) or not isinstance(boot, int) or boot < 1:
        raise WorkbenchError(f"the number of bootstrap resamples must be a positive whole "
                             f"number, got {boot!r}")
    answered = [row for row in rows if row["arm"] is not None and row["status"] == OK]
    if window is None:
        window = window_for(answered)
    if window not in _WINDOW_LENGTH:
        raise WorkbenchError(f"the time window must be {HOUR!r} or {DAY!r}, got {window!r}")
    grouped: dict[tuple[str, datetime], dict[str, list[int]]] = {}
    for row in answered:
        key = (str(row["arm"]), _window_start(_utc(row["created_at"]), window))
        session = grouped.setdefault(key, {}).setdefault(_session_key(row), [0] * _COLUMNS)
        _add_counts(session, row)
    result = []
    for (arm, start), sessions in sorted(grouped.items()):
        counts = np.array([sessions[key] for key in sorted(sessions)], dtype=float)   # (S, C)
        sums = resampled_sums(counts, boot, _arm_generator(seed, f"{arm}@{start.isoformat()}"))
        totals = counts.sum(axis=0)
        rate = _rate(totals[_EXPORTED], totals[_OK],
                     _quotients(sums[:, _EXPORTED], sums[:, _OK]))
        result.append(WindowRate(arm, start, window, len(sessions), rate))
    return result
