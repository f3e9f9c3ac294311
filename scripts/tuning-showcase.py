#!/usr/bin/env python3
"""What issue 14 asks to show about style tuning, on release builds, with the ImageNet VGG16 of
../shared/weights and real photographs (scripts/make-photo-set.py):

1. sweep: one painting, `style_weight` over 5 values spanning 100x, 128x128, on two workers, with
   validation on held-out photographs and early stopping; then `orchestrator gallery` writes the
   gallery PNG (the trials' previews of a held-out photograph and the content/style scatter);
2. auto: the same style with "style_weight": "auto" (the default style_ratio, or --ratio): the
   weight it chooses, against the sweep;
3. warm: a second painting trained from scratch and from the nearest finished model ("init":
   "nearest"), side by side on one worker each: validation totals by step, and the steps each
   needs to reach the scratch run's final validation total;
4. ratios: the second painting swept over style_ratio with "style_weight": "auto" (the default
   ratio checked on another style), and its gallery.

Everything the phases measure goes to WORK/results.json; the coordinator's state stays in WORK,
so a phase can be run again alone (--phases).

Usage: scripts/tuning-showcase.py --photos DIR --style STYLE.jpg --second-style STYLE2.jpg
       [--work /tmp/nst-tuning] [--steps 500] [--phases sweep,auto,warm,ratios] [--gallery docs/images/tuning-gallery.png]
Needs `swift build -c release` first (binaries in .build/release).
"""
import argparse, json, os, signal, subprocess, sys, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
TOKEN = "showcase-token"
VGG = os.path.join(ROOT, "..", "shared", "weights", "vgg16-imagenet-features.safetensors")


def env():
    e = dict(os.environ, ORCHESTRATOR_TOKEN=TOKEN)
    e.pop("NST_VGG16_WEIGHTS", None)
    return e


def cli(port, *args):
    r = subprocess.run([os.path.join(BIN, "orchestrator"), *args, "--coordinator", f"127.0.0.1:{port}"],
                       capture_output=True, text=True, env=env())
    if r.returncode != 0:
        sys.exit(f"orchestrator {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def api(port, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


def jobs(port):
    return {j["name"]: j for j in api(port, "/v1/jobs")["jobs"]}


def wait(port, names, label):
    t0 = time.monotonic()
    last = 0
    while True:
        js = jobs(port)
        states = {n: js[n]["state"] for n in names if n in js}
        if all(s in ("succeeded", "failed", "cancelled") for s in states.values()) and len(states) == len(names):
            print(f"{label}: all {len(names)} finished in {time.monotonic() - t0:.0f} s", flush=True)
            return js
        if time.monotonic() - last > 60:
            last = time.monotonic()
            print(f"{label}: " + ", ".join(f"{n} {js[n]['state']} {js[n]['step']}/{js[n].get('steps_total')}" for n in names if n in js),
                  flush=True)
        time.sleep(2)


def detail(port, job_id):
    return api(port, f"/v1/jobs/{job_id}")


def start_cluster(a):
    os.makedirs(a.work, exist_ok=True)
    port = a.port
    serve = subprocess.Popen([os.path.join(BIN, "orchestrator"), "serve", "--port", str(port), "--state-dir",
                              os.path.join(a.work, "state"), "--dataset", f"photos={os.path.abspath(a.photos)}",
                              "--vgg-weights", a.vgg], stdout=open(os.path.join(a.work, "serve.log"), "a"),
                             stderr=subprocess.STDOUT, env=env())
    for _ in range(600):
        try:
            api(port, "/v1/jobs")
            break
        except Exception:
            time.sleep(0.1)
    workers = []
    for k in range(2):
        log = open(os.path.join(a.work, f"worker-{k + 1}.log"), "a")
        workers.append(subprocess.Popen([os.path.join(BIN, "worker"), "--coordinator", f"127.0.0.1:{port}", "--name", f"w{k + 1}",
                                         "--threads", "1", "--cache-dir", os.path.join(a.work, f"cache-{k + 1}"),
                                         "--work-dir", os.path.join(a.work, f"work-{k + 1}")],
                                        stdout=log, stderr=subprocess.STDOUT, env=env()))
    return port, [serve] + workers


def write_config(a, name, styles, defaults):
    path = os.path.join(a.work, f"{name}.json")
    d = {"image_size": a.size, "style_size": 256, "batch_size": 4, "steps": a.steps, "lr": 1e-3, "content_weight": 1e5,
         "checkpoint_every": a.every, "validation_images": a.validation, "seed": 42, "max_attempts": 2}
    d.update(defaults)
    json.dump({"defaults": d, "styles": styles}, open(path, "w"), indent=1)
    return path


def validation_summary(port, job):
    v = detail(port, job["id"]).get("validation", [])
    return [{"step": p["step"], "content": p["content"], "style": p["style"],
             "total": p["content_weighted"] + p["style_weighted"]} for p in v]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", required=True)
    p.add_argument("--style", required=True)
    p.add_argument("--second-style", required=True)
    p.add_argument("--work", default="/tmp/nst-tuning")
    p.add_argument("--port", type=int, default=7391)
    p.add_argument("--vgg", default=VGG)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--validation", type=int, default=4)
    p.add_argument("--weights", default="1e3,3e3,1e4,3e4,1e5")
    p.add_argument("--ratio", type=float, default=None, help="style_ratio of the auto job (default: the config default)")
    p.add_argument("--warm-weight", type=float, default=1e4)
    p.add_argument("--ratios", default="0.5,1.5,5", help="style_ratio values of the second style's sweep")
    p.add_argument("--phases", default="sweep,auto,warm,ratios")
    p.add_argument("--ratio-gallery", default=os.path.join(ROOT, "docs", "images", "tuning-ratios.png"))
    p.add_argument("--gallery", default=os.path.join(ROOT, "docs", "images", "tuning-gallery.png"))
    a = p.parse_args()
    a.style, a.second_style = os.path.abspath(a.style), os.path.abspath(a.second_style)
    results_path = os.path.join(a.work, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    port, procs = start_cluster(a)
    group = os.path.splitext(os.path.basename(a.style))[0]
    second = os.path.splitext(os.path.basename(a.second_style))[0]
    try:
        # Every phase's jobs are submitted first (the two workers stay busy), then each is awaited.
        pending = []
        if "sweep" in a.phases:
            weights = [float(w) for w in a.weights.split(",")]
            cfg = write_config(a, "sweep", [{"name": group, "image": a.style, "style_weight": {"sweep": weights}}],
                               {"early_stop": {"patience": 2, "min_delta": 0.02}})
            print(cli(port, "submit", cfg), flush=True)
            pending.append(("sweep", [f"{group}-{k + 1}" for k in range(len(weights))]))
        if "auto" in a.phases:
            entry = {"name": f"{group}-auto", "image": a.style, "style_weight": "auto"}
            if a.ratio is not None:
                entry["style_ratio"] = a.ratio
            cfg = write_config(a, "auto", [entry], {"early_stop": {"patience": 2, "min_delta": 0.02}})
            print(cli(port, "submit", cfg), flush=True)
            pending.append(("auto", [entry["name"]]))
        if "warm" in a.phases:
            cfg = write_config(a, "warm", [
                {"name": f"{second}-scratch", "image": a.second_style, "priority": 2},
                {"name": f"{second}-warm", "image": a.second_style, "init": "nearest", "priority": 1},
            ], {"style_weight": a.warm_weight, "checkpoint_every": max(1, a.every // 2)})
            print(cli(port, "submit", cfg), flush=True)
            pending.append(("warm", [f"{second}-scratch", f"{second}-warm"]))
        if "ratios" in a.phases:
            ratios = [float(r) for r in a.ratios.split(",")]
            cfg = write_config(a, "ratios", [{"name": f"{second}-ratio", "image": a.second_style, "style_weight": "auto",
                                              "style_ratio": {"sweep": ratios}, "priority": -1}],
                               {"early_stop": {"patience": 2, "min_delta": 0.02}})
            print(cli(port, "submit", cfg), flush=True)
            pending.append(("ratios", [f"{second}-ratio-{k + 1}" for k in range(len(ratios))]))
        t0 = time.monotonic()
        for phase, names in pending:
            js = wait(port, names, phase)
            if phase == "sweep":
                results["sweep"] = {"seconds": time.monotonic() - t0, "budget": a.steps, "trials": [
                    {"name": n, "style_weight": js[n]["params"]["style_weight"], "state": js[n]["state"], "step": js[n]["step"],
                     "stop_reason": js[n].get("stop_reason"), "validation": validation_summary(port, js[n])} for n in names]}
                print(cli(port, "gallery", group, "--out", a.gallery), flush=True)
            elif phase == "auto":
                j = js[names[0]]
                results["auto"] = {"name": j["name"], "style_ratio": j.get("style_ratio"), "chosen_style_weight": j.get("chosen_style_weight"),
                                   "step": j["step"], "stop_reason": j.get("stop_reason"), "validation": validation_summary(port, j)}
                print(f"auto: style_weight {j.get('chosen_style_weight')} (ratio {j.get('style_ratio')})", flush=True)
            elif phase == "warm":
                runs = {n: validation_summary(port, js[n]) for n in names}
                target = runs[names[0]][-1]["total"]
                reach = {n: next((p["step"] for p in runs[n] if p["total"] <= target), None) for n in names}
                results["warm"] = {"target_total": target, "steps_to_target": reach, "warm_start": js[names[1]].get("warm_start"),
                                   "validation": runs}
                print(f"warm: steps to the scratch run's final validation total {target:.4g}: {reach}; "
                      f"warm start {js[names[1]].get('warm_start')}", flush=True)
            elif phase == "ratios":
                results["ratios"] = {"trials": [
                    {"name": n, "style_ratio": js[n].get("style_ratio"), "chosen_style_weight": js[n].get("chosen_style_weight"),
                     "step": js[n]["step"], "stop_reason": js[n].get("stop_reason"), "validation": validation_summary(port, js[n])}
                    for n in names]}
                print(cli(port, "gallery", f"{second}-ratio", "--out", a.ratio_gallery), flush=True)
    finally:
        json.dump(results, open(results_path, "w"), indent=1)
        for proc in procs[1:] + procs[:1]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"results: {results_path}")


if __name__ == "__main__":
    main()
