#!/usr/bin/python3
"""bench/report.py RAW.jsonl OUT.json - turn run.sh's raw records into the table and the JSON.

Every figure is a median over the rounds with its min..max spread. A
comparison (ratio) is computed per round, from the two sides measured in that
same round, and the ratios are then summarised: the ratio's spread says how
far the noise of this run could move it.
"""
import json
import statistics
import sys


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "values": values}


def pct(values, p):
    s = sorted(values)
    k = max(1, min(len(s), int(p / 100.0 * len(s) + 0.999999)))
    return s[k - 1]


class Report:
    def __init__(self):
        self.rows = []

    def add(self, section, metric, unit, values, kind="value", better=None, **detail):
        s = summary(values)
        if s is None:
            return
        row = {"section": section, "metric": metric, "unit": unit, "kind": kind}
        if better:
            row["better"] = better
        row.update(s)
        row.update(detail)
        self.rows.append(row)


# the ratio no driver that makes a create and a remove durable can go below
FLOOR = "floor/built-in"
# the RSS of a program that only links ballastd's libraries
IDLE_FLOOR = "idle RSS floor: a program linking ballastd's libraries, 1 s after start"

# The goals of the performance work: (goal, metric row's name prefix, text
# the name contains, unit, "<=" or ">=", bound, and the prefix of the row of
# its floor measured in the same run, the figure nothing built this way can
# go below, or None). The baselines named are the figures measured before
# the work began (Get at 64 connections 36.0k req/s with 44 us of CPU per
# request; cycles at 16 connections 2.1k req/s).
GOALS = (
    ("sized volume: seq write+fsync at least 0.9 of a host dir",
     "seq overwrite+fsync", "ballast local sized image/host dir", "ratio", ">=", 0.9, None),
    ("sized volume: cold read at least 0.9 of a host dir",
     "seq cold read", "ballast local sized image/host dir", "ratio", ">=", 0.9, None),
    ("sized volume: random 4k write+fsync (reported; no bound)",
     "random 4k write+fsync", "ballast local sized image/host dir", "ratio", None, None, None),
    ("... the same with ext4's fast commits, -o mkfs-options=-O fast_commit (reported; no bound)",
     "random 4k write+fsync", "sized image -O fast_commit/host dir", "ratio", None, None, None),
    ("idle RSS of a local-only ballastd at most 4 MiB",
     "idle RSS (empty catalog", "", "MiB", "<=", 4.0, IDLE_FLOOR),
    ("idle RSS with rbd and gluster configured (reported; no bound)",
     "idle RSS with [rbd] and [gluster]", "", "MiB", None, None, None),
    ("cycles at 16 connections at least 3x 2.1k req/s",
     "Create/Mount/Unmount/Remove cycle, 16 conns: requests/s", "", "req/s", ">=", 6300.0, None),
    ("10,000 Creates over 16 connections in at most 2 s",
     "Create of 10000 volumes", "", "s", "<=", 2.0, None),
    ("List of 10,000 volumes in at most 10 ms (p50)",
     "VolumeDriver.List of 10000 volumes: p50", "", "ms", "<=", 10.0, None),
    ("start to Activate with 10,000 volumes in at most 100 ms",
     "start to Activate, 10000 volumes", "", "ms", "<=", 100.0, None),
    ("start to the first List with 10,000 volumes (reported; no bound)",
     "start to first List answer, 10000 volumes", "", "ms", None, None, None),
    ("RSS with 10,000 volumes at most 20 MiB",
     "RSS with 10000 volumes, after the Lists", "", "MiB", "<=", 20.0, None),
    ("docker volume create/inspect/rm at most 1.6 of the built-in",
     "docker volume create+inspect+rm: ballast/built-in", "", "ratio", "<=", 1.6,
     "docker volume create+inspect+rm: " + FLOOR),
    ("its floor: built-in + two durable writes (reported; no bound)",
     "docker volume create+inspect+rm: " + FLOOR, "", "ratio", None, None, None),
    ("Get at 64 connections at least 1.5x 36.0k req/s",
     "VolumeDriver.Get, 64 conns: requests/s", "", "req/s", ">=", 54000.0, None),
    ("Get at 64 connections: CPU per request below 44 us",
     "VolumeDriver.Get, 64 conns: ballastd CPU per request", "", "us", "<", 44.0, None),
)


CONTROL = "second host dir/host dir"
NOT_JUDGED = "not judged"


def judge_by_control(g, rows, prefix, bound):
    """A ratio to a host dir is judged only when the A/A control (a second
    host dir against the first, same run, at least 2 rounds) stayed within
    the goal's margin: bound..1/bound for a bound below 1 (1/bound..bound
    above). Past it, this machine's disk noise decides, not ballast."""
    ctl = next((r for r in rows if r["metric"].startswith(prefix) and CONTROL in r["metric"]), None)
    if bound is None:  # reported, not judged: the control only shown
        if ctl is not None:
            g["control"] = [ctl["min"], ctl["max"]]
        return
    if ctl is None or ctl["n"] < 2:
        g["met"] = NOT_JUDGED
        g["why"] = "no A/A control" if ctl is None else "A/A control of 1 round"
        return
    lo = min(bound, 1.0 / bound) if bound > 0 else 0.0
    g["control"] = [ctl["min"], ctl["max"]]
    if ctl["min"] < lo or (lo > 0 and ctl["max"] > 1.0 / lo):
        g["met"] = NOT_JUDGED
        g["why"] = "A/A control %.3f..%.3f, outside %.3f..%.3f" % (
            ctl["min"], ctl["max"], lo, 1.0 / lo if lo > 0 else float("inf"))


def judge_goals(rows):
    out = []
    for goal, prefix, contains, unit, op, bound, floor_prefix in GOALS:
        row = next((r for r in rows if r["metric"].startswith(prefix) and contains in r["metric"]), None)
        val = None
        if row is not None:
            val = row["median"]
            if unit == "s" and row["unit"] == "req/s":
                # a rate of the 10,000 Creates, as the time they took
                val = 10000.0 / val if val else None
        met = None
        if val is not None and op is not None:
            met = {"<=": val <= bound, ">=": val >= bound, "<": val < bound}[op]
        elif val is not None:
            met = "reported"
        wants = "report" if op is None else "%s %s" % (op, bound)
        g = {"goal": goal, "unit": unit, "wants": wants, "median": val, "met": met}
        if row is not None and contains.endswith("/host dir"):
            judge_by_control(g, rows, prefix, bound if op is not None else None)
        floor = next((r for r in rows if floor_prefix and r["metric"].startswith(floor_prefix)), None)
        if row is not None and floor is not None:
            g["floor"] = floor["median"]
            g["floor_above"] = op == "<=" and floor["median"] > bound
        out.append(g)
    return out


def by_round(recs, key):
    return [r[key] for r in sorted(recs, key=lambda r: r.get("round", 0))]


def main():
    raw, out = sys.argv[1], sys.argv[2]
    recs = []
    with open(raw) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    meta = {}
    for r in recs:
        if r.get("section") == "meta":
            meta.update({k: v for k, v in r.items() if k != "section"})
    rep = Report()

    def sel(section, row, **kw):
        return [r for r in recs if r.get("section") == section and r.get("row") == row
                and all(r.get(k) == v for k, v in kw.items())]

    # a. through dockerd
    names = {"volume_cycle": "docker volume create+inspect+rm",
             "run_rm": "docker run --rm -v VOL (create/start/wait/rm)"}
    for row, label in names.items():
        rs = sorted(sel("dockerd", row), key=lambda r: r["round"])
        if not rs:
            continue
        a_med = [statistics.median(r["a_ms"]) for r in rs]
        b_med = [statistics.median(r["b_ms"]) for r in rs]
        rep.add("dockerd", label + ": ballast/built-in", "ratio",
                [a / b for a, b in zip(a_med, b_med)], kind="ratio", better="lower",
                a_ms=summary(a_med), b_ms=summary(b_med),
                a_p99_ms=pct([x for r in rs for x in r["a_ms"]], 99),
                b_p99_ms=pct([x for r in rs for x in r["b_ms"]], 99),
                per_round_ops=len(rs[0]["a_ms"]))
        f_med = [statistics.median(r["floor_ms"]) for r in rs if r.get("floor_ms")]
        if len(f_med) == len(rs):
            # what a driver that makes a create and a remove durable cannot
            # go below: the built-in's time plus two durable writes, timed
            # beside each pair in the same round
            rep.add("dockerd", label + ": " + FLOOR, "ratio",
                    [(b + f) / b for b, f in zip(b_med, f_med)], kind="ratio", better="lower",
                    floor_ms=summary(f_med))

    # b. straight to the socket
    for mode, what in (("get", "VolumeDriver.Get"), ("cycle", "Create/Mount/Unmount/Remove cycle")):
        for c in (1, 16, 64):
            rs = sorted(sel("socket", "%s_c%d" % (mode, c)), key=lambda r: r["round"])
            if not rs:
                continue
            d = [r["data"] for r in rs]
            label = "%s, %d conn%s" % (what, c, "" if c == 1 else "s")
            rep.add("socket", label + ": requests/s", "req/s", [x["req_per_s"] for x in d], better="higher",
                    errors=sum(x["errors"] for x in d))
            unit_note = " per cycle" if mode == "cycle" else ""
            extra = {}
            if mode == "cycle":
                extra["ops_p50_ms"] = {op: statistics.median(x["ops"][op]["p50_ms"] for x in d)
                                       for op in ("create", "mount", "unmount", "remove")}
            rep.add("socket", label + ": p50" + unit_note, "ms", [x["p50_ms"] for x in d], better="lower",
                    **extra)
            rep.add("socket", label + ": p99" + unit_note, "ms", [x["p99_ms"] for x in d], better="lower")
            per = 4 if mode == "cycle" else 1
            rep.add("socket", label + ": ballastd CPU per request", "us",
                    [r["cpu_us"] / (per * r["data"]["done"]) for r in rs
                     if "cpu_us" in r and r["data"]["done"]], better="lower")

    # c. memory and scale
    se = sel("scale", "start_empty")
    sk = sel("scale", "start_10k")
    rep.add("scale", "idle RSS (empty catalog, 1 s after start)", "MiB",
            [r["rss_kib"] / 1024.0 for r in se], better="lower")
    rep.add("scale", IDLE_FLOOR, "MiB", [r["rss_kib"] / 1024.0 for r in sel("scale", "idle_floor")],
            better="lower")
    rep.add("scale", "start to Activate, empty catalog", "ms", [r["ms"] for r in se], better="lower")
    ss = sel("scale", "start_shared")
    rep.add("scale", "idle RSS with [rbd] and [gluster] configured (modules loaded)", "MiB",
            [r["rss_kib"] / 1024.0 for r in ss], better="lower")
    n = sk[0].get("volumes", 10000) if sk else 10000
    rep.add("scale", "start to Activate, %d volumes (the catalog loads after)" % n, "ms",
            [r["ms"] for r in sk], better="lower")
    rep.add("scale", "start to first List answer, empty catalog", "ms",
            [r["list_ms"] for r in se if "list_ms" in r], better="lower")
    rep.add("scale", "start to first List answer, %d volumes (waits for the load)" % n, "ms",
            [r["list_ms"] for r in sk if "list_ms" in r], better="lower")
    em = {r["round"]: r["ms"] for r in se}
    rep.add("scale", "start time, %d volumes / empty" % n, "ratio",
            [r["ms"] / em[r["round"]] for r in sk if em.get(r["round"])], kind="ratio")
    rep.add("scale", "RSS with %d volumes, 1 s after start" % n, "MiB",
            [r["rss_kib"] / 1024.0 for r in sk], better="lower")
    rep.add("scale", "RSS with %d volumes, after the Lists" % n, "MiB",
            [r["rss_kib"] / 1024.0 for r in sel("scale", "rss_after_list")], better="lower")
    for method in ("VolumeDriver.List", "Ballast.List"):
        rs = sel("scale", "list", method=method)
        rep.add("scale", "%s of %d volumes: p50" % (method, n), "ms", [r["data"]["p50_ms"] for r in rs],
                better="lower")
        rep.add("scale", "%s of %d volumes: p99" % (method, n), "ms", [r["data"]["p99_ms"] for r in rs],
                better="lower")
    cr = sel("scale", "create")
    if cr:
        rep.add("scale", "Create of %d volumes through the socket (%d conns, once)" % (
            cr[0]["data"]["done"], cr[0]["data"]["conns"]), "req/s", [cr[0]["data"]["req_per_s"]],
            better="higher")

    # d. data path
    variants = (("host2", "second host dir"), ("dir", "ballast local dir"), ("image", "ballast local sized image"))
    def per_round(rs, key="mib_s"):
        """{round: median of that round's repetitions}"""
        out = {}
        for r in rs:
            out.setdefault(r["round"], []).append(r[key])
        return {k: statistics.median(v) for k, v in out.items()}

    for op in ("write", "read"):
        host = per_round(sel("data", op, variant="host"))
        for v, label in variants:
            rs = sel("data", op, variant=v)
            if not rs:
                continue
            mine = per_round(rs)
            verb = "overwrite+fsync" if op == "write" else "cold read"
            rep.add("data", "seq %s %s, %s/host dir" % (verb, rs[0].get("size", ""), label), "ratio",
                    [mine[k] / host[k] for k in sorted(mine) if host.get(k)], kind="ratio",
                    better="higher", tool=rs[0].get("tool", "?"), a_mib_s=summary(list(mine.values())),
                    b_mib_s=summary(list(host.values())))

    host = per_round(sel("data", "randwrite", variant="host"), "iops")
    for v, label in variants + (("imagefc", "ballast local sized image -O fast_commit"),):
        rs = sel("data", "randwrite", variant=v)
        if not rs:
            continue
        mine = per_round(rs, "iops")
        rep.add("data", "random 4k write+fsync, %s/host dir" % label, "ratio",
                [mine[k] / host[k] for k in sorted(mine) if host.get(k)], kind="ratio",
                better="higher", tool=rs[0].get("tool", "?"), a_iops=summary(list(mine.values())),
                b_iops=summary(list(host.values())))

    # e. rbd / gluster rows: records with section rbd or gluster, already as
    # {"metric", "unit", "value", "round"[, "better"]} (run.sh's emit_metric);
    # rows in the order of their first record
    for section in ("rbd", "gluster"):
        metrics = {}
        better = {}
        for r in sorted((r for r in recs if r.get("section") == section), key=lambda r: r.get("round", 0)):
            key = (r["metric"], r.get("unit", ""))
            metrics.setdefault(key, []).append(r["value"])
            if r.get("better"):
                better[key] = r["better"]
        for (m, u), vals in metrics.items():
            rep.add(section, m, u, vals, kind="ratio" if u == "ratio" else "value", better=better.get((m, u)))

    goals = judge_goals(rep.rows)
    result = {"meta": meta, "rows": rep.rows, "goals": goals}
    with open(out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")

    # the table
    def fmt(v, unit):
        if unit == "ratio":
            return "%.2fx" % v
        if unit == "req/s":
            return "%.0f" % v
        if v >= 100:
            return "%.0f" % v
        if v >= 10:
            return "%.1f" % v
        return "%.3g" % v

    print("%-8s %-72s %10s  %-21s %s" % ("section", "metric", "median", "min..max", "notes"))
    for r in rep.rows:
        unit = r["unit"]
        note = "" if unit == "ratio" else unit
        if "a_ms" in r:
            note = "ballast %s ms, built-in %s ms (p99 %s / %s)" % (
                fmt(r["a_ms"]["median"], "ms"), fmt(r["b_ms"]["median"], "ms"),
                fmt(r["a_p99_ms"], "ms"), fmt(r["b_p99_ms"], "ms"))
        if "floor_ms" in r:
            note = "floor: built-in + two durable writes of %s ms" % fmt(r["floor_ms"]["median"], "ms")
        if "a_mib_s" in r:
            note = "%s MiB/s vs host %s MiB/s (%s)" % (fmt(r["a_mib_s"]["median"], "MiB/s"),
                                                      fmt(r["b_mib_s"]["median"], "MiB/s"), r["tool"])
        if "a_iops" in r:
            note = "%s IOPS vs host %s IOPS" % (fmt(r["a_iops"]["median"], "IOPS"), fmt(r["b_iops"]["median"], "IOPS"))
        if "ops_p50_ms" in r:
            note = "ms; p50 per call: " + ", ".join("%s %s" % (k, fmt(v, "ms")) for k, v in r["ops_p50_ms"].items())
        if r.get("errors"):
            note += " ERRORS: %d" % r["errors"]
        lo, hi = fmt(r["min"], unit), fmt(r["max"], unit)
        spread = "%s..%s" % (lo.rstrip("x"), hi.rstrip("x")) if r["n"] > 1 else "(1 run)"
        print("%-8s %-72s %10s  %-21s %s" % (r["section"], r["metric"], fmt(r["median"], unit), spread, note))
    cl = ""
    if any(r["section"] in ("rbd", "gluster") for r in rep.rows):
        cl = " (rbd, gluster: %s)" % meta.get("cluster_rounds", "?")
    print("# rounds: %s%s; ratios are per round (same-round A and B), then median and min..max over rounds"
          % (meta.get("rounds", "?"), cl))
    print()
    print("%-64s %-14s %12s  %s" % ("goal", "wants", "median", "met"))
    for g in goals:
        got = "-" if g["median"] is None else fmt(g["median"], g["unit"])
        met = {True: "yes", False: "NO", None: "not measured", "reported": "(reported)",
               NOT_JUDGED: NOT_JUDGED}[g["met"]]
        if "why" in g:
            met += " (%s)" % g["why"]
        elif "control" in g:
            met += " (A/A control %.3f..%.3f)" % tuple(g["control"])
        if "floor" in g:
            unit = "" if g["unit"] == "ratio" else " " + g["unit"]
            met += " (floor %s%s%s)" % (fmt(g["floor"], g["unit"]), unit,
                                        ", above the bound" if g["floor_above"] else "")
        print("%-64s %-14s %12s  %s" % (g["goal"], g["wants"], got, met))
    judged = [g for g in goals if g["met"] != "reported"]
    print("# goals: %d of %d met (%d not measured in this run, %d not judged: see the A/A control)" % (
              sum(1 for g in judged if g["met"] is True), len(judged),
              sum(1 for g in judged if g["met"] is None), sum(1 for g in judged if g["met"] == NOT_JUDGED)))


if __name__ == "__main__":
    main()
