#!/usr/bin/env python3
"""rgc-shallow in plain PyTorch 1.13, mirroring src/Stages/Models (ConvRnnModel.cs, ConvRnnLayer.cs,
Cells/ReciprocalGatedCell.cs, Presets/rgc-shallow.json), written from those sources.

Model: conv1 7x7/2 64 -> conv2 3x3 128 -> conv3..conv5 3x3 256/256/512, each x = elu(conv(input)) -> [RGC cell] ->
2x2 max-pool (skipped when the map is smaller than the pool). RGC (shallow): h_in = x, all 3x3, sigmoid tau/gate,
factors 1 - f, residual (the layer's input) into the output gate through a bias-free 3x3 conv; the output gate reads
the old cell state. Biological unrolling: at step t layer i reads layer i-1's output from t-1 (zeros before it has
one), layer 0 reads the frame (the image for t < 12, zeros after); the decoder reads the last layer's output from
t-1. Decoder: k x k VALID conv (k = min(2, last map size)) then global average pool. Readout: logits of the last step.

Prints images/s in the format of `pipeline bench models`.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_conv(cin, cout, k, bias=True):
    # Cells' convs: stride 1, padding "same", bias starting at zero (CellLayers.SameConv).
    conv = nn.Conv2d(cin, cout, k, padding="same", bias=bias)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


class RgcShallowCell(nn.Module):
    def __init__(self, channels, residual_channels):
        super().__init__()
        self.input_to_cell = same_conv(channels, channels, 3)
        self.cell_to_cell = same_conv(channels, channels, 3)
        self.out_to_cell = same_conv(channels, channels, 3)
        self.out_to_out = same_conv(channels, channels, 3)
        self.cell_to_out = same_conv(channels, channels, 3)
        self.residual_to_out_gate = same_conv(residual_channels, channels, 3, bias=False)

    def forward(self, x, h, c, res):
        tau_c = self.cell_to_cell(c)
        gate_h = self.cell_to_out(c)
        gate_c = self.out_to_cell(h)
        tau_h = self.out_to_out(h)
        c_in = self.input_to_cell(x)
        c_next = F.elu((1 - torch.sigmoid(tau_c)) * c + (1 - torch.sigmoid(gate_c)) * c_in)
        h_in = x
        gate_h = gate_h + self.residual_to_out_gate(res)
        h_next = F.elu((1 - torch.sigmoid(tau_h)) * h + (1 - torch.sigmoid(gate_h)) * h_in)
        return h_next, c_next


class Layer(nn.Module):
    def __init__(self, cin, cout, kernel, stride, pool, cell):
        super().__init__()
        self.kernel, self.stride, self.pool = kernel, stride, pool
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)
        self.cell = RgcShallowCell(cout, cin) if cell else None
        self.residual_fits = stride == 1

    def conv_size(self, size):
        return (size + 2 * (self.kernel // 2) - self.kernel) // self.stride + 1

    def output_size(self, size):
        s = self.conv_size(size)
        return s // self.pool if self.pool >= 2 and s >= self.pool else s

    def forward(self, inp, state):
        x = F.elu(self.conv(inp))
        if self.cell is not None:
            h, c = state
            h, c = self.cell(x, h, c, inp if self.residual_fits else None)
            state = (h, c)
        else:
            h = x
        if self.pool >= 2 and h.shape[2] >= self.pool:
            h = F.max_pool2d(h, self.pool, self.pool)
        return h, state


class RgcShallow(nn.Module):
    # (name, out, kernel, stride, pool, cell) from Presets/rgc-shallow.json
    LAYERS = [("conv1", 64, 7, 2, 2, False), ("conv2", 128, 3, 1, 2, False), ("conv3", 256, 3, 1, 2, True),
              ("conv4", 256, 3, 1, 2, True), ("conv5", 512, 3, 1, 2, True)]

    def __init__(self, input_size=64, classes=1000, steps=16, image_off=12, decoder_kernel=2):
        super().__init__()
        self.steps, self.image_off = steps, image_off
        self.layer_names = []
        self.input_sizes, self.input_channels = [], []
        size, channels = input_size, 3
        for name, out, k, s, p, cell in self.LAYERS:
            layer = Layer(channels, out, k, s, p, cell)
            self.add_module(name, layer)
            self.layer_names.append(name)
            self.input_sizes.append(size)
            self.input_channels.append(channels)
            size, channels = layer.output_size(size), out
        self.last_size, self.last_channels = size, channels
        self.decoder = nn.Conv2d(channels, classes, min(decoder_kernel, size))

    def layers(self):
        return [getattr(self, n) for n in self.layer_names]

    def decode(self, last):
        return self.decoder(last).mean((2, 3))

    def forward(self, images):
        b = images.shape[0]
        layers = self.layers()
        outputs = [None] * len(layers)  # outputs at t-1; None = still zero
        states = []
        for i, l in enumerate(layers):
            s = l.conv_size(self.input_sizes[i])
            states.append((images.new_zeros(b, l.conv.out_channels, s, s),) * 2 if l.cell is not None else None)
        logits = []
        for t in range(self.steps):
            nxt = []
            for i, l in enumerate(layers):
                if i == 0:
                    inp = images if t < self.image_off else torch.zeros_like(images)
                elif outputs[i - 1] is not None:
                    inp = outputs[i - 1]
                else:
                    n = self.input_sizes[i]
                    inp = images.new_zeros(b, self.input_channels[i], n, n)
                out, states[i] = l(inp, states[i])
                nxt.append(out)
            last = outputs[-1]
            if last is None:
                last = images.new_zeros(b, self.last_channels, self.last_size, self.last_size)
            logits.append(self.decode(last))
            outputs = nxt
        return logits[-1]  # readout: last step


def median_seconds(repeats, fn):
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        fn()
        if i > 0:  # the first is a warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input-size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = RgcShallow(args.input_size, args.classes)
    images = torch.randn(args.batch, 3, args.input_size, args.input_size)
    labels = torch.randint(0, args.classes, (args.batch,))
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    params = sum(p.numel() for p in model.parameters())

    model.eval()

    def fwd():
        with torch.no_grad():
            model(images)

    forward = median_seconds(args.repeats, fwd)

    model.train()

    def train():
        sgd.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        sgd.step()

    train_s = median_seconds(args.repeats, train)

    print(f"machine: {torch.get_num_threads()} torch threads; PyTorch {torch.__version__}; input {args.input_size} px, "
          f"batch {args.batch}, {args.classes} classes")
    print(f"{'preset':<26} {'parameters':>12} {'T':>4} {'forward img/s':>14} {'fwd+bwd img/s':>14}")
    print(f"{'rgc-shallow (PyTorch)':<26} {params:>12,} {model.steps:>4} {args.batch / forward:>14.1f} "
          f"{args.batch / train_s:>14.1f}")


if __name__ == "__main__":
    main()
