#!/usr/bin/env python3
"""The `vae` example's training run in PyTorch, for a quality comparison with genai.

Same configuration as examples/vae.cpp with its defaults: the MLP VAE of
pytorch/examples (784 -> 400 -> 2 x 20 -> 400 -> 784, torch's default Linear init),
Fashion-MNIST images in [0, 1] (byte / 255), batch 128 reshuffled every epoch
(last batch smaller), Adam 1e-3, loss = (BCE-with-logits summed over pixels + KL)
averaged over the batch. After every epoch: the test negative ELBO with one
posterior sample per image (nats per image); at the end the IWAE bound on
-log p(x) with k = 50 importance samples per test image. Seed protocol: one seed
(--seed) seeds torch (initialization, shuffling, noise); the evaluation noise comes
from its own generators seeded with seed + 2000 (ELBO) and seed + 3000 (IWAE), as in
the example. The random streams differ from genai's, so runs agree in distribution,
not bit for bit: compare means over a few seeds.

  vae_fmnist.py [--epochs 10] [--seed 0] [--threads 2] [--data /usr/share/datasets/fashion-mnist]

Prints one JSON object per epoch and one for the IWAE estimate.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(shape)


def load(root, split):
    name = "train" if split == "train" else "t10k"
    for ext in (".gz", ""):
        p = os.path.join(root, f"{name}-images-idx3-ubyte{ext}")
        if os.path.exists(p):
            return read_idx(p).reshape(-1, 784).float() / 255.0
    sys.exit(f"Fashion-MNIST not found in {root}; install the Debian package dataset-fashion-mnist")


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))


def neg_elbo_sum(model, x, eps):
    mu, logvar = model.encode(x)
    z = mu + eps * torch.exp(0.5 * logvar)
    bce = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kl, bce, kl


@torch.no_grad()
def evaluate(model, test, seed):
    g = torch.Generator().manual_seed(seed)
    tot = rec = kl = 0.0
    for i in range(0, len(test), 500):
        x = test[i:i + 500]
        l, b, k = neg_elbo_sum(model, x, torch.randn(x.shape[0], 20, generator=g))
        tot, rec, kl = tot + l.item(), rec + b.item(), kl + k.item()
    n = len(test)
    return tot / n, rec / n, kl / n


@torch.no_grad()
def iwae_nll(model, test, K, seed):
    g = torch.Generator().manual_seed(seed)
    bs = max(1, 8192 // K)
    total = 0.0
    for i in range(0, len(test), bs):
        x = test[i:i + bs]
        B = x.shape[0]
        mu, logvar = model.encode(x)
        eps = torch.randn(K, B, 20, generator=g)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = model.decode(z.reshape(K * B, 20))
        xk = x.unsqueeze(0).expand(K, B, 784).reshape(K * B, 784)
        log_px = -F.binary_cross_entropy_with_logits(logits, xk, reduction="none").sum(1).reshape(K, B)
        log_ratio = 0.5 * (eps ** 2 + logvar - z ** 2).sum(-1)
        ll = torch.logsumexp(log_px + log_ratio, 0) - math.log(K)
        total -= ll.sum().item()
    return total / len(test)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iwae-k", type=int, default=50)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train, test = load(a.data, "train"), load(a.data, "test")
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    for epoch in range(a.epochs):
        t0 = time.time()
        perm = torch.randperm(len(train))
        loss_sum, n = 0.0, 0
        for i in range(0, len(train), a.batch):
            x = train[perm[i:i + a.batch]]
            loss, _, _ = neg_elbo_sum(model, x, torch.randn(x.shape[0], 20))
            loss = loss / x.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum, n = loss_sum + loss.item(), n + 1
        ne, rec, kl = evaluate(model, test, a.seed + 2000)
        print(json.dumps({"epoch": epoch + 1, "train_loss": loss_sum / n, "test_neg_elbo": ne, "test_recon": rec,
                          "test_kl": kl, "seconds": time.time() - t0}), flush=True)
    if a.iwae_k > 0:
        print(json.dumps({"test_iwae_nll": iwae_nll(model, test, a.iwae_k, a.seed + 3000), "iwae_k": a.iwae_k}),
              flush=True)


if __name__ == "__main__":
    main()
