"""Streaming log-mel features with fixed buffers, and the model-window assembler.

Feature contract (the lip-sync model is trained on exactly this code; its ONNX metadata names
FEATURE_SPEC and the engine refuses a model made for another spec):

- 16 kHz mono float32 in [-1, 1]; hop 160 samples (10 ms); window 400 samples (25 ms), Hann;
  512-point FFT; power spectrum; N_MELS triangular HTK-mel filters from 50 Hz to 8 kHz;
  natural log of (mel power + LOG_EPS).
- Windows are causal: mel frame j covers samples [160 (j+1) - 400, 160 (j+1)), zeros before
  the start. So model frame k (samples [640k, 640k+640): the model runs at 25 Hz whatever the
  video's fps, see mouth_rate) owns mel frames 4k..4k+3 and no feature of frame k looks past
  the end of its own audio.
- A model window for model frame k is mel frames [4k + 4 - past, 4k + 4 + ahead): `past`
  frames up to the end of frame k plus `ahead` frames of look-ahead (ahead * 10 ms of latency).
  Frames before the start or after the end of the audio are silence (LOG_FLOOR).
"""

from __future__ import annotations

import numpy as np

from dhlive_cli.timebase import HOP, SAMPLE_RATE

FEATURE_SPEC = "logmel40-causal-v1"
N_MELS = 40
WIN = 400
N_FFT = 512
F_MIN = 50.0
F_MAX = 8000.0
LOG_EPS = 1e-6
LOG_FLOOR = float(np.log(LOG_EPS))  # the feature value of digital silence


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, N_FFT // 2 + 1) float32 triangular filters, peak 1."""
    bins_hz = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), n_mels + 2))
    fb = np.zeros((n_mels, bins_hz.size), dtype=np.float64)
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins_hz - lo) / (mid - lo)
        falling = (hi - bins_hz) / (hi - mid)
        fb[i] = np.clip(np.minimum(rising, falling), 0.0, None)
    return fb.astype(np.float32)


class LogMelStream:
    """Turns successive blocks of samples into log-mel frames using only preallocated buffers.

    push() takes a multiple of HOP samples (at most max_hops * HOP) and writes one mel frame per
    hop into `out`. State is the last WIN - HOP samples, so a signal cut into any blocks gives
    the same frames as one push of the whole.
    """

    def __init__(self, max_hops: int, n_mels: int = N_MELS):
        self.max_hops = max_hops
        self.n_mels = n_mels
        keep = WIN - HOP
        self._keep = keep
        self._work = np.zeros(keep + max_hops * HOP, dtype=np.float32)
        self._window = np.hanning(WIN + 1)[:-1].astype(np.float32)  # periodic Hann
        self._frames = np.zeros((max_hops, N_FFT), dtype=np.float32)
        self._spec = np.zeros((max_hops, N_FFT // 2 + 1), dtype=np.complex64)
        self._power = np.zeros((max_hops, N_FFT // 2 + 1), dtype=np.float32)
        self._tmp = np.zeros_like(self._power)
        self._fb_t = np.ascontiguousarray(mel_filterbank(n_mels).T)
        self._fft_out = _fft_supports_out()

    def reset(self) -> None:
        self._work[: self._keep] = 0.0

    def push(self, samples: np.ndarray, out: np.ndarray) -> int:
        n = samples.shape[0]
        if n % HOP:
            raise ValueError(f"push() takes a multiple of {HOP} samples, got {n}")
        hops = n // HOP
        if hops > self.max_hops:
            raise ValueError(f"push() takes at most {self.max_hops * HOP} samples, got {n}")
        if hops == 0:
            return 0
        keep = self._keep
        work = self._work
        work[keep : keep + n] = samples
        # frame j = work[j*HOP : j*HOP + WIN]: a strided view, no copy
        view = np.lib.stride_tricks.as_strided(
            work, shape=(hops, WIN), strides=(HOP * work.strides[0], work.strides[0]), writeable=False
        )
        frames = self._frames[:hops]
        np.multiply(view, self._window, out=frames[:, :WIN])
        spec = self._spec[:hops]
        if self._fft_out:
            np.fft.rfft(frames, axis=1, out=spec)
        else:  # numpy < 2: rfft allocates its result
            spec[...] = np.fft.rfft(frames, axis=1)
        power = self._power[:hops]
        tmp = self._tmp[:hops]
        np.square(spec.real, out=power)
        np.square(spec.imag, out=tmp)
        power += tmp
        mel = out[:hops]
        np.matmul(power, self._fb_t, out=mel)
        mel += LOG_EPS
        np.log(mel, out=mel)
        # keep the tail for the next push (memmove of WIN - HOP samples)
        work[:keep] = work[n : n + keep]
        return hops


def _fft_supports_out() -> bool:
    try:
        a = np.zeros((1, N_FFT), dtype=np.float32)
        o = np.zeros((1, N_FFT // 2 + 1), dtype=np.complex64)
        np.fft.rfft(a, axis=1, out=o)
        return True
    except TypeError:
        return False


def logmel(audio: np.ndarray, n_mels: int = N_MELS) -> np.ndarray:
    """Whole-signal log-mel, (len(audio) // HOP, n_mels): the offline twin of LogMelStream."""
    audio = np.asarray(audio, dtype=np.float32)
    hops = audio.shape[0] // HOP
    out = np.empty((hops, n_mels), dtype=np.float32)
    stream = LogMelStream(max_hops=max(hops, 1), n_mels=n_mels)
    stream.push(audio[: hops * HOP], out)
    return out


def model_windows(mel: np.ndarray, n_frames: int, past: int, ahead: int, hops_per_frame: int = 4) -> np.ndarray:
    """Offline windows (n_frames, past + ahead, n_mels) for a whole utterance's mel frames."""
    n_mels = mel.shape[1]
    pad_front = max(past - hops_per_frame, 0)
    need = n_frames * hops_per_frame + ahead
    padded = np.full((pad_front + need, n_mels), LOG_FLOOR, dtype=np.float32)
    m = min(mel.shape[0], need)
    padded[pad_front : pad_front + m] = mel[:m]
    start0 = hops_per_frame - past + pad_front  # index of frame 0's first window row
    win = np.lib.stride_tricks.sliding_window_view(padded, past + ahead, axis=0)
    # sliding_window_view puts the window axis last: (n, n_mels, T) -> (n, T, n_mels)
    idx = start0 + hops_per_frame * np.arange(n_frames)
    return np.ascontiguousarray(win[idx].transpose(0, 2, 1))


class WindowAssembler:
    """Collects streamed mel frames and emits model windows for whole video frames.

    Preallocated: `feed()` appends mel frames; `take(out)` copies the windows of every frame
    whose look-ahead has arrived (at most out.shape[0]) into `out` and returns how many.
    `finish()` appends the trailing silence so the last frames can be taken.
    """

    def __init__(self, past: int, ahead: int, max_frames: int, hops_per_frame: int = 4, n_mels: int = N_MELS):
        self.past, self.ahead, self.hpf = past, ahead, hops_per_frame
        self.T = past + ahead
        self.pad_front = max(past - hops_per_frame, 0)
        cap = self.pad_front + (max_frames + 2) * hops_per_frame + ahead + hops_per_frame
        self._buf = np.empty((cap, n_mels), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._buf[: self.pad_front] = LOG_FLOOR
        self._count = self.pad_front
        # row of the next frame's first window entry
        self._next = self.hpf - self.past + self.pad_front

    @property
    def free_rows(self) -> int:
        return self._buf.shape[0] - self._count

    def feed(self, mel: np.ndarray) -> None:
        n = mel.shape[0]
        if n > self.free_rows:
            self._compact()
            if n > self.free_rows:
                raise ValueError("WindowAssembler overflow: take() windows before feeding more")
        self._buf[self._count : self._count + n] = mel
        self._count += n

    def finish(self) -> None:
        """End of stream: silence for the look-ahead of the last frames."""
        pad = self.ahead
        if pad > self.free_rows:
            self._compact()
        self._buf[self._count : self._count + pad] = LOG_FLOOR
        self._count += pad

    def ready(self) -> int:
        avail = self._count - self._next - self.T
        return 0 if avail < 0 else avail // self.hpf + 1

    def take(self, out: np.ndarray, limit: int | None = None) -> int:
        n = min(self.ready(), out.shape[0], limit if limit is not None else out.shape[0])
        if n <= 0:
            return 0
        hpf, T, s = self.hpf, self.T, self._next
        for i in range(n):
            out[i] = self._buf[s + i * hpf : s + i * hpf + T]
        self._next += n * hpf
        return n

    def _compact(self) -> None:
        # drop rows no future window can reach; keep everything from the next window's start
        s = self._next
        if s <= 0:
            return
        keep = self._count - s
        self._buf[:keep] = self._buf[s : self._count]
        self._count = keep
        self._next = 0
