"""PreviewTap: what the draw thread hands to browser viewers, without a browser."""

from __future__ import annotations

import threading

import numpy as np

from dhlive_cli.live.preview import AUDIO_TICKS, PreviewTap

H, W, N = 36, 64, 640


def frame(v: int) -> np.ndarray:
    return np.full((H * 3 // 2, W), v, np.uint8)


def test_nothing_is_copied_or_allocated_while_nobody_watches():
    tap = PreviewTap(H, W, N, max_viewers=2)
    tap.offer(frame(1), 0, np.zeros(N, np.float32))
    assert tap.ticks == 0 and tap.hold_latest(-1) == (-1, -1)
    assert tap._ring is None  # buffers come with the first viewer


def test_viewers_get_the_newest_frame_and_every_audio_tick_in_order():
    tap = PreviewTap(H, W, N, max_viewers=2)
    woken = []
    cb = lambda: woken.append(1)  # noqa: E731
    assert tap.attach(cb)
    for k in range(5):
        tap.offer(frame(10 + k), k, np.full(N, k, np.float32))
    assert len(woken) == 5
    slot, tick = tap.hold_latest(-1)
    assert tick == 4 and tap.frames[slot][0, 0] == 14
    tap.offer(frame(99), 5, np.full(N, 5, np.float32))  # a newer frame while the viewer still reads
    assert tap.frames[slot][0, 0] == 14  # what a viewer holds does not change under it
    tap.release(slot)
    assert tap.hold_latest(5) == (-1, -1)  # nothing newer than what it has
    s2, t2 = tap.hold_latest(4)
    assert t2 == 5 and tap.frames[s2][0, 0] == 99
    tap.release(s2)
    # a repeated picture (None) keeps the frame and moves its tick; the audio still arrives
    tap.offer(None, 6, np.full(N, 6, np.float32))
    s3, t3 = tap.hold_latest(5)
    assert t3 == 6 and tap.frames[s3][0, 0] == 99
    tap.release(s3)
    out = np.empty(N, np.float32)
    assert [tap.read_audio(p, out)[0] for p in range(7)] == list(range(7))
    assert tap.read_audio(7, out) == (-1, 0)  # not yet


def test_a_reader_far_behind_skips_forward_and_counts_it():
    tap = PreviewTap(H, W, N)
    tap.attach(lambda: None)
    for k in range(AUDIO_TICKS + 10):
        tap.offer(frame(k % 200), k, np.full(N, k, np.float32))
    out = np.empty(N, np.float32)
    got, skipped = tap.read_audio(0, out)
    assert got == AUDIO_TICKS + 8 and skipped == AUDIO_TICKS + 8 and out[0] == got


def test_offer_never_waits_even_with_every_viewer_holding_a_frame():
    tap = PreviewTap(H, W, N, max_viewers=2)
    cbs = [lambda: None, lambda: None]
    assert all(tap.attach(c) for c in cbs)
    assert not tap.attach(lambda: None)  # max_viewers
    tap.offer(frame(1), 0, np.zeros(N, np.float32))
    held = [tap.hold_latest(-1)[0]]
    tap.offer(frame(2), 1, np.zeros(N, np.float32))
    held.append(tap.hold_latest(0)[0])
    done = threading.Event()

    def draw():
        for k in range(2, 200):
            tap.offer(frame(k % 256), k, np.zeros(N, np.float32))
        done.set()

    t = threading.Thread(target=draw)
    t.start()
    assert done.wait(10)  # would hang if an offer waited for a slot
    t.join()
    assert tap.skipped_frames == 0  # max_viewers + 2 slots: one is always free
    for s in held:
        tap.release(s)


def test_detach_really_removes_a_bound_method_listener():
    class Viewer:
        calls = 0

        def on_tick(self):
            self.calls += 1

    tap = PreviewTap(H, W, N)
    v = Viewer()
    tap.attach(v.on_tick)
    tap.offer(frame(1), 0, np.zeros(N, np.float32))
    tap.detach(v.on_tick)  # a new bound-method object, equal to the one attached
    assert tap.viewers == 0 and not tap._listeners and not tap.active
    tap.offer(frame(2), 1, np.zeros(N, np.float32))
    assert v.calls == 1
    tap.detach(v.on_tick)  # idempotent
    assert tap.viewers == 0


def test_ticks_of_a_30_fps_session_keep_their_own_length_and_clock_position():
    """At 30 fps a tick holds 533 or 534 samples (timebase): each is handed out with its length
    and its first sample on the session's 16 kHz clock, so a viewer's audio has no gaps."""
    from dhlive_cli.timebase import Timebase

    tb = Timebase(30)
    tap = PreviewTap(H, W, tb.max_frame_samples(), fps=30)
    tap.attach(lambda: None)
    for k in range(6):
        tap.offer(frame(k), k, np.full(tb.frame_samples(k), k + 1, np.float32))
    out = np.empty(tb.max_frame_samples(), np.float32)
    seen = [tap.read_audio_at(p, out)[2:] for p in range(6)]
    assert seen == [(tb.frame_samples(k), tb.frame_start(k)) for k in range(6)]
    assert [n for n, _ in seen] == [533, 533, 534, 533, 533, 534]
    got, _, n, start = tap.read_audio_at(2, out)
    assert n == 534 and start == 1066 and (out[:n] == 3).all()
    got, _, n, _ = tap.read_audio_at(3, out)
    assert n == 533 and out[n] == 0.0  # the row's tail past a shorter tick is silence
