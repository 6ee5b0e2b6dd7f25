"""Style-transfer benchmark for bench_torch.py (imported by it; register(bench) adds the benchmarks).

  train_step/vgg_style   one Adam(0.02) step on a 1 x 3 x 256 x 256 image, as genai's
                         benchmarks/bench_train_vgg.cpp: VGG-19 features up to relu4_1 (torchvision's
                         layout: conv3x3 64, 64, pool, 128, 128, pool, 256 x4, pool, 512) with average
                         pooling and frozen random weights; loss = MSE of the relu4_1 features against a
                         target + MSE of their Gram matrix (F F^T / (C H W)) against a target Gram.

The network is written here (no torchvision); ImageNet normalization as genai's VGGFeatures.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _vgg19_to_relu4_1():
    layers, c = [], 3
    for v in [64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P", 512]:
        if v == "P":
            layers.append(nn.AvgPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    net = nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _gram(f):
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def register(bench):
    @bench("train_step/vgg_style")
    def _():
        net = _vgg19_to_relu4_1()
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        with torch.no_grad():
            target_f = net((torch.rand(1, 3, 256, 256) - mean) / std)
            target_g = _gram(target_f)
        img = torch.rand(1, 3, 256, 256, requires_grad=True)
        opt = torch.optim.Adam([img], lr=0.02)

        def step():
            opt.zero_grad()
            f = net((img - mean) / std)
            loss = F.mse_loss(f, target_f) + F.mse_loss(_gram(f), target_g)
            loss.backward()
            opt.step()
        return step
