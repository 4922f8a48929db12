"""PyTorch twins of `frontend.models`: the same architectures written directly in PyTorch, with
the same module structure and so the same `state_dict` keys (torchvision's names for ResNet-18
and MobileNetV2). Parity tests load one side's weights into the other and compare outputs;
benchmarks run the twins as the PyTorch / ONNX Runtime peers. Needs `torch` (imported lazily).

    >>> from frontend import models, torch_twins              # doctest: +SKIP
    >>> ours = models.resnet18(num_classes=10)                 # doctest: +SKIP
    >>> theirs = torch_twins.copy_weights(ours, torch_twins.resnet18(num_classes=10))  # doctest: +SKIP

Written independently of `frontend.models` on purpose: a shared mistake would hide from parity.
"""
import numpy as np


def _nn():
    import torch
    from torch import nn
    return torch, nn


def mlp(sizes):
    """Linear layers with ReLU between them, input flattened from dim 1."""
    torch, nn = _nn()

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            mods = []
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                mods.append(nn.Linear(a, b))
                if i < len(sizes) - 2:
                    mods.append(nn.ReLU())
            self.layers = nn.Sequential(*mods)

        def forward(self, x):
            return self.layers(torch.flatten(x, 1))

    return MLP()


def small_cnn(in_channels=1, num_classes=10, width=16):
    """Three conv-BN-ReLU blocks, one max-pool, global average pool, linear."""
    torch, nn = _nn()

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), nn.BatchNorm2d(4 * w), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(4 * w, num_classes)

        def forward(self, x):
            return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    return SmallCNN()


def resnet18(num_classes=1000):
    """torchvision's ResNet-18 layout (BasicBlock x [2, 2, 2, 2])."""
    torch, nn = _nn()

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1, self.layer2 = self._layer(64, 1), self._layer(128, 2)
            self.layer3, self.layer4 = self._layer(256, 2), self._layer(512, 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def _layer(self, planes, stride):
            down = None
            if stride != 1 or self.inplanes != planes:
                down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            blocks = [BasicBlock(self.inplanes, planes, stride, down), BasicBlock(planes, planes)]
            self.inplanes = planes
            return nn.Sequential(*blocks)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet18()


def mobilenet_v2(num_classes=1000):
    """torchvision's MobileNetV2 layout (width 1.0)."""
    torch, nn = _nn()

    def conv_bn(inp, oup, k=3, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(inp, oup, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(oup)]
        if act:
            layers.append(nn.ReLU6())
        return nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = int(round(inp * t))
            self.use_res_connect = stride == 1 and inp == oup
            layers = [conv_bn(inp, hidden, 1)] if t != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                       nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                       [6, 160, 3, 2], [6, 320, 1, 1]]
            features, c_in = [conv_bn(3, 32, 3, 2)], 32
            for t, c, n, s in setting:
                for i in range(n):
                    features.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                    c_in = c
            features.append(conv_bn(c_in, 1280, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2()


def transformer_encoder(d_model, nhead, num_layers, dim_feedforward, dropout=0.1):
    """nn.TransformerEncoder of batch-first post-norm layers (no nested-tensor fast path)."""
    _, nn = _nn()
    layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)


def copy_weights(frontend_model, torch_model):
    """Loads a frontend model's state_dict into its PyTorch twin (keys must match; PyTorch's
    `num_batches_tracked` may be absent on our side) and returns the twin in eval mode."""
    import torch
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in frontend_model.state_dict().items()}
    missing, unexpected = torch_model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"state_dict mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return torch_model.eval()
