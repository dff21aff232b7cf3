"""``python -m bench [name ...]``: run benchmarks, print one line each, save bench/results/,
and rewrite the table in BENCHMARKS.md."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

from bench import (
    approvals,
    cluster,
    fleet,
    intake,
    lease,
    overhead,
    portal,
    quota,
    rollout,
    waiting,
)
from bench.harness import RESULTS, ROOT, Result, machine

BENCHMARKS: dict[str, Callable[[], Result]] = {
    "overhead": overhead.run,
    "quota": quota.run,
    "intake": intake.run,
    "portal": portal.run,
    "waiting": waiting.run,
    "rollout": rollout.run,
    "approvals": approvals.run,
    "cluster": cluster.run,
    "lease": lease.run,
    "fleet": fleet.run,
}
START, END = "<!-- results:start -->", "<!-- results:end -->"


def table() -> str:
    rows = [
        "| benchmark | result | goal | met | measured |",
        "|---|---|---|---|---|",
    ]
    for name in BENCHMARKS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            rows.append(f"| {name} | not run yet | | | |")
            continue
        r = json.loads(path.read_text())
        met = {True: "yes", False: "**no**", None: "n/a"}[r["met_goal"]]
        m = r["machine"]
        rows.append(
            f"| {name} | {r['summary'].split(': ', 1)[1]} | {r['goal']} | {met} | "
            f"{r['finished_at']}, {m['cores']} cores, {m['memory_gib']} GiB, data on "
            f"{m.get('data_filesystem', 'unknown')} |"
        )
    return "\n".join(rows)


def write_report() -> None:
    doc = ROOT / "BENCHMARKS.md"
    text = doc.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{START}\n{table()}\n{END}{tail}")


def main() -> None:
    names = [a for a in sys.argv[1:] if a] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    print(f"machine: {machine()}", flush=True)
    for name in names:
        started = time.monotonic()
        result = BENCHMARKS[name]()
        result.save()
        print(f"{result.summary}  [{time.monotonic() - started:.0f}s]", flush=True)
    write_report()
    print(table())


if __name__ == "__main__":
    main()
