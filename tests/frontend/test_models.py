"""PyTorch weights (as numpy arrays) loaded into the same architectures built with frontend
give the same outputs: MLP, small CNN with BatchNorm, ResNet-18, MobileNetV2, TransformerEncoder.
The torch twins (frontend.torch_twins) are written in PyTorch, independently of frontend.models."""
import numpy as np

import frontend
from frontend import models
from parity import HAVE_TORCH, assert_close, check_module_parity, copy_torch_weights, needs_torch

if HAVE_TORCH:
    import torch
    from torch import nn as tnn

    from frontend import torch_twins


def _randomize_bn_stats(torch_model, seed=0):
    """Non-trivial running statistics so eval-mode BatchNorm is really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in torch_model.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _eval_parity(ours, theirs, shape, rtol=1e-4, atol=1e-5, seed=0):
    _randomize_bn_stats(theirs, seed)
    result = copy_torch_weights(theirs, ours)
    assert not result.missing_keys and not result.unexpected_keys
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.tensor(x))
    with frontend.no_grad():
        got = ours(frontend.tensor(x))
    assert_close(got, expected, "model output", rtol, atol)


@needs_torch
def test_mlp_parity_with_gradients():
    check_module_parity(lambda: models.MLP((64, 32, 16, 10)), lambda: torch_twins.mlp((64, 32, 16, 10)), [(4, 64)])


@needs_torch
def test_small_cnn_parity_train_step_and_eval():
    # Training mode: batch statistics, running-stat updates and every parameter gradient.
    check_module_parity(lambda: models.SmallCNN(), lambda: torch_twins.small_cnn(), [(4, 1, 8, 8)], train=True)
    _eval_parity(models.SmallCNN(), torch_twins.small_cnn(), (2, 1, 28, 28))


@needs_torch
def test_resnet18_parity():
    torch.manual_seed(0)
    # NOTE: 20 layers of float32 accumulation in different orders: atol 1e-4 on outputs ~1.
    _eval_parity(models.resnet18(num_classes=10), torch_twins.resnet18(10), (2, 3, 32, 32), atol=1e-4)


@needs_torch
def test_mobilenet_v2_parity():
    torch.manual_seed(0)
    _eval_parity(models.mobilenet_v2(num_classes=10), torch_twins.mobilenet_v2(10), (2, 3, 32, 32), atol=1e-4)


@needs_torch
def test_transformer_encoder_parity():
    torch.manual_seed(0)
    theirs = torch_twins.transformer_encoder(32, 4, 2, 64)
    _eval_parity(models.transformer_encoder(32, 4, 2, 64), theirs, (2, 6, 32))


@needs_torch
def test_transformer_encoder_gradients():
    check_module_parity(lambda: models.transformer_encoder(16, 2, 2, 32, dropout=0.0),
                        lambda: torch_twins.transformer_encoder(16, 2, 2, 32, dropout=0.0),
                        [(2, 5, 16)], train=True)


def test_models_state_dict_keys_match_torchvision_names():
    keys = list(models.resnet18(10).state_dict())
    assert keys[:7] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                        "bn1.num_batches_tracked", "layer1.0.conv1.weight"]
    assert "layer2.0.downsample.0.weight" in keys and keys[-2:] == ["fc.weight", "fc.bias"]
    mkeys = list(models.mobilenet_v2(10).state_dict())
    assert mkeys[0] == "features.0.0.weight" and "features.1.conv.0.0.weight" in mkeys
    assert "features.2.conv.3.weight" in mkeys and mkeys[-1] == "classifier.1.bias"
