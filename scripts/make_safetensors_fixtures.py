"""Writes the safetensors fixtures read by Tests/NSTModelTests/SafeTensorsTests.swift.

Run from the package root with the reference environment:
    ~/.venv-ref/bin/python scripts/make_safetensors_fixtures.py

python_f32.safetensors   F32 tensors (4-D, 1-D with awkward values, 0-d scalar, zero-size) and
                         metadata, written by safetensors.torch.save_file; the test knows the values.
python_f32_plain.safetensors  the same tensors without metadata: the Swift writer must
                         reproduce this file byte for byte.
python_dtypes.safetensors  the same values as F64, F16 and BF16, each next to torch's own
                         conversion to F32 ("<name>_as_f32"), so the test checks our conversion
                         bit for bit against torch's.
python_i64.safetensors   one F32 and one I64 tensor (like BatchNorm's num_batches_tracked).
"""
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NSTModelTests", "Fixtures", "safetensors")


def main():
    os.makedirs(OUT, exist_ok=True)

    # Values the Swift test rebuilds exactly: arange(n) * 0.25 - 3 is exact in float32.
    conv = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3) * 0.25 - 3
    awkward = torch.tensor([1 / 3, -0.1, 1e-38, 3.4e38, -0.0, 1e-45, 7.0], dtype=torch.float32)
    f32 = {
        "conv1.conv2d.weight": conv,
        "in1.bias": awkward,
        "scale": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
    }
    save_file(f32, os.path.join(OUT, "python_f32.safetensors"),
              metadata={"format": "pt", "source": "make_safetensors_fixtures.py", "note": "é \"quoted\""})
    save_file(f32, os.path.join(OUT, "python_f32_plain.safetensors"))

    # Values that exercise rounding, subnormals, infinities and NaN in every narrow format.
    base = torch.tensor([0.0, -2.0, 0.5, 1 / 3, 65504.0, 70000.0, 6e-8, 1e-5, -1e-40, 1e30,
                         float("inf"), float("-inf"), float("nan")], dtype=torch.float64)
    dtypes = {}
    for name, dtype in [("f64", torch.float64), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
        narrow = base.to(dtype).reshape(13, 1)
        dtypes[name] = narrow
        dtypes[name + "_as_f32"] = narrow.to(torch.float32)
    save_file(dtypes, os.path.join(OUT, "python_dtypes.safetensors"))

    save_file({"bn.weight": torch.ones(3), "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64)},
              os.path.join(OUT, "python_i64.safetensors"))
    for name in os.listdir(OUT):
        os.chmod(os.path.join(OUT, name), 0o644)  # save_file creates files readable by the owner only


if __name__ == "__main__":
    main()
