"""Campaign state without instruments: the lab clock, campaign id and count, resume; the one lab-file reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthgap.envs.chemistry import Recipe
from synthgap.envs.lab.protocol import LabInputError
from synthgap.envs.lab.records import SampleRecord
from synthgap.hardware.campaign_state import CampaignState, ScaledClock, record_to_dict
from synthgap.hardware.config import LabConfig, read_lab_file
from synthgap.hardware.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "hardware" / "examples" / "lab.yaml"


def recipe(**kw) -> Recipe:
    base = dict(dwell_temperature=1473.0, dwell_time=2.0, ramp_rate=20.0, cooling_rate=20.0, milling_time=1.0)
    base.update(kw)
    return Recipe("BaTiO3", ("BaCO3", "TiO2"), **base)


def test_scaled_clock_is_monotonic_seconds_since_creation_times_the_scale():
    wall = iter([100.0, 100.0, 100.5, 102.0])
    clock = ScaledClock(50_000.0, monotonic=lambda: next(wall))
    assert clock() == 0.0
    assert clock() == 25_000.0
    assert clock() == 100_000.0
    real = iter([7.0, 9.5])
    assert ScaledClock(None, monotonic=lambda: next(real))() == 2.5  # no time scale: real time


def test_campaign_continues_from_the_journal_events():
    events = [{"event": "lab_opened", "campaign_id": "abcd1234"},
              {"event": "experiment_started", "experiment_id": "abcd1234-E0001", "campaign_id": "abcd1234"},
              {"event": "experiment_started", "experiment_id": "abcd1234-E0002", "campaign_id": "abcd1234"}]
    state = CampaignState.from_events(events)
    assert (state.campaign_id, state.started) == ("abcd1234", 2)
    assert state.next_sample_id() == "abcd1234-E0003" and state.started == 3
    fresh = CampaignState.from_events([])
    assert len(fresh.campaign_id) == 8 and fresh.started == 0
    assert fresh.next_sample_id() == f"{fresh.campaign_id}-E0001"


def test_replay_returns_the_journaled_records_and_refuses_another_recipe():
    done = [{"event": "experiment_finished",
             "record": record_to_dict(SampleRecord(f"c-E000{i}", "", recipe(dwell_time=t), status="done"))}
            for i, t in ((1, 2.0), (2, 1.0), (3, 0.5))]
    state = CampaignState("c")
    state.queue_replay(done)
    assert state.replaying
    assert state.next_replayed(recipe(dwell_time=2.0)).sample_id == "c-E0001"
    with pytest.raises(LabInputError, match="resume needs the same deterministic policy"):
        state.next_replayed(recipe(dwell_time=0.5))
    assert not state.replaying  # a mismatch drops the rest of the queue


def test_one_reader_for_every_lab_file_caller(tmp_path):
    config, settings = read_lab_file(EXAMPLE)
    assert LabConfig.from_yaml(EXAMPLE) == config  # the instrument config of a lab file with a lab section
    assert settings.watchdog_s == 120.0 and settings.time_scale is None
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("poll_s: 5.0", "poll_s: -5.0"))
    for reader in (read_lab_file, LabConfig.from_yaml):
        with pytest.raises(ConfigError, match="lab.poll_s: expected a finite number > 0"):
            reader(bad)
