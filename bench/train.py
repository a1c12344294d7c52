"""How close does a 30-second flow get to the truth? flowviz's default training beside zuko's NSF.

On the 21 data sets of bench/train_sets.py (densities known exactly or by
converged quadrature, given in user coordinates; a *tuning* half on which
flowviz's defaults were chosen and a *held-out* half that only judges them),
at several training-set sizes and seeds, each learner trains for the same
wall-clock budget on the same training points. Then, on fresh test points,

    gap = mean(-log q(x)) - mean(-log p(x))   (nats per point)

the test NLL minus the true entropy on the *same* points, a Monte-Carlo
estimate of KL(p || q) >= 0 (its standard error is reported too).

The learners:
- flowviz: exactly what ``python -m flowviz train DATA.csv`` does with its
  defaults (ModelConfig(), TrainConfig(seconds=S, steps=None), the CLI's
  default thread count), via :func:`flowviz.cli.default_training`;
- zuko: ``zuko.flows.NSF(2, transforms=5, hidden_features=(64, 64))``, Adam
  1e-3, batch 512, every point used for training, at the same thread count.
  It is given standardised points (u = (x - m) / s from its training points,
  log q(x) = log q_u(u) - sum log s), as anyone would feed a flow data in
  pixels or thousands; on raw user coordinates it does far worse.

Both run in alternating slices of ``--slice`` seconds in one process (each gets
``--seconds`` of its own wall clock in total), so load from other work hits both
alike. ``--jobs N`` runs N such pairs side by side in separate processes (for
quick looks while tuning: each pair then shares the machine with the others).

The summary averages each (set, size) over seeds and gives the ratio of flowviz's
mean gap to zuko's; the worst ratio of each half is the headline.

Run: ``.venv/bin/python bench/train.py --half held-out`` (7 sets x 3 sizes x 2 seeds
x 2 learners x 30 s: about 45 minutes); writes bench/results/train_<half>.json.
``--seconds 8 --sets spiral --sizes 1000 --seeds 0`` for a quick look; ``--model
'{"bins": 16}'`` to try another flowviz architecture.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_sets import HELD_OUT, TUNING, BenchSet, bench_sets  # noqa: E402

from flowviz.cli import DEFAULT_THREADS  # noqa: E402
from flowviz.train import Trainer, default_training, with_overrides  # noqa: E402

# --------------------------------------------------------------------------- learners


class FlowvizLearner:
    name = "flowviz"

    def __init__(self, train_x: np.ndarray, seconds: float, seed: int, model: dict, train: dict) -> None:
        model_config, train_config = default_training(seconds=seconds, steps=None, seed=seed)
        model_config = replace(model_config, **model).check()
        train_config = with_overrides(train_config, **train)
        self.trainer = Trainer(train_x, model_config, train_config)

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

    def finish(self) -> dict:
        self.flow = self.trainer.best_flow()
        return {
            "best_step": self.trainer.best_step,
            "stopped_early": self.trainer.stopped_early,
            "spline_bound": self.trainer.model_config.bound,  # chosen from the training points
        }

    @torch.no_grad()
    def nll(self, x: np.ndarray) -> np.ndarray:
        return -self.flow.double().log_prob(torch.from_numpy(x)).numpy()


class ZukoLearner:
    name = "zuko"

    def __init__(self, train_x: np.ndarray, seconds: float, seed: int) -> None:
        import zuko

        torch.manual_seed(seed)
        self.mean = train_x.mean(0)
        self.scale = train_x.std(0)
        self.flow = zuko.flows.NSF(2, transforms=5, hidden_features=(64, 64))
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=1e-3)
        self.x = torch.as_tensor((train_x - self.mean) / self.scale, dtype=torch.float32)
        self.generator = torch.Generator().manual_seed(seed)
        self.budget = seconds
        self.seconds = 0.0
        self.steps = 0

    @property
    def done(self) -> bool:
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

    def finish(self) -> dict:
        self.flow.eval()
        return {}

    @torch.no_grad()
    def nll(self, x: np.ndarray) -> np.ndarray:
        u = torch.from_numpy((x - self.mean) / self.scale)
        return -self.flow.double()().log_prob(u).numpy() + float(np.log(self.scale).sum())


# --------------------------------------------------------------------------- one run


_TEST: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, float | None]] = {}


def test_points(bench: BenchSet, seed: int, n_test: int):
    """Test points of a set and seed with their true log-density (shared by every size)."""
    key = (bench.name, seed)
    if key not in _TEST:
        x = bench.sample(n_test, np.random.default_rng([seed, 1]))
        check = bench.quadrature_check(x[:500]) if bench.quadrature_check else None
        _TEST[key] = (x, -bench.log_density(x), check)
    return _TEST[key]


def run_one(task: tuple) -> dict:
    name, size, seed, args = task
    torch.set_num_threads(args.threads)
    bench = bench_sets()[name]
    train_x = bench.sample(size, np.random.default_rng([seed, 0]))
    test_x, true_nll, check = test_points(bench, seed, args.n_test)
    result: dict = {
        "set": name,
        "half": bench.half,
        "size": size,
        "seed": seed,
        "entropy": float(true_nll.mean()),
    }
    if check is not None:
        result["quadrature_max_change_when_doubled"] = check
    learners = [FlowvizLearner(train_x, args.seconds, seed, json.loads(args.model), json.loads(args.train))]
    if not args.no_zuko:
        learners.append(ZukoLearner(train_x, args.seconds, seed))
    while not all(learner.done for learner in learners):
        for learner in learners:
            if not learner.done:
                learner.run_for(args.slice)
    for learner in learners:
        extra = learner.finish()
        difference = learner.nll(test_x) - true_nll
        result[learner.name] = {
            "gap": float(difference.mean()),
            "gap_standard_error": float(difference.std(ddof=1) / math.sqrt(len(difference))),
            "steps": learner.steps,
            "seconds": round(learner.seconds, 2),
            "steps_per_second": learner.steps / max(learner.seconds, 1e-9),
            **extra,
        }
    zk = result.get("zuko", {}).get("gap")
    print(
        f"[{name} n={size} seed={seed}: flowviz {result['flowviz']['gap']:.4f}"
        + (f", zuko {zk:.4f}" if zk is not None else "")
        + "]",
        file=sys.stderr,
        flush=True,
    )
    return result


# --------------------------------------------------------------------------- summary


def summarise(runs: list[dict]) -> list[dict]:
    """Per (set, size): the mean gap over seeds, its spread (min..max) and flowviz's mean over zuko's."""
    rows = []
    keys = sorted(
        {(r["half"], r["set"], r["size"]) for r in runs}, key=lambda k: (k[0] != TUNING, k[1], k[2])
    )
    for half, name, size in keys:
        mine = [r for r in runs if (r["half"], r["set"], r["size"]) == (half, name, size)]
        row = {"half": half, "set": name, "size": size, "seeds": len(mine)}
        for learner in ("flowviz", "zuko"):
            gaps = [r[learner]["gap"] for r in mine if learner in r]
            if gaps:
                row[learner] = {
                    "gap_mean": statistics.fmean(gaps),
                    "gap_min": min(gaps),
                    "gap_max": max(gaps),
                    "steps_per_second": statistics.fmean(r[learner]["steps_per_second"] for r in mine),
                }
        if "zuko" in row:
            row["ratio"] = row["flowviz"]["gap_mean"] / max(row["zuko"]["gap_mean"], 1e-9)
            row["flowviz_wins"] = row["flowviz"]["gap_mean"] <= row["zuko"]["gap_mean"]
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'half':<9}{'set':<16}{'size':>6}{'flowviz gap (min..max)':>26}{'zuko gap (min..max)':>26}"
        f"{'ratio':>7}{'fv st/s':>9}{'zk st/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        fv, zk = row["flowviz"], row.get("zuko")

        def cell(d):
            return f"{d['gap_mean']:.4f} ({d['gap_min']:.3f}..{d['gap_max']:.3f})"

        print(
            f"{row['half']:<9}{row['set']:<16}{row['size']:>6}{cell(fv):>26}"
            + (f"{cell(zk):>26}{row['ratio']:>7.2f}" if zk else f"{'-':>26}{'-':>7}")
            + f"{fv['steps_per_second']:>9.0f}"
            + (f"{zk['steps_per_second']:>9.0f}" if zk else f"{'-':>9}")
        )
    for half in (TUNING, HELD_OUT):
        ratios = [row["ratio"] for row in rows if row["half"] == half and "ratio" in row]
        if ratios:
            wins = sum(r <= 1.0 for r in ratios)
            print(
                f"{half}: flowviz's mean gap <= zuko's in {wins} of {len(ratios)}; worst ratio {max(ratios):.2f}"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="wall-clock training budget per learner")
    parser.add_argument("--half", choices=[TUNING, HELD_OUT, "all"], default="all")
    parser.add_argument("--sets", default="", help="comma-separated set names (default: every set of --half)")
    parser.add_argument("--sizes", default="200,1000,5000", help="training-set sizes")
    parser.add_argument("--seeds", default="0,1", help="seeds: data draw and both learners' initialisation")
    parser.add_argument("--slice", type=float, default=0.5, help="seconds per alternating slice")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="torch threads of both learners (default: the CLI's)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="pairs run side by side (quick looks only)")
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--model", default="{}", help="JSON overrides of flowviz's default ModelConfig")
    parser.add_argument("--train", default="{}", help="JSON overrides of flowviz's default TrainConfig")
    parser.add_argument("--no-zuko", action="store_true", help="train flowviz only")
    parser.add_argument("--out", help="where to write the JSON (default bench/results/train_<half>.json)")
    args = parser.parse_args(argv)

    sets = bench_sets()
    names = (
        args.sets.split(",") if args.sets else [n for n, s in sets.items() if args.half in ("all", s.half)]
    )
    unknown = [n for n in names if n not in sets]
    if unknown:
        parser.error(f"unknown sets {unknown}; known: {', '.join(sets)}")
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = [(name, size, seed, args) for seed in seeds for name in names for size in sizes]
    load_before = os.getloadavg()
    started = time.perf_counter()
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            runs = pool.map(run_one, tasks, chunksize=1)
    else:
        runs = [run_one(task) for task in tasks]
    rows = summarise(runs)
    print_table(rows)
    model_config, train_config = default_training(seconds=args.seconds, steps=None, seed=0)
    report = {
        "what": "test NLL minus true entropy (nats per point) after a fixed wall-clock budget; see bench/train.py",
        "seconds": args.seconds,
        "slice": args.slice,
        "threads": args.threads,
        "jobs": args.jobs,
        "n_test": args.n_test,
        "flowviz_model": {**asdict(model_config), **json.loads(args.model)},
        "flowviz_train": {**asdict(train_config), **json.loads(args.train)},
        "zuko": "zuko.flows.NSF(2, transforms=5, hidden_features=(64, 64)), Adam 1e-3, batch 512, standardised points",
        "sets": {name: {"half": sets[name].half, "note": sets[name].note} for name in names},
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "wall_seconds": round(time.perf_counter() - started, 1),
        },
        "summary": rows,
        "runs": runs,
    }
    out = Path(args.out or ROOT / "bench" / "results" / f"train_{args.half}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
