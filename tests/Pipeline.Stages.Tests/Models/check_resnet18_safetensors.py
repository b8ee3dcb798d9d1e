"""Reads a ResNet-18 checkpoint written by ModelCheckpoint with json + numpy only (no safetensors package), loads it
strictly into a ResNet-18 defined here with torch.nn (no torchvision), and checks it against what the C# test measured.

usage: check_resnet18_safetensors.py CHECKPOINT EXPECTED_JSON
EXPECTED_JSON: {"classes", "tensor_count", "tensors": {key: {"shape", "sum", "first"}}, "input_shape", "logits"}
Exit code 0 when everything matches; otherwise a message on stderr and exit code 1.
"""
import json
import struct
import sys

import numpy as np
import torch
from torch import nn

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    names = list(header)
    assert names == sorted(names), "header keys are not sorted"
    tensors = {}
    end = 0
    for name in names:
        e = header[name]
        begin, stop = e["data_offsets"]
        arr = np.frombuffer(data[begin:stop], dtype=np.dtype(DTYPES[e["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.from_numpy(arr.copy().reshape(e["shape"]))
        end = max(end, stop)
    assert end == len(data), f"{len(data) - end} bytes after the last tensor"
    return tensors


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Net18(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [64, 128, 256, 512]
        cin = 64
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, w, stride), Block(w, w, 1)))
            cin = w
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main():
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    sd = read_safetensors(path)
    problems = []
    if len(sd) != expected["tensor_count"]:
        problems.append(f"{len(sd)} tensors, expected {expected['tensor_count']}")
    for key, want in expected["tensors"].items():
        if key not in sd:
            problems.append(f"missing {key}")
            continue
        t = sd[key]
        if list(t.shape) != want["shape"]:
            problems.append(f"{key}: shape {list(t.shape)} != {want['shape']}")
        s = float(t.double().sum())
        if abs(s - want["sum"]) > 1e-6 * max(1.0, abs(want["sum"])):
            problems.append(f"{key}: sum {s!r} != {want['sum']!r}")
        first = t.reshape(-1)[0].item()
        if first != want["first"]:
            problems.append(f"{key}: first value {first!r} != {want['first']!r}")

    model = Net18(expected["classes"])
    # strict=True: the key names and shapes must be exactly those of a torchvision-layout ResNet-18.
    model.load_state_dict(sd, strict=True)
    model.eval()
    shape = expected["input_shape"]
    x = torch.sin(torch.arange(int(np.prod(shape)), dtype=torch.float32) * 0.01).reshape(shape)
    with torch.no_grad():
        logits = model(x)
    want = torch.tensor(expected["logits"], dtype=torch.float32).reshape(logits.shape)
    if not torch.allclose(logits, want, rtol=1e-4, atol=1e-4):
        problems.append(f"logits differ: max abs diff {float((logits - want).abs().max())}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"ok: {len(sd)} tensors, logits max abs diff {float((logits - want).abs().max()):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
