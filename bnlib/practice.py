"""BN in practice: frozen statistics and the checks that catch wrong-mode BN, corruptions, AdaBN and TENT.

    freeze_bn(model)                  # BN layers to eval mode, their gamma and beta frozen
    check_bn_mode(model, frozen=True) # raises BNModeError naming every BN layer in the wrong mode
    with watch_buffers(model): ...    # raises BNModeError if a running statistic changed inside
    corrupt(x, "contrast", 3)         # one of CORRUPTIONS, applied by code, severity 1..5
    adabn(model, x_target)            # re-estimate every BN layer's statistics on target data
    tent(model, x, y)                 # Wang et al. (2021): entropy steps on gamma, beta; online accuracy
    finetune(model, x, y, bn="frozen")  # SGD on labelled target data, BN "train" or "frozen"
    adapted_accuracy(make_model, state, x, y, method="adabn")   # one adapted model's accuracy
    adapted_accuracies(jobs, workers=2)                          # many, over one-thread worker processes

A BN layer here is any ``torch.nn.modules.batchnorm._BatchNorm`` (torch's BatchNorm1d/2d/3d,
SyncBatchNorm) or ``bnlib.norms`` batch norm: both keep ``running_mean``, ``running_var`` and
``momentum`` with torch's meaning. ``model.train()`` puts every layer, frozen BN included, back in
training mode: that is the bug ``check_bn_mode`` names.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .data import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from .norms.batchnorm import _BatchNormBase
from .train import evaluate
from .utils import map_jobs

__all__ = ["BNModeError", "bn_layers", "freeze_bn", "check_bn_mode", "watch_buffers", "CORRUPTIONS",
           "corrupt", "adabn", "entropy", "tent", "finetune", "METHODS", "adapted_accuracy", "adapted_accuracies"]


class BNModeError(RuntimeError):
    """A BN layer is in the wrong mode, or its statistics changed where they must not."""


def bn_layers(model: nn.Module) -> dict[str, nn.Module]:
    """{name: layer} for every batch-norm layer of ``model`` (torch's or bnlib's)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, _BatchNormBase))}


def freeze_bn(model: nn.Module) -> list[str]:
    """Put every BN layer in eval mode (normalize with the running statistics, never update them) and
    freeze its gamma and beta (``requires_grad=False``). Returns the layers' names. Call it again
    after any ``model.train()``, which puts the layers back in training mode."""
    layers = bn_layers(model)
    for m in layers.values():
        m.eval()
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
    return list(layers)


def check_bn_mode(model: nn.Module, frozen: bool) -> str:
    """``frozen=True``: every BN layer must be in eval mode with gamma and beta frozen (after
    ``freeze_bn``); ``frozen=False``: every BN layer must follow the model's mode. Raises
    BNModeError naming each layer that does not, and why, in Korean and English."""
    wrong = []
    for name, m in bn_layers(model).items():
        trainable = any(p.requires_grad for p in m.parameters(recurse=False))
        if frozen and m.training:
            wrong.append(f"{name}: 학습 모드입니다(배치 통계를 쓰고 실행 통계를 바꿉니다) · in training mode (uses batch "
                         f"statistics and updates the running ones)" + ("" if trainable else
                         "; γ, β는 얼어 있습니다: freeze_bn 뒤에 model.train()을 불렀나요? · gamma, beta are frozen: "
                         "was model.train() called after freeze_bn? call freeze_bn(model) again after it"))
        elif frozen and trainable:
            wrong.append(f"{name}: γ, β가 학습됩니다 · gamma, beta still require grad")
        elif not frozen and m.training != model.training:
            wrong.append(f"{name}: {'학습' if m.training else '평가'} 모드, 모델은 {'학습' if model.training else '평가'} "
                         f"모드 · in {'training' if m.training else 'eval'} mode while the model is in "
                         f"{'training' if model.training else 'eval'} mode")
    if wrong:
        raise BNModeError(f"expected {'frozen BN layers' if frozen else 'BN layers in the model’s mode'} "
                          f"(got {len(wrong)} of {len(bn_layers(model))} wrong):\n  " + "\n  ".join(wrong))
    return f"ok: {len(bn_layers(model))} BN layers {'frozen' if frozen else 'in the model’s mode'}"


@contextlib.contextmanager
def watch_buffers(model: nn.Module):
    """Inside the block, no BN running statistic may change (an evaluation must not train the
    statistics). On exit raises BNModeError naming each changed buffer and the layer's mode; the
    changed values are kept, so nothing is hidden (restore them from a saved state dict)."""
    before = {f"{n}.{k}": b.clone() for n, m in bn_layers(model).items()
              for k, b in m.named_buffers(recurse=False) if b is not None}
    yield
    layers = bn_layers(model)
    changed = [f"{key} ({'training' if layers[key.rsplit('.', 1)[0]].training else 'eval'} mode)"
               for key, b in before.items() if not torch.equal(b, model.get_buffer(key))]
    if changed:
        raise BNModeError(f"expected unchanged running statistics during evaluation (got {len(changed)} changed: "
                          f"{', '.join(changed[:6])}{' …' if len(changed) > 6 else ''}): a BN layer ran in training "
                          "mode; call model.eval() (or freeze_bn) before evaluating")


CORRUPTIONS = ("brightness", "contrast", "noise", "blur")


def corrupt(x: torch.Tensor, kind: str, severity: int = 3, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fashion-MNIST images (N, 1, H, W), standardized as ``ImageData.tensors`` gives them, corrupted
    in pixel space [0, 1] and standardized again. Our own simple versions of four of Hendrycks &
    Dietterich's (2019) corruptions, severity 1..5:
        brightness  x + b,  b = 0.1 * severity                  (then clipped to [0, 1])
        contrast    mean + c (x - mean) per image, c = 1 - 0.18 * severity
        noise       x + Gaussian noise of std 0.04 * severity   (then clipped)
        blur        Gaussian blur, sigma = 0.3 * severity pixels (at the image's own resolution)"""
    if kind not in CORRUPTIONS:
        raise ValueError(f"expected kind in {CORRUPTIONS} (got {kind!r})")
    if severity not in range(1, 6):
        raise ValueError(f"expected severity 1..5 (got {severity!r})")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"expected Fashion-MNIST images of shape (N, 1, H, W) (got {tuple(x.shape)})")
    mean, std = FASHION_MNIST_MEAN[0], FASHION_MNIST_STD[0]
    p = x * std + mean  # standardized -> pixels in [0, 1]
    if kind == "brightness":
        p = (p + 0.1 * severity).clamp(0, 1)
    elif kind == "contrast":
        m = p.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
        p = m + (1 - 0.18 * severity) * (p - m)
    elif kind == "noise":
        p = (p + 0.04 * severity * torch.randn(p.shape, generator=generator)).clamp(0, 1)
    else:
        sigma = 0.3 * severity
        r = torch.arange(-3, 4, dtype=p.dtype)
        k = torch.exp(-r ** 2 / (2 * sigma ** 2))
        k = (k / k.sum()).view(1, 1, 1, 7)  # a separable 1 x 7 kernel
        p = F.conv2d(F.pad(p, (3, 3, 0, 0), mode="replicate"), k)
        p = F.conv2d(F.pad(p, (0, 0, 3, 3), mode="replicate"), k.transpose(2, 3))
    return ((p - mean) / std).contiguous()


@torch.no_grad()
def adabn(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> nn.Module:
    """AdaBN (Li et al. 2016): replace every BN layer's running statistics by those of ``x`` (the
    target data, no labels), as a cumulative average over batches of ``batch_size``; gamma, beta and
    every weight stay. Leaves the model in eval mode, each layer's momentum as it was."""
    layers = bn_layers(model)
    if not layers:
        raise ValueError("expected a model with BN layers (got none): AdaBN re-estimates BN statistics")
    momenta = {name: m.momentum for name, m in layers.items()}
    for m in layers.values():
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for i in range(0, len(x), batch_size):
        model(x[i:i + batch_size])
    for name, m in layers.items():
        m.momentum = momenta[name]
    return model.eval()


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy of the softmax predictions, (N, K) -> ()."""
    logp = logits.log_softmax(1)
    return -(logp.exp() * logp).sum(1).mean()


def tent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128, lr: float = 1e-3,
         steps: int = 1) -> float:
    """TENT (Wang et al. 2021), online: for each test batch in order, BN normalizes with the batch's
    statistics, ``steps`` Adam steps on the mean prediction entropy update only the BN layers'
    gamma and beta, and the batch is then predicted. Returns the online accuracy on (x, y).
    The model is changed in place (its BN layers' gamma and beta); labels are used only to score."""
    layers = bn_layers(model)
    if not layers:
        raise ValueError("expected a model with BN layers (got none): TENT adapts BN's gamma and beta")
    params = [p for m in layers.values() for p in m.parameters(recurse=False)]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    model.eval()
    for m in layers.values():  # batch statistics, and no running statistics to update
        m.train()
        m.track_running_stats, m.running_mean, m.running_var = False, None, None
    correct = 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        for _ in range(steps):
            loss = entropy(model(xb))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            correct += (model(xb).argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / len(x)


def finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bn: str = "frozen", steps: int = 125,
             batch_size: int = 8, lr: float = 0.01, seed: int = 0) -> nn.Module:
    """Fine-tune ``model`` in place with SGD (momentum 0.9) on cross-entropy, ``steps`` batches of
    ``batch_size`` drawn from (x, y). ``bn="train"``: BN layers in training mode, gamma and beta
    learned; ``bn="frozen"``: ``freeze_bn`` (eval-mode statistics, gamma and beta fixed), checked
    with ``check_bn_mode`` at every step. Returns the model in eval mode."""
    if bn not in ("train", "frozen"):
        raise ValueError(f"expected bn 'train' or 'frozen' (got {bn!r})")
    model.train()
    if bn == "frozen":
        freeze_bn(model)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch_size,), generator=gen)
        if bn == "frozen":
            check_bn_mode(model, frozen=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()



METHODS = ("none", "adabn", "tent", "finetune_train", "finetune_frozen", "adabn_finetune_frozen")


def adapted_accuracy(make_model, state: dict, x: torch.Tensor, y: torch.Tensor, method: str = "none",
                     target: tuple | None = None, **finetune_kw) -> float:
    """Accuracy on (x, y) of ``make_model()`` loaded with ``state`` and adapted by ``method``:
    "none"; "adabn" (statistics of x); "tent" (online, on x); "finetune_train", "finetune_frozen",
    "adabn_finetune_frozen" (``finetune`` on the labelled ``target`` = (x_t, y_t), the last after
    AdaBN on x_t). ``make_model`` must be picklable (e.g. a ``functools.partial``) for workers."""
    if method not in METHODS:
        raise ValueError(f"expected method in {METHODS} (got {method!r})")
    if method.startswith(("finetune", "adabn_finetune")) and target is None:
        raise ValueError(f"expected target=(x, y) labelled data for {method!r} (got None)")
    model = make_model()
    model.load_state_dict(state)
    model.eval()
    if method == "tent":
        return tent(model, x, y)
    if method == "adabn":
        adabn(model, x)
    elif method == "adabn_finetune_frozen":
        adabn(model, target[0])
    if method != "none" and method != "adabn":
        finetune(model, *target, bn="train" if method == "finetune_train" else "frozen", **finetune_kw)
    return evaluate(model, x, y)[1]


def _job(kwargs: dict) -> float:
    return adapted_accuracy(**kwargs)


def adapted_accuracies(jobs: list[dict], workers: int = 1) -> list[float]:
    """``adapted_accuracy(**job)`` for each job, over ``workers`` one-thread processes; each job seeds
    its own generators, so the results are those of ``workers=1``, in the order of ``jobs``."""
    return map_jobs(_job, jobs, workers)
