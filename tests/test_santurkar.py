"""bnlib.santurkar: the run plan (each (norm, lr) once), the DLN task and runs, a VGG run on toy tensors,
and the CLI end to end on the offline CIFAR-10 subset."""
import math
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bnlib import models, results, santurkar

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
QUICK_NPZ = SHARED / "cifar10-quick.npz"
needs_quick = pytest.mark.skipif(not QUICK_NPZ.is_file(), reason="needs ../shared/data/cifar10-quick.npz")
QUICK = santurkar.SCALES["quick"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# --- scales and figures ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(santurkar.SCALES))
def test_scales_name_layers_that_exist(name):
    scale = santurkar.SCALES[name]
    assert scale.name == name and scale.to_dict()["name"] == name
    widths = models.VGG_CONFIGS[scale.vgg]
    n_weights = sum(isinstance(v, int) for v in widths) + 3  # convs, two hidden FC layers, the output
    n_relu = n_weights - 1  # relu_inputs: every layer but the output one
    for field in ("fig1_layers", "fig2_layers", "fig3_layers", "fig6_layers"):
        assert all(1 <= k <= n_relu for k in getattr(scale, field)), field
    assert all(1 <= k <= 25 for k in scale.dln_layers)
    assert scale.image_size % 2 ** widths.count("M") == 0


def test_quick_scale_builds_the_documented_model():
    model = models.vgg(QUICK.vgg, "bn", fc_width=QUICK.fc_width, image_size=QUICK.image_size)
    assert len(models.weight_layers(model)) == 8 and len(models.relu_inputs(model)) == 7
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    paper = santurkar.SCALES["paper"]
    assert (paper.vgg, paper.image_size, paper.steps, paper.batch_size, paper.dln_steps) == (
        "vgg16", 32, 15_000, 128, 10_000)


def test_every_figure_uses_known_norms():
    for f, spec in santurkar.FIGURES.items():
        for norm, lr in spec.get("vgg", []) + spec.get("dln", []):
            assert norm == "none" or models.make_norm(norm, 4, 1) is not None, (f, norm)
            assert lr > 0


# --- the plan -------------------------------------------------------------------------------------

@pytest.fixture
def recorded(monkeypatch):
    """run_vgg and run_dln replaced by recorders: the calls, and a stand-in result per run."""
    calls = {"vgg": [], "dln": []}

    def fake_vgg(norm, lr, seed, scale, trace_layers=(), ics_layers=(), device="cpu", probe=False):
        calls["vgg"].append(dict(norm=norm, lr=lr, seed=seed, scale=scale, trace=list(trace_layers),
                                 ics=list(ics_layers), device=device, probe=probe))
        return ("vgg", norm, lr, seed)

    def fake_dln(norm, lr, seed, scale, ics_layers=(), device="cpu", probe=False):
        calls["dln"].append(dict(norm=norm, lr=lr, seed=seed, scale=scale, ics=list(ics_layers), device=device,
                                 probe=probe))
        return ("dln", norm, lr, seed)

    monkeypatch.setattr(santurkar, "run_vgg", fake_vgg)
    monkeypatch.setattr(santurkar, "run_dln", fake_dln)
    return calls


def by_key(calls):
    """{(norm, lr): [call, ...]}"""
    out = {}
    for c in calls:
        out.setdefault((c["norm"], c["lr"]), []).append(c)
    return out


def test_unknown_figures_are_rejected_before_anything_runs(recorded):
    with pytest.raises(ValueError, match=re.escape(f"expected figures from {sorted(santurkar.FIGURES)} (got [7, 99])")):
        santurkar.run_figures([2, 7, 99], QUICK)
    assert recorded == {"vgg": [], "dln": []}


def test_figures_1_2_3_run_each_norm_and_lr_once(recorded):
    out = santurkar.run_figures([1, 2, 3], QUICK, device="meta")
    vgg, dln = by_key(recorded["vgg"]), by_key(recorded["dln"])
    grid = [(n, lr) for lr in santurkar.VGG_LRS for n in ("none", "bn")]  # Fig 3's learning-rate grid
    assert {0.1, 0.5, 0.01} <= set(santurkar.VGG_LRS)  # the paper's rates (Fig 1: 0.1, 0.5; Fig 3: 0.1, 0.01)
    assert sorted(vgg, key=str) == sorted(grid + [("noisy_bn", 0.1)], key=str)
    sweep = [("none", lr) for lr in santurkar.DLN_SWEEP]  # where the standard DLN's ICS sets in
    assert sorted(dln, key=str) == sorted([("none", 1e-6), ("bn", 1e-6), ("none", 1e-7), ("bn", 1e-7)] + sweep, key=str)
    # seeds: VGG at the main learning rate with none/bn/noisy BN gets scale.seeds, everything else
    # side_seeds; the DLN without and with BN gets dln_seeds at every learning rate
    for (norm, lr), runs in vgg.items():
        want = QUICK.seeds if lr == 0.1 else QUICK.side_seeds
        assert [c["seed"] for c in runs] == list(want), (norm, lr)
    for (norm, lr), runs in dln.items():
        assert [c["seed"] for c in runs] == list(QUICK.dln_seeds), (norm, lr)
    assert len(QUICK.dln_seeds) >= 10  # claims about the cheap DLN runs are made over 10 seeds or more
    assert len(recorded["vgg"]) == 3 * 3 + (len(grid) - 2) * 2
    assert len(recorded["dln"]) == (4 + len(sweep)) * len(QUICK.dln_seeds)
    # trace layers: the union over the figures that use the run; ICS: the Fig 3 layers
    fig1, fig2, fig3 = set(QUICK.fig1_layers), set(QUICK.fig2_layers), set(QUICK.fig3_layers)
    want_trace = {("none", 0.1): fig1 | fig2, ("bn", 0.1): fig1 | fig2, ("none", 0.5): fig1, ("bn", 0.5): fig1,
                  ("noisy_bn", 0.1): fig2}
    want_ics = {k: fig3 if k in grid else set() for k in vgg}
    for key, runs in vgg.items():
        for c in runs:
            assert c["trace"] == sorted(want_trace.get(key, set())), key
            assert c["ics"] == sorted(want_ics[key]), key
            assert c["probe"] is False and c["device"] == "meta" and c["scale"] is QUICK
    for c in recorded["dln"]:
        assert c["ics"] == sorted(QUICK.dln_layers) and c["probe"] is False and c["device"] == "meta"
    # the result: {family: {(norm, lr): {seed: run}}}
    assert set(out) == {"vgg", "dln"} and set(out["vgg"]) == set(vgg) and set(out["dln"]) == set(dln)
    assert out["vgg"]["noisy_bn", 0.1] == {s: ("vgg", "noisy_bn", 0.1, s) for s in QUICK.seeds}
    assert out["dln"]["bn", 1e-7] == {s: ("dln", "bn", 1e-7, s) for s in QUICK.dln_seeds}


def test_explicit_seeds_apply_to_every_run(recorded):
    santurkar.run_figures([1, 3], QUICK, seeds=[5, 6])
    assert all(c["seed"] in (5, 6) for c in recorded["vgg"] + recorded["dln"])
    assert len(recorded["vgg"]) == 2 * len(santurkar.VGG_LRS) * 2 and len(recorded["dln"]) == (4 + len(santurkar.DLN_SWEEP)) * 2


def test_probes_and_lp_norms(recorded):
    santurkar.run_figures([1, 4, 5], QUICK)
    vgg, dln = by_key(recorded["vgg"]), by_key(recorded["dln"])
    assert {k for k, runs in vgg.items() if runs[0]["probe"]} == {("none", 0.1), ("bn", 0.1)}  # Fig 4 only
    assert not any(c["probe"] for c in recorded["dln"])
    for norm in ("l1", "l2", "linf"):  # l_p normalizations at the main lr: the side seeds
        assert [c["seed"] for c in vgg[norm, 0.1]] == list(QUICK.side_seeds)
        assert [c["seed"] for c in dln[norm, 1e-6]] == list(QUICK.dln_side_seeds)
        assert vgg[norm, 0.1][0]["trace"] == [] and dln[norm, 1e-6][0]["ics"] == []
    assert vgg["none", 0.5][0]["probe"] is False and vgg["none", 0.5][0]["trace"] == sorted(QUICK.fig1_layers)


# --- the deep linear network ----------------------------------------------------------------------

def test_dln_data_is_deterministic_per_seed_and_linear():
    state = torch.random.get_rng_state()
    x, y = santurkar.dln_data(0)
    assert torch.equal(state, torch.random.get_rng_state())
    assert x.shape == y.shape == (1000, 10)
    x2, y2 = santurkar.dln_data(0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = santurkar.dln_data(1)
    assert not torch.equal(x, x3)
    A_T = torch.linalg.lstsq(x.double(), y.double()).solution  # y = x A^T exactly
    torch.testing.assert_close(x.double() @ A_T, y.double(), rtol=0, atol=1e-4)
    assert 0.6 < A_T.std().item() < 1.4 and abs(x.mean().item()) < 0.1 and 0.9 < x.std().item() < 1.1
    xs, ys = santurkar.dln_data(0, n=7, width=3)
    assert xs.shape == ys.shape == (7, 3)


def test_sum_squared_error():
    out, y = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    assert santurkar.sum_squared_error(out, y).item() == 1 + 0 + 4 + 9


@pytest.mark.parametrize("norm", ["none", "bn"])
def test_run_dln_a_few_steps(norm):
    scale = replace(QUICK, dln_steps=4, dln_measure_every=2)
    run = santurkar.run_dln(norm, 1e-6, 0, scale, ics_layers=(9, 17))
    assert run["diverged_at"] is None and run["probe"] is None and len(run["loss"]) == 4
    assert all(math.isfinite(v) and v > 0 for v in run["loss"])
    assert run["ics"]["steps"] == [1, 2, 4]
    for metric in ("l2", "cosine"):
        assert set(run["ics"][metric]) == {"#9", "#17"}
        assert all(len(v) == 3 and all(map(math.isfinite, v)) for v in run["ics"][metric].values())
    # step 1's loss is the loss of the seed's Glorot-initialized network on the seed's data
    x, y = santurkar.dln_data(0)
    model = models.deep_linear_network(25, 10, None if norm == "none" else QUICK.dln_norm,
                                       generator=torch.Generator().manual_seed(0))
    assert run["loss"][0] == pytest.approx(santurkar.sum_squared_error(model(x), y).item(), rel=1e-5)


def test_run_dln_probes_and_divergence():
    scale = replace(QUICK, dln_steps=2, probe_every=2)
    run = santurkar.run_dln("none", 1e-6, 1, scale, probe=True)
    assert run["probe"]["steps"] == [1, 2] and run["probe"]["eta_rel"] == list(QUICK.dln_etas)
    assert run["ics"] is None  # no ICS layers asked for
    blown = santurkar.run_dln("none", 1e-2, 0, replace(QUICK, dln_steps=30))
    assert blown["diverged_at"] is not None and len(blown["loss"]) == blown["diverged_at"] - 1


@needs_quick
def test_cifar_quick_is_2x2_average_pooled(monkeypatch, tmp_path):
    from bnlib import data

    monkeypatch.setenv("BNLIB_DATA", str(SHARED))
    monkeypatch.setenv("BNLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BNLIB_OFFLINE", "1")
    data._load_cached.cache_clear()
    santurkar.cifar.cache_clear()
    try:
        (x, y), (xt, yt) = santurkar.cifar("quick", 16)
        (x32, y32), _ = santurkar.cifar("quick", 32)
    finally:
        data._load_cached.cache_clear()
        santurkar.cifar.cache_clear()
    assert x.shape == (5000, 3, 16, 16) and xt.shape == (1000, 3, 16, 16) and x.dtype == torch.float32
    assert x32.shape == (5000, 3, 32, 32) and torch.equal(y, y32) and yt.shape == (1000,)
    torch.testing.assert_close(x, torch.nn.functional.avg_pool2d(x32, 2))
    assert x32.mean((0, 2, 3)).abs().max() < 0.05  # standardized


# --- a VGG run on toy tensors ---------------------------------------------------------------------

def test_run_vgg_on_toy_tensors(monkeypatch):
    g = torch.Generator().manual_seed(0)
    toy = ((torch.randn(64, 3, 16, 16, generator=g), torch.randint(0, 10, (64,), generator=g)),
           (torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 10, (32,), generator=g)))
    monkeypatch.setattr(santurkar, "cifar", lambda subset, image_size: toy)  # random tensors: a toy
    scale = replace(QUICK, steps=3, batch_size=16, fc_width=16, eval_every=3, measure_every=2, ics_every=2)
    run = santurkar.run_vgg("bn", 0.1, 0, scale, trace_layers=(1, 6), ics_layers=(3,))
    assert len(run["loss"]) == len(run["acc"]) == 3 and run["diverged_at"] is None
    assert run["eval_step"] == [3] and len(run["test_acc"]) == 1 and run["probe"] is None
    assert run["ics"]["steps"] == [1, 2] and set(run["ics"]["l2"]) == {"#3"}
    assert set(run["trace"]) == {"#1", "#6", "#1 pre-norm", "#6 pre-norm"}
    assert run["units"]["#1"] == run["units"]["#1 pre-norm"] and 0 <= run["units"]["#1"] < 8
    assert 0 <= run["units"]["#6"] < 16
    for k, t in run["trace"].items():
        assert len(t["mean"]) == len(t["var"]) == 3 and t["steps"] == [1, 2], k
        assert t["values"].shape[0] == 2
    # "#k" is after BN (gamma 1, beta 0 at step 1): mean 0 and variance 1 over the batch; "pre-norm" is not
    assert run["trace"]["#1"]["mean"][0] == pytest.approx(0, abs=1e-5)
    assert run["trace"]["#1"]["var"][0] == pytest.approx(1, abs=1e-3)
    assert abs(run["trace"]["#1 pre-norm"]["var"][0] - 1) > 0.01
    plain = santurkar.run_vgg("none", 0.1, 0, scale, trace_layers=(1,))
    assert set(plain["trace"]) == {"#1"} and plain["ics"] is None


# --- the command line -----------------------------------------------------------------------------

def test_main_overrides_the_steps_and_names_the_file(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_run_figures(figures, scale, seeds=None, device="cpu", families=("vgg", "dln")):
        seen.update(figures=figures, scale=scale, seeds=seeds, device=device, families=families)
        return {"vgg": {("bn", 0.1): {0: {"loss": torch.tensor([1.0, 0.5])}}}, "dln": {("none", 1e-6): {0: {}}}}

    monkeypatch.setattr(santurkar, "run_figures", fake_run_figures)
    santurkar.main(["--scale", "quick", "--steps", "5", "--figure", "1", "3", "--out", str(tmp_path),
                    "--device", "cpu"])
    s = seen["scale"]
    assert seen["figures"] == [1, 3] and seen["seeds"] is None and seen["device"] == "cpu"
    assert s.name == "quick-steps5" and s.steps == s.dln_steps == 5
    assert s.eval_every == s.measure_every == s.ics_every == s.probe_every == s.dln_measure_every == 5
    assert s.fig1_layers == QUICK.fig1_layers and s.batch_size == QUICK.batch_size
    path = tmp_path / "santurkar_figs1-3_quick-steps5.json"
    assert f"wrote {path}" in capsys.readouterr().out
    blob = results.load(path)
    assert seen["families"] == ["vgg", "dln"]
    assert blob["config"] == {"figures": [1, 3], "families": ["vgg", "dln"], "scale": s.to_dict() | {
        k: list(v) for k, v in s.to_dict().items() if isinstance(v, tuple)}, "seeds": list(QUICK.seeds),
        "side_seeds": list(QUICK.side_seeds), "dln_seeds": list(QUICK.dln_seeds),
        "dln_side_seeds": list(QUICK.dln_side_seeds)}
    assert blob["result"] == {"vgg": {"bn@0.1": {"0": {"loss": [1.0, 0.5]}}}, "dln": {"none@1e-06": {"0": {}}}}
    # a long run keeps the scale's measurement intervals
    santurkar.main(["--scale", "quick", "--steps", "1000", "--figure", "2", "--out", str(tmp_path), "--seeds", "4"])
    assert seen["scale"].eval_every == QUICK.eval_every and seen["scale"].dln_steps == 1000
    assert seen["seeds"] == [4]
    assert results.load(tmp_path / "santurkar_figs2_quick-steps1000.json")["config"]["seeds"] == [4]
    # --family dln: only the deep linear network runs, and the file says so in its name
    santurkar.main(["--scale", "quick", "--steps", "5", "--figure", "3", "--family", "dln", "--out", str(tmp_path)])
    assert seen["families"] == ["dln"]
    assert results.load(tmp_path / "santurkar_figs3_quick-steps5_dln.json")["config"]["families"] == ["dln"]
    # ... and load gives back run_figures' keys: (norm, lr) tuples and integer seeds
    out, blob = santurkar.load(tmp_path / "santurkar_figs3_quick-steps5_dln.json")
    assert out == {"vgg": {("bn", 0.1): {0: {"loss": [1.0, 0.5]}}}, "dln": {("none", 1e-6): {0: {}}}}
    assert blob["config"]["families"] == ["dln"] and "git_commit" in blob["provenance"]


def test_run_figures_can_leave_out_a_family():
    out = santurkar.run_figures([3], replace(QUICK, dln_steps=3, dln_measure_every=1), seeds=[0], families=["dln"])
    assert out["vgg"] == {} and set(out["dln"]) == {("none", 1e-6), ("bn", 1e-6), ("none", 1e-7), ("bn", 1e-7),
                                                    *(("none", lr) for lr in santurkar.DLN_SWEEP)}
    assert all(len(r[0]["loss"]) == 3 for r in out["dln"].values())


def test_main_rejects_unknown_figures_and_scales(capsys):
    for argv in (["--figure", "7"], ["--scale", "huge"]):
        with pytest.raises(SystemExit) as info:
            santurkar.main(argv)
        assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
@needs_quick
def test_cli_end_to_end(tmp_path):
    env = dict(os.environ, BNLIB_DATA=str(SHARED), BNLIB_CACHE=str(tmp_path / "cache"), BNLIB_OFFLINE="1",
               BNLIB_PROGRESS="0", OMP_NUM_THREADS="1")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "bnlib.santurkar", "--scale", "quick", "--steps", "2", "--seeds", "0",
                           "--figure", "2", "--out", str(out), "--device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    path = out / "santurkar_figs2_quick-steps2.json"
    assert f"wrote {path}" in done.stdout
    blob = results.load(path)
    assert blob["name"] == "santurkar_figs2_quick-steps2"
    assert blob["config"]["scale"]["name"] == "quick-steps2" and blob["config"]["scale"]["steps"] == 2
    assert blob["config"]["figures"] == [2] and blob["config"]["seeds"] == [0]
    prov = blob["provenance"]
    assert set(prov) >= {"git_commit", "git_dirty", "device", "torch", "started", "finished", "seconds"}
    assert prov["device"].startswith("cpu") and prov["torch"] == torch.__version__
    assert set(blob["result"]["vgg"]) == {"none@0.1", "bn@0.1", "noisy_bn@0.1"} and blob["result"]["dln"] == {}
    for key, runs in blob["result"]["vgg"].items():
        run = runs["0"]
        assert len(run["loss"]) == 2 and all(map(math.isfinite, run["loss"])) and run["eval_step"] == [2], key
        labels = {f"#{k}" for k in QUICK.fig2_layers}
        assert set(run["trace"]) == (labels if key == "none@0.1" else labels | {f"{k} pre-norm" for k in labels})
        assert run["trace"]["#1"]["steps"] == [1, 2] and len(run["trace"]["#1"]["values"]) == 2


def test_cli_paper_scale_dln_end_to_end(tmp_path):
    # the paper-scale command itself (its DLN part needs no data), at 3 steps
    env = dict(os.environ, BNLIB_PROGRESS="0", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "bnlib.santurkar", "--scale", "paper", "--steps", "3", "--family", "dln",
                           "--figure", "3", "10", "--out", str(tmp_path), "--device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out, blob = santurkar.load(tmp_path / "santurkar_figs3-10_paper-steps3_dln.json")
    assert blob["config"]["scale"]["dln_steps"] == 3 and blob["config"]["families"] == ["dln"]
    assert out["vgg"] == {} and set(out["dln"][("bn", 1e-6)]) == {0, 1, 2}  # the paper's three seeds
    run = out["dln"][("bn", 1e-6)][0]
    assert len(run["loss"]) == 3 and run["probe"]["steps"] == [1, 3] and run["ics"]["steps"] == [1, 3]
    assert len(run["probe"]["eta"]) == len(santurkar.SCALES["paper"].dln_etas)


@pytest.mark.slow
def test_worker_processes_give_the_results_of_one_process():
    tiny = replace(QUICK, steps=3, eval_every=3, measure_every=1, ics_every=1, probe_every=1, dln_steps=3,
                   dln_measure_every=1)
    one = santurkar.run_figures([3, 10], tiny, seeds=[0, 1])
    two = santurkar.run_figures([3, 10], tiny, seeds=[0, 1], workers=2)
    assert one.keys() == two.keys() and all(one[f].keys() == two[f].keys() for f in one)
    for family in one:
        for key, runs in one[family].items():
            for seed, run in runs.items():
                other = two[family][key][seed]
                assert run["loss"] == other["loss"], (family, key, seed)
                assert run["ics"] == other["ics"] and run["probe"] == other["probe"], (family, key, seed)
