"""The engine's clocks: integer sample counts and an exact rational frame grid.

Everything in the core is an integer in a named time base: samples at 16 kHz (the analysis
stream), samples at the output audio's own rate, mel hops at 100 Hz, model frames at 25 Hz and
video frames at the session fps (any whole number from 1 to 60).

Video frame k covers the samples [floor(k * rate / fps), floor((k + 1) * rate / fps)) of a
stream at `rate` Hz, and is due k / fps seconds after the start (k * 10**9 // fps ns). Both are
computed from k alone, never by adding a frame length to the previous value, so nothing drifts:
at 30 fps a 16 kHz stream gives frames of 533, 533 and 534 samples, 1600 every 3 frames, and
frame 108000 (one hour) starts at exactly 3600 s.

The mouth model has its own fixed rate (MODEL_FPS, 40 ms frames of 4 hops): it was trained on
25 Hz labels and its smoothing constants are per 40 ms. Its track is resampled to the video rate
by mouth_rate.MouthResampler.
"""

from dataclasses import dataclass

SAMPLE_RATE = 16_000  # the analysis stream: mono float32 at 16 kHz
HOP = 160  # samples per mel frame (10 ms)
MODEL_FPS = 25  # the mouth model's frame rate (its training labels are 40 ms apart)
MODEL_FRAME = SAMPLE_RATE // MODEL_FPS  # 640 samples of 16 kHz audio per model frame
MODEL_HOPS = MODEL_FRAME // HOP  # 4 mel hops per model frame
MIN_FPS, MAX_FPS = 1, 60


def check_fps(fps) -> int:
    """fps as an int, or ValueError (with the accepted range) for anything but a whole 1..60."""
    if isinstance(fps, bool) or not isinstance(fps, int) or not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"fps must be a whole number from {MIN_FPS} to {MAX_FPS}, not {fps!r}")
    return fps


@dataclass(frozen=True, slots=True)
class Timebase:
    """The video frame grid at `fps` frames per second (1..60) over audio streams of any rate.

    Raises ValueError for an fps outside 1..60. All results are exact integers (floor division
    of k * rate by fps), so frame boundaries never drift however long a stream runs.
    """

    fps: int = 25

    def __post_init__(self) -> None:
        check_fps(self.fps)

    def frame_start(self, k: int, rate: int = SAMPLE_RATE) -> int:
        """First sample of video frame k in a stream at `rate` Hz: floor(k * rate / fps)."""
        return k * rate // self.fps

    def frame_samples(self, k: int, rate: int = SAMPLE_RATE) -> int:
        """Samples of video frame k at `rate` Hz (rate / fps, rounded down or up)."""
        return (k + 1) * rate // self.fps - k * rate // self.fps

    def max_frame_samples(self, rate: int = SAMPLE_RATE) -> int:
        """The most samples any frame holds at `rate` Hz: ceil(rate / fps)."""
        return -(-rate // self.fps)

    def frames_for_samples(self, n_samples: int, rate: int = SAMPLE_RATE) -> int:
        """Frames that show all of n_samples at `rate` Hz: ceil(n * fps / rate), the last one
        partly silent. The video is then at most one frame longer than the audio."""
        return -(-n_samples * self.fps // rate)

    def frame_time_ns(self, k: int) -> int:
        """When frame k is due, in ns after frame 0: floor(k * 1e9 / fps)."""
        return k * 1_000_000_000 // self.fps

    @property
    def frame_ns(self) -> int:
        """Nominal frame length in ns (rounded down); schedule with frame_time_ns(k), not this."""
        return 1_000_000_000 // self.fps
