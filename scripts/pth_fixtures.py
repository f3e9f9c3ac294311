#!/usr/bin/env python3
"""PyTorch `.pth` files for the Swift reader (Sources/NSTModel/TorchFile.swift), written by torch.save.

Run from the package root with the reference environment (CI has no Python: the output is committed):

    ~/.venv-ref/bin/python scripts/pth_fixtures.py write          # -> Tests/NSTModelTests/Fixtures/pth/
    ~/.venv-ref/bin/python scripts/pth_fixtures.py demo-model --out out/pth-demo/model.pth [--from TRAINED.safetensors]
    ~/.venv-ref/bin/python scripts/pth_fixtures.py stylize --model out/pth-demo/model.pth \\
        --content IMAGE --output out/pth-demo/torch.png
    ~/.venv-ref/bin/python scripts/pth_fixtures.py torchvision-vgg \\
        --features ../shared/weights/vgg16-imagenet-features.safetensors --out /work/out-pth/vgg16-397923af.pth

The model code is imported from <repo>/../shared/reference/torch_reference.py (override with
TORCH_REFERENCE=/path/to/torch_reference.py), as scripts/golden.py does.

Fixtures (all < 1 MB together):
    dtypes.pth             an OrderedDict (torch.save's default zip format): F32 with awkward values, F16, BF16,
                           F64, a 0-d scalar, a zero-size tensor, views sharing one storage (a column
                           = offset 1 and stride 4, a row slice = offset 4, a transpose, a strided slice), a
                           stride-0 expand, a view into an F16 storage, and an int64 and a bool tensor (which
                           the reader skips: a Float32 file cannot hold them)
    dtypes-legacy.pth      the same dict with _use_new_zipfile_serialization=False (pre-1.6 format)
    dtypes-protocol4.pth   the same dict with pickle_protocol=4 (FRAME, MEMOIZE, STACK_GLOBAL…)
    dtypes.expected.safetensors   every floating tensor above as torch's .float().contiguous()
    wrapped-checkpoint.pth {"epoch": 3, "state_dict": {...}, "best_loss": 0.5}: a training checkpoint
    wrapped-model.pth      {"model": {...}}
    parameters.pth         state_dict(keep_vars=True): nn.Parameter, pickled via _rebuild_parameter
                           (the three files hold conv.weight = arange(8).reshape(2,1,2,2) / 4 and
                           conv.bias = [-1, 1])
    transformer.pth        the reference TransformerNet's state dict as pytorch/examples saved it, with the
                           deprecated in*.running_mean / running_var / num_batches_tracked keys of old
                           checkpoints (InstanceNorm2d(track_running_stats=True)). To stay small, each conv
                           weight [o, i, k, k] is a strided window over its own storage of i*k*k + o - 1
                           floats (weight[o, i, a, b] = s[o + i*k*k + a*k + b]); torch.save keeps views as
                           they are, so the file holds the small storages, offsets and strides.
    transformer-v1-legacy.pth   the same weights as PyTorch 0.3 saved pytorch/examples' pretrained models
                           (candy.pth…): the legacy format, tensors pickled with _rebuild_tensor (v1),
                           running_mean / running_var but no num_batches_tracked
    transformer.expected.safetensors   x [1,3,20,24] in [0, 255] and y = the PyTorch output after loading the
                           file as neural_style.py does (deprecated keys deleted); sample.<key> = 32 values at
                           flat indices (j * (n - 1)) // 31 and sum.<key> = the float64 sum, per parameter
    vgg-full.pth           torchvision's VGG16 names: features.0 … features.28 (all 13 convs, real shapes,
                           windowed storages as above) and classifier.0/3/6 (shapes shrunk to [16, 32], [16, 16],
                           [10, 16]; the real classifier is 120 M floats). Only features[0:23] are used.
    vgg.expected.safetensors   x [1,3,16,16] (already normalised), relu1_2 relu2_2 relu3_3 relu4_3 from the
                           reference Vgg16 with those weights; sample.<key>, sum.<key> for features[0:23]
    evil-os-system.pth     a pickle whose REDUCE would call os.system (written as posix.system on Linux)
    evil-eval.pth          … builtins.eval
    evil-legacy.pth        os.system again, in the legacy format
    whole-module.pth       torch.save(model) of an nn.Conv2d instead of its state dict
"""
import argparse, collections, math, os, re, sys, warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from reference_loader import load_reference  # noqa: E402 (scripts/ is on sys.path)

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "Tests" / "NSTModelTests" / "Fixtures" / "pth"
SIZE_LIMIT = 1_000_000
SAMPLES = 32


ref = load_reference()
DEPRECATED = re.compile(r"in\d+\.(running_mean|running_var|num_batches_tracked)$")


# ---- small state dicts ------------------------------------------------------------------

def dtypes_state_dict():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 2  # exact in float32
    half = torch.tensor([1.0, -2.5, 6e-8, 65504.0, float("inf"), float("nan"), -0.0, 0.1], dtype=torch.float16)
    sd = collections.OrderedDict()
    sd["f32"] = torch.tensor([1 / 3, -0.1, 1e-38, 3.4e38, -0.0, 1e-45, float("inf"), float("-inf"), float("nan")])
    sd["f16"] = half
    sd["f16_tail"] = half[5:]  # a view at offset 5 into the same F16 storage
    sd["bf16"] = torch.tensor([[1.0, -3.140625], [1e-30, 3e38], [float("-inf"), 0.0078125]], dtype=torch.bfloat16)
    sd["f64"] = torch.tensor([[1 / 3, 1e300], [1e-50, -2.5], [0.1, 16777217.0]], dtype=torch.float64)
    sd["scalar"] = torch.tensor(7.25)
    sd["empty"] = torch.zeros(0, 3)
    sd["base"] = base
    sd["column"] = base[:, 1]          # offset 1, stride (4,)
    sd["rows"] = base[1:]              # offset 4, contiguous
    sd["transposed"] = base.t()        # stride (1, 4)
    sd["strided"] = base[::2, ::3]     # stride (8, 3)
    sd["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)  # stride (0, 1)
    sd["num_batches_tracked"] = torch.tensor(5)   # int64: skipped by the reader
    sd["mask"] = torch.tensor([True, False])      # bool: skipped by the reader
    assert sd["column"].storage_offset() == 1 and not sd["transposed"].is_contiguous()
    return sd


def small_conv_state_dict(keep_vars=False):
    conv = nn.Conv2d(1, 2, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(8, dtype=torch.float32).reshape(2, 1, 2, 2) / 4)
        conv.bias.copy_(torch.tensor([-1.0, 1.0]))
    module = nn.Module()
    module.conv = conv
    return module.state_dict(keep_vars=keep_vars)


# ---- windowed (small-storage) weights ----------------------------------------------------

def windowed(shape, scale, generator):
    """A [o, i, k, k] view of a storage of i*k*k + o - 1 values: w[o, i, a, b] = s[o + i*k*k + a*k + b]."""
    o, i, kh, kw = shape
    storage = (torch.rand(i * kh * kw + o - 1, generator=generator) * 2 - 1) * scale
    return storage.as_strided(shape, (1, kh * kw, kw, 1))


def windowed_conv_weights(module, generator):
    for conv in [m for m in module.modules() if isinstance(m, nn.Conv2d)]:
        o, i, kh, kw = conv.weight.shape
        conv.weight = nn.Parameter(windowed(conv.weight.shape, 1 / math.sqrt(i * kh * kw), generator))


def fingerprints(state):
    """sample.<key>: SAMPLES values at flat indices (j * (n - 1)) // (SAMPLES - 1); sum.<key>: float64 sum."""
    out = {}
    for key, t in state.items():
        flat = t.detach().float().contiguous().reshape(-1).clone()
        n = flat.numel()
        index = torch.tensor([(j * (n - 1)) // (SAMPLES - 1) for j in range(SAMPLES)])
        out[f"sample.{key}"] = flat[index].clone()
        out[f"sum.{key}"] = flat.double().sum().reshape(1)
    return out


class StatsTransformerNet(ref.TransformerNet):
    """The reference network with InstanceNorm2d(track_running_stats=True), as old PyTorch built it: its
    state dict has the in*.running_mean / running_var / num_batches_tracked keys of old checkpoints."""

    def __init__(self):
        super().__init__()
        for name, m in list(self.named_modules()):
            if isinstance(m, nn.InstanceNorm2d):
                parent = self.get_submodule(name.rsplit(".", 1)[0]) if "." in name else self
                setattr(parent, name.rsplit(".", 1)[-1], nn.InstanceNorm2d(m.num_features, affine=True,
                                                                          track_running_stats=True))


def transformer_examples_style(seed, window):
    """A TransformerNet state dict as pytorch/examples' old checkpoints hold it (deprecated keys included)."""
    torch.manual_seed(seed)
    net = StatsTransformerNet()
    g = torch.Generator().manual_seed(seed)
    if window:
        windowed_conv_weights(net, g)
    with torch.no_grad():
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.rand(b.shape, generator=g) * 4 - 2)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) * 3 + 0.5)
            elif name.endswith("num_batches_tracked"):
                b.fill_(1000)
        for name, p in net.named_parameters():  # non-trivial instance-norm scales and shifts
            if re.search(r"in\d+\.(weight|bias)$", name):
                p.copy_(torch.rand(p.shape, generator=g) * 0.4 + (0.8 if name.endswith("weight") else -0.2))
    return net.state_dict()


def load_like_neural_style(state):
    """pytorch/examples/fast_neural_style/neural_style.py stylize(): drop the deprecated keys, then load."""
    state = collections.OrderedDict((k, v) for k, v in state.items() if not DEPRECATED.search(k))
    net = ref.TransformerNet()
    net.load_state_dict(state)
    return net.eval()


class TorchvisionVGG16(nn.Module):
    """torchvision.models.vgg16's module tree (features, avgpool, classifier) with its state dict names."""

    CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]

    def __init__(self, hidden=4096, flat=512 * 7 * 7, classes=1000):
        super().__init__()
        layers, c = [], 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(hidden, classes))


def save_like_pytorch_0_3(state, path):
    """torch.save's legacy format with tensors reduced as PyTorch <= 0.3 did:
    _rebuild_tensor(storage, storage_offset, size, stride)."""
    original = torch.Tensor.__reduce_ex__
    torch.Tensor.__reduce_ex__ = lambda t, protocol: (
        torch._utils._rebuild_tensor, (t.storage(), t.storage_offset(), tuple(t.size()), t.stride()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage is deprecated
            torch.save(state, path, _use_new_zipfile_serialization=False)
    finally:
        torch.Tensor.__reduce_ex__ = original


# ---- hostile pickles ------------------------------------------------------------------------

class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


# ---- commands -----------------------------------------------------------------------------

def cmd_write(a):
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        old.unlink()
    torch.manual_seed(0)

    sd = dtypes_state_dict()
    torch.save(sd, out / "dtypes.pth")
    torch.save(sd, out / "dtypes-legacy.pth", _use_new_zipfile_serialization=False)
    torch.save(sd, out / "dtypes-protocol4.pth", pickle_protocol=4)
    save_file({k: v.float().contiguous().clone() for k, v in sd.items() if v.is_floating_point()},
              out / "dtypes.expected.safetensors")

    small = small_conv_state_dict()
    torch.save({"epoch": 3, "state_dict": small, "best_loss": 0.5}, out / "wrapped-checkpoint.pth")
    torch.save({"model": small}, out / "wrapped-model.pth")
    torch.save(small_conv_state_dict(keep_vars=True), out / "parameters.pth")

    state = transformer_examples_style(seed=1, window=True)
    assert any(k.endswith("running_mean") for k in state) and any(k.endswith("num_batches_tracked") for k in state)
    torch.save(state, out / "transformer.pth")
    save_like_pytorch_0_3(collections.OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")),
                          out / "transformer-v1-legacy.pth")
    net = load_like_neural_style(state)
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(3)) * 255
    with torch.no_grad():
        y = net(x)
    params = {k: v for k, v in state.items() if not DEPRECATED.search(k)}
    save_file({"x": x, "y": y, **fingerprints(params)}, out / "transformer.expected.safetensors")

    torch.manual_seed(2)
    vgg_full = TorchvisionVGG16(hidden=16, flat=32, classes=10)
    windowed_conv_weights(vgg_full.features, torch.Generator().manual_seed(2))
    with torch.no_grad():
        for m in vgg_full.features:
            if isinstance(m, nn.Conv2d):
                m.bias.uniform_(-0.1, 0.1)
    full_state = vgg_full.state_dict()
    torch.save(full_state, out / "vgg-full.pth")
    vgg = ref.Vgg16()
    wanted = vgg.state_dict().keys()
    vgg.load_state_dict({k: v for k, v in full_state.items() if k in wanted})
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        taps = vgg(x)
    names = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    save_file({"x": x, **{n: t for n, t in zip(names, taps)},
               **fingerprints({k: v for k, v in full_state.items() if k in wanted})},
              out / "vgg.expected.safetensors")

    torch.save({"x": Evil(os.system, "echo pwned > /tmp/pth-fixture-pwned")}, out / "evil-os-system.pth")
    torch.save({"x": Evil(eval, "__import__('os').system('echo pwned')")}, out / "evil-eval.pth")
    torch.save({"x": Evil(os.system, "echo pwned")}, out / "evil-legacy.pth", _use_new_zipfile_serialization=False)
    torch.save(nn.Conv2d(1, 1, 1), out / "whole-module.pth")

    total = sum(f.stat().st_size for f in out.iterdir())
    for f in sorted(out.iterdir()):
        print(f"{f.stat().st_size:8d}  {f.name}")
    print(f"{total:8d}  total")
    if total > SIZE_LIMIT:
        sys.exit(f"fixtures are {total} bytes, over the {SIZE_LIMIT} budget")


def cmd_demo_model(a):
    """A full-size TransformerNet saved as pytorch/examples saves it, deprecated instance-norm keys
    included: PyTorch's default init (as `torch_reference.py init`), or the weights of a trained
    safetensors model (--from), since a random network's pictures are nearly black."""
    state = transformer_examples_style(seed=a.seed, window=False)
    if a.source:
        trained = load_file(a.source)
        for k in state:
            if not DEPRECATED.search(k):
                state[k] = trained[k]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, a.out)
    print(f"wrote {a.out}")


def cmd_stylize(a):
    """As neural_style.py stylize() and torch_reference.py stylize, from a .pth file."""
    net = load_like_neural_style(torch.load(a.model, weights_only=True))
    with torch.no_grad():
        y = net(ref.load_rgb(a.content).unsqueeze(0))[0]
    ref.save_rgb(a.output, y)
    print(f"wrote {a.output}")


def cmd_torchvision_vgg(a):
    """torchvision's vgg16 state dict layout (what vgg16-397923af.pth holds): the features from a
    safetensors file, random classifier.* tensors of the real shapes."""
    features = load_file(a.features)
    torch.manual_seed(0)
    model = TorchvisionVGG16()
    state = model.state_dict()
    for k in state:
        if k.startswith("features."):
            state[k] = features[k]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, a.out)
    print(f"wrote {a.out}: {len(state)} tensors, {sum(v.numel() for v in state.values())} floats")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("write"); s.add_argument("--out", default=str(OUT_DIR))
    s = sub.add_parser("demo-model"); s.add_argument("--seed", type=int, default=42); s.add_argument("--out", required=True)
    s.add_argument("--from", dest="source", help="take the weights of this trained safetensors TransformerNet")
    s = sub.add_parser("stylize"); s.add_argument("--model", required=True)
    s.add_argument("--content", required=True); s.add_argument("--output", required=True)
    s = sub.add_parser("torchvision-vgg"); s.add_argument("--features", required=True); s.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    {"write": cmd_write, "demo-model": cmd_demo_model, "stylize": cmd_stylize,
     "torchvision-vgg": cmd_torchvision_vgg}[a.cmd](a)


if __name__ == "__main__":
    main()
