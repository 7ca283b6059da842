"""The shared validation module: every refusal names the argument and is a ValueError/TypeError."""

import pytest
import torch
from torch import nn

from pyadvt.utils.validation import (InvalidTypeError, InvalidValueError, UserError, check_batch_size, check_images,
                                     check_labels, check_model_input)


def test_errors_are_user_errors_and_builtin_errors():
    assert issubclass(InvalidValueError, ValueError) and issubclass(InvalidValueError, UserError)
    assert issubclass(InvalidTypeError, TypeError) and issubclass(InvalidTypeError, UserError)
    from pyadvt.cli import UserError as cli_user_error
    assert cli_user_error is UserError


@pytest.mark.parametrize("x, match", [
    (torch.rand(2, 3) + 5, "'x_adv' must lie in \\[0, 1\\]"),
    (torch.full((2, 3), float("nan")), "'x_adv' contains NaN"),
    (torch.tensor([[0.5, float("inf")]]), "'x_adv' contains NaN or infinite"),
    ((torch.rand(2, 3) * 255).to(torch.uint8), "'x_adv' must be a floating-point"),
    (torch.rand(0, 3), "'x_adv' is empty"),
    (torch.rand(3), "'x_adv' must be a batch"),
    ([0.5], "'x_adv' must be a torch.Tensor"),
])
def test_check_images_refuses(x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_images(x, "x_adv")


def test_check_images_flags_nonfinite_rows_but_refuses_finite_out_of_range():
    x = torch.rand(4, 3)
    x[1, 0] = float("nan")
    x[3, 2] = float("-inf")
    valid = check_images(x, allow_nonfinite=True)
    assert valid.tolist() == [True, False, True, False]
    x[0, 0] = 1.5
    with pytest.raises(ValueError, match="'x' must lie in"):
        check_images(x, allow_nonfinite=True)
    assert check_images(torch.rand(3, 2), allow_nonfinite=True).all()


def test_check_labels():
    check_labels(torch.tensor([0, 9]), 2, num_classes=10)
    for y, match in [(torch.tensor([0, 10]), "labels in \\[0, 10\\).*\\[0, 10\\]"),
                     (torch.tensor([-5, 1]), "got values in \\[-5, 1\\]"),
                     (torch.tensor([0.0, 1.0]), "integer class labels"),
                     (torch.tensor([True, False]), "integer class labels"),
                     (torch.tensor([0, 1, 2]), "shape \\[2\\]"),
                     ([0, 1], "must be a torch.Tensor")]:
        with pytest.raises((ValueError, TypeError), match="'target'.*" + match):
            check_labels(y, 2, "target", num_classes=10)


@pytest.mark.parametrize("bs", [0, -1, 1.5, True, "8"])
def test_check_batch_size(bs):
    with pytest.raises((ValueError, TypeError), match="'batch_size'"):
        check_batch_size(bs)


def test_check_model_input_dtype():
    net = nn.Linear(3, 2)
    check_model_input(net, torch.rand(2, 3))
    with pytest.raises(TypeError, match="'x' has dtype torch.float64 but 'model' has torch.float32.*x.float\\(\\)"):
        check_model_input(net, torch.rand(2, 3, dtype=torch.float64))
