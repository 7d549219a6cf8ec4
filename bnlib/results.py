"""Saving experiment results with their provenance, and loading them back.

A paper-scale run (on a GPU, say) writes ``results/<name>.json``; the chapter that shows it
loads the file and prints where it came from. A result file holds:

    {"name": ..., "config": {...}, "result": {...},
     "provenance": {"git_commit", "git_dirty", "device", "torch", "bnlib", "python",
                    "platform", "started", "finished", "seconds"}}
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device | str | None = None) -> str:
    """'cpu (x86_64, 2 threads)' or 'cuda: NVIDIA H100 80GB HBM3'."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(started: float, device=None) -> dict:
    from . import __version__

    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "device": device_name(device),
        "torch": torch.__version__,
        "bnlib": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
    }


def save(path: str | Path, name: str, config: dict, result: dict, started: float, device=None) -> Path:
    """Write one result file (JSON; tensors become lists). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"name": name, "config": config, "result": _plain(result), "provenance": provenance(started, device)}
    tmp = path.with_suffix(".tmp")
    # one top-level key per line; the (long) result lists compact
    text = "{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
                               for k, v in blob.items()) + "\n}\n"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def load(path: str | Path) -> dict:
    """Read a result file; raises FileNotFoundError naming the command that makes it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a result file at {path} (got none): run the paper-scale "
                                "command that writes it (see the chapter's 'paper scale' section)")
    blob = json.loads(path.read_text(encoding="utf-8"))
    missing = {"name", "config", "result", "provenance"} - set(blob)
    if missing:
        raise ValueError(f"expected a bnlib result file with keys name/config/result/provenance "
                         f"(got one missing {sorted(missing)}): {path}")
    return blob


def _plain(x):
    if isinstance(x, torch.Tensor):
        return _plain(x.tolist())
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist"):  # numpy arrays and scalars
        return _plain(x.tolist())
    if isinstance(x, float):  # measurements are float32: 9 significant digits give it back exactly
        return float(f"{x:.9g}")
    return x
