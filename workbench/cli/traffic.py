"""`workbench simulate-traffic`: SIMULATED demo users sending intents through a running
`workbench serve` (the work is `pipelines.traffic`'s), so the online A/B test has data offline."""

from __future__ import annotations

import argparse
import shlex

from pipelines import traffic
from workbench.cli.output import emit, progress_bars
from workbench.cli.parsing import (
    Commands,
    add_progress,
    parse_positive_int,
    parse_positive_number,
)
from workbench.store import Store
from workbench.terminal import printable

HELP = ("SIMULATED demo traffic, not real users: simulated sessions (ids starting with 'sim-') "
        "send intents of the dataset version's test split, weighted by request count, through "
        "a running `workbench serve` with the openai client (model 'default', so the server's "
        "A/B split picks the arm), and export each answer with a chance that falls with its "
        "distance from the demo world's intended look for the intent: the intent's ground "
        "truth in the dataset version (on the demo corpus mostly the synthetic generator's "
        "modal teacher answer): 0.15 + 0.7 x the mean per-tool similarity over the tools the "
        "look uses. Exports are posted to /v1/feedback. Then ingest the server's spool and run "
        "`workbench ab` or open the app's Online page.")


def format_result(result: traffic.TrafficResult, spool_hint: str) -> list[str]:
    """The summary: what was sent, the exported share per model, and what to do next
    (`spool_hint`: the arguments of `workbench ingest` for serve's default spool)."""
    lines = [(f"SIMULATION (not real users): {result.sessions} simulated sessions "
             f"({result.first_session} to {result.last_session}) sent {result.requests} "
             f"requests to {printable(result.url)} (test split of dataset version "
             f"{result.version_id}, seed {result.seed}): {result.answered} answered, "
             f"{result.exported} exported by the simulated users (feedback posted).")]
    if result.errors:
        lines.append("  not answered: " + ", ".join(
            f"{printable(code)} {n}" for code, n in result.errors.items()))
    if result.models:
        width = max(len("model"), *(len(printable(model)) for model in result.models))
        lines.append(f"  {'model':<{width}}  answered  exported (simulated)")
        for model, tally in result.models.items():
            share = "-" if tally.share is None else f"{100 * tally.share:.1f}%"
            lines.append(f"  {printable(model):<{width}}  {tally.answered:>8}  {share} "
                         f"({tally.exported})")
    lines.append("Next: ingest the server's spool (`workbench ingest "
                 f"{printable(spool_hint)}`, or the --spool the server was given; a running "
                 "server's open segment closes within 5 minutes, or add --include-open), then `workbench ab` or the app's Online page.")
    return lines


def cmd_simulate_traffic(args: argparse.Namespace, store: Store) -> int:
    config = traffic.TrafficConfig(url=args.url, sessions=args.sessions, seed=args.seed,
                                   concurrency=args.concurrency, timeout_s=args.timeout,
                                   version=args.version)
    with progress_bars(args) as progress:
        result = traffic.run(config, store, progress)
    spool_hint = (f"--db {shlex.quote(str(store.path))} "
                  f"{shlex.quote(str(store.path.parent / 'spool'))}")
    emit(args, result, lambda: format_result(result, spool_hint))
    return 0


def add_simulate_traffic(commands: Commands) -> None:
    p = commands.add("simulate-traffic", cmd_simulate_traffic, HELP.replace("%", "%%"),
                     reads=True)
    p.add_argument("--url", default=traffic.DEFAULT_URL,
                   help="the running server's OpenAI base URL (default: %(default)s)")
    p.add_argument("--sessions", type=parse_positive_int, default=traffic.DEFAULT_SESSIONS,
                   help="simulated sessions (users), each 1 to 6 requests "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the sessions, their intents and the users' draws; the same "
                        "seed sends the same simulated users (default: %(default)s)")
    p.add_argument("--concurrency", type=parse_positive_int, default=traffic.DEFAULT_CONCURRENCY,
                   help="simulated users at a time, one thread each (default: %(default)s)")
    p.add_argument("--timeout", type=parse_positive_number, default=traffic.DEFAULT_TIMEOUT_S,
                   help="seconds each HTTP call may take (default: %(default)s)")
    p.add_argument("--version", type=int, default=None,
                   help="the dataset version whose test split is sent (default: current)")
    add_progress(p)
