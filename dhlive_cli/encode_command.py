"""What an encoder ffmpeg is told: the settings of one output and the command line made of them.

EncoderOptions (x264 or NVENC, CRF, threads, AAC, keyframe interval, live's zero-latency and
queue sizes), build_encode_command (raw I420 frames on stdin plus float32 PCM on a second pipe
in, H.264 + AAC in mp4/Matroska/flv out) and encoder_env (the child's malloc settings). The
process itself is sinks.FfmpegSink's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dhlive_cli.errors import EngineError
from dhlive_cli.ffmpeg_bin import ffmpeg_path
from dhlive_cli.timebase import SAMPLE_RATE

# x264 speed presets -> NVENC's p1 (fastest) .. p7 (slowest), nearest in intent
_NVENC_PRESET = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                 "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7"}


@dataclass(frozen=True, slots=True)
class EncoderOptions:
    """Video/audio encoder settings of one FfmpegSink.

    codec: "libx264" (CPU) or "h264_nvenc" (NVIDIA GPU; see hwenc.pick_video_codec).
    preset: x264 speed/size trade-off (mapped to NVENC p1..p7). crf: x264 quality (NVENC -cq).
    threads: encoder threads, 0 = x264 picks (1.5 x cores, frame threads plus look-ahead).
    tune: x264 --tune, e.g. "zerolatency" for live: no B-frames, no rate-control look-ahead, so
    no frames are held back (less latency, far less memory per encoder).
    lookahead: x264 rc-lookahead in frames (None = the preset's/tune's own).
    input_queue: packets ffmpeg may buffer per input (raw frames are large: 64 at 720p is 88 MB
    of address space if the encoder stalls; live keeps it small).
    maxrate, bufsize: a video bit-rate cap for ingest servers that require one, in ffmpeg's
    notation ("2500k"): x264's VBV on top of CRF ("capped CRF"), NVENC's maxrate; None: no cap.
    aac_coder: ffmpeg's AAC quantiser search, "twoloop" (its default: best quality per bit) or
    "fast" (live: about half the CPU; see build_encode_command).
    reuse_freed: the encoder's allocator keeps freed frame-sized blocks for reuse instead of
    giving them back to the system (encoder_env). ffmpeg's raw-video reader allocates each
    frame's packet anew; given back each time, every frame cost page faults that zero its
    pages again: a 20 s 720p render took 0.68-1.12 s of system CPU, 0.46-0.52 s with this
    (three alternating runs each). For renders; live encoders keep glibc's defaults (at 360p no
    CPU was saved and each encoder's PSS grew by 2 MB).
    """

    preset: str = "veryfast"
    crf: int = 23
    threads: int = 0
    audio_bitrate: str = "128k"
    gop_seconds: float = 2.0  # keyframe interval; live needs <= 2 s so late joiners start fast
    codec: str = "libx264"
    tune: str | None = None
    lookahead: int | None = None
    input_queue: int = 64
    maxrate: str | None = None
    bufsize: str | None = None
    aac_coder: str = "twoloop"
    reuse_freed: bool = False


def video_args(enc: EncoderOptions, fps: int) -> dict:
    """ffmpeg output options for the video stream of enc, as {option name: value} (see _options)."""
    g = max(1, int(round(enc.gop_seconds * fps)))
    if enc.codec == "h264_nvenc":
        args = {"vcodec": "h264_nvenc", "preset": _NVENC_PRESET.get(enc.preset, "p4"), "rc": "vbr",
                "cq": enc.crf, "b:v": 0, "g": g, "pix_fmt": "yuv420p"}
        if enc.tune == "zerolatency":
            args.update({"tune": "ll", "zerolatency": 1, "bf": 0, "rc-lookahead": 0})
        return _capped(args, enc)
    if enc.codec != "libx264":
        raise EngineError(f"unknown video codec {enc.codec!r}")
    args = {"vcodec": "libx264", "pix_fmt": "yuv420p", "preset": enc.preset, "crf": enc.crf, "g": g,
            "threads": enc.threads}
    if enc.tune:
        args["tune"] = enc.tune
    if enc.lookahead is not None:
        args["rc-lookahead"] = enc.lookahead
    return _capped(args, enc)


def _capped(args: dict, enc: EncoderOptions) -> dict:
    if enc.maxrate:
        args["maxrate"] = enc.maxrate
        args["bufsize"] = enc.bufsize or enc.maxrate  # one second of the cap when not given
    return args


STREAM_AUDIO = (48000, 2)  # what RTMP ingest expects (and what live recordings get too)
# ffmpeg opens its inputs one after the other and reads the audio in packets of 1024 samples
# (64 ms at 16 kHz): while it waits for audio, the video pipe (64 KB by default: less than one
# frame) fills up and our write blocks before we have sent that audio. Measured here: at 60 fps
# with 16 kHz audio the encoder hung at start, and later with a 4-packet input queue. So the
# audio pipe gets this much silence first, which ffmpeg cuts off again (atrim, exact to the
# sample), and the input queues hold at least two audio packets' worth of frames.
AUDIO_LEAD_S = 0.1


def audio_lead(rate: int) -> int:
    """Samples of silence written ahead of the audio (cut again by the encoder): 100 ms."""
    return max(1, int(rate * AUDIO_LEAD_S))


def _options(kw: dict) -> list[str]:
    """ffmpeg options from a dict, in name order: {"crf": 23, "b:v": 0} -> ["-b:v", "0", "-crf", "23"]."""
    return [arg for name in sorted(kw) for arg in (f"-{name}", str(kw[name]))]


def build_encode_command(target: str, fmt: str, width: int, height: int, fps: int, audio_fd: int,
                         enc: EncoderOptions, movflags: str | None, pix_fmt: str = "yuv420p",
                         flush_s: float | None = None, log_level: str = "error", audio_rate: int = SAMPLE_RATE,
                         audio_channels: int = 1, audio_out: tuple[int, int] | None = None) -> list[str]:
    """The ffmpeg argument list: raw `pix_fmt` frames (yuv420p or bgr24) on stdin, interleaved
    float32 PCM at `audio_rate` Hz with `audio_channels` channels on `audio_fd`,
    H.264 + AAC into `target` as `fmt` (an ffmpeg muxer name: mp4, matroska, flv).

    audio_out: (rate, channels) of the AAC track; None keeps the input's (a render keeps its
    source's quality), except flv, which always gets STREAM_AUDIO (48 kHz stereo). When the track's
    rate is above the input's, AAC's bandwidth (-cutoff) is the input's Nyquist frequency: the
    bands above it are empty, and skipping them halves the AAC encoder's CPU.

    flush_s: for a recording that may be cut off at any moment (a kill, a power loss), write
    what is muxed to the file at least this often (seconds), so all but that much stays
    playable: mp4 in fragments of at most flush_s (movflags must ask for fragments), Matroska
    in clusters of at most flush_s, each packet written out at once. None: the muxer's own
    buffering (a Matroska file stays empty for tens of seconds at low bit rates).

    log_level: ffmpeg's -loglevel; anything above "error" also turns the progress line off
    (PublishLog reads an RTMP encoder's "level+verbose" log)."""
    # frames per 1024-sample audio packet, twice, plus slack (see AUDIO_LEAD_S)
    queue = max(enc.input_queue, 2 * -(-fps * 1024 // audio_rate) + 4)
    video = ["-f", "rawvideo", *_options(dict(pix_fmt=pix_fmt, s=f"{width}x{height}", framerate=fps,
                                              thread_queue_size=queue, probesize=32, analyzeduration=0)), "-i", "pipe:0"]
    # Raw inputs need no probing; without these limits ffmpeg reads seconds of audio before it
    # takes the first frame, while we wait to write that frame: a deadlock.
    audio = ["-f", "f32le", *_options(dict(ar=audio_rate, ac=audio_channels, thread_queue_size=queue, probesize=32,
                                           analyzeduration=0)), "-i", f"pipe:{audio_fd}"]
    out_rate, out_channels = audio_out or (STREAM_AUDIO if fmt == "flv" else (audio_rate, audio_channels))
    out_kwargs = {
        **video_args(enc, fps),
        "acodec": "aac", "ar": out_rate, "ac": out_channels,
        "af": f"atrim=start_sample={audio_lead(audio_rate)},asetpts=PTS-STARTPTS",  # the lead's silence
    }
    if out_rate > audio_rate:
        # Upsampled audio (live's 16 kHz speech sent as 48 kHz for RTMP ingest) holds nothing above
        # the input's Nyquist: telling AAC so makes it skip the empty bands' quantiser search, which
        # was most of a live encoder's CPU (twoloop, 128k stereo, 20 s: 1.45 s of CPU -> 0.73 s)
        out_kwargs["cutoff"] = audio_rate // 2
    if enc.aac_coder != "twoloop":
        out_kwargs["aac_coder"] = enc.aac_coder
        if enc.aac_coder == "fast":
            # Live speech: no perceptual noise substitution and no temporal noise shaping. 30 s
            # of 16 kHz speech as 128k 48 kHz stereo, three alternating runs (2026-12-02): CPU
            # 0.71-0.77 s -> 0.55-0.65 s, decoded SNR against the 48 kHz input 36.6 -> 36.7 dB
            out_kwargs["aac_pns"] = 0
            out_kwargs["aac_tns"] = 0
        if enc.aac_coder == "fast" and audio_channels == 1 and out_channels == 2:
            # Both channels carry the same mono signal. The fast coder's per-band mid/side search
            # then spends about half of the encoder's CPU to find what is known: measured on 60 s of
            # 16 kHz speech sent as 128k 48 kHz stereo, twoloop 1.43 s of CPU (decoded SNR 38.5
            # dB), fast 1.42 s, fast without M/S 0.75 s (35.6 dB, 131 kb/s).
            out_kwargs["aac_ms"] = 0
    if movflags:
        out_kwargs["movflags"] = movflags
        if "empty_moov" in movflags:
            # an edit list absorbs the AAC encoder's priming delay; without one the muxer shifts
            # the video instead and the first frame lasts 21 ms (48 kHz) to 64 ms (16 kHz) longer
            out_kwargs["use_editlist"] = 1
    if flush_s is not None:
        if fmt == "mp4":
            out_kwargs["frag_duration"] = int(flush_s * 1_000_000)  # microseconds
        elif fmt == "matroska":
            out_kwargs["cluster_time_limit"] = int(flush_s * 1000)  # milliseconds
        out_kwargs["flush_packets"] = 1
    out = ["-map", "0", "-map", "1", "-f", fmt, "-b:a", enc.audio_bitrate, *_options(out_kwargs), target, "-y"]
    # -nostdin would close our video pipe; quiet logging keeps stderr small and useful
    quiet = ["-hide_banner", "-loglevel", log_level] + ([] if log_level == "error" else ["-nostats"])
    return [ffmpeg_path(), *quiet, *video, *audio, *out]


# glibc's allocator settings for an encoder that reuses freed frames (EncoderOptions.reuse_freed):
# blocks up to 32 MB (the most glibc's own dynamic threshold reaches) come from the heap, and up
# to 256 MB of free heap is kept rather than given back to the system
_REUSE_FREED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"


def encoder_env(enc: EncoderOptions) -> dict | None:
    """The environment of the ffmpeg child for enc: None (ours, unchanged) unless
    enc.reuse_freed, which adds _REUSE_FREED to GLIBC_TUNABLES (tunables the caller set win).
    glibc ignores tunables it does not know; other C libraries ignore the variable."""
    if not enc.reuse_freed:
        return None
    env = dict(os.environ)
    have = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    names = {t.split("=", 1)[0] for t in have}
    env["GLIBC_TUNABLES"] = ":".join(have + [t for t in _REUSE_FREED.split(":") if t.split("=", 1)[0] not in names])
    return env


def frame_bytes(width: int, height: int, pix_fmt: str) -> int:
    """Bytes of one raw frame: yuv420p 1.5 per pixel, bgr24 3."""
    if pix_fmt == "yuv420p":
        return width * height * 3 // 2
    if pix_fmt == "bgr24":
        return width * height * 3
    raise ValueError(f"unsupported raw pixel format {pix_fmt!r}")


__all__ = ["AUDIO_LEAD_S", "STREAM_AUDIO", "EncoderOptions", "audio_lead", "build_encode_command", "encoder_env",
           "frame_bytes", "video_args"]
