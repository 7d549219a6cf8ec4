"""Batch normalization by hand, in NumPy: forward, staged backward, fused backward.

The CS231n contract: ``*_forward(inputs...) -> (out, cache)`` and
``*_backward(dout, cache) -> (dx, dparams...)``. Input is (N, D): N examples, D features;
statistics are per feature, over the batch (training mode).

Names follow the math: mu (batch mean), var (biased batch variance), inv_std = 1/sqrt(var + eps),
x_hat (normalized input), gamma (scale, torch's ``weight``), beta (shift, torch's ``bias``),
and d<name> = dL/d<name>. The torch twin with running statistics is ``bnlib.layers``.
"""
from __future__ import annotations

import numpy as np


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode batch normalization, one node of the computational graph per line.

        out = gamma * (x - mu) / sqrt(var + eps) + beta

    The variance is the *biased* one (divide by N), computed as the mean of squared
    deviations, never as E[x^2] - E[x]^2 (which cancels catastrophically in float32).

    Inputs:
    - x: Data of shape (N, D)
    - gamma: Scale parameter of shape (D,)
    - beta: Shift parameter of shape (D,)
    - eps: Constant for numeric stability

    Returns a tuple of:
    - out: Normalized data of shape (N, D)
    - cache: A tuple of values needed in the backward pass
    """
    N = x.shape[0]
    mu = x.sum(axis=0) / N  # (D,) batch mean
    x_mu = x - mu  # (N, D) deviations
    sq = x_mu**2  # (N, D) squared deviations
    var = sq.sum(axis=0) / N  # (D,) biased variance (note: N, not N - 1)
    std = np.sqrt(var + eps)  # (D,)
    inv_std = 1.0 / std  # (D,)
    x_hat = x_mu * inv_std  # (N, D) zero mean, unit variance per feature
    out = gamma * x_hat + beta  # (N, D) scale and shift
    cache = (x, gamma, beta, eps, mu, x_mu, sq, var, std, inv_std, x_hat)
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass, staged: walk the forward graph in reverse, one local derivative per node.

    Each line applies the chain rule to one forward line, dL/d(input) = dL/d(output) *
    d(output)/d(input). A value used twice (x_mu) collects the gradient from both uses (+=);
    a (D,) value broadcast over N rows gets the sum over the rows.

    Inputs:
    - dout: Upstream derivatives, of shape (N, D)
    - cache: Variable of intermediates from batchnorm_forward

    Returns a tuple of:
    - dx: Gradient with respect to inputs x, of shape (N, D)
    - dgamma: Gradient with respect to scale parameter gamma, of shape (D,)
    - dbeta: Gradient with respect to shift parameter beta, of shape (D,)
    """
    x, gamma, beta, eps, mu, x_mu, sq, var, std, inv_std, x_hat = cache
    N = dout.shape[0]
    # out = gamma * x_hat + beta   (gamma, beta broadcast over the N rows -> sum over rows)
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = (dout * x_hat).sum(axis=0)  # (D,)
    dx_hat = dout * gamma  # (N, D)
    # x_hat = x_mu * inv_std   (inv_std broadcast over rows)
    dinv_std = (dx_hat * x_mu).sum(axis=0)  # (D,)
    dx_mu = dx_hat * inv_std  # (N, D) first use of x_mu
    # inv_std = 1 / std            d(1/s)/ds = -1/s^2
    dstd = -dinv_std / std**2  # (D,)
    # std = sqrt(var + eps)        d(sqrt(v))/dv = 1 / (2 sqrt(v))
    dvar = 0.5 * dstd / std  # (D,)
    # var = sum(sq, axis=0) / N    every row gets 1/N of dvar
    dsq = np.ones_like(sq) * dvar / N  # (N, D)
    # sq = x_mu**2                 second use of x_mu
    dx_mu += 2 * x_mu * dsq  # (N, D)
    # x_mu = x - mu                (mu broadcast over rows)
    dx = dx_mu.copy()  # (N, D) first use of x
    dmu = -dx_mu.sum(axis=0)  # (D,)
    # mu = sum(x, axis=0) / N      second use of x
    dx += np.ones_like(x) * dmu / N  # (N, D)
    return dx, dgamma, dbeta


def batchnorm_backward_fused(dout, cache):
    """Backward pass in closed form: the staged graph above, simplified on paper.

    With dx_hat = dout * gamma, the mu and var paths collapse into

        dx = inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))

    (means over the batch, per feature): subtract what moves the batch mean and what moves
    the batch variance. Hence, per feature, sum(dx) = 0 and sum(dx * x_hat) = 0.

    Inputs and returns: as for batchnorm_backward.
    """
    x, gamma, beta, eps, mu, x_mu, sq, var, std, inv_std, x_hat = cache
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = (dout * x_hat).sum(axis=0)  # (D,)
    dx_hat = dout * gamma  # (N, D)
    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))  # (N, D)
    return dx, dgamma, dbeta


def numerical_gradient(f, x, dout, h=1e-5):
    """Centred-difference vector-Jacobian product: sum(dout * df/dx) for every entry of x.

    CS231n's ``eval_numerical_gradient_array``. ``f(x)`` returns an array shaped like
    ``dout``; x is changed in place one entry at a time and restored. Use float64: the
    O(h^2) truncation error and the O(1e-16 / h) rounding error balance near h = 1e-5..1e-4
    (for BN; measured in the BN algorithm chapter), where relative errors below 1e-8 (a rule
    of thumb) mean the analytic gradient is right. In float32 the check is meaningless
    (relative errors of 1e-3 and worse), so this raises instead.

    Inputs:
    - f: Function of x returning an array of dout's shape
    - x: Point to differentiate at, float64 array of any shape
    - dout: Upstream derivatives, of f(x)'s shape
    - h: Step size

    Returns:
    - grad: Array of x's shape, grad[i] = sum(dout * (f(x + h e_i) - f(x - h e_i)) / (2h))
    """
    if x.dtype != np.float64:
        raise TypeError(f"expected a float64 array for a numerical gradient (got {x.dtype})")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        pos = np.array(f(x), copy=True)  # copy: f may return a view of x
        x[i] = old - h
        neg = np.array(f(x), copy=True)
        x[i] = old
        grad[i] = np.sum((pos - neg) * dout) / (2 * h)
        it.iternext()
    return grad
