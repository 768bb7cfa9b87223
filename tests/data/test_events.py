"""Event recordings binned into frames: tonic's ToFrame(n_time_bins=T), checked by hand and against tonic."""

from __future__ import annotations

import numpy as np
import pytest
from data.event_files import SENSOR, digits_recordings

from scadeploy.data.events import TONIC_DTYPE, check_recording, recordings_to_sequence, to_frames
from scadeploy.errors import DataError


def _events(x, y, t, p, dtype=TONIC_DTYPE) -> np.ndarray:
    events = np.zeros(len(t), dtype=dtype)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def test_bins_follow_tonic_by_hand():
    """Width (t[-1] - t[0]) // T; bin i holds [t0 + i w, t0 + (i + 1) w); the remainder (last event) is dropped."""
    events = _events([0, 1, 1, 2, 3], [0, 0, 1, 1, 1], [100, 105, 120, 129, 141], [1, 0, 1, 1, 0])
    frames = to_frames(events, (4, 2, 2), 2)  # width 20: [100, 120), [120, 140); t=141 dropped
    assert frames.shape == (2, 2, 2, 4) and frames.sum() == 4
    assert frames[0, 1, 0, 0] == 1 and frames[0, 0, 0, 1] == 1
    assert frames[1, 1, 1, 1] == 1 and frames[1, 1, 1, 2] == 1


def test_short_recordings_give_empty_frames_and_counts_add_up():
    assert to_frames(_events([0, 1], [0, 0], [5, 7], [0, 1]), (2, 1, 2), 4).sum() == 0  # 2 us // 4 bins = 0
    same_pixel = _events([1] * 5, [0] * 5, [0, 1, 2, 3, 10], [1] * 5)
    assert to_frames(same_pixel, (2, 1, 2), 1)[0, 1, 0, 1] == 4
    one_polarity = _events([0, 1], [0, 0], [0, 9], [1, 1])
    assert to_frames(one_polarity, (2, 1, 1), 1)[0, 0, 0, 0] == 1  # one polarity: channel 0


def test_digits_recordings_become_a_sequence():
    recordings, labels = digits_recordings(6)
    x = recordings_to_sequence(recordings, SENSOR, 4)  # a list, as a Python user holds them
    assert x.shape == (4, 6, 2, 8, 8) and x.dtype.is_floating_point
    assert 0 < float(x.sum()) <= sum(r.size for r in recordings)


def test_matches_tonic_to_frame():
    tonic = pytest.importorskip("tonic", reason="the `events` extra (make setup installs it)")
    rng = np.random.default_rng(0)
    recordings, _ = digits_recordings(20)
    for timesteps in (1, 3, 4, 7):
        for events in recordings:
            expected = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=timesteps)(events.copy())
            assert np.array_equal(to_frames(events, SENSOR, timesteps), expected)
    for _ in range(200):  # odd sensors, one polarity, int64 coordinates, spans shorter than T, equal times
        width, height, polarities, timesteps = (int(v) for v in rng.integers(1, 9, 4))
        polarities = min(polarities, 2)
        n = int(rng.integers(1, 120))
        dtype = np.dtype([("t", np.int64), ("x", np.int64), ("y", np.int64), ("p", np.int64)])
        t = np.sort(rng.integers(0, int(rng.choice([1, 5, 60, 10**6])), n)) + int(rng.integers(0, 10**12))
        p = rng.integers(0, polarities, n) if polarities > 1 else np.full(n, int(rng.integers(0, 2)))
        events = _events(rng.integers(0, width, n), rng.integers(0, height, n), t, p, dtype)
        sensor = (width, height, polarities)
        check_recording(events, sensor, "r")
        expected = tonic.transforms.ToFrame(sensor_size=sensor, n_time_bins=timesteps)(events.copy())
        assert np.array_equal(to_frames(events, sensor, timesteps), expected)


@pytest.mark.parametrize("events, message", [
    (np.zeros(3, np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64)])), "missing ['p']"),
    (_events([0, 1], [0, 0], [0.0, 1.5], [0, 1], np.dtype([("x", "i2"), ("y", "i2"), ("t", "f8"), ("p", "?")])),
     "field 't' of recording 'r' has dtype float64"),
    (_events([-1, 1], [0, 0], [0, 1], [0, 1]), "x in -1..1, outside the sensor's 0..7"),
    (_events([0, 1], [0, 8], [0, 1], [0, 1]), "y in 0..8, outside the sensor's 0..7"),
    (_events([0, 1], [0, 0], [0, 1], [0, 2], np.dtype([("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i1")])),
     "p in 0..2, outside the sensor's 0..1"),
    (_events([0, 1], [0, 0], [9, 1], [0, 1]), "out of order"),
])
def test_bad_recordings_are_refused(events, message):
    with pytest.raises(DataError) as info:
        recordings_to_sequence({"r": events}, SENSOR, 4)
    assert message in info.value.message


def test_empty_or_overfull_recordings_are_refused():
    with pytest.raises(DataError, match="no event in any of the 2 recordings"):
        recordings_to_sequence({"a": _events([], [], [], []), "b": _events([], [], [], [])}, SENSOR, 4)
    with pytest.raises(DataError, match="two polarities but the sensor has one"):
        recordings_to_sequence({"a": _events([0, 0], [0, 0], [0, 1], [0, 1])}, (8, 8, 1), 1)
    crowded = _events(np.zeros(40_000), np.zeros(40_000), np.arange(40_000), np.ones(40_000))
    with pytest.raises(DataError, match="more than the 32767 tonic's int16 frames hold"):
        recordings_to_sequence({"a": crowded}, SENSOR, 1)
