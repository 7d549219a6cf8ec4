"""Finding, decoding, checking and caching the raw dataset files (used by bnlib.data)."""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import torch


class DataNotFoundError(FileNotFoundError):
    """No copy of a dataset was found and none could be downloaded."""


class DataChecksumError(ValueError):
    """A data file exists but its contents are not the known ones."""


# SHA-256 of the C-contiguous array bytes (../shared/data/README.md for CIFAR-10 quick;
# Fashion-MNIST's decoded IDX arrays, the same for torchvision's and Debian's files).
SHA256 = {
    ("cifar10", "quick"): {
        "x_train": "8ed800dfd8f17bb9d8922112293045c000f29a0128707d972c74f3ca5ce949d2",
        "y_train": "c08b5c3c3c5c69296f1b8c82e584881aa613b671b785da110d200d7bccc3061b",
        "x_test": "da362006b99671213d1a5d856cab2bedf64d40bad4501630ee60f4ceb2d3ec7f",
        "y_test": "6327b0e49549c8cf6ad65317a0fb463ec49ade30d02f63daec6b149052db4922",
    },
    ("fashion_mnist", "full"): {
        "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "y_train": "e3245b63f7c40d1c8b652835f19744d970c1613b40ddac6bcfc87b9c46e16a0b",
        "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "y_test": "d51d859896c55775b9e9e219b77ff03bcec1b6ac322f313544dc3f9e7bc94fae",
    },
}
KEYS = ("x_train", "y_train", "x_test", "y_test")
# torchvision's MD5 of the CIFAR-10 python batch files (torchvision.datasets.CIFAR10)
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
}
# The quick subset: the first 1000 images of each training batch and of the test batch.
QUICK_TRAIN_INDEX = np.concatenate([np.arange(b * 10000, b * 10000 + 1000) for b in range(5)])
QUICK_TEST_INDEX = np.arange(1000)
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

HOW_TO = """To get it, do one of these:
  - go online once: bnlib downloads it with torchvision into the per-user cache ({cache});
  - point the environment variable BNLIB_DATA (or the root= argument) at a folder that holds
      cifar10-quick.npz (this course's offline CIFAR-10 subset; see ../shared/data/README.md),
      torchvision's cifar-10-batches-py/ (full CIFAR-10), or the four Fashion-MNIST IDX files;
  - for Fashion-MNIST on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist
    (it puts the files in /usr/share/datasets/fashion-mnist)."""


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check(arrays, expected: dict, what: str) -> None:
    for key, a in zip(KEYS, arrays):
        if sha256(a) != expected[key]:
            raise DataChecksumError(
                f"{what}: array {key!r} does not match its known SHA-256 (the file is corrupt or "
                f"not the genuine dataset); delete it and load again")


# --- decoders -----------------------------------------------------------------------------

def _cifar_batches(folder: Path):
    """(x_train, y_train, x_test, y_test) from torchvision's cifar-10-batches-py/, MD5-checked."""
    parts = {}
    for name, md5 in CIFAR10_MD5.items():
        path = folder / name
        if _md5(path) != md5:
            raise DataChecksumError(f"{path}: MD5 {_md5(path)} does not match torchvision's {md5}; "
                                    "delete the folder and download it again")
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        x = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # (N, 3072) -> (N, C, H, W)
        parts[name] = (x.transpose(0, 2, 3, 1), np.asarray(entry["labels"], dtype=np.int64))  # -> (N, H, W, C)
    train = [parts[f"data_batch_{i}"] for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in train])
    y_train = np.concatenate([p[1] for p in train])
    x_test, y_test = parts["test_batch"]
    return tuple(np.ascontiguousarray(a) for a in (x_train, y_train, x_test, y_test))


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _find_fashion_files(folder: Path):
    for sub in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist", folder / "raw" / "FashionMNIST" / "raw"):
        paths = []
        for stem in FASHION_FILES:
            hit = next((sub / (stem + ext) for ext in ("", ".gz") if (sub / (stem + ext)).is_file()), None)
            paths.append(hit)
        if all(paths):
            return paths
    return None


def _cifar_folder(folder: Path):
    for sub in (folder / "cifar-10-batches-py", folder / "raw" / "cifar-10-batches-py"):
        if all((sub / n).is_file() for n in CIFAR10_MD5):
            return sub
    return None


def from_folder(name: str, subset: str, folder: Path):
    """-> ((x_train, y_train, x_test, y_test), path) from one folder, or None if it has none."""
    cached = folder / f"{name}-{subset}.pt"
    if cached.is_file():
        return read_cache(cached, name, subset), cached
    if name == "cifar10":
        npz = folder / "cifar10-quick.npz"
        if subset == "quick" and npz.is_file():
            with np.load(npz, allow_pickle=False) as z:
                arrays = tuple(np.ascontiguousarray(z[k]) for k in KEYS)
            _check(arrays, SHA256["cifar10", "quick"], str(npz))
            return arrays, npz
        batches = _cifar_folder(folder)
        if batches is None:
            return None
        arrays = _cifar_batches(batches)
        if subset == "quick":
            x_train, y_train, x_test, y_test = arrays
            arrays = (x_train[QUICK_TRAIN_INDEX], y_train[QUICK_TRAIN_INDEX],
                      x_test[QUICK_TEST_INDEX], y_test[QUICK_TEST_INDEX])
            arrays = tuple(np.ascontiguousarray(a) for a in arrays)
            _check(arrays, SHA256["cifar10", "quick"], f"{batches} (quick subset)")
        return arrays, batches
    paths = _find_fashion_files(folder)
    if paths is None:
        return None
    x_train, y_train, x_test, y_test = (_read_idx(p) for p in paths)
    arrays = (x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64))
    _check(arrays, SHA256["fashion_mnist", "full"], str(paths[0].parent))
    return arrays, paths[0].parent


# --- the tensor cache ---------------------------------------------------------------------

def read_cache(path: Path, name: str, subset: str):
    try:
        blob = torch.load(path, weights_only=True)
        arrays = tuple(blob[k].numpy() for k in KEYS)
        stored = blob["sha256"]
    except Exception as e:  # truncated or foreign file
        raise DataChecksumError(f"{path}: not a readable bnlib cache file ({type(e).__name__}); "
                                "delete it and load again") from None
    _check(arrays, SHA256.get((name, subset), stored), str(path))
    return arrays


def write_cache(folder: Path, name: str, subset: str, arrays) -> Path | None:
    """Save decoded arrays as tensors (atomically: a half-written file never replaces a good one)."""
    path = folder / f"{name}-{subset}.pt"
    blob = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in zip(KEYS, arrays)}
    blob["sha256"] = {k: sha256(a) for k, a in zip(KEYS, arrays)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(blob, tmp)
        os.replace(tmp, path)
        return path
    except OSError:  # a read-only cache only costs speed
        return None


# --- search order -------------------------------------------------------------------------

def _download(name: str, raw: Path) -> None:
    import torchvision

    if name == "cifar10":
        for train in (True, False):
            torchvision.datasets.CIFAR10(root=str(raw), train=train, download=True)
    else:
        for train in (True, False):
            torchvision.datasets.FashionMNIST(root=str(raw), train=train, download=True)


def find(name: str, subset: str, roots, cache: Path, download: bool = True):
    """Search ``roots`` (list of (description, path or None)), the system folder, then download."""
    label = f"{'CIFAR-10' if name == 'cifar10' else 'Fashion-MNIST'} ({subset})"
    looked = []
    candidates = list(roots)
    if name == "fashion_mnist":
        candidates.append(("Debian/Ubuntu package dataset-fashion-mnist", SYSTEM_FASHION_MNIST))
    for desc, folder in candidates:
        if folder is None:
            looked.append(f"{desc}: not set")
            continue
        if not folder.is_dir():
            looked.append(f"{desc}: {folder} (no such folder)")
            continue
        hit = from_folder(name, subset, folder)
        if hit is None:
            looked.append(f"{desc}: {folder} (no {label} there)")
            continue
        arrays, path = hit
        if not str(path).endswith(".pt"):
            write_cache(cache, name, subset, arrays)
        return arrays, str(path)
    offline = os.environ.get("BNLIB_OFFLINE", "").lower() not in ("", "0", "false", "no")
    if download and not offline:
        raw = cache / "raw"
        try:
            _download(name, raw)
        except Exception as e:  # no network, proxy, disk full: reported below, not as a traceback
            looked.append(f"torchvision download into {raw}: failed ({type(e).__name__}: {e})")
        else:
            hit = from_folder(name, subset, raw)
            if hit is not None:
                write_cache(cache, name, subset, hit[0])
                return hit[0], str(hit[1])
            looked.append(f"torchvision download into {raw}: finished but left no usable files")
    else:
        looked.append("torchvision download: skipped (" + ("BNLIB_OFFLINE is set" if offline else "download=False") + ")")
    raise DataNotFoundError(
        f"{label} was not found and could not be downloaded.\nLooked in:\n  - " + "\n  - ".join(looked)
        + "\n" + HOW_TO.format(cache=cache))
