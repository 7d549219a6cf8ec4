"""bnlib.results: result files carry their provenance."""
import time

import pytest
import torch

from bnlib import results


def test_save_and_load_round_trip(tmp_path):
    started = time.time()
    path = results.save(tmp_path / "fig1.json", "fig1", {"steps": 3, "lr": 0.1},
                        {"acc": torch.tensor([0.1, 0.5]), "nested": {"x": (1, 2)}}, started)
    blob = results.load(path)
    assert blob["config"] == {"steps": 3, "lr": 0.1}
    assert blob["result"] == {"acc": [pytest.approx(0.1), 0.5], "nested": {"x": [1, 2]}}
    prov = blob["provenance"]
    assert prov["device"].startswith(("cpu", "cuda")) and prov["torch"] == torch.__version__
    assert set(prov) >= {"git_commit", "device", "started", "finished", "seconds"}
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_file_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="paper-scale command"):
        results.load(tmp_path / "nope.json")


def test_foreign_file_is_rejected(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="missing"):
        results.load(tmp_path / "x.json")


def test_floats_keep_float32_precision_and_the_file_stays_compact(tmp_path):
    x = torch.linspace(0, 1, 1000)  # float32 values with long float64 reprs
    path = results.save(tmp_path / "big.json", "big", {}, {"x": x, "y": 38896.12109375}, started=0.0)
    back = results.load(path)["result"]
    assert torch.equal(torch.tensor(back["x"], dtype=torch.float32), x)  # exact in float32
    assert back["y"] == 38896.1211  # 9 significant digits
    assert len(path.read_text().splitlines()) == 6  # {, 4 keys, }: one line per top-level key
