"""CIFAR-10 and Fashion-MNIST, offline first, checked by SHA-256, kept in memory as tensors.

Downloaded with torchvision when online and nothing is found locally.

Where a dataset is looked for, in order:

1. ``root=`` if given, else the folder in the environment variable ``BNLIB_DATA``;
2. the per-user cache (``BNLIB_CACHE``, else ``$XDG_CACHE_HOME/bnlib``, else ``~/.cache/bnlib``);
3. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package
   ``dataset-fashion-mnist``);
4. a torchvision download into the cache, when online (``BNLIB_OFFLINE=1`` skips it).

A folder may hold ``cifar10-quick.npz`` (this course's offline subset), torchvision's
``cifar-10-batches-py/``, or the four Fashion-MNIST IDX files (plain, ``.gz``, or under
``FashionMNIST/raw/`` as torchvision stores them). Whatever is decoded is saved in the cache
as tensors, so the next load takes a fraction of a second.

Usage::

    from bnlib import data
    cifar = data.load_cifar10("quick")          # ImageData, uint8 (N, 32, 32, 3)
    x, y = cifar.tensors("train")               # float32 (N, 3, 32, 32), standardized
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import _sources as src
from ._sources import DataChecksumError, DataNotFoundError

__all__ = [
    "ImageData", "load", "load_cifar10", "load_fashion_mnist", "data_roots", "cache_dir",
    "DataNotFoundError", "DataChecksumError",
    "CIFAR10_MEAN", "CIFAR10_STD", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD",
    "CIFAR10_CLASSES", "FASHION_MNIST_CLASSES",
]

# Per-channel mean and standard deviation of the full training sets, pixels scaled to [0, 1]
# (the values quoted across the literature; the data chapter recomputes and checks them).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_STATS = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "fashion_mnist": (FASHION_MNIST_MEAN, FASHION_MNIST_STD)}
SUBSETS = {"cifar10": ("quick", "full"), "fashion_mnist": ("full",)}


@dataclass(frozen=True, eq=False)
class ImageData:
    """A dataset held in memory, in torchvision's layout.

    x_train, x_test: uint8, (N, H, W, C) for CIFAR-10 and (N, H, W) for Fashion-MNIST.
    y_train, y_test: int64, (N,).
    """

    name: str
    subset: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    source: str  # where it was read from (a path, or "download")

    @property
    def mean(self) -> tuple[float, ...]:
        return _STATS[self.name][0]

    @property
    def std(self) -> tuple[float, ...]:
        return _STATS[self.name][1]

    def tensors(self, split: str = "train", standardize: bool = True,
                dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as (N, C, H, W) floats in [0, 1], standardized per channel by default.

        The mean and std are the dataset's published training-set values (``self.mean``,
        ``self.std``), the same for every subset, so quick and full runs see the same scale.
        """
        if split not in ("train", "test"):
            raise ValueError(f"expected split 'train' or 'test' (got {split!r})")
        x = self.x_train if split == "train" else self.x_test
        y = self.y_train if split == "train" else self.y_test
        x = x.to(dtype) / 255.0
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # -> (N, C, H, W)
        if standardize:
            mean = torch.tensor(self.mean, dtype=dtype).view(1, -1, 1, 1)  # (1, C, 1, 1)
            std = torch.tensor(self.std, dtype=dtype).view(1, -1, 1, 1)
            x = (x - mean) / std
        return x.contiguous(), y.clone()

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}, subset={self.subset!r}, "
                f"train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)})")


def cache_dir() -> Path:
    """The per-user cache: BNLIB_CACHE, else $XDG_CACHE_HOME/bnlib, else ~/.cache/bnlib."""
    if os.environ.get("BNLIB_CACHE"):
        return Path(os.environ["BNLIB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "bnlib"


def data_roots(root: str | os.PathLike | None = None) -> list[tuple[str, Path | None]]:
    """The folders searched before any download, as (description, path) in search order."""
    if root is not None:
        first = ("root argument", Path(root).expanduser())
    elif os.environ.get("BNLIB_DATA"):
        first = ("BNLIB_DATA", Path(os.environ["BNLIB_DATA"]).expanduser())
    else:
        first = ("BNLIB_DATA", None)
    return [first, ("per-user cache", cache_dir())]


def load(name: str, subset: str | None = None, root: str | os.PathLike | None = None,
         download: bool = True) -> ImageData:
    """Load ``"cifar10"`` (subsets ``"quick"``, ``"full"``) or ``"fashion_mnist"`` (``"full"``).

    Raises DataNotFoundError (one message naming every way to get the data) when nothing is
    found and nothing can be downloaded, and DataChecksumError naming the file whose contents
    do not match the known SHA-256 / MD5.
    """
    name = name.lower().replace("-", "_")
    if name not in SUBSETS:
        raise ValueError(f"expected dataset 'cifar10' or 'fashion_mnist' (got {name!r})")
    subset = subset or SUBSETS[name][0]
    if subset not in SUBSETS[name]:
        raise ValueError(f"expected subset in {SUBSETS[name]} for {name} (got {subset!r})")
    root_key = str(Path(root).expanduser().resolve()) if root is not None else os.environ.get("BNLIB_DATA")
    return _load_cached(name, subset, root_key, str(cache_dir()), download)


def load_cifar10(subset: str = "quick", root=None, download: bool = True) -> ImageData:
    """CIFAR-10: ``"quick"`` (5000 train / 1000 test, see ../shared/data/README.md) or ``"full"``."""
    return load("cifar10", subset, root, download)


def load_fashion_mnist(subset: str = "full", root=None, download: bool = True) -> ImageData:
    """Fashion-MNIST, 60000 train / 10000 test 28×28 grey images."""
    return load("fashion_mnist", subset, root, download)


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, subset: str, root_key: str | None, cache_key: str, download: bool) -> ImageData:
    roots = data_roots(root_key)
    arrays, where = src.find(name, subset, roots, Path(cache_key), download=download)
    x_train, y_train, x_test, y_test = (torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
    classes = CIFAR10_CLASSES if name == "cifar10" else FASHION_MNIST_CLASSES
    return ImageData(name, subset, x_train, y_train, x_test, y_test, classes, where)


def _main() -> None:  # python -m bnlib.data: where is each dataset found?
    for name, subsets in SUBSETS.items():
        for subset in subsets:
            try:
                d = load(name, subset, download=False)
                print(f"{name:>13} {subset:>5}: {d.source}  train={tuple(d.x_train.shape)}")
            except (DataNotFoundError, DataChecksumError) as e:
                print(f"{name:>13} {subset:>5}: not available ({type(e).__name__})")


if __name__ == "__main__":
    _main()
