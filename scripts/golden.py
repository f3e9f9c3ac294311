#!/usr/bin/env python3
"""Golden fixtures for the Swift tests, computed with the PyTorch reference.

Regenerate (needs torch, numpy, safetensors; CI has no torch, so the output is committed):

    ~/.venv-ref/bin/python scripts/golden.py write            # -> Tests/NSTModelTests/Fixtures/golden/
    ~/.venv-ref/bin/python scripts/golden.py write --out DIR  # elsewhere (e.g. to diff two runs)
    ~/.venv-ref/bin/python scripts/golden.py params --which transformer|vgg --out FILE.safetensors
    ~/.venv-ref/bin/python scripts/golden.py check-model FILE.safetensors   # Swift-written weights load?

The model code is imported, not copied, from <repo>/../shared/reference/torch_reference.py (override
with TORCH_REFERENCE=/path/to/torch_reference.py). float32 everywhere, one thread, every fixture
starts from torch.manual_seed(0), so `write` is byte-for-byte reproducible on one torch version.

Generated parameters (never stored; Swift regenerates them bit-identically)
    fnv1a64(name): h = 0xcbf29ce484222325; per UTF-8 byte b: h ^= b; h = h * 0x100000001b3 mod 2^64
    seed = base_seed XOR fnv1a64(state_dict key); for flat row-major index i = 0, 1, ...:
        z = seed + (i + 1) * 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
        z = (z ^ z>>27) * 0x94D049BB133111EB;   z = z ^ z>>31         (all mod 2^64)
        u = float64(z >> 40) / 2^24;   value = float32(offset + (2u - 1) * bound)   (float64 maths)
    TransformerNet, base seed 1: conv weight [o,i,k,k] bound 1/sqrt(i*k*k); conv bias the same bound as
    its weight; instance-norm weight offset 1 bound 0.1; instance-norm bias bound 0.1 (offset 0 else).
    VGG16 features[0:23], base seed 2: weight bound sqrt(6/(i*9)); bias bound 0.1.
    Every fixture using them stores head.<key> = the first min(8, numel) generated values.

Files (float32 safetensors; scalars have shape [1]; g* = random normal upstream gradients; every
backward output is autograd of sum(output * upstream)):
    conv2d               k3s1. k3s2. k9s1. k3s1p1. + x weight bias y gy gx gweight gbias
                         (F.conv2d with bias; stride 2 for k3s2; zero padding 1 for k3s1p1, else 0)
    reflection_pad       p1. (pad 1, x[2,3,5,6]), p4. (pad 4, x[1,2,7,9]): x y gy gx
    instance_norm        InstanceNorm2d(3, affine=True), eps 1e-5: x weight bias y gy gx gweight gbias
    relu                 x y gy gx
    upsample             nearest, scale 2: x y gy gx
    maxpool              MaxPool2d(2, 2), no ties: x y gy gx (x[2,3,6,8]); odd.* (x[1,2,5,7], floor)
    gram                 reference gram_matrix (divided by C*H*W): x y gy gx
    mse                  nn.MSELoss(): a b loss ga (= d loss / d a)
    normalize            reference normalize_batch, x in [0,255]: x y gy gx
    adam                 torch.optim.Adam([p], lr=0.01), betas (0.9, 0.999), eps 1e-8: p0 g1 g2 g3 p1 p2 p3
                         (one element of each g is exactly 0); lr1e-3.* the same with lr 1e-3. torch does
                         m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g (float32);
                         p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), scalars in float64.
    transformer_net      generated TransformerNet; x[2,3,32,32] in [0,255]: x y gy gx, grad.<key>, head.<key>
    vgg16                generated Vgg16; x[2,3,16,16] standard normal (already normalised): relu1_2
                         relu2_2 relu3_3 relu4_3, g.<tap>, gx (d sum_taps sum(tap * g.tap) / dx), head.<key>
    losses               the reference training loss (content 1e5 on relu2_2, style 1e10 on Gram matrices):
                         x[2,3,32,32] in [0,255], y = x + 20*normal, style[1,3,32,32]: x y style content
                         style_loss total gy (= d total / d y), gram_style.0..3, head.<key>
    train_steps          three cmd_train steps (Adam lr 1e-3, batch 2, 32x32): style x1 x2 x3 (smooth noise in
                         [0,255]), content[3] style_loss[3] total[3] (float32 of .item(); total is the
                         backpropagated content + style_loss), final.<key>, head.<key> (both nets)

Size budget (all fixtures < 5 MB): grad.<key> and final.<key> skip the big residual-block conv weights
(`resN.convM.conv2d.weight`, 147456 floats each) except those in GRAD_RES_WEIGHTS; every bias and
instance-norm parameter of every block is stored. vgg16 runs at 16x16 (VGG16_SIZE) instead of 32x32.
"""
import argparse, hashlib, math, re, sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from reference_loader import load_reference  # noqa: E402 (scripts/ is on sys.path)

REPO = Path(__file__).resolve().parent.parent
GOLDEN_DIR = REPO / "Tests" / "NSTModelTests" / "Fixtures" / "golden"
SIZE_LIMIT = 5_000_000
CONTENT_WEIGHT, STYLE_WEIGHT = 1e5, 1e10
VGG16_SIZE = 16
GRAD_RES_WEIGHTS = {"res1.conv1.conv2d.weight"}  # residual conv weight gradients kept despite their size
BIG_RES_WEIGHT = re.compile(r"^res[1-5]\.conv[12]\.conv2d\.weight$")


ref = load_reference()


# ---- deterministic parameters --------------------------------------------------------

MASK64 = (1 << 64) - 1
GAMMA, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def generated_values(name, count, base_seed, offset, bound):
    """The recipe above, vectorised: numpy uint64 arithmetic wraps mod 2^64."""
    seed = np.uint64(base_seed ^ fnv1a64(name))
    z = seed + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return (offset + (2.0 * u - 1.0) * bound).astype(np.float32)


def generated_value_scalar(name, i, base_seed, offset, bound):
    """One value with plain Python integers: an independent check of the vectorised version."""
    z = ((base_seed ^ fnv1a64(name)) + (i + 1) * GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    z ^= z >> 31
    return np.float32(offset + (2.0 * ((z >> 40) / 2**24) - 1.0) * bound)


def transformer_rule(key, shapes):
    if key.endswith("conv2d.weight") or key.endswith("conv2d.bias"):
        o, i, kh, kw = shapes[key.rsplit(".", 1)[0] + ".weight"]
        return 0.0, 1.0 / math.sqrt(i * kh * kw)
    if key.endswith(".weight"):
        return 1.0, 0.1  # instance norm scale
    return 0.0, 0.1  # instance norm shift


def vgg_rule(key, shapes):
    if key.endswith(".weight"):
        return 0.0, math.sqrt(6.0 / (shapes[key][1] * 9))
    return 0.0, 0.1


NETS = {"transformer": (lambda: ref.TransformerNet(), 1, transformer_rule),
        "vgg": (lambda: ref.Vgg16(), 2, vgg_rule)}


def generated_state(which):
    make, base_seed, rule = NETS[which]
    shapes = {k: tuple(v.shape) for k, v in make().state_dict().items()}
    state = {}
    for key, shape in shapes.items():
        offset, bound = rule(key, shapes)
        values = generated_values(key, math.prod(shape), base_seed, offset, bound)
        state[key] = torch.from_numpy(values).reshape(shape)
    return state


def generated_net(which):
    net = NETS[which][0]()
    net.load_state_dict(generated_state(which), strict=True)
    return net


def heads(state):
    return {f"head.{k}": v.flatten()[:8] for k, v in state.items()}


def self_check(state, which):
    """Vectorised generator == scalar generator on the first values of every tensor."""
    _, base_seed, rule = NETS[which]
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for key, v in state.items():
        offset, bound = rule(key, shapes)
        flat = v.flatten()
        for i in list(range(min(8, flat.numel()))) + [flat.numel() - 1]:
            expected = generated_value_scalar(key, i, base_seed, offset, bound)
            assert flat[i].item() == expected, f"{key}[{i}]: {flat[i].item()} != {expected}"
        lo, hi = offset - bound, offset + bound
        assert lo <= flat.min().item() and flat.max().item() <= hi, f"{key} outside [{lo}, {hi}]"


# ---- helpers ---------------------------------------------------------------------------

def fixture(name, tensors, out_dir):
    clean = {}
    for k, v in tensors.items():
        t = torch.as_tensor(v).detach().to(torch.float32).clone().contiguous()
        clean[k] = t.reshape(1) if t.dim() == 0 else t
    path = out_dir / f"{name}.safetensors"
    save_file(clean, str(path))
    path.chmod(0o644)  # save_file creates 0600 files
    return path


def backward(out, inputs):
    """Random normal upstream gy and the gradients of sum(out * gy) with respect to inputs."""
    gy = torch.randn_like(out)
    return gy, torch.autograd.grad((out * gy).sum(), inputs)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def no_ties(shape):
    n = math.prod(shape)
    return (torch.randperm(n).to(torch.float32) / n * 4.0 - 2.0).reshape(shape)


# ---- op fixtures -------------------------------------------------------------------------

def build_conv2d():
    out = {}
    cases = {"k3s1": ((2, 4, 8, 9), (5, 4, 3, 3), 1, 0), "k3s2": ((2, 4, 9, 10), (6, 4, 3, 3), 2, 0),
             "k9s1": ((2, 3, 12, 11), (4, 3, 9, 9), 1, 0), "k3s1p1": ((2, 4, 7, 8), (5, 4, 3, 3), 1, 1)}
    for case, (xs, ws, stride, pad) in cases.items():
        x = leaf(torch.randn(xs))
        w = leaf(torch.randn(ws) / math.sqrt(ws[1] * ws[2] * ws[3]))
        b = leaf(torch.randn(ws[0]) * 0.1)
        y = F.conv2d(x, w, b, stride=stride, padding=pad)
        gy, (gx, gw, gb) = backward(y, [x, w, b])
        out.update({f"{case}.{k}": v for k, v in dict(x=x, weight=w, bias=b, y=y, gy=gy, gx=gx,
                                                        gweight=gw, gbias=gb).items()})
    return out


def build_reflection_pad():
    out = {}
    for case, pad, shape in (("p1", 1, (2, 3, 5, 6)), ("p4", 4, (1, 2, 7, 9))):
        x = leaf(torch.randn(shape))
        y = nn.ReflectionPad2d(pad)(x)
        gy, (gx,) = backward(y, [x])
        out.update({f"{case}.{k}": v for k, v in dict(x=x, y=y, gy=gy, gx=gx).items()})
    return out


def build_instance_norm():
    norm = nn.InstanceNorm2d(3, affine=True)
    with torch.no_grad():
        norm.weight.copy_(1.0 + 0.5 * torch.randn(3))
        norm.bias.copy_(0.5 * torch.randn(3))
    x = leaf(3.0 * torch.randn(2, 3, 5, 6) + 1.5)
    y = norm(x)
    gy, (gx, gw, gb) = backward(y, [x, norm.weight, norm.bias])
    return dict(x=x, weight=norm.weight, bias=norm.bias, y=y, gy=gy, gx=gx, gweight=gw, gbias=gb)


def build_unary(fn, x):
    x = leaf(x)
    y = fn(x)
    gy, (gx,) = backward(y, [x])
    return dict(x=x, y=y, gy=gy, gx=gx)


def build_relu():
    x = torch.randn(2, 3, 4, 5)
    assert bool((x != 0).all())
    return build_unary(F.relu, x)


def build_maxpool():
    out = build_unary(nn.MaxPool2d(2, 2), no_ties((2, 3, 6, 8)))
    out.update({f"odd.{k}": v for k, v in build_unary(nn.MaxPool2d(2, 2), no_ties((1, 2, 5, 7))).items()})
    return out


def build_mse():
    a, b = leaf(torch.randn(2, 3, 4, 5)), torch.randn(2, 3, 4, 5)
    loss = nn.MSELoss()(a, b)
    (ga,) = torch.autograd.grad(loss, [a])
    return dict(a=a, b=b, loss=loss, ga=ga)


def adam_case(lr):
    p0 = torch.randn(64)
    gs = [torch.randn(64) for _ in range(3)]
    for j, g in enumerate(gs):
        g[7 + 13 * j] = 0.0
    p = nn.Parameter(p0.clone())
    opt = torch.optim.Adam([p], lr=lr)
    out = dict(p0=p0, g1=gs[0], g2=gs[1], g3=gs[2])
    for step, g in enumerate(gs, start=1):
        opt.zero_grad()
        p.grad = g.clone()
        opt.step()
        out[f"p{step}"] = p.detach().clone()
    return out


def build_adam():
    out = adam_case(0.01)
    out.update({f"lr1e-3.{k}": v for k, v in adam_case(1e-3).items()})
    return out


# ---- network fixtures ----------------------------------------------------------------------

def stored_param(key, kept_res_weights=frozenset()):
    return not BIG_RES_WEIGHT.match(key) or key in kept_res_weights


def build_transformer_net():
    state = generated_state("transformer")
    net = ref.TransformerNet()
    net.load_state_dict(state, strict=True)
    x = leaf(torch.rand(2, 3, 32, 32) * 255.0)
    y = net(x)
    names = [k for k, _ in net.named_parameters()]
    gy, grads = backward(y, [x] + [p for _, p in net.named_parameters()])
    out = dict(x=x, y=y, gy=gy, gx=grads[0])
    out.update({f"grad.{k}": g for k, g in zip(names, grads[1:]) if stored_param(k, GRAD_RES_WEIGHTS)})
    out.update(heads(state))
    return out


def build_vgg16():
    state = generated_state("vgg")
    vgg = ref.Vgg16()
    vgg.load_state_dict(state, strict=True)
    x = leaf(torch.randn(2, 3, VGG16_SIZE, VGG16_SIZE))
    taps = vgg(x)
    names = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    ups = [torch.randn_like(t) for t in taps]
    (gx,) = torch.autograd.grad(sum((t * g).sum() for t, g in zip(taps, ups)), [x])
    out = dict(x=x, gx=gx)
    out.update(dict(zip(names, taps)))
    out.update({f"g.{n}": g for n, g in zip(names, ups)})
    out.update(heads(state))
    return out


def training_loss(vgg, x, y, gram_style):
    """The loss of the reference's cmd_train, line for line."""
    mse, n = nn.MSELoss(), len(x)
    fy, fx = vgg(ref.normalize_batch(y)), vgg(ref.normalize_batch(x))
    content = CONTENT_WEIGHT * mse(fy[1], fx[1])
    style_loss = 0.0
    for f, g in zip(fy, gram_style):
        style_loss = style_loss + mse(ref.gram_matrix(f), g.expand(n, -1, -1))
    return content, STYLE_WEIGHT * style_loss


def build_losses():
    state = generated_state("vgg")
    vgg = ref.Vgg16()
    vgg.load_state_dict(state, strict=True)
    x = torch.rand(2, 3, 32, 32) * 255.0
    y = leaf(x + 20.0 * torch.randn(2, 3, 32, 32))
    style = torch.rand(1, 3, 32, 32) * 255.0
    gram_style = [ref.gram_matrix(f) for f in vgg(ref.normalize_batch(style))]
    content, style_loss = training_loss(vgg, x, y, gram_style)
    total = content + style_loss
    (gy,) = torch.autograd.grad(total, [y])
    out = dict(x=x, y=y, style=style, content=content, style_loss=style_loss, total=total, gy=gy)
    out.update({f"gram_style.{i}": g for i, g in enumerate(gram_style)})
    out.update(heads(state))
    return out


def smooth_images(n):
    """Image-like inputs in [0, 255]: bilinear-upsampled 8x8 noise plus a little fine noise."""
    coarse = F.interpolate(torch.rand(n, 3, 8, 8), size=(32, 32), mode="bilinear", align_corners=False)
    return 255.0 * (0.8 * coarse + 0.2 * torch.rand(n, 3, 32, 32))


def build_train_steps():
    t_state, v_state = generated_state("transformer"), generated_state("vgg")
    net, vgg = ref.TransformerNet(), ref.Vgg16()
    net.load_state_dict(t_state, strict=True)
    vgg.load_state_dict(v_state, strict=True)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    style = smooth_images(1)
    batches = [smooth_images(2) for _ in range(3)]
    gram_style = [ref.gram_matrix(f) for f in vgg(ref.normalize_batch(style))]
    logs = {"content": [], "style_loss": [], "total": []}
    for x in batches:
        opt.zero_grad()
        y = net(x)
        content, style_loss = training_loss(vgg, x, y, gram_style)
        total = content + style_loss
        total.backward()
        opt.step()
        for k, v in (("content", content), ("style_loss", style_loss), ("total", total)):
            logs[k].append(v.item())
    out = dict(style=style, x1=batches[0], x2=batches[1], x3=batches[2])
    out.update({k: torch.tensor(v, dtype=torch.float32) for k, v in logs.items()})
    out.update({f"final.{k}": p for k, p in net.state_dict().items() if stored_param(k)})
    out.update(heads(t_state))
    out.update(heads(v_state))
    return out


BUILDERS = {
    "conv2d": build_conv2d, "reflection_pad": build_reflection_pad, "instance_norm": build_instance_norm,
    "relu": build_relu, "upsample": lambda: build_unary(lambda x: F.interpolate(x, scale_factor=2, mode="nearest"),
                                                     torch.randn(2, 3, 4, 5)),
    "maxpool": build_maxpool, "gram": lambda: build_unary(ref.gram_matrix, torch.randn(2, 4, 5, 6)),
    "mse": build_mse, "normalize": lambda: build_unary(ref.normalize_batch, torch.rand(2, 3, 4, 5) * 255.0),
    "adam": build_adam, "transformer_net": build_transformer_net, "vgg16": build_vgg16,
    "losses": build_losses, "train_steps": build_train_steps,
}


# ---- commands --------------------------------------------------------------------------------

def cmd_write(a):
    out_dir = Path(a.out) if a.out else GOLDEN_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for which in NETS:
        state = generated_state(which)
        self_check(state, which)
        first = next(iter(state))
        w = state[first]
        print(f"{which}: {len(state)} tensors, {sum(v.numel() for v in state.values())} floats; "
              f"head.{first}[:4] = {[float(v) for v in w.flatten()[:4]]}; std {w.std().item():.6f}")
    total = 0
    for name, build in BUILDERS.items():
        torch.manual_seed(0)
        path = fixture(name, build(), out_dir)
        size = path.stat().st_size
        total += size
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        print(f"{size:>10}  {path.name}  sha256 {digest}")
    print(f"{total:>10}  total ({total / 1e6:.3f} MB, limit {SIZE_LIMIT / 1e6:.0f} MB)")
    if total >= SIZE_LIMIT:
        sys.exit(f"fixtures total {total} bytes, over the {SIZE_LIMIT} byte budget")
    if out_dir == GOLDEN_DIR:
        all_fixtures = sum(p.stat().st_size for p in out_dir.parent.rglob("*") if p.is_file())
        print(f"{all_fixtures:>10}  all of {out_dir.parent.relative_to(REPO)}")


def cmd_params(a):
    state = generated_state(a.which)
    self_check(state, a.which)
    save_file(state, a.out)
    print(f"wrote {len(state)} generated {a.which} tensors to {a.out}")


def cmd_check_model(a):
    try:
        state = load_file(a.file)
        bad = [k for k, v in state.items() if v.dtype != torch.float32]
        if bad:
            raise ValueError(f"non-float32 tensors: {bad[:5]}")
        net = ref.TransformerNet()
        net.load_state_dict(state, strict=True)
    except Exception as e:  # report any load problem as a failed check, not a traceback
        print(f"FAIL {a.file}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    torch.manual_seed(0)
    with torch.no_grad():
        y = net(torch.rand(1, 3, 64, 64) * 255.0)
    if not bool(torch.isfinite(y).all()):
        print(f"FAIL {a.file}: output has non-finite values", file=sys.stderr)
        return 1
    print(f"OK {a.file}: {len(state)} tensors, output {list(y.shape)} mean {y.mean().item():.6g}")
    return 0


def main():
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("write", help="write all golden fixtures")
    s.add_argument("--out", help=f"output folder (default {GOLDEN_DIR.relative_to(REPO)})")
    s = sub.add_parser("params", help="write the generated parameters of one net")
    s.add_argument("--which", choices=sorted(NETS), required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("check-model", help="load a Swift-written TransformerNet with strict=True and run it")
    s.add_argument("file")
    a = p.parse_args()
    return {"write": cmd_write, "params": cmd_params, "check-model": cmd_check_model}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
