"""Checkers for the reader's own code: is your batch norm right, and if not, which usual mistake is it?

    from bnlib import check
    check.batchnorm_forward(my_forward)                # bn_algorithm, exercise 5
    check.batchnorm_backward(my_forward, my_backward)
    check.running_stats(my_update)                     # bn_algorithm, exercise 6
    check.whitening(my_zca)                            # whitening, exercise 4
    check.ics(my_ics)                                  # santurkar_ics, exercise 4
    check.group_norm(my_group_norm)                    # normalization_family, exercise 4

Each compares the reader's function with the reference (bnlib or PyTorch) on random shapes in
float64, gradients included where the function is a layer, and returns "통과 · passed: ..." (bounds,
never machine-dependent numbers). Otherwise it raises ``CheckFailed``, and when one of the usual
wrong answers listed in ``*_MISTAKES`` reproduces the reader's output, the message names it in
Korean and English.
"""
from ._batchnorm import BACKWARD_MISTAKES, FORWARD_MISTAKES, batchnorm_backward, batchnorm_forward
from ._common import CheckFailed
from ._groupnorm import GROUP_NORM_MISTAKES, group_norm
from ._ics import ICS_MISTAKES, ics
from ._running import RUNNING_MISTAKES, running_stats
from ._whitening import WHITENING_MISTAKES, whitening

__all__ = ["CheckFailed", "FORWARD_MISTAKES", "BACKWARD_MISTAKES", "batchnorm_forward", "batchnorm_backward",
           "RUNNING_MISTAKES", "running_stats", "WHITENING_MISTAKES", "whitening", "ICS_MISTAKES", "ics",
           "GROUP_NORM_MISTAKES", "group_norm"]
