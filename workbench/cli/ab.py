"""`workbench ab`: the online A/B test over the served requests that ingest brought in (the
statistics are `workbench.serving.ab`'s; the rows come from `workbench.store.serving`)."""

from __future__ import annotations

import argparse

from workbench.cli.output import emit
from workbench.cli.parsing import Commands, parse_positive_int
from workbench.errors import WorkbenchError
from workbench.serving import ab
from workbench.store import Store
from workbench.terminal import printable
from workbench.tools import TOOLS


def _arms(text: str) -> dict[str, float]:
    """--expected, read like `serve --ab`."""
    try:
        return ab.parse_arms(text)
    except WorkbenchError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _rate(rate: ab.Rate) -> str:
    """`52.2% (47.9-56.3)` of `312/598`; `-` when no request counts."""
    if rate.value is None:
        return "-"
    interval = "" if rate.low is None or rate.high is None else \
        f" ({100 * rate.low:.1f}-{100 * rate.high:.1f})"
    return f"{_percent(rate.value)}{interval} of {rate.of}"


def format_analysis(result: ab.Analysis) -> list[str]:
    """The analysis as text: a table of the arms, then the ratios, the sample ratio check,
    the requests outside the test and the verdicts."""
    lines = [(f"Online A/B test against the control {printable(result.control)!r}: export "
              f"rates with 95% intervals from {result.boot} bootstrap resamples of sessions "
              f"(seed {result.seed}); only answered (ok) requests count in the rates."), ""]
    if result.arms:
        names = [printable(arm.arm) for arm in result.arms]
        width = max(len("arm"), *map(len, names))
        columns = ["export rate", *TOOLS]
        cells = [[_rate(arm.overall), *(_rate(arm.tools[tool]) for tool in TOOLS)]
                 for arm in result.arms]
        widths = [max(len(column), *(len(row[i]) for row in cells))
                  for i, column in enumerate(columns)]
        lines.append(f"{'arm':<{width}}  requests  errors  sessions  " + "  ".join(
            f"{column:<{w}}" for column, w in zip(columns, widths, strict=True)))
        for name, arm, row in zip(names, result.arms, cells, strict=True):
            lines.append(f"{name:<{width}}  {arm.requests:>8}  {sum(arm.errors.values()):>6}  "
                         f"{arm.sessions:>8}  " + "  ".join(
                             f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)))
        for name, arm in zip(names, result.arms, strict=True):
            if arm.errors:
                lines.append(f"  {name}: not answered: " + ", ".join(
                    f"{printable(status)} {n}" for status, n in arm.errors.items()))
        lines.append("")
    for comparison in result.comparisons:
        ratio, detectable = comparison.ratio, comparison.detectable
        name = printable(comparison.arm)
        if ratio.value is None:
            lines.append(f"ratio {name} / {printable(result.control)}: none")
        else:
            lines.append(f"ratio {name} / {printable(result.control)}: "
                         f"{_percent(ratio.value)} (95% CI {_percent(ratio.low)} to "
                         f"{_percent(ratio.high)})")
        if detectable.mde is None:
            lines.append(f"  minimum detectable effect: none ({detectable.reason})")
        else:
            lines.append(f"  minimum detectable effect at this size: {_percent(detectable.mde)} "
                         f"of the ratio (alpha 0.05 two-sided, power 0.8; control rate "
                         f"{_percent(detectable.control_rate)}, {detectable.control_requests} "
                         f"and {detectable.arm_requests} answered requests, design effect "
                         f"{detectable.design_effect:.2f})")
    srm = result.sample_ratio
    if srm.p_value is not None:
        observed = ", ".join(f"{printable(arm)} {n}" for arm, n in srm.observed.items())
        shares = ", ".join(f"{printable(arm)} {100 * share:.1f}%"
                           for arm, share in srm.expected_share.items())
        lines.append(f"sample ratio: sessions {observed} against {srm.basis} ({shares}): "
                     f"chi-square {srm.chi2:.2f}, df {srm.df}, p = {srm.p_value:.3g} -> "
                     + ("MISMATCH (p < 0.001)" if srm.flagged else "no mismatch"))
    if result.sessions_in_several_arms:
        lines.append(f"warning: {result.sessions_in_several_arms} session(s) were served under "
                     "more than one arm (the split or its salt changed between servers)")
    if result.explicit_requests:
        models = ", ".join(f"{printable(model)} {n}"
                           for model, n in result.explicit_models.items())
        lines.append(f"not in the test: {result.explicit_requests} request(s) that named their "
                     f"model ({models})")
    lines.append("")
    lines += [f"verdict: {printable(verdict)}" for verdict in result.verdicts]
    return lines


def cmd_ab(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.serving import served_rows

    with store.session(read_only=True) as session:
        rows = served_rows(session)
    result = ab.analyse(rows, control=args.control, boot=args.boot, seed=args.seed,
                        expected=args.expected)
    emit(args, result, lambda: format_analysis(result))
    return 0


def add_ab(commands: Commands) -> None:
    p = commands.add("ab", cmd_ab, "The online A/B test over ingested served requests: per arm "
                     "requests, sessions and export rates (overall and per tool) with 95%% "
                     "intervals by bootstrap over sessions, each arm's ratio to the control, a "
                     "sample ratio mismatch check, the minimum detectable effect and a verdict.",
                     reads=True)
    p.add_argument("--control", default="teacher",
                   help="the arm the others are compared with (default: %(default)s)")
    p.add_argument("--boot", type=parse_positive_int, default=ab.BOOT,
                   help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=ab.SEED,
                   help="bootstrap seed (default: %(default)s)")
    p.add_argument("--expected", type=_arms, default=None, metavar="ARMS",
                   help="the weights the server split sessions by, as given to `serve --ab` "
                        "(e.g. teacher=50,student:latest=50), for the sample ratio check "
                        "(default: equal shares of the arms seen)")
