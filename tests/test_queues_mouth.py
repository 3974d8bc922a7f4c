import threading

import numpy as np
import pytest

from dhlive_cli.mouth import CLOSED_OPEN, MouthTrack, frame_rms
from dhlive_cli.queues import BoundedQueue, Cancelled


def test_drop_oldest_never_blocks_and_counts():
    q = BoundedQueue("t", 3, "drop_oldest")
    for i in range(10):
        q.put(i)
    assert len(q) == 3 and q.dropped == 7
    assert [q.get(), q.get(), q.get()] == [7, 8, 9]


def test_block_policy_waits_and_cancel_unblocks():
    cancel = threading.Event()
    q = BoundedQueue("t", 1, "block", cancel)
    q.put(1)
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(Cancelled):
        q.put(2)  # full: waits until cancelled


def test_mouth_closes_within_120ms_after_speech():
    track = MouthTrack()
    n = 20
    raw = np.zeros((n, 4), np.float32)
    raw[:10, 0] = 1.0  # speech for 10 frames, then the model says closed
    rms = np.full(n, 0.1, np.float32)
    rms[10:] = 0.0  # and the audio goes silent
    out = np.zeros((n, 4), np.float32)
    track.apply(raw, rms, out)
    assert out[9, 0] > 0.9
    assert out[12, 0] < CLOSED_OPEN  # 3 frames = 120 ms later


def test_silence_gate_overrides_model():
    track = MouthTrack()
    raw = np.ones((5, 4), np.float32)
    out = np.zeros((5, 4), np.float32)
    track.apply(raw, np.zeros(5, np.float32), out)
    assert np.all(out[:, 0] == 0)


def test_frame_rms():
    a = np.concatenate([np.zeros(640), np.ones(640) * 0.5]).astype(np.float32)
    out = np.zeros(2, np.float32)
    frame_rms(a, 2, 640, out)
    assert out[0] == 0 and abs(out[1] - 0.5) < 1e-6


def test_mouth_shuts_for_a_short_closure_the_model_reports():
    """A 2-frame p/b/m inside speech: the model's open drops and its close rises to the
    lips-together value; the track's opening must follow at once, not one release step at a time."""
    n = 16
    raw = np.zeros((n, 4), np.float32)
    raw[:, 0] = 0.6
    raw[8:10, 0] = 0.05
    raw[8:10, 3] = 0.85  # closed lips (rest is 0.8, a pressed p/b/m 1.0)
    rms = np.full(n, 0.1, np.float32)  # voiced throughout: the gate does not close it
    out = np.zeros((n, 4), np.float32)
    MouthTrack().apply(raw, rms, out)
    assert out[7, 0] > 0.55
    assert out[8, 0] <= 0.25 * 0.6  # closed in the closure's first frame
    assert out[11, 0] > 0.5  # and open again after it


def test_a_dip_without_closure_keeps_the_smooth_release():
    """A dip of open alone (close stays low: no lip closure) still releases at `release`."""
    n = 12
    raw = np.zeros((n, 4), np.float32)
    raw[:, 0] = 0.6
    raw[8, 0] = 0.05
    raw[:, 3] = 0.2
    out = np.zeros((n, 4), np.float32)
    MouthTrack().apply(raw, np.full(n, 0.1, np.float32), out)
    assert abs(out[8, 0] - (out[7, 0] - 0.6 * (out[7, 0] - 0.05))) < 1e-5
