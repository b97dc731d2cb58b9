#!/usr/bin/env python3
"""The driver of `make soak` (scripts/soak.sh starts the server and calls this).

While wrk keeps POSTing a multipart PNG to /predict (the default model,
always its latest version) at many connections, this script, in cycles:
submits training jobs that publish a new version of that model, cancels a
queued job, a running job and (racily) a finished one, checks that the
default path serves the new version, deletes older versions through the API
while a racer thread predicts on exactly those versions, and publishes
versions the way another process would (a file linked into the store, for
the watcher) and removes files behind the server's back. At the end it
waits for every job to reach a final state and checks:

  - wrk: no socket error of any kind (connect, read, write, timeout) and
    every response 200 (the default path must never fail, 4xx included);
  - no 5xx anywhere (wrk, this driver, and the server's own /metrics);
  - every driver request answered with a status expected for it; 4xx that
    a deliberate race explains (predicting on a version just deleted,
    cancelling a job that already ended, requests without or with a wrong
    token) are counted apart, by reason;
  - every job succeeded, failed or cancelled;
  - the server's VmRSS at the end within a margin of its VmRSS after the
    warm-up: +10 MB, or +10% when that is more (--rss-margin-mb,
    --rss-margin-pct). Both are measured idle, after wrk and the jobs
    stopped. Measured here: +0.5 to +1 MB over 30-60 s. What grows by
    design is the job list (finished jobs stay listed, in memory and in the
    journal), so a much longer SOAK_SECONDS may need a wider margin.

Python 3 standard library only. Exit status 0 when all hold, 1 otherwise.
"""
import argparse
import collections
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time

MODEL = "digits"  # the server's default model: what wrk's /predict hits
FINAL = {"succeeded", "failed", "cancelled"}
# Why each deliberate 4xx happens (printed with the counts).
WHY = {
    "predict pinned version 404": "the racer predicted on ?version=N just after N was deleted",
    "predict deleted version 404": "a predict on ?version=N right after DELETE of N returned",
    "cancel finished job 409": "DELETE /jobs/{id} on a job that had already succeeded",
    "delete without token 401": "DELETE /jobs/{id} without Authorization, on purpose",
    "delete with wrong token 403": "DELETE /jobs/{id} with a wrong bearer token, on purpose",
}


def tiny_spec(name, epochs, seed):
    """A 12,730-parameter network on MNIST: one epoch takes well under a second."""
    return {"name": name, "dataset": "mnist",
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"},
                       {"type": "dense", "units": 10, "activation": "softmax"}],
            "optimizer": {"type": "adam", "learning_rate": 0.003},
            "epochs": epochs, "batch_size": 256, "seed": seed}


class Client:
    """One keep-alive connection per thread; every answer is tallied under a
    label, and one outside that label's expected statuses is a violation."""

    def __init__(self, host, port, token, tally):
        self.host, self.port, self.token, self.tally = host, port, token, tally
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return c

    def call(self, label, method, path, body=None, ctype=None, auth=True, expect=(200,),
             racy=()):
        """racy: statuses a deliberate race explains; counted apart, not failures."""
        headers = {}
        if ctype:
            headers["Content-Type"] = ctype
        if auth is True and self.token:
            headers["Authorization"] = "Bearer " + self.token
        elif isinstance(auth, str):
            headers["Authorization"] = auth
        for attempt in (0, 1):
            try:
                c = self.conn()
                c.request(method, path, body=body, headers=headers)
                resp = c.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                self.local.c = None
                # A keep-alive connection the server closed while idle is
                # retried once on a fresh one; anything else is an error.
                if attempt == 0 and isinstance(e, (http.client.RemoteDisconnected,
                                                   ConnectionResetError, BrokenPipeError)):
                    continue
                self.tally.error(label, method, path, repr(e))
                return None, None
        self.tally.status(label, method, path, resp.status, expect, racy, data)
        if resp.getheader("Connection", "").lower() == "close":
            self.local.c = None
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, data


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_label = collections.defaultdict(collections.Counter)
        self.racy = collections.Counter()       # "label status" -> n
        self.statuses = collections.Counter()   # every driver status
        self.violations = []
        self.conn_errors = 0

    def status(self, label, method, path, status, expect, racy, data):
        with self.lock:
            self.by_label[label][status] += 1
            self.statuses[status] += 1
            if status in racy and status not in expect:
                self.racy["%s %d" % (label, status)] += 1
            elif status not in expect:
                self.violations.append("%s: %s %s answered %d (expected %s): %s" % (
                    label, method, path, status, "/".join(map(str, expect)),
                    data[:200].decode("utf-8", "replace")))
            if status >= 500:
                self.violations.append("%s: %s %s answered %d" % (label, method, path, status))

    def error(self, label, method, path, err):
        with self.lock:
            self.conn_errors += 1
            self.violations.append("%s: %s %s: connection error %s" % (label, method, path, err))

    def fail(self, msg):
        with self.lock:
            self.violations.append(msg)


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


class Soak:
    def __init__(self, a):
        self.a = a
        self.tally = Tally()
        self.cl = Client("127.0.0.1", a.port, a.token, self.tally)
        self.jobs = []                 # every job id this driver created
        self.pinned = None             # the version the racer predicts on
        self.stop = threading.Event()
        self.png = open(os.path.join(a.png_dir, sorted(os.listdir(a.png_dir))[0]), "rb").read()
        self.counts = collections.Counter()  # what the cycles did
        self.rss_trend = []
        self.seed = 1

    # -- small helpers --
    def multipart(self):
        b = "----soakdriver1151998"
        body = (("--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
                 "Content-Type: image/png\r\n\r\n" % b).encode() + self.png +
                ("\r\n--%s--\r\n" % b).encode())
        return body, "multipart/form-data; boundary=" + b

    def versions(self):
        st, o = self.cl.call("models", "GET", "/models/" + MODEL)
        return o["versions"] if st == 200 else []

    def predict(self, label, query="", expect=(200,), racy=()):
        body, ctype = self.multipart()
        return self.cl.call(label, "POST", "/predict" + query, body, ctype, expect=expect,
                            racy=racy)

    def submit(self, name, epochs):
        self.seed += 1
        st, o = self.cl.call("train", "POST", "/train", json.dumps(tiny_spec(name, epochs, self.seed)),
                             "application/json", expect=(202,))
        if st != 202:
            return None
        self.jobs.append(o["id"])
        return o["id"]

    def job(self, jid):
        st, o = self.cl.call("job status", "GET", "/jobs/%d" % jid)
        return o if st == 200 else None

    def wait_job(self, jid, want, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            o = self.job(jid)
            if o and o["status"] in want:
                return o
            time.sleep(0.05)
        self.tally.fail("job %d not %s within %d s" % (jid, "/".join(want), timeout))
        return None

    def check_default_serves(self, version, why):
        """The default path (no model, no version) must answer from the latest."""
        st, o = self.predict("predict default")
        if st == 200 and o["version"] != version:
            self.tally.fail("after %s, /predict answered from version %s, not %d" %
                            (why, o["version"], version))

    # -- the racer: predicts on the version about to be deleted --
    def racer(self):
        while not self.stop.is_set():
            v = self.pinned
            if v is None:
                time.sleep(0.01)
                continue
            # 200 while the version is served, 404 once it is deleted.
            self.predict("predict pinned version", "?model=%s&version=%d" % (MODEL, v),
                         expect=(200,), racy=(404,))

    def sampler(self):
        while not self.stop.wait(1.0):
            try:
                self.rss_trend.append(vmrss_kb(self.a.pid))
            except (OSError, RuntimeError):
                pass

    # -- one cycle of jobs and version swaps --
    def cycle(self, n):
        # A long job (cancelled while running), a tiny one that publishes a
        # new version, and one cancelled while it still waits in the queue
        # (one training at a time: both wait behind the long one).
        long_id = self.submit("soak-long", 200)
        tiny_id = self.submit(MODEL, 1)
        queued_id = self.submit(MODEL, 1)
        if None in (long_id, tiny_id, queued_id):
            return
        self.cl.call("cancel queued", "DELETE", "/jobs/%d" % queued_id)
        self.counts["cancelled while queued"] += 1
        o = self.wait_job(long_id, {"running"} | FINAL)
        if o and o["status"] == "running":
            time.sleep(0.2)  # a few batches
            self.cl.call("cancel running", "DELETE", "/jobs/%d" % long_id)
            self.counts["cancelled while running"] += 1
        o = self.wait_job(tiny_id, FINAL)
        if not o or o["status"] != "succeeded":
            self.tally.fail("job %d: %s" % (tiny_id, o and (o["status"], o.get("error"))))
            return
        published = o["result"]["version"]
        self.counts["versions published by training"] += 1
        # Cancelling a job that already ended: 409, on purpose.
        self.cl.call("cancel finished job", "DELETE", "/jobs/%d" % tiny_id, expect=(),
                     racy=(409,))
        # The token guards training and deletes even under load.
        self.cl.call("delete without token", "DELETE", "/jobs/%d" % tiny_id, auth=False,
                     expect=(), racy=(401,))
        self.cl.call("delete with wrong token", "DELETE", "/jobs/%d" % tiny_id,
                     auth="Bearer not-the-token", expect=(), racy=(403,))
        vs = self.versions()
        if not vs or vs[-1] != published:
            self.tally.fail("job %d published v%d but /models/%s lists %s" %
                            (tiny_id, published, MODEL, vs))
        self.check_default_serves(published, "training published v%d" % published)

        if n % 2 == 1:
            # Publish as another process would: a complete file linked in
            # under the next free number (link fails rather than replace).
            src = os.path.join(self.a.store, MODEL, "v%d.mnm" % published)
            tmp = os.path.join(self.a.store, MODEL, ".soak-%d.tmp" % n)
            shutil.copyfile(src, tmp)
            v = max(vs + [published]) + 1
            while True:
                try:
                    os.link(tmp, os.path.join(self.a.store, MODEL, "v%d.mnm" % v))
                    break
                except FileExistsError:
                    v += 1
            os.unlink(tmp)
            end = time.time() + 10 + 2 * self.a.watch_interval
            while time.time() < end and self.versions()[-1:] != [v]:
                time.sleep(0.1)
            if self.versions()[-1:] != [v]:
                self.tally.fail("v%d dropped into the store was not picked up" % v)
            else:
                self.counts["versions published by file (watcher)"] += 1
                self.check_default_serves(v, "the watcher picked up v%d" % v)

        # Only the newest version stays. The one it just replaced (which wrk
        # was predicting on a moment ago) is deleted by API while the racer
        # predicts on it; every other cycle the oldest one goes by removing
        # its file, for the watcher to notice; the rest by API.
        vs = self.versions()
        old = vs[:-1]
        by_file = old[0] if n % 2 == 1 and len(old) > 1 else None
        for i, v in enumerate(reversed(old)):
            if v == by_file:
                continue
            if i == 0:
                self.pinned = v
                time.sleep(0.05)
            self.cl.call("delete version", "DELETE", "/models/%s/versions/%d" % (MODEL, v))
            self.counts["versions deleted by API"] += 1
            if i == 0:
                self.pinned = None
                # Right after the delete: 404, never the version, never 5xx.
                self.predict("predict deleted version", "?model=%s&version=%d" % (MODEL, v),
                             expect=(), racy=(404,))
        if by_file is not None:
            v = by_file
            os.unlink(os.path.join(self.a.store, MODEL, "v%d.mnm" % v))
            end = time.time() + 10 + 2 * self.a.watch_interval
            while time.time() < end and v in self.versions():
                time.sleep(0.1)
            if v in self.versions():
                self.tally.fail("v%d removed from the store is still served" % v)
            else:
                self.counts["versions removed by file (watcher)"] += 1
        vs = self.versions()
        if vs:
            self.check_default_serves(vs[-1], "deleting old versions")

    def run_wrk(self, seconds):
        env = dict(os.environ, PNG_DIR=self.a.png_dir, WRK_REPORT="bench/report.lua",
                   PREDICT_PATH="/predict")
        return subprocess.Popen(
            ["wrk", "-t2", "-c%d" % self.a.connections, "-d%ds" % seconds, "--timeout", "10s",
             "-s", "scripts/soak.lua", "http://127.0.0.1:%d/predict" % self.a.port],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wrk_result(self, p):
        out, _ = p.communicate()
        for line in out.splitlines():
            if line.startswith("{"):
                return json.loads(line)
        self.tally.fail("wrk printed no summary:\n" + out)
        return None

    def main(self):
        a = self.a
        # Warm-up: the same load, racer and cycles (two at least), so the
        # dataset cache, the models' run buffers and malloc's per-thread
        # arenas have grown before the first measure.
        racer = threading.Thread(target=self.racer, daemon=True)
        racer.start()
        t0 = time.time()
        w = self.run_wrk(a.warmup)
        n = 0
        while n < 2 or time.time() - t0 < a.warmup - 2:
            self.cycle(-1 - n)
            n += 1
        warm = self.wrk_result(w)
        time.sleep(1.0)
        rss_before = vmrss_kb(a.pid)
        warm_counts = dict(self.counts)
        self.counts.clear()

        threading.Thread(target=self.sampler, daemon=True).start()
        t0 = time.time()
        w = self.run_wrk(a.seconds)
        n = 1
        # New cycles start while wrk has time left for them to finish under load.
        while time.time() - t0 < a.seconds - 6:
            self.cycle(n)
            n += 1
        wrk = self.wrk_result(w)
        self.stop.set()
        racer.join()
        cycles = n - 1

        # Every job final, then the figures.
        end = time.time() + 120
        while True:
            st, o = self.cl.call("jobs", "GET", "/jobs")
            jobs = o["jobs"] if st == 200 and isinstance(o, dict) else (o if st == 200 else [])
            if all(j["status"] in FINAL for j in jobs) or time.time() > end:
                break
            time.sleep(0.2)
        by_state = collections.Counter(j["status"] for j in jobs)
        for j in jobs:
            if j["status"] not in FINAL:
                self.tally.fail("job %d ended the soak %s" % (j["id"], j["status"]))
        missing = set(self.jobs) - {j["id"] for j in jobs}
        if missing:
            self.tally.fail("jobs missing from GET /jobs: %s" % sorted(missing))
        time.sleep(1.0)
        rss_after = vmrss_kb(a.pid)

        # The server's own count of what it answered, by status.
        server_5xx = 0
        st, text = self.cl.call("metrics", "GET", "/metrics")
        server_statuses = collections.Counter()
        for line in (text.decode() if isinstance(text, bytes) else "").splitlines():
            if line.startswith("mnistd_http_requests_total{"):
                status = line.split('status="')[1].split('"')[0]
                server_statuses[status] += int(line.rsplit(" ", 1)[1])
        server_5xx = sum(v for k, v in server_statuses.items() if k.startswith("5"))

        limit = rss_before + max(a.rss_margin_mb * 1024, rss_before * a.rss_margin_pct // 100)
        if wrk:
            e = wrk["errors"]
            if e["connect"] or e["read"] or e["write"] or e["timeout"]:
                self.tally.fail("wrk socket errors: %s" % e)
            bad = {k: v for k, v in wrk["statuses"].items() if k != "200"}
            if bad or e["status"]:
                self.tally.fail("wrk (default model, latest version) got non-200: %s" % bad)
            if wrk["requests"] == 0:
                self.tally.fail("wrk made no requests")
        if server_5xx:
            self.tally.fail("the server counted %d 5xx answers (/metrics)" % server_5xx)
        if rss_after > limit:
            self.tally.fail("VmRSS grew from %d kB to %d kB, over the limit %d kB" %
                            (rss_before, rss_after, limit))
        if cycles < 1:
            self.tally.fail("no complete cycle of jobs and version swaps ran")

        report = {
            "seconds": a.seconds, "connections": a.connections, "cycles": cycles,
            "wrk": wrk, "warmup_wrk_requests": warm and warm["requests"],
            "driver": {"requests": sum(self.tally.statuses.values()),
                       "connection_errors": self.tally.conn_errors,
                       "statuses": {str(k): v for k, v in sorted(self.tally.statuses.items())},
                       "explained_4xx": dict(sorted(self.tally.racy.items())),
                       "by_label": {k: {str(s): n for s, n in sorted(v.items())}
                                    for k, v in sorted(self.tally.by_label.items())}},
            "server_statuses": dict(sorted(server_statuses.items())), "server_5xx": server_5xx,
            "actions": dict(self.counts), "warmup_actions": warm_counts,
            "jobs": dict(sorted(by_state.items())), "jobs_total": len(jobs),
            "rss_kb": {"after_warmup": rss_before, "end": rss_after, "limit": limit,
                       "margin": "max(%d MB, %d%%)" % (a.rss_margin_mb, a.rss_margin_pct),
                       "sampled_min": min(self.rss_trend, default=None),
                       "sampled_max": max(self.rss_trend, default=None)},
            "violations": self.tally.violations,
        }
        if a.json:
            with open(a.json, "w") as f:
                json.dump(report, f, indent=1)
        self.print_report(report)
        return 0 if not self.tally.violations else 1

    def print_report(self, r):
        w = r["wrk"] or {}
        p = print
        p("soak: %d s, wrk %d connections on POST /predict (default model, latest version), "
          "%d cycles of jobs and version swaps" % (r["seconds"], r["connections"], r["cycles"]))
        if w:
            p("  wrk: %d requests (%.0f/s), p50 %.2f ms, p99 %.2f ms, max %.1f ms" %
              (w["requests"], w["rps"], w["lat_p50_ms"], w["lat_p99_ms"], w["lat_max_ms"]))
            p("  wrk errors: %s" % w["errors"])
            p("  wrk statuses: %s" % w["statuses"])
        d = r["driver"]
        p("  warm-up: %s wrk requests; %s" % (r["warmup_wrk_requests"], r["warmup_actions"]))
        p("  driver (warm-up included): %d requests, %d connection errors, statuses %s" %
          (d["requests"], d["connection_errors"], d["statuses"]))
        p("  explained 4xx (deliberate races and token checks):")
        for k, n in d["explained_4xx"].items():
            p("    %6d  %s: %s" % (n, k, WHY.get(k, "?")))
        pin = d["by_label"].get("predict pinned version", {})
        p("  racer on the version being deleted: %s answered 200 before the delete, %s 404 after" %
          (pin.get("200", 0), pin.get("404", 0)))
        p("  server /metrics, all requests by status: %s (5xx: %d)" %
          (r["server_statuses"], r["server_5xx"]))
        p("  actions after warm-up: %s" % r["actions"])
        p("  jobs (warm-up included): %d, by final state %s" % (r["jobs_total"], r["jobs"]))
        k = r["rss_kb"]
        p("  VmRSS: %.1f MB after warm-up, %.1f MB at the end (limit %.1f MB = %s; "
          "sampled during the run %s..%s kB)" % (k["after_warmup"] / 1024, k["end"] / 1024,
                                                 k["limit"] / 1024, k["margin"],
                                                 k["sampled_min"], k["sampled_max"]))
        if r["violations"]:
            p("soak: FAILED, %d violation(s):" % len(r["violations"]))
            for v in r["violations"][:50]:
                p("  - " + v)
        else:
            p("soak: OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server's pid (VmRSS)")
    ap.add_argument("--token", required=True)
    ap.add_argument("--store", required=True, help="the server's model store")
    ap.add_argument("--png-dir", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--watch-interval", type=int, default=1)
    ap.add_argument("--rss-margin-mb", type=int, default=10)
    ap.add_argument("--rss-margin-pct", type=int, default=10)
    ap.add_argument("--json", help="also write the report here")
    a = ap.parse_args()
    if a.seconds < 15:
        ap.error("--seconds must be at least 15 (a cycle needs time to run under load)")
    sys.exit(Soak(a).main())


if __name__ == "__main__":
    main()
