"""bnlib.spectra: Lanczos Hessian and Fisher eigenvalues and Jacobian singular values, on closed forms.

Toy checks: the random tensors below are unit-test inputs, not data. Float64 unless a test says
float32; the measured errors are far below each stated bound (see the comments).
"""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlib import layers, measure, models, spectra, theory
from bnlib.family import family_cnn

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def half_mse(out, target):
    """0.5 * mean squared error over the n examples: for a linear model w, its Hessian is X^T X / n."""
    return 0.5 * (out - target).square().sum() / out.shape[0]


def planted(n=512, d=200, top=(10.0, 8.0, 6.0, 5.0, 4.0), seed=0):
    """X (n, d) whose X^T X / n has eigenvalues top**2 and a bulk in [0, 4): Ghorbani-like outliers."""
    gen = torch.Generator().manual_seed(seed)
    U = torch.linalg.qr(torch.randn(n, d, generator=gen, dtype=D))[0]  # (n, d) orthonormal columns
    V = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=D))[0]
    s = torch.cat([torch.tensor(top, dtype=D), 2 * torch.rand(d - len(top), generator=gen, dtype=D)])
    return (U * s) @ V.T * math.sqrt(n), torch.randn(n, 1, generator=gen, dtype=D)


def least_squares(X, outputs=1):
    return nn.Linear(X.shape[1], outputs, bias=False).to(X.dtype)


def test_least_squares_top_k_is_the_top_of_XtX_over_n():
    X, y = planted()
    exact = torch.linalg.eigvalsh(X.T @ X / X.shape[0]).flip(0)  # descending
    got = spectra.hessian_eigenvalues(least_squares(X), half_mse, X, y, k=5, steps=30)
    assert ((got - exact[:5]).abs() / exact[:5]).max() < 1e-10  # measured 1e-15 (P = 200 > 30 steps)
    vals, vecs = spectra.hessian_eigenvalues(least_squares(X), half_mse, X, y, k=5, return_vectors=True)
    torch.testing.assert_close(vecs.T @ vecs, torch.eye(5, dtype=D), rtol=0, atol=1e-12)
    H = X.T @ X / X.shape[0]
    assert (H @ vecs - vecs * vals).norm(dim=0).max() < 1e-9 * exact[0]  # eigenvectors of X^T X / n
    assert theory.hessian_eigenvalues is spectra.hessian_eigenvalues  # re-exported, as issue 16 asks


def test_an_exhausted_krylov_space_gives_every_eigenvalue_and_the_smallest():
    X, y = planted(n=64, d=12, top=(3.0, 2.0))
    exact = torch.linalg.eigvalsh(X.T @ X / 64)  # ascending
    out = spectra.lanczos(spectra.hessian_operator(least_squares(X), half_mse, X, y), k=12, steps=12)
    torch.testing.assert_close(out["nodes"], exact, rtol=1e-12, atol=1e-13)
    small = spectra.hessian_eigenvalues(least_squares(X), half_mse, X, y, k=2, steps=50, which="smallest")
    torch.testing.assert_close(small, exact[:2], rtol=1e-10, atol=1e-13)  # steps capped at P = 12


def test_float32_model_within_float32_rounding():
    X, y = planted()
    exact = torch.linalg.eigvalsh(X.T @ X / X.shape[0]).flip(0)[:3]
    out = spectra.lanczos(spectra.hessian_operator(least_squares(X.float()), half_mse, X.float(), y.float()), 3, 30)
    assert ((out["values"] - exact).abs() / exact).max() < 1e-5  # measured 2e-8
    assert out["values"].dtype == D and (out["residuals"] < 1e-5 * exact[0]).all()


def test_a_repeated_eigenvalue_needs_a_block_or_more_steps():
    """C = 2 outputs: H = I_2 (x) X^T X / n, each eigenvalue twice (100, 100, 64, 64, 36, ...).
    One start vector misses the second copies, with small residuals, until rounding brings them in
    (here after about 16 products); block=2 finds both copies of each."""
    X, y = planted(n=256, d=40)
    exact = torch.linalg.eigvalsh(X.T @ X / 256).flip(0)  # (100, 64, 36, 25, 16, ...)
    op = spectra.hessian_operator(least_squares(X, 2), half_mse, X, y.repeat(1, 2))  # P = 80
    one = spectra.lanczos(op, k=4, steps=12)
    torch.testing.assert_close(one["values"], exact[:4], rtol=1e-6, atol=0)  # distinct values, not the top-4
    assert (one["residuals"] < 1e-6 * exact[0]).all()  # small residuals: converged, and a copy still missing
    got = spectra.hessian_eigenvalues(least_squares(X, 2), half_mse, X, y.repeat(1, 2), k=4, steps=20, block=2)
    torch.testing.assert_close(got, exact[[0, 0, 1, 1]], rtol=1e-10, atol=0)  # measured 1e-15; 40 of 80


def softmax_regression(d=6, C=4, N=50, seed=1):
    gen = torch.Generator().manual_seed(seed)
    model = nn.Linear(d, C).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(C, d, generator=gen, dtype=D))
        model.bias.copy_(torch.randn(C, generator=gen, dtype=D))
    return model, torch.randn(N, d, generator=gen, dtype=D)


@pytest.mark.parametrize("likelihood", ["categorical", "gaussian"])
def test_softmax_regression_fisher_formed_explicitly(likelihood):
    """z_n = W x_n + b: J_n = [I_C (x) x_n^T, I_C] for theta = (W row by row, b)."""
    model, x = softmax_regression()
    C = model.out_features
    p = torch.softmax(model(x).detach(), 1)  # (N, C)
    Fisher = 0
    for x_n, p_n in zip(x, p):
        J = torch.cat([torch.kron(torch.eye(C, dtype=D), x_n[None]), torch.eye(C, dtype=D)], 1)  # (C, P)
        Lam = torch.diag(p_n) - torch.outer(p_n, p_n) if likelihood == "categorical" else torch.eye(C, dtype=D)
        Fisher = Fisher + J.T @ Lam @ J / len(x)
    exact = torch.linalg.eigvalsh(Fisher).flip(0)  # P = 28
    got = spectra.fisher_eigenvalues(model, x, k=5, steps=28, likelihood=likelihood)
    torch.testing.assert_close(got, exact[:5], rtol=1e-11, atol=0)  # measured 1e-15
    op = spectra.fisher_operator(model, x, likelihood)
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(2), dtype=D)
    torch.testing.assert_close(op.matvec(v), Fisher @ v, rtol=1e-12, atol=1e-13)


def tiny_bn_mlp(norm=layers.BatchNorm1d, seed=3):
    torch.manual_seed(seed)
    return models.mlp([4, 6, 3], norm=norm).double()


def test_bn_fisher_is_the_expectation_over_labels_drawn_from_the_softmax():
    """Train mode, batch statistics: F = (1/N) sum_n sum_c p_nc g_nc g_nc^T, g_nc = grad log p_c(x_n)."""
    model, x = tiny_bn_mlp(), torch.randn(10, 4, generator=torch.Generator().manual_seed(4), dtype=D)
    twin = copy.deepcopy(model)
    params = list(twin.parameters())
    log_p = torch.log_softmax(twin(x), 1)  # (N, C)
    Fisher = 0
    for n in range(10):
        for c in range(3):
            grads = torch.autograd.grad(log_p[n, c], params, retain_graph=True)
            g = torch.cat([t.reshape(-1) for t in grads])  # each p.shape -> (p.numel(),): (P,)
            Fisher = Fisher + log_p[n, c].exp().item() * torch.outer(g, g) / 10
    exact = torch.linalg.eigvalsh(Fisher).flip(0)  # P = 57
    got = spectra.fisher_eigenvalues(model, x, k=3, steps=57)
    torch.testing.assert_close(got, exact[:3], rtol=1e-10, atol=0)  # measured 5e-16


def test_hessian_products_match_theory_hvp_through_torch_bn_in_train_mode():
    model = tiny_bn_mlp(nn.BatchNorm1d)
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(12, 4, generator=gen, dtype=D), torch.randint(0, 3, (12,), generator=gen)
    op = spectra.hessian_operator(model, F.cross_entropy, x, y)
    names, params = zip(*model.named_parameters())
    twin = copy.deepcopy(model)

    def loss(*ps):
        return F.cross_entropy(torch.func.functional_call(twin, dict(zip(names, ps)), (x,)), y)

    v = torch.randn(op.dim, generator=gen, dtype=D)
    expected = torch.cat([h.reshape(-1) for h in theory.hvp(loss, params, spectra._split(v, params))])  # -> (P,)
    torch.testing.assert_close(op.matvec(v), expected, rtol=1e-12, atol=1e-14)
    pieces = spectra.as_parameters(model, op.grad)  # a (P,) vector split back, shaped like each parameter
    assert [t.shape for t in pieces.values()] == [p.shape for p in params]
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in pieces.values()]), op.grad, rtol=0, atol=0)  # -> (P,)


def test_dropout_is_drawn_once_so_the_operator_is_symmetric():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)).double()
    gen = torch.Generator().manual_seed(6)
    x, y = torch.randn(16, 5, generator=gen, dtype=D), torch.randint(0, 3, (16,), generator=gen)
    op = spectra.hessian_operator(model, F.cross_entropy, x, y)
    u, v = torch.randn(2, op.dim, generator=gen, dtype=D)
    assert abs(u @ op.matvec(v) - v @ op.matvec(u)) < 1e-12 * u.norm() * v.norm()


class Quadratic(nn.Module):
    """L(w) = 0.5 w^T A w - b^T w, whatever x: its beta-smoothness is the largest eigenvalue of A."""

    def __init__(self, A, b, w):
        super().__init__()
        self.A, self.b, self.w = A, b, nn.Parameter(w.clone())

    def forward(self, x):
        return self.w


def test_quadratic_beta_is_the_top_eigenvalue_and_bounds_the_landscape_beta():
    gen = torch.Generator().manual_seed(7)
    U = torch.linalg.qr(torch.randn(30, 30, generator=gen, dtype=D))[0]
    lam = torch.linspace(0.1, 5.0, 30, dtype=D)  # beta = 5
    A, b = U @ torch.diag(lam) @ U.T, torch.randn(30, generator=gen, dtype=D)
    loss = lambda w, _: 0.5 * w @ (model.A @ w) - model.b @ w  # noqa: E731
    model, x = Quadratic(A, b, torch.randn(30, generator=gen, dtype=D)), torch.zeros(1, 1, dtype=D)
    beta = spectra.hessian_eigenvalues(model, loss, x, None, k=1, steps=30)[0].item()
    assert abs(beta - 5.0) < 1e-12
    g = A @ model.w.detach() - b
    probe = measure.landscape_probe(model, x, None, [0.01, 0.1], loss_fn=loss)
    assert probe["beta"] == pytest.approx((A @ g).norm().item() / g.norm().item(), rel=1e-10)  # ||A g|| / ||g||
    assert probe["beta"] < beta
    share = spectra.gradient_share(model, loss, x, None, k=3, steps=30)
    assert share["share"] == pytest.approx(((U[:, -3:].T @ g).square().sum() / g.square().sum()).item(), rel=1e-10)
    on_top = Quadratic(A, b, torch.linalg.solve(A, b) + U[:, -1])  # g = A u_1 = 5 u_1: the top direction
    assert measure.landscape_probe(on_top, x, None, [0.1], loss_fn=loss)["beta"] == pytest.approx(beta, rel=1e-10)
    assert spectra.gradient_share(on_top, loss, x, None, k=1, steps=30)["share"] == pytest.approx(1.0, rel=1e-12)


def test_a_linear_map_has_its_svd_and_a_tanh_layer_its_closed_form():
    torch.manual_seed(8)
    fc = nn.Linear(5, 3).double()
    x = torch.randn(5, dtype=D)
    torch.testing.assert_close(spectra.jacobian_singular_values(fc, x), torch.linalg.svdvals(fc.weight.detach()),
                               rtol=1e-13, atol=0)
    A, x2 = torch.randn(4, 6, dtype=D), torch.randn(2, 3, dtype=D)  # a (2, 3) input: J is (4, 6)
    f = lambda t: torch.tanh(A @ t.reshape(-1))  # noqa: E731  (2, 3) -> (6,)
    J = (1 - torch.tanh(A @ x2.reshape(-1)) ** 2)[:, None] * A  # diag(1 - tanh^2) A; (2, 3) -> (6,)
    torch.testing.assert_close(spectra.jacobian_singular_values(f, x2), torch.linalg.svdvals(J), rtol=1e-13, atol=0)


def test_slq_nodes_weights_and_density():
    X, y = planted(n=64, d=12, top=(3.0, 2.0))
    lam = torch.linalg.eigvalsh(X.T @ X / 64)
    out = spectra.hessian_density(least_squares(X), half_mse, X, y, steps=12, probes=100,
                                  generator=torch.Generator().manual_seed(9))
    assert out["nodes"].shape == out["weights"].shape == (100, 12)
    torch.testing.assert_close(out["nodes"], lam.expand(100, 12), rtol=1e-11, atol=1e-13)  # the Krylov space is all
    torch.testing.assert_close(out["weights"].sum(1), torch.ones(100, dtype=D), rtol=1e-12, atol=0)
    mean = (out["weights"] * out["nodes"]).sum(1).mean()  # estimates tr(H) / P
    P = 12  # v uniform on the sphere: Var(v^T H v) = 2 (tr(H^2)/P - (tr(H)/P)^2) / (P + 2)
    sd = math.sqrt(2 * ((lam ** 2).mean() - lam.mean() ** 2) / (P + 2) / 100)
    assert abs(mean - lam.mean()) < 4 * sd
    t = torch.linspace(-5, 15, 4001, dtype=D)
    phi = spectra.smoothed_density(out["nodes"], out["weights"], t, sigma=0.2)
    assert torch.trapezoid(phi, t).item() == pytest.approx(1.0, abs=1e-9)
    assert torch.trapezoid(t * phi, t).item() == pytest.approx(mean.item(), rel=1e-9)


def bn_mlp_batch(mode="train", seed=10):
    torch.manual_seed(seed)
    model = nn.Sequential(models.mlp([20, 16, 16, 5], norm=layers.BatchNorm1d), nn.Dropout(0.2))
    model[0].norm2 = nn.BatchNorm1d(16)  # one torch BN beside bnlib's
    model.train(mode == "train")
    model[0].norm1.eval()  # a mixed model: its flags must survive too
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(32, 20, generator=gen), torch.randint(0, 5, (32,), generator=gen)
    model(x)  # running statistics away from their initial values
    F.cross_entropy(model(x), y).backward()  # .grad populated
    return model, x, y


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_every_tool_leaves_model_buffers_grads_flags_and_rng_untouched(mode):
    model, x, y = bn_mlp_batch(mode)
    state = {k: v.clone() for k, v in model.state_dict().items()}  # parameters, running stats, num_batches_tracked
    grads = [p.grad.clone() for p in model.parameters()]
    flags = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    spectra.hessian_eigenvalues(model, F.cross_entropy, x, y, k=2, steps=6)
    spectra.fisher_eigenvalues(model, x, k=2, steps=6)
    spectra.gradient_share(model, F.cross_entropy, x, y, k=1, steps=4)
    spectra.hessian_density(model, F.cross_entropy, x, y, steps=4, probes=2)
    spectra.jacobian_singular_values(model, x[:2])
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert [m.training for m in model.modules()] == flags and torch.equal(torch.get_rng_state(), rng)
    assert model[0].norm2.num_batches_tracked.item() == (2 if mode == "train" else 0)


def test_a_generator_makes_it_deterministic():
    model, x, y = bn_mlp_batch()
    def run(seed):
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return spectra.hessian_eigenvalues(model, F.cross_entropy, x, y, k=3, steps=40, generator=gen)

    assert torch.equal(run(0), run(0)) and torch.equal(run(None), run(None)) and torch.equal(run(None), run(0))
    torch.testing.assert_close(run(1), run(2), rtol=1e-5, atol=0)  # converged: measured 1e-8 apart


@pytest.mark.parametrize("net", ["bn_cnn", "bn_mlp"])
def test_works_on_a_bn_cnn_and_a_bn_mlp(net):
    gen = torch.Generator().manual_seed(11)
    if net == "bn_cnn":
        model, x = family_cnn("bn", size=7, width=4, generator=gen), torch.randn(16, 1, 14, 14, generator=gen)
    else:
        model, x = models.mlp([196, 32, 32, 10], norm=layers.BatchNorm1d), torch.randn(64, 196, generator=gen)
    y = torch.randint(0, 10, (len(x),), generator=gen)
    op = spectra.hessian_operator(model, F.cross_entropy, x, y)
    out = spectra.lanczos(op, k=3, steps=40)
    assert (out["values"][:-1] >= out["values"][1:]).all() and out["values"][0] > 0
    for i in range(3):  # the reported residuals are those of fresh products
        v = out["vectors"][:, i]
        true = (op.matvec(v) - out["values"][i] * v).norm()
        assert true < 1e-6 * out["values"][0] + 2 * out["residuals"][i]
    fisher = spectra.fisher_eigenvalues(model, x, k=2, steps=30)
    assert (fisher > 0).all() and fisher[0] >= fisher[1]


def test_errors_say_what_was_expected():
    model, x, y = bn_mlp_batch()
    P = sum(p.numel() for p in model.parameters())
    cases = [(dict(k=0), "expected k a positive int"), (dict(k=1.5), "expected k a positive int"),
             (dict(k=P + 1), f"expected k <= the number of parameters P = {P}"),
             (dict(k=5, steps=2), "expected steps \\* block >= k"), (dict(which="top"), "expected which")]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            spectra.hessian_eigenvalues(model, F.cross_entropy, x, y, **kwargs)
    with pytest.raises(ValueError, match="expected loss_fn\\(model\\(x\\), y\\) to be a scalar"):
        spectra.hessian_eigenvalues(model, lambda z, t: F.cross_entropy(z, t, reduction="none"), x, y)
    with pytest.raises(ValueError, match="expected x with a batch dimension"):
        spectra.fisher_eigenvalues(model, x[0])
    with pytest.raises(ValueError, match="expected model\\(x\\) to be logits of shape \\(N, C\\)"):
        spectra.fisher_eigenvalues(nn.Sequential(model, nn.Unflatten(1, (5, 1))), x)
    with pytest.raises(ValueError, match="expected likelihood"):
        spectra.fisher_eigenvalues(model, x, likelihood="poisson")
    with pytest.raises(ValueError, match="expected a model with parameters that require grad"):
        spectra.hessian_eigenvalues(nn.Flatten(), F.mse_loss, x, x)
    with pytest.raises(ValueError, match=f"expected a vector of shape \\({P},\\)"):
        spectra.as_parameters(model, torch.zeros(3))
    with pytest.raises(ValueError, match="expected sigma > 0"):
        spectra.smoothed_density(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(3), sigma=0)
