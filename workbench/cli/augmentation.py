"""The augmentation commands: augment (mine, paraphrase, deduplicate, queue) and the review queue
(`review list | approve | reject | pending | commit`)."""

from __future__ import annotations

import argparse
import os

from pipelines import augment, review
from workbench.cli.models import add_augment_options
from workbench.cli.output import emit, progress_bars
from workbench.cli.parsing import LIST_ROWS, Commands, add_progress, parse_positive_int
from workbench.errors import WorkbenchError
from workbench.store import Store


def _augment_lines(result: augment.AugmentResult) -> list[str]:
    lines = []
    if result.run_id is not None:
        tools = ", ".join(f"{tool} {n}" for tool, n in sorted(result.flagged_by_tool.items()))
        lines.append(f"mined run {result.run_id} on its training split (evaluation "
                     f"{result.mining_evaluation_id}): {result.n_flagged} intents flagged "
                     f"({tools})")
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
            auto_approve=args.auto_approve, seed=args.seed, version=args.version),
            store, progress)
    emit(args, result, lambda: _augment_lines(result))
    return 0


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
    p.add_argument("--seed", type=int, default=defaults.seed, help="offline paraphraser seed")
    p.add_argument("--auto-approve", action="store_true",
                   help="approve every kept candidate and commit a new dataset version")
    add_augment_options(p, defaults)
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
