"""bnlib — the small library behind the Batch Normalization course.

Every chapter starts with ``bnlib.setup()``; what a chapter builds in the open and
then reuses lives here, tested against PyTorch.

Modules (import them explicitly: ``from bnlib import data``):
    utils    setup(), seed_everything(), progress(), rel_error(), below()
    data     CIFAR-10 and Fashion-MNIST, offline first, cached as tensors
    train    TrainConfig, fit() -> History, evaluate(): a plain loop
    plot     figure helpers that take data and an optional ``ax``
    manual, layers, noisy, ghost, whitening   BN by hand, as layers, and its variants
    norms    the normalization family as torch.nn twins, one file per family (BN, noisy,
             ghost and l_p norm live here; layers, noisy, ghost, lpnorm re-export them)
    augment  random crops and flips as a layer (training mode only)
    models, hooks, measure, experiment, results, santurkar   experiments and measurements
    family   the normalization family chapter's CNN, sampler and runs over (N, size)
    transformer, invariance   a tiny row-by-row transformer (LN, RMSNorm, DyT); Zhang & Sennrich's table
    check    checkers for the reader's own code (BN forward/backward, running statistics, whitening,
             the ICS measurement, group norm), naming the usual mistakes
    resnet, practice   the BN-in-practice chapters: a small ResNet (zero gamma, SkipInit, Fixup),
             frozen statistics and wrong-mode checks, corruptions, AdaBN, TENT
    syncbn   synchronized BN across processes (gloo, CPU), tested against BN on the whole batch
    spectra  Hessian and Fisher eigenvalues (Lanczos), Jacobian singular values; re-exported by theory

    The preface chapter prints every module's one-line summary.

Short names used throughout: x (input), y (output or label), lr (learning rate),
eps (epsilon), bn (batch normalization), ics (internal covariate shift),
N/C/H/W (batch, channels, height, width), d<name> (dL/d<name>).
"""
from .utils import below, setup, seed_everything, progress, rel_error

__version__ = "0.1.0"
__all__ = ["setup", "seed_everything", "progress", "rel_error", "below", "__version__"]
