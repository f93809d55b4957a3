"""``synthgap deploy``: run a registered policy's campaign on the (real or emulated) lab.

Example (against the emulators; ``synthgap emulate lab --config lab.yaml --lab-file run/lab.yaml``
prints the lab file to use)::

    synthgap deploy --policy models:/campaign-ppo@champion --lab run/lab.yaml --budget 5
    synthgap deploy --policy models:/campaign-ppo@champion --lab run/lab.yaml --resume run/journal.jsonl

Exit status: 0 done, 1 recipe declined by the operator, 2 bad input, 3 an experiment was
aborted on the hardware (the furnace was sent to its safe temperature first).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synthgap.envs.userfiles import int_arg, one_line, short

from .cli_common import tracking_uri

__all__ = ["DeployCLIError", "add_parsers", "handler"]

MAX_EPISODES = 1_000  # campaigns in one deploy
MAX_BUDGET = 10_000  # experiments per campaign


class DeployCLIError(ValueError):
    """Bad ``synthgap deploy`` arguments (the CLI root maps it to exit status 2)."""


def add_parsers(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``deploy`` to the CLI root's subparsers."""
    p = subparsers.add_parser("deploy", help="run a trained policy's campaign on the lab (through the safety shield)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True,
                   help="models:/NAME@ALIAS or models:/NAME/VERSION (signature-checked), or a local SB3 .zip "
                        "(needs --trust-local-file)")
    p.add_argument("--lab", required=True, help="lab YAML (instruments, limits, journal, 'lab' settings)")
    p.add_argument("--episodes", type=int_arg(1, MAX_EPISODES), default=1,
                   help=f"campaigns to run, 1-{MAX_EPISODES:,} (default 1)")
    p.add_argument("--budget", type=int_arg(1, MAX_BUDGET), default=None,
                   help="experiments per campaign (default: the policy's env kwargs)")
    p.add_argument("--dry-run", action="store_true",
                   help="send no state-changing command to any instrument (results are flagged dry_run)")
    p.add_argument("--yes", action="store_true", help="approve every recipe (default: ask y/N on stdin)")
    p.add_argument("--resume", default=None, metavar="JOURNAL",
                   help="continue the campaign of this journal after a crash (finished experiments are not redone)")
    p.add_argument("--journal", default=None, help="journal of a new campaign (default: the lab file's)")
    p.add_argument("--tracking-uri", default=None, type=tracking_uri,
                   help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///synthgap-runs/mlflow.db)")
    p.add_argument("--trust-local-file", action="store_true",
                   help="allow --policy to be a local .zip (it is unpickled: only files you trust)")
    p.add_argument("--trust-digest", default=None, metavar="SHA256",
                   help="load a models:/ policy if its files hash to this tree SHA-256, signed or not "
                        "(a colleague's model)")
    p.add_argument("--algo", default="ppo", choices=["ppo", "a2c", "sac"], help="algorithm of a local .zip")
    p.add_argument("--reset-emergency-stop", default=None, metavar="REASON",
                   help="clear the emergency stop latched in the journal (after checking the lab), journaled "
                        "with --operator and this reason; a stop latches until then")
    p.add_argument("--operator", default=None, help="who resets the emergency stop (with --reset-emergency-stop)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object on stdout at the end (the experiments, the journal); progress and the "
                        "approval prompt go to stderr")
    p.set_defaults(func=handler)
    return p


def _check_journal(path: str) -> None:
    """Read the ``--resume`` journal once before anything else (policy, MLflow, instruments),
    so a corrupt one is refused in one line naming it."""
    from synthgap.hardware.journal import read_journal

    where = f"--resume {short(path, 200)}"
    if not Path(path).is_file():
        raise DeployCLIError(f"{where}: no such journal file")
    try:
        read_journal(path)
    except (ValueError, OSError) as exc:  # read_journal reports a too-deep line as ValueError
        raise DeployCLIError(f"{where}: {one_line(exc, 200)}") from None


def handler(args: argparse.Namespace) -> int:
    """Run :func:`synthgap.experiments.deploy.deploy` for parsed ``args``."""
    from synthgap.hardware.lab import HardwareLabError

    from .deploy import DeployOptions, deploy

    if args.resume and args.journal:
        raise DeployCLIError("--resume JOURNAL continues that journal; do not also pass --journal")
    if args.resume:
        _check_journal(args.resume)
    reset = None
    if args.reset_emergency_stop is not None or args.operator is not None:
        if args.reset_emergency_stop is None or args.operator is None:
            raise DeployCLIError("--reset-emergency-stop REASON and --operator NAME go together")
        from synthgap.hardware.latch import check_operator_text

        reset = (check_operator_text("--operator", args.operator),
                 check_operator_text("--reset-emergency-stop", args.reset_emergency_stop))
    options = DeployOptions(policy=args.policy, lab=args.lab, episodes=args.episodes, budget=args.budget,
                            dry_run=args.dry_run, yes=args.yes, resume=args.resume, tracking_uri=args.tracking_uri,
                            trust_local_file=args.trust_local_file, trust_digest=args.trust_digest, algo=args.algo,
                            journal=args.journal, reset_emergency_stop=reset)
    from .tracking import store_uri

    store = None if args.dry_run else store_uri(args.tracking_uri)
    try:
        result = deploy(options, stdout=sys.stderr if args.json else sys.stdout)
    except HardwareLabError as exc:
        print(f"synthgap deploy: stopped: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"stopped": str(exc), "exit_status": 3}))
        return 3
    if args.json:
        print(json.dumps({**result.to_dict(), "tracking_uri": store}, default=str, allow_nan=False))
    else:
        where = f"{result.logged} logged to MLflow ({store})" if store else "nothing logged (dry run)"
        print(f"campaign {result.campaign_id}: {len(result.experiments)} experiment(s) "
              f"({result.replayed} from the journal), {where}; journal {result.journal}")
    return 1 if result.declined else 0
