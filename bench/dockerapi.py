#!/usr/bin/python3
"""bench/dockerapi.py - dockerd-driven comparison: ballast vs dockerd's built-in local driver.

One process, one persistent HTTP/1.1 connection to dockerd's API socket (the
engine's own client library does the same). Every operation alternates
between the two drivers (A B A B ..., and the pair order flips every time), so
drift on a noisy machine hits both alike. Prints one JSON object per round on
stdout:

  {"section": "dockerd", "row": "volume_cycle"|"run_rm", "round": i,
   "a_ms": [...], "b_ms": [...][, "floor_ms": [...]]}

Rows:
  volume_cycle  POST /volumes/create, GET /volumes/NAME, DELETE /volumes/NAME
                (= docker volume create / inspect / rm) of a fresh name
  run_rm        POST /containers/create (Binds VOL:/data, VolumeDriver, network
                none), POST .../start, POST .../wait, DELETE /containers/ID?v=1
                (= docker run --rm -v VOL:/data IMAGE true) on a volume made
                once per driver before the clock starts

With --durable-dir, each volume_cycle pair is followed by two durable writes
of a small file in that directory (write a temporary file, fsync, rename,
fsync the directory: what one catalog commit costs), timed as floor_ms. Two
of them are the least a driver that keeps its volumes on disk spends per
create and remove, beyond the built-in driver's work.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=180):
        super().__init__("docker", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Docker:
    def __init__(self, path, api):
        self.conn = UnixHTTPConnection(path)
        self.prefix = "/v" + api if api else ""
        self.reconnects = 0

    def req(self, method, url, body=None, ok=(200, 201, 204)):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, self.prefix + url, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # dockerd closed an idle kept-alive connection: reconnect once
                self.conn.close()
                self.reconnects += 1
                if attempt:
                    raise
        if resp.status not in ok:
            raise RuntimeError("%s %s: HTTP %d: %s" % (method, url, resp.status, raw[:300].decode(errors="replace")))
        return json.loads(raw) if raw else None


def volume_cycle(d, driver, name):
    t = time.perf_counter()
    d.req("POST", "/volumes/create", {"Name": name, "Driver": driver})
    v = d.req("GET", "/volumes/" + name)
    if v.get("Driver") != driver:
        raise RuntimeError("volume %s has driver %s, not %s" % (name, v.get("Driver"), driver))
    d.req("DELETE", "/volumes/" + name)
    return (time.perf_counter() - t) * 1000.0


def durable_writes(path, n=2):
    """n durable replacements of path/floor.json, as a catalog commit makes
    them; the time in ms."""
    t = time.perf_counter()
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(n):
            tmp = os.path.join(path, "floor.json.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, (json.dumps({"name": "floor", "state": "ready", "n": i}) + " " * 200).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(path, "floor.json"))
            os.fsync(dfd)
    finally:
        os.close(dfd)
    return (time.perf_counter() - t) * 1000.0


def run_rm(d, driver, vol, image):
    t = time.perf_counter()
    c = d.req("POST", "/containers/create", {
        "Image": image, "Cmd": ["true"], "NetworkDisabled": True,
        "HostConfig": {"Binds": [vol + ":/data"], "VolumeDriver": driver, "NetworkMode": "none"},
    })
    cid = c["Id"]
    try:
        d.req("POST", "/containers/%s/start" % cid)
        w = d.req("POST", "/containers/%s/wait" % cid)
        if w.get("StatusCode") != 0:
            raise RuntimeError("container on %s exited with %s" % (driver, w))
    finally:
        d.req("DELETE", "/containers/%s?v=1&force=1" % cid)
    return (time.perf_counter() - t) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True, help="dockerd's API socket")
    ap.add_argument("--api", default="", help="API version to pin (e.g. 1.41)")
    ap.add_argument("--plugin", required=True, help="ballast's plugin name (A)")
    ap.add_argument("--builtin", default="local", help="the reference driver (B)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=30, help="volume cycles per driver per round")
    ap.add_argument("--runs", type=int, default=8, help="container runs per driver per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed operations per driver first")
    ap.add_argument("--image", default="local/busybox")
    ap.add_argument("--tag", default="bench")
    ap.add_argument("--durable-dir", default="", help="where to time the floor's two durable writes")
    a = ap.parse_args()

    d = Docker(a.socket, a.api)
    drivers = {"a": a.plugin, "b": a.builtin}
    seq = [0]

    def fresh(k):
        seq[0] += 1
        return "%s-%s-%d" % (a.tag, k, seq[0])

    # One volume per driver for the container runs, made before any clock.
    runvol = {}
    for k, drv in drivers.items():
        runvol[k] = "%s-run-%s" % (a.tag, k)
        d.req("POST", "/volumes/create", {"Name": runvol[k], "Driver": drv})
    try:
        for k, drv in drivers.items():
            for _ in range(a.warmup):
                volume_cycle(d, drv, fresh(k))
                run_rm(d, drv, runvol[k], a.image)
        for r in range(a.rounds):
            for row, n, fn in (("volume_cycle", a.cycles, lambda k: volume_cycle(d, drivers[k], fresh(k))),
                               ("run_rm", a.runs, lambda k: run_rm(d, drivers[k], runvol[k], a.image))):
                ms = {"a": [], "b": [], "floor": []}
                for i in range(n):
                    order = ("a", "b") if (i + r) % 2 == 0 else ("b", "a")
                    for k in order:
                        ms[k].append(fn(k))
                    if row == "volume_cycle" and a.durable_dir:
                        ms["floor"].append(durable_writes(a.durable_dir))
                out = {"section": "dockerd", "row": row, "round": r, "a": drivers["a"], "b": drivers["b"],
                       "a_ms": ms["a"], "b_ms": ms["b"]}
                if ms["floor"]:
                    out["floor_ms"] = ms["floor"]
                print(json.dumps(out), flush=True)
    finally:
        # a fresh connection: an interrupted request leaves the old one unusable
        d.conn.close()
        for k in drivers:
            try:
                d.req("DELETE", "/volumes/" + runvol[k], ok=(204, 404))
            except Exception as e:  # cleanup is best effort; run.sh sweeps after us
                print("dockerapi.py: cleanup of %s: %s" % (runvol[k], e), file=sys.stderr)
    if d.reconnects:
        print("dockerapi.py: %d reconnects" % d.reconnects, file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
