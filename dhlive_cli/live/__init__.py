"""Live streaming: a fixed-rate stream on the engine's clock, idle when silent, talking when fed.

    inputs --push--> SpeechBuffer (bounded seconds) --pull 1 frame per tick--> clock thread:
        MouthAnalyzer (whole 40 ms model frames as they fill) -> MouthResampler (video fps;
        mouth of frame k - lag out) -> state envelope -> avatar
        -> one bounded drop-oldest queue per output -> encode thread per output -> ffmpeg

The clock thread runs at deadline = t0 + floor(k * 1e9 / fps) ns, never "sleep one frame"; tick
k pulls the 16 kHz samples [floor(16000 k / fps), floor(16000 (k + 1) / fps)). Audio tick k
is pulled at tick k and written with video frame k, delayed together by the model's look-ahead,
so picture and sound cannot drift. When drawing falls behind, the previous frame is repeated
(counted as late) and the audio still goes out: the lag never accumulates.

Modules, in the order the data flows:

    speech.py     SpeechBuffer: the bounded ring every input pushes into
    conductor.py  TickConductor: the one clock of the process, batching inference across sessions
    session.py    LiveSession: per-session mouth track, state envelope and draw thread
    outputs.py    HoldRing (frames shared by several queues) and Output (encode thread + reconnects)
    options.py    LiveOptions
"""

from dhlive_cli.live.conductor import TickConductor
from dhlive_cli.live.options import LiveOptions
from dhlive_cli.live.outputs import HoldRing, Output
from dhlive_cli.live.session import LiveSession, LiveStats
from dhlive_cli.live.speech import SpeechBuffer

__all__ = ["LiveSession", "LiveStats", "LiveOptions", "SpeechBuffer", "HoldRing", "Output", "TickConductor"]
