"""``synthgap bench envs``: environment steps per second beside CartPole-v1, in one run."""

from __future__ import annotations

import json
import statistics
import time

from synthgap.envs.userfiles import float_arg, int_arg

MAX_SECONDS = 600.0  # s of wall time per measurement
MAX_REPEATS = 100
VECTOR_SIZES = (1, 64, 256, 1024)  # campaigns per native vector env measured
MAX_VECTOR = 4096


def add_parsers(sub, bench) -> None:
    p = bench.add_parser("envs", help="steps per second of every env, single, 8 vectorised and natively "
                                      "vectorised, vs CartPole-v1")
    p.add_argument("--seconds", type=float_arg(0.0, MAX_SECONDS, "s", lo_open=True), default=2.0,
                   help=f"wall time per measurement, s, in (0, {MAX_SECONDS:g}]")
    p.add_argument("--repeats", type=int_arg(1, MAX_REPEATS), default=3,
                   help=f"measurements per figure (median reported), 1-{MAX_REPEATS}")
    p.add_argument("--vector-sizes", type=_sizes, default=VECTOR_SIZES, metavar="N,N,...",
                   help=f"campaigns per native vector env, 1-{MAX_VECTOR} each "
                        f"(default {','.join(map(str, VECTOR_SIZES))})")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_envs)


def _sizes(text: str) -> tuple[int, ...]:
    """``"1,64,256"`` -> (1, 64, 256); each in [1, MAX_VECTOR]."""
    import argparse

    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or not all(1 <= n <= MAX_VECTOR for n in sizes):
        raise argparse.ArgumentTypeError(f"every size must be in [1, {MAX_VECTOR}], got {text!r}")
    return sizes


def _rate(step, reset, seconds: float) -> float:
    reset()
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        for _ in range(16):
            if step():
                reset()
        n += 16
    return n / elapsed


def measure(env_id: str, seconds: float, repeats: int) -> dict[str, float]:
    """Median steps per wall-second of one env and of 8 copies in a SyncVectorEnv."""
    import gymnasium as gym

    env = gym.make(env_id)
    env.action_space.seed(0)

    def single_step() -> bool:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        return term or trunc

    single = statistics.median(_rate(single_step, lambda: env.reset(seed=0), seconds) for _ in range(repeats))
    env.close()
    vec = gym.make_vec(env_id, num_envs=8, vectorization_mode="sync")
    vec.action_space.seed(0)

    def vec_step() -> bool:
        vec.step(vec.action_space.sample())  # autoreset inside the vector env
        return False

    rates = [8 * _rate(vec_step, lambda: vec.reset(seed=0), seconds) / 1 for _ in range(repeats)]
    vec.close()
    return {"steps_per_s": single, "vec8_steps_per_s": statistics.median(rates)}


def measure_vector(env_id: str, num_envs: int, seconds: float, repeats: int) -> float:
    """Median env-steps per wall-second of the native vector env of ``env_id`` with ``num_envs``
    campaigns ("same_step" autoreset: every step counted is an experiment)."""
    import gymnasium as gym
    import numpy as np

    vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", autoreset_mode="same_step")
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, vec.action_space.shape).astype(np.float32) for _ in range(16)]
    k = iter(range(10**12))

    def vec_step() -> bool:
        vec.step(actions[next(k) % 16])
        return False

    rates = [num_envs * _rate(vec_step, lambda: vec.reset(seed=0), seconds) for _ in range(repeats)]
    vec.close()
    return statistics.median(rates)


def cmd_bench_envs(args) -> int:
    import synthgap.envs

    if not (0 < args.seconds <= MAX_SECONDS) or not 1 <= args.repeats <= MAX_REPEATS:  # also when called directly
        raise ValueError(f"--seconds must be in (0, {MAX_SECONDS:g}] and --repeats in [1, {MAX_REPEATS}]")
    ids = ("CartPole-v1",) + synthgap.envs.ENV_IDS
    results = {i: measure(i, args.seconds, args.repeats) for i in ids}
    base = results["CartPole-v1"]["steps_per_s"]
    for r in results.values():
        r["ratio_to_cartpole"] = r["steps_per_s"] / base
    sizes = getattr(args, "vector_sizes", VECTOR_SIZES)
    vector: dict[str, dict[str, dict[str, float]]] = {}
    for env_id in synthgap.envs.VECTOR_ENTRY_POINTS:
        vector[env_id] = {}
        for n in sizes:
            rate = measure_vector(env_id, n, args.seconds, args.repeats)
            vector[env_id][str(n)] = {"steps_per_s": rate, "ratio_to_cartpole": rate / base,
                                      "ratio_to_single": rate / results[env_id]["steps_per_s"]}
    if args.json:
        print(json.dumps({"envs": results, "vector": vector}))
    else:
        print(f"{'env':32} {'steps/s':>10} {'8 envs steps/s':>15} {'vs CartPole':>12}")
        for i, r in results.items():
            print(f"{i:32} {r['steps_per_s']:10,.0f} {r['vec8_steps_per_s']:15,.0f} {r['ratio_to_cartpole']:12.4f}")
        print(f"\n{'native vector env':32} {'campaigns':>10} {'steps/s':>15} {'vs CartPole':>12} {'vs one env':>11}")
        for i, by_n in vector.items():
            for n, r in by_n.items():
                print(f"{i:32} {n:>10} {r['steps_per_s']:15,.0f} {r['ratio_to_cartpole']:12.4f} "
                      f"{r['ratio_to_single']:10.1f}x")
    return 0
