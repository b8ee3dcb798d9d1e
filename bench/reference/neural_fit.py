#!/usr/bin/env python3
"""The neural-fit benchmark's reference: Brain-Score's regression in scikit-learn, timed on the data that
`pipeline bench neural` (src/Stages/NeuralFit/NeuralFitBenchmark.cs) wrote and fitted in C#.

Reads <folder>/features.npy [stimuli, D], responses.npy [stimuli, sites] and test_indices.npy [splits, n_test];
for each split fits PLSRegression(n_components, scale=False) on the other stimuli, predicts the test stimuli and
takes Pearson r per site. Writes r.npy [splits, sites]; prints one JSON line with the seconds (fit + predict + r,
not loading) and the NIPALS iteration counts.
"""
import argparse
import json
import time
import warnings

import numpy as np
from sklearn.cross_decomposition import PLSRegression


def pearson_per_site(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("--components", type=int, default=25)
args = parser.parse_args()
x = np.load(f"{args.folder}/features.npy")
y = np.load(f"{args.folder}/responses.npy")
tests = np.load(f"{args.folder}/test_indices.npy")

r = np.zeros((len(tests), y.shape[1]))
iterations = []
start = time.perf_counter()
for s, test in enumerate(tests):
    train = np.setdiff1d(np.arange(len(x)), test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter warnings: counted below instead
        pls = PLSRegression(n_components=args.components, scale=False).fit(x[train], y[train])
    r[s] = pearson_per_site(pls.predict(x[test]), y[test])
    iterations.append([int(i) for i in pls.n_iter_])
seconds = time.perf_counter() - start
np.save(f"{args.folder}/r.npy", r)
print(json.dumps({"seconds": seconds, "iterations": iterations}))
