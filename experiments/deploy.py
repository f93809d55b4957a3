"""Deploy a trained policy on the lab: the same Campaign-v0 env, with ``lab=HardwareLab(...)``.

:func:`deploy` loads a hash-checked policy (``models:/NAME@ALIAS`` through
:func:`synthgap.agents.rl.registry.load_policy`, or a local SB3 ``.zip`` only with
``trust_local_file=True``, since loading it unpickles it), opens the lab from its lab file,
and runs ``episodes`` campaigns of the policy's env (env id and kwargs from the model's
metadata; ``budget`` may be overridden). Each new recipe is printed and needs a ``y`` on
stdin unless ``yes``. The campaign runs inside the shield's signal guard, so Ctrl-C /
SIGTERM send the furnace to its safe temperature (journaled) before the process stops; the
safe state is sent once more after unwinding, because the handler may have interrupted a
Modbus transaction (a frame sent into a half-finished exchange is dropped by the slave).

Tracking (:class:`synthgap.experiments.tracking.ExperimentTracker`): every finished
experiment becomes one MLflow run (experiment ``synthgap-deploy``) tagged
``synthgap.experiment_id`` = the journal's experiment id. Before logging, the tracker looks
that tag up, so an experiment is logged exactly once even across crashes and resumes (a run
left unfinished by a crash is completed, not duplicated). MLflow is imported lazily; the
store is ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else
``sqlite:///synthgap-runs/mlflow.db``. Dry runs log nothing.

Resume (``resume=JOURNAL``): the journal is the source of truth. Finished experiments
(``experiment_finished`` events, each with its whole record) are queued in the lab
(:meth:`HardwareLab.replay`); the campaign is re-run from the start with the same
deterministic policy, and each step whose recipe matches the next journaled one gets the
journaled record back instead of touching an instrument. Re-stepping the real env with
the recorded results rebuilds exactly the observation (and history, best-so-far, budget)
the policy saw before the crash; a recipe that differs from the journaled one stops the
resume with an error (a different policy). Experiments started but not finished are
marked ``experiment_abandoned``; the furnace is first brought below its safe temperature,
and the policy's next step makes that experiment again under a new id.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from synthgap.hardware.journal import read_journal
from synthgap.hardware.lab import HardwareLab, finished_records, load_lab_file

__all__ = ["DeployError", "DeployOptions", "DeployResult", "deploy", "load_deploy_policy"]

log = logging.getLogger(__name__)

DEFAULT_ENV_ID = "synthgap/Campaign-v0"
_LAB_KWARGS = ("lab", "lab_factory", "n_furnaces")  # the deploy lab replaces the twin


class DeployError(ValueError):
    """Bad deploy input (policy, lab file, journal, options); the message says which."""


@dataclass
class DeployOptions:
    """What ``synthgap deploy`` was asked to do (see :func:`deploy`)."""

    policy: str
    lab: str | Path
    episodes: int = 1
    budget: int | None = None
    dry_run: bool = False
    yes: bool = False
    resume: str | Path | None = None
    tracking_uri: str | None = None
    trust_local_file: bool = False
    trust_digest: str | None = None
    algo: str = "ppo"
    system: str | None = None
    journal: str | Path | None = None
    reset_emergency_stop: tuple[str, str] | None = None  # (operator, reason): clear a latched stop first


@dataclass
class DeployResult:
    """Outcome of :func:`deploy`."""

    journal: Path
    campaign_id: str
    experiments: list[str] = field(default_factory=list)  # finished ids, in order (replayed included)
    replayed: int = 0
    logged: int = 0
    declined: bool = False
    rewards: list[float] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # one per finished experiment: what the lab measured
    dry_run: bool = False

    def to_dict(self) -> dict:
        """Plain data for ``synthgap deploy --json``."""
        def finite(v):  # strict JSON: a value not measured (NaN) is null
            return None if isinstance(v, float) and not math.isfinite(v) else v

        rows = [{k: finite(v) for k, v in row.items()} for row in self.rows]
        return {"journal": str(self.journal), "campaign_id": self.campaign_id, "dry_run": self.dry_run,
                "declined": self.declined, "replayed": self.replayed, "logged": self.logged,
                "experiments": rows}


def model_oracles(system) -> dict[str, float]:
    """Target -> the best performance the lab's (nominal) model expects, in the target's unit
    (:func:`synthgap.agents.oracle.compute_oracle` per target; about 1 s each): what a
    measured result on real instruments is read against, since the true world is unknown."""
    from synthgap.agents.oracle import compute_oracle

    out = {}
    for target, spec in system.targets.items():
        value = compute_oracle(system, targets=(target,)).value if not spec.unobtainium else 0.0
        out[target] = value if value > 0 else float("nan")
    return out


# ---------------------------------------------------------------------------------- policy
def load_deploy_policy(uri: str, tracking_uri: str | None = None, trust_local_file: bool = False,
                       algo: str = "ppo", system: str | None = None, trust_digest: str | None = None):
    """A verified policy (``.predict(obs)``, ``.env_id``, ``.env_kwargs``, ``.sha256``).

    ``models:/...`` goes through the registry's check (signature with the user's key, or
    the files hash to ``trust_digest``); a local ``.zip`` is loaded only with
    ``trust_local_file`` (its SHA-256 is recorded; env kwargs: ``{"system": system}``).
    """
    if uri.startswith("models:/"):
        from synthgap.agents.rl.registry import load_policy

        return load_policy(uri, tracking_uri, trust_digest=trust_digest)
    path = Path(uri)
    if not path.is_file():
        raise DeployError(f"--policy {uri!r} is neither a models:/NAME@ALIAS URI nor an existing file")
    if not trust_local_file:
        raise DeployError(f"--policy {uri}: loading a local policy file unpickles it; pass --trust-local-file "
                          "if you trust its source, or deploy a registered models:/ URI (signature-checked)")
    from synthgap.agents.rl.algorithms import algo_class
    from synthgap.agents.rl.registry import Policy
    from synthgap.agents.rl.signing import sha256_file

    try:
        cls = algo_class(algo.lower())
    except KeyError:
        raise DeployError(f"--algo {algo!r}: choose ppo, a2c or sac") from None
    model = cls.load(path, device="cpu")
    kwargs = {"system": system} if system else {}
    return Policy(model=model, env_id=DEFAULT_ENV_ID, env_kwargs=kwargs, algo=algo.lower(), name=path.name,
                  version="local", sha256=sha256_file(path))


# ---------------------------------------------------------------------------------- deploy
#: decimals shown per recipe field: the controller's 0.1 K and 0.1 K/min, minutes of milling and dwell
PROMPT_DECIMALS = {"excess": 3, "milling_time": 2, "ramp_rate": 1, "dwell_temperature": 1, "dwell_time": 2,
                   "cooling_rate": 1}


def recipe_lines(recipe: Any) -> list[str]:
    """The recipe as an operator reads it: each field rounded to what the instruments resolve, with its unit."""
    from synthgap.envs.chemistry.limits import RECIPE_LIMITS
    from synthgap.hardware.registers import ZERO_CELSIUS_K

    lines = [f"  {'target':18s} {recipe.target}", f"  {'precursors':18s} {' + '.join(recipe.precursors)}"]
    for k, decimals in PROMPT_DECIMALS.items():
        v = float(getattr(recipe, k))
        text = f"{v:.{decimals}f} {RECIPE_LIMITS[k].unit}"
        if k == "dwell_temperature":
            text += f" ({v - ZERO_CELSIUS_K:.1f} degC)"
        lines.append(f"  {k:18s} {text}")
    lines.append(f"  {'atmosphere':18s} {recipe.atmosphere}")
    return lines


def _ask(recipe: Any, stdin: TextIO, stdout: TextIO) -> bool:
    print("\nNext recipe:", file=stdout)
    for line in recipe_lines(recipe):
        print(line, file=stdout)
    print("Run it on the lab? [y/N] ", end="", file=stdout, flush=True)
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def dry_run_journal(journal: Path) -> Path:
    """Where a dry run journals when no ``--journal`` is given: beside the lab's journal,
    ``NAME.dry-run-YYYYMMDD-HHMMSS.jsonl`` (UTC; a counter if taken), one file per rehearsal."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = journal.with_name(f"{journal.stem}.dry-run-{stamp}{journal.suffix}")
    k = 1
    while path.exists():
        k += 1
        path = journal.with_name(f"{journal.stem}.dry-run-{stamp}-{k}{journal.suffix}")
    return path


def _env_kwargs(policy: Any, options: DeployOptions, lab_system: str) -> dict[str, Any]:
    kwargs = {k: v for k, v in dict(policy.env_kwargs or {}).items() if k not in _LAB_KWARGS}
    if options.budget is not None:
        kwargs["budget"] = options.budget
    system = kwargs.get("system", lab_system)
    if isinstance(system, str) and system != lab_system:
        raise DeployError(f"the policy was trained on system {system!r} but the lab makes {lab_system!r}")
    kwargs["system"] = lab_system
    return kwargs


def deploy(options: DeployOptions, stdin: TextIO | None = None, stdout: TextIO | None = None) -> DeployResult:
    """Run the policy's campaign(s) on the lab (see the module docstring).

    Raises:
        DeployError / ConfigError / LabInputError (ValueErrors): bad input, nothing run.
        HardwareLabError: an experiment was aborted (the lab was made safe first).
    """
    import gymnasium as gym

    import synthgap.envs  # noqa: F401  (registers the env ids)

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if not (isinstance(options.episodes, int) and options.episodes >= 1):
        raise DeployError(f"--episodes must be an integer >= 1, got {options.episodes!r}")
    if options.budget is not None and not (isinstance(options.budget, int) and options.budget >= 1):
        raise DeployError(f"--budget must be an integer >= 1, got {options.budget!r}")
    config, settings = load_lab_file(options.lab)
    if options.resume is not None:
        journal = Path(options.resume)
        if not journal.is_file():
            raise DeployError(f"--resume {journal}: no such journal")
    else:
        journal = Path(options.journal) if options.journal else config.journal
        if journal is None:
            raise DeployError(f"{options.lab}: no journal path; set 'journal' in the lab file")
        if options.dry_run and not options.journal:
            journal = dry_run_journal(journal)  # a rehearsal never blocks the real campaign's journal
        if journal.exists() and any(e.get("event") == "experiment_started" for e in read_journal(journal).events):
            raise DeployError(f"journal {journal} already holds a campaign; continue it with --resume {journal} "
                              "or choose another journal")
    policy = load_deploy_policy(options.policy, options.tracking_uri, options.trust_local_file, options.algo,
                                options.system or settings.system, options.trust_digest)
    if policy.env_id != DEFAULT_ENV_ID:
        raise DeployError(f"policy {policy.name} was trained on {policy.env_id!r}; deploy runs {DEFAULT_ENV_ID}")
    env_kwargs = _env_kwargs(policy, options, settings.system)
    previous = read_journal(journal).events if options.resume is not None else []
    done_events = finished_records(journal) if options.resume is not None else []
    finished_ids = {e["experiment_id"] for e in done_events}
    abandoned = [e["experiment_id"] for e in previous if e.get("event") == "experiment_started"
                 and e["experiment_id"] not in finished_ids
                 and not any(x.get("event") == "experiment_abandoned" and x.get("experiment_id") == e["experiment_id"]
                             for x in previous)]
    if options.dry_run:
        tracker = None
    else:
        from .tracking import ExperimentTracker

        tracker = ExperimentTracker(options.tracking_uri)
    lab = HardwareLab(config, settings, journal=journal, dry_run=options.dry_run)
    result = DeployResult(journal=journal, campaign_id=lab.campaign_id, dry_run=options.dry_run)
    env = None
    try:
        lab.journal.append("deploy_started", policy=policy.name, version=policy.version, sha256=policy.sha256,
                           env_id=policy.env_id, env_kwargs=env_kwargs, episodes=options.episodes,
                           dry_run=options.dry_run, resume=options.resume is not None, approval=not options.yes)
        for sid in abandoned:
            lab.journal.append("experiment_abandoned", experiment_id=sid, reason="process ended before it finished")
        if options.reset_emergency_stop is not None:
            cleared = lab.shield.latched
            if lab.reset_emergency_stop(*options.reset_emergency_stop):
                print(f"emergency stop ({cleared}) reset by {options.reset_emergency_stop[0]} (journaled)",
                      file=stdout)
        if options.resume is not None and not options.dry_run:
            lab.recover("resume after an interrupted campaign")
        lab.replay(done_events)
        env = gym.make(policy.env_id, lab=lab, disable_env_checker=True, **env_kwargs)
        model_oracle = model_oracles(lab.system)
        step = 0
        with lab.shield.signal_guard():
            for episode in range(options.episodes):
                obs, _ = env.reset(seed=episode)
                while True:
                    action = policy.predict(obs)
                    recipe = env.unwrapped.decode_action(action)
                    if not lab.replaying:
                        if not options.yes and not _ask(recipe, stdin, stdout):
                            lab.journal.append("recipe_declined", recipe=recipe.to_dict())
                            print("Declined: the campaign stops here.", file=stdout)
                            result.declined = True
                            return result
                        lab.journal.append("recipe_approved", recipe=recipe.to_dict(),
                                           by="--yes" if options.yes else "operator")
                    replayed = lab.replaying
                    obs, reward, terminated, truncated, info = env.step(action)
                    rec = lab.record(info["sample_id"])
                    step += 1
                    result.experiments.append(rec.sample_id)
                    result.rewards.append(float(reward))
                    result.replayed += int(replayed)
                    if tracker is not None and tracker.log(rec, float(reward), step=step, episode=episode,
                                                           campaign_id=lab.campaign_id, policy=policy,
                                                           journal=journal):
                        result.logged += 1
                        lab.journal.append("tracked", experiment_id=rec.sample_id)
                    flag = " [DRY RUN: nothing was made]" if options.dry_run else ""
                    prop = lab.system.targets[recipe.target].performance
                    unit = f" {prop.unit}" if prop.unit else ""
                    result.rows.append({"experiment_id": rec.sample_id, "episode": episode, "replayed": replayed,
                                        "target": recipe.target, "dwell_temperature_K": recipe.dwell_temperature,
                                        "property": prop.property, "measured": rec.performance,
                                        "fraction_of_model_oracle": rec.performance / model_oracle[recipe.target],
                                        "unit": prop.unit, "status": rec.status,
                                        "xrd_phase_fractions": dict(rec.xrd_phase_fractions),
                                        "reward": float(reward)})
                    if options.dry_run:
                        outcome = f"{prop.property} not measured"
                    else:
                        outcome = (f"{prop.property} {rec.performance:.4g}{unit}, "
                                   f"{rec.performance / model_oracle[recipe.target]:.2f} of the best the lab's "
                                   f"model expects ({model_oracle[recipe.target]:.4g}{unit})")
                    print(f"{rec.sample_id} {'(from journal) ' if replayed else ''}{recipe.target} "
                          f"{recipe.dwell_temperature:.0f} K -> {outcome}, reward {reward:+.3f}{flag}",
                          file=stdout, flush=True)
                    if terminated or truncated:
                        break
        lab.journal.append("deploy_finished", experiments=len(result.experiments), logged=result.logged)
        return result
    except (KeyboardInterrupt, SystemExit) as exc:
        # The shield's guard has sent the safe setpoint once the stack unwound; the lab's stop
        # adds what the shield alone cannot: re-opening a lost furnace port, and the journaled
        # outcome (emergency_stop_done).
        if not options.dry_run:
            lab.emergency_stop(f"{type(exc).__name__}: safe state re-sent after the interrupted transaction")
        raise
    finally:
        if env is not None:
            env.close()
        lab.close()
