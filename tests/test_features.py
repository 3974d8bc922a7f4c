import numpy as np

from dhlive_cli.features import LOG_FLOOR, LogMelStream, WindowAssembler, logmel, model_windows


def test_streaming_equals_batch_for_any_block_cut():
    rng = np.random.default_rng(1)
    a = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    whole = logmel(a)
    stream = LogMelStream(max_hops=20)
    out = np.empty((20, 40), np.float32)
    got, i = [], 0
    for cut in [160, 640, 3200, 160 * 7, 640]:
        n = stream.push(a[i : i + cut], out)
        got.append(out[:n].copy())
        i += cut
    got = np.concatenate(got)
    assert np.abs(got - whole[: got.shape[0]]).max() < 1e-4


def test_digital_silence_is_log_floor():
    m = logmel(np.zeros(1600, np.float32))
    assert np.allclose(m, LOG_FLOOR)


def test_mel_tracks_energy():
    t = np.arange(16000) / 16000
    loud = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    # 40 dB quieter is 9.2 lower in natural-log power where the tone is
    assert logmel(loud)[10:].max(axis=1).mean() > logmel(loud * 0.01)[10:].max(axis=1).mean() + 8


def test_assembler_matches_offline_windows():
    rng = np.random.default_rng(2)
    mel = rng.standard_normal((4 * 30, 40)).astype(np.float32)
    for past, ahead in [(4, 0), (24, 8), (12, 6)]:
        want = model_windows(mel, 30, past, ahead)
        wa = WindowAssembler(past, ahead, max_frames=5)
        buf = np.empty((5, past + ahead, 40), np.float32)
        got = []
        for i in range(0, mel.shape[0], 8):
            wa.feed(mel[i : i + 8])
            while n := wa.take(buf):
                got.append(buf[:n].copy())
        wa.finish()
        while n := wa.take(buf):
            got.append(buf[:n].copy())
        got = np.concatenate(got)
        assert got.shape == want.shape
        assert np.array_equal(got, want)
        # the first frame's window starts before the audio: silence rows
        if past > 4:
            assert np.all(want[0, : past - 4] == LOG_FLOOR)
