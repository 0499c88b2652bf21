"""Per-target SelfDistillCV on a GPU, through the array API.

The setting of ``bench_targets.py`` (n = 2000, d = 100, 20 alphas,
``cv=KFold(5)``, ``n_steps=(0, 1, 2)``, per-target tuning, targets with
varied noise) with the data on a CUDA device, in one run:

* ``SelfDistillCV(alpha_per_target=True)`` with
  ``sklearn.config_context(array_api_dispatch=True)`` on PyTorch and CuPy
  arrays (float64), with and without the nested estimate
  (``return_honest_score``);
* himalaya's ``RidgeCV(cv=5)`` (ridge only) with its ``torch_cuda`` backend
  on the same data, alphas and folds (``pip install himalaya``: a
  benchmark-only dependency; skipped if absent);
* ``RepeatedSelfDistillationRegressor(n_steps=2)`` fitted with per-target
  alphas, against scikit-learn's ``Ridge`` on the same arrays;
* the NumPy path on the first ``--check`` targets: the per-target choices
  must be equal and the predictions equal to float64 round-off.

Every timed call is preceded by a warm-up on the same shapes and followed
by a device synchronisation. Target: per-target ``SelfDistillCV``
within 3x of himalaya's ridge-only time.

Run: ``python benchmarks/bench_gpu.py [--targets 20000 100000]
[--backends torch cupy] [--check 300]``. Without CUDA it runs on PyTorch's
CPU device (a smoke test, not a measurement).
"""

import argparse
import time
import warnings

import numpy as np
import sklearn
from bench_targets import _problem  # the same data as on the CPU
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from skdistill import RepeatedSelfDistillationRegressor, SelfDistillCV

warnings.simplefilter("ignore")
ALPHAS = np.logspace(-1, 5, 20)


class _Backend:
    """Moving arrays to a device, synchronising it and reading its peak memory."""

    def __init__(self, name):
        self.name = name
        if name == "torch":
            import torch

            self.lib = torch
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            import cupy

            self.lib = cupy
            self.device = "cuda"

    def put(self, a):
        if self.name == "torch":
            return self.lib.asarray(a, device=self.device)
        return self.lib.asarray(a)

    def get(self, a):
        if self.name == "torch":
            return a.detach().cpu().numpy()
        return self.lib.asnumpy(a)

    def sync(self):
        if self.name == "torch" and self.device == "cuda":
            self.lib.cuda.synchronize()
        elif self.name == "cupy":
            self.lib.cuda.runtime.deviceSynchronize()

    def reset_peak(self):
        if self.name == "torch" and self.device == "cuda":
            self.lib.cuda.reset_peak_memory_stats()

    def peak_mib(self):
        if self.name == "torch" and self.device == "cuda":
            return self.lib.cuda.max_memory_allocated() / 2**20
        if self.name == "cupy":
            return self.lib.get_default_memory_pool().total_bytes() / 2**20
        return float("nan")


def _timed(backend, fn, repeats=1, warm=None):
    (warm or fn)()  # warm-up: kernels compiled, memory pools grown
    backend.sync()
    best = np.inf
    for _ in range(repeats):
        backend.reset_peak()
        tic = time.perf_counter()
        out = fn()
        backend.sync()
        best = min(best, time.perf_counter() - tic)
    return best, backend.peak_mib(), out


def _search(X, Y, **kw):
    with sklearn.config_context(array_api_dispatch=True):
        return SelfDistillCV(
            alphas=ALPHAS, n_steps=(0, 1, 2), cv=KFold(5), alpha_per_target=True, **kw
        ).fit(X, Y)


def _himalaya(X, Y):
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    set_backend("torch_cuda", on_error="raise")
    return RidgeCV(alphas=ALPHAS, cv=KFold(5)).fit(X, Y)


def _check(backend, X, Y, n_check):
    """The device's per-target choices against the NumPy path's."""
    Xs, Ys = X, Y[:, :n_check]
    ref = SelfDistillCV(
        alphas=ALPHAS, n_steps=(0, 1, 2), cv=KFold(5), alpha_per_target=True
    ).fit(Xs, Ys)
    dev = _search(backend.put(Xs), backend.put(Ys))
    same_steps = np.mean(backend.get(dev.n_steps_) == ref.n_steps_)
    same_alpha = np.mean(backend.get(dev.cv_alpha_) == ref.cv_alpha_)
    with sklearn.config_context(array_api_dispatch=True):
        pred = backend.get(dev.predict(backend.put(Xs)))
    scale = np.abs(ref.predict(Xs)).max()
    err = np.abs(pred - ref.predict(Xs)).max() / scale
    return same_steps, same_alpha, err


def _report(backend, X, Y, profile=False):
    """Time every method on ``Y``'s targets and print one table."""
    Xd, Yd = backend.put(X), backend.put(Y)
    t = Y.shape[1]
    rows = {}
    for label, kw in (
        ("SelfDistillCV (default)", {}),
        ("SelfDistillCV (no honest_score_)", {"return_honest_score": False}),
    ):
        try:
            rows[label] = _timed(
                backend,
                lambda kw=kw: _search(Xd, Yd, **kw),
                warm=lambda kw=kw: _search(Xd, Yd[:, :1000], **kw),
            )
        except Exception as exc:
            rows[label] = (np.nan, np.nan, f"{type(exc).__name__}: {exc}")
    if backend.name == "torch":
        try:
            rows["himalaya RidgeCV(cv=5)"] = _timed(backend, lambda: _himalaya(Xd, Yd))
        except Exception as exc:
            rows["himalaya RidgeCV(cv=5)"] = (np.nan, np.nan, repr(exc))
    alpha = backend.put(np.full((t, 1), 10.0))

    def fit_rsdr():
        with sklearn.config_context(array_api_dispatch=True):
            est = RepeatedSelfDistillationRegressor(
                alpha=alpha, n_steps=2, xi=[0.5, 0.5]
            )
            return est.fit(Xd, Yd)

    def fit_ridge():
        with sklearn.config_context(array_api_dispatch=True):
            return Ridge(alpha=10.0).fit(Xd, Yd)

    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        _search(Xd, Yd)
        backend.sync()
        prof.disable()
        print(f"  profile of one default search on {t} targets:")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    for label, fn in (
        ("RSDR fit, per-target alpha", fit_rsdr),
        ("sklearn Ridge fit", fit_ridge),
    ):
        try:
            rows[label] = _timed(backend, fn)
        except Exception as exc:
            rows[label] = (np.nan, np.nan, f"{type(exc).__name__}: {exc}")
    base = rows.get("himalaya RidgeCV(cv=5)", (np.nan,))[0]
    print(f"  {t} targets, n = {X.shape[0]}, d = {X.shape[1]}, 20 alphas")
    print(f"    {'method':<36} {'seconds':>8} {'peak MiB':>9} {'/ himalaya':>10}")
    for label, (secs, mib, out) in rows.items():
        note = out if isinstance(out, str) else ""
        print(f"    {label:<36} {secs:8.3f} {mib:9.0f} {secs / base:10.2f} {note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="*", default=[20000, 100000])
    parser.add_argument("--backends", nargs="*", default=["torch", "cupy"])
    parser.add_argument("--check", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for name in args.backends:
        try:
            backend = _Backend(name)
        except ImportError as exc:
            print(f"{name}: not available ({exc})")
            continue
        print(f"\n== {name} on {backend.device}")
        X, Y = _problem(max(args.targets))
        try:
            same_steps, same_alpha, err = _check(backend, X, Y, args.check)
            print(
                f"  check on {args.check} targets against NumPy: n_steps equal "
                f"{same_steps:.3f}, alpha equal {same_alpha:.3f}, max relative "
                f"prediction difference {err:.2e}"
            )
        except Exception as exc:  # report and go on to the timings
            print(f"  check failed: {type(exc).__name__}: {exc}")
        for t in args.targets:
            first = t == args.targets[0]
            _report(backend, X, Y[:, :t], profile=args.profile and first)


if __name__ == "__main__":
    main()
