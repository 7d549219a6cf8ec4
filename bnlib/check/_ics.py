"""ICS (santurkar_ics, exercise 4): the reader's Definition 2.1 against bnlib.measure, and the model left alone.

    check.ics(my_ics)   # my_ics(model, name, x, y, lr) -> (||G - G'||_2, cosine of G and G')

G is the cross-entropy gradient of the weight ``name`` (a key of ``model.named_parameters()``);
G' the same gradient on the same batch, in train mode, after only the parameters registered
before it took the SGD step W <- W - lr * G. The model's weights, running statistics, .grad and
mode must be left as they were: the measurement runs inside training (``measure.ICSTrace``).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .. import measure
from ._common import CheckFailed, as_tensors, explain, same

__all__ = ["ICS_MISTAKES", "ics"]


def _variant(model, name, x, y, lr, step="earlier", accumulate=False, eval_mode=False, swap=False):
    """Definition 2.1 on a copy; each keyword makes one of the usual mistakes."""
    twin = copy.deepcopy(model).train(not eval_mode)
    names, params = zip(*twin.named_parameters())
    i = names.index(name)
    grads = torch.autograd.grad(F.cross_entropy(twin(x), y), params)
    moved = {"earlier": i, "own": i + 1, "all": len(params)}[step]  # how many parameters take the step
    with torch.no_grad():
        for p, g in zip(params[:moved], grads[:moved]):
            p -= lr * g
    G2 = torch.autograd.grad(F.cross_entropy(twin(x), y), params[i])[0]
    G, G2 = grads[i], G2 + grads[i] if accumulate else G2  # accumulate: backward() twice, no zero_grad
    l2, cos = (G - G2).norm().item(), F.cosine_similarity(G.flatten(), G2.flatten(), 0).item()
    return (cos, l2) if swap else (l2, cos)


def _on_the_model(model, name, x, y, lr, restore):
    """The right values, computed on the model itself: its running statistics move, and its weights
    stay stepped unless restore."""
    params = dict(model.named_parameters())
    saved = {n: p.detach().clone() for n, p in params.items()}
    value = _variant(model, name, x, y, lr)
    with torch.no_grad():
        model(x)  # a forward pass in train mode, as the measurement's own would be
        for n in list(params)[:list(params).index(name)]:
            params[n] -= lr * params[n].grad if params[n].grad is not None else 0.0
        if restore:
            for n, p in params.items():
                p.copy_(saved[n])
    return value


def _zeroes_grad(model, name, x, y, lr):
    model.zero_grad()  # "start clean": wipes the gradients of the training step it runs in
    return _variant(model, name, x, y, lr)


ICS_MISTAKES = {  # name: (wrong measurement, the explanation: Korean · English)
    "swapped": (lambda *a: _variant(*a, swap=True),
                "두 값의 순서가 바뀌었습니다. (‖G − G′‖, 코사인) 순서로 돌려주세요. · the two values are swapped: "
                "return (||G - G'||, cosine)."),
    "own_update": (lambda *a: _variant(*a, step="own"),
                   "층 i 자신도 갱신한 뒤 G′을 구했습니다. 정의 2.1에서는 앞쪽 층만 움직이고 W_i와 그 뒤는 그대로 둡니다. · "
                   "G' was taken after W_i itself was updated too; in Definition 2.1 only the earlier layers move, "
                   "W_i and everything after it stay put."),
    "full_step": (lambda *a: _variant(*a, step="all"),
                  "모든 층을 갱신한 뒤(optimizer.step()처럼) G′을 구했습니다. 앞쪽 층만 움직여야 합니다. · G' was "
                  "taken after every layer took the step (as optimizer.step() does); only the earlier layers move."),
    "no_zero_grad": (lambda *a: _variant(*a, accumulate=True),
                     "G′이 G에 더해졌습니다. 두 번째 backward() 전에 기울기를 0으로 지우지 않았습니다(zero_grad를 "
                     "부르거나 torch.autograd.grad를 쓰세요). · G' was added onto G: the gradients were not zeroed "
                     "before the second backward() (call zero_grad, or use torch.autograd.grad)."),
    "eval_mode": (lambda *a: _variant(*a, eval_mode=True),
                  "평가 모드에서 기울기를 구했습니다. BN이 배치 통계 대신 실행 통계로 정규화해 학습 때와 다른 함수의 "
                  "기울기가 됩니다. 학습 모드에서 재세요. · the gradients were taken in eval mode: BN normalized "
                  "with its running statistics instead of the batch's, the gradient of another function than the "
                  "one trained; measure in train mode."),
    "not_restored": (lambda *a: _on_the_model(*a, restore=False),
                     "모델의 가중치가 바뀐 채로 남았습니다. 앞쪽 층을 갱신했다면 되돌리거나, copy.deepcopy로 만든 "
                     "사본에서 재세요. 측정이 학습을 바꾸면 안 됩니다. · the model's weights were left changed: "
                     "restore the earlier layers after their step, or measure on a copy (copy.deepcopy); a "
                     "measurement must not change training."),
    "running_stats": (lambda *a: _on_the_model(*a, restore=True),
                      "가중치는 되돌렸지만 BN의 실행 통계가 바뀌었습니다. 학습 모드의 순전파는 실행 통계를 갱신하므로, "
                      "모델 자신이 아니라 사본에서 재세요. · the weights were restored, but the BN running statistics "
                      "changed: a forward pass in train mode updates them, so measure on a copy, not on the model."),
    "grads": (_zeroes_grad,
              "모델의 .grad가 바뀌었습니다. 학습 중의 측정은 backward와 optimizer.step() 사이에 돌므로, 그 기울기를 "
              "건드리면 이번 스텝이 바뀝니다. · the model's .grad changed: during training the measurement runs "
              "between backward and optimizer.step(), so touching those gradients changes this step."),
}
_STATE = ("not_restored", "running_stats", "grads")  # recognized by what changed in the model
_MODE = ("모델의 학습/평가 모드가 바뀐 채로 남았습니다. 사본에서 재거나 원래 모드로 되돌리세요. · the model was left in "
         "another mode (train/eval): measure on a copy, or restore the mode.")


def _models(seed: int):
    """A BN MLP and a plain one (float64), each with a batch, moved running statistics and this step's .grad."""
    with torch.random.fork_rng(devices=[]):  # the reader's global random state is left alone
        torch.manual_seed(seed)
        bn = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8),
                           nn.ReLU(), nn.Linear(8, 3)).double()
        plain = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).double()
        for model, names in ((bn, ("3.weight", "6.weight", "0.weight")), (plain, ("2.weight", "4.weight"))):
            x, y = torch.randn(16, 5, dtype=torch.float64) * 2 + 1, torch.randint(0, 3, (16,))
            with torch.no_grad():
                for _ in range(3):
                    model(torch.randn(16, 5, dtype=torch.float64) * 2 + 1)  # running statistics away from 0, 1
            F.cross_entropy(model(x), y).backward()  # .grad of this step, as in ICSTrace's hook
            yield model.train(), names, x, y


def _state(model):
    return ([p.detach().clone() for p in model.parameters()], [b.clone() for b in model.buffers()],
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            [m.training for m in model.modules()])


def _equal(a, b):
    return len(a) == len(b) and all(u is v or (u is not None and v is not None and torch.equal(u, v))
                                    for u, v in zip(a, b))


def ics(fn, seed: int = 0, lr: float = 0.5) -> str:
    """Check ``fn(model, name, x, y, lr) -> (l2, cosine)`` against ``measure.internal_covariate_shift``."""
    output_mistakes = {k: v for k, v in ICS_MISTAKES.items() if k not in _STATE}
    checked = 0
    for model, names, x, y in _models(seed):
        for name in names:
            pristine, before = copy.deepcopy(model), _state(model)
            module = name.rsplit(".", 1)[0]  # "3.weight" -> module "3"
            lib = measure.internal_covariate_shift(pristine, [module], x, y, lr)[module]
            ref = tuple(torch.tensor(lib[k], dtype=torch.float64) for k in ("l2", "cosine"))
            assert same(ref, as_tensors(_variant(pristine, name, x, y, lr)), 1e-10)  # the definition, in code
            out = tuple(t.detach().double().reshape(()) if t.numel() == 1 else t
                        for t in as_tensors(fn(model, name, x, y, lr)))

            def why():
                return explain(output_mistakes, out, lambda wrong: as_tensors(wrong(pristine, name, x, y, lr)))

            if len(out) != 2 or any(t.shape != () for t in out):
                raise CheckFailed(f"expected two numbers (||G - G'||, cosine) (got {[tuple(t.shape) for t in out]}) "
                                  f"· 두 수 (‖G − G′‖, 코사인)을 돌려주세요")
            if not same(out, ref, 1e-8):
                raise CheckFailed(f"{name}의 ICS가 bnlib.measure와 다릅니다 · the ICS of {name} differs from "
                                  f"bnlib.measure.internal_covariate_shift (difference > 1e-8): " + why())
            after = _state(model)
            for part, why in enumerate((*(ICS_MISTAKES[k][1] for k in _STATE), _MODE)):  # weights, buffers, .grad, mode
                if not _equal(before[part], after[part]):
                    raise CheckFailed(why)
            checked += 1
    return (f"통과 · passed: {checked} layers of two networks (with and without BN): (||G - G'||, cosine) within "
            f"1e-8 of bnlib.measure.internal_covariate_shift, the model (weights, running statistics, .grad, "
            f"mode) left as it was")
