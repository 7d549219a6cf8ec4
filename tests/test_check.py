"""bnlib.check: the reference passes, and every listed wrong answer is rejected and named."""
import numpy as np
import pytest

from bnlib import check, manual


def test_the_reference_passes():
    assert check.batchnorm_forward(manual.batchnorm_forward).startswith("통과 · passed")
    assert check.batchnorm_backward(manual.batchnorm_forward, manual.batchnorm_backward).startswith("통과")
    assert check.batchnorm_backward(manual.batchnorm_forward, manual.batchnorm_backward_fused).startswith("통과")


@pytest.mark.parametrize("name", check.FORWARD_MISTAKES)
def test_each_forward_mistake_is_caught_and_named(name):
    wrong, why = check.FORWARD_MISTAKES[name]
    with pytest.raises(check.CheckFailed) as err:
        check.batchnorm_forward(lambda x, g, b, eps: (wrong(x, g, b, eps), None))
    assert why in str(err.value)


@pytest.mark.parametrize("name", check.BACKWARD_MISTAKES)
def test_each_backward_mistake_is_caught_and_named(name):
    wrong, why = check.BACKWARD_MISTAKES[name]
    with pytest.raises(check.CheckFailed) as err:
        check.batchnorm_backward(manual.batchnorm_forward, wrong)
    assert why in str(err.value)


def test_an_unknown_mistake_and_a_wrong_shape_get_clear_messages():
    with pytest.raises(check.CheckFailed, match="none of the usual mistakes"):
        check.batchnorm_forward(lambda x, g, b, eps: manual.batchnorm_forward(x, g, b, eps)[0] + 0.1)
    with pytest.raises(check.CheckFailed, match=r"expected an output of shape \(8, 5\)"):
        check.batchnorm_forward(lambda x, g, b, eps: x[:, :2])


def test_the_reader_cannot_pass_by_changing_the_inputs():
    def in_place(x, g, b, eps):
        x -= x.mean(0)  # modifies its input: the checker passes copies, so the reference is unaffected
        return manual.batchnorm_forward(x, g, b, eps)
    assert check.batchnorm_forward(in_place).startswith("통과")
