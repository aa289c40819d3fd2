"""Sequences: the DSM event rules, the behaviour model, clips kept whole and in order through the
stages, ``query --clip`` and the MP4 preview."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from synthgen import cabin, dsm
from synthgen.paths import Layout
from synthgen.plan.config import PlanParams
from synthgen.plan.planner import effective_shard_size, plan_specs
from synthgen.plan.sequence import effective_openness
from synthgen.publish.stage import run_publish
from synthgen.video import clip_frames, write_mp4
from tests.helpers import make_generated, tiny_params


def _seq(n: int = 4, frames: int = 50, fps: float = 10.0, **seq: object) -> PlanParams:
    return PlanParams.model_validate({"n": n, "identities": 3, "shard_size": 100, "kind": "sequence",
                                      "sequence": {"frames": frames, "fps": fps, **seq}})


# --- the rules ----------------------------------------------------------------------------------

def test_closures_are_classified_by_duration() -> None:
    o = np.ones(200)
    o[10:12] = 0.1  # 200 ms at 10 fps: a blink
    o[30:36] = 0.0  # 600 ms: microsleep
    o[60:95] = 0.0  # 3.5 s: sleep
    o[120:185] = 0.0  # 6.5 s: unresponsive
    c = dsm.closures(o, 10.0)
    assert [(x.kind, x.onset_frame, x.n_frames) for x in c] == [
        ("blink", 10, 2), ("microsleep", 30, 6), ("sleep", 60, 35), ("unresponsive", 120, 65)]
    assert c[0].onset_ms == 1000.0 and c[0].duration_ms == 200.0


def test_perclos_per_window() -> None:
    o = np.ones(1200)
    o[:60] = 0.1  # 10% of the first minute at 10 fps... of 600 frames
    p = dsm.perclos(o, 10.0, window_s=60.0)
    assert len(p) == 2 and p[0]["perclos"] == pytest.approx(0.1) and p[1]["perclos"] == 0.0


def test_long_distraction_starts_at_three_seconds() -> None:
    z = ["windshield"] * 10 + ["infotainment"] * 29 + ["windshield"] * 10 + ["lap"] * 30 + ["windshield"] * 5
    ev = dsm.clip_events(np.ones(len(z)), z, 10.0)
    long = [a for a in ev.alerts if a.kind == "long_distraction"]
    assert [(a.start_ms, a.alert_ms) for a in long] == [(4900.0, 7900.0)]  # 2.9 s: no alert; 3.0 s: alert
    assert [g.target for g in ev.glances if g.away] == ["infotainment", "lap"]


def test_mirror_glances_are_part_of_driving() -> None:
    z = ["windshield"] * 5 + ["left_mirror"] * 40 + ["windshield"] * 5
    ev = dsm.clip_events(np.ones(len(z)), z, 10.0)
    assert not ev.alerts and not any(g.away for g in ev.glances)


def test_time_sharing_needs_ten_seconds_within_thirty() -> None:
    # Five 2.5 s glances away with 2 s on the road between: 10 s away by the fourth glance's end.
    z: list[str] = []
    for _ in range(5):
        z += ["windshield"] * 20 + ["infotainment"] * 25
    ev = dsm.clip_events(np.ones(len(z)), z, 10.0)
    ts = [a for a in ev.alerts if a.kind == "time_sharing"]
    assert len(ts) == 1 and ts[0].start_ms == 2000.0 and ts[0].alert_ms == pytest.approx(4 * 4500.0)
    assert not [a for a in ev.alerts if a.kind == "long_distraction"]
    # The same glances spread out (12 s of road between them) never fill 10 s in a 30 s window.
    z = []
    for _ in range(5):
        z += ["windshield"] * 120 + ["infotainment"] * 25
    assert not dsm.clip_events(np.ones(len(z)), z, 10.0).alerts


def test_events_json_round_trip() -> None:
    z = ["windshield"] * 10 + ["lap"] * 35 + ["windshield"] * 10
    o = np.ones(len(z))
    o[3:5] = 0.0
    ev = dsm.clip_events(o, z, 10.0)
    assert dsm.ClipEvents.from_json(ev.to_json()) == ev


# --- the behaviour model ------------------------------------------------------------------------

def test_clips_are_stable_when_n_grows_and_frames_are_ordered() -> None:
    small = plan_specs(_seq(n=2), 11)
    big = plan_specs(_seq(n=5), 11)
    assert [s.sample_id for s in small] == [s.sample_id for s in big[:100]]
    assert len(big) == 250 and len({s.sequence_id for s in big}) == 5
    for c in range(5):
        clip = big[c * 50 : (c + 1) * 50]
        assert len({s.sequence_id for s in clip}) == 1 and len({s.identity for s in clip}) == 1
        assert [s.frame_index for s in clip] == list(range(50))
        assert np.allclose(np.diff([s.t_ms for s in clip]), 100.0)
        assert len({s.camera for s in clip}) == 1 and len({s.sample_id for s in clip}) == 50


def test_planned_events_are_the_rules_applied_to_the_frames() -> None:
    specs = plan_specs(_seq(n=3, frames=120), 4)
    for c in range(3):
        clip = specs[c * 120 : (c + 1) * 120]
        ev = dsm.ClipEvents.from_json(clip[0].sequence_events)
        zones = [cabin.zone_of_angles(s.camera, s.seat, s.gaze_yaw, s.gaze_pitch) for s in clip]
        opening = [effective_openness(s.eye_openness, s.eye_state) for s in clip]
        again = dsm.clip_events(opening, zones, 10.0, [s.head_yaw for s in clip], [s.gaze_yaw for s in clip])
        assert again == ev and ev.frames == 120


def test_drowsiness_raises_blinks_and_closures() -> None:
    def stats(kss: int) -> tuple[float, float]:
        specs = plan_specs(_seq(n=12, frames=600, fps=20.0, kss={"dist": "constant", "value": kss}), 2)
        blinks, dur, perclos = 0, [], []
        for c in range(12):
            ev = dsm.ClipEvents.from_json(specs[c * 600].sequence_events)
            blinks += len(ev.blinks)
            dur += [b.duration_ms for b in ev.blinks]
            perclos.append(ev.perclos[0]["perclos"])
        return blinks / (12 * 0.5), float(np.mean(dur)), float(np.mean(perclos))  # per minute

    alert, sleepy = stats(1), stats(9)
    assert 8 < alert[0] < 18 and sleepy[0] > alert[0] + 5
    assert sleepy[1] > alert[1] + 60 and sleepy[2] > alert[2] + 0.03


def test_glances_reach_cabin_zones_by_head_or_eyes() -> None:
    specs = plan_specs(_seq(n=20, frames=300, glance_rate_per_min=20.0), 9)
    targets, moves = set(), set()
    for c in range(20):
        clip = specs[c * 300 : (c + 1) * 300]
        for g in dsm.ClipEvents.from_json(clip[0].sequence_events).glances:
            if g.away:
                targets.add(g.target)
                moves.add(g.movement)
        # Head turns are smooth: no frame-to-frame jump beyond a fast head turn's speed.
        assert np.abs(np.diff([s.head_yaw for s in clip])).max() < 25.0
        assert all(abs(s.gaze_yaw - s.head_yaw) <= 35.0 + 1e-6 for s in clip)
    assert {"owl", "lizard"} <= moves and len(targets) >= 4


def test_shards_hold_whole_clips() -> None:
    p = PlanParams.model_validate({"n": 5, "identities": 3, "shard_size": 70, "kind": "sequence",
                                   "sequence": {"frames": 30}})
    assert effective_shard_size(p) == 60
    p = PlanParams.model_validate({"n": 5, "identities": 3, "shard_size": 10, "kind": "sequence",
                                   "sequence": {"frames": 30}})
    assert effective_shard_size(p) == 30  # at least one clip


def test_sequence_with_targeted_mode_is_refused() -> None:
    from synthgen.config import parse_params
    from synthgen.errors import ConfigError

    with pytest.raises(ConfigError, match="sequence"):
        parse_params({"plan": {"kind": "sequence", "mode": "targeted", "gaps": "g.json"}})


# --- through the stages -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def published_clips(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("seq") / "data"
    params = tiny_params(data, n=3, shard_size=14, size=64,
                         plan={"kind": "sequence", "identities": 3, "sequence": {"frames": 6, "fps": 5}})
    make_generated(params)
    result = run_publish(params, source_stage="generated", progress=False)
    return params, result


def test_generated_shards_keep_clips_whole_and_in_order(published_clips) -> None:
    params, _ = published_clips
    layout = Layout.from_params(params)
    shards = sorted(layout.stage_dir("generated").glob("shard-*.parquet"))
    assert len(shards) == 2  # 12 frames per shard (two whole clips), then one clip
    seen: set[str] = set()
    for f in shards:
        t = pq.read_table(f, columns=["sequence_id", "frame_index", "t_ms", "req_eye_aperture_mm"]).to_pylist()
        ids = [r["sequence_id"] for r in t]
        assert not (set(ids) & seen)
        seen |= set(ids)
        for sid in set(ids):
            frames = [r["frame_index"] for r in t if r["sequence_id"] == sid]
            assert frames == list(range(6))
        assert all(len(r["req_eye_aperture_mm"]) == 2 for r in t)


def test_query_returns_a_clip_in_order_and_exports_mp4(published_clips, tmp_path: Path) -> None:
    _, result = published_clips
    lf = pl.scan_parquet(str(result.version_dir / "**" / "*.parquet"), hive_partitioning=True)
    sid = lf.select("sequence_id").collect()["sequence_id"][4]
    rows = clip_frames(lf, sid).collect().to_dicts()
    assert [r["frame_index"] for r in rows] == list(range(6)) and [r["t_ms"] for r in rows][1] == 200.0
    events = dsm.ClipEvents.from_json(rows[0]["sequence_events"])
    assert events.frames == 6 and all(r["sequence_events"] == rows[0]["sequence_events"] for r in rows)
    out = write_mp4(rows, tmp_path / "clip.mp4", fps=5)
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 6 and not list(tmp_path.glob(".clip-*"))


def test_cli_clip_and_mp4(published_clips, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synthgen.cli import app

    params, result = published_clips
    data_dir = str(params.data_dir)
    lf = pl.scan_parquet(str(result.version_dir / "**" / "*.parquet"), hive_partitioning=True)
    sid = lf.select("sequence_id").collect()["sequence_id"][0]
    r = CliRunner().invoke(app, ["query", "--data-dir", data_dir, "--clip", sid, "--mp4",
                                 str(tmp_path / "c.mp4"), "--select", "frame_index"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.mp4").stat().st_size > 1000
    r = CliRunner().invoke(app, ["query", "--data-dir", data_dir, "--mp4", str(tmp_path / "d.mp4")])
    assert r.exit_code == 2 and "--mp4 needs --clip" in r.output
