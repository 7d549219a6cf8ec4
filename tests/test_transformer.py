"""bnlib.transformer: the row-by-row transformer of the second normalization family chapter."""
from dataclasses import replace

import pytest
import torch

from bnlib import norms, transformer


@pytest.mark.parametrize("norm, cls", [("ln", norms.LayerNorm), ("rms", norms.RMSNorm), ("dyt", norms.DyT)])
def test_every_norm_is_the_chosen_kind(norm, cls):
    model = transformer.row_transformer(norm)
    found = [m for m in model.modules() if isinstance(m, (norms.LayerNorm, norms.RMSNorm, norms.DyT))]
    assert len(found) == 2 * transformer.RowConfig().depth + 1 and all(isinstance(m, cls) for m in found)
    assert model(torch.randn(3, 1, 14, 14)).shape == (3, 10)


def test_tokens_do_not_mix_across_the_batch():
    """Per-token normalization: one example's logits do not depend on the others in the batch."""
    model = transformer.row_transformer("ln").eval()
    x = torch.randn(4, 1, 14, 14)
    torch.testing.assert_close(model(x)[:1], model(x[:1]), atol=1e-5, rtol=1e-5)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="expected norm in"):
        transformer.make_token_norm("bn", 8)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, rows, pixels\)"):
        transformer.row_transformer("ln")(torch.randn(2, 14, 14))


def test_run_rows_learns_and_workers_match_one_process():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (128,), generator=g)
    x = torch.randn(128, 1, 14, 14, generator=g) * 0.1 + y.view(-1, 1, 1, 1) / 10  # learnable
    data = {"train": (x, y), "test": (x[:64], y[:64])}
    cfg = replace(transformer.RowConfig(), steps=40, batch_size=32)
    one = transformer.run_rows_many(data, [("rms", 0), ("dyt", 1)], cfg, workers=1)
    two = transformer.run_rows_many(data, [("rms", 0), ("dyt", 1)], cfg, workers=2)
    assert [r["test_acc"] for r in one] == [r["test_acc"] for r in two]
    assert one[0]["test_acc"] > 0.3  # well above chance (0.1) on this easy task
    transformer.row_transformer("rms", cfg).load_state_dict(one[0]["state"])
