"""metricflow quickstart: a small learning-rate sweep in 4 parallel worker processes.

Each worker trains a logistic-regression model with numpy SGD and logs, every
step, its loss, accuracy, gradient norm and all 97 weights: 100 metrics x 2,500
steps = 250,000 points per worker, about 1M in total, all under one parent run.
Then it reads the runs back and prints a summary table.

    METRICFLOW_TRACKING_URI=grpc://127.0.0.1:50051 python examples/quickstart.py
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time

import numpy as np

import metricflow as mf

FEATURES = 96
STEPS = 2500


def make_data(seed: int = 0, n: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES))
    true_w = rng.normal(size=FEATURES)
    y = (x @ true_w + rng.normal(scale=2.0, size=n) > 0).astype(np.float64)
    return x, y


def train(parent_run_id: str, lr: float, worker: int, out: mp.Queue) -> None:
    """One worker: its own child run, one metrics dict per SGD step."""
    x, y = make_data()
    rng = np.random.default_rng(worker)
    w, b = np.zeros(FEATURES), 0.0
    names = [f"weights/w{i:02d}" for i in range(FEATURES)]
    with mf.start_run(run_name=f"lr={lr:g}", parent_run_id=parent_run_id,
                      tags={"worker": str(worker)}) as run:
        mf.log_params({"lr": lr, "batch_size": 64, "features": FEATURES, "steps": STEPS})
        for step in range(STEPS):
            idx = rng.integers(0, len(x), 64)
            xb, yb = x[idx], y[idx]
            p = 1 / (1 + np.exp(-(xb @ w + b)))
            grad_w = xb.T @ (p - yb) / len(idx)
            grad_b = float(np.mean(p - yb))
            w -= lr * grad_w
            b -= lr * grad_b
            eps = 1e-12
            loss = float(-np.mean(yb * np.log(p + eps) + (1 - yb) * np.log(1 - p + eps)))
            metrics = dict(zip(names, w.tolist()))
            metrics.update(loss=loss, accuracy=float(np.mean((p > 0.5) == yb)),
                           grad_norm=float(np.linalg.norm(grad_w)), bias=b)
            mf.log_metrics(metrics, step=step)
        full_acc = float(np.mean(((x @ w + b) > 0) == y))
        mf.log_metric("final_accuracy", full_acc, step=STEPS)
    out.put(run.run.run_id)


def main() -> int:
    mf.set_experiment("quickstart")
    lrs = [0.001, 0.01, 0.1, 1.0]
    t0 = time.perf_counter()
    with mf.start_run(run_name="lr-sweep") as parent:
        mf.log_params({"workers": len(lrs), "grid": ",".join(map(str, lrs))})
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=train, args=(parent.run.run_id, lr, i, q))
                 for i, lr in enumerate(lrs)]
        for p in procs:
            p.start()
        run_ids = [q.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
            if p.exitcode != 0:
                print(f"worker exited with {p.exitcode}", file=sys.stderr)
                return 1
    elapsed = time.perf_counter() - t0

    client = mf.get_client()
    runs = sorted((client.get_run(r) for r in run_ids), key=lambda r: float(r.params["lr"]))
    total = 0
    print(f"\nExperiment 'quickstart', parent run {parent.run.run_id} ({parent.run.info.run_name})")
    header = f"{'run':<10} {'lr':>7} {'status':<9} {'final loss':>10} {'min loss':>9} " \
             f"{'accuracy':>9} {'points':>9}"
    print(header)
    print("-" * len(header))
    for r in runs:
        points = sum(s.count for s in r.metrics.values())
        total += points
        loss = r.metrics["loss"]
        print(f"{r.info.run_name:<10} {r.params['lr']:>7} {r.info.status:<9} "
              f"{loss.last_value:>10.4f} {loss.min_value:>9.4f} "
              f"{r.metrics['final_accuracy'].last_value:>9.3f} {points:>9,}")
    stored, _ = client.count_points(run_ids)
    print(f"\n{total:,} metric points logged by {len(runs)} workers in {elapsed:.1f}s "
          f"({total / elapsed:,.0f} points/s end to end, training included); "
          f"{stored:,} stored.")
    history = client.get_metric_history(runs[-1].run_id, "loss")
    print(f"loss history of {runs[-1].info.run_name}: {len(history)} points, "
          f"first {history.values[0]:.4f}, last {history.values[-1]:.4f}")
    return 0 if stored == total else 1


if __name__ == "__main__":
    sys.exit(main())
