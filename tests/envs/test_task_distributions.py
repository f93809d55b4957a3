"""Campaign-v0 over a task distribution: several systems behind one action and observation space."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import synthgap.envs  # noqa: F401  (registers the ids)
from synthgap.envs.campaign_spaces import REFERENCE_DWELLS_K, route_predictions
from synthgap.envs.chemistry import Recipe, fire, load_system
from synthgap.envs.chemistry.catalogue import bundled_system_names
from synthgap.envs.recipe_space import RecipeSpace

SYSTEMS = tuple(bundled_system_names())
SLOT = 6  # route descriptor entries: valid, theoretical / max, on the 0 K hull, 3 predictions


def test_every_reset_draws_a_task_and_the_spaces_fit_every_task():
    env = gym.make("synthgap/Campaign-v0", tasks=SYSTEMS, budget=2).unwrapped
    slots = max(len(RecipeSpace(load_system(s)).routes) for s in SYSTEMS)
    assert env.action_space.shape == (6 + slots + 4,)
    seen = set()
    for seed in range(40):
        obs, info = env.reset(seed=seed)
        seen.add(info["system"])
        assert env.observation_space.contains(obs) and info["system"] == env.system.name
        desc = obs[: slots * SLOT].reshape(slots, SLOT)
        n_routes = len(env.space.routes)
        assert (desc[:n_routes, 0] == 1).all() and (desc[n_routes:] == 0).all()  # valid slots, empty slots 0
        assert ((desc[:n_routes, 3:] >= 0) & (desc[:n_routes, 3:] <= 1)).all()  # predicted weight fractions
        a = env.action_space.sample()
        _, _, _, _, step_info = env.step(a)
        assert step_info["system"] == env.system.name
        assert (step_info["recipe"]["target"], tuple(step_info["recipe"]["precursors"])) in env.space.routes
    assert seen == set(SYSTEMS)


def test_an_empty_route_slot_is_never_chosen_and_every_route_is_reachable():
    env = gym.make("synthgap/Campaign-v0", tasks=SYSTEMS).unwrapped
    for seed in range(12):
        env.reset(seed=seed)
        enc = env.actions
        a = np.zeros(env.action_space.shape, np.float32)
        a[6 + len(env.space.routes):enc.atmosphere_slice.start] = 1.0  # the highest logits in empty slots
        assert (env.decode_action(a).target, tuple(env.decode_action(a).precursors)) == env.space.routes[0]
        for t, pre in env.space.routes:
            r = Recipe(target=t, precursors=pre, excess=0.1, milling_time=3.0, ramp_rate=5.0,
                       dwell_temperature=1300.0, dwell_time=4.0, cooling_rate=5.0, atmosphere="O2")
            action = env.encode_recipe(r)
            assert np.abs(action).max() < 1.0  # not saturated
            back = env.decode_action(action)
            assert (back.target, tuple(back.precursors), back.atmosphere) == (t, pre, "O2")


def test_route_descriptors_are_the_belief_models_predictions_not_the_worlds():
    system = load_system("BaTiO3")
    routes = RecipeSpace(system).routes
    pred = route_predictions(system, routes)
    t, pre = routes[0]
    want = fire(system, [Recipe(target=t, precursors=pre, excess=0.0, milling_time=2.0, ramp_rate=10.0,
                                dwell_temperature=T, dwell_time=4.0, cooling_rate=10.0, atmosphere="air")
                         for T in REFERENCE_DWELLS_K]).target_fraction
    np.testing.assert_allclose(pred[0], want)
    assert np.ptp(pred) > 0.1  # they tell routes and temperatures apart
    env = gym.make("synthgap/Campaign-v0", tasks=["BaTiO3", "LiMn2O4"]).unwrapped
    by_system: dict[str, set[bytes]] = {}
    for seed in range(16):  # every reset a lab in another world
        obs, info = env.reset(seed=seed)
        by_system.setdefault(info["system"], set()).add(obs[: env.layout.descriptors.size].tobytes())
    assert all(len(d) == 1 for d in by_system.values()) and len(by_system) == 2


def test_the_last_xrd_is_target_precursors_and_the_rest():
    env = gym.make("synthgap/Campaign-v0", tasks=["BaTiO3", "MgAl2O4"], budget=3).unwrapped
    env.reset(seed=5)
    obs, _, _, _, info = env.step(env.action_space.sample())
    xrd = obs[-4 - 3:-4]
    fractions = info["xrd"]
    pre = info["recipe"]["precursors"]
    assert xrd[0] == pytest.approx(fractions.get(info["recipe"]["target"], 0.0), abs=1e-6)
    assert xrd[1] == pytest.approx(sum(fractions.get(p, 0.0) for p in pre), abs=1e-6)
    if info["status"] == "done":
        assert xrd.sum() == pytest.approx(1.0, abs=1e-5)


def test_one_task_keeps_the_single_system_layout():
    one = gym.make("synthgap/Campaign-v0").unwrapped
    system = load_system("BaTiO3")
    C, D = len(system.targets), 6 + len(RecipeSpace(system).routes) + 4
    assert one.observation_space.shape == (2 * C + 4 * (D + 8) + D + 1 + len(system.solids) + 4,)
    same = gym.make("synthgap/Campaign-v0", tasks=["BaTiO3"]).unwrapped
    assert same.observation_space == one.observation_space


def test_the_vector_env_runs_each_campaign_in_its_own_task():
    vec = gym.make_vec("synthgap/Campaign-v0", num_envs=24, tasks=SYSTEMS, budget=3,
                       vectorization_mode="vector_entry_point", privileged=True)
    single = gym.make("synthgap/Campaign-v0", tasks=SYSTEMS)
    assert vec.single_observation_space == single.observation_space
    assert vec.single_action_space == single.action_space
    obs, info = vec.reset(seed=0)
    assert set(info["system"]) == set(SYSTEMS)
    a = np.random.default_rng(1).uniform(-1, 1, vec.action_space.shape).astype(np.float32)
    obs, reward, _, _, step_info = vec.step(a)
    assert vec.observation_space.contains(obs)
    recipes = vec.decode_actions(a)
    for i, t in enumerate(vec.task):
        lay = vec.layouts[t]
        assert step_info["system"][i] == lay.system.name == info["system"][i]
        np.testing.assert_allclose(obs[i, : lay.descriptors.size], lay.descriptors, atol=1e-6)
        assert recipes[i].target in lay.candidates
        want = lay.reward_fn(recipes[i], step_info["measured_performance"][i], step_info["lab_hours"][i],
                             step_info["target_fraction"][i], bool(step_info["failed"][i])).reward
        assert reward[i] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert np.isfinite(step_info["privileged"]["buildable"]).all()
    with pytest.raises(AttributeError, match="lab_sets"):
        vec.labs  # noqa: B018


@pytest.mark.parametrize("kw, match", [
    (dict(tasks=[]), "at least one"),
    (dict(tasks=["BaTiO3"], targets=["BaTiO3"]), "per task"),
    (dict(tasks=[("BaTiO3", ["BaTiO3"], "extra")]), "a task is a system"),
    (dict(tasks=["BaTiO3", "LiMn2O4"], lab=object()), "one system"),
])
def test_bad_tasks_are_refused_with_what_to_fix(kw, match):
    with pytest.raises(ValueError, match=match):
        gym.make("synthgap/Campaign-v0", **kw)


def test_reset_can_pick_the_task_for_evaluation():
    env = gym.make("synthgap/Campaign-v0", tasks=SYSTEMS).unwrapped
    for name in SYSTEMS:
        _, info = env.reset(seed=1, options={"task": name})
        assert info["system"] == name == env.system.name
    _, info = env.reset(seed=1, options={"task": 2})
    assert info["system"] == SYSTEMS[2]
    with pytest.raises(ValueError, match="unknown task"):
        env.reset(options={"task": "NaCl"})
