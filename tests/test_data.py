"""bnlib.data: offline sources, SHA-256 checks, the tensor cache and the clear errors."""
import hashlib
import os
import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from bnlib import _sources, data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
QUICK_NPZ = SHARED / "cifar10-quick.npz"
needs_quick = pytest.mark.skipif(not QUICK_NPZ.is_file(), reason="needs ../shared/data/cifar10-quick.npz")
needs_fashion = pytest.mark.skipif(_sources._find_fashion_files(_sources.SYSTEM_FASHION_MNIST) is None,
                                   reason="needs the dataset-fashion-mnist package")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own empty cache, no BNLIB_DATA, no download, and no memoized loads."""
    monkeypatch.setenv("BNLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BNLIB_DATA", raising=False)
    monkeypatch.delenv("BNLIB_OFFLINE", raising=False)

    def offline(name, raw):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(_sources, "_download", offline)
    data._load_cached.cache_clear()
    yield
    data._load_cached.cache_clear()


@needs_quick
def test_quick_from_npz_matches_readme():
    d = data.load_cifar10("quick", root=SHARED)
    assert d.x_train.shape == (5000, 32, 32, 3) and d.x_train.dtype == torch.uint8
    assert d.y_train.dtype == torch.int64 and d.x_test.shape == (1000, 32, 32, 3)
    assert d.y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert d.y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    for key, want in _sources.SHA256["cifar10", "quick"].items():
        assert _sources.sha256(getattr(d, key).numpy()) == want


@needs_quick
def test_bnlib_data_env_and_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BNLIB_DATA", str(SHARED))
    first = data.load_cifar10("quick")
    assert first.source == str(QUICK_NPZ)
    cached = tmp_path / "cache" / "cifar10-quick.pt"
    assert cached.is_file()
    # second load, with BNLIB_DATA gone: served from the per-user cache
    monkeypatch.delenv("BNLIB_DATA")
    data._load_cached.cache_clear()
    second = data.load_cifar10("quick")
    assert second.source == str(cached)
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)


def _fake_full_cifar(folder: Path, quick) -> dict:
    """A cifar-10-batches-py/ folder whose first 1000 images per batch are the quick subset.

    The other 9000 per batch are zeros, so this is not CIFAR-10: the MD5s are patched by the test.
    """
    x_train, y_train, x_test, y_test = quick
    folder.mkdir(parents=True)
    md5 = {}
    for b in range(6):
        name = f"data_batch_{b + 1}" if b < 5 else "test_batch"
        x = np.zeros((10000, 32, 32, 3), np.uint8)
        y = np.zeros(10000, np.int64)
        src_x, src_y = (x_train[b * 1000:(b + 1) * 1000], y_train[b * 1000:(b + 1) * 1000]) if b < 5 else (x_test, y_test)
        x[:1000], y[:1000] = src_x, src_y
        entry = {"data": x.transpose(0, 3, 1, 2).reshape(10000, 3072), "labels": y.tolist()}  # (N,H,W,C) -> (N, 3072)
        (folder / name).write_bytes(pickle.dumps(entry))
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return md5


@needs_quick
def test_quick_extracted_from_full_is_byte_identical(tmp_path, monkeypatch):
    npz = data.load_cifar10("quick", root=SHARED)
    quick = tuple(getattr(npz, k).numpy() for k in _sources.KEYS)
    md5 = _fake_full_cifar(tmp_path / "full" / "cifar-10-batches-py", quick)
    monkeypatch.setattr(_sources, "CIFAR10_MD5", md5)
    data._load_cached.cache_clear()
    extracted = data.load_cifar10("quick", root=tmp_path / "full")
    assert extracted.source.endswith("cifar-10-batches-py")
    for key in _sources.KEYS:
        assert getattr(extracted, key).numpy().tobytes() == getattr(npz, key).numpy().tobytes()


def test_offline_and_nothing_found_is_one_clear_error():
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_cifar10("quick")
    message = str(info.value)
    for must in ["CIFAR-10 (quick) was not found", "BNLIB_DATA: not set", "per-user cache",
                 "torchvision download", "failed (URLError", "go online once", "cifar10-quick.npz",
                 "apt-get install dataset-fashion-mnist"]:
        assert must in message, must
    assert info.value.__cause__ is None and info.value.__context__ is None  # no chained tracebacks


def test_bnlib_offline_skips_download(monkeypatch):
    monkeypatch.setenv("BNLIB_OFFLINE", "1")
    with pytest.raises(data.DataNotFoundError, match="skipped \\(BNLIB_OFFLINE is set\\)"):
        data.load_cifar10("full")


@needs_quick
def test_corrupt_npz_names_the_file(tmp_path):
    with np.load(QUICK_NPZ) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["x_train"][0, 0, 0, 0] ^= 1  # one bit
    bad = tmp_path / "bad"
    bad.mkdir()
    np.savez(bad / "cifar10-quick.npz", **arrays)
    with pytest.raises(data.DataChecksumError, match=str(bad / "cifar10-quick.npz")):
        data.load_cifar10("quick", root=bad)


@needs_quick
def test_corrupt_cache_names_the_file(tmp_path):
    data.load_cifar10("quick", root=SHARED)
    cached = tmp_path / "cache" / "cifar10-quick.pt"
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated
    data._load_cached.cache_clear()
    with pytest.raises(data.DataChecksumError, match=str(cached)):
        data.load_cifar10("quick")


def test_bad_names_say_what_was_expected():
    with pytest.raises(ValueError, match="expected dataset 'cifar10' or 'fashion_mnist' \\(got 'mnist'\\)"):
        data.load("mnist")
    with pytest.raises(ValueError, match="expected subset in \\('full',\\)"):
        data.load("fashion-mnist", "quick")


@needs_fashion
def test_fashion_mnist_from_the_debian_package():
    d = data.load_fashion_mnist()
    assert d.source == str(_sources.SYSTEM_FASHION_MNIST)
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert torch.bincount(d.y_train).tolist() == [6000] * 10
    x, y = d.tensors("test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (10000,)


@needs_quick
def test_tensors_layout_and_standardization():
    d = data.load_cifar10("quick", root=SHARED)
    x, y = d.tensors("train")
    assert x.shape == (5000, 3, 32, 32) and x.dtype == torch.float32
    raw, _ = d.tensors("train", standardize=False)
    assert raw.min() >= 0 and raw.max() <= 1
    # channel 0 of image 0, pixel (0, 0): HWC -> CHW preserved
    assert raw[0, 1, 2, 3].item() == pytest.approx(d.x_train[0, 2, 3, 1].item() / 255)
    assert x.mean((0, 2, 3)).abs().max() < 0.05
    with pytest.raises(ValueError, match="expected split 'train' or 'test'"):
        d.tensors("valid")


def test_cli_lists_sources(capsys, monkeypatch):
    if QUICK_NPZ.is_file():
        monkeypatch.setenv("BNLIB_DATA", str(SHARED))
    data._main()
    out = capsys.readouterr().out
    assert "cifar10" in out and "fashion_mnist" in out
