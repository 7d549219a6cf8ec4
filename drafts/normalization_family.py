# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["lang-ko"]
# (family)=
# # 정규화 가족: 무엇을 모아 평균을 내는가
#
# 배치 정규화(BN)가 나온 뒤 몇 년 사이에 이름이 비슷한 층이 여럿 나왔습니다. 층 정규화(LN), 인스턴스
# 정규화(IN), 그룹 정규화(GN), 배치 재정규화(BRN), 가중치 표준화(WS)... 처음 보면 제각각 같지만, 활성값을
# 정규화하는 층들은 모두 같은 식을 씁니다.
#
# $$\hat x_i = \frac{x_i - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad
#   \mu_i = \frac{1}{m}\sum_{k \in \mathcal S_i} x_k, \qquad
#   \sigma_i^2 = \frac{1}{m}\sum_{k \in \mathcal S_i} (x_k - \mu_i)^2, \qquad y_i = \gamma \hat x_i + \beta$$
#
# 다른 것은 단 하나, 출력 $i$ 의 평균과 분산을 어떤 값들의 집합 $\mathcal S_i$ (크기 $m$)에서 구하느냐입니다
# (Wu & He, 2018의 정리). BN은 같은 채널의 값을 배치 전체와 모든 위치에서 모으고, LN은 한 예시의 모든 채널과
# 위치에서, IN은 한 예시의 한 채널에서, GN은 한 예시의 채널 묶음 하나에서 모읍니다. 이 선택 하나가 배치 크기에
# 대한 의존성, 학습 모드와 평가 모드의 차이, 그리고 무엇에 불변인지를 모두 정합니다.
#
# 이 장에서는 각 층이 무엇을 모으는지를 층 자신에게서 읽어 낸 뒤, 각 방법을 세상에 알린 실험을 CPU 규모로
# 다시 해 봅니다. 층은 모두 `bnlib.norms` 에 있고 PyTorch와 같은 인자 이름을 쓰며, 테스트에서 `torch.nn` 과
# 비교됩니다. 실험은 `bnlib.family` 의 작은 CNN 하나로 하고, 설정만 바꿉니다.
#
# 1. 각 층이 평균을 내는 집합 $\mathcal S_i$ 의 그림 (Wu & He, 그림 2)
# 2. 배치 크기: BN이 무너지는 것은 배치가 작을 때가 아니라 **통계 표본** $m$ 이 작을 때
# 3. 배치 재정규화(Ioffe, 2017): 두 클래스만 든 배치와 배치 4에서
# 4. 그룹 정규화 + 가중치 표준화(Qiao et al., 2019): 배치 2에서 큰 배치의 BN과 견주기
# 5. 인스턴스 정규화의 대비 불변성과 그 대가
# 6. 정리 표: 논문의 주장과 이 장의 측정
#
# 가중치 정규화, 평균만 빼는 BN, RMSNorm, DyT와 트랜스포머는 다음 장에서 다룹니다.

# %% [markdown] tags=["lang-en"]
# (family)=
# # The normalization family: what gets averaged together
#
# Within a few years of batch normalization (BN) came a string of layers with similar names: layer
# normalization (LN), instance normalization (IN), group normalization (GN), batch renormalization
# (BRN), weight standardization (WS)... They look unrelated at first, but every layer that
# normalizes activations computes the same thing:
#
# $$\hat x_i = \frac{x_i - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad
#   \mu_i = \frac{1}{m}\sum_{k \in \mathcal S_i} x_k, \qquad
#   \sigma_i^2 = \frac{1}{m}\sum_{k \in \mathcal S_i} (x_k - \mu_i)^2, \qquad y_i = \gamma \hat x_i + \beta$$
#
# The one difference is the set $\mathcal S_i$ (of size $m$) over which the mean and variance of
# output $i$ are taken (Wu & He, 2018, put it this way). BN gathers one channel over the whole batch
# and every position; LN one example over all channels and positions; IN one example and one
# channel; GN one example and one group of channels. That single choice decides how a layer depends
# on the batch size, whether it behaves differently in training and evaluation, and what it is
# invariant to.
#
# In this chapter we first read off each layer what it gathers, then repeat, at CPU scale, the
# experiment that made each method's case. The layers all live in `bnlib.norms`, take the same
# arguments as PyTorch's and are tested against `torch.nn`. Every experiment uses one small CNN from
# `bnlib.family`; only its settings change.
#
# 1. the set $\mathcal S_i$ each layer averages over, drawn (Wu & He, Figure 2);
# 2. batch size: BN breaks not when the batch is small but when its **statistics sample** $m$ is;
# 3. batch renormalization (Ioffe, 2017): batches of two classes only, and batches of 4;
# 4. group normalization with weight standardization (Qiao et al., 2019) at batch 2 against BN at a
#    large batch;
# 5. instance normalization's contrast invariance, and what it costs;
# 6. a summary table: each paper's claim beside this chapter's measurement.
#
# Weight normalization, mean-only BN, RMSNorm, DyT and transformers come in the next chapter.

# %%
from dataclasses import replace

import numpy as np
import torch

import bnlib
from bnlib import family, measure, norms, plot

gen = bnlib.setup(seed=0)

# %% [markdown] tags=["lang-ko"]
# (family-setup)=
# ## 실험 설정
#
# 하이퍼파라미터는 모두 `family.FamilyConfig` 하나에 있습니다. 데이터는 Fashion-MNIST 학습 이미지 12000장과
# 테스트 이미지 2000장을 2×2 평균으로 14×14로 줄인 것입니다. 네트워크는 일부러 작게 만들었습니다.
# 3×3 합성곱(1→16 채널) 뒤에 평균 풀링으로 크기를 `size`×`size` 로 맞추고, 정규화와 ReLU를 거친 다음,
# `size`×`size` 에서 합성곱 → 정규화 → ReLU 블록을 두 번 더 지나 전역 평균 풀링과 선형 층으로 끝납니다.
# 그래서 **세 정규화 층 모두** 입력이 (N, 16, `size`, `size`) 이고, BN 한 층의 통계 표본은 채널마다
# $m = N \cdot \text{size}^2$ 개입니다. 정규화 층 앞의 합성곱에는 편향이 없습니다(정규화가 평균을 빼면서 지우기 때문).
#
# 학습은 배치 크기와 상관없이 예시 4096개(에폭의 3분의 1)를 보고 끝나며, 학습률은 배치 32에서 0.05이고 배치에
# 비례해 줄입니다(모멘텀 0.9의 SGD). 짧은 학습이라 정확도는 60–70%대에 머뭅니다. 이 장의 숫자는 기록이
# 아니라 같은 조건에서의 비교입니다. `SCALE = "paper"` 는 같은 코드를 학습 이미지 60000장, 더 넓은 네트워크,
# 더 긴 학습, 시드 5개로 돌립니다(CPU로 몇 시간).
#
# 실행들은 서로 독립이라 한 스레드짜리 프로세스 두 개에 나눠 돌립니다(`workers=2`). 각 실행이 자기 난수
# 생성기를 쓰므로 결과는 한 프로세스로 돌린 것과 같습니다.

# %% [markdown] tags=["lang-en"]
# (family-setup)=
# ## Experimental setup
#
# Every hyperparameter is in one place, `family.FamilyConfig`. The data are 12000 Fashion-MNIST
# training images and 2000 test images, averaged 2×2 down to 14×14. The network is small on
# purpose: a 3×3 convolution (1→16 channels), average pooling to `size`×`size`, normalization and
# ReLU, then two more blocks of convolution → normalization → ReLU at `size`×`size`, global average
# pooling and a linear layer. So **all three normalization layers** see (N, 16, `size`, `size`), and
# one BN layer's statistics sample holds $m = N \cdot \text{size}^2$ values per channel. The
# convolutions in front of a normalization layer have no bias (the normalization removes it when it
# subtracts the mean).
#
# Whatever the batch size, training ends after 4096 examples (a third of an epoch), with SGD
# (momentum 0.9) at learning rate 0.05 for batch 32, scaled in proportion to the batch. With such
# short training, accuracies stay in the 60–70% range: the numbers of this chapter are comparisons
# under equal conditions, not records. `SCALE = "paper"` runs the same code on 60000 training images,
# with a wider network, longer training and five seeds (hours on a CPU).
#
# The runs are independent, so they go to two processes of one thread each (`workers=2`); every run
# seeds its own generators, so the results are those of a single process.

# %%
SCALE = "quick"  # "paper": the same code, 60000 images, width 32, 5 epochs, 5 seeds (hours on a CPU)
CFG, SEEDS = {
    "quick": (family.FamilyConfig(), (0, 1, 2)),
    "paper": (family.FamilyConfig(train_size=60000, test_size=10000, width=32, examples=300000),
              (0, 1, 2, 3, 4)),
}[SCALE]
MORE_SEEDS = tuple(range(2 * len(SEEDS) - 1))  # cheap runs (batch 32, 4): 5 seeds at quick scale
WORKERS = 2
data = family.fashion14(CFG)
print(f"scale {SCALE!r}: {len(data['train'][0])} training and {len(data['test'][0])} test images "
      f"of {tuple(data['train'][0].shape[1:])}, {CFG.examples} examples per run, seeds {SEEDS}")

# %% [markdown] tags=["lang-ko"]
# (family-sets)=
# ## 1. 각 층이 평균을 내는 집합
#
# 집합 $\mathcal S_i$ 는 문서가 아니라 층 자신에게서 읽을 수 있습니다. 출력 하나 $y_i$ 를 입력 전체로 미분하면,
# 0이 아닌 곳이 바로 $y_i$ 의 평균과 분산에 들어간 값들입니다(그 밖의 값은 $y_i$ 에 전혀 영향을 주지 않으니까요).
# `family.shared_with` 가 float64로 이 야코비안 한 줄을 구해 0이 아닌 곳을 표시합니다. 아래 그림의 각 칸은
# 배치 (N=3, C=6, H=W=2)의 값 하나이고, 행은 예시, 열은 채널별로 묶은 위치입니다. 진한 칸이 빨간 점으로 표시한
# 출력 하나와 통계를 함께 쓰는 값들입니다.

# %% [markdown] tags=["lang-en"]
# (family-sets)=
# ## 1. The set each layer averages over
#
# The set $\mathcal S_i$ can be read off the layer itself rather than its documentation.
# Differentiate one output $y_i$ with respect to the whole input: the non-zero entries are exactly
# the values that entered the mean and variance of $y_i$ (nothing else affects $y_i$ at all).
# `family.shared_with` computes that row of the Jacobian in float64 and marks where it is non-zero.
# In the figure below each square is one value of a batch (N=3, C=6, H=W=2): rows are examples,
# columns are positions grouped by channel. The dark squares share their statistics with the one
# output marked by the red dot.

# %%
SHAPE, INDEX = (3, 6, 2, 2), (1, 2, 0, 1)  # (N, C, H, W); the output whose statistics we trace
layers_ = {"BN": norms.BatchNorm2d(6), "LN": norms.LayerNorm([6, 2, 2]),
           "IN": norms.InstanceNorm2d(6), "GN (G=2)": norms.GroupNorm(2, 6)}
masks = {name: family.shared_with(layer.train(), SHAPE, INDEX) for name, layer in layers_.items()}
over = {"BN": "N·H·W", "LN": "C·H·W", "IN": "H·W", "GN (G=2)": "(C/G)·H·W"}

fig, axes = plot.plt.subplots(1, 4, figsize=(12, 2.6), layout="constrained")
for ax, (name, mask) in zip(axes, masks.items()):
    n, c, h, w = SHAPE
    ax.imshow(mask.reshape(n, c * h * w).numpy(), cmap="Blues", vmin=-0.3, vmax=1.2, aspect="auto")  # (N, C*H*W)
    ax.scatter([INDEX[1] * h * w + INDEX[2] * w + INDEX[3]], [INDEX[0]], color="tab:red", s=25)
    for k in range(1, c):
        ax.axvline(k * h * w - 0.5, color="white", lw=2)  # channel boundaries
    ax.grid(False)
    ax.set_xticks([k * h * w + 1.5 for k in range(c)], [f"c{k}" for k in range(c)], fontsize=8)
    ax.set_yticks(range(n), [f"n{k}" for k in range(n)], fontsize=8)
    ax.set_title(f"{name}: m = {int(mask.sum())} = {over[name]}", fontsize=10)
fig.suptitle("한 출력(빨간 점)과 통계를 함께 쓰는 값 · values sharing statistics with one output (red dot)",
             fontsize=10)
plot.plt.show()

# %%
n, c, h, w = SHAPE
expected = {"BN": n * h * w, "LN": c * h * w, "IN": h * w, "GN (G=2)": (c // 2) * h * w}
for name, mask in masks.items():
    print(f"{name:<9} averages over {over[name]:<10} m = {int(mask.sum()):>2} values"
          f"{'  (depends on the batch)' if mask[[k for k in range(n) if k != INDEX[0]]].any() else ''}")
    assert int(mask.sum()) == expected[name], name
assert masks["BN"][:, INDEX[1]].all() and masks["IN"][INDEX[0], INDEX[1]].all()
assert masks["LN"][INDEX[0]].all() and masks["GN (G=2)"][INDEX[0], 0:3].all()

# %% [markdown] tags=["lang-ko"]
# BN만 다른 예시의 값을 씁니다. 그래서 BN만 배치 크기에 따라 달라지고, 학습 때(배치 통계)와 평가 때(실행 통계)
# 다르게 동작합니다. 나머지는 예시 하나 안에서 끝나므로 학습과 평가가 같고, 배치 1에서도 됩니다. LN은 GN의
# $G = 1$, IN은 $G = C$ 인 경우입니다. 한편 LN이 채널 전체를 한 통계로 묶는다는 것은, 모든 채널이 같은 평균과
# 분산을 나눠 쓴다는 뜻이기도 합니다. CNN에서 채널마다 분포가 아주 다르면 이것이 불리할 수 있고, GN은 그 중간을
# 택합니다.

# %% [markdown] tags=["lang-en"]
# Only BN uses values of other examples. So only BN depends on the batch size, and only BN behaves
# differently in training (batch statistics) and evaluation (running statistics). The others stay
# within one example: training and evaluation are the same, and batch 1 works. LN is GN with
# $G = 1$, IN is GN with $G = C$. LN's single set over all channels also means that every channel
# shares one mean and variance; in a CNN whose channels have very different distributions this can
# hurt, and GN takes the middle road.

# %% [markdown] tags=["lang-ko"]
# (family-batch)=
# ## 2. 배치 크기, 그리고 통계 표본의 크기
#
# Wu & He(2018)의 그림 1은 ImageNet에서 배치가 32에서 2로 줄 때 BN의 오차가 크게 오르고 GN은 그대로인 것을
# 보여 줍니다. 흔히 이것을 "배치가 작으면 BN이 무너진다"로 요약하지만, BN의 통계가 흔들리는 정도를 정하는 것은
# 배치 크기 $N$ 이 아니라 평균을 내는 값의 개수 $m = N \cdot H \cdot W$ 입니다. 합성곱 층에서는 위치마다 값이
# 하나씩 있으니, $N = 2$ 여도 특징 맵이 7×7이면 $m = 98$ 입니다.
#
# 그래서 $N$ 과 `size` 를 따로 바꿉니다. $N \in \{2, 32\}$, `size` $\in \{1, 2, 7\}$ 이면 $m$ 은 2에서 1568까지
# 갑니다. 각 칸을 BN과 LN으로 시드 3개씩 학습하고, 평가 모드의 테스트 정확도를 봅니다. LN은 배치와 무관한
# 기준입니다. 배치 2의 실행은 스텝이 16배 많고 스텝마다 학습률이 16배 작습니다.

# %% [markdown] tags=["lang-en"]
# (family-batch)=
# ## 2. Batch size, and the size of the statistics sample
#
# Figure 1 of Wu & He (2018) shows BN's ImageNet error rising sharply as the batch shrinks from 32 to
# 2, while GN's stays put. This is often summed up as "BN breaks at small batches", but what decides
# how much BN's statistics wobble is not the batch size $N$ but the number of values averaged,
# $m = N \cdot H \cdot W$. A convolutional layer has one value per position, so at $N = 2$ a 7×7
# feature map still gives $m = 98$.
#
# So we change $N$ and `size` separately. With $N \in \{2, 32\}$ and `size` $\in \{1, 2, 7\}$, $m$
# runs from 2 to 1568. Each cell is trained with BN and with LN over three seeds, and we look at the
# test accuracy in evaluation mode. LN is the batch-independent reference. Runs at batch 2 take 16
# times more steps, each at a 16 times smaller learning rate.

# %%
BATCHES, SIZES, CONTRASTS = (2, 32), (1, 2, 7), (0.25, 0.5, 2.0)
jobs = {(norm, N, size, seed): dict(norm=norm, batch_size=N, size=size, seed=seed, contrasts=CONTRASTS)
        for norm in ("bn", "ln") for N in BATCHES for size in SIZES for seed in SEEDS}
for seed in MORE_SEEDS:  # batch renormalization (section 3): cheap runs, more seeds
    for norm in ("bn", "brn"):
        for size in (2, 7):
            jobs[norm, "two_class", size, seed] = dict(norm=norm, batch_size=32, size=size, seed=seed,
                                                      sampler="two_class")
        jobs[norm, 4, 1, seed] = dict(norm=norm, batch_size=4, size=1, seed=seed)
for seed in SEEDS:  # group norm with and without weight standardization (section 4); IN (section 5)
    for ws in (False, True):
        jobs["gn+ws" if ws else "gn", 2, 7, seed] = dict(norm="gn", batch_size=2, size=7, seed=seed, ws=ws)
    jobs["in", 32, 7, seed] = dict(norm="in", batch_size=32, size=7, seed=seed, contrasts=CONTRASTS)
results = dict(zip(jobs, family.run_many(data, CFG, list(jobs.values()), workers=WORKERS)))


def med(key, field="test_acc", seeds=SEEDS):
    """Median over seeds of one result field; key = the job key without its seed."""
    return float(np.median([results[(*key, s)][field] for s in seeds]))


print(f"{len(results)} runs; test accuracy (eval mode), median over seeds {SEEDS}")
print(f"{'':>14}" + "".join(f"{f'size {s}':>20}" for s in SIZES))
for norm in ("bn", "ln"):
    for N in BATCHES:
        cells = [f"m={N * s * s:<5}{med((norm, N, s)):>.3f}" if norm == "bn" else f"{med((norm, N, s)):.3f}"
                 for s in SIZES]
        print(f"{norm.upper() + f', N={N}':>14}" + "".join(f"{cell:>20}" for cell in cells))

# %%
fig, (ax1, ax2) = plot.plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
styles = {("bn", 2): ("tab:red", "-"), ("bn", 32): ("tab:blue", "-"),
          ("ln", 2): ("tab:red", "--"), ("ln", 32): ("tab:blue", "--")}
for (norm, N), (color, line) in styles.items():
    for i, s in enumerate(SIZES):
        ax1.scatter([i] * len(SEEDS), [results[norm, N, s, k]["test_acc"] for k in SEEDS], color=color, s=12, alpha=0.5)
    ax1.plot(range(len(SIZES)), [med((norm, N, s)) for s in SIZES], line, marker="o", color=color,
             label=f"{norm.upper()}, N = {N}")
ax1.set_xticks(range(len(SIZES)), [f"{s}×{s}" for s in SIZES])
ax1.set_xlabel("정규화 층의 특징 맵 크기 · feature map size at the norm layers")
ax1.set_ylabel("테스트 정확도 · test accuracy")
ax1.set_title("중앙값(선)과 시드별 값(점) · median (line), seeds (dots)", fontsize=10)
ax1.legend(fontsize=8)
m_at_2 = [2 * s * s for s in SIZES]  # BN's statistics sample at batch 2
for norm, color in (("bn", "tab:purple"), ("ln", "tab:gray")):
    ax2.plot(m_at_2, [med((norm, 32, s)) - med((norm, 2, s)) for s in SIZES], "-o", color=color,
             label=norm.upper())
ax2.axhline(0, color="black", lw=0.8)
ax2.set_xscale("log")
ax2.set_xticks(m_at_2, [str(m_) for m_ in m_at_2])
ax2.minorticks_off()
ax2.set_xlabel("배치 2에서 BN의 통계 표본 m = 2 × size × size · BN's statistics sample at batch 2")
ax2.set_ylabel("배치 32 − 배치 2 · batch 32 − batch 2")
ax2.set_title("배치 2의 손해 (정확도 중앙값) · what batch 2 costs (median accuracy)", fontsize=10)
ax2.legend(fontsize=8)
plot.plt.show()

# %%
deficit = {s: med(("bn", 32, s)) - med(("bn", 2, s)) for s in SIZES}  # what batch 2 costs BN
print("BN at batch 2 against batch 32 (median test accuracy):",
      {f"size {s} (m={2 * s * s})": round(d, 3) for s, d in deficit.items()})
assert med(("bn", 2, 1)) < med(("ln", 2, 1)) - 0.05      # m = 2: BN collapses below LN ...
assert med(("bn", 2, 1)) < med(("bn", 32, 1)) - 0.05     # ... and below itself at batch 32
assert med(("bn", 2, 7)) > med(("bn", 2, 1)) + 0.3       # same N = 2, m = 98: no collapse
assert med(("bn", 2, 7)) > med(("ln", 2, 7)) - 0.03      # at m = 98, BN at batch 2 is at least LN's level
assert deficit[1] > deficit[7] + 0.05                    # the cost of batch 2 shrinks as m grows
for s in SIZES:                                           # LN does not get worse at batch 2
    assert med(("ln", 2, s)) > med(("ln", 32, s)) - 0.05, s
assert med(("bn", 32, 7)) > med(("ln", 32, 7)) + 0.05    # at a large batch, BN beats LN in this CNN

# %% [markdown] tags=["lang-ko"]
# $m = 2$ (배치 2, 1×1)에서 BN은 LN보다도, 배치 32의 자기 자신보다도 확실히 낮습니다. 값 두 개로 구한 평균과
# 분산은 그 두 값을 ±1로 만들 뿐이어서, 학습 때의 출력은 두 예시 중 어느 쪽이 큰가 말고는 거의 아무 정보도
# 싣지 못하고, 평가 때의 실행 통계와도 맞지 않습니다. 그런데 **같은 배치 2라도** 특징 맵이 7×7이면($m = 98$)
# BN은 무너지지 않고 LN 수준 이상입니다. 배치 2가 BN에 주는 손해는 $m$ 이 커질수록 줄어듭니다. 그러니
# "작은 배치에서는 BN을 쓰지 말라"는 조언은 정확히는 "통계 표본이 작을 때"입니다. 검출이나 분할처럼 배치 1–2로
# 학습하면서도 앞쪽 층의 특징 맵이 큰 네트워크에서 BN이 아주 나쁘지는 않은 이유, 그리고 특징 맵이 작은 뒤쪽
# 층이나 완전 연결 층에서 문제가 먼저 드러나는 이유가 이것입니다.
#
# 한편 LN은 배치 2에서도 나빠지지 않지만, 배치 32에서는 7×7의 BN보다 낮습니다. Wu & He도 ResNet-50에서 LN이
# BN보다 낮다고 보고합니다. 채널 16개가 한 평균과 분산을 나눠 쓰게 되기 때문입니다.

# %% [markdown] tags=["lang-en"]
# At $m = 2$ (batch 2, 1×1) BN is clearly below LN and below itself at batch 32. A mean and variance
# computed from two values just map those two values to ±1, so the training-time output carries
# little beyond which of the two examples is larger, and it does not match the running statistics
# used at evaluation either. Yet **at the same batch of 2**, with 7×7 feature maps ($m = 98$), BN does
# not collapse and stays at least at LN's level; what batch 2 costs BN shrinks as $m$ grows. So the
# advice "avoid BN at small batches" really means "at small statistics samples". That is why BN is
# not hopeless in detection or segmentation networks that train at batch 1–2 but have large early
# feature maps, and why the trouble shows first in late layers with small maps, or in fully
# connected layers.
#
# LN does not get worse at batch 2, but at batch 32 it trails BN at 7×7. Wu & He report LN below BN
# for ResNet-50 too: all 16 channels have to share one mean and variance.

# %% [markdown] tags=["lang-ko"]
# (family-renorm)=
# ## 3. 배치 재정규화: 배치 통계를 실행 통계 쪽으로 고치기
#
# BN의 학습 출력은 배치 통계로, 평가 출력은 실행 통계로 정규화합니다. 두 통계가 다르면 네트워크는 학습 때
# 본 적 없는 입력을 평가 때 받습니다. Ioffe(2017)의 **배치 재정규화**는 학습 때도 실행 통계 쪽으로 맞춥니다.
#
# $$\hat x = \frac{x - \mu_B}{\sigma_B}\, r + d, \qquad
#   r = \operatorname{clip}_{[1/r_{\max},\, r_{\max}]}\!\left(\frac{\sigma_B}{\sigma}\right), \qquad
#   d = \operatorname{clip}_{[-d_{\max},\, d_{\max}]}\!\left(\frac{\mu_B - \mu}{\sigma}\right)$$
#
# 여기서 $\mu, \sigma$ 는 실행 통계이고, $r$ 과 $d$ 로는 기울기가 흐르지 않습니다. 자르지 않으면
# $\hat x = (x - \mu)/\sigma$ 로 평가 때와 똑같고, $r_{\max} = 1, d_{\max} = 0$ 이면 BN 그대로입니다
# (`bnlib.norms.BatchRenorm2d`; 둘 다 테스트됨). 논문처럼 처음에는 BN으로 시작해 $r_{\max}$ 를 3까지,
# $d_{\max}$ 를 5까지 서서히 풉니다(`norms.renorm_limits`, 학습의 10%부터 80%와 50%까지).
#
# 논문의 두 실험을 따라 합니다. 하나는 **i.i.d.가 아닌 배치**입니다. 배치 32마다 무작위로 고른 두 클래스의
# 이미지가 16장씩 들어갑니다(`family.TwoClassBatches`). 그러면 배치 평균이 클래스에 따라 크게 달라 학습 때와
# 평가 때가 어긋납니다. 다른 하나는 **배치 4**(여기서는 1×1, $m = 4$)입니다. 둘 다 실행이 싸서 시드를
# 5개 씁니다. 학습 모드 정확도(마지막 10% 배치, 배치 통계)와 평가 모드 정확도(학습 이미지 2000장, 실행 통계)를
# 함께 봅니다.

# %% [markdown] tags=["lang-en"]
# (family-renorm)=
# ## 3. Batch renormalization: correcting batch statistics toward the running ones
#
# BN normalizes with batch statistics in training and with running statistics in evaluation. When
# the two differ, the network meets inputs at evaluation that it never saw in training. Ioffe's
# (2017) **batch renormalization** aligns training with the running statistics as well:
#
# $$\hat x = \frac{x - \mu_B}{\sigma_B}\, r + d, \qquad
#   r = \operatorname{clip}_{[1/r_{\max},\, r_{\max}]}\!\left(\frac{\sigma_B}{\sigma}\right), \qquad
#   d = \operatorname{clip}_{[-d_{\max},\, d_{\max}]}\!\left(\frac{\mu_B - \mu}{\sigma}\right)$$
#
# with $\mu, \sigma$ the running statistics, and no gradient through $r$ and $d$. Unclipped,
# $\hat x = (x - \mu)/\sigma$, exactly the evaluation output; with $r_{\max} = 1, d_{\max} = 0$ it is
# BN (`bnlib.norms.BatchRenorm2d`; both are tested). As in the paper, training starts as BN and then
# relaxes $r_{\max}$ to 3 and $d_{\max}$ to 5 (`norms.renorm_limits`, from 10% of training to 80% and
# 50% of it).
#
# We follow the paper's two experiments. One is **non-i.i.d. batches**: each batch of 32 holds 16
# images of each of two classes drawn at random (`family.TwoClassBatches`), so the batch mean depends
# strongly on the classes and training and evaluation drift apart. The other is **batch 4** (here at
# 1×1, $m = 4$). Both are cheap, so we use five seeds. We look at accuracy in training mode (the last
# 10% of batches, batch statistics) and in evaluation mode (2000 training images, running statistics).

# %%
def gap(key):
    """Median over seeds of eval-mode minus train-mode accuracy on training data."""
    return float(np.median([results[(*key, s)]["eval_train_acc"] - results[(*key, s)]["train_acc"]
                            for s in MORE_SEEDS]))


print(f"median over seeds {MORE_SEEDS}: test acc | eval-mode train acc - train-mode train acc")
rows = [("two classes per batch, size 2", "two_class", 2), ("two classes per batch, size 7", "two_class", 7),
        ("i.i.d., batch 4, size 1", 4, 1)]
for label, batch, size in rows:
    print(f"{label:<30}" + "".join(
        f"   {name} {med((norm, batch, size), seeds=MORE_SEEDS):.3f} | {gap((norm, batch, size)):+.3f}"
        for norm, name in (("bn", "BN"), ("brn", "BRN"))))

# %%
for batch, size in (("two_class", 2), ("two_class", 7)):
    assert gap(("bn", batch, size)) > 0.1                              # BN: eval mode far above train mode
    assert abs(gap(("brn", batch, size))) < gap(("bn", batch, size)) / 2  # BRN: the two modes agree
brn_gain = {(b, s): med(("brn", b, s), seeds=MORE_SEEDS) - med(("bn", b, s), seeds=MORE_SEEDS)
            for _, b, s in rows}
print("BRN - BN, median test accuracy:", {f"{b} size {s}": round(g, 3) for (b, s), g in brn_gain.items()})
assert max(brn_gain.values()) < 0.08  # no more than a few points, next to a spread between seeds of ~0.1

# %% [markdown] tags=["lang-ko"]
# 두 클래스 배치에서 BN은 학습 모드 정확도가 평가 모드보다 10포인트 넘게 낮습니다. 배치 평균이 두 클래스의 공통점을 빼
# 버려서, 학습 때의 출력이 클래스를 잘 가르지 못합니다. BRN은 학습 모드와 평가 모드가 거의 일치합니다. 논문이
# 말한 바로 그 효과입니다. 그러나 테스트 정확도의 향상은 이 규모에서 일정하지 않습니다. 위 마지막 줄이 BRN과 BN의
# 중앙값 차이인데, 많아야 몇 포인트로 시드 사이의 퍼짐(10포인트 안팎) 안에 있습니다. Ioffe의 실험은 Inception을 수만 스텝 학습한 것이고,
# 우리 학습은 배치 32에서 128 스텝이라 $r_{\max}, d_{\max}$ 를 푼 상태로 학습하는 구간이 짧습니다. 그래서 "학습과 평가의
# 어긋남을 없앤다"는 재현되었고, "그래서 정확도가 오른다"는 이 규모에서는 확인되지 않았다고 적습니다.

# %% [markdown] tags=["lang-en"]
# With two classes per batch, BN's training-mode accuracy is more than 10 points below its evaluation-mode accuracy:
# the batch mean removes what the two classes share, so the training-time output separates the
# classes poorly. With BRN the two modes nearly agree, which is the effect the paper describes. The
# gain in test accuracy, however, is not consistent at this scale: the last line above, BRN minus BN
# in median test accuracy, is a few points at most, inside the spread between seeds (around 10 points). Ioffe trained Inception for
# tens of thousands of steps; our runs at batch 32 take 128, so the stretch trained with $r_{\max}, d_{\max}$
# relaxed is short. So "it removes the train/eval mismatch" is reproduced here, and "therefore
# accuracy rises" is not confirmed at this scale.

# %% [markdown] tags=["lang-ko"]
# (family-gnws)=
# ## 4. 그룹 정규화와 가중치 표준화: 배치 2에서 큰 배치의 BN 따라잡기
#
# GN은 배치와 무관하지만, 큰 배치의 BN보다는 보통 조금 낮습니다. Qiao et al.(2019)은 여기에 **가중치 표준화**를
# 더합니다. 합성곱 필터마다 가중치를 평균 0, 분산 1로 바꾼 뒤 합성곱을 합니다.
#
# $$\hat W_{o,:} = \frac{W_{o,:} - \operatorname{mean}(W_{o,:})}{\operatorname{std}(W_{o,:})}$$
#
# 활성값이 아니라 가중치를 정규화하므로 배치와 상관이 없고, 필터 하나의 크기를 바꾸거나 상수를 더해도 출력이
# 같습니다(`norms.WSConv2d`, 테스트됨). 논문은 GN+WS가 배치 1–2에서 큰 배치의 BN과 맞먹거나 앞서며, 그 이유를
# 손실과 기울기의 립시츠 상수가 줄어드는 것, 즉 손실 지형이 매끄러워지는 것으로 설명합니다. 배치 2, 7×7에서
# GN(그룹 4개)과 GN+WS를 시드 3개로 학습해 2절의 배치 32 BN과 견줍니다.

# %% [markdown] tags=["lang-en"]
# (family-gnws)=
# ## 4. Group normalization with weight standardization: catching up with large-batch BN at batch 2
#
# GN does not depend on the batch, but it usually trails BN at a large batch by a little. Qiao et
# al. (2019) add **weight standardization**: each convolution filter's weights are brought to zero
# mean and unit variance before the convolution:
#
# $$\hat W_{o,:} = \frac{W_{o,:} - \operatorname{mean}(W_{o,:})}{\operatorname{std}(W_{o,:})}$$
#
# It normalizes weights, not activations, so it has nothing to do with the batch, and scaling one
# filter or adding a constant to it leaves the output unchanged (`norms.WSConv2d`, tested). The paper
# reports GN+WS at batch 1–2 matching or beating BN at a large batch, and explains it by smaller
# Lipschitz constants of the loss and its gradient: a smoother loss landscape. We train GN (4 groups)
# and GN+WS at batch 2, 7×7, over three seeds and compare them with section 2's BN at batch 32.

# %%
paired = [results["gn+ws", 2, 7, s]["test_acc"] - results["gn", 2, 7, s]["test_acc"] for s in SEEDS]
print(f"median test accuracy: GN, N=2 {med(('gn', 2, 7)):.3f} | GN+WS, N=2 {med(('gn+ws', 2, 7)):.3f} | "
      f"BN, N=32 {med(('bn', 32, 7)):.3f} | BN, N=2 {med(('bn', 2, 7)):.3f}")
print(f"GN+WS - GN, same seed: median {np.median(paired):+.3f}")
assert np.median(paired) > 0.03                               # WS helps GN at batch 2
assert med(("gn+ws", 2, 7)) > med(("bn", 32, 7)) - 0.06       # and brings it close to BN at batch 32

# %% [markdown] tags=["lang-ko"]
# 이제 매끄러움 주장을 앞 장({ref}`santurkar-landscape`)의 도구로 확인합니다. 네트워크의 학습 이미지 64장에 대한 기울기
# $g$ 방향으로 $\eta$ 만큼 움직이며 기울기가 얼마나 변하는지 잽니다. 가중치 표준화는 가중치의 크기를 바꾸므로,
# 크기에 따라 달라지지 않는 **상대 기울기 변화** $\|\nabla L(w) - \nabla L(w - \eta g)\| / \|g\|$ 를 봅니다
# (`measure.landscape_probe` 의 `grad_change_rel`). 작을수록 그 방향으로 지형이 매끄럽습니다. 두 곳에서 잽니다.
# 초기화 직후의 네트워크(같은 초기 가중치에 WS만 켜고 끈 것, 시드 10개; 한 번에 1초도 안 걸립니다)와, 위에서
# 학습을 마친 네트워크(시드 3개)입니다.

# %% [markdown] tags=["lang-en"]
# Now the smoothness claim, with the tools of the landscape chapter ({ref}`santurkar-landscape`). We step
# along the gradient $g$ of 64 training images by $\eta$ and measure how much the gradient changes.
# Weight standardization rescales the weights, so we use a measure that does not depend on scale, the
# **relative gradient change** $\|\nabla L(w) - \nabla L(w - \eta g)\| / \|g\|$ (`grad_change_rel` of
# `measure.landscape_probe`); the smaller, the smoother the landscape in that direction. We measure in
# two places: at initialization (the same initial weights with WS on and off, ten seeds; each takes
# well under a second) and on the networks trained above (three seeds).

# %%
ETAS, PROBE_SEEDS = (0.05, 0.1, 0.2, 0.4), tuple(range(10))
x_probe, y_probe = data["train"][0][:64], data["train"][1][:64]


def rel_change(ws, seed, state=None):
    """grad_change_rel at each eta for the GN network (train mode), at init or from a trained state."""
    model = family.family_cnn("gn", 7, CFG.width, CFG.groups, ws=ws, generator=torch.Generator().manual_seed(seed))
    if state is not None:
        model.load_state_dict(state)
    return np.array(measure.landscape_probe(model.train(), x_probe, y_probe, ETAS)["grad_change_rel"])


ratio_init = np.array([rel_change(True, s) / rel_change(False, s) for s in PROBE_SEEDS])  # (seeds, etas)
ratio_trained = np.array([rel_change(True, s, results["gn+ws", 2, 7, s]["state"])
                          / rel_change(False, s, results["gn", 2, 7, s]["state"]) for s in SEEDS])
print("relative gradient change along g, GN+WS / GN")
print(f"{'eta':<34}" + "".join(f"{eta:>8g}" for eta in ETAS))
for label, r in ((f"at init, median of {len(PROBE_SEEDS)} seeds", np.median(ratio_init, axis=0)),
                 (f"at init, upper quartile", np.quantile(ratio_init, 0.75, axis=0)),
                 (f"trained, median of {len(SEEDS)} seeds", np.median(ratio_trained, axis=0))):
    print(f"{label:<34}" + "".join(f"{v:>8.2f}" for v in r))

# %%
assert np.median(ratio_init[:, 0]) < 0.8            # at init, WS: a smaller relative gradient change ...
assert np.quantile(ratio_init, 0.75, axis=0).max() < 1  # ... at every step size, for most seeds

# %% [markdown] tags=["lang-ko"]
# 가중치 표준화는 배치 2의 GN을 분명히 끌어올려(같은 시드끼리 짝지은 차이의 중앙값), 배치 32의 BN과 몇 포인트
# 차이까지 데려갑니다. 논문의 주장과 같은 방향입니다. 매끄러움은 초기화 직후에는 분명합니다. 같은 가중치에서 WS를
# 켜면 기울기 방향으로 움직일 때 기울기가 덜 변하고, 작은 보폭에서 특히 그렇습니다. 학습을 마친 네트워크는 시드가
# 3개뿐이고 시드마다 비율이 크게 달라서, 이 규모에서 학습 내내 더 매끄럽다고까지는 말하지 않습니다.

# %% [markdown] tags=["lang-en"]
# Weight standardization clearly lifts GN at batch 2 (the median of differences paired by seed), to
# within a few points of BN at batch 32, in the direction the paper claims. The smoothing is clear at
# initialization: with the same weights, turning WS on makes the gradient change less along the
# gradient direction, most of all at small steps. For the trained networks there are only three seeds
# and their ratios differ widely, so at this scale we do not claim that the landscape stays smoother
# throughout training.

# %% [markdown] tags=["lang-ko"]
# (family-in)=
# ## 5. 인스턴스 정규화: 대비에 불변, 그 대가
#
# IN은 예시 하나, 채널 하나의 위치들만으로 평균과 분산을 구합니다. 그래서 이미지의 밝기와 대비를 바꿔도
# ($x \to a x + b$, $a > 0$) 첫 정규화 층의 출력이 같습니다. 이 네트워크에서는 첫 합성곱 앞뒤에 편향도 없고
# 가장자리를 복제해 채우므로(`padding_mode="replicate"`), 바뀐 이미지는 첫 IN 층에 채널마다 $a z + b'$ 로 들어가고
# IN이 이를 지웁니다($\epsilon$ 만큼의 차이는 남습니다). 스타일 전이(Ulyanov et al., 2016)에서 IN을 쓰는 이유가
# 이것입니다. 그러나 분류에서는 밝기와 대비도 정보입니다. 2절의 BN 실행(배치 32, 7×7)과 같은 설정으로 IN을
# 학습하고, 테스트 이미지의 대비를 $a \in \{0.25, 0.5, 2\}$ 배로 바꿔 봅니다(`family.contrast`: 이미지 평균을
# 중심으로).

# %% [markdown] tags=["lang-en"]
# (family-in)=
# ## 5. Instance normalization: invariant to contrast, at a price
#
# IN takes the mean and variance over the positions of one example and one channel only. So changing
# an image's brightness and contrast ($x \to a x + b$, $a > 0$) leaves the first normalization layer's
# output unchanged. In this network the first convolution has no bias and pads by replicating the
# border (`padding_mode="replicate"`), so the changed image reaches the first IN layer as $a z + b'$
# per channel, which IN removes (up to the effect of $\epsilon$). That is why style transfer uses IN
# (Ulyanov et al., 2016). For classification, though, brightness and contrast are information too. We
# train IN with the settings of section 2's BN runs (batch 32, 7×7) and change the contrast of the
# test images by $a \in \{0.25, 0.5, 2\}$ (`family.contrast`, around each image's mean).

# %%
x_real = data["test"][0][:256]
model = family.family_cnn("in", 7, CFG.width)
model.load_state_dict(results["in", 32, 7, SEEDS[0]]["state"])
model = model.double().eval()
with torch.no_grad():
    logits = model(x_real.double())
    moved = max(float((model(family.contrast(x_real.double(), a)) - logits).abs().max()) for a in CONTRASTS)
print(f"IN network on 256 real test images, logits after a contrast change: largest move "
      f"{bnlib.below(moved / float(logits.abs().max()), 1e-3)} of the largest logit")
print(f"{'test accuracy at contrast':<28}" + "".join(f"{a:>8g}" for a in (1.0,) + CONTRASTS))
for norm in ("in", "bn"):
    accs = [med((norm, 32, 7))] + [float(np.median([results[norm, 32, 7, s]["contrast_acc"][k] for s in SEEDS]))
                                   for k in range(len(CONTRASTS))]
    print(f"{norm.upper() + ', median over seeds':<28}" + "".join(f"{v:>8.3f}" for v in accs))

# %%
for s in SEEDS:  # IN: the accuracy does not move with the contrast
    assert max(abs(a - results["in", 32, 7, s]["test_acc"]) for a in results["in", 32, 7, s]["contrast_acc"]) < 0.005
bn_low = float(np.median([results["bn", 32, 7, s]["contrast_acc"][0] for s in SEEDS]))
assert bn_low < med(("bn", 32, 7)) - 0.2            # BN with running statistics: contrast 0.25 hurts
assert med(("in", 32, 7)) < med(("bn", 32, 7)) - 0.1  # the price: IN discards information BN keeps

# %% [markdown] tags=["lang-ko"]
# IN 네트워크의 정확도는 대비를 4분의 1로 줄여도, 두 배로 늘려도 그대로입니다. BN 네트워크는 평가 때 고정된
# 실행 통계를 쓰므로 대비가 바뀌면 정확도가 크게 떨어집니다. 그러나 대비가 원래대로일 때 IN은 BN보다 한참
# 낮습니다. 옷의 종류를 가르는 데 밝기와 대비가 쓸모 있는 정보인데, IN은 채널마다 그것을 지워 버립니다. 불변성은
# 공짜가 아닙니다. 과제가 그 불변성을 원할 때(스타일 전이, 조명이 제각각인 영상) 고르는 도구입니다.

# %% [markdown] tags=["lang-en"]
# The IN network's accuracy stays put whether the contrast is cut to a quarter or doubled. The BN
# network, which evaluates with fixed running statistics, loses much of its accuracy when the contrast
# changes. But at the original contrast IN is far below BN: brightness and contrast help tell garments
# apart, and IN erases them in every channel. Invariance is not free; it is the tool to pick when the
# task wants it (style transfer, images under varying lighting).

# %% [markdown] tags=["lang-ko"]
# (family-summary)=
# ## 6. 정리
#
# | 방법 | 평균을 내는 값 | 학습과 평가의 차이 | 요즘 쓰이는 곳 |
# |---|---|---|---|
# | BN | 같은 채널, 배치 전체와 모든 위치 ($N \cdot H \cdot W$) | 있음: 배치 통계 / 실행 통계 | CNN 분류, 큰 배치 |
# | BRN | BN과 같음, 실행 통계 쪽으로 $r, d$ 보정 | 거의 없음 | 작은 배치나 i.i.d.가 아닌 배치의 BN 대용 |
# | LN | 한 예시의 모든 채널과 위치 ($C \cdot H \cdot W$) | 없음 | 트랜스포머, RNN |
# | IN | 한 예시의 한 채널 ($H \cdot W$) | 없음 | 스타일 전이, 생성 모델 |
# | GN | 한 예시의 채널 묶음 하나 ($(C/G) \cdot H \cdot W$) | 없음 | 검출·분할 (배치 1–2) |
# | WS | 활성값이 아니라 필터 하나의 가중치 | 없음 | GN과 함께, 작은 배치 |
#
# 아래 표는 각 논문의 주장 옆에 이 장의 측정을 놓습니다. 판정은 위의 `assert` 가 확인한 것만 적습니다.

# %% [markdown] tags=["lang-en"]
# (family-summary)=
# ## 6. Summary
#
# | method | averages over | train vs. eval | used today in |
# |---|---|---|---|
# | BN | one channel, whole batch, every position ($N \cdot H \cdot W$) | differ: batch / running statistics | CNN classification, large batches |
# | BRN | as BN, corrected toward the running statistics by $r, d$ | almost none | BN's stand-in for small or non-i.i.d. batches |
# | LN | all channels and positions of one example ($C \cdot H \cdot W$) | none | transformers, RNNs |
# | IN | one channel of one example ($H \cdot W$) | none | style transfer, generative models |
# | GN | one group of channels of one example ($(C/G) \cdot H \cdot W$) | none | detection, segmentation (batch 1–2) |
# | WS | the weights of one filter, not activations | none | with GN, small batches |
#
# The table below sets each paper's claim beside this chapter's measurement. Verdicts only state what
# the `assert`s above checked.

# %%
claims = [
    ("Wu & He 2018", "BN breaks at small batch, GN/LN do not",
     f"m=2: BN {med(('bn', 2, 1)):.2f}, LN {med(('ln', 2, 1)):.2f}", "reproduced, for small m"),
    ("(this chapter)", "batch 2 alone does not break BN",
     f"N=2, m=98: BN {med(('bn', 2, 7)):.2f}, LN {med(('ln', 2, 7)):.2f}", "holds"),
    ("Ioffe 2017", "BRN removes the train/eval mismatch",
     f"gap BN {gap(('bn', 'two_class', 7)):+.2f}, BRN {gap(('brn', 'two_class', 7)):+.2f}", "reproduced"),
    ("Ioffe 2017", "BRN raises accuracy (non-i.i.d., batch 4)",
     f"BRN-BN {min(brn_gain.values()):+.2f} to {max(brn_gain.values()):+.2f}", "not confirmed here"),
    ("Qiao et al. 2019", "GN+WS at batch 2 ~ BN at a large batch",
     f"{med(('gn+ws', 2, 7)):.2f} vs {med(('bn', 32, 7)):.2f} (GN {med(('gn', 2, 7)):.2f})", "reproduced"),
    ("Ulyanov et al. 2016", "IN is invariant to contrast",
     f"IN {med(('in', 32, 7)):.2f} at every contrast", "holds, at a cost"),
]
for who, claim, ours, verdict in claims:
    print(f"{who:<20} {claim:<44} {ours:<34} {verdict}")

# %% [markdown] tags=["lang-ko"]
# (family-exercises)=
# ## 연습 문제
#
# 1. 그룹이 3개인 `norms.GroupNorm(3, 6)` 에 (N=2, C=6, H=W=4) 입력을 넣으면, 출력 하나의 평균과 분산은
#    값 몇 개로 구할까요? 먼저 손으로 계산하고 `family.shared_with` 로 확인하세요.
# 2. 배치 하나에서 한 예시만 5배로 키우고 3을 더하면, LN의 출력과 BN(학습 모드)의 출력은 각각 어떻게 될까요?
#    다른 예시들의 출력은요? 코드로 확인하세요.
# 3. 2절에서 배치 2의 BN은 7×7에서는 무너지지 않았습니다. 그렇다면 같은 네트워크의 맨 끝, 전역 평균 풀링 뒤에
#    BN을 하나 더 두면 배치 2에서 무슨 일이 생길지 예상해 보세요.

# %% [markdown] tags=["lang-en"]
# (family-exercises)=
# ## Exercises
#
# 1. For `norms.GroupNorm(3, 6)` (three groups) on an input of (N=2, C=6, H=W=4), over how many values
#    are the mean and variance of one output taken? Work it out by hand, then check with
#    `family.shared_with`.
# 2. In one batch, scale a single example by 5 and add 3. What happens to that example's output under
#    LN, and under BN in training mode? And to the outputs of the other examples? Check in code.
# 3. In section 2, BN at batch 2 did not collapse at 7×7. What would you expect at batch 2 from one
#    more BN layer at the very end of the same network, after the global average pooling?

# %% tags=["hide-cell"]
# Solution 1: one example, one group of 6/3 = 2 channels, all 4x4 positions -> 2 * 16 = 32 values
mask = family.shared_with(norms.GroupNorm(3, 6), (2, 6, 4, 4), (0, 3, 1, 1))
print(f"GroupNorm(3, 6): m = {int(mask.sum())}, channels {mask[0].any(dim=(1, 2)).nonzero().flatten().tolist()}")
assert int(mask.sum()) == 2 * 16 and not mask[1].any()

# %% tags=["hide-cell"]
# Solution 2: LN normalizes each example by its own statistics, BN by the batch's
x = torch.randn(8, 6, 4, 4, generator=gen, dtype=torch.float64)
x_changed = x.clone()
x_changed[0] = 5 * x[0] + 3  # one example rescaled and shifted
ln, bn = norms.LayerNorm([6, 4, 4]).double(), norms.BatchNorm2d(6).double().train()
with torch.no_grad():
    ln_move = (ln(x_changed) - ln(x)).abs().amax(dim=(1, 2, 3))  # (N,): per example
    bn_move = (bn(x_changed) - bn(x)).abs().amax(dim=(1, 2, 3))  # (N,)
print(f"LN: example 0 moves {bnlib.below(ln_move[0], 1e-4)} (the effect of eps), the others {bnlib.below(ln_move[1:].max(), 1e-12)}")
print(f"BN: example 0 moves {float(bn_move[0]):.2f}, the others at least {bn_move[1:].min():.2f}")
assert bn_move[1:].min() > 0.1  # under BN, one example changes every other example's output

# %% [markdown] tags=["lang-ko"]
# :::{admonition} 풀이 3
# :class: dropdown
# 전역 평균 풀링 뒤에는 위치가 하나뿐이라 $m = N = 2$ 입니다. 1×1에서의 실험과 같은 상황이 되어, 앞의 층들이
# 아무리 잘 정규화되어 있어도 그 마지막 BN이 각 채널을 두 예시 중 어느 쪽이 큰가만 남기고 지웁니다. 배치 2에서
# 정확도가 크게 떨어질 것으로 예상합니다. 통계 표본이 가장 작은 층이 BN 네트워크 전체의 약한 고리입니다.
# :::

# %% [markdown] tags=["lang-en"]
# :::{admonition} Solution 3
# :class: dropdown
# After global average pooling there is one position, so $m = N = 2$. It is the 1×1 situation again:
# however well the earlier layers are normalized, that last BN reduces each channel to which of the
# two examples is larger. Expect a large drop in accuracy at batch 2. The layer with the smallest
# statistics sample is the weak link of a BN network.
# :::

# %% [markdown] tags=["lang-ko"]
# (family-references)=
# ## 참고 문헌
#
# - Wu, Y. & He, K. (2018). Group Normalization. *ECCV*.
# - Ba, J. L., Kiros, J. R. & Hinton, G. E. (2016). Layer Normalization. *arXiv:1607.06450*.
# - Ulyanov, D., Vedaldi, A. & Lempitsky, V. (2016). Instance Normalization: The Missing Ingredient for Fast Stylization. *arXiv:1607.08022*.
# - Ioffe, S. (2017). Batch Renormalization: Towards Reducing Minibatch Dependence in Batch-Normalized Models. *NeurIPS*.
# - Qiao, S., Wang, H., Liu, C., Shen, W. & Yuille, A. (2019). Micro-Batch Training with Batch-Channel Normalization and Weight Standardization. *arXiv:1903.10520*.

# %% [markdown] tags=["lang-en"]
# (family-references)=
# ## References
#
# - Wu, Y. & He, K. (2018). Group Normalization. *ECCV*.
# - Ba, J. L., Kiros, J. R. & Hinton, G. E. (2016). Layer Normalization. *arXiv:1607.06450*.
# - Ulyanov, D., Vedaldi, A. & Lempitsky, V. (2016). Instance Normalization: The Missing Ingredient for Fast Stylization. *arXiv:1607.08022*.
# - Ioffe, S. (2017). Batch Renormalization: Towards Reducing Minibatch Dependence in Batch-Normalized Models. *NeurIPS*.
# - Qiao, S., Wang, H., Liu, C., Shen, W. & Yuille, A. (2019). Micro-Batch Training with Batch-Channel Normalization and Weight Standardization. *arXiv:1903.10520*.
