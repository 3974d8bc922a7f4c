"""The engine's one clock: the audio sample count.

Everything in the core is an integer in a named time base: samples at 16 kHz, mel hops at
100 Hz, video frames at the engine fps. Video frame k carries samples
[k * samples_per_frame, (k + 1) * samples_per_frame), so A/V sync is exact by construction.
"""

from dataclasses import dataclass

SAMPLE_RATE = 16_000
HOP = 160  # samples per mel frame (10 ms)


@dataclass(frozen=True, slots=True)
class Timebase:
    fps: int = 25

    def __post_init__(self) -> None:
        if self.fps <= 0 or SAMPLE_RATE % self.fps or (SAMPLE_RATE // self.fps) % HOP:
            # Only rates whose frame is a whole number of 10 ms hops keep the clock integral.
            raise ValueError(
                f"fps must divide {SAMPLE_RATE} into a whole number of 10 ms hops "
                "(e.g. 10, 20, 25, 50)"
            )

    @property
    def samples_per_frame(self) -> int:
        return SAMPLE_RATE // self.fps

    @property
    def hops_per_frame(self) -> int:
        return self.samples_per_frame // HOP

    @property
    def frame_ns(self) -> int:
        return 1_000_000_000 // self.fps

    def frames_for_samples(self, n_samples: int) -> int:
        """Frames needed to show n_samples: round(duration * fps), the last partial tick padded."""
        spf = self.samples_per_frame
        return (n_samples + spf // 2) // spf

    def frame_start_sample(self, k: int) -> int:
        return k * self.samples_per_frame
