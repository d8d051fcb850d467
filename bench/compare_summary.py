#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The bookkeeping half of compare.sh (the shell half runs the tools).
#
#   compare_summary.py record TOOL TARGET RW QD REP OUT.json RUSAGE.json "COMMAND" [RESIDENT]
#       normalizes one run (bioring-bench / uring-loop / asio-file-loop JSON, or fio's
#       --output-format=json) into one JSON line on stdout. cpu_ns_per_io is always the
#       bench-rusage figure (wait4 user+sys of the whole process tree / ios), the same
#       method for every tool; the tool's own in-run figure is kept as self_cpu_ns_per_io.
#       RESIDENT: the share of the file in the page cache before the run ("cached"), or null.
#   compare_summary.py summarize DIR
#       reads DIR/runs.jsonl, prints the table of medians and minimums (also DIR/table.txt)
#       and whether the issue-14 targets are met, writes DIR/results.json and
#       DIR/kiops_per_core.png (gnuplot).
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import gnuplot_run

# "bioring" is bioring-bench's loop mode in result folders made before per-io was measured.
NAMES = {"bioring-per-io": "bioring per-io", "bioring-loop": "bioring loop",
         "bioring": "bioring-bench", "fio": "fio io_uring", "uring": "uring-loop",
         "uring-plain": "uring-loop plain", "asio": "asio-file-loop",
         "base-per-io": "base per-io", "base-loop": "base loop"}
ORDER = ["bioring-per-io", "bioring-loop", "base-per-io", "base-loop", "bioring", "fio", "uring",
         "uring-plain", "asio"]
STYLE = {"bioring-per-io": "lc rgb '#d62728' pt 7", "bioring-loop": "lc rgb '#ff9896' pt 6 dt 2",
         "bioring": "lc rgb '#d62728' pt 7", "fio": "lc rgb '#9467bd' pt 5",
         "uring": "lc rgb '#2ca02c' pt 9", "uring-plain": "lc rgb '#8c564b' pt 13",
         "asio": "lc rgb '#1f77b4' pt 11", "base-per-io": "lc rgb '#7f7f7f' pt 7",
         "base-loop": "lc rgb '#c7c7c7' pt 6 dt 2"}
TARGET_NAMES = {"shm": "/dev/shm (tmpfs)", "disk": "ext4 work disk",
                "cached": "ext4 page-cached", "-": "NOP"}
TARGET_ORDER = {"shm": 0, "disk": 1, "cached": 2, "-": 3}


def load_json(path):
    text = Path(path).read_text()
    start = text.find("{")  # fio may print warnings before its JSON
    if start < 0:
        raise SystemExit(f"compare_summary: no JSON in {path}: {text[:200]!r}")
    return json.loads(text[start:])


def record(tool, target, rw, qd, rep, out_path, rusage_path, command, resident="null"):
    out = load_json(out_path)
    ru = load_json(rusage_path)
    cpu_s = ru["user_s"] + ru["sys_s"]
    if tool == "fio":
        job = out["jobs"][0]
        side = job["write"] if rw in ("randwrite", "write") else job["read"]
        ios = side["total_ios"]
        seconds = side["runtime"] / 1000.0
        pct = side.get("clat_ns", {}).get("percentile", {})
        p50 = pct.get("50.000000")
        p99 = pct.get("99.000000")
        self_cpu = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * job["job_runtime"] / 1000.0
        latency = "all" if pct else "none (--gtod_reduce=1)"
    else:
        ios = out["ios"]
        seconds = out["seconds"]
        lat = out.get("latency_ns")  # null under --latency off
        p50 = lat["p50"] if lat else None
        p99 = lat["p99"] if lat else None
        self_cpu = out["cpu_user_s"] + out["cpu_sys_s"]
        latency = out["config"].get("latency", "all")
    if ios <= 0 or seconds <= 0:
        raise SystemExit(f"compare_summary: {tool} reported no I/O ({out_path})")
    rec = {
        "tool": tool, "target": target, "rw": rw, "qd": int(qd), "rep": int(rep),
        "ios": ios, "seconds": seconds, "iops": ios / seconds,
        "cpu_ns_per_io": cpu_s * 1e9 / ios,
        "kiops_per_core": ios / cpu_s / 1e3 if cpu_s > 0 else None,
        "self_cpu_ns_per_io": self_cpu * 1e9 / ios,
        "lat_p50_ns": p50, "lat_p99_ns": p99, "latency": latency,
        "page_cache_resident": json.loads(resident),
        "rusage": ru, "command": command,
    }
    for key in ("enter_calls_per_io", "slab_allocs_per_io", "heap_calls_per_io"):
        if key in out:
            rec[key] = out[key]
    print(json.dumps(rec))


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def minimum(xs):
    xs = [x for x in xs if x is not None]
    return min(xs) if xs else None


# The targets of issue 14 (CPU per I/O against uring-loop in the same run): (target, rw, QDs,
# tool, kind, bound). "ratio": per-core ratio to uring-loop >= bound; "delta": CPU ns per I/O
# over uring-loop's <= bound.
TARGETS = [
    ("shm", "randread", (32, 128), "bioring-per-io", "ratio", 1.0),
    ("-", "nop", (1, 32, 128), "bioring-loop", "ratio", 0.9),
    ("-", "nop", (1, 32, 128), "bioring-per-io", "ratio", 0.8),
    ("cached", "randread", (32, 128), "bioring-per-io", "delta", 40.0),
]


def check_targets(points):
    """Lines saying, for each target point present, whether its median and its best
    (minimum CPU per I/O of each side) meet it."""
    by = {(p["target"], p["rw"], p["qd"], p["tool"]): p for p in points}
    lines = []
    for target, rw, qds, tool, kind, bound in TARGETS:
        for qd in qds:
            p = by.get((target, rw, qd, tool))
            if not p or p.get("per_core_vs_uring") is None:
                continue
            where = f"{TARGET_NAMES[target]} {rw} QD {qd}: {NAMES[tool]}"
            if kind == "ratio":
                med, best = p["per_core_vs_uring"], p["best_vs_uring"]
                ok = med >= bound
                lines.append(f"{where} {med:.2f}x uring-loop per core (best runs {best:.2f}x); "
                             f"target >= {bound:.1f}x: {'met' if ok else 'MISSED'}"
                             f"{'' if ok == (best >= bound) else ' (best runs: ' + ('met' if best >= bound else 'missed') + ')'}")
            else:
                med, best = p["ns_over_uring"], p["best_ns_over_uring"]
                ok = med <= bound
                lines.append(f"{where} {med:+.0f} ns per read over uring-loop (best runs "
                             f"{best:+.0f}); target <= +{bound:.0f} ns: {'met' if ok else 'MISSED'}"
                             f"{'' if ok == (best <= bound) else ' (best runs: ' + ('met' if best <= bound else 'missed') + ')'}")
    return lines


def summarize(folder):
    folder = Path(folder)
    runs = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines() if line]
    groups = defaultdict(list)
    for r in runs:
        groups[(r["target"], r["rw"], r["qd"], r["tool"])].append(r)
    points = []
    for (target, rw, qd, tool), rs in groups.items():
        pt = {"target": target, "rw": rw, "qd": qd, "tool": tool, "method": NAMES[tool],
              "runs": len(rs), "latency": rs[0].get("latency")}
        for key in ("iops", "cpu_ns_per_io", "kiops_per_core", "self_cpu_ns_per_io",
                    "lat_p50_ns", "lat_p99_ns", "enter_calls_per_io", "slab_allocs_per_io",
                    "heap_calls_per_io"):
            pt[key] = median([r.get(key) for r in rs])
        pt["min_cpu_ns_per_io"] = minimum([r["cpu_ns_per_io"] for r in rs])
        pt["min_self_cpu_ns_per_io"] = minimum([r.get("self_cpu_ns_per_io") for r in rs])
        res = [r.get("page_cache_resident") for r in rs if r.get("page_cache_resident") is not None]
        pt["min_page_cache_resident"] = min(res) if res else None
        pt["samples"] = {k: [r.get(k) for r in rs] for k in ("iops", "cpu_ns_per_io")}
        points.append(pt)
    base = {(p["target"], p["rw"], p["qd"]): p for p in points if p["tool"] == "uring"}
    for p in points:
        b = base.get((p["target"], p["rw"], p["qd"]))
        p["per_core_vs_uring"] = (p["kiops_per_core"] / b["kiops_per_core"]
                                  if b and b["kiops_per_core"] and p["kiops_per_core"] else None)
        p["best_vs_uring"] = (b["min_cpu_ns_per_io"] / p["min_cpu_ns_per_io"]
                              if b and p["min_cpu_ns_per_io"] else None)
        p["ns_over_uring"] = p["cpu_ns_per_io"] - b["cpu_ns_per_io"] if b else None
        p["best_ns_over_uring"] = p["min_cpu_ns_per_io"] - b["min_cpu_ns_per_io"] if b else None
        p["iops_vs_uring"] = p["iops"] / b["iops"] if b and b["iops"] else None
    points.sort(key=lambda p: (TARGET_ORDER.get(p["target"], 9), p["rw"], p["qd"],
                               ORDER.index(p["tool"])))

    header = (folder / "header.txt").read_text() if (folder / "header.txt").exists() else ""
    lines = [header.rstrip("\n")] if header else []
    lines.append("# medians (med) and minimums (min) over the runs; CPU = user+sys of the whole "
                 "process (all threads, io-wq included) per I/O; kIOPS/core = I/Os per CPU-second "
                 "/ 1000; x uring = per-core ratio to uring-loop (med: of medians, best: of "
                 "minimum CPU); +ns = CPU ns/IO over uring-loop's")
    lines.append(f"{'target':<17} {'rw':<8} {'QD':>4} {'method':<16} {'IOPS':>9} "
                 f"{'ns/IO med':>9} {'min':>6} {'kIOPS/core':>10} {'x uring':>7} {'best':>5} "
                 f"{'+ns med':>7} {'min':>5} {'p99 us':>7} {'n':>2}")
    prev = None
    for p in points:
        key = (p["target"], p["rw"], p["qd"])
        if prev is not None and key != prev:
            lines.append("")
        prev = key
        fmt = lambda v, f: (f % (v + 0.0)) if v is not None else "-"  # + 0.0: no "-0"
        lines.append(
            f"{TARGET_NAMES.get(p['target'], p['target']):<17} {p['rw']:<8} {p['qd']:>4} "
            f"{p['method']:<16} {fmt(p['iops'], '%.0f'):>9} {fmt(p['cpu_ns_per_io'], '%.0f'):>9} "
            f"{fmt(p['min_cpu_ns_per_io'], '%.0f'):>6} {fmt(p['kiops_per_core'], '%.1f'):>10} "
            f"{fmt(p['per_core_vs_uring'], '%.2f'):>7} {fmt(p['best_vs_uring'], '%.2f'):>5} "
            f"{fmt(p['ns_over_uring'], '%+.0f'):>7} {fmt(p['best_ns_over_uring'], '%+.0f'):>5} "
            f"{fmt(p['lat_p99_ns'] / 1e3 if p['lat_p99_ns'] else None, '%.1f'):>7} {p['runs']:>2}")
    resident = [p["min_page_cache_resident"] for p in points
                if p["min_page_cache_resident"] is not None]
    if resident:
        lines.append("")
        lines.append(f"page-cached file: at least {min(resident) * 100:.2f} % of its pages "
                     "resident before every run (fincore)")
    verdicts = check_targets(points)
    if verdicts:
        lines.append("")
        lines.append("targets (issue 14):")
        lines.extend("  " + v for v in verdicts)
    table = "\n".join(lines) + "\n"
    sys.stdout.write(table)
    (folder / "table.txt").write_text(table)
    (folder / "results.json").write_text(json.dumps(
        {"header": header.strip().splitlines(), "points": points, "targets": verdicts},
        indent=1) + "\n")
    plot(folder, points)


def plot(folder, points):
    panels = [t for t in ("shm", "disk", "cached", "-") if any(p["target"] == t for p in points)]
    if not panels:
        return
    script = [f"set terminal pngcairo size {520 * len(panels)},480 noenhanced font ',10'",
              f"set output '{folder / 'kiops_per_core.png'}'",
              f"set multiplot layout 1,{len(panels)} title 'kIOPS per core (I/Os per CPU-second) "
              f"vs queue depth, medians'",
              "set logscale x 2", "set xlabel 'queue depth'", "set ylabel 'kIOPS per core'",
              "set grid", "set key below", "set yrange [0:*]"]
    for t in panels:
        title = TARGET_NAMES[t] + (" 4 KiB randread" if t != "-" else "")
        if t == "cached":
            title += " (buffered)"
        if t == "-":
            script.append("set logscale y 10")
            script.append("set yrange [*:*]")
        script.append(f"set title '{title}'")
        series = []
        for tool in ORDER:
            pts = sorted((p["qd"], p["kiops_per_core"]) for p in points
                         if p["target"] == t and p["tool"] == tool and p["kiops_per_core"])
            if not pts:
                continue
            data = folder / f"plot_{'nop' if t == '-' else t}_{tool}.dat"
            data.write_text("".join(f"{q} {v}\n" for q, v in pts))
            series.append(f"'{data}' using 1:2 with linespoints lw 2 {STYLE[tool]} "
                          f"title '{NAMES[tool]}'")
        if series:
            script.append("plot " + ", ".join(series))
    script.append("unset multiplot")
    gnuplot_run.render(script, folder, "kiops_per_core", "compare_summary")


def main(argv):
    if len(argv) in (10, 11) and argv[1] == "record":
        record(*argv[2:])
    elif len(argv) == 3 and argv[1] == "summarize":
        summarize(argv[2])
    else:
        print(__doc__ if __doc__ else "usage: see the file header", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
