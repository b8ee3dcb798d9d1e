#!/usr/bin/env python3
"""scikit-learn's PLSRegression and Ridge on arrays written by NeuralFitReferenceTests.cs (.npy in one folder).

Reads x.npy [n, p], y.npy [n, q], x_test.npy [m, p], alpha.npy [] and alphas.npy [q]; writes pls_pred.npy,
pls_n_iter.npy, pls_x_weights.npy, ridge_pred.npy (one alpha) and ridge_per_site_pred.npy (alpha per target).
"""
import sys
import warnings

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import Ridge

folder = sys.argv[1]
components = int(sys.argv[2])
max_iter = int(sys.argv[3])
load = lambda name: np.load(f"{folder}/{name}.npy")
x, y, x_test = load("x"), load("y"), load("x_test")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # max_iter warnings are part of what is compared
    pls = PLSRegression(n_components=components, scale=False, max_iter=max_iter).fit(x, y)
np.save(f"{folder}/pls_pred.npy", np.ascontiguousarray(pls.predict(x_test).reshape(len(x_test), -1)))
np.save(f"{folder}/pls_n_iter.npy", np.asarray(pls.n_iter_, dtype=np.int64))
np.save(f"{folder}/pls_x_weights.npy", np.ascontiguousarray(pls.x_weights_))
ridge = Ridge(alpha=float(load("alpha"))).fit(x, y)
np.save(f"{folder}/ridge_pred.npy", np.ascontiguousarray(ridge.predict(x_test)))
per_site = Ridge(alpha=load("alphas")).fit(x, y)
np.save(f"{folder}/ridge_per_site_pred.npy", np.ascontiguousarray(per_site.predict(x_test)))
