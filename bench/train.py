"""How close does a 30-second flow get to the truth? flowviz's default model beside zuko's NSF.

On 2D data sets whose true density p is known, each learner trains for the same
wall-clock budget on the same training points; then, on 20 000 fresh test points,

    gap = mean(-log q(x)) - mean(-log p(x))   (nats per point)

the test NLL minus the true entropy estimated on the *same* points, so the gap is
a Monte-Carlo estimate of KL(p || q) >= 0 (its standard error is reported too).

True densities:
- mixtures of Gaussians (8 Gaussians on a ring; two anisotropic components):
  closed form, log-sum-exp over components;
- points along a curve plus Gaussian noise (a spiral arm; the two moons):
  p(x) = int p(t) N(x; c(t), sigma^2 I) dt, a 1D integral done by composite
  Gauss-Legendre quadrature; the script checks that doubling the nodes changes
  log p by less than 1e-6 at every test point.

The machine is shared and has 2 cores, so both learners run in alternating
slices of ``--slice`` seconds (each gets ``--seconds`` of its own wall clock in
total): load from other work hits both alike. Timings (steps done, the 256^2 grid
density) are medians within this one process. Both use the same torch thread
count (``--threads``, default 1: on 2 loaded cores a second intra-op thread
mostly waits for the first).

Run: ``.venv/bin/python bench/train.py`` (about 4 x 2 x 30 s); writes
bench/results/train.json and prints a table. ``--seconds 8 --sets spiral`` for a
quick look; ``--model '{"bins": 16}'`` to try another flowviz architecture.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowviz.data import spiral_curve  # noqa: E402
from flowviz.grid import evaluate_flow  # noqa: E402
from flowviz.train import ModelConfig, TrainConfig, Trainer, with_overrides  # noqa: E402

GRID_VIEW = {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 256}
LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- data sets with a known density


@dataclass
class BenchSet:
    name: str
    sample: Callable[[int, np.random.Generator], np.ndarray]
    log_density: Callable[[np.ndarray], np.ndarray]
    note: str
    quadrature_check: Callable[[np.ndarray], float] | None = None


def _gaussian_mixture(weights, means, covariances) -> tuple[Callable, Callable]:
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    cholesky = np.linalg.cholesky(covariances)
    inverse = np.linalg.inv(covariances)
    log_norm = -LOG_2PI - 0.5 * np.log(np.linalg.det(covariances))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(weights), size=n, p=weights)
        noise = rng.standard_normal((n, 2))
        return means[k] + np.einsum("nij,nj->ni", cholesky[k], noise)

    def log_density(x: np.ndarray) -> np.ndarray:
        d = x[:, None, :] - means[None]
        mahalanobis = np.einsum("nki,kij,nkj->nk", d, inverse, d)
        terms = np.log(weights) + log_norm - 0.5 * mahalanobis
        return _logsumexp(terms, axis=1)

    return sample, log_density


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(a - top), axis=axis))


def _gauss_legendre(panels: int, order: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, 1.0, panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2.0
    centres = ((edges[1:] + edges[:-1]) / 2.0)[:, None]
    return (centres + half * nodes).ravel(), (half * weights).ravel()


def _curve_density(curves: list[Callable[[np.ndarray], np.ndarray]], sigma: float, panels: int):
    """log p(x) for x = c_j(t) + N(0, sigma^2 I), j uniform among the curves, t ~ U(0, 1)."""

    def log_density(x: np.ndarray, panels: int = panels) -> np.ndarray:
        t, w = _gauss_legendre(panels)
        centres = np.concatenate([curve(t) for curve in curves])  # (J*M, 2)
        log_w = np.log(np.tile(w, len(curves)) / len(curves))
        out = np.empty(len(x))
        for start in range(0, len(x), 1000):
            chunk = x[start : start + 1000]
            d2 = ((chunk[:, None, :] - centres[None]) ** 2).sum(-1)
            terms = log_w - d2 / (2 * sigma**2) - LOG_2PI - 2 * math.log(sigma)
            out[start : start + 1000] = _logsumexp(terms, axis=1)
        return out

    def check(x: np.ndarray) -> float:
        return float(np.max(np.abs(log_density(x, panels) - log_density(x, 2 * panels))))

    return log_density, check


def _moon_curves() -> list[Callable[[np.ndarray], np.ndarray]]:
    """The two arcs of :func:`flowviz.data.two_moons`, as functions of t in [0, 1]."""

    def upper(t):
        a = math.pi * t
        return 1.5 * np.stack([np.cos(a) - 0.5, np.sin(a) - 0.25], -1)

    def lower(t):
        a = math.pi * t
        return 1.5 * np.stack([1.0 - np.cos(a) - 0.5, 0.5 - np.sin(a) - 0.25], -1)

    return [upper, lower]


def bench_sets() -> dict[str, BenchSet]:
    sets: dict[str, BenchSet] = {}

    angles = 2 * np.pi * np.arange(8) / 8
    means = 2.5 * np.stack([np.cos(angles), np.sin(angles)], -1)
    sample, log_density = _gaussian_mixture(np.full(8, 1 / 8), means, np.tile(0.15**2 * np.eye(2), (8, 1, 1)))
    sets["8_gaussians"] = BenchSet("8_gaussians", sample, log_density, "8 x N(m_k, 0.15^2 I), |m_k| = 2.5")

    def rotated(std_major, std_minor, degrees):
        theta = math.radians(degrees)
        r = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        return r @ np.diag([std_major**2, std_minor**2]) @ r.T

    sample, log_density = _gaussian_mixture(
        [0.35, 0.65], [[-1.2, 0.8], [1.0, -0.6]], [rotated(1.5, 0.12, 35), rotated(1.0, 0.25, -60)]
    )
    sets["anisotropic_2"] = BenchSet(
        "anisotropic_2", sample, log_density, "0.35 N(std 1.5 x 0.12, 35 deg) + 0.65 N(std 1 x 0.25, -60 deg)"
    )

    sigma = 0.1
    log_density, check = _curve_density([spiral_curve], sigma, panels=400)

    def sample_spiral(n, rng):
        return spiral_curve(rng.random(n)) + sigma * rng.standard_normal((n, 2))

    sets["spiral"] = BenchSet("spiral", sample_spiral, log_density, "spiral arm c(t) + N(0, 0.1^2 I)", check)

    curves = _moon_curves()
    log_density, check = _curve_density(curves, sigma, panels=100)

    def sample_moons(n, rng):
        j = rng.integers(0, 2, n)
        t = rng.random(n)
        points = np.where(j[:, None] == 0, curves[0](t), curves[1](t))
        return points + sigma * rng.standard_normal((n, 2))

    sets["two_moons"] = BenchSet(
        "two_moons", sample_moons, log_density, "two moon arcs + N(0, 0.1^2 I)", check
    )
    return sets


# --------------------------------------------------------------------------- learners


def _grid_points() -> np.ndarray:
    xs = np.linspace(GRID_VIEW["xlim"][0], GRID_VIEW["xlim"][1], GRID_VIEW["resolution"])
    gx, gy = np.meshgrid(xs, xs)
    return np.stack([gx.ravel(), gy.ravel()], -1)


class FlowvizLearner:
    name = "flowviz"

    def __init__(
        self,
        train_x: np.ndarray,
        seconds: float,
        model: ModelConfig,
        train: TrainConfig,
        steps: int | None = None,
    ) -> None:
        budget = {"seconds": None, "steps": steps} if steps else {"seconds": seconds, "steps": None}
        self.trainer = Trainer(train_x, model, replace(train, **budget))

    @property
    def done(self) -> bool:
        return self.trainer.done

    @property
    def steps(self) -> int:
        return self.trainer.step_count

    @property
    def seconds(self) -> float:
        return self.trainer.active_seconds

    def run_for(self, seconds: float) -> None:
        self.trainer.run_for(seconds)

    def finish(self):
        self.flow = self.trainer.best_flow()

    @torch.no_grad()
    def nll(self, x: np.ndarray) -> np.ndarray:
        flow = self.flow.double()
        return -flow.log_prob(torch.from_numpy(x)).numpy()

    def time_grid(self, repeats: int = 7) -> dict:
        """evaluate_flow on 256^2 (float64, density and forward log-det: two passes), and,
        like for like with zuko, log p alone in float32 (on the run's threads and on every core)."""
        flow32 = self.flow.float()
        points = torch.from_numpy(_grid_points()).float()
        return {
            "evaluate_flow_256_ms": _median_ms(lambda: evaluate_flow(flow32, GRID_VIEW), repeats),
            **_log_prob_times(lambda: flow32.log_prob(points), repeats),
        }


class ZukoLearner:
    name = "zuko"

    def __init__(self, train_x: np.ndarray, seconds: float, seed: int, steps: int | None = None) -> None:
        import zuko

        torch.manual_seed(seed)
        self.flow = zuko.flows.NSF(2, transforms=5, hidden_features=(64, 64))
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=1e-3)
        self.x = torch.as_tensor(train_x, dtype=torch.float32)
        self.generator = torch.Generator().manual_seed(seed)
        self.budget = seconds
        self.step_budget = steps
        self.seconds = 0.0
        self.steps = 0

    @property
    def done(self) -> bool:
        if self.step_budget:
            return self.steps >= self.step_budget
        return self.seconds >= self.budget

    def run_for(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        while not self.done and time.perf_counter() < deadline:
            index = torch.randint(len(self.x), (512,), generator=self.generator)
            loss = -self.flow().log_prob(self.x[index]).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            now = time.perf_counter()
            self.seconds += now - started
            started = now

    def finish(self):
        self.flow.eval()

    @torch.no_grad()
    def nll(self, x: np.ndarray) -> np.ndarray:
        flow = self.flow.double()
        out = -flow().log_prob(torch.from_numpy(x)).numpy()
        self.flow.float()
        return out

    def time_grid(self, repeats: int = 7) -> dict:
        points = torch.from_numpy(_grid_points()).float()
        return _log_prob_times(lambda: self.flow().log_prob(points), repeats)


@torch.no_grad()
def _median_ms(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def _log_prob_times(run, repeats: int) -> dict:
    """Median ms of ``run`` on the run's torch threads, then on every core of the machine."""
    threads = torch.get_num_threads()
    out = {"log_prob_256_ms": _median_ms(run, repeats)}
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        run()  # warm the new thread pool
        out["log_prob_256_ms_all_cores"] = _median_ms(run, repeats)
    finally:
        torch.set_num_threads(threads)
    return out


# --------------------------------------------------------------------------- the run


def run_set(bench: BenchSet, args, model: ModelConfig, train: TrainConfig) -> dict:
    rng = np.random.default_rng(args.seed)
    train_x = bench.sample(args.n_train, rng)
    test_x = bench.sample(args.n_test, rng)
    true_nll = -bench.log_density(test_x)
    result: dict = {"set": bench.name, "note": bench.note, "entropy": float(true_nll.mean())}
    if bench.quadrature_check is not None:
        result["quadrature_max_change_when_doubled"] = bench.quadrature_check(test_x[:2000])

    learners = [FlowvizLearner(train_x, args.seconds, model, train, args.steps)]
    if not args.no_zuko:
        learners.append(ZukoLearner(train_x, args.seconds, args.seed, args.steps))
    while not all(learner.done for learner in learners):
        for learner in learners:
            if not learner.done:
                learner.run_for(args.slice)
    for learner in learners:
        learner.finish()
        difference = learner.nll(test_x) - true_nll
        result[learner.name] = {
            "gap": float(difference.mean()),
            "gap_standard_error": float(difference.std(ddof=1) / math.sqrt(len(difference))),
            "test_nll": float(difference.mean() + true_nll.mean()),
            "steps": learner.steps,
            "seconds": learner.seconds,
            "steps_per_second": learner.steps / learner.seconds,
            **learner.time_grid(),
        }
    return result


def print_table(results: list[dict]) -> None:
    header = (
        f"{'set':<14}{'entropy':>9}{'flowviz gap':>13}{'zuko gap':>11}"
        f"{'fv steps':>10}{'zuko steps':>12}{'fv grid ms':>12}{'fv logp ms':>12}{'zuko logp ms':>14}"
        f"{'fv logp all':>13}{'zuko logp all':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        fv, zk = r["flowviz"], r.get("zuko")
        print(
            f"{r['set']:<14}{r['entropy']:>9.4f}"
            f"{fv['gap']:>9.4f}±{fv['gap_standard_error']:.3f}"
            + (f"{zk['gap']:>7.4f}±{zk['gap_standard_error']:.3f}" if zk else f"{'-':>11}")
            + f"{fv['steps']:>10d}"
            + (f"{zk['steps']:>12d}" if zk else f"{'-':>12}")
            + f"{fv['evaluate_flow_256_ms']:>12.1f}"
            + f"{fv['log_prob_256_ms']:>12.1f}"
            + (f"{zk['log_prob_256_ms']:>14.1f}" if zk else f"{'-':>14}")
            + f"{fv['log_prob_256_ms_all_cores']:>13.1f}"
            + (f"{zk['log_prob_256_ms_all_cores']:>15.1f}" if zk else f"{'-':>15}")
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="wall-clock training budget per learner")
    parser.add_argument("--steps", type=int, help="a step budget instead of seconds (for tuning)")
    parser.add_argument("--sets", default="all", help="comma-separated set names, or all")
    parser.add_argument("--slice", type=float, default=0.5, help="seconds per alternating slice")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both learners")
    parser.add_argument("--n-train", type=int, default=50_000)
    parser.add_argument("--n-test", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="{}", help="JSON overrides of flowviz's ModelConfig")
    parser.add_argument("--train", default="{}", help="JSON overrides of flowviz's TrainConfig")
    parser.add_argument("--no-zuko", action="store_true", help="train flowviz only")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train.json"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model = ModelConfig(**json.loads(args.model)).check()
    train = with_overrides(TrainConfig(), **json.loads(args.train))
    sets = bench_sets()
    names = list(sets) if args.sets == "all" else args.sets.split(",")
    load_before = os.getloadavg()
    results = []
    for name in names:
        started = time.perf_counter()
        results.append(run_set(sets[name], args, model, train))
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    print_table(results)
    print(
        "fv grid: evaluate_flow on 256² (float64, density + forward log-det); "
        "logp: log p(x) alone on the 256² points, float32, as for zuko, on the run's threads; "
        "logp all: the same on every core"
    )
    report = {
        "what": "test NLL minus true entropy (nats) after a fixed wall-clock budget; see bench/train.py",
        "seconds": args.seconds,
        "steps": args.steps,
        "slice": args.slice,
        "threads": args.threads,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "flowviz_model": asdict(model),
        "flowviz_train": asdict(train),
        "zuko": "zuko.flows.NSF(2, transforms=5, hidden_features=(64, 64)), Adam 1e-3, batch 512",
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
