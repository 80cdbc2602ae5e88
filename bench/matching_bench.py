"""Matching benchmark: the engine against simpler ways of matching, side by side.

For each scale (synthetic editions from bench/generate.py) it measures
  * the engine as a whole process, `estafette match solve` (wall time, peak RSS,
    placements, share of first choices, rank distribution);
  * a greedy first-come-first-served baseline (sign-up order, first choice with room);
  * the `matching` library's hospital–residents solver (stable, resident-optimal) in a
    subprocess with a time limit; it knows neither max_per_org nor second visits;
  * the straightforward baseline, bench/reference.py as a whole process (plain Python
    graph with every layer, rank² only): its time gives the speed-up, and its optimum is
    the independent optimality check of the engine's placements and sum of rank².

    python bench/matching_bench.py --scales region,national[,stress]

Instances and results are kept in bench/out/ (ignored by git).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` and `services` importable

import orjson  # noqa: E402

from bench.generate import SCALES, generate  # noqa: E402

OUT = ROOT / "bench" / "out"
ESTAFETTE = Path(sys.executable).with_name("estafette")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="region,national", help="comma-separated: " + ",".join(SCALES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="engine runs per scale below stress (best is shown)")
    parser.add_argument("--hr-timeout", type=float, default=60.0, help="seconds for the hospital-residents solver")
    parser.add_argument("--hr-run", type=Path, help=argparse.SUPPRESS)  # internal: run HR on one instance
    args = parser.parse_args()
    if args.hr_run:
        # The library deep-copies its players recursively: give it a deep stack.
        sys.setrecursionlimit(1_000_000)
        threading.stack_size(1 << 30)
        doc = orjson.loads(args.hr_run.read_bytes())
        answer = {}
        worker = threading.Thread(target=lambda: answer.update(hospital_residents(doc)))
        worker.start()
        worker.join()
        if not answer:
            sys.exit("hospital-residents solver failed")
        print(orjson.dumps(answer).decode())
        return

    OUT.mkdir(parents=True, exist_ok=True)
    columns = {}
    for name in args.scales.split(","):
        scale = SCALES[name.strip()]
        print(f"[{scale.name}] preparing …", file=sys.stderr, flush=True)
        columns[scale.name] = run_scale(scale, args)
    print_table(columns)


def run_scale(scale, args) -> dict[str, str]:
    path = OUT / f"{scale.name}-s{args.seed}.json"
    if not path.exists():
        path.write_bytes(orjson.dumps(generate(scale.participants, scale.offers, args.seed)))
    doc = orjson.loads(path.read_bytes())
    row: dict[str, str] = {"participants × offers": f"{scale.participants:,} × {scale.offers:,}"}
    ranks_cap = max(len(p["choices"]) for p in doc["participants"])

    # Engine, whole process; best of `repeat` runs (the machine is shared).
    repeat = 1 if scale.name == "stress" else args.repeat
    result_path = OUT / f"{scale.name}-s{args.seed}.result.json"
    print(f"[{scale.name}] engine …", file=sys.stderr, flush=True)
    runs = [run_process([str(ESTAFETTE), "match", "solve", str(path), "--out", str(result_path)]) for _ in range(repeat)]
    wall, rss, _ = min(runs)
    result = orjson.loads(result_path.read_bytes())
    engine_ranks = [a["rank"] for a in result["assignments"]]
    row["engine wall (s)"] = f"{wall:.2f}" + (f" (runs: {', '.join(f'{r[0]:.2f}' for r in runs)})" if repeat > 1 else "")
    row["engine peak RSS (MiB)"] = f"{rss / 1024:.0f}"
    row["engine placements"] = f"{result['objective']['assigned']:,}"
    row["engine sum of rank²"] = f"{result['objective']['rank_cost']:,}"
    row["engine first choices"] = share(engine_ranks, 1)
    row["engine ranks 1..n"] = distribution(engine_ranks, ranks_cap)

    print(f"[{scale.name}] greedy …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    greedy_ranks = greedy(doc)
    row["greedy FCFS time (s, in-process)"] = f"{time.perf_counter() - started:.2f}"
    row["greedy placements"] = f"{len(greedy_ranks):,}"
    row["greedy first choices"] = share(greedy_ranks, 1)
    row["greedy ranks 1..n"] = distribution(greedy_ranks, ranks_cap)
    row["engine / greedy placements"] = f"{len(engine_ranks) / max(len(greedy_ranks), 1):.3f}"

    print(f"[{scale.name}] hospital-residents (limit {args.hr_timeout:.0f} s) …", file=sys.stderr, flush=True)
    try:
        hr_wall, _, out = run_process([sys.executable, __file__, "--hr-run", str(path)], timeout=args.hr_timeout)
        hr = orjson.loads(out)
        row["HR solver"] = (
            f"{hr['placed']:,} placed, first {share(hr['ranks'], 1)}, {hr_wall:.1f} s "
            f"(no org caps, one visit each)"
        )
    except subprocess.TimeoutExpired:
        row["HR solver"] = f"did not finish in {args.hr_timeout:.0f} s"

    print(f"[{scale.name}] straightforward baseline / reference optimum …", file=sys.stderr, flush=True)
    ref_wall, ref_rss, out = run_process([sys.executable, "-m", "bench.reference", str(path)])
    ref = orjson.loads(out)
    row["baseline wall (s) / peak RSS (MiB)"] = f"{ref_wall:.2f} / {ref_rss / 1024:.0f}"
    row["speed-up engine vs baseline"] = f"{ref_wall / wall:.1f}×"
    same = (ref["assigned"], ref["rank_cost"]) == (result["objective"]["assigned"], result["objective"]["rank_cost"])
    row["optimality check"] = (
        f"{'OK' if same else 'MISMATCH'}: reference {ref['assigned']:,} placed, rank² {ref['rank_cost']:,}"
    )
    return row


def run_process(command: list[str], timeout: float | None = None) -> tuple[float, int, bytes]:
    """(wall seconds, peak RSS in KiB, stdout) of one child process, reaped with os.wait4 so
    the peak RSS is this child's own; raises TimeoutExpired, or RuntimeError on failure."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                child.kill()
                child.wait()
                raise subprocess.TimeoutExpired(command, timeout)
            time.sleep(0.005)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}): {err.read().decode()[-2000:]}")
        return wall, usage.ru_maxrss, out.read()


def signup_order(doc: dict) -> list[dict]:
    return sorted(doc["participants"], key=lambda p: (dt.datetime.fromisoformat(p["signed_up_at"]), p["id"]))


def greedy(doc: dict) -> list[int]:
    """First come, first served: in sign-up order, each participant takes their best choice
    with room (and, for more visits, further choices on other days). Returns the ranks."""
    offers = {o["id"]: o for o in doc["offers"]}
    seats = {oid: o["capacity"] for oid, o in offers.items()}
    org_load: Counter = Counter()
    ranks = []
    for p in signup_order(doc):
        days = set()
        for rank, oid in enumerate(p["choices"], start=1):
            o = offers[oid]
            if len(days) == p.get("max_visits", 1):
                break
            cap = o.get("max_per_org")
            if (
                seats[oid] > 0 and o["host"] != p["org"] and o["date"] not in days
                and o["date"] in p.get("available", [o["date"]])
                and (cap is None or org_load[oid, p["org"]] < cap)
            ):
                seats[oid] -= 1
                org_load[oid, p["org"]] += 1
                days.add(o["date"])
                ranks.append(rank)
    return ranks


def hospital_residents(doc: dict) -> dict:
    """Resident-optimal stable matching of the `matching` library; offers rank participants
    by sign-up. Own-organisation and unavailable choices are dropped beforehand."""
    from matching.games import HospitalResident

    offers = {o["id"]: o for o in doc["offers"]}
    resident_prefs, hospital_prefs = {}, {o: [] for o in offers}
    for p in signup_order(doc):
        feasible = [
            c for c in p["choices"]
            if offers[c]["host"] != p["org"] and offers[c]["date"] in p.get("available", [offers[c]["date"]])
        ]
        if feasible:  # the library cannot take a resident without preferences
            resident_prefs[p["id"]] = feasible
        for c in feasible:
            hospital_prefs[c].append(p["id"])
    hospital_prefs = {o: prefs for o, prefs in hospital_prefs.items() if prefs}
    capacities = {o: offers[o]["capacity"] for o in hospital_prefs}
    game = HospitalResident.create_from_dictionaries(resident_prefs, hospital_prefs, capacities)
    rank_of = {(p["id"], c): k for p in doc["participants"] for k, c in enumerate(p["choices"], start=1)}
    ranks = [rank_of[r.name, h.name] for h, residents in game.solve(optimal="resident").items() for r in residents]
    return {"placed": len(ranks), "ranks": ranks}


def share(ranks: list[int], rank: int) -> str:
    return f"{100 * sum(1 for r in ranks if r == rank) / max(len(ranks), 1):.1f}%"


def distribution(ranks: list[int], up_to: int) -> str:
    counts = Counter(ranks)
    return " / ".join(f"{counts[r]:,}" for r in range(1, up_to + 1))


def print_table(columns: dict[str, dict[str, str]]) -> None:
    names = list(columns)
    labels = list(next(iter(columns.values())))
    width = max(map(len, labels)) + 2
    widths = [max(len(n), *(len(columns[n][label]) for label in labels)) + 2 for n in names]
    print("".ljust(width) + "".join(n.ljust(w) for n, w in zip(names, widths)))
    for label in labels:
        print(label.ljust(width) + "".join(columns[n][label].ljust(w) for n, w in zip(names, widths)))


if __name__ == "__main__":
    main()
