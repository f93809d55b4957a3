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
import sys

__all__ = ["DeployCLIError", "add_parsers", "handler"]


class DeployCLIError(ValueError):
    """Bad ``synthgap deploy`` arguments (the CLI root maps it to exit status 2)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_parsers(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``deploy`` to the CLI root's subparsers."""
    p = subparsers.add_parser("deploy", help="run a trained policy's campaign on the lab (through the safety shield)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True,
                   help="models:/NAME@ALIAS or models:/NAME/VERSION (hash-checked), or a local SB3 .zip "
                        "(needs --trust-local-file)")
    p.add_argument("--lab", required=True, help="lab YAML (instruments, limits, journal, 'lab' settings)")
    p.add_argument("--episodes", type=_positive_int, default=1, help="campaigns to run (default 1)")
    p.add_argument("--budget", type=_positive_int, default=None,
                   help="experiments per campaign (default: the policy's env kwargs)")
    p.add_argument("--dry-run", action="store_true",
                   help="send no state-changing command to any instrument (results are flagged dry_run)")
    p.add_argument("--yes", action="store_true", help="approve every recipe (default: ask y/N on stdin)")
    p.add_argument("--resume", default=None, metavar="JOURNAL",
                   help="continue the campaign of this journal after a crash (finished experiments are not redone)")
    p.add_argument("--journal", default=None, help="journal of a new campaign (default: the lab file's)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///synthgap-runs/mlflow.db)")
    p.add_argument("--trust-local-file", action="store_true",
                   help="allow --policy to be a local .zip (it is unpickled: only files you trust)")
    p.add_argument("--algo", default="ppo", choices=["ppo", "a2c", "sac"], help="algorithm of a local .zip")
    p.set_defaults(func=handler)
    return p


def handler(args: argparse.Namespace) -> int:
    """Run :func:`synthgap.hardware.deploy.deploy` for parsed ``args``."""
    from synthgap.hardware.deploy import DeployOptions, deploy
    from synthgap.hardware.lab import HardwareLabError

    if args.resume and args.journal:
        raise DeployCLIError("--resume JOURNAL continues that journal; do not also pass --journal")
    options = DeployOptions(policy=args.policy, lab=args.lab, episodes=args.episodes, budget=args.budget,
                            dry_run=args.dry_run, yes=args.yes, resume=args.resume, tracking_uri=args.tracking_uri,
                            trust_local_file=args.trust_local_file, algo=args.algo, journal=args.journal)
    try:
        result = deploy(options)
    except HardwareLabError as exc:
        print(f"synthgap deploy: stopped: {exc}", file=sys.stderr)
        return 3
    print(f"campaign {result.campaign_id}: {len(result.experiments)} experiment(s) "
          f"({result.replayed} from the journal), {result.logged} logged to MLflow; journal {result.journal}")
    return 1 if result.declined else 0
