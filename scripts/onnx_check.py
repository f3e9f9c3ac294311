#!/usr/bin/env python3
"""Checks `orchestrator export` against onnxruntime, PyTorch and `orchestrator stylize`.

Needs the reference venv with onnx and onnxruntime (not needed by CI, which has no Python):

    ~/.venv-ref/bin/pip install onnxruntime onnx
    ~/.venv-ref/bin/python scripts/onnx_check.py --model M.safetensors --content IMG.png \
        [--sizes 96x64,75x50] [--orchestrator .build/debug/orchestrator] [--work out/onnx-check]

For the model it writes, with the orchestrator, OUT/model.onnx (the default export, ending in
Clip(0, 255)) and OUT/model.raw.onnx (`--no-clip`), runs `onnx.checker.check_model` (full
check, with shape inference) on both, and opens one onnxruntime session for each. Then for each
size WxH (the content image resized, bilinear, and saved as PNG so that every side reads the
same pixels, converted as torch_reference.py's `stylize` does: RGB floats in [0, 255], NCHW):

  raw     onnxruntime on model.raw.onnx  vs  PyTorch TransformerNet (torch_reference.py, the same
          safetensors weights), raw output
  clipped onnxruntime on model.onnx      vs  the PyTorch output clamped to [0, 255]
  batch   as raw, on a batch of two (the image and its mirror image): dynamic N
  ours    onnxruntime on model.raw.onnx  vs  the raw output `orchestrator stylize --raw-output` wrote
          (its input tensor is checked to be PyTorch's, pixel for pixel)
  stylize onnxruntime on model.onnx, truncated to bytes as save_rgb does  vs  the PNG written by
          `orchestrator stylize`

Both sessions are created once, so the sizes also exercise the dynamic H and W. Printed: max abs
diff, max abs diff / 255 (relative to the pixel range) and the relative L2 error. Passes when
the raw and clipped max abs diffs are at most 0.255 (1e-3 of the 0-255 range) and the stylized
bytes differ by at most 1 (float rounding either side of an integer) in at most 0.1% of them.

The model code is imported from <repo>/../shared/reference/torch_reference.py (override with
TORCH_REFERENCE=/path/to/torch_reference.py), as scripts/golden.py does.
"""
import argparse, subprocess, sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from PIL import Image
from safetensors.torch import load_file
from reference_loader import load_reference  # noqa: E402 (scripts/ is on sys.path)

REPO = Path(__file__).resolve().parent.parent
RANGE_TOLERANCE = 1e-3 * 255


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stderr.strip()


def check_and_open(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    ops = [n.op_type for n in model.graph.node]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    print(f"{path.name}: onnx.checker ok (full check); ir_version {model.ir_version}, opsets {opsets}, "
          f"producer {model.producer_name}, {len(ops)} nodes ({', '.join(sorted(set(ops)))}), input dims {dims}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare(label, ours, ref):
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        print(f"  {label}: shapes differ, {ours.shape} vs {ref.shape}")
        return float("inf")
    diff = np.abs(ours - ref)
    rel_l2 = np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-30)
    print(f"  {label}: max abs diff {diff.max():.6g}, / 255 = {diff.max() / 255:.3g}, relative L2 {rel_l2:.3g}")
    return diff.max()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="TransformerNet safetensors")
    p.add_argument("--content", required=True, help="content image (resized to each size)")
    p.add_argument("--sizes", default="96x64,75x50", help="comma-separated WxH")
    p.add_argument("--orchestrator", default=str(REPO / ".build" / "debug" / "orchestrator"))
    p.add_argument("--work", default=str(REPO / "out" / "onnx-check"), help="folder for the files this writes")
    a = p.parse_args()
    torch.set_num_threads(2)
    ref = load_reference()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)

    clipped_path, raw_path = work / "model.onnx", work / "model.raw.onnx"
    print(run([a.orchestrator, "export", "--model", a.model, "--onnx", clipped_path]))
    print(run([a.orchestrator, "export", "--model", a.model, "--onnx", raw_path, "--no-clip"]))
    clipped_session, raw_session = check_and_open(clipped_path), check_and_open(raw_path)

    net = ref.TransformerNet()
    net.load_state_dict(load_file(a.model))
    net.eval()

    failures = []
    for size in a.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        content = work / f"content_{w}x{h}.png"
        Image.open(a.content).convert("RGB").resize((w, h), Image.BILINEAR).save(content)
        stylized = work / f"stylized_{w}x{h}.png"
        ours_raw_path = work / f"stylized_{w}x{h}.raw.safetensors"
        run([a.orchestrator, "stylize", "--model", a.model, "--content", content, "--output", stylized,
             "--raw-output", ours_raw_path])

        x = ref.load_rgb(content).unsqueeze(0)  # [1, 3, h, w], [0, 255]
        with torch.no_grad():
            torch_raw = net(x).numpy()
        ort_raw = raw_session.run(["output"], {"input": x.numpy()})[0]
        ort_clipped = clipped_session.run(["output"], {"input": x.numpy()})[0]
        outside = np.mean((torch_raw < 0) | (torch_raw > 255))
        print(f"{w}x{h}: input {list(x.shape)} -> output {list(ort_clipped.shape)}; PyTorch raw output range "
              f"[{torch_raw.min():.1f}, {torch_raw.max():.1f}], {100 * outside:.1f}% outside [0, 255]")
        if compare("raw: onnxruntime vs PyTorch", ort_raw, torch_raw) > RANGE_TOLERANCE:
            failures.append(f"{size} raw")
        if compare("clipped: onnxruntime vs PyTorch clamped", ort_clipped, np.clip(torch_raw, 0, 255)) > RANGE_TOLERANCE:
            failures.append(f"{size} clipped")
        ours_file = load_file(str(ours_raw_path))
        if not np.array_equal(ours_file["input"].numpy(), x.numpy()):
            print("  orchestrator stylize read other input pixels than PyTorch")
            failures.append(f"{size} input")
        if compare("raw: onnxruntime vs orchestrator stylize (--raw-output)", ort_raw, ours_file["output"].numpy()) > RANGE_TOLERANCE:
            failures.append(f"{size} ours raw")
        pair = torch.cat([x, x.flip(3)])  # dynamic N: a batch of two, the second image mirrored
        with torch.no_grad():
            torch_pair = net(pair).numpy()
        ort_pair = raw_session.run(["output"], {"input": pair.numpy()})[0]
        if compare("raw, batch of 2: onnxruntime vs PyTorch", ort_pair, torch_pair) > RANGE_TOLERANCE:
            failures.append(f"{size} batch")

        ours = np.asarray(Image.open(stylized).convert("RGB"), dtype=np.int64)           # [h', w', 3]
        theirs = np.clip(ort_clipped[0], 0, 255).transpose(1, 2, 0).astype(np.uint8).astype(np.int64)
        if ours.shape != theirs.shape:
            print(f"  stylize: shapes differ, {ours.shape} vs {theirs.shape}")
            failures.append(f"{size} stylize")
            continue
        byte_diff = np.abs(ours - theirs)
        differing = int((byte_diff != 0).sum())
        float_diff = np.abs(ours - np.clip(ort_clipped[0], 0, 255).transpose(1, 2, 0)).max()
        print(f"  stylize: orchestrator stylize PNG vs onnxruntime truncated to bytes: max abs diff {byte_diff.max()} "
              f"({differing} of {byte_diff.size} bytes differ); vs onnxruntime floats: max abs diff {float_diff:.4f} "
              f"(truncation to bytes alone gives < 1)")
        if byte_diff.max() > 1 or differing > byte_diff.size / 1000:
            failures.append(f"{size} stylize")

    if failures:
        sys.exit(f"FAILED: {', '.join(failures)}")
    print(f"ok: within {RANGE_TOLERANCE:.3f} (1e-3 of 0-255) of PyTorch at every size; stylize bytes within 1")


if __name__ == "__main__":
    main()
