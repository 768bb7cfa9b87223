"""Data files of event recordings (.npy, .npz as tonic users hold them), read into sequences or refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from data.event_files import SENSOR, digits_recordings, save_npz

from scadeploy.data.events import recordings_to_sequence
from scadeploy.data.samples import SEQUENCE, load_samples
from scadeploy.errors import DataError


def test_npz_of_recordings_with_labels(tmp_path):
    recordings, labels = digits_recordings(12)
    samples = load_samples(str(save_npz(tmp_path / "ev.npz", recordings, labels)), timesteps=4, sensor_size=SENSOR)
    assert samples.layout == SEQUENCE and samples.x.shape == (4, 12, 2, 8, 8)
    assert samples.y.tolist() == labels.tolist()
    expected = recordings_to_sequence({str(i): r for i, r in enumerate(recordings)}, SENSOR, 4)
    assert np.array_equal(samples.x.numpy(), expected.numpy())  # the recordings, in the order saved
    assert samples.source["events"] == {"sensor_size": [8, 8, 2], "timesteps": 4, "recordings": 12,
                                        "binning": "tonic.transforms.ToFrame(sensor_size=(W, H, P), n_time_bins=T)"}


def test_npy_of_one_recording(tmp_path):
    recordings, _ = digits_recordings(1)
    np.save(tmp_path / "one.npy", recordings[0])
    samples = load_samples(str(tmp_path / "one.npy"), timesteps=3, sensor_size=SENSOR)
    assert samples.x.shape == (3, 1, 2, 8, 8) and samples.y is None


def test_plain_npy_is_x(tmp_path):
    np.save(tmp_path / "frames.npy", np.zeros((2, 1, 8, 8), np.float32))
    assert load_samples(str(tmp_path / "frames.npy")).x.shape == (2, 1, 8, 8)


def _error(path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_samples(str(path), **({"timesteps": 4, "sensor_size": SENSOR} | kwargs))
    return info.value.message


def test_bad_files(tmp_path):
    recordings, labels = digits_recordings(3)
    path = save_npz(tmp_path / "ev.npz", recordings, labels)
    assert "binning them needs the sensor size and T" in _error(path, sensor_size=None)
    assert "binning them needs the sensor size and T" in _error(path, timesteps=None)
    assert "recording 'arr_0' has x in 2..6, outside the sensor's 0..3" in _error(path, sensor_size=(4, 8, 2))
    np.savez(tmp_path / "mixed.npz", recordings[0], x=np.zeros((1, 2, 8, 8), np.float32))
    assert "mixes event recordings with other arrays (x)" in _error(tmp_path / "mixed.npz")
    assert "3 samples but y holds 2 labels" in _error(save_npz(tmp_path / "y.npz", recordings, labels[:2]))
    np.savez(tmp_path / "none.npz")
    assert "holds no arrays" in _error(tmp_path / "none.npz")
    np.save(tmp_path / "empty.npy", recordings[0][:0])
    assert "no event in any of the 1 recordings" in _error(tmp_path / "empty.npy")
    np.save(tmp_path / "objects.npy", np.array([recordings[0], recordings[1]], dtype=object), allow_pickle=True)
    assert "is not a readable .npy file" in _error(tmp_path / "objects.npy")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    assert "is not a readable .npy file" in _error(tmp_path / "junk.npy")
