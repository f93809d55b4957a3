"""Journal durability/tolerance and lab YAML config validation."""

from __future__ import annotations

import json

import pytest

from synthgap.hardware.config import LabConfig, SafetyLimits
from synthgap.hardware.errors import ConfigError
from synthgap.hardware.journal import Journal, read_journal

LIMITS = {"max_temperature_K": 1473.15, "max_ramp_rate_K_per_min": 10, "max_dwell_h": 48,
          "max_mass_g": 50, "safe_temperature_K": 333.15}


def test_journal_round_trip_and_sequence(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        assert j.append("command", command="setpoint", value=500.0) == 1
        assert j.append("reading", value=float("nan")) == 2
    with Journal(path) as j:  # sequence continues after reopening
        assert j.append("x") == 3
    contents = read_journal(path)
    assert [e["seq"] for e in contents.events] == [1, 2, 3]
    assert contents.events[1]["value"] == "nan" and contents.torn_tail is None


def test_torn_last_line_tolerated_nothing_lost(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, fsync=False) as j:
        for i in range(5):
            j.append("reading", value=i)
    with open(path, "ab") as fh:
        fh.write(b'{"seq": 6, "event": "read')  # crash mid-write
    contents = read_journal(path)
    assert [e["value"] for e in contents.events] == [0, 1, 2, 3, 4]
    assert contents.torn_tail is not None and contents.torn_tail.startswith('{"seq": 6')
    with Journal(path) as j:  # reopening truncates the torn tail, then appends cleanly
        assert j.append("after") == 6
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line) for line in lines)


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"seq": 1}\nnot json\n{"seq": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_journal(path)


def test_config_from_yaml(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("furnace: {url: 'loop://', slave: 3}\n"
                    "xrd: {inbox: /tmp/in, outbox: /tmp/out}\n"
                    f"limits: {json.dumps(LIMITS)}\n")
    cfg = LabConfig.from_yaml(path)
    assert cfg.furnace.slave == 3 and cfg.limits == SafetyLimits(**LIMITS)
    assert str(cfg.xrd.inbox) == "/tmp/in" and cfg.balance is None


@pytest.mark.parametrize(("text", "field", "problem"), [
    ("limits: {}", "limits.max_temperature_K", "missing"),
    ("furnace: {url: x}", "limits", "missing"),
    ("limits: [1, 2]", "limits", "expected a mapping"),
    ("oven: {}\nlimits: {}", "oven", "unknown section"),
    (f"limits: {json.dumps({**LIMITS, 'max_mass_g': 'lots'})}", "limits.max_mass_g",
     "expected float"),
    (f"limits: {json.dumps({**LIMITS, 'max_dwell_h': -1})}", "limits", "max_dwell_h"),
    (f"limits: {json.dumps({**LIMITS, 'bogus': 1})}", "limits.bogus", "unknown field"),
    (f"limits: {json.dumps(LIMITS)}\nfurnace: {{url: x, slave: one}}", "furnace.slave",
     "expected int"),
    ("limits: {a: [", "", "not valid YAML"),
])
def test_config_errors_name_file_field_problem(tmp_path, text, field, problem):
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        LabConfig.from_yaml(path)
    message = str(info.value)
    assert str(path) in message and field in message and problem in message


def test_an_event_longer_than_a_line_is_cut_not_lost(tmp_path):
    from synthgap.hardware.journal import MAX_LINE_CHARS

    with Journal(tmp_path / "j.jsonl", fsync=False) as journal:
        journal.append("command", command="setpoint", value=["a" * 4000] * 30)  # about 120 kB as JSON
        journal.append("reading", name="temperature", value=300.0)
    lines = (tmp_path / "j.jsonl").read_text().splitlines()
    assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    events = read_journal(tmp_path / "j.jsonl").events
    assert [e["event"] for e in events] == ["command", "reading"]
    assert events[0]["truncated"] is True and events[0]["command"].startswith("'setpoint")
