#!/usr/bin/env python3
"""PyTorch reference for examples/char_rnn: the same model, data split, batching,
optimizer and validation scheme, so that time-to-validation-loss can be compared.

  char_lstm_shakespeare.py --text tinyshakespeare.txt --minutes 30 --threads 2 [--eval-every 250] [--out DIR]

Model (char_lstm reference configuration): Embedding(V -> 64), 2-layer LSTM hidden
256 (batch_first), Linear(256 -> V). Data: the text's sorted characters are the
vocabulary; first 90% (int(n * 0.9) characters) train, the rest validation.
Training: the train ids are cut into 32 contiguous streams starting at a random
offset in [0, 64) per pass; each step takes the next 64 characters of every
stream (targets shifted by one), starts from the previous step's final state
(detached; zero at the start of a pass), mean cross-entropy, clip_grad_norm_(1.0),
Adam 2e-3. Validation: the validation ids cut into 32 streams, windows of 64 with
the state carried, no grad; the mean cross-entropy in nats per character.
Writes DIR/metrics.jsonl with {"step", "elapsed_s", "cpu_s", "train_loss", "val_loss"}
after every --eval-every steps (elapsed_s: wall-clock seconds since the start,
evaluation time included, as char_rnn does; cpu_s: process CPU seconds, all threads).
"""
import argparse
import json
import os
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CharLSTM(nn.Module):
    def __init__(self, vocab, n_embd=64, hidden=256, layers=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, n_embd)
        self.lstm = nn.LSTM(n_embd, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        o, state = self.lstm(self.embedding(idx), state)
        return self.head(o), state


@torch.no_grad()
def evaluate(model, ids, batch, seq_len):
    model.eval()
    n = ids.numel() // batch
    streams = ids[: n * batch].view(batch, n)
    state, total, count = None, 0.0, 0
    for p in range(0, n - 1, seq_len):
        t = min(seq_len, n - 1 - p)
        logits, state = model(streams[:, p:p + t], state)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), streams[:, p + 1:p + 1 + t].reshape(-1),
                                 reduction="sum").item()
        count += batch * t
    model.train()
    return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="char_lstm_torch_out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed + 1)
    os.makedirs(a.out, exist_ok=True)

    text = open(a.text, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.int64)
    n_train = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:n_train], ids[n_train:]
    model = CharLSTM(len(chars))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    log = open(os.path.join(a.out, "metrics.jsonl"), "w")

    def streams_for_pass():
        off = rng.randrange(a.seq_len)
        n = (len(train_ids) - off) // a.batch
        return train_ids[off:off + n * a.batch].view(a.batch, n)

    t0, c0 = time.perf_counter(), time.process_time()
    step, state, streams, pos = 0, None, streams_for_pass(), 0
    loss_sum, loss_n = 0.0, 0
    while True:
        if a.steps and step >= a.steps:
            break
        if a.minutes and time.perf_counter() - t0 >= a.minutes * 60:
            break
        if pos + a.seq_len + 1 > streams.shape[1]:
            streams, pos = streams_for_pass(), 0
        if pos == 0:
            state = None
        x, y = streams[:, pos:pos + a.seq_len], streams[:, pos + 1:pos + 1 + a.seq_len]
        pos += a.seq_len
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state = tuple(s.detach() for s in state)
        step += 1
        loss_sum += loss.item()
        loss_n += 1
        if step % a.eval_every == 0:
            val = evaluate(model, val_ids, a.batch, a.seq_len)
            rec = {"step": step, "elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                   "train_loss": loss_sum / loss_n,
                   "val_loss": val}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(rec, flush=True)
            loss_sum, loss_n = 0.0, 0
    val = evaluate(model, val_ids, a.batch, a.seq_len)
    rec = {"step": step, "elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
           "train_loss": loss_sum / max(loss_n, 1),
           "val_loss": val, "final": True}
    log.write(json.dumps(rec) + "\n")
    print(rec, flush=True)


if __name__ == "__main__":
    main()
