"""``synthgap system build``: a chemical-system file from the tables and a documented prior."""

from __future__ import annotations

import json

from synthgap.envs.userfiles import short

MAX_FORMULA_CHARS = 60  # characters of one formula on the command line
MAX_PRECURSORS = 8


def add_parsers(sub) -> None:
    p = sub.add_parser("system", help="make chemical-system files")
    inner = p.add_subparsers(dest="system_command", metavar="WHAT")
    inner.required = True
    b = inner.add_parser(
        "build", help="write a system file from the tables: phases, reactions, kinetics from a documented prior",
        description="Write a chemical-system file for TARGET from PRECURSORS using only the bundled tables "
                    "(NIST-JANAF and FREED G(T), CRC melting points) and the prior of "
                    "envs/chemistry/data/build_prior.yaml. The file loads wherever a system is accepted "
                    "(synthgap fire FILE ..., --system FILE).")
    b.add_argument("target", help="target formula, e.g. SrTiO3")
    b.add_argument("--precursors", required=True, help="comma-separated precursor formulas, e.g. SrCO3,TiO2")
    b.add_argument("--out", required=True, help="system file to write (.yaml)")
    b.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    b.add_argument("--json", action="store_true", help="one JSON object on stdout: phases, reactions, sources")
    b.set_defaults(func=cmd_system_build)


def _formula(text: str, flag: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError(f"{flag}: empty formula")
    if len(text) > MAX_FORMULA_CHARS:
        raise ValueError(f"{flag}: formula longer than {MAX_FORMULA_CHARS} characters: {short(text)}")
    return text


def cmd_system_build(args) -> int:
    from synthgap.envs.chemistry.system_build import build_system, check_out, write_built_system

    target = _formula(args.target, "TARGET")
    precursors = [_formula(p, "--precursors") for p in args.precursors.split(",") if p.strip()]
    if len(precursors) > MAX_PRECURSORS:
        raise ValueError(f"--precursors: at most {MAX_PRECURSORS}, got {len(precursors)}")
    if not args.out.strip():
        raise ValueError("--out is empty: give the system file to write")
    check_out(args.out, args.force)  # before the tables are read (seconds)
    built = build_system(target, precursors)
    out = write_built_system(built, args.out, force=args.force)
    summary = built.summary()
    if args.json:
        print(json.dumps({"out": str(out), **summary}, default=float))
        return 0
    solids = [n for n, p in summary["phases"].items() if not p["gas"]]
    gases = [n for n, p in summary["phases"].items() if p["gas"]]
    lines = [f"wrote {out}: {target} from {' + '.join(precursors)}",
             f"  {len(solids)} solids ({', '.join(solids)}), gases {', '.join(gases)}",
             f"  {len(summary['reactions'])} reactions (onset: k = 1e-4 1/s; rule):"]
    for r in summary["reactions"]:
        lines.append(f"    {r['equation']:42} {r['onset_K']:6.0f} K  {r['rule']}")
    for caveat in summary["caveats"]:
        lines.append(f"  caveat: {caveat}")
    if summary["skipped"]:
        lines.append(f"  left out (reasons in the file's header): {', '.join(sorted(summary['skipped']))}")
    print("\n".join(lines))
    return 0
