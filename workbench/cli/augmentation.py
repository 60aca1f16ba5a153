"""The augmentation commands: augment (mine, paraphrase, deduplicate, queue), slices (a run's
training intents clustered and scored) and the review queue
(`review list | approve | reject | pending | commit`)."""

from __future__ import annotations

import argparse
import os

from pipelines import augment, review, slices
from workbench.cli.models import add_augment_options, add_slice_options, add_strategy_parameters
from workbench.cli.output import emit, progress_bars
from workbench.cli.parsing import LIST_ROWS, Commands, add_progress, parse_positive_int
from workbench.errors import WorkbenchError
from workbench.report import TOOL_TITLES
from workbench.store import Store


def _augment_lines(result: augment.AugmentResult) -> list[str]:
    lines = []
    if result.run_id is not None:
        tools = ", ".join(f"{tool} {n}" for tool, n in sorted(result.flagged_by_tool.items()))
        lines.append(f"mined run {result.run_id} on its training split (evaluation "
                     f"{result.mining_evaluation_id}, strategy {result.strategy}): "
                     f"{result.n_flagged} intents flagged ({tools})")
    dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(result.dropped.items())) or "none"
    lines.append(f"augmentation {result.augmentation_id} ({result.paraphraser}): "
                 f"{result.n_sources} source intents, {result.n_generated} candidates, "
                 f"{result.n_kept} kept, dropped: {dropped}, paraphraser failures: "
                 f"{result.n_failed}")
    if result.n_failed:
        lines.append(f"the paraphraser failed on {result.n_failed} of {result.n_sources} source "
                     f"intents (the first: {result.first_failure}); rerun to retry them "
                     "(replies that came back are cached)")
    if result.committed_version_id is not None:
        lines.append(f"auto-approved and committed as dataset version "
                     f"{result.committed_version_id}")
    else:
        lines.append(f"Next: workbench review list --augmentation {result.augmentation_id}")
    return lines


def cmd_augment(args: argparse.Namespace, store: Store) -> int:
    with progress_bars(args) as progress:
        result = augment.run(augment.AugmentConfig(
            run_id=args.run, sources=tuple(args.intent), n=args.n, threshold=args.threshold,
            paraphraser=augment.ParaphraserChoice(args.paraphraser), limit=args.limit,
            auto_approve=args.auto_approve, seed=args.seed, version=args.version,
            mining=_mining(args)), store, progress)
    emit(args, result, lambda: _augment_lines(result))
    return 0


def _mining(args: argparse.Namespace) -> augment.MiningConfig:
    if args.intent and args.strategy is not None:
        raise WorkbenchError("--strategy chooses how a run is mined; with --intent nothing is "
                             "mined (leave out one of them)")
    defaults = augment.MiningConfig()
    return augment.MiningConfig(
        strategy=augment.MiningStrategy(args.strategy or defaults.strategy.value),
        margin=args.margin, worst_percent=args.worst_percent, clusters=args.clusters,
        slice_gap=args.slice_gap)


def cmd_slices(args: argparse.Namespace, store: Store) -> int:
    with progress_bars(args) as progress:
        result = slices.compute_slices(store, run_id=args.run, k=args.clusters, seed=args.seed,
                                       gap=args.slice_gap, progress=progress)
    emit(args, result, lambda: slices_lines(result, args.examples))
    return 0


def slices_lines(result: slices.SlicesResult, examples: int = 2) -> list[str]:
    """The slices table as text: one block per slice, worst first."""
    overall = "undef" if result.student_overall is None else f"{result.student_overall:.3f}"
    flagged = [found for found in result.slices if found.flagged]
    headline = (f"run {result.run_id}, mining evaluation {result.evaluation_id} (version "
                f"{result.version_id}, {result.n_intents:,} training intents): {result.k} "
                f"slices (k-means, seed {result.seed}); the student's Overall {overall}; "
                f"{len(flagged)} slice(s), {result.n_flagged_intents:,} intents, at least "
                f"{result.gap} below it (*)")
    header = (f"{'':1}{'#':>3}  {'size':>5}  {'Overall':>7}  {'adjust':>6}  {'select.':>7}  "
              f"{'filter':>6}  {'worst tool':<17}  top words")
    lines = [headline, "", header]

    def number(value: float | None, width: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"

    for found in result.slices:
        worst = TOOL_TITLES.get(found.worst_tool, "-") if found.worst_tool else "-"
        lines.append(f"{'*' if found.flagged else ' '}{found.rank:>3}  {found.size:>5}  "
                     f"{number(found.overall, 7)}  {number(found.finals['adjust'], 6)}  "
                     f"{number(found.finals['selective_adjust'], 7)}  "
                     f"{number(found.finals['filter'], 6)}  {worst:<17}  "
                     f"{', '.join(found.top_words) or '-'}")
        lines += [f"{'':8}e.g. {text!r}" for text in found.examples[:examples]]
    lines += ["", "Finals per tool: - where neither side used the tool in the slice (it does "
              "not count in the slice's Overall). Mine the flagged slices: workbench augment "
              f"--run {result.run_id} --strategy slices"
              + (f" --clusters {result.k}" if result.k else "")
              + (f" --slice-gap {result.gap}" if result.gap != slices.DEFAULT_GAP else "")]
    return lines


def cmd_review_list(args: argparse.Namespace, store: Store) -> int:
    selection = review.ReviewFilter(
        augmentation_id=args.augmentation,
        status=None if args.status == "all" else review.Status(args.status))
    rows = review.list_candidates(store, selection, args.limit, args.offset)

    def lines() -> list[str]:
        counts = review.count_candidates(store, selection)
        found = [", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
                 or "no candidates (run `workbench augment` first)"]
        for row in rows:
            near = "" if row["nearest_similarity"] is None else \
                f"  nearest ({row['nearest_kind']}, {row['nearest_similarity']:.2f}): " \
                f"{row['nearest_text']!r}"
            reason = f" [{row['drop_reason']}]" if row["drop_reason"] else ""
            found.append(f"{row['candidate_id']:>7}  {row['status']:<8}{reason}  "
                         f"{row['intent_text']!r}  <- {row['source_text']!r}{near}")
        return found

    emit(args, rows, lines)
    return 0


def _decide(args: argparse.Namespace, store: Store, status: review.Status) -> int:
    if not args.ids and not args.all_pending:
        raise WorkbenchError("name candidate ids, or --all-pending (with --augmentation to limit "
                             "it to one round)")
    if args.ids and args.all_pending:
        raise WorkbenchError("give candidate ids or --all-pending, not both")
    selection = review.ReviewFilter(
        augmentation_id=args.augmentation,
        status=review.Status.PENDING if args.all_pending else None,
        candidate_ids=tuple(args.ids))
    changed = review.set_status(store, selection, status, by=args.by)
    print(f"{status.value} {changed} candidate(s)")
    if status is review.Status.APPROVED:
        print("Next: workbench review commit" + (f" --augmentation {args.augmentation}"
                                                   if args.augmentation else ""))
    return 0


def cmd_review_approve(args: argparse.Namespace, store: Store) -> int:
    return _decide(args, store, review.Status.APPROVED)


def cmd_review_reject(args: argparse.Namespace, store: Store) -> int:
    return _decide(args, store, review.Status.REJECTED)


def cmd_review_pending(args: argparse.Namespace, store: Store) -> int:
    changed = review.set_pending(store, tuple(args.ids))
    left = len(set(args.ids)) - changed
    print(f"set {changed} candidate(s) back to pending"
          + (f" ({left} already pending)" if left else ""))
    return 0


def cmd_review_commit(args: argparse.Namespace, store: Store) -> int:
    result = review.commit(store, args.augmentation, by=args.by, note=args.note,
                           rebase=args.rebase)
    print("\n".join(review.describe_commit(result)))
    return 0


def add_augment(commands: Commands) -> None:
    defaults = augment.AugmentConfig()
    p = commands.add("augment", cmd_augment, "Mine a run's errors on its training split, "
                     "paraphrase the flagged intents, deduplicate and queue the candidates for "
                     "review.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--run", default=defaults.run_id,
                        help="the run whose errors to mine (default: the latest run)")
    source.add_argument("--intent", action="append", default=[], metavar="TEXT",
                        help="paraphrase this training intent instead of mining (repeatable)")
    p.add_argument("--version", type=int, default=defaults.version,
                   help="with --intent: the dataset version (default: current)")
    p.add_argument("--limit", type=parse_positive_int, default=defaults.limit,
                   help="at most this many source intents, most-flagged first")
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="seed of the offline paraphraser and of the slices' k-means")
    p.add_argument("--auto-approve", action="store_true",
                   help="approve every kept candidate and commit a new dataset version")
    add_augment_options(p, defaults)
    add_mining_options(p)
    add_progress(p)


def add_mining_options(command: argparse.ArgumentParser) -> None:
    """--strategy and its parameters (augment)."""
    mining = augment.MiningConfig()
    command.add_argument(
        "--strategy", choices=[strategy.value for strategy in augment.MiningStrategy],
        default=None,
        help=f"which training intents to paraphrase (default: {mining.strategy.value}): mean, "
             "the paper's rule (a wrong filter, or a cosine below the tool's mean); margin, "
             "below the mean by more than --margin; worst, the --worst-percent %% intents with "
             "the largest loss over the three tools; slices, the intents of the clusters whose "
             "Overall is at least --slice-gap below the student's (see `workbench slices`)")
    add_strategy_parameters(command, mining)


def add_slices(commands: Commands) -> None:
    p = commands.add("slices", cmd_slices, "Cluster a run's training intents by meaning "
                     "(k-means on their embeddings) and score each cluster with the paper's "
                     "metrics, worst first: size, Overall, each tool's final, worst tool, "
                     "distinctive words and examples. Uses the run's latest mining evaluation "
                     "(mines the run first when it has none).")
    p.add_argument("--run", default=None,
                   help="the run (id or prefix; default: the latest run)")
    add_slice_options(p, None, slices.DEFAULT_GAP)
    p.add_argument("--seed", type=int, default=0, help="k-means seed (default: %(default)s)")
    p.add_argument("--examples", type=int, default=2,
                   help="examples printed per slice (the five nearest the centre are in "
                        "--json; default: %(default)s)")
    add_progress(p)


def add_review(commands: Commands) -> None:
    group = commands.group("review", "The augmentation review queue: list, approve, reject, "
                           "set back to pending, commit approvals into a new dataset version.")
    reviewer = os.environ.get("USER") or "curator"

    def round_option(command: argparse.ArgumentParser, text: str) -> None:
        command.add_argument("--augmentation", type=int, default=None, help=text)

    def by_option(command: argparse.ArgumentParser) -> None:
        command.add_argument("--by", default=reviewer,
                             help="reviewer name stored with the decision (default: $USER)")

    p = group.add("list", cmd_review_list, "List the candidates of the review queue with their "
                  "source intent and nearest neighbour.", reads=True)
    round_option(p, "only this augmentation round")
    p.add_argument("--status", default=review.Status.PENDING.value,
                   choices=[*(status.value for status in review.Status), "all"],
                   help="which candidates (default: %(default)s)")
    p.add_argument("--limit", type=parse_positive_int, default=LIST_ROWS,
                   help="rows (default %(default)s)")
    p.add_argument("--offset", type=int, default=0, help="rows to skip")

    for name, handler, verb in (("approve", cmd_review_approve, "Approve"),
                                ("reject", cmd_review_reject, "Reject")):
        p = group.add(name, handler, f"{verb} candidates: the ones named, or every pending one "
                      "(of one round with --augmentation).", json_flag=False)
        p.add_argument("ids", nargs="*", type=int, help="candidate ids")
        p.add_argument("--all-pending", action="store_true",
                       help=f"{name} every pending candidate (of --augmentation)")
        round_option(p, "only candidates of this augmentation round")
        by_option(p)

    p = group.add("pending", cmd_review_pending, "Set approved or rejected candidates back to "
                  "pending (undecided, no reviewer): only the ids named.", json_flag=False)
    p.add_argument("ids", nargs="+", type=int, help="candidate ids")

    p = group.add("commit", cmd_review_commit, "Commit a round's approved candidates into a new "
                  "dataset version on the current one.", json_flag=False)
    round_option(p, "the augmentation round (default: every round's approvals)")
    by_option(p)
    p.add_argument("--note", default="", help="a note for the new version")
    p.add_argument("--rebase", action=argparse.BooleanOptionalAction, default=True,
                   help="when the round's version is no longer current, build on the current "
                        "version (default); --no-rebase stops instead")
