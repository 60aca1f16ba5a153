"""`workbench labels list | show | set | export | stats | commit`: an intent's labels with their
sources, a curator's label from the terminal, and a dataset version from labels by precedence
(the work is in pipelines.labels)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from pipelines import labels
from workbench.cli.output import emit
from workbench.cli.parsing import LIST_ROWS, OUT_RULES, Commands, parse_positive_int
from workbench.describe import describe_output
from workbench.errors import VersionNotFoundError, WorkbenchError
from workbench.store import Store
from workbench.store.labels import KINDS, LabelFilter, LabelKind
from workbench.tools import TOOLS, Answer

TOOL_ALIASES = {"selective": "selective_adjust"}


def _answer_lines(answer: Answer, indent: str = "    ") -> list[str]:
    return [f"{indent}{tool:<17} {describe_output(tool, answer.tool_json(tool))}"
            for tool in TOOLS]


def _comparison_text(reference: Answer, answer: Answer) -> str:
    """How `answer` differs from `reference` in the paper's terms, in one line."""
    parts = []
    for tool, c in labels.compare_answers(reference, answer).items():
        if not c.selection_agrees:
            parts.append(f"{tool} {'added' if c.b_used else 'dropped'}")
        elif c.cosine is not None and c.a_used:
            parts.append(f"{tool} cosine {c.cosine:.2f}")
        elif c.name_match is not None:
            parts.append(f"filter {'same' if c.name_match else 'other'} name, intensity "
                         f"{c.intensity_difference:+d}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------ list

def cmd_list(args: argparse.Namespace, store: Store) -> int:
    filters = LabelFilter(kinds=tuple(LabelKind(kind) for kind in args.kind), author=args.by,
                          search=args.search)
    found = labels.list_labels(store, filters, args.limit, args.offset)

    def lines() -> list[str]:
        total = labels.count_labels(store, filters)
        if not found:
            return [("no labels here (curation records them; `workbench labels set` adds a "
                    "curator's; `workbench label` asks a teacher)")]
        rows = [(f"{total} label(s); showing {args.offset + 1}-{args.offset + len(found)}, "
                "newest first")]
        for label in found:
            tools = "; ".join(describe_output(tool, label.answer.tool_json(tool))
                              for tool in TOOLS if label.answer.uses(tool)) or "no tools"
            rows.append(f"#{label.label_id:<6} {label.created_at:%Y-%m-%d %H:%M}  "
                        f"{label.source:<24} {label.intent_text!r}: {tools}")
        return rows

    emit(args, [label.to_dict() for label in found], lines)
    return 0


# ------------------------------------------------------------------------------ show

def cmd_show(args: argparse.Namespace, store: Store) -> int:
    found = labels.labels_of(store, args.intent, args.version)
    try:
        current = labels.current_answer(store, args.intent, args.version)
    except VersionNotFoundError:
        if args.version is not None:
            raise
        current = None              # no dataset version yet: labels only

    def lines() -> list[str]:
        rows = [f"intent {args.intent!r}: {len(found)} label(s), newest first"]
        if current is None:
            rows.append("  not in the dataset version: no current ground truth")
        else:
            held = "" if current.label_id is None else f" (label #{current.label_id})"
            rows.append(f"  ground truth in version {current.version_id} ({current.split}): "
                        f"{current.source}{held}")
        for label in found:
            marks = [mark for mark, on in (("current", label.current),
                                           ("wins the default precedence", label.wins)) if on]
            if label.conflicts_with:
                marks.append("CONFLICT with " + ", ".join(f"#{i}" for i in label.conflicts_with))
            rows.append(f"#{label.label_id} {label.source}  {label.created_at:%Y-%m-%d %H:%M:%S}"
                        + (f"  [{'; '.join(marks)}]" if marks else ""))
            rows += _answer_lines(label.answer)
            if label.edited_from is not None:
                rows.append(f"    edited from #{label.edited_from}")
            if label.note:
                rows.append(f"    note: {label.note}")
            if current is not None and not label.current:
                rows.append(f"    vs the ground truth: "
                            f"{_comparison_text(current.answer, label.answer) or 'the same'}")
        if any(label.conflicts_with for label in found):
            rows.append("Curators disagree: the newest curator label wins the precedence; save "
                        "a label edited from the one you keep to settle it.")
        return rows

    emit(args, {"current": None if current is None else current.to_dict(),
                "labels": [label.to_dict() for label in found]}, lines)
    return 0


# ------------------------------------------------------------------------------ set

def _value(text: str) -> Any:
    """A --set value: an integer when it reads as one (JSON otherwise, e.g. 12.0), else the
    text, which the tool schema then refuses naming the field."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def edited_answer(base: Answer | None, assignments: list[str], filter_spec: str | None,
                  unused: set[str]) -> dict[str, Any]:
    """The answer `base` (nothing when None) with the --set assignments (`adjust.temperature=-40`,
    `selective_adjust.red.saturation=20`, `filter.intensity=60`), --filter NAME:INTENSITY and
    the --no-TOOL flags applied; validated later, against the tool schema."""
    data: dict[str, Any] = base.to_dict() if base is not None else dict.fromkeys(TOOLS)
    for tool in unused:
        data[tool] = None
    for text in assignments:
        path, sep, raw = text.partition("=")
        parts = path.strip().split(".")
        tool = TOOL_ALIASES.get(parts[0], parts[0])
        if not sep or tool not in TOOLS:
            raise WorkbenchError(f"--set {text!r}: expected TOOL.KEY=VALUE with TOOL one of "
                                 f"{', '.join(TOOLS)} (e.g. adjust.temperature=-40)")
        if tool in unused:
            raise WorkbenchError(f"--set {text!r} sets a tool that --no-{parts[0]} turns off")
        depth = 3 if tool == "selective_adjust" else 2
        if len(parts) != depth:
            example = {"adjust": "adjust.temperature=-40",
                       "selective_adjust": "selective_adjust.red.saturation=20",
                       "filter": "filter.intensity=60"}[tool]
            raise WorkbenchError(f"--set {text!r}: expected a path like {example}")
        target = data[tool] = dict(data[tool] or {})
        if tool == "selective_adjust":
            target = target.setdefault(parts[1], {})
            target = target if isinstance(target, dict) else {}
            data[tool][parts[1]] = target
        target[parts[-1]] = _value(raw)
    if filter_spec is not None:
        if "filter" in unused:
            raise WorkbenchError("--filter and --no-filter contradict each other")
        name, sep, intensity = filter_spec.rpartition(":")
        if not sep or not name:
            raise WorkbenchError(f"--filter {filter_spec!r}: expected NAME:INTENSITY, "
                                 "e.g. mono_Noir:60")
        data["filter"] = {"name": name.strip(), "intensity": _value(intensity)}
    return data


def cmd_set(args: argparse.Namespace, store: Store) -> int:
    unused = {tool for tool, off in (("adjust", args.no_adjust),
                                     ("selective_adjust", args.no_selective),
                                     ("filter", args.no_filter)) if off}
    flags = bool(args.set or args.filter or unused)
    if args.answer is not None and flags:
        raise WorkbenchError("give the whole answer with --answer, or edit the ground truth "
                             "with --set / --filter / --no-TOOL, not both")
    if args.answer is None and not flags:
        raise WorkbenchError("say what the label is: --answer JSON, or --set TOOL.KEY=VALUE, "
                             "--filter NAME:INTENSITY, --no-adjust / --no-selective / "
                             "--no-filter (starting from the current ground truth)")
    current = labels.current_answer(store, args.intent)
    edited_from = args.edited_from
    if args.answer is not None:
        answer: Any = args.answer
    else:
        answer = edited_answer(None if current is None else current.answer, args.set,
                               args.filter, unused)
        if edited_from is None and current is not None:
            edited_from = current.label_id
    label = labels.set_label(store, args.intent, answer, LabelKind.CURATOR, args.by,
                             note=args.note, edited_from=edited_from)

    def lines() -> list[str]:
        rows = [f"saved label #{label.label_id} ({label.source}) for {label.intent_text!r}"
                + (f", edited from #{label.edited_from}" if label.edited_from else "")]
        rows += _answer_lines(label.answer)
        if current is not None:
            difference = _comparison_text(current.answer, label.answer)
            rows.append(f"vs the ground truth of version {current.version_id} "
                        f"({current.source}): {difference or 'the same answer'}")
        else:
            rows.append("the intent is not in the current dataset version: commit with "
                        "--add-new-intents to add it to the training split")
        rows.append("Next: workbench labels commit (a new dataset version from the labels)")
        return rows

    emit(args, label.to_dict(), lines)
    return 0


# ------------------------------------------------------------------------------ export, stats

def cmd_export(args: argparse.Namespace, store: Store) -> int:
    result = labels.export_labels(labels.LabelExportConfig(
        out=args.out, kinds=tuple(LabelKind(kind) for kind in args.kind)), store)
    print(f"wrote {result.labels} label(s) to {result.out} ({result.format})")
    return 0


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _stats_lines(result: labels.LabelStats) -> list[str]:
    rows = [(f"{result.labels} label(s) on {result.intents} intent(s); "
            f"{result.conflicts} intent(s) where curators conflict; "
            f"{result.failures} teacher-labelling failure(s)")]
    rows += [f"  {row['source']:<28} {row['labels']:>7} label(s) on {row['intents']:>7} "
             f"intent(s), newest {row['newest'][:19]}" for row in result.by_source]
    if result.pairs:
        rows.append("Agreement between sources on the same intents (newest label per source; "
                    "selection = same tool on/off; quality = mean cosine, or filter name match, "
                    "where both used the tool):")
        for pair in result.pairs:
            rows.append(f"  {pair.kinds[0]} vs {pair.kinds[1]}: {pair.comparisons} "
                        f"comparison(s) on {pair.intents} intent(s)")
            rows += [f"    {tool:<17} selection {_rate(pair.selection[tool])}  quality "
                     f"{_rate(pair.quality[tool])} (both used: {pair.both_used[tool]})"
                     for tool in TOOLS]
    else:
        rows.append("No intent has labels from two sources yet.")
    c = result.curators
    if c is not None:
        rows.append(f"Curators on filter names: {c.intents} intent(s) labelled by 2+ of "
                    f"{c.curators} curator(s); pairwise agreement {_rate(c.percent)}, "
                    f"Krippendorff's alpha {_rate(c.krippendorff_alpha)}, Fleiss' kappa "
                    f"{_rate(c.fleiss_kappa)}" + (f" ({c.note})" if c.note else ""))
    return rows


def cmd_stats(args: argparse.Namespace, store: Store) -> int:
    result = labels.stats(store)
    emit(args, result, lambda: _stats_lines(result))
    return 0


# ------------------------------------------------------------------------------ commit

def cmd_commit(args: argparse.Namespace, store: Store) -> int:
    result = labels.commit(labels.CommitConfig(
        precedence=labels.parse_precedence(args.precedence), note=args.note, by=args.by,
        add_new_intents=args.add_new_intents), store)
    emit(args, result, lambda: labels.describe_commit(result))
    return 0


# ------------------------------------------------------------------------------ the group

def add_commands(commands: Commands) -> None:
    group = commands.group("labels", "Labels (every answer an intent was given, with its "
                           "source): list, show, set, export, stats, and commit a dataset "
                           "version from them by precedence.")
    curator = os.environ.get("USER") or "curator"

    def kind_option(command: argparse.ArgumentParser, text: str) -> None:
        command.add_argument("--kind", action="append", choices=KINDS, default=[],
                             help=text + " (repeatable; default: every kind)")

    def by_option(command: argparse.ArgumentParser, text: str) -> None:
        command.add_argument("--by", default=curator, help=text + " (default: $USER)")

    p = group.add("list", cmd_list, "List labels, newest first.", reads=True)
    kind_option(p, "only labels of this kind")
    p.add_argument("--by", default=None,
                   help="only labels by this author (curator name, teacher model, run id)")
    p.add_argument("--search", default=None, help="only intents whose text contains this")
    p.add_argument("--limit", type=parse_positive_int, default=LIST_ROWS,
                   help="rows (default %(default)s)")
    p.add_argument("--offset", type=int, default=0, help="rows to skip")

    p = group.add("show", cmd_show, "An intent's labels with their sources, the ground truth "
                  "the dataset version holds, what the default precedence would take, and "
                  "conflicts between curators.", reads=True)
    p.add_argument("intent", help="the intent's text")
    p.add_argument("--version", type=int, default=None,
                   help="the dataset version whose ground truth to mark (default: current)")

    p = group.add("set", cmd_set, "Save a curator's label for an intent (in a log or not): the "
                  "whole answer as JSON, or edits of the current ground truth. A value out of "
                  "range or an unknown filter saves nothing.")
    p.add_argument("intent", help="the intent's text")
    p.add_argument("--answer", default=None, metavar="JSON",
                   help='the whole answer, e.g. \'{"adjust": {"temperature": -40}}\' (a tool '
                        "left out is not used)")
    p.add_argument("--set", action="append", default=[], metavar="TOOL.KEY=VALUE",
                   help="set one value of the current ground truth (repeatable): "
                        "adjust.temperature=-40, selective_adjust.red.saturation=20, "
                        "filter.intensity=60")
    p.add_argument("--filter", default=None, metavar="NAME:INTENSITY",
                   help="use this filter, e.g. mono_Noir:60")
    p.add_argument("--no-adjust", action="store_true", help="do not use adjust")
    p.add_argument("--no-selective", action="store_true", help="do not use selective_adjust")
    p.add_argument("--no-filter", action="store_true", help="do not use a filter")
    by_option(p, "the curator's name stored with the label")
    p.add_argument("--note", default="", help="why (stored with the label)")
    p.add_argument("--edited-from", type=int, default=None, metavar="LABEL_ID",
                   help="the label this one edits (default with --set: the label of the current "
                        "ground truth)")

    p = group.add("export", cmd_export, "Write every label (or some kinds') as JSONL or CSV, "
                  "oldest first.", json_flag=False, reads=True)
    p.add_argument("--out", type=Path, required=True,
                   help="output file (.jsonl or .csv); " + OUT_RULES)
    kind_option(p, "only labels of this kind")

    group.add("stats", cmd_stats, "Label counts per source, curator conflicts, and how sources "
              "and curators agree (tool selection, cosine, filter names; Krippendorff's alpha "
              "and Fleiss' kappa across curators).", reads=True)

    p = group.add("commit", cmd_commit, "A new dataset version on the current one where each "
                  "intent's ground truth is the label that wins the precedence; every row "
                  "records its label; old versions never change.")
    p.add_argument("--precedence", default=",".join(labels.DEFAULT_PRECEDENCE),
                   help="levels, first wins: kinds (curator, teacher, student, curation) or "
                        "sources (teacher:MODEL); curation is the current version's row "
                        "(default: %(default)s; add teacher to take teacher relabels)")
    p.add_argument("--add-new-intents", action="store_true",
                   help="add labelled intents that are not in the current version to its "
                        "training split (never to test)")
    p.add_argument("--note", default="", help="a note for the new version")
    by_option(p, "who commits (stored in the version's config)")
