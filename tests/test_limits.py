"""One owner for the recipe and programme limits, the discretisation and the stoichiometry.

The spec cards, the action box, the example lab file, the emulator and both labs' request
checks are held to :mod:`synthgap.envs.chemistry.limits`; the twin and the kinetics step a
firing on one grid; masses and moles have one conversion.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from synthgap.envs.campaign import CampaignEnv
from synthgap.envs.chemistry import (
    Recipe,
    RecipeBatch,
    RecipeError,
    bundled_system_names,
    load_atmospheres,
    load_system,
    programme_trace,
    random_recipes,
)
from synthgap.envs.chemistry.discretisation import COOL_STEPS, DWELL_STEPS, RAMP_STEPS, is_dwell
from synthgap.envs.chemistry.limits import (
    FURNACE_MAX_TEMPERATURE_K,
    PROGRAMME_MAX_SEGMENTS,
    PROGRAMME_RATE,
    RECIPE_LIMITS,
)
from synthgap.envs.chemistry.stoichiometry import (
    amounts_from_masses,
    molar_mass,
    precursor_amounts,
    precursor_masses,
)
from synthgap.envs.furnace_control import COOLING_RATE, MAX_RAMP, FurnaceControlEnv
from synthgap.envs.lab.records import Programme, Segment
from synthgap.envs.lab.simlab import SimLab, firing_grid
from synthgap.envs.lab.thermal import FurnaceParams
from synthgap.envs.lab.validation import LabCaps, check_programme, check_recipe
from synthgap.envs.recipe_space import LOG_FIELDS, RecipeSpace
from synthgap.envs.shared_lab_v0 import SharedLabEnv
from synthgap.hardware.config import SafetyLimits
from synthgap.hardware.emulators.lab import DEFAULT_LIMITS
from synthgap.hardware.lab import load_lab_file

EXAMPLE_LAB = Path(__file__).resolve().parents[1] / "hardware" / "examples" / "lab.yaml"
R = Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=1473.0, dwell_time=2.0, ramp_rate=20.0,
           cooling_rate=20.0, milling_time=1.0)
ROW = re.compile(r"^\s*\|\s*(\d+(?: \+ R)?)\s*\|\s*(\w+)\s*\|\s*(.*?)\s*\|\s*$")
RANGE = re.compile(r"^(-?[\d.]+) to (-?[\d.]+) ?([^,(]*?)\s*(?:\(([^)]*)\))?,\s*(linear|log)\b")


def spec_table(env_cls: type) -> dict[str, tuple[int, str]]:
    """field -> (index, range text) of the action table in an env's spec card."""
    doc = env_cls.__doc__
    action = doc[doc.index("## Action Space"):doc.index("## Observation Space")]
    rows = {}
    for line in action.splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(2)] = (m.group(1) if "R" in m.group(1) else int(m.group(1)), m.group(3))
    return rows


def parsed_range(text: str) -> tuple[float, float, str, str]:
    m = RANGE.match(text)
    assert m, f"cannot read a range 'LOW to HIGH UNIT, linear|log' from {text!r}"
    unit = m.group(3).strip() or (m.group(4) or "").split()[0]
    return float(m.group(1)), float(m.group(2)), unit, m.group(5)


@pytest.mark.parametrize("env_cls", [CampaignEnv, SharedLabEnv])
def test_recipe_spec_cards_state_the_limits(env_cls):
    rows = spec_table(env_cls)
    space = RecipeSpace(load_system("BaTiO3"))
    assert set(RECIPE_LIMITS) <= set(rows), f"{env_cls.__name__}'s table lacks {set(RECIPE_LIMITS) - set(rows)}"
    for field, bound in RECIPE_LIMITS.items():
        index, text = rows[field]
        assert index == space.index(field), (field, index)
        assert parsed_range(text) == (bound.low, bound.high, bound.unit, bound.scale), (field, text)
    index, text = rows["atmosphere"]
    if env_cls is CampaignEnv:  # categories as logits: the route's R, then the atmospheres'
        actions = CampaignEnv().actions
        assert rows["route"][0] == actions.route_slice.start == 6 and index == "6 + R"
        assert actions.atmosphere_slice.start == 6 + len(space.routes)
        listed = [a.strip() for a in text.split(", A = ")[0].split(",")]
        assert f"A = {len(load_atmospheres())} logits" in text
    else:
        assert index == space.index("atmosphere")
        listed = [a.strip() for a in text.split(", equal bins")[0].split(",")]
    assert listed == list(load_atmospheres())


def test_furnace_control_spec_card_states_its_setpoint_range_and_rates():
    rows = spec_table(FurnaceControlEnv)
    env = FurnaceControlEnv()
    low, high, unit, scale = parsed_range(rows["setpoint"][1])
    assert (low, high, unit, scale) == (env.t_min, env.t_max, "K", "linear")
    dwell = RECIPE_LIMITS["dwell_temperature"]
    assert (env.t_min, env.t_max) == (dwell.low, min(dwell.high, FurnaceParams().max_temperature_K))
    assert f"at most at {MAX_RAMP:g} K/min" in FurnaceControlEnv.__doc__
    assert f"cools at {COOLING_RATE:g} K/min" in FurnaceControlEnv.__doc__
    assert MAX_RAMP <= PROGRAMME_RATE.high and RECIPE_LIMITS["cooling_rate"].contains(COOLING_RATE)


def test_action_box_corners_are_the_limits():
    space = RecipeSpace(load_system("BaTiO3"))
    assert LOG_FIELDS == {k for k, b in RECIPE_LIMITS.items() if b.scale == "log"} != set()
    lo, hi, mid = (space.decode(np.full(space.d, u)) for u in (0.0, 1.0, 0.5))
    for k, b in RECIPE_LIMITS.items():
        assert (getattr(lo, k), getattr(hi, k)) == pytest.approx((b.low, b.high)), k
        centre = math.sqrt(b.low * b.high) if b.scale == "log" else 0.5 * (b.low + b.high)
        assert getattr(mid, k) == pytest.approx(centre), k
    batch = random_recipes(load_system("BaTiO3"), 2000, np.random.default_rng(0))
    for k, b in RECIPE_LIMITS.items():
        v = getattr(batch, k)
        assert v.min() >= b.low and v.max() <= b.high, k
        centre = math.sqrt(b.low * b.high) if b.scale == "log" else 0.5 * (b.low + b.high)
        assert abs(np.median(v) - centre) < 0.05 * (b.high - b.low), k  # sampled on the bound's scale


def extreme_recipes(system_name: str) -> list[Recipe]:
    """Every route of a system at the hottest, fastest, longest corner, with the most excess."""
    system = load_system(system_name)
    top = {k: b.high for k, b in RECIPE_LIMITS.items()}
    return [Recipe(t, tuple(pre), **top) for t, spec in system.targets.items() for pre in spec.precursor_sets]


@pytest.mark.parametrize("where", ["example lab file", "emulator defaults"])
def test_lab_limits_run_every_recipe_of_the_action_box(where):
    if where == "example lab file":
        config, settings = load_lab_file(EXAMPLE_LAB)
        limits, batch_mass_g = config.limits, settings.batch_mass_g
    else:
        limits, batch_mass_g = SafetyLimits(**DEFAULT_LIMITS), 2.0
    caps = LabCaps(limits.max_temperature_K, limits.max_ramp_rate_K_per_min, limits.max_dwell_h, limits.max_mass_g)
    assert limits.max_temperature_K >= RECIPE_LIMITS["dwell_temperature"].high
    assert limits.max_ramp_rate_K_per_min >= max(RECIPE_LIMITS["ramp_rate"].high, RECIPE_LIMITS["cooling_rate"].high)
    assert limits.max_dwell_h >= RECIPE_LIMITS["dwell_time"].high
    assert limits.min_temperature_K <= 298.15 <= limits.safe_temperature_K
    for name in bundled_system_names():
        for r in extreme_recipes(name):
            check_recipe(load_system(name), r, caps, batch_mass_g)  # every dose fits max_mass_g too
            check_programme(Programme.from_recipe(r), caps)


def test_emulator_and_furnace_model_share_the_furnace_maximum():
    assert FurnaceParams().max_temperature_K == FURNACE_MAX_TEMPERATURE_K == DEFAULT_LIMITS["max_temperature_K"]
    assert DEFAULT_LIMITS["max_ramp_rate_K_per_min"] == PROGRAMME_RATE.high
    assert DEFAULT_LIMITS["max_dwell_h"] == RECIPE_LIMITS["dwell_time"].high


# ---------------------------------------------------------------- one validation, two labs

def bad_requests():
    """(name, call(lab) -> None): requests both labs must refuse with the same words."""
    flat = Segment("dwell", 1273.0, 1273.0, 600.0)
    return [
        ("milling above 12 h", lambda lab: lab.run_recipe(replace(R, milling_time=13.0))),
        ("unknown atmosphere", lambda lab: lab.submit(replace(R, atmosphere="Ar"))),
        ("unknown precursor", lambda lab: lab.new_sample(Recipe("BaTiO3", ("BaCO3", "XO2")))),
        ("dwell above the limit", lambda lab: lab.submit(replace(R, dwell_temperature=1800.0))),
        ("mill step 20 h", lambda lab: lab.mill(lab.new_sample(R), 20.0)),
        ("dose of nothing", lambda lab: lab.dispense(lab.new_sample(R), "BaCO3", 0.0)),
        ("dose of a non-precursor", lambda lab: lab.dispense(lab.new_sample(R), "BaTiO3", 1.0)),
        ("empty load", lambda lab: lab.submit_load([])),
        ("programme atmosphere", lambda lab: lab.fire([lab.new_sample(R)], Programme((flat,), "Ar"))),
        ("too many segments", lambda lab: lab.fire([lab.new_sample(R)],
                                                   Programme((flat,) * (PROGRAMME_MAX_SEGMENTS + 1)))),
        ("non-finite segment", lambda lab: lab.fire([lab.new_sample(R)],
                                                    Programme((Segment("ramp", 298.15, math.nan, 60.0),)))),
        ("zero-length segment", lambda lab: lab.fire([lab.new_sample(R)],
                                                     Programme((Segment("ramp", 298.15, 1273.0, 0.0),)))),
        ("segment too fast", lambda lab: lab.fire([lab.new_sample(R)],
                                                  Programme((Segment("ramp", 298.15, 1273.0, 60.0),)))),
        ("setpoint too hot", lambda lab: lab.fire([lab.new_sample(R)],
                                                  Programme((Segment("dwell", 1900.0, 1900.0, 60.0),)))),
        ("dwell too long", lambda lab: lab.fire([lab.new_sample(R)],
                                                Programme((Segment("dwell", 1273.0, 1273.0, 49 * 3600.0),)))),
    ]


def refusal(call, lab) -> tuple[type, str]:
    with pytest.raises(ValueError) as info:
        call(lab)
    return type(info.value), str(info.value)


@pytest.fixture(scope="module")
def hardware_lab(tmp_path_factory):
    from synthgap.hardware.emulators.lab import LabEmulator, LabEmulatorSettings
    from synthgap.hardware.lab import HardwareLab

    emu = LabEmulator(tmp_path_factory.mktemp("lab"), LabEmulatorSettings(time_scale=50_000.0, seed=3))
    emu.start()
    lab = HardwareLab(emu.lab_file)
    yield emu, lab
    lab.close()
    emu.stop()


@pytest.mark.parametrize("name, call", bad_requests(), ids=[n for n, _ in bad_requests()])
def test_twin_and_hardware_refuse_alike(hardware_lab, name, call):
    emu, hw = hardware_lab
    twin = SimLab("BaTiO3", n_furnaces=1, seed=0)
    assert twin.max_temperature_K == hw.config.limits.max_temperature_K  # the same furnace maximum
    sent = {n: len(e.requests) for n, e in emu.emulators.items() if n != "furnace"}
    expected = refusal(call, twin)
    assert refusal(call, hw) == expected
    assert twin.now == 0.0 and twin.firings == [] and twin.usage == []
    assert {n: len(e.requests) for n, e in emu.emulators.items() if n != "furnace"} == sent  # nothing sent


def test_hardware_weighs_the_twins_masses_without_a_twin(hardware_lab):
    _, hw = hardware_lab
    assert not any(isinstance(v, SimLab) for v in vars(hw).values())
    twin = SimLab("BaTiO3", n_furnaces=1, seed=0)
    for t, spec in hw.system.targets.items():
        for pre in spec.precursor_sets:
            r = Recipe(t, tuple(pre), excess=0.1)
            assert hw.commanded_masses(r) == twin.commanded_masses(r)
    masses = dict(hw.commanded_masses(replace(R, excess=0.1)))
    # 2 g BaTiO3 (233.19 g/mol): as many mol of BaCO3 (197.34 g/mol) plus 10 %, and of TiO2 (79.87 g/mol)
    assert masses["BaCO3"] == pytest.approx(2 / 233.19 * 197.34 * 1.1, rel=1e-4)
    assert masses["TiO2"] == pytest.approx(2 / 233.19 * 79.866, rel=1e-4)


# ---------------------------------------------------------------- discretisation

def test_twin_fires_on_the_kinetics_grid():
    """The twin's setpoint grid of a recipe's programme is the kinetics' ideal trace: the same
    steps per segment, the same ramp and cooling midpoints, the same step lengths on ramps."""
    system = load_system("BaTiO3")
    trace = programme_trace(RecipeBatch.from_recipes(system, [R]))
    sp, dt = firing_grid(Programme.from_recipe(R), FurnaceParams().tau_s)
    assert sp.shape == trace.temperature[0].shape == (RAMP_STEPS + DWELL_STEPS + COOL_STEPS,)
    ramps = np.r_[0:RAMP_STEPS, RAMP_STEPS + DWELL_STEPS:sp.size]
    np.testing.assert_array_equal(sp[ramps], trace.temperature[0, ramps])
    np.testing.assert_array_equal(dt[ramps], trace.dt[0, ramps])
    dwell = slice(RAMP_STEPS, RAMP_STEPS + DWELL_STEPS)
    assert np.all(sp[dwell] == R.dwell_temperature)
    assert dt[dwell].sum() == pytest.approx(trace.dt[0, dwell].sum())


def test_a_dwell_is_a_flat_segment_whatever_its_label():
    hold = Programme((Segment("ramp", 298.15, 1000.0, 600.0), Segment("hold", 1000.0, 1000.0, 600.0),
                      Segment("dwell", 1000.0, 400.0, 600.0)))
    mask = hold.dwell_mask(np.arange(1, 31) * 60.0)
    assert mask.tolist() == [False] * 10 + [True] * 10 + [False] * 10
    sp, _ = firing_grid(hold, 60.0)
    assert sp.size == RAMP_STEPS + DWELL_STEPS + COOL_STEPS
    assert is_dwell(1000.0, 1000.0) and not is_dwell(1000.0, 1000.5)


# ---------------------------------------------------------------- stoichiometry

@pytest.mark.parametrize("name", bundled_system_names())
def test_masses_and_moles_round_trip(name):
    system = load_system(name)
    for t, spec in system.targets.items():
        for pre in spec.precursor_sets:
            mol = precursor_amounts(system, t, tuple(pre))
            masses = precursor_masses(system, t, pre, 2.0, excess=0.2)
            assert [p for p, _ in masses] == list(pre)
            back = amounts_from_masses(system, t, dict(masses), 2.0)
            want = mol.copy()
            want[system.solids.index(pre[0])] *= 1.2
            np.testing.assert_allclose(back, want, rtol=1e-12, atol=1e-15)
            # without excess the weighed cations make exactly 2 g of target
            exact = precursor_masses(system, t, pre, 2.0)
            n_target = 2.0 / molar_mass(system.phases[t].formula)
            for e in (e for e in system.elements if e not in ("O", "C", "H")):
                have = sum(g / molar_mass(system.phases[p].formula) * system.phases[p].element_amounts.get(e, 0.0)
                           for p, g in exact)
                assert have == pytest.approx(n_target * system.phases[t].element_amounts.get(e, 0.0), abs=1e-12)


def test_recipe_errors_name_the_limit():
    with pytest.raises(RecipeError, match=r"milling_time must be within \[0, 12\] h, got 13"):
        check_recipe(load_system("BaTiO3"), replace(R, milling_time=13.0), LabCaps(), 2.0)


@pytest.mark.parametrize("module", ["chemistry/limits.py", "chemistry/discretisation.py",
                                    "chemistry/stoichiometry.py", "lab/validation.py"])
def test_owners_import_no_simulator_or_gym(module):
    import ast

    tree = ast.parse((Path(__file__).resolve().parents[1] / "envs" / module).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    banned = {"simpy", "gymnasium", "pettingzoo", "numba", "simlab"}  # "simlab": relative import
    assert not [n for n in names if banned & set(n.split("."))]
