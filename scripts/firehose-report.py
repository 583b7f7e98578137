#!/usr/bin/env python3
"""Sampling and report for scripts/bench-firehose.sh (see there).

  firehose-report.py sample WORK   every 2 s, append each monitor's verified size per log to WORK/samples.tsv, and
                                   ctwatch's resident memory and thread count (/proc, pid in WORK/ctwatch.pid)
                                   to WORK/proc.tsv
  firehose-report.py report WORK   print the lag / resources / matches table

Lag of a log at time t = seconds since the oldest entry the monitor has not verified yet was published (0 when
the monitor has verified everything the log had published by t). Publication times come from the simulator's
WORK/sim/growth.tsv; verified sizes from ctwatch's SQLite database (WORK/db) and certspotter's state.json files.
"""
import base64
import bisect
import glob
import json
import os
import sqlite3
import sys
import time


def ctwatch_positions(work):
    db = f"{work}/db"
    if not os.path.exists(db):
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        rows = con.execute("SELECT hex(log_id), verified_size FROM logs").fetchall()
        con.close()
    except sqlite3.Error:
        return {}
    return {h.lower(): v for h, v in rows}


def certspotter_positions(work):
    out = {}
    for f in glob.glob(f"{work}/cs-state/logs/*/state.json"):
        name = os.path.basename(os.path.dirname(f))
        try:
            log_id = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).hex()
            state = json.load(open(f))
        except (ValueError, OSError):
            continue
        pos = state.get("verified_position") or {}
        out[log_id] = pos.get("size", 0)
    return out


def proc_status(work):
    """ctwatch's VmRSS (kB), RssAnon (kB) and Threads from /proc, or None before it runs / after it ends."""
    try:
        pid = open(f"{work}/ctwatch.pid").read().strip()
        fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
        return tuple(int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon", "Threads"))
    except (OSError, ValueError, KeyError):
        return None


def sample(work):
    with open(f"{work}/samples.tsv", "a") as f, open(f"{work}/proc.tsv", "a") as p:
        while True:
            now = int(time.time() * 1000)
            for monitor, positions in (("ctwatch", ctwatch_positions(work)),
                                       ("certspotter", certspotter_positions(work))):
                for log_id, size in positions.items():
                    f.write(f"{now}\t{monitor}\t{log_id}\t{size}\n")
            f.flush()
            for _ in range(10):  # /proc every 0.2 s: peaks are short
                st = proc_status(work)
                if st:
                    p.write(f"{int(time.time() * 1000)}\t" + "\t".join(map(str, st)) + "\n")
                time.sleep(0.2)
            p.flush()


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def load(work):
    logs = {}
    for line in open(f"{work}/sim/logs.tsv"):
        n, kind, cls, log_id, url = line.split("\t")
        logs[log_id] = {"n": int(n), "kind": kind, "class": cls, "times": [], "sizes": []}
    by_n = {l["n"]: l for l in logs.values()}
    for line in open(f"{work}/sim/growth.tsv"):
        t, n, size = (int(x) for x in line.split("\t"))
        l = by_n[n]
        if not l["sizes"] or size > l["sizes"][-1]:
            l["times"].append(t)
            l["sizes"].append(size)
    return logs, by_n


def lag(log, t, verified):
    """Seconds of growth not yet verified at time t."""
    k = bisect.bisect_right(log["times"], t) - 1
    if k < 0 or verified >= log["sizes"][k]:
        return 0.0
    j = bisect.bisect_right(log["sizes"], verified)  # first publication that includes entry `verified`
    return max(0.0, (t - log["times"][j]) / 1000)


def matching_templates(work, watch):
    names = [line.rstrip("\n").split("\t") for line in open(f"{work}/sim/templates.tsv")]
    def hit(name):
        name = name.lower().removeprefix("*.")
        return any(name == d or name.endswith("." + d) for d in watch)
    return [any(hit(n) for n in (t[1].split() if len(t) > 1 else [])) for t in names]


def expected_matches(matches, verified):
    full, rest = divmod(verified, len(matches))
    return full * sum(matches) + sum(matches[:rest])


def read_time(path):
    try:
        wall, user, sys_, rss = open(path).read().split()[-4:]
        return float(wall), float(user) + float(sys_), int(rss) / 1024
    except (OSError, ValueError):
        return None


def report(work):
    logs, _ = load(work)
    watch = [l.strip().lstrip(".") for l in open(f"{work}/watch.txt") if l.strip()]
    matches = matching_templates(work, watch)
    samples = {}
    by_minute = {}
    last = {}
    first_t = None
    for line in open(f"{work}/samples.tsv"):
        t, monitor, log_id, size = line.rstrip("\n").split("\t")
        if log_id not in logs:
            continue
        t, size = int(t), int(size)
        first_t = first_t if first_t is not None else t
        x = lag(logs[log_id], t, size)
        samples.setdefault((monitor, logs[log_id]["class"]), []).append(x)
        by_minute.setdefault((monitor, logs[log_id]["class"]), {}).setdefault((t - first_t) // 60000, []).append(x)
        last[(monitor, log_id)] = (t, size)
    served = {}
    for line in open(f"{work}/sim/served.tsv"):
        n, client, req, r429, r5xx, nbytes = line.rstrip("\n").split("\t")
        # certspotter 0.16 sends no User-Agent: the simulator calls it "unknown".
        s = served.setdefault("certspotter" if client == "unknown" else client, [0, 0, 0, 0])
        for i, v in enumerate((req, r429, r5xx, nbytes)):
            s[i] += int(v)
    print(f"{'monitor':<12} {'class':<8} {'logs':>4} {'lag_p50_s':>9} {'lag_p99_s':>9} {'lag_max_s':>9} "
          f"{'final_lag_max_s':>15} {'behind_at_end':>13}")
    for monitor in ("ctwatch", "certspotter"):
        for cls in ("hot", "rfc6962", "tiled"):
            lags = samples.get((monitor, cls))
            if not lags:
                continue
            finals = [lag(logs[i], *last[(monitor, i)]) for (m, i) in last if m == monitor and logs[i]["class"] == cls]
            behind = sum(1 for x in finals if x > 30)
            print(f"{monitor:<12} {cls:<8} {len(finals):>4} {pct(lags, 50):>9.1f} {pct(lags, 99):>9.1f} "
                  f"{max(lags):>9.1f} {max(finals):>15.1f} {behind:>13}")
    print()
    print(f"{'monitor':<12} {'class':<8} lag_p99_s per minute of the run")
    for (monitor, cls), minutes in sorted(by_minute.items()):
        row = " ".join(f"{pct(minutes[m], 99):>6.1f}" for m in sorted(minutes))
        print(f"{monitor:<12} {cls:<8} {row}")
    print()
    print(f"{'monitor':<12} {'cpu_%':>6} {'peak_rss_mb':>11} {'fetched_mb':>10} {'requests':>8} {'429s':>6} "
          f"{'5xx':>5} {'matches':>7} {'unique':>6} {'expected':>8}")
    for monitor, out in (("ctwatch", "ctwatch.out"), ("certspotter", None)):
        t = read_time(f"{work}/{monitor}.time")
        if t is None:
            continue
        wall, cpu, rss = t
        if out:
            tbs = [json.loads(l).get("tbs_sha256") for l in open(f"{work}/{out}") if '"tbs_sha256"' in l]
            reported, unique = len(tbs), len(set(tbs))
        else:
            files = glob.glob(f"{work}/cs-state/certs/*/*.v1.json")
            reported = unique = len({json.load(open(f))["tbs_sha256"] for f in files})
        final = (ctwatch_positions if monitor == "ctwatch" else certspotter_positions)(work)
        expected = sum(expected_matches(matches, size) for i, size in final.items() if i in logs)
        s = served.get(monitor, [0, 0, 0, 0])
        print(f"{monitor:<12} {100 * cpu / wall:>6.1f} {rss:>11.1f} {s[3] / 1e6:>10.1f} {s[0]:>8} {s[1]:>6} "
              f"{s[2]:>5} {reported:>7} {unique:>6} {expected:>8}")

    proc_summary(work)
    metrics_summary(work, logs)


def proc_summary(work):
    """ctwatch's resident memory and threads over the run, sampled from /proc every 0.2 s."""
    path = f"{work}/proc.tsv"
    if not os.path.exists(path):
        return
    rows = [tuple(map(int, line.split("\t")[1:])) for line in open(path) if line.count("\t") == 3]
    if not rows:
        return
    rss = [r[0] / 1024 for r in rows]
    anon = [r[1] / 1024 for r in rows]
    threads = [r[2] for r in rows]
    print()
    print(f"{'ctwatch /proc':<14} {'samples':>7} {'rss_p50_mb':>10} {'rss_p90_mb':>10} {'rss_max_mb':>10} "
          f"{'anon_max_mb':>11} {'threads_p50':>11} {'threads_max':>11}")
    print(f"{'':<14} {len(rows):>7} {pct(rss, 50):>10.1f} {pct(rss, 90):>10.1f} {max(rss):>10.1f} "
          f"{max(anon):>11.1f} {pct(threads, 50):>11} {max(threads):>11}")


def metrics_summary(work, logs):
    """ctwatch's /metrics just before the end: per class, its own lag and window, and the push-back it counted."""
    path = f"{work}/metrics.txt"
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    url_class = {}
    for line in open(f"{work}/sim/logs.tsv"):
        n, kind, cls, log_id, url = line.rstrip("\n").split("\t")
        url_class[url] = cls
    per = {}
    for line in open(path):
        if not line.startswith("ctwatch_log_") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels, value = rest.rsplit("}", 1)
        url = labels.split('log="', 1)[1].split('"', 1)[0]
        cls = url_class.get(url)
        if cls:
            per.setdefault(cls, {}).setdefault(name, []).append(float(value))
    print()
    print(f"{'ctwatch /metrics':<16} {'class':<8} {'lag_max_s':>9} {'window_max':>10} {'requests':>8} {'429s':>6} "
          f"{'5xx':>5} {'retries':>7}")
    for cls in ("hot", "rfc6962", "tiled"):
        m = per.get(cls)
        if not m:
            continue
        get = lambda k, f: f(m.get(k, [0]))
        print(f"{'':<16} {cls:<8} {get('ctwatch_log_lag_seconds', max):>9.1f} "
              f"{get('ctwatch_log_requests_in_flight_limit', max):>10.0f} {get('ctwatch_log_http_requests_total', sum):>8.0f} "
              f"{get('ctwatch_log_http_rate_limited_total', sum):>6.0f} {get('ctwatch_log_http_server_errors_total', sum):>5.0f} "
              f"{get('ctwatch_log_http_retries_total', sum):>7.0f}")


if __name__ == "__main__":
    {"sample": sample, "report": report}[sys.argv[1]](sys.argv[2])
