"""The `workbench` command: argument parsing and printing only; the work is in pipelines/."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.outputs import check_output_file, check_output_folder, write_text_atomic
from workbench.store import Store, default_db_path
from workbench.terminal import printable

# Exit codes: 2 a user-facing error (one line), 70 an internal error (a bug: the traceback goes
# to a file), 130 interrupted, 141 the reader of our output went away (`| head`).
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70


def _test_size(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of intents or a fraction, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


class _Progress:
    """A tqdm bar per stage, on stderr, only when stderr is a terminal or forced."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None or done < bar.n or bar.total != total:  # a new round of the same stage
            if bar is not None:
                bar.close()
            bar = self.bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _print_ingest(result: Any) -> None:
    if result.leftovers_note:
        print(result.leftovers_note)
    for f in result.files:
        status = f"error: {printable(f.error)}" if f.error else "ok"
        print(f"{printable(f.source_file)}: read {f.read}, ingested {f.ingested}, duplicates {f.duplicates}, "
              f"quarantined {f.quarantined} ({status})")
    if len(result.files) > 1:
        t = result.totals
        print(f"total: read {t['read']}, ingested {t['ingested']}, duplicates {t['duplicates']}, "
              f"quarantined {t['quarantined']}")
    if any(f.quarantined for f in result.files):
        print("See the quarantined records and their reasons with `workbench quarantine`.")


def cmd_ingest(args: argparse.Namespace, store: Store) -> int:
    from pipelines import ingest

    progress = _Progress(args.progress)
    result = ingest.run(ingest.IngestConfig(tuple(args.files)), store, progress)
    progress.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_ingest(result)
    return 1 if result.failed else 0


def cmd_curate(args: argparse.Namespace, store: Store) -> int:
    from pipelines import curate

    result = curate.run(curate.CurateConfig(test_size=args.test_size, seed=args.seed,
                                            note=args.note or ""), store)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"dataset version {result.version_id} (now current): {result.intents} intents, "
          f"train {result.train}, test {result.test} (r_3 {result.test_r_3}, r_5 {result.test_r_5})")
    print(f"from {result.requests} requests; dropped {result.requests_dropped} with zero exports "
          f"({result.intents_dropped} intents had only those)")
    return 0


def cmd_demo(args: argparse.Namespace, store: Store) -> int:
    from pipelines import demo

    if args.if_missing and store.exists:
        print(f"{store.path} already exists; leaving it as it is (use --replace to rebuild).")
        return cmd_status(argparse.Namespace(json=False), store)
    progress = _Progress(args.progress)
    print(f"Building the SYNTHETIC demo corpus ({args.requests} requests) into {store.path}",
          file=sys.stderr)
    result = demo.run(demo.DemoRunConfig(requests=args.requests, seed=args.seed,
                                         test_size=args.test_size, replace=args.replace),
                      store, progress)
    progress.close()
    c = result.curate
    print(f"Synthetic demo logs: {result.corpus_path}")
    print(f"Database: {store.path}")
    print(f"Ingested {result.ingest.ingested} requests; dataset version {c.version_id}: "
          f"{c.intents} intents, train {c.train}, test {c.test} "
          f"(r_3 {c.test_r_3}, r_5 {c.test_r_5}).")
    db_flag = "" if store.path == default_db_path() else f" --db {store.path}"
    steps = [(f"workbench app{db_flag}", "browse it in the browser"),
             (f"workbench train{db_flag} --student heads", "train the real-time student"),
             (f"workbench experiment rq1{db_flag}", "every student, the paper's RQ1 table")]
    width = max(len(command) for command, _ in steps)
    print("Next:")
    for command, why in steps:  # padded, so the comments line up with or without --db
        print(f"  {command.ljust(width)}  # {why}")
    return 0


def cmd_status(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.status import status_counts

    counts = status_counts(store)
    if args.json:
        print(json.dumps(counts, indent=2, default=str))
        return 0
    print(f"database      {printable(counts['database'])}")
    for key in ("requests", "intents", "quarantined", "ingests", "dataset_versions"):
        print(f"{key.replace('_', ' '):<13} {counts[key]}")
    version = counts["current_version"]
    if version is None:
        print("current version: none yet (run `workbench curate`)")
    else:
        print(f"current version {version['version_id']} ({printable(version['created_by'])}, "
              f"{version['created_at'][:19]}): train {version['n_train']}, test {version['n_test']} "
              f"(r_3 {version['test_r_3']}, r_5 {version['test_r_5']})")
        print(f"  note: {printable(version['note'])}")
    return 0


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    from pipelines import export
    from workbench.store.versions import Split

    result = export.run(export.ExportConfig(out=args.out, version=args.version,
                                            split=Split(args.split)), store)
    print(f"wrote {result.rows} rows of dataset version {result.version_id} "
          f"({result.split}) to {result.out}")
    return 0


def cmd_versions(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.versions import current_version_id, list_versions

    with store.session(read_only=True) as session:
        versions, current = list_versions(session), current_version_id(session)
    if args.json:
        print(json.dumps(versions, indent=2, default=str))
        return 0
    if not versions:
        print("no dataset versions yet (run `workbench curate`)")
    for v in versions:
        mark = "*" if v["version_id"] == current else " "
        parent = v["parent_id"] if v["parent_id"] is not None else "-"
        print(f"{mark} {v['version_id']:>3}  parent {parent:>3}  {printable(v['created_by']):<12} "
              f"{str(v['created_at'])[:19]}  train {v['n_train']:>6}  test {v['n_test']:>5}  "
              f"{printable(v['note'])}")
    return 0


def cmd_quarantine(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.requests import quarantine_page

    with store.session(read_only=True) as session:
        rows = quarantine_page(session, limit=args.limit, offset=args.offset)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no quarantined records")
    for row in rows:
        raw = row["raw"] if row["raw"] is None or len(row["raw"]) <= 120 else row["raw"][:117] + "..."
        print(f"#{row['quarantine_id']} {printable(row['source_file'])} "
              f"{printable(row['location'])}: {printable(row['reason'])}")
        print(f"    raw: {printable(raw)}")
    return 0


def _write_or_print(text: str, out: Path | None) -> None:
    """Print `text` (escaped for the terminal), or write it to `out` atomically."""
    if out is None:
        print(printable(text, newlines=True))
        return
    write_text_atomic(out, text + "\n")
    print(f"wrote {printable(out)}", file=sys.stderr)


def _table_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = args.out.suffix.lower() if args.out else ""
    return {".md": "markdown", ".csv": "csv"}.get(suffix, "text")


def cmd_evaluate(args: argparse.Namespace, store: Store) -> int:
    from pipelines import evaluate
    from workbench.report import render

    if args.predictions is not None:
        result = evaluate.run(evaluate.EvaluateConfig(predictions=args.predictions,
                                                      version=args.version), store)
    else:
        result = evaluate.evaluate_run(args.run or None, args.version, store)
    if args.json:
        _write_or_print(json.dumps(result.to_dict(), indent=2), args.out)
        return 0
    title = (f"Evaluation {result.evaluation_id}: {result.source} on dataset version "
             f"{result.version_id}, test split")
    _write_or_print(render(result.subsets, _table_format(args), title), args.out)
    return 0


def _settings(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise WorkbenchError(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[key.strip()] = value
    return settings


def cmd_train(args: argparse.Namespace, store: Store) -> int:
    from pipelines import train

    progress = _Progress(args.progress)
    result = train.run(train.TrainConfig(student=args.student, version=args.version,
                                         student_config=_settings(args.set), note=args.note),
                       store, progress)
    progress.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"run {result.run_id}: {result.student} trained on {result.n_train} intents of "
          f"dataset version {result.version_id} in {result.duration_s:.1f} s")
    print(f"  model: {result.artifact_path}")
    print(f"Next: workbench evaluate --run {result.run_id}")
    return 0


def cmd_predict(args: argparse.Namespace, store: Store) -> int:
    from pipelines import predict

    result = predict.run(predict.PredictConfig(inp=args.inp, out=args.out, run=args.run), store)
    print(f"wrote {result.predictions} predictions of run {result.run_id} to {result.out}")
    return 0


def cmd_runs(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.runs import list_runs

    runs = list_runs(store)
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
        return 0
    if not runs:
        print("no training runs yet (run `workbench train --student heads`)")
    for r in runs:
        note = f"  {printable(r['note'])}" if r.get("note") else ""
        print(f"{r['run_id']}  {r['student']:<9} version {r['version_id']:>3}  "
              f"train {r['n_train']:>6}  {r['duration_s']:>8.1f} s  {r['device']}  "
              f"{r['size_bytes'] / 2**20:.1f} MiB{note}")
    return 0


def cmd_experiment(args: argparse.Namespace, store: Store) -> int:
    from pipelines import experiments

    progress = _Progress(args.progress)
    try:
        if args.name == "rq2":
            return _print_rq2(args, experiments.rq2(experiments.RQ2Config(
                version=args.version, student=args.student, fraction=args.fraction,
                seed=args.seed, n=args.n, threshold=args.threshold,
                paraphraser=experiments.augment.ParaphraserChoice(args.paraphraser),
                control=args.control),
                store, progress))
        result = experiments.rq1(experiments.RQ1Config(
            version=args.version, students=tuple(args.students)), store, progress)
    finally:
        progress.close()
    return _print_rq1(args, result)


def _print_rq1(args: argparse.Namespace, result: Any) -> int:
    from workbench.report import rq1_comparison

    if args.json:
        _write_or_print(json.dumps(result.to_dict(), indent=2), args.out)
        return 0
    version = result.rows[0].evaluation.version_id
    ids = ", ".join(str(r.evaluation.evaluation_id) for r in result.rows)
    lines = [f"RQ1 on dataset version {version}, test split (evaluations {ids})"]
    lines += [f"  {r.label}: run {r.run.run_id}, trained in {r.run.duration_s:.0f} s"
              for r in result.rows if r.run is not None]
    lines.append("")
    lines.append(rq1_comparison([(r.label, r.evaluation.subsets) for r in result.rows],
                                _table_format(args)))
    _write_or_print("\n".join(lines), args.out)
    return 0


def _print_rq2(args: argparse.Namespace, result: Any) -> int:
    from workbench.report import rq2_table

    if args.json:
        _write_or_print(json.dumps(result.to_dict(), indent=2, default=str), args.out)
        return 0
    aug = result.augmentation
    lines = [(f"RQ2 with the {args.student} student, test split of dataset version "
             f"{result.rows[0].evaluation.version_id} ({result.seconds / 60:.1f} min)"), ""]
    sources = None
    if len(result.rows) > 3:  # the random control: say which intents each round augmented
        sources = ["-", "-", "flagged by mining", "random (control)"]
    lines.append(rq2_table([(row.train_percent, row.augmentations, row.train_size, row.overall)
                            for row in result.rows], _table_format(args), sources))
    dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(aug.dropped.items())) or "none"
    lines += ["", (f"Augmentation round {aug.augmentation_id} ({aug.paraphraser}): mining flagged "
                  f"{aug.n_flagged} of {result.rows[1].train_size} training intents; "
                  f"{aug.n_generated} candidates generated, {aug.n_kept} kept, dropped: "
                  f"{dropped}; paraphraser failures {aug.n_failed}."),
              "Runs: " + ", ".join(f"{row.label}: {row.run.run_id} (evaluation "
                                   f"{row.evaluation.evaluation_id})" for row in result.rows)]
    _write_or_print("\n".join(lines), args.out)
    return 0


def cmd_augment(args: argparse.Namespace, store: Store) -> int:
    from pipelines import augment

    progress = _Progress(args.progress)
    try:
        result = augment.run(augment.AugmentConfig(
            run_id=args.run, sources=tuple(args.intent), n=args.n, threshold=args.threshold,
            paraphraser=augment.ParaphraserChoice(args.paraphraser), limit=args.limit,
            auto_approve=args.auto_approve, seed=args.seed, version=args.version),
            store, progress)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    if result.run_id is not None:
        tools = ", ".join(f"{tool} {n}" for tool, n in sorted(result.flagged_by_tool.items()))
        print(f"mined run {result.run_id} on its training split (evaluation "
              f"{result.mining_evaluation_id}): {result.n_flagged} intents flagged ({tools})")
    dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(result.dropped.items())) or "none"
    print(f"augmentation {result.augmentation_id} ({result.paraphraser}): {result.n_sources} "
          f"source intents, {result.n_generated} candidates, {result.n_kept} kept, dropped: "
          f"{dropped}, paraphraser failures: {result.n_failed}")
    if result.n_failed:
        print(f"the paraphraser failed on {result.n_failed} of {result.n_sources} source intents "
              f"(the first: {result.first_failure}); rerun to retry them (replies that came "
              "back are cached)")
    if result.committed_version_id is not None:
        print(f"auto-approved and committed as dataset version {result.committed_version_id}")
    else:
        print(f"Next: workbench review list --augmentation {result.augmentation_id}")
    return 0


def _review_filter(args: argparse.Namespace, status: str | None) -> Any:
    from pipelines import review

    return review.ReviewFilter(augmentation_id=args.augmentation,
                               status=None if status in (None, "all") else review.Status(status),
                               candidate_ids=tuple(getattr(args, "ids", None) or ()))


def cmd_review(args: argparse.Namespace, store: Store) -> int:
    from pipelines import review

    if args.action == "list":
        selection = _review_filter(args, args.status)
        rows = review.list_candidates(store, selection, args.limit, args.offset)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
            return 0
        counts = review.count_candidates(store, selection)
        print(", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or
              "no candidates (run `workbench augment` first)")
        for row in rows:
            near = "" if row["nearest_similarity"] is None else \
                f"  nearest ({row['nearest_kind']}, {row['nearest_similarity']:.2f}): " \
                f"{row['nearest_text']!r}"
            reason = f" [{row['drop_reason']}]" if row["drop_reason"] else ""
            print(f"{row['candidate_id']:>7}  {row['status']:<8}{reason}  {row['intent_text']!r}"
                  f"  <- {row['source_text']!r}{near}")
        return 0
    if args.action == "commit":
        result = review.commit(store, args.augmentation, by=args.by, note=args.note or "",
                               rebase=args.rebase)
        print("\n".join(review.describe_commit(result)))
        return 0
    if not args.ids and not args.all_pending:
        raise WorkbenchError("name candidate ids, or --all-pending (with --augmentation to limit "
                             "it to one round)")
    if args.ids and args.all_pending:
        raise WorkbenchError("give candidate ids or --all-pending, not both")
    status = review.Status.APPROVED if args.action == "approve" else review.Status.REJECTED
    selection = _review_filter(args, "pending" if args.all_pending else None)
    changed = review.set_status(store, selection, status, by=args.by)
    print(f"{status.value} {changed} candidate(s)")
    if status is review.Status.APPROVED:
        print("Next: workbench review commit" + (f" --augmentation {args.augmentation}"
                                                   if args.augmentation else ""))
    return 0


def cmd_render(args: argparse.Namespace, store: Store) -> int:
    from pipelines import render

    result = render.render_intent(render.RenderConfig(
        intent=args.intent, image=args.image, out=args.out, run=args.run, compare=args.compare,
        version=args.version, max_side=args.max_side), store)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    what = "comparison (original / teacher / student)" if args.compare else \
        (f"run {result.run_id}'s prediction" if args.run is not None else
         f"the teacher's ground truth (dataset version {result.version_id})")
    print(f"wrote {result.out}: {args.intent!r} on {args.image}, {what}")
    return 0


def cmd_gallery(args: argparse.Namespace, store: Store) -> int:
    from pipelines import render

    config = render.GalleryConfig(out=args.out, run=args.run, image=args.image,
                                  version=args.version)
    if args.intent:
        config = render.GalleryConfig(out=args.out, intents=tuple(args.intent), run=args.run,
                                      image=args.image, version=args.version)
    result = render.gallery(config, store)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"wrote {result.out}: {len(config.intents)} intents, teacher (version "
          f"{result.version_id}) vs student (run {result.run_id})")
    return 0


def cmd_app(args: argparse.Namespace, store: Store) -> int:
    import signal
    import subprocess
    import time

    from workbench.package_files import streamlit_flags

    # The app's path, not an import of it: importing the pages here (outside Streamlit's
    # runtime) would only print cache warnings before the server starts.
    main_script = Path(__file__).resolve().parent / "app" / "main.py"
    environment = {**os.environ, "WORKBENCH_DB": str(store.path.resolve())}
    # The app's .streamlit settings as flags: Streamlit reads .streamlit/ only in the current
    # folder, and `workbench app` runs from anywhere.
    command = [sys.executable, "-m", "streamlit", "run", str(main_script), *streamlit_flags(),
               "--server.port", str(args.port), "--server.address", args.address]
    print(f"the workbench app on {printable(store.path)} at http://{args.address}:{args.port} "
          "(Ctrl+C stops it)", flush=True)
    child = subprocess.Popen(command, env=environment)
    stop_requested: list[float] = []

    def forward(signum: int, frame: object) -> None:
        # Stopping us stops the server: it is our child, and nothing else would stop it.
        stop_requested.append(time.monotonic())
        if child.poll() is None:
            child.send_signal(signum)

    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        while child.poll() is None:
            if stop_requested and time.monotonic() - stop_requested[0] > APP_STOP_GRACE_S:
                child.kill()   # it did not stop when asked
            try:
                child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:   # we are leaving on an exception: never leave it serving
            child.kill()
            child.wait()
    code = child.returncode
    return 128 - code if code < 0 else code   # killed by signal N: exit 128 + N, as a shell does


def cmd_reality_check(args: argparse.Namespace, store: Store) -> int:
    from pipelines import reality_check as rc

    if args.action == "list":
        checks = rc.list_checks(store)
        if args.json:
            print(json.dumps(checks, indent=2, default=str))
        elif not checks:
            print("no reality checks yet (workbench reality-check create --run RUN)")
        for check in checks:
            print(f"{check['check_id']:>4}  run {check['run_id']}  version {check['version_id']}  "
                  f"{check['n_samples']} samples  {check['n_annotators']} annotator(s)  "
                  f"{check['n_answers']} answers")
        return 0
    if args.action == "create":
        result = rc.create_check(store, args.run, n=args.n, seed=args.seed, image=args.image,
                                 version=args.version, note=args.note or "")
        paths = rc.render_check(store, result.check_id, rc.default_render_dir(store,
                                                                              result.check_id))
        if args.json:
            print(json.dumps({**result.to_dict(), "images": [str(p) for p in paths]}, indent=2))
            return 0
        print(f"reality check {result.check_id}: {result.n_samples} test intents of run "
              f"{result.run_id} (version {result.version_id}), stratified by quality and "
              f"popularity; images in {paths[-1].parent}")
        print(f"Next: workbench reality-check annotate {result.check_id} --annotator NAME")
        return 0
    if args.check is None:
        raise WorkbenchError(f"reality-check {args.action} needs a check id "
                             "(see `workbench reality-check list`)")
    if args.action == "render":
        out = args.out or rc.default_render_dir(store, args.check)
        paths = rc.render_check(store, args.check, out, image=args.image_override)
        print(f"wrote {len(paths)} images to {printable(out)}")
        return 0
    if args.action == "annotate":
        if not args.annotator:
            raise WorkbenchError("say who is annotating: --annotator NAME")
        if args.answers is not None:
            n = rc.record_answers(store, args.check, args.annotator,
                                  rc.read_answers_file(args.answers))
            print(f"recorded {n} answers of {args.annotator} for reality check {args.check}")
            return 0
        session = rc.annotate_interactively(
            store, args.check, args.annotator, input,
            lambda text: print(printable(text, newlines=True)))
        print(f"answered {session.answered}, skipped {session.skipped}, "
              f"{session.remaining} left" + (" (quit)" if session.quit else ""))
        return 0
    summary = rc.report(store, args.check)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        print(printable(rc.format_report(summary), newlines=True))
    return 0


def cmd_jobs(args: argparse.Namespace, store: Store) -> int:
    from workbench.app import jobs

    if args.action == "list":
        listed = jobs.list_jobs(store.path)
        if args.json:
            print(json.dumps([{"id": j.id, "kind": j.kind.value, "status": j.status.value,
                               "created_at": j.created_at, "error": j.error,
                               "result": j.result} for j in listed], indent=2, default=str))
            return 0
        if not listed:
            print("no jobs yet (the app's Runs page starts them)")
        for job in listed:
            took = "" if job.duration_s is None else f"{job.duration_s:8.1f} s"
            print(f"{job.id}  {job.kind.value:<15} {job.status.value:<10} {took}  "
                  f"{printable(job.error or '')}")
        return 0
    if args.job is None:
        raise WorkbenchError(f"jobs {args.action} needs a job id (see `workbench jobs list`)")
    job = jobs.load_job(store.path, args.job)
    if args.action == "cancel":
        job = jobs.cancel(job)
        print(f"job {job.id}: {job.status.value}")
        return 0
    print(f"job {job.id}: {job.kind.value}, {job.status.value}")
    for stage, event in job.progress().items():
        print(f"  {stage}: {event.done} / {event.total if event.total is not None else '?'}")
    print(printable(job.log_tail(4000), newlines=True))
    return 0


def cmd_baselines(args: argparse.Namespace, store: Store) -> int:
    from pipelines import evaluate
    from workbench.report import render

    result = evaluate.baselines(args.version, store)
    if args.json:
        _write_or_print(json.dumps({
            "self_consistency": result.self_consistency.to_dict(),
            "constant": {**result.constant.to_dict(),
                         "answer": result.constant_answer.to_dict()}}, indent=2), args.out)
        return 0
    fmt = _table_format(args)
    ceiling, floor = result.self_consistency, result.constant
    parts = [
        render(ceiling.subsets, fmt, f"Ceiling: teacher self-consistency (evaluation "
               f"{ceiling.evaluation_id}, version {ceiling.version_id} test split; "
               f"{ceiling.n_samples} non-chosen teacher outputs scored against the ground "
               "truth; n counts their intents)", details=args.details),
        render(floor.subsets, fmt, f"Floor: constant predictor (evaluation "
               f"{floor.evaluation_id}; every intent gets the training split's mean answer: "
               "each tool, mean sliders, most common filter)", details=args.details),
    ]
    _write_or_print("\n\n".join(parts), args.out)
    return 0


OUT_RULES = ("written whole or not at all; missing folders are created; never over the "
             "database, another DuckDB file or the workbench's runs/ and jobs/ folders")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="The distillation workbench: curate teacher-LLM tool-call logs and distil "
                    "them into small student models.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, default=None,
                        help="DuckDB file (default: $WORKBENCH_DB, else data/workbench.duckdb)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace, Store], int], text: str,
            json_flag: bool = True) -> argparse.ArgumentParser:
        # `help` is %-formatted by argparse, `description` is not: one text, two spellings of %.
        command = sub.add_parser(name, parents=[common], help=text,
                                 description=text.replace("%%", "%"))
        if json_flag:
            command.add_argument("--json", action="store_true", help="print JSON instead of text")
        command.set_defaults(handler=handler)
        return command

    progress_help = "show progress bars (default: when stderr is a terminal)"
    p = add("demo", cmd_demo, "Generate the SYNTHETIC demo corpus, ingest, curate and split it.",
            json_flag=False)
    p.add_argument("--requests", type=_positive_int, default=27_756,
                   help="number of requests (default: the paper's 27,756; intents scale with it)")
    p.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    p.add_argument("--test-size", type=_test_size, default=None,
                   help="test intents: a count, or a fraction below 1 (default: 1000 at the "
                        "paper's scale and above; below it the paper's share, 10.8%%)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--replace", action="store_true",
                          help="delete an existing database first")
    existing.add_argument("--if-missing", action="store_true",
                          help="do nothing if the database already exists")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(), help=progress_help)

    p = add("ingest", cmd_ingest, "Ingest log files (JSONL, CSV or Parquet) into the database.")
    p.add_argument("files", nargs="+", type=Path, help="log files, in the log contract (SPEC 3)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(), help=progress_help)

    p = add("curate", cmd_curate, "Curate the logs into a new dataset version with a train/test "
            "split by intent.")
    p.add_argument("--test-size", type=_test_size, default=1000,
                   help="test intents: a count, or a fraction below 1 (default: 1000)")
    p.add_argument("--seed", type=int, default=13, help="split seed (default: 13)")
    p.add_argument("--note", help="a note stored with the version")

    add("status", cmd_status, "Show counts and the current dataset version.")
    add("versions", cmd_versions, "List dataset versions (* marks the current one).")

    p = add("export", cmd_export, "Write a dataset version's rows as JSONL or Parquet.",
            json_flag=False)
    p.add_argument("--out", type=Path, required=True,
                   help="output file (.jsonl or .parquet); " + OUT_RULES)
    p.add_argument("--version", type=int, default=None, help="dataset version (default: current)")
    p.add_argument("--split", choices=["train", "test", "all"], default="all",
                   help="which rows (default: all)")

    def augment_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--n", type=_positive_int, default=5,
                             help="candidates per flagged intent (default: 5)")
        command.add_argument("--threshold", type=float, default=0.9,
                             help="drop candidates at or above this cosine to a training or "
                                  "test intent or a kept candidate (default: 0.9)")
        command.add_argument("--paraphraser", choices=["auto", "offline", "llm"], default="auto",
                             help="auto: the LLM when one is configured, else offline")

    def table_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--version", type=int, default=None,
                             help="dataset version (default: current)")
        command.add_argument("--format", choices=["text", "markdown", "csv"], default=None,
                             help="table format (default: from --out's extension, else text)")
        command.add_argument("--out", type=Path, default=None,
                             help="write the table (or JSON) to this file; " + OUT_RULES)

    p = add("evaluate", cmd_evaluate, "Score predictions on a dataset version's test split "
            "(SPEC 5) and print the RQ1-style table.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path,
                        help="JSONL, one line per test intent: intent, adjust, selective_adjust, "
                             "filter")
    source.add_argument("--run", nargs="?", const="", metavar="RUN",
                        help="a training run id or prefix (no value: the latest run)")
    table_options(p)

    p = add("train", cmd_train, "Train a student on a dataset version's training split.")
    p.add_argument("--student", required=True, choices=["retrieval", "heads", "seq2seq"],
                   help="retrieval: nearest training intent; heads: MiniLM + small heads (fast); "
                        "seq2seq: a generative encoder-decoder (the paper's kind)")
    p.add_argument("--version", type=int, default=None, help="dataset version (default: current)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a student setting, e.g. --set epochs=30 (repeatable; JSON values)")
    p.add_argument("--note", default="", help="a note stored with the run")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(), help=progress_help)

    p = add("predict", cmd_predict, "Predict tool calls for intents with a trained student.",
            json_flag=False)
    p.add_argument("--run", default=None, help="run id or prefix (default: the latest run)")
    p.add_argument("--in", dest="inp", type=Path, required=True,
                   help="JSONL with an 'intent' per line")
    p.add_argument("--out", type=Path, required=True,
                   help="predictions JSONL to write; " + OUT_RULES)

    add("runs", cmd_runs, "List training runs.")

    p = add("experiment", cmd_experiment, "Run a paper experiment end to end: rq1 trains and "
            "evaluates every student beside the ceiling and the floor; rq2 trains on 100%% and "
            "12.5%% of the data, augments the low-data model once and retrains.")
    p.add_argument("name", choices=["rq1", "rq2"], help="which experiment")
    p.add_argument("--students", nargs="+", default=["retrieval", "heads", "seq2seq"],
                   choices=["retrieval", "heads", "seq2seq"], help="rq1: students to train")
    p.add_argument("--student", default="heads", choices=["retrieval", "heads", "seq2seq"],
                   help="rq2: the student (default: heads)")
    p.add_argument("--fraction", type=float, default=0.125,
                   help="rq2: share of the training split for the low-data runs (default 0.125)")
    p.add_argument("--seed", type=int, default=0, help="rq2: subsample and paraphraser seed")
    p.add_argument("--control", action="store_true",
                   help="rq2: also run the same round on as many random training intents")
    augment_options(p)
    table_options(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(), help=progress_help)

    p = add("augment", cmd_augment, "Mine a run's errors on its training split, paraphrase the "
            "flagged intents, deduplicate and queue the candidates for review.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--run", default=None,
                        help="the run whose errors to mine (default: the latest run)")
    source.add_argument("--intent", action="append", default=[], metavar="TEXT",
                        help="paraphrase this training intent instead of mining (repeatable)")
    p.add_argument("--version", type=int, default=None,
                   help="with --intent: the dataset version (default: current)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="at most this many source intents, most-flagged first")
    p.add_argument("--seed", type=int, default=0, help="offline paraphraser seed")
    p.add_argument("--auto-approve", action="store_true",
                   help="approve every kept candidate and commit a new dataset version")
    augment_options(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=sys.stderr.isatty(), help=progress_help)

    p = add("review", cmd_review, "The augmentation review queue: list, approve, reject, "
            "commit approvals into a new dataset version.")
    p.add_argument("action", choices=["list", "approve", "reject", "commit"])
    p.add_argument("ids", nargs="*", type=int, help="approve/reject: candidate ids")
    p.add_argument("--augmentation", type=int, default=None,
                   help="only this augmentation round")
    p.add_argument("--status", default="pending",
                   choices=["pending", "approved", "rejected", "dropped", "all"],
                   help="list: which candidates (default: pending)")
    p.add_argument("--all-pending", action="store_true",
                   help="approve/reject every pending candidate (of --augmentation)")
    p.add_argument("--by", default=os.environ.get("USER") or "curator",
                   help="reviewer name stored with the decision (default: $USER)")
    p.add_argument("--note", default=None, help="commit: a note for the new version")
    p.add_argument("--rebase", action=argparse.BooleanOptionalAction, default=True,
                   help="commit: when the round's version is no longer current, build on the "
                        "current version (default); --no-rebase stops instead")
    p.add_argument("--limit", type=_positive_int, default=50, help="list: rows (default 50)")
    p.add_argument("--offset", type=int, default=0, help="list: rows to skip")

    p = add("baselines", cmd_baselines, "The ceiling (teacher self-consistency) and the floor "
            "(constant predictor) on the test split.")
    table_options(p)
    p.add_argument("--details", action=argparse.BooleanOptionalAction, default=True,
                   help="also print the P/R detail tables (default: yes)")

    image_help = ("an image file, or a bundled sample: astronaut, coffee, chelsea, rocket "
                  "(default: astronaut)")
    p = add("render", cmd_render, "Render an intent's tool calls onto an image: the teacher's "
            "ground truth, a student's prediction (--run), or both side by side (--compare).")
    p.add_argument("intent", help="the intent text, e.g. \"golden hour\"")
    p.add_argument("--image", default="astronaut", help=image_help)
    p.add_argument("--out", type=Path, required=True, help="PNG to write; " + OUT_RULES)
    p.add_argument("--run", nargs="?", const="", default=None, metavar="RUN",
                   help="render this run's prediction (no value: the latest run); works for "
                        "intents the data has never seen")
    p.add_argument("--compare", action="store_true",
                   help="write an original / teacher / student strip (student: --run, else "
                        "the latest run)")
    p.add_argument("--version", type=int, default=None,
                   help="dataset version for the teacher's answer (default: current)")
    p.add_argument("--max-side", type=_positive_int, default=1024,
                   help="downscale the image so its longer side is at most this (default 1024)")

    p = add("gallery", cmd_gallery, "Write a contact sheet of several intents: original, "
            "teacher and student renders side by side.")
    p.add_argument("--out", type=Path, required=True, help="PNG to write; " + OUT_RULES)
    p.add_argument("--intent", action="append", default=[], metavar="TEXT",
                   help="an intent to show (repeatable; default: golden hour, black and white, "
                        "cool morning and a few other popular looks)")
    p.add_argument("--run", default=None, help="the student run (default: the latest run)")
    p.add_argument("--image", default="astronaut", help=image_help)
    p.add_argument("--version", type=int, default=None,
                   help="dataset version for the teacher's answers (default: current)")

    p = add("reality-check", cmd_reality_check, "The human reality check: sample test intents "
            "of a run, render teacher vs student, collect annotators' answers to the poster's "
            "two questions, and report relevance, mimicry and agreement.")
    p.add_argument("action", choices=["create", "render", "annotate", "report", "list"])
    p.add_argument("check", nargs="?", type=int, default=None,
                   help="render/annotate/report: the check id")
    p.add_argument("--run", default=None, help="create: the student run (default: the latest)")
    p.add_argument("--n", type=_positive_int, default=15,
                   help="create: samples (default: 15, as in the poster)")
    p.add_argument("--seed", type=int, default=0, help="create: sampling seed")
    p.add_argument("--image", default="astronaut", help="create: " + image_help)
    p.add_argument("--image-override", default=None, metavar="IMAGE",
                   help="render: use this image instead of the check's")
    p.add_argument("--version", type=int, default=None,
                   help="create: dataset version (default: the run's)")
    p.add_argument("--note", default=None, help="create: a note stored with the check")
    p.add_argument("--out", type=Path, default=None,
                   help="render: folder for the images (default: beside the database; "
                        "missing folders are created; not a file)")
    p.add_argument("--annotator", default=None, help="annotate: your name")
    p.add_argument("--answers", type=Path, default=None,
                   help="annotate: a CSV with columns sample,relevant,mimics (y/n) instead of "
                        "answering at the prompt")

    p = add("jobs", cmd_jobs, "Background jobs started from the app: list them, show one's "
            "progress and log, or cancel it.")
    p.add_argument("action", choices=["list", "show", "cancel"])
    p.add_argument("job", nargs="?", default=None, help="show/cancel: a job id or unique prefix")

    p = add("app", cmd_app, "Start the Streamlit workbench app on the database.",
            json_flag=False)
    p.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")

    p = add("quarantine", cmd_quarantine, "List quarantined records with their reasons.")
    p.add_argument("--limit", type=_positive_int, default=50, help="rows to show (default: 50)")
    p.add_argument("--offset", type=int, default=0, help="rows to skip")
    return parser


# Commands (or command actions) that only read the database: they open it read-only, so they
# work on a read-only file and beside other readers. Every other command writes, and is checked
# for write access before it starts its work.
READ_ONLY_COMMANDS = {"status", "versions", "quarantine", "runs", "export", "predict", "render",
                      "gallery", "jobs", "app"}
READ_ONLY_ACTIONS = {"review": {"list"}, "reality-check": {"list", "report"}}
CREATING_COMMANDS = {"demo", "ingest"}   # these make the database when it is missing
APP_STOP_GRACE_S = 10.0                  # how long `workbench app` waits for the server to stop


def _only_reads(args: argparse.Namespace) -> bool:
    return args.command in READ_ONLY_COMMANDS or \
        getattr(args, "action", None) in READ_ONLY_ACTIONS.get(args.command, set())


def _prepare(args: argparse.Namespace) -> Store:
    """The store for this command, after the checks that must pass before any work starts."""
    reads = _only_reads(args)
    store = Store.at(args.db, read_only=reads)
    if not reads and (store.exists or args.command in CREATING_COMMANDS) and \
            not (args.command == "demo" and args.if_missing and store.exists):
        store.check_writable()
    out = getattr(args, "out", None)
    if out is not None:
        if args.command == "reality-check":
            check_output_folder(out, store.path)
        else:
            check_output_file(out, store.path)
    return store


def _crash_report(error: BaseException) -> str:
    """Write the traceback of an unexpected error to a file in the temp folder; say where."""
    import tempfile
    import traceback
    from datetime import datetime

    folder = Path(tempfile.gettempdir()) / "workbench-errors"
    path = folder / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"workbench {' '.join(sys.argv[1:])}\n\n" + "".join(
            traceback.format_exception(type(error), error, error.__traceback__)),
            encoding="utf-8")
    except OSError as write_error:
        return f"the details could not be written ({write_error.strerror or write_error})"
    return f"details written to {path}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, _prepare(args))
    except WorkbenchError as error:
        print(f"error: {printable(error, newlines=True)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; the database is unchanged by the unfinished step", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped reading (`workbench quarantine | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # noqa: BLE001 (the last line of defence: no traceback on screen)
        print(f"internal error: {type(error).__name__}: {printable(error)}; "
              f"{_crash_report(error)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
