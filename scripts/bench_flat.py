#!/usr/bin/env python3
"""Redis CPU of flashsale's background loops, for scripts/bench's flat-cost part.

  bench_flat.py snapshot REDIS_URL OUT.json   INFO commandstats + INFO cpu, now
  bench_flat.py delta BEFORE.json AFTER.json OUT.json
      per-second Redis CPU between two snapshots taken while no request came:
      only the service's loops ran. Each command's `usec` (the time Redis spent
      executing it, from INFO commandstats) is attributed to the loop that sends
      it; `redis_cpu` is used_cpu_user + used_cpu_sys (INFO cpu) of the whole
      server, which adds its own housekeeping (serverCron, AOF).
  bench_flat.py report OUT_DIR                prints the table from the JSON files

Attribution (with no request coming, nothing else sends these):
  relay:  xreadgroup (blocking reads of every live outbox), xlen + xpending
          (backlog, per live stream, once a second), xinfo consumers + exists
          (gone relays, per live stream, every claim-idle period), xclaim, xgroup
  expiry: evalsha (release_orders.lua per live sale every 200 ms; join_outbox,
          retire and drop_retired when they run), hget (retirement's look at
          each live one's end, once a second)
Redis also counts the commands a script runs under their own names (time,
zrangebyscore, ...): they are inside evalsha's time, so no group adds them.
  shared: smembers (the live registry, read by the relay, the expiry task and
          retirement), set (the relay's heartbeat and the expiry task's turn)
"""
import json
import subprocess
import sys
import time

RELAY = ("xreadgroup", "xlen", "xpending", "xautoclaim", "xinfo|consumers", "xinfo", "xclaim", "exists",
         "xgroup|create", "xgroup")
EXPIRY = ("evalsha", "eval", "hget")
SHARED = ("smembers", "set")


def info(url, section):
    out = subprocess.run(["redis-cli", "-u", url, "info", section], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line and not line.startswith("#")]


def snapshot(url, path):
    commands = {}
    for line in info(url, "commandstats"):
        name, fields = line.split(":", 1)
        values = dict(kv.split("=") for kv in fields.split(","))
        commands[name.removeprefix("cmdstat_")] = {"calls": int(values["calls"]), "usec": int(values["usec"])}
    cpu = dict(line.split(":", 1) for line in info(url, "cpu"))
    json.dump({"at": time.time(), "commands": commands,
               "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])}, open(path, "w"))


def delta(before_path, after_path, path):
    before, after = json.load(open(before_path)), json.load(open(after_path))
    secs = after["at"] - before["at"]
    per_command = {}
    for name, a in after["commands"].items():
        b = before["commands"].get(name, {"calls": 0, "usec": 0})
        calls, usec = a["calls"] - b["calls"], a["usec"] - b["usec"]
        if calls:
            per_command[name] = {"calls_per_s": round(calls / secs, 1), "usec_per_s": round(usec / secs, 1)}
    group = lambda names: round(sum(v["usec_per_s"] for k, v in per_command.items() if k in names), 1)
    json.dump({"seconds": round(secs, 1), "relay_usec_per_s": group(RELAY), "expiry_usec_per_s": group(EXPIRY),
               "shared_usec_per_s": group(SHARED),
               "redis_cpu_ms_per_s": round((after["cpu_s"] - before["cpu_s"]) * 1000 / secs, 2),
               "commands": per_command}, open(path, "w"))


def report(out):
    phases = [("10 live", "flat_before"), ("2,010 live (before they end)", "flat_live"),
              ("10 live + 2,000 retired", "flat_after")]
    print("\nFlat costs: the relay's and the expiry task's Redis work per second while no request comes")
    print("(INFO commandstats usec per second, attributed by command; Redis CPU from INFO cpu, whole server),")
    print("and coupon-issue req/s on a live campaign (wrk)")
    print(f"{'phase':<32} {'relay us/s':>11} {'expiry us/s':>12} {'shared us/s':>12} {'redis CPU ms/s':>15} "
          f"{'issue req/s':>12} {'p99 ms':>7}")
    for label, name in phases:
        try:
            d = json.load(open(f"{out}/{name}.json"))
        except FileNotFoundError:
            continue
        try:
            w = json.load(open(f"{out}/{name}_wrk.json"))
            rps, p99 = f"{w['rps']:.0f}", f"{w['p99_ms']:.2f}"
        except FileNotFoundError:
            rps, p99 = "-", "-"
        print(f"{label:<32} {d['relay_usec_per_s']:>11} {d['expiry_usec_per_s']:>12} {d['shared_usec_per_s']:>12} "
              f"{d['redis_cpu_ms_per_s']:>15} {rps:>12} {p99:>7}")
    for label, name in phases:
        try:
            d = json.load(open(f"{out}/{name}.json"))
        except FileNotFoundError:
            continue
        top = sorted(d["commands"].items(), key=lambda kv: -kv[1]["usec_per_s"])[:6]
        print(f"  {label}: " + ", ".join(f"{k} {v['calls_per_s']}/s {v['usec_per_s']} us/s" for k, v in top))


if __name__ == "__main__":
    {"snapshot": snapshot, "delta": delta, "report": report}[sys.argv[1]](*sys.argv[2:])
