#!/usr/bin/env python3
"""Measures what issue 13 asks to show about served datasets, on release builds:

1. manifest build time and shard count for a folder of N generated 256x256 images (`serve
   --dataset`), first build and a restart (cache);
2. time from `worker --coordinator ...` with an empty cache to its first training step;
3. training images/s of the same job with served data, then with a local `--dataset` copy (used
   in place), then on a coordinator serving no dataset (the folder read directly), one after the
   other;
4. the coordinator's serving throughput over loopback while a job trains, and its memory.

Usage: scripts/measure-served-data.py [--images 10000] [--steps 60] [--work /tmp/nst-measure]
       [--vgg ../shared/weights/vgg16-imagenet-features.safetensors]
Needs `swift build -c release` first (binaries in .build/release).
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
TOKEN = "measure-token"


def orchestrator(*args, **kw):
    return subprocess.run([os.path.join(BIN, "orchestrator"), *args], check=True, capture_output=True, text=True,
                          env=env(), **kw)


def env(extra=None):
    e = dict(os.environ, ORCHESTRATOR_TOKEN=TOKEN)
    e.pop("NST_VGG16_WEIGHTS", None)
    if extra:
        e.update(extra)
    return e


def start(args, log, extra_env=None):
    f = open(log, "w")
    return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env(extra_env)), time.monotonic()


def wait_for(log, pattern, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = open(log).read()
        m = re.search(pattern, text)
        if m:
            return m, time.monotonic()
        if proc is not None and proc.poll() is not None:
            sys.exit(f"{log}: process exited {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.05)
    sys.exit(f"{log}: no /{pattern}/ within {timeout} s:\n{open(log).read()[-3000:]}")


def rss_mib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def metric(port, sample):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    for line in urllib.request.urlopen(req, timeout=10).read().decode().splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def status(port):
    out = orchestrator("status", "--json", "--coordinator", f"127.0.0.1:{port}").stdout
    return {j["name"]: j for j in json.loads(out)["jobs"]}


def serve(work, state, port, dataset, vgg, log):
    args = [os.path.join(BIN, "orchestrator"), "serve", "--port", str(port), "--state-dir", state]
    if dataset:
        args += ["--dataset", f"data={dataset}"]
    if vgg:
        args += ["--vgg-weights", vgg]
    p, t0 = start(args, log)
    _, t1 = wait_for(log, r"listening|Server started|serving on", 3600, p)
    return p, t1 - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--work", default="/tmp/nst-measure")
    ap.add_argument("--vgg", default=os.path.join(ROOT, "..", "shared", "weights", "vgg16-imagenet-features.safetensors"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    data = os.path.join(a.work, f"data-{a.images}")
    if not os.path.isdir(data):
        orchestrator("make-dataset", "--out", data, "--count", str(a.images), "--size", "256")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
    print(f"dataset: {a.images} images, {size / 1e6:.1f} MB")

    # 1. Manifest build: first time, then a restart.
    state = os.path.join(a.work, "state")
    shutil.rmtree(state, ignore_errors=True)
    port = 7391
    results = {}
    for label in ("first build", "restart"):
        log = os.path.join(a.work, f"serve-{label.replace(' ', '-')}.log")
        p, seconds = serve(a.work, state, port, data, a.vgg, log)
        m = re.search(r"dataset data: \d+ files \(.*", open(log).read().replace("\r", "\n"))
        print(f"serve --dataset, {label}: listening after {seconds:.2f} s; {m.group(0) if m else open(log).read()[-500:]}")
        results[label] = seconds
        if label == "first build":
            p.send_signal(signal.SIGINT)
            p.wait(timeout=60)
    coordinator = p

    # 2-4. The same job three times: served data (empty cache), local --dataset in place, then a
    # coordinator serving no dataset (the folder itself).
    config = os.path.join(a.work, "styles.json")
    style = os.path.join(a.work, "style.png")
    if not os.path.exists(style):
        orchestrator("make-styles", "--out", a.work, "--size", "256")
        for f in sorted(os.listdir(a.work)):
            if f.endswith(".png") and f != "style.png":
                shutil.copy(os.path.join(a.work, f), style)
                break
    jobs = {"served": 3, "inplace": 2, "folder": 1}
    with open(config, "w") as f:
        json.dump({"defaults": {"image_size": 256, "style_size": 256, "batch_size": 4, "steps": a.steps,
                                "checkpoint_every": 1000, "seed": 42, "style_weight": 1e4},
                   "styles": [{"name": n, "image": style, "priority": pr} for n, pr in jobs.items() if n != "folder"]}, f)
    orchestrator("submit", config, "--coordinator", f"127.0.0.1:{port}")

    cache = os.path.join(a.work, "cache")
    shutil.rmtree(cache, ignore_errors=True)
    base = [os.path.join(BIN, "worker"), "--coordinator", f"127.0.0.1:{port}", "--once", "--threads", str(a.threads),
            "--cache-dir", cache]
    before = metric(port, 'nst_served_bytes_total{kind="dataset"}')
    log = os.path.join(a.work, "worker-served.log")
    w, t0 = start(base, log)
    _, t1 = wait_for(log, r"first step done", 600, w)
    peak_during = rss_mib(coordinator.pid, "VmRSS")
    rate = wait_for(log, r"all \d+ shard\(s\) here: .*", 600, w)[0].group(0)
    w.wait(timeout=3600)
    served_bytes = metric(port, 'nst_served_bytes_total{kind="dataset"}') - before
    print(f"worker with an empty cache: first training step {t1 - t0:.2f} s after it started")
    print(f"worker fetch: {rate}; coordinator sent {served_bytes / 1e6:.1f} MB of dataset")
    print(f"coordinator memory: VmRSS {peak_during:.0f} MiB while serving, VmHWM (peak) {rss_mib(coordinator.pid, 'VmHWM'):.0f} MiB")

    w, _ = start(base + ["--dataset", data], os.path.join(a.work, "worker-inplace.log"))
    w.wait(timeout=3600)
    rows = status(port)
    coordinator.send_signal(signal.SIGINT)
    coordinator.wait(timeout=60)

    state2 = os.path.join(a.work, "state-folder")
    shutil.rmtree(state2, ignore_errors=True)
    p2, _ = serve(a.work, state2, port, None, a.vgg, os.path.join(a.work, "serve-folder.log"))
    with open(config, "w") as f:
        json.dump({"defaults": {"image_size": 256, "style_size": 256, "batch_size": 4, "steps": a.steps,
                                "checkpoint_every": 1000, "seed": 42, "style_weight": 1e4},
                   "styles": [{"name": "folder", "image": style}]}, f)
    orchestrator("submit", config, "--coordinator", f"127.0.0.1:{port}")
    w, _ = start(base + ["--dataset", data], os.path.join(a.work, "worker-folder.log"))
    w.wait(timeout=3600)
    rows.update(status(port))
    p2.send_signal(signal.SIGINT)
    p2.wait(timeout=60)

    print(f"images/s, the same job ({a.steps} steps, batch 4, 256x256, {a.threads} threads), one after the other:")
    speed = {}
    for name in ("served", "inplace", "folder"):
        r = rows[name]
        text = open(os.path.join(a.work, f"worker-{name}.log")).read()
        speed[name] = float(re.search(r"trained \d+ images in [\d.]+ s of steps: ([\d.]+) img/s", text).group(1))
        print(f"  {name:8s} {speed[name]:.3f} img/s  final total loss {r['total']:.6g}  ({r['state']})")
    print(f"served / folder = {speed['served'] / speed['folder']:.3f}, in place / folder = {speed['inplace'] / speed['folder']:.3f}")


if __name__ == "__main__":
    main()
