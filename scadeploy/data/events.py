"""Event-camera input: recordings as tonic gives them binned into frames, and events made from still images.

Recordings (`to_frames`, `recordings_to_sequence`): one structured numpy array per sample with the
fields `x`, `y`, `t`, `p` (tonic's dtype: integer pixel coordinates, `t` in integer microseconds sorted
ascending, `p` the polarity as bool or integer), binned into T frames `[T, P, H, W]` of event counts
exactly as `tonic.transforms.ToFrame(sensor_size=(W, H, P), n_time_bins=T)` does (tonic 1.7,
`tonic/functional/to_frame.py` and `SliceByTimeBins` in `tonic/slicers.py`): the bin width is
`(t[-1] - t[0]) // T` in integer microseconds, bin i holds the events with
`t[0] + i * width <= t < t[0] + (i + 1) * width` (so events in the remainder after the last bin, the
last event among them, are dropped, and a recording shorter than T microseconds gives empty frames),
and channel c counts the events with `p == c` (with one polarity, every event, as long as all share
one value). tonic is not needed at run time; the tests compare against it when it is installed. What
tonic would index wrongly or silently wrap is refused instead: coordinates outside the sensor,
unsorted times, more than 32767 events at one pixel in one bin (tonic's int16 frames).

Made from images (`frames_to_events`): a DVS pixel reports ON when its log brightness rises by more
than a contrast threshold and OFF when it falls. Sliding an image by one pixel per step and
thresholding the difference of consecutive frames gives the same kind of tensor, `[T, N, 2, H, W]` of
0/1 spikes (channel 0 ON, channel 1 OFF), with nothing to download: the built-in `digits-events` data
and the tests use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from scadeploy.errors import DataError

EVENT_FIELDS = ("x", "y", "t", "p")
TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])  # as tonic's datasets
FRAME_COUNT_MAX = np.iinfo(np.int16).max  # tonic accumulates frames in int16
BINNING = "tonic.transforms.ToFrame(sensor_size=(W, H, P), n_time_bins=T)"


def is_recording(value: object) -> bool:
    """A structured numpy array (fields named), which is how an event recording is stored."""
    return isinstance(value, np.ndarray) and value.dtype.names is not None


def check_recording(events: np.ndarray, sensor_size: tuple[int, int, int], name: str) -> None:
    """One DataError naming the recording and the first problem: fields, dtypes, sensor range, time order."""
    missing = [f for f in EVENT_FIELDS if f not in events.dtype.names]
    if missing:
        raise DataError(f"recording '{name}' has fields {list(events.dtype.names)}, missing {missing}",
                        "event recordings are structured arrays with x, y, t, p (tonic's dtype)")
    if events.ndim != 1:
        raise DataError(f"recording '{name}' has shape {list(events.shape)}, expected one row per event")
    for field in EVENT_FIELDS:
        kind = events.dtype[field].kind
        if kind not in ("b" if field == "p" else "") + "iu" or events.dtype[field].shape:
            unit = "integer microseconds" if field == "t" else "bool or integers" if field == "p" else "integers"
            raise DataError(f"field '{field}' of recording '{name}' has dtype {events.dtype[field]}, expected {unit}",
                            "store events with tonic's dtype (x, y int16, t int64, p bool)")
    if events.size:
        _check_ranges(events, sensor_size, name)


def _check_ranges(events: np.ndarray, sensor_size: tuple[int, int, int], name: str) -> None:
    width, height, polarities = sensor_size
    for field, size in (("x", width), ("y", height)) + ((("p", polarities),) if polarities > 1 else ()):
        low, high = int(events[field].min()), int(events[field].max())
        if low < 0 or high >= size:
            raise DataError(f"recording '{name}' has {field} in {low}..{high}, outside the sensor's 0..{size - 1}",
                            "check --sensor-size W,H,P (tonic's order: width, height, polarities)")
    if polarities == 1 and np.unique(events["p"]).size > 1:
        raise DataError(f"recording '{name}' holds two polarities but the sensor has one",
                        "pass --sensor-size W,H,2")
    t = events["t"]
    if t.dtype == np.uint64 and int(t.max()) > np.iinfo(np.int64).max:
        raise DataError(f"recording '{name}' has timestamps beyond int64 microseconds")
    if bool((np.diff(t.astype(np.int64)) < 0).any()):
        raise DataError(f"recording '{name}' has timestamps out of order",
                        "sort it by time first: events = numpy.sort(events, order='t')")


def to_frames(events: np.ndarray, sensor_size: tuple[int, int, int], n_time_bins: int) -> np.ndarray:
    """`[n_time_bins, P, H, W]` int64 event counts of one checked recording, as tonic's ToFrame bins it."""
    width, height, polarities = sensor_size
    frames = np.zeros((n_time_bins, polarities, height, width), dtype=np.int64)
    if events.size == 0:
        return frames
    t = events["t"].astype(np.int64)
    window = (t[-1] - t[0]) // n_time_bins  # SliceByTimeBins, overlap 0
    starts = np.arange(n_time_bins) * window + t[0]
    first, last = np.searchsorted(t, starts), np.searchsorted(t, starts + window)
    p = np.zeros(events.size, dtype=np.int64) if polarities == 1 else events["p"].astype(np.int64)
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    for i, (a, b) in enumerate(zip(first, last, strict=True)):
        np.add.at(frames, (i, p[a:b], y[a:b], x[a:b]), 1)
    return frames


def recordings_to_sequence(recordings: Mapping[str, np.ndarray] | Sequence[np.ndarray],
                           sensor_size: tuple[int, int, int], timesteps: int,
                           max_elements: int = 1 << 31) -> torch.Tensor:
    """Recordings (a list, or name -> events), checked and binned into a float32 sequence `[T, N, P, H, W]`
    of event counts; a problem names the recording (its key, or its index in the list)."""
    if not isinstance(recordings, Mapping):
        recordings = {str(i): events for i, events in enumerate(recordings)}
    width, height, polarities = sensor_size
    if not recordings:
        raise DataError("no event recordings given")
    size = timesteps * len(recordings) * polarities * height * width
    if size > max_elements:
        raise DataError(f"{len(recordings)} recordings binned into T={timesteps} frames of {sensor_size} would be "
                        f"{size:,} values, more than the {max_elements:,} scadeploy reads at once",
                        "pass fewer recordings or a smaller -T")
    for name, events in recordings.items():
        check_recording(events, sensor_size, name)
    if not any(events.size for events in recordings.values()):
        raise DataError(f"no event in any of the {len(recordings)} recordings", "nothing to bin into frames")
    x = np.zeros((timesteps, len(recordings), polarities, height, width), dtype=np.float32)
    for i, (name, events) in enumerate(recordings.items()):
        frames = to_frames(events, sensor_size, timesteps)
        if frames.size and int(frames.max()) > FRAME_COUNT_MAX:
            raise DataError(f"recording '{name}' has {int(frames.max()):,} events at one pixel in one of the "
                            f"T={timesteps} bins, more than the {FRAME_COUNT_MAX} tonic's int16 frames hold",
                            "bin into more steps (-T)")
        x[:, i] = frames
    return torch.from_numpy(x)


def shifted_sequence(images: torch.Tensor, timesteps: int) -> torch.Tensor:
    """`[N, C, H, W]` -> `[T + 1, N, C, H, W]`: frame t is the image shifted right by t pixels (zero fill)."""
    frames = [images]
    for t in range(1, timesteps + 1):
        shifted = torch.zeros_like(images)
        shifted[..., t:] = images[..., : images.shape[-1] - t]
        frames.append(shifted)
    return torch.stack(frames)


def frames_to_events(images: torch.Tensor, timesteps: int, threshold: float = 0.25) -> torch.Tensor:
    """Binary ON/OFF events `[T, N, 2 * C, H, W]` (float32 0/1) of the image moving right one pixel per step."""
    frames = shifted_sequence(images.float(), timesteps)
    diff = frames[1:] - frames[:-1]
    return torch.cat([(diff > threshold), (diff < -threshold)], dim=2).float()
