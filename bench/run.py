#!/usr/bin/env python3
"""`make bench`: mnistd and its peers measured in one run on the same cores,
printed as ratios (the machine is shared and noisy: absolute times mean
little, ratios measured together do). Writes bench/results/latest.json and
bench/results/latest.md.

  python3 bench/run.py [--quick] [--only train,serve,footprint]

Both sides run with OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE and MNISTD_KERNEL
unset: mnistd chooses its kernel from the CPU's features (core/blas.c) and
PyTorch's libraries choose theirs (the environment may force Haswell, which
halves the GEMM peak); tests and CI keep the environment as it is. The
table names the CPU, its instruction set and the kernel mnistd ran.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
MNISTD = os.path.join(ROOT, "build", "mnistd")
CORE = os.path.join(ROOT, "build", "mnistd-bench")
DATA = os.path.abspath(os.environ.get("DATA_DIR", os.path.join(ROOT, "data")))
PY = "/usr/bin/python3"  # Debian's, where python3-torch lives
THREADS = 2              # the cores both sides get
SETTLE_S = 20            # seconds of quiet before the serving runs (bench_serving says why)

# net -> (title, epochs, PyTorch CPU s/epoch and H100 s/epoch from the issue, target ratio).
# Seconds per epoch are medians of the epochs after the first: the CNNs run
# 2 epochs (PyTorch needs minutes for each here), the MLPs 3.
NETS = [
    ("mlp64", "784-64-10, Adam, batch 32", 3, 0.51, 2.39, 0.5),
    ("mlp50-50", "784-50-50-10, Adam, batch 32", 3, 0.59, 3.46, 0.5),
    ("mlp20-40-20", "784-20-40-20-10, Adam, batch 128", 3, 0.21, None, 0.5),
    ("mlp16-sigmoid", "784-16-10 sigmoid, SGD 0.1, batch 32", 3, None, None, None),
    ("cnn-basic", "MNISTBasicCNN (24,186 params), Adam, batch 32", 2, 8.4, 5.64, 1.0),
    ("cnn-basic-b128", "MNISTBasicCNN, Adam, batch 128", 2, None, None, None),
    ("cnn-tutorial", "Conv 64 k2 + MaxPool + Dense, Adam, batch 32", 2, 18.4, 3.64, 0.15),
]


def env_both():
    """The environment of every measured command: each side picks its own kernel."""
    e = dict(os.environ)
    e.pop("MNISTD_KERNEL", None)
    e.pop("OPENBLAS_CORETYPE", None)
    e.pop("OPENBLAS_L2_SIZE", None)
    return e


def run_json(cmd, env, log):
    """Runs cmd, keeps its stderr in log, returns its last stdout line as JSON."""
    print("  $ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    log.write(p.stderr)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-400:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0, data=None, headers=None):
    """Polls url until it answers 200; returns the seconds it took."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            req = urllib.request.Request(url, data=data, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- 1, 2, 3: training, compute efficiency, inference in process ----

def bench_training(quick, log, scratch):
    env = env_both()
    out = {}
    gemm = {str(t): run_json([CORE, "gemm"], dict(env, MNISTD_BLAS_THREADS=str(t)), log)
            for t in (1, THREADS)}
    out["gemm"] = gemm
    peak = max(g["gflops_1024"] for g in gemm.values())
    peak = max(peak, max(g["gflops_2048"] for g in gemm.values()))
    out["gemm_peak_gflops"] = peak
    nets = {}
    for name, title, epochs, *_ in NETS:
        if quick:
            epochs = 2
        spec = os.path.join(BENCH, "specs", name + ".json")
        m = run_json([CORE, "train", spec, "--data", DATA, "--epochs", str(epochs),
                      "--threads", str(THREADS)], env, log)
        save = ["--save", os.path.join(scratch, "mlp64.pt")] if name == "mlp64" else []
        torch_runs = [run_json([PY, os.path.join(BENCH, "torch_peer.py"), "--net", name,
                                "--epochs", str(epochs), "--threads", str(THREADS),
                                "--data", DATA] + save, env, log)]
        if not name.startswith("cnn"):
            # torch on one thread is faster at these sizes here: compare with its best
            torch_runs.append(run_json([PY, os.path.join(BENCH, "torch_peer.py"), "--net", name,
                                        "--epochs", str(epochs), "--threads", "1",
                                        "--data", DATA], env, log))
        t = min(torch_runs, key=lambda r: r["sec_per_epoch"])
        m["train_gflops_fraction_of_peak"] = m["train_gflops"] / peak
        t["train_gflops"] = m["train_flops_per_sample"] * 60000 / t["sec_per_epoch"] / 1e9
        t["train_gflops_fraction_of_peak"] = t["train_gflops"] / peak
        nets[name] = {"title": title, "mnistd": m, "pytorch": t,
                      "pytorch_all": torch_runs,
                      "ratio_epoch": m["sec_per_epoch"] / t["sec_per_epoch"],
                      "ratio_b1": m["infer_b1_median_us"] / t["infer_b1_median_us"],
                      "ratio_throughput": m["infer_samples_per_s"] / t["infer_samples_per_s"]}
        print(f"  {name}: mnistd {m['sec_per_epoch']:.3f} s/epoch, pytorch "
              f"{t['sec_per_epoch']:.3f}: ratio {nets[name]['ratio_epoch']:.2f}", file=sys.stderr)
    out["nets"] = nets
    return out


# ---- 4: serving ----

def make_pngs(port, dest, n=16):
    os.makedirs(dest, exist_ok=True)
    for i in range(n):
        url = f"http://127.0.0.1:{port}/datasets/fashion-mnist/samples/{i}?split=test"
        with urllib.request.urlopen(url) as r, open(os.path.join(dest, f"{i:02d}.png"), "wb") as f:
            f.write(r.read())


def wrk(url, script, env, duration, conns=16):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", script, url]
    p = subprocess.run(cmd, env=env, cwd=BENCH, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_serving(quick, log, scratch):
    duration = 5 if quick else 10
    env = env_both()
    # Right after the PyTorch runs free their memory this VM stalls now and
    # then for a while: mnistd's p99 under wrk was 10-50 ms straight after
    # the training benchmarks and 0.5-1.8 ms after 20 s of quiet, while the
    # server's own time per request stayed under 0.1 ms (its log's "ms").
    time.sleep(SETTLE_S)
    store = os.path.join(scratch, "store")
    # the served model: the bench's 784-64-10, trained one epoch into a scratch store
    run_json([MNISTD, "train", os.path.join(BENCH, "specs", "mlp64.json"), "--epochs", "1",
              "--models", store, "--data", DATA], env, log)
    port = free_port()
    srv = subprocess.Popen([MNISTD, "serve", "--port", str(port), "--models", store, "--data", DATA],
                           env=env, stdout=subprocess.DEVNULL, stderr=log)
    pngs = os.path.join(scratch, "pngs")
    wenv = dict(env, PNG_DIR=pngs, WRK_REPORT=os.path.join(BENCH, "report.lua"))
    out = {"duration_s": duration, "connections": 16}
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/health/ready")
        make_pngs(port, pngs)
        path = "/predict?model=bench-mlp64"
        out["mnistd"] = wrk(f"http://127.0.0.1:{port}{path}", "predict.lua",
                            dict(wenv, PREDICT_PATH=path), duration)
        pixels = [round(v / 255, 6) for v in _png_pixels(port, 0)]
        body = {"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": pixels}]}
        v2 = os.path.join(scratch, "v2.json")
        with open(v2, "w") as f:
            json.dump(body, f)
        v2_path = "/v2/models/bench-mlp64/infer"
        out["mnistd_v2_json"] = wrk(f"http://127.0.0.1:{port}{v2_path}", "v2_infer.lua",
                                    dict(wenv, V2_BODY=v2, V2_PATH=v2_path), duration)
        out["mnistd_rss_after_kb"] = rss_kb(srv.pid)
    finally:
        stop(srv)
    for workers in (1, 2):
        port = free_port()
        py = subprocess.Popen([PY, "-m", "uvicorn", "serve_fastapi:app", "--host", "127.0.0.1",
                               "--port", str(port), "--workers", str(workers), "--log-level",
                               "warning", "--no-access-log"],
                              cwd=BENCH, env=dict(env, MODEL_PT=os.path.join(scratch, "mlp64.pt")),
                              stdout=subprocess.DEVNULL, stderr=log)
        try:
            with open(os.path.join(pngs, "00.png"), "rb") as f:
                png = f.read()
            boundary = "----warm"
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                    f"filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + png + \
                f"\r\n--{boundary}--\r\n".encode()
            wait_http(f"http://127.0.0.1:{port}/predict", 60, body,
                      {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            out[f"fastapi_{workers}"] = wrk(f"http://127.0.0.1:{port}/predict", "predict.lua",
                                            dict(wenv, PREDICT_PATH="/predict"), duration)
        finally:
            stop(py)
    best = max(out["fastapi_1"]["rps"], out["fastapi_2"]["rps"])
    out["ratio_rps"] = out["mnistd"]["rps"] / best
    return out


def _png_pixels(port, index):
    url = f"http://127.0.0.1:{port}/datasets/fashion-mnist/samples/{index}?split=test&format=json"
    with urllib.request.urlopen(url) as r:
        return json.load(r)["pixels"]


# ---- 5: footprint ----

def bench_footprint(log, scratch):
    env = env_both()
    store = os.path.join(scratch, "shipped")
    shutil.copytree(os.path.join(ROOT, "models"), store)
    starts = []
    idle = None
    for _ in range(5):
        port = free_port()
        t0 = time.perf_counter()
        srv = subprocess.Popen([MNISTD, "serve", "--port", str(port), "--models", store,
                                "--data", DATA], env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_http(f"http://127.0.0.1:{port}/v2/health/ready")
            starts.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.5)
            idle = rss_kb(srv.pid)
        finally:
            stop(srv)
    models = sorted(d for d in os.listdir(store) if os.path.isdir(os.path.join(store, d)))
    return {"idle_rss_kb": idle, "models": models,
            "first_answer_ms_median": statistics.median(starts), "first_answer_ms_all": starts}


# ---- the table ----

def fmt(v, spec="{:.2f}"):
    return "–" if v is None else spec.format(v)


def kernel_named(r):
    """The CPU, instruction set and kernel a record names (older ones: the OpenBLAS core)."""
    if "kernel" not in r:
        return f"OpenBLAS kernel {r.get('openblas_core', '?')}"
    return (f"CPU {r['cpu']}: {r['isa']}, OpenBLAS kernel {r['kernel']} "
            f"(chosen by {r['kernel_chosen_by']})")


def table(res):
    lines = []
    tr = res.get("training")
    if tr:
        g = tr["gemm"]
        g1, gn = g.get("1") or g.get(1), g.get(str(THREADS)) or g.get(THREADS)
        lines += [f"{kernel_named(g1)}. SGEMM peak: "
                  f"{g1['gflops_1024']:.0f} GFLOP/s on 1 thread, "
                  f"{gn['gflops_1024']:.0f} on {THREADS}; peak used: "
                  f"{tr['gemm_peak_gflops']:.0f}", "",
                  "| Fashion-MNIST network | mnistd s/epoch | PyTorch s/epoch | ratio | target | "
                  "issue's PyTorch / H100 s/epoch | mnistd / issue's PyTorch | "
                  "test acc mnistd / PyTorch | MFLOP/sample | % of peak mnistd / PyTorch |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, title, _, cpu, gpu, target in NETS:
            n = tr["nets"][name]
            m, t = n["mnistd"], n["pytorch"]
            lines.append(
                f"| {title} | {m['sec_per_epoch']:.3f} | {t['sec_per_epoch']:.3f} "
                f"({t['threads']} thr) | **{n['ratio_epoch']:.2f}x** | "
                f"{'≤ ' + fmt(target) + 'x' if target else '–'} | {fmt(cpu)} / {fmt(gpu)} | "
                f"{fmt(m['sec_per_epoch'] / cpu if cpu else None)}{'x' if cpu else ''} | "
                f"{m['test_accuracy'] * 100:.2f}% / {t['test_accuracy'] * 100:.2f}% | "
                f"{m['train_flops_per_sample'] / 1e6:.2f} | "
                f"{m['train_gflops_fraction_of_peak'] * 100:.1f}% / "
                f"{t['train_gflops_fraction_of_peak'] * 100:.1f}% |")
        lines += ["", "| inference, in process | mnistd batch-1 median / p99 µs | PyTorch | "
                  "ratio | mnistd 10,000 samples/s | PyTorch (one batch of 10,000) | ratio |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, title, *_ in NETS:
            n = tr["nets"][name]
            m, t = n["mnistd"], n["pytorch"]
            lines.append(
                f"| {name} | {m['infer_b1_median_us']:.1f} / {m['infer_b1_p99_us']:.1f} | "
                f"{t['infer_b1_median_us']:.1f} / {t['infer_b1_p99_us']:.1f} | "
                f"{n['ratio_b1']:.2f}x | {m['infer_samples_per_s']:,.0f} | "
                f"{t['infer_samples_per_s']:,.0f} | {n['ratio_throughput']:.1f}x |")
    sv = res.get("serving")
    if sv:
        lines += ["", f"| POST /predict, multipart PNG, wrk 16 connections {sv['duration_s']} s | "
                  "req/s | p50 ms | p99 ms | errors |", "| --- | --- | --- | --- | --- |"]
        for key, label in (("mnistd", "mnistd"), ("mnistd_v2_json", "mnistd, KServe v2 JSON infer"),
                           ("fastapi_1", "FastAPI + uvicorn + PyTorch, 1 worker"),
                           ("fastapi_2", "FastAPI + uvicorn + PyTorch, 2 workers")):
            w = sv[key]
            lines.append(f"| {label} | {w['rps']:,.0f} | {w['lat_p50_ms']:.2f} | "
                         f"{w['lat_p99_ms']:.2f} | {w['socket_errors'] + w['non2xx']} |")
        lines.append(f"| ratio, mnistd / the better FastAPI | **{sv['ratio_rps']:.1f}x** | | | |")
    fp = res.get("footprint")
    if fp:
        lines += ["", f"Footprint: idle server with the shipped models ({', '.join(fp['models'])}): "
                  f"{fp['idle_rss_kb'] / 1024:.1f} MB resident; start to first answered request: "
                  f"{fp['first_answer_ms_median']:.0f} ms (median of 5)."]
        if tr:
            peaks = ", ".join(f"{n} {tr['nets'][n]['mnistd']['peak_rss_train_kb'] / 1024:.0f} MB "
                              f"(PyTorch {tr['nets'][n]['pytorch']['peak_rss_train_kb'] / 1024:.0f})"
                              for n, *_ in NETS)
            lines.append(f"Peak resident memory while training: {peaks}.")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="2 epochs, 5 s of wrk: to try the harness")
    p.add_argument("--only", default="train,serve,footprint")
    p.add_argument("--render", action="store_true",
                   help="measure nothing: print the table of bench/results/latest.json again")
    a = p.parse_args()
    if a.render:
        with open(os.path.join(BENCH, "results", "latest.json")) as f:
            res = json.load(f)
        print(f"Measured {res['date']} on {res['machine']}.\n\n" + table(res))
        return
    parts = a.only.split(",")
    res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {_cpu_model()}",
           "threads": THREADS}
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, \
            open(os.path.join(BENCH, "results", "latest.log"), "w") as log:
        if "train" in parts or "serve" in parts:
            print("training and inference ...", file=sys.stderr)
            res["training"] = bench_training(a.quick, log, scratch)
        if "serve" in parts:
            print("serving ...", file=sys.stderr)
            res["serving"] = bench_serving(a.quick, log, scratch)
        if "footprint" in parts:
            print("footprint ...", file=sys.stderr)
            res["footprint"] = bench_footprint(log, scratch)
    text = f"Measured {res['date']} on {res['machine']}.\n\n" + table(res)
    with open(os.path.join(BENCH, "results", "latest.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(BENCH, "results", "latest.md"), "w") as f:
        f.write(text + "\n")
    print(text)


def _cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    main()
