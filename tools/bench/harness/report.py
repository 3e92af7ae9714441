"""Summaries of benchmark runs: the printed table, the JSON file, the PNG chart.

Owns: medians over rounds, ratios to HAProxy and the verdict against the
targets of issue #9 (at saturation, and latency at a common paced load), and
their three renderings. Pure functions over plain
dicts (the run records made by run.py), except the two writers.
Must not import: lb.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .png import Canvas, text_width
from .scenarios import BY_NAME, P99_LIMIT, SUSTAINED, Scenario

TARGETS = ("direct", "haproxy", "lb")
COLORS = {"direct": (150, 150, 150), "haproxy": (31, 119, 180), "lb": (255, 127, 14)}


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict]) -> dict:
    """Median figures per target over the rounds of one scenario."""
    out: dict[str, dict] = {}
    for target in TARGETS:
        mine = [r for r in runs if r["target"] == target and r.get("value") is not None]
        if not mine:
            continue
        out[target] = {
            "value": _median([r["value"] for r in mine]),
            "p50_ms": _median([r.get("p50_ms") for r in mine]),
            "p99_ms": _median([r.get("p99_ms") for r in mine]),
            "p999_ms": _median([r.get("p999_ms") for r in mine]),
            "cpu_pct": _median([r.get("cpu_pct") for r in mine]),
            "cpu_us_per_unit": _median([r.get("cpu_us_per_unit") for r in mine]),
            # how busy each core was (everyone's work: shows sharing with other jobs)
            "core0_busy_pct": _median([r.get("cores_busy_pct", {}).get("cpu0") for r in mine]),
            "core1_busy_pct": _median([r.get("cores_busy_pct", {}).get("cpu1") for r in mine]),
            "errors": sum(r.get("errors", 0) for r in mine),
            "rounds": len(mine),
            "values": [r["value"] for r in mine],
        }
    return out


def verdict(sc: Scenario, summary: dict) -> dict:
    """Ratios to HAProxy and whether lb meets the scenario's target."""
    res: dict = {}
    ha = summary.get("haproxy", {}).get("value")
    for target in ("direct", "lb"):
        v = summary.get(target, {}).get("value")
        if v is not None and ha:
            res[f"{target}_ratio"] = v / ha
    lb = summary.get("lb")
    if lb is None:
        return res
    ha_cost = summary.get("haproxy", {}).get("cpu_us_per_unit")
    if lb.get("cpu_us_per_unit") is not None and ha_cost:
        res["cpu_cost_ratio"] = lb["cpu_us_per_unit"] / ha_cost
    if sc.higher_is_better:
        ratio = res.get("lb_ratio")
        res["meets_target"] = ratio is not None and ratio >= sc.target
    else:
        res["meets_target"] = lb["value"] <= sc.target
    ha_p99 = summary.get("haproxy", {}).get("p99_ms")
    if lb.get("p99_ms") is not None and ha_p99:
        res["p99_ratio"] = lb["p99_ms"] / ha_p99
        res["meets_p99"] = res["p99_ratio"] <= P99_LIMIT
    return res


def paced_verdict(summary: dict, rate: float) -> dict:
    """Latency ratios to HAProxy at one offered rate, and whether each proxy
    carried that rate (one that did not has a queue's latency)."""
    res: dict = {}
    for target in ("haproxy", "lb"):
        s = summary.get(target)
        if s is not None:
            res[f"{target}_sustained"] = s["value"] >= SUSTAINED * rate
    ha, lb = summary.get("haproxy"), summary.get("lb")
    if ha is None or lb is None:
        return res
    for key in ("p50", "p99", "p999"):
        if lb.get(f"{key}_ms") is not None and ha.get(f"{key}_ms"):
            res[f"{key}_ratio"] = lb[f"{key}_ms"] / ha[f"{key}_ms"]
    if "p99_ratio" in res:
        res["meets_p99"] = res["p99_ratio"] <= P99_LIMIT
    return res


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def _busy(s: dict) -> str:
    c0, c1 = s.get("core0_busy_pct"), s.get("core1_busy_pct")
    if c0 is None or c1 is None:
        return "-"
    return f"{c0:.0f}/{c1:.0f}"


def table(results: dict) -> str:
    """The human-readable table (medians of the rounds)."""
    head = (f"{'scenario':<21} {'target':<8} {'median':>11} {'unit':<8} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'CPU%':>5} {'us/unit':>8} {'c0/c1%':>7} {'err':>5} {'x HAProxy':>9}  goal")
    lines = [head, "-" * len(head)]
    for entry in results["scenarios"]:
        sc = BY_NAME[entry["name"]]
        summary, ver = entry["summary"], entry["verdict"]
        first = True
        for target in TARGETS:
            s = summary.get(target)
            if s is None:
                continue
            ratio = ver.get(f"{target}_ratio") if target != "haproxy" else 1.0
            goal = ""
            if target == "direct" and ratio is not None:
                goal = f">=1.5x {'ok' if ratio >= 1.5 else 'LOW (load side may limit)'}"
            if target == "lb":
                if sc.higher_is_better:
                    goal = f">={sc.target:g}x {'ok' if ver.get('meets_target') else 'MISS'}"
                else:
                    goal = f"<={sc.target:g} {sc.unit} {'ok' if ver.get('meets_target') else 'MISS'}"
                if "p99_ratio" in ver:
                    goal += (f"; p99 {ver['p99_ratio']:.2f}x "
                             f"{'ok' if ver.get('meets_p99') else 'MISS'}")
                if "cpu_cost_ratio" in ver:
                    goal += f"; CPU/unit {ver['cpu_cost_ratio']:.2f}x"
            name = entry["name"] if first else ""
            first = False
            lines.append(
                f"{name:<21} {target:<8} {_fmt(s['value']):>11} {sc.unit:<8} "
                f"{_fmt(s['p50_ms'], 2):>7} {_fmt(s['p99_ms'], 2):>7} "
                f"{_fmt(s['cpu_pct'], 0):>5} {_fmt(s.get('cpu_us_per_unit'), 1):>8} "
                f"{_busy(s):>7} {s['errors']:>5} "
                f"{(f'{ratio:.2f}x' if ratio is not None else '-'):>9}  {goal}")
        if entry.get("paced"):
            lines += _paced_rows(sc, entry["paced"])
        if entry.get("note"):
            lines.append(f"{'':<21} note: {entry['note']}")
    return "\n".join(lines)


def _paced_rows(sc: Scenario, paced: dict) -> list[str]:
    """Rows of the same table for the open-loop runs at a common offered rate."""
    ver = paced["verdict"]
    lines = []
    first = True
    for target in ("haproxy", "lb"):
        s = paced["summary"].get(target)
        if s is None:
            continue
        goal = "" if ver.get(f"{target}_sustained", True) else "did not carry the load; "
        if target == "lb" and "p99_ratio" in ver:
            goal += (f"paced p99 {ver['p99_ratio']:.2f}x "
                     f"{'ok' if ver.get('meets_p99') else 'MISS'}")
            if "p999_ratio" in ver:
                goal += f"; p99.9 {ver['p999_ratio']:.2f}x"
        elif target == "haproxy" and s.get("p999_ms") is not None:
            goal += f"p99.9 {s['p999_ms']:.2f} ms"
        name = f"  at {paced['load']:g} load" if first else ""
        first = False
        lines.append(
            f"{name:<21} {target:<8} {_fmt(s['value']):>11} {sc.unit:<8} "
            f"{_fmt(s['p50_ms'], 2):>7} {_fmt(s['p99_ms'], 2):>7} "
            f"{_fmt(s['cpu_pct'], 0):>5} {_fmt(s.get('cpu_us_per_unit'), 1):>8} "
            f"{_busy(s):>7} {s['errors']:>5} {'':>9}  {goal.rstrip('; ')}")
    return lines


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


def chart(results: dict, path: Path) -> None:
    """Bars per scenario, normalised to HAProxy = 1.0 in the same run."""
    entries = [e for e in results["scenarios"] if "haproxy" in e["summary"]]
    targets = [t for t in TARGETS if any(t in e["summary"] for e in entries)]
    group_w, bar_w, left, top, plot_h = 150, 34, 70, 90, 300
    width = left + max(1, len(entries)) * group_w + 30
    height = top + plot_h + 90
    cv = Canvas(width, height)
    ratios = [e["summary"][t]["value"] / e["summary"]["haproxy"]["value"]
              for e in entries for t in targets
              if t in e["summary"] and e["summary"]["haproxy"]["value"]]
    ymax = max(2.0, min(4.0, (int(max(ratios, default=1.0) * 2) + 1) / 2))

    def y_of(r: float) -> int:
        return top + plot_h - int(min(r, ymax) / ymax * plot_h)

    cv.text(left, 12, "LB VS HAPROXY, SAME RUN (HAPROXY = 1.0)", (0, 0, 0), 2)
    m = results.get("machine", {})
    cv.text(left, 36, f"{m.get('nproc', '?')} CPU {m.get('cpu', '')}  "
            f"MEDIAN OF {results['settings']['rounds']} ROUND(S)  "
            f"{results['started'][:16]}  LB {results['versions'].get('lb_commit', '')}",
            (90, 90, 90), 1)
    lx = left
    for t in targets:
        cv.rect(lx, 54, 14, 14, COLORS[t])
        cv.text(lx + 20, 57, t.upper(), (0, 0, 0), 1)
        lx += 30 + text_width(t.upper()) + 20
    cv.rect(lx, 60, 14, 3, (214, 39, 40))
    cv.text(lx + 20, 57, "LB TARGET", (0, 0, 0), 1)
    # grid and axis
    step = 0.5
    r = 0.0
    while r <= ymax + 1e-9:
        y = y_of(r)
        cv.hline(left, y, width - left - 20, (225, 225, 225) if r else (0, 0, 0))
        cv.text(left - 8 - text_width(f"{r:.1f}"), y - 3, f"{r:.1f}", (60, 60, 60))
        r += step
    cv.hline(left, y_of(1.0), width - left - 20, (31, 119, 180))
    for gi, e in enumerate(entries):
        sc = BY_NAME[e["name"]]
        ha = e["summary"]["haproxy"]["value"]
        gx = left + gi * group_w + (group_w - len(targets) * (bar_w + 4)) // 2
        for bi, t in enumerate(targets):
            s = e["summary"].get(t)
            if s is None or not ha:
                continue
            ratio = s["value"] / ha
            x = gx + bi * (bar_w + 4)
            y = y_of(ratio)
            cv.rect(x, y, bar_w, top + plot_h - y, COLORS[t])
            label_y = y
            if t == "lb":
                goal = sc.target if sc.higher_is_better else sc.target / ha
                gy = y_of(goal)
                cv.rect(x - 3, gy - 1, bar_w + 6, 3, (214, 39, 40))
                if not sc.higher_is_better:
                    cv.text(x + bar_w + 5, gy - 3, f"{sc.target:g}", (214, 39, 40))
                if sc.higher_is_better:
                    label_y = min(y, gy)
            cv.text_centered(x + bar_w // 2, label_y - 10, f"{ratio:.2f}", (0, 0, 0))
        cx = left + gi * group_w + group_w // 2
        cv.text_centered(cx, top + plot_h + 10, sc.title, (0, 0, 0), 2)
        cv.text_centered(cx, top + plot_h + 32, sc.unit + ("" if sc.higher_is_better
                                                          else " LOWER=BETTER"), (90, 90, 90))
        cv.text_centered(cx, top + plot_h + 46, f"HA {_fmt(ha)}", (31, 119, 180))
    cv.save(path)
