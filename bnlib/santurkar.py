"""The experiments of Santurkar et al. (2018), at a quick and a paper scale, with a CLI.

"How does batch normalization help optimization?": the runs behind its figures, at two scales
from one code path.

    scale = SCALES["quick"]                        # CPU, minutes: what the chapter runs
    out = run_figures([1, 2, 3], scale)            # {"vgg": {...}, "dln": {...}}
    out["vgg"]["bn", 0.1][seed]["acc"]             # per-step training accuracy of one run

    python -m bnlib.santurkar --figure 1 2 3 --scale paper     # the paper's settings; writes
                                                                # results/santurkar_figs1-2-3_paper.json

One training run serves every figure that needs it: a run of (norm, lr) records the
activation traces, moments and ICS of all the layers any requested figure plots.
Settings: Santurkar, Tsipras, Ilyas and Madry, "How Does Batch Normalization Help Optimization?"
(NeurIPS 2018, arXiv:1805.11604), Sections 2-3 and Appendix A; what we chose where the paper is
silent is said in ``Scale`` and in the chapter.
"""
from __future__ import annotations

import argparse
import functools
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from . import data, models, results, train
from .hooks import ActivationTrace
from .measure import ICSTrace, LandscapeTrace
from .utils import progress, worker_pool


@dataclass(frozen=True)
class Scale:
    name: str
    cifar: str = "quick"            # "quick": the 5000-image offline subset; "full": 50000 images
    image_size: int = 16            # 16: images 2x2 average-pooled (quick); 32: as they are
    vgg: str = "tiny"               # a key of models.VGG_CONFIGS
    fc_width: int = 64
    steps: int = 200                # VGG SGD steps (paper: 15,000)
    batch_size: int = 64            # paper: 128
    eval_every: int = 50
    measure_every: int = 10         # kept activation samples every this many steps
    ics_every: int = 20             # ICS (4 extra forward/backward passes for 2 layers) every this many
    fig1_layers: tuple = (2, 6)     # paper: Layers #3 and #11 (of 16)
    fig2_layers: tuple = (1, 5, 7)  # paper: #2, #9, #13
    fig3_layers: tuple = (3, 6)     # paper: #5, #10
    dln_steps: int = 300            # paper: 10,000
    dln_measure_every: int = 20
    dln_layers: tuple = (9, 17)     # paper: #9, #17 (of 25)
    dln_norm: str = "torch_bn"      # torch's BN (equal to bnlib's to 1e-10, and 3x faster on 10 units)
    fig6_layers: tuple = (6,)       # paper: #11
    probe_every: int = 25           # landscape probes (1 + len(etas) forward/backward passes) every this many
    vgg_etas: tuple = (0.5, 1.4, 4)             # step sizes along -g, times lr (paper: [1/2, 4] x lr)
    dln_etas: tuple = (0.01, 0.1, 1, 10, 30)    # paper: [1/100, 30] x lr
    seeds: tuple = (0, 1, 2)        # VGG runs at the main learning rate (0.1)
    side_seeds: tuple = (0, 1)      # VGG runs at the other learning rates (0.5 and 0.01)
    dln_seeds: tuple = tuple(range(10))     # DLN runs without and with BN (cheap: seconds each)
    dln_side_seeds: tuple = (0, 1, 2)       # DLN runs with the l_p normalizations (slower: 6 s each)

    def to_dict(self) -> dict:
        return asdict(self)


SCALES = {
    "quick": Scale("quick"),
    "paper": Scale("paper", cifar="full", image_size=32, vgg="vgg16", fc_width=512, steps=15_000, batch_size=128,
                   eval_every=500, measure_every=100, ics_every=100, fig1_layers=(3, 11), fig2_layers=(2, 9, 13),
                   fig3_layers=(5, 10), dln_steps=10_000, dln_measure_every=100, seeds=(0, 1, 2),
                   side_seeds=(0, 1, 2), dln_seeds=(0, 1, 2), dln_side_seeds=(0, 1, 2), fig6_layers=(11,),
                   probe_every=100,
                   vgg_etas=(0.5, 0.75, 1, 1.5, 2, 3, 4), dln_etas=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30)),
}
# Fig. 4 on a CPU, long enough to decide: quick VGG, 1000 steps, the paper's 7 step sizes every 100 steps
SCALES["long"] = replace(SCALES["quick"], name="long", steps=1000, eval_every=500, probe_every=100,
                         vgg_etas=SCALES["paper"].vgg_etas)

# (norm, learning rate) of the VGG and DLN runs each figure needs, and what it measures in them:
# "trace": activations of these layers, "ics": ICS of the Fig 3 layers, "probe": landscape probes
LP = ("none", "bn", "l1", "l2", "linf")  # standard, BN and the l_p normalizations (Sec. 3.3)
VGG_LRS = (0.1, 0.01, 0.03, 0.2, 0.5)  # Fig. 3: the paper's two rates and a small grid to find each model's best
DLN_SWEEP = (3e-8, 3e-7)  # Fig. 3b: with 1e-7 and 1e-6, where the standard DLN's ICS sets in
FIGURES = {
    1: {"vgg": [(n, lr) for lr in (0.1, 0.5) for n in ("none", "bn")], "trace": "fig1_layers"},
    2: {"vgg": [(n, 0.1) for n in ("none", "bn", "noisy_bn")], "trace": "fig2_layers"},
    3: {"vgg": [(n, lr) for lr in VGG_LRS for n in ("none", "bn")], "ics": "fig3_layers",
        "dln": [(n, lr) for lr in (1e-6, 1e-7) for n in ("none", "bn")] + [("none", lr) for lr in DLN_SWEEP]},
    4: {"vgg": [("none", 0.1), ("bn", 0.1)], "probe": True},
    5: {"vgg": [(n, 0.1) for n in LP], "dln": [(n, 1e-6) for n in LP]},
    6: {"vgg": [(n, 0.1) for n in LP], "trace": "fig6_layers"},
    10: {"dln": [("none", 1e-6), ("bn", 1e-6)], "probe": True},
    11: {"vgg": [("none", 0.1), ("bn", 0.1)], "dln": [("none", 1e-6), ("bn", 1e-6)], "probe": True},
    12: {"vgg": [(n, 0.1) for n in LP], "probe": True},
    13: {"dln": [(n, 1e-6) for n in LP], "probe": True},
}


@functools.lru_cache(maxsize=2)
def cifar(subset: str = "quick", image_size: int = 16):
    """(x_train, y_train), (x_test, y_test): standardized CIFAR-10 tensors, (N, 3, s, s)."""
    ds = data.load_cifar10(subset)
    out = []
    for split in ("train", "test"):
        x, y = ds.tensors(split)
        if image_size != 32:
            x = F.adaptive_avg_pool2d(x, image_size)  # (N, 3, 32, 32) -> (N, 3, s, s)
        out.append((x, y))
    return tuple(out)


def run_vgg(norm: str, lr: float, seed: int, scale: Scale, trace_layers=(), ics_layers=(), device="cpu",
            probe: bool = False) -> dict:
    """Train one VGG (Glorot init from ``seed``) with plain SGD; return its history and measurements."""
    train_set, test_set = (tuple(t.to(device) for t in s) for s in cifar(scale.cifar, scale.image_size))
    gen = torch.Generator().manual_seed(seed)
    model = models.vgg(scale.vgg, None if norm == "none" else norm, fc_width=scale.fc_width, generator=gen,
                       noise_generator=torch.Generator().manual_seed(10_000 + seed), image_size=scale.image_size).to(device)
    weights, pre = models.weight_layers(model), models.relu_inputs(model)
    units = {f"#{k}": int(torch.randint(weights[k - 1].weight.shape[0], (1,),  # one unit per (seed, layer)
                                        generator=torch.Generator().manual_seed(1000 * seed + k)))
             for k in trace_layers}
    traced = {f"#{k}": pre[k - 1] for k in trace_layers}  # the input of layer #k's ReLU (after its norm)
    if norm != "none":  # ... and the same unit before the norm: the conv/linear output
        traced |= {f"#{k} pre-norm": weights[k - 1] for k in trace_layers}
        units |= {f"#{k} pre-norm": units[f"#{k}"] for k in trace_layers}
    trace = ActivationTrace(traced, units, every=scale.measure_every)
    ics = ICSTrace({f"#{k}": weights[k - 1] for k in ics_layers}, lr, every=scale.ics_every)
    probes = LandscapeTrace(scale.vgg_etas, lr, every=scale.probe_every)
    hooks = ([ics] if ics_layers else []) + ([probes] if probe else [])
    cfg = train.TrainConfig(steps=scale.steps, batch_size=scale.batch_size, lr=lr, eval_every=scale.eval_every,
                            seed=seed)
    with trace:
        h = train.fit(model, train_set, test_set, cfg, on_step=hooks,
                      desc=f"VGG {norm} lr={lr} seed={seed}", on_nonfinite="stop")
    return {"loss": h.loss, "acc": h.acc, "eval_step": h.eval_step, "test_acc": h.test_acc,
            "test_loss": h.test_loss, "diverged_at": h.diverged_at, "ics": ics.result() if ics_layers else None,
            "probe": probes.result() if probe else None,
            "units": units, "trace": {k: {"mean": trace.mean[k], "var": trace.var[k], "steps": trace.steps[k],
                                          "values": trace.values(k)} for k in trace.modules}}


def dln_data(seed: int, n: int = 1000, width: int = 10):
    """The DLN's regression task: x ~ N(0, I) (n, width), targets y = x A^T with A_ij ~ N(0, 1)."""
    gen = torch.Generator().manual_seed(20_000 + seed)
    x = torch.randn(n, width, generator=gen)
    A = torch.randn(width, width, generator=gen)
    return x, x @ A.T  # (n, width), (n, width)


def sum_squared_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||out - y||^2 summed over the points and outputs (the paper does not say sum or mean)."""
    return ((out - y) ** 2).sum()


def run_dln(norm: str, lr: float, seed: int, scale: Scale, ics_layers=(), device="cpu", probe: bool = False) -> dict:
    """Full-batch gradient descent on the 25-layer deep linear network; loss and ICS per step."""
    x, y = (t.to(device) for t in dln_data(seed))
    model = models.deep_linear_network(25, 10, {"none": None, "bn": scale.dln_norm}.get(norm, norm),
                                       generator=torch.Generator().manual_seed(seed)).to(device)
    weights = models.weight_layers(model)
    ics = ICSTrace({f"#{k}": weights[k - 1] for k in ics_layers}, lr, every=scale.dln_measure_every,
                   loss_fn=sum_squared_error)
    probes = LandscapeTrace(scale.dln_etas, lr, every=scale.probe_every, loss_fn=sum_squared_error)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses, diverged_at = [], None
    for step in progress(range(1, scale.dln_steps + 1), desc=f"DLN {norm} lr={lr} seed={seed}"):
        loss = sum_squared_error(model(x), y)
        if not torch.isfinite(loss):
            diverged_at = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        ics(step, model, x, y)
        if probe:
            probes(step, model, x, y)
        opt.step()
        losses.append(loss.item())
    return {"loss": losses, "diverged_at": diverged_at, "ics": ics.result() if ics_layers else None,
            "probe": probes.result() if probe else None}


MAIN_LR = {"vgg": 0.1, "dln": 1e-6}
MAIN_NORMS = ("none", "bn", "noisy_bn")  # at the main learning rate these get the main seeds


def run_figures(figures, scale: Scale, seeds=None, device="cpu", families=("vgg", "dln"), workers: int = 1) -> dict:
    """Every run the given figures need, once each. VGG: standard, BN and noisy BN at the main
    learning rate over ``scale.seeds``, other learning rates and the l_p normalizations over
    ``scale.side_seeds``. DLN: standard and BN over ``scale.dln_seeds``, the l_p normalizations over
    ``scale.dln_side_seeds``. ``seeds`` replaces all four. ``families`` picks the VGG runs, the DLN runs or
    both (the DLN at paper scale takes minutes on a CPU; the VGG takes hours on a GPU). ``workers`` > 1
    spreads the runs over that many processes of one thread each: every run seeds its own generators,
    so the results are those of ``workers=1``.

    Returns {"vgg": {(norm, lr): {seed: run}}, "dln": {(norm, lr): {seed: run}}}.
    """
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        raise ValueError(f"expected figures from {sorted(FIGURES)} (got {unknown})")
    main = tuple(scale.seeds if seeds is None else seeds)
    side = tuple(scale.side_seeds if seeds is None else seeds)
    dln_main = tuple(scale.dln_seeds if seeds is None else seeds)
    dln_side = tuple(scale.dln_side_seeds if seeds is None else seeds)
    plan = {"vgg": {}, "dln": {}}  # (norm, lr) -> {"trace": set, "ics": set, "probe": bool}
    for f in figures:
        spec = FIGURES[f]
        for family in families:
            for key in spec.get(family, []):
                p = plan[family].setdefault(key, {"trace": set(), "ics": set(), "probe": False})
                p["probe"] |= spec.get("probe", False)
                if family == "vgg" and "trace" in spec:
                    p["trace"] |= set(getattr(scale, spec["trace"]))
                if "ics" in spec:
                    p["ics"] |= set(getattr(scale, spec["ics"]) if family == "vgg" else scale.dln_layers)
    jobs = []  # (family, norm, lr, seed, positional arguments after the scale, probe)
    for (norm, lr), p in plan["vgg"].items():
        vgg_seeds = main if lr == MAIN_LR["vgg"] and norm in MAIN_NORMS else side
        jobs += [("vgg", norm, lr, s, (sorted(p["trace"]), sorted(p["ics"]), device), p["probe"]) for s in vgg_seeds]
    for (norm, lr), p in plan["dln"].items():
        dln_seeds = dln_main if norm in MAIN_NORMS else dln_side
        jobs += [("dln", norm, lr, s, (sorted(p["ics"]), device), p["probe"]) for s in dln_seeds]
    if workers > 1:
        with worker_pool(workers) as pool:
            runs = list(pool.map(_run_job, jobs, [scale] * len(jobs)))
    else:
        runs = [_run_job(job, scale) for job in jobs]
    out = {"vgg": {}, "dln": {}}
    for (family, norm, lr, seed, _, _), run in zip(jobs, runs):
        out[family].setdefault((norm, lr), {})[seed] = run
    return out


def _run_job(job, scale: Scale) -> dict:
    family, norm, lr, seed, args, probe = job
    return (run_vgg if family == "vgg" else run_dln)(norm, lr, seed, scale, *args, probe=probe)


def _json_keys(out: dict) -> dict:
    """(norm, lr) tuple keys -> "norm@lr" strings, for a JSON result file."""
    return {fam: {f"{n}@{lr:g}": runs for (n, lr), runs in d.items()} for fam, d in out.items()}


def load(path) -> tuple[dict, dict]:
    """A result file of ``main`` back as (out, blob): ``out`` as ``run_figures`` returns it,
    {"vgg": {(norm, lr): {seed: run}}, "dln": ...}, and ``blob`` with its config and provenance."""
    blob = results.load(path)
    out = {}
    for family, runs in blob["result"].items():
        out[family] = {}
        for key, by_seed in runs.items():
            norm, lr = key.rsplit("@", 1)  # "bn@1e-06" -> ("bn", 1e-06)
            out[family][norm, float(lr)] = {int(seed): run for seed, run in by_seed.items()}
    return out, blob


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bnlib.santurkar", description=__doc__.split("\n\n")[0])
    ap.add_argument("--figure", type=int, nargs="+", default=sorted(FIGURES), choices=sorted(FIGURES))
    ap.add_argument("--scale", default="paper", choices=sorted(SCALES))
    ap.add_argument("--seeds", type=int, nargs="+", help="default: the scale's seeds")
    ap.add_argument("--steps", type=int, help="override the VGG and DLN step counts (a smoke test)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--family", nargs="+", default=["vgg", "dln"], choices=["vgg", "dln"],
                    help="run only the VGG or only the deep linear network runs of these figures")
    ap.add_argument("--out", default="results", help="folder for the result file (default: results)")
    args = ap.parse_args(argv)
    scale = SCALES[args.scale]
    if args.steps is not None:
        scale = replace(scale, name=f"{scale.name}-steps{args.steps}", steps=args.steps, dln_steps=args.steps,
                        eval_every=min(scale.eval_every, args.steps),
                        measure_every=min(scale.measure_every, args.steps),
                        ics_every=min(scale.ics_every, args.steps),
                        probe_every=min(scale.probe_every, args.steps),
                        dln_measure_every=min(scale.dln_measure_every, args.steps))
    started = time.time()
    families = [f for f in ("vgg", "dln") if f in args.family]
    out = run_figures(args.figure, scale, args.seeds, args.device, families)
    name = f"santurkar_figs{'-'.join(map(str, args.figure))}_{scale.name}"
    if len(families) == 1:
        name += f"_{families[0]}"
    config = {"figures": args.figure, "families": families, "scale": scale.to_dict(), "seeds": args.seeds or list(scale.seeds),
              "side_seeds": args.seeds or list(scale.side_seeds), "dln_seeds": args.seeds or list(scale.dln_seeds),
              "dln_side_seeds": args.seeds or list(scale.dln_side_seeds)}
    path = results.save(f"{args.out}/{name}.json", name, config, _json_keys(out), started, args.device)
    print(f"wrote {path} ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
