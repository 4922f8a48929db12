"""PyTorch weights (as numpy arrays) loaded into the same architectures built with frontend
give the same outputs: MLP, small CNN with BatchNorm, ResNet-18, MobileNetV2, TransformerEncoder.
The torch twins are written here, independently of frontend.models."""
import numpy as np

import frontend
from frontend import models
from parity import HAVE_TORCH, assert_close, check_module_parity, copy_torch_weights, needs_torch

if HAVE_TORCH:
    import torch
    from torch import nn as tnn

    class TorchMLP(tnn.Module):
        def __init__(self, sizes):
            super().__init__()
            mods = []
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                mods.append(tnn.Linear(a, b))
                if i < len(sizes) - 2:
                    mods.append(tnn.ReLU())
            self.layers = tnn.Sequential(*mods)

        def forward(self, x):
            return self.layers(torch.flatten(x, 1))

    class TorchSmallCNN(tnn.Module):
        def __init__(self, in_channels=1, num_classes=10, width=16):
            super().__init__()
            w = width
            self.features = tnn.Sequential(
                tnn.Conv2d(in_channels, w, 3, padding=1, bias=False), tnn.BatchNorm2d(w), tnn.ReLU(),
                tnn.Conv2d(w, 2 * w, 3, padding=1, bias=False), tnn.BatchNorm2d(2 * w), tnn.ReLU(),
                tnn.MaxPool2d(2),
                tnn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), tnn.BatchNorm2d(4 * w), tnn.ReLU())
            self.pool = tnn.AdaptiveAvgPool2d(1)
            self.classifier = tnn.Linear(4 * w, num_classes)

        def forward(self, x):
            return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    class TorchBasicBlock(tnn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class TorchResNet18(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.inplanes = 64
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make(64, 1)
            self.layer2 = self._make(128, 2)
            self.layer3 = self._make(256, 2)
            self.layer4 = self._make(512, 2)
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(512, num_classes)

        def _make(self, planes, stride):
            down = None
            if stride != 1 or self.inplanes != planes:
                down = tnn.Sequential(tnn.Conv2d(self.inplanes, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes))
            blocks = [TorchBasicBlock(self.inplanes, planes, stride, down), TorchBasicBlock(planes, planes)]
            self.inplanes = planes
            return tnn.Sequential(*blocks)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def _cna(inp, out, k=3, stride=1, groups=1, act=True):
        layers = [tnn.Conv2d(inp, out, k, stride, (k - 1) // 2, groups=groups, bias=False), tnn.BatchNorm2d(out)]
        if act:
            layers.append(tnn.ReLU6(inplace=True))
        return tnn.Sequential(*layers)

    class TorchInvertedResidual(tnn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = int(round(inp * t))
            self.use_res = stride == 1 and inp == oup
            layers = [_cna(inp, hidden, 1)] if t != 1 else []
            layers += [_cna(hidden, hidden, 3, stride, hidden), tnn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                       tnn.BatchNorm2d(oup)]
            self.conv = tnn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class TorchMobileNetV2(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                       [6, 320, 1, 1]]
            feats = [_cna(3, 32, stride=2)]
            c_in = 32
            for t, c, n, s in setting:
                for i in range(n):
                    feats.append(TorchInvertedResidual(c_in, c, s if i == 0 else 1, t))
                    c_in = c
            feats.append(_cna(c_in, 1280, 1))
            self.features = tnn.Sequential(*feats)
            self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, num_classes))

        def forward(self, x):
            x = torch.flatten(tnn.functional.adaptive_avg_pool2d(self.features(x), (1, 1)), 1)
            return self.classifier(x)


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
    check_module_parity(lambda: models.MLP((64, 32, 16, 10)), lambda: TorchMLP((64, 32, 16, 10)), [(4, 64)])


@needs_torch
def test_small_cnn_parity_train_step_and_eval():
    # Training mode: batch statistics, running-stat updates and every parameter gradient.
    check_module_parity(lambda: models.SmallCNN(), lambda: TorchSmallCNN(), [(4, 1, 8, 8)], train=True)
    _eval_parity(models.SmallCNN(), TorchSmallCNN(), (2, 1, 28, 28))


@needs_torch
def test_resnet18_parity():
    torch.manual_seed(0)
    # NOTE: 20 layers of float32 accumulation in different orders: atol 1e-4 on outputs ~1.
    _eval_parity(models.resnet18(num_classes=10), TorchResNet18(10), (2, 3, 32, 32), atol=1e-4)


@needs_torch
def test_mobilenet_v2_parity():
    torch.manual_seed(0)
    _eval_parity(models.mobilenet_v2(num_classes=10), TorchMobileNetV2(10), (2, 3, 32, 32), atol=1e-4)


@needs_torch
def test_transformer_encoder_parity():
    torch.manual_seed(0)
    theirs = tnn.TransformerEncoder(tnn.TransformerEncoderLayer(32, 4, 64, 0.1, batch_first=True), 2,
                                    enable_nested_tensor=False)
    _eval_parity(models.transformer_encoder(32, 4, 2, 64), theirs, (2, 6, 32))


@needs_torch
def test_transformer_encoder_gradients():
    check_module_parity(lambda: models.transformer_encoder(16, 2, 2, 32, dropout=0.0),
                        lambda: tnn.TransformerEncoder(tnn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True), 2,
                                                       enable_nested_tensor=False),
                        [(2, 5, 16)], train=True)


def test_models_state_dict_keys_match_torchvision_names():
    keys = list(models.resnet18(10).state_dict())
    assert keys[:7] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                        "bn1.num_batches_tracked", "layer1.0.conv1.weight"]
    assert "layer2.0.downsample.0.weight" in keys and keys[-2:] == ["fc.weight", "fc.bias"]
    mkeys = list(models.mobilenet_v2(10).state_dict())
    assert mkeys[0] == "features.0.0.weight" and "features.1.conv.0.0.weight" in mkeys
    assert "features.2.conv.3.weight" in mkeys and mkeys[-1] == "classifier.1.bias"
