"""`workbench jobs list | show | cancel`: the background jobs the app starts, from a terminal."""

from __future__ import annotations

import argparse

from workbench.app import jobs
from workbench.cli.output import emit
from workbench.cli.parsing import Commands
from workbench.store import Store
from workbench.terminal import printable


def cmd_list(args: argparse.Namespace, store: Store) -> int:
    listed = jobs.list_jobs(store.path)

    def lines() -> list[str]:
        if not listed:
            return ["no jobs yet (the app's Runs page starts them)"]
        found = []
        for job in listed:
            took = "" if job.duration_s is None else f"{job.duration_s:8.1f} s"
            found.append(f"{job.id}  {job.kind.value:<15} {job.status.value:<10} {took}  "
                         f"{printable(job.error or '')}")
        return found

    emit(args, [{"id": j.id, "kind": j.kind.value, "status": j.status.value,
                 "created_at": j.created_at, "error": j.error, "result": j.result}
                for j in listed], lines)
    return 0


def cmd_show(args: argparse.Namespace, store: Store) -> int:
    job = jobs.load_job(store.path, args.job)
    print(f"job {job.id}: {job.kind.value}, {job.status.value}")
    for stage, event in job.progress().items():
        print(f"  {stage}: {event.done} / {event.total if event.total is not None else '?'}")
    print(printable(job.log_tail(4000), newlines=True))
    return 0


def cmd_cancel(args: argparse.Namespace, store: Store) -> int:
    job = jobs.cancel(jobs.load_job(store.path, args.job))
    print(f"job {job.id}: {job.status.value}")
    return 0


def add_commands(commands: Commands) -> None:
    group = commands.group("jobs", "Background jobs started from the app: list them, show one's "
                           "progress and log, or cancel it.")
    group.add("list", cmd_list, "List the jobs, newest first, with their status.", reads=True)
    for name, handler, text in (("show", cmd_show, ("Show a job's progress and the end of its "
                                 "log.")),
                                ("cancel", cmd_cancel, ("Cancel a queued or running job (its "
                                 "whole process group)."))):
        p = group.add(name, handler, text, json_flag=False, reads=True)
        p.add_argument("job", help="a job id or unique prefix (see `workbench jobs list`)")
