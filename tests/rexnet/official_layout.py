"""A ReXNet written in the official repository's module layout (one ``features`` Sequential with
``.out`` Sequentials per block, ``output`` = [Dropout, 1x1 conv]), built in the test from the
paper's channel tables so that the key names and forward order come from an independent source."""

import torch
from torch import nn

# the paper's tables: stem, block outputs, pen for ReXNet 1.0x and ReXNet-lite 1.0x
V1_100 = (32, [16, 27, 38, 50, 61, 72, 84, 95, 106, 117, 128, 140, 151, 162, 174, 185], 1280)
LITE_100 = (32, [16, 32, 40, 48, 64, 72, 80, 96, 104, 112, 128, 136, 144, 160, 168, 184], 1280)
STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]


def conv_bn(layers, cin, cout, k=1, s=1, groups=1, act=None):
    layers += [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())


class OfficialSE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(c, c // 12, 1), nn.BatchNorm2d(c // 12), nn.ReLU(),
                                nn.Conv2d(c // 12, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(self.avg_pool(x))


class OfficialBlock(nn.Module):
    def __init__(self, cin, cout, t, s, se, lite):
        super().__init__()
        self.cin, self.shortcut = cin, s == 1 and cin <= cout
        act = nn.ReLU6 if lite else nn.SiLU
        layers = []
        dw = cin * t
        if t != 1:
            conv_bn(layers, cin, dw, act=act)
        conv_bn(layers, dw, dw, 3, s, groups=dw, act=nn.ReLU6 if lite else None)
        if se:
            layers.append(OfficialSE(dw))
        if not lite:
            layers.append(nn.ReLU6())
        conv_bn(layers, dw, cout)
        self.out = nn.Sequential(*layers)

    def forward(self, x):
        y = self.out(x)
        if self.shortcut:
            y[:, : self.cin] += x
        return y


class OfficialLayout(nn.Module):
    def __init__(self, table, lite=False, classes=1000):
        super().__init__()
        stem, outs, pen = table
        act = nn.ReLU6 if lite else nn.SiLU
        feats = []
        conv_bn(feats, 3, stem, 3, 2, act=act)
        prev = stem
        for i, c in enumerate(outs):
            feats.append(OfficialBlock(prev, c, 1 if i == 0 else 6, STRIDES[i], (not lite) and i >= 3, lite))
            prev = c
        conv_bn(feats, prev, pen, act=act)
        feats.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*feats)
        if lite:
            self.output = nn.Sequential(nn.Conv2d(pen, 1024, 1), nn.BatchNorm2d(1024), nn.ReLU6(),
                                        nn.Dropout(0.2), nn.Conv2d(1024, classes, 1))
        else:
            self.output = nn.Sequential(nn.Dropout(0.2), nn.Conv2d(pen, classes, 1))

    def forward(self, x):
        return self.output(self.features(x)).flatten(1)


def randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics/affine so a wrong mapping cannot pass by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
