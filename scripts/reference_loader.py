"""Imports the PyTorch reference (../shared/reference/torch_reference.py, or $TORCH_REFERENCE) as a
module, for the fixture and check scripts beside this file."""
import importlib.util
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_reference():
    path = Path(os.environ.get("TORCH_REFERENCE") or REPO.parent / "shared" / "reference" / "torch_reference.py")
    if not path.is_file():
        sys.exit(f"torch reference not found at {path} (set TORCH_REFERENCE=/path/to/torch_reference.py)")
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
