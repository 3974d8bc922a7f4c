"""The WebSocket speech protocol against a real server and LiveSession: PCM at other rates and
channel counts (resampled, played at the right speed and pitch), utterance events in order,
an interrupted utterance, and bad parameters refused before the upgrade."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import aiohttp
import numpy as np
import pytest

from dhlive_cli.ffmpeg_bin import ffmpeg_path
from tests.test_api import engine, make_session, pcm16, run  # noqa: F401 - fixtures (serve: conftest)

pytestmark = pytest.mark.timeout(300)


def _decode_audio(path: str) -> np.ndarray:
    """The recording's sound as float32 mono at 48 kHz (fine steps for edge timing)."""
    out = subprocess.run([ffmpeg_path(), "-v", "error", "-i", path, "-vn", "-f", "f32le", "-ac", "1", "-ar", "48000",
                          "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.float32)


def _burst(x: np.ndarray, rate: int) -> tuple[float, float]:
    """(seconds, Hz) of the one tone burst in x: from the first to the last 1 ms block whose RMS
    is above half the burst's, and the spectral peak inside it."""
    block = rate // 1000
    env = np.sqrt(np.mean(x[: len(x) // block * block].reshape(-1, block) ** 2, axis=1))
    on = np.flatnonzero(env > 0.5 * np.percentile(env, 99))
    seg = x[on[0] * block : (on[-1] + 1) * block]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    return (on[-1] + 1 - on[0]) / 1000, float(np.argmax(spec)) * rate / len(seg)


@pytest.mark.parametrize("rate,channels", [(24000, 1), (44100, 2)])
def test_pcm_at_another_rate_plays_at_the_right_speed_and_events_follow_playback(make_session, serve, rate,  # noqa: F811
                                                                                  channels):
    s = make_session()
    srv = serve(s)
    seconds, freq = 2.0, 440.0
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    pcm = pcm16(np.repeat(x[:, None], channels, axis=1).reshape(-1))
    frame = 2 * channels
    # chunks of uneven sizes (whole frames): the resampler must carry its state across them
    sizes = np.random.default_rng(1).integers(37, 4000, size=4000) * frame
    cuts = np.concatenate([[0], np.cumsum(sizes)])
    cuts = cuts[cuts < len(pcm)].tolist() + [len(pcm)]

    async def go():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{srv.url}/v1/stream?rate={rate}&channels={channels}") as ws:
                await ws.send_str(json.dumps({"type": "start", "id": "tone-1"}))
                for a, b in zip(cuts, cuts[1:]):
                    await ws.send_bytes(pcm[a:b])
                await ws.send_str(json.dumps({"type": "end"}))
                pushed_to = s.speech._w  # the utterance ends here (nothing else feeds this session)
                got = []
                while len(got) < 2:
                    msg = await ws.receive_json(timeout=30)
                    got.append((msg, s.playback.position, time.monotonic()))
                return got, pushed_to

    (started, pos_started, _), (finished, pos_finished, _) = run(go())[0]
    assert started == {"type": "utterance_started", "id": "tone-1"}
    assert finished["type"] == "utterance_finished" and finished["id"] == "tone-1", finished
    assert "interrupted" not in finished
    assert abs(finished["duration_s"] - seconds) <= 0.01 * seconds, finished  # 16 kHz samples queued
    assert pos_finished >= s.speech.pushed_samples  # said when its last sample had gone out
    s.stop()
    # a tick the draw thread fell a whole queue behind on is skipped, its sound with it (counted);
    # on a starved machine that shortens the recording through no fault of the resampler
    lost = s.snapshot()["skipped_ticks"] / s.tb.fps
    heard, pitch = _burst(_decode_audio(s.outputs[0].target), 48000)
    heard += lost
    print(f"rate {rate} ch {channels}: heard {heard:.3f} s of {seconds} s, pitch {pitch:.1f} Hz, queued {finished['duration_s']} s, skipped {lost:.2f} s")
    assert abs(heard - seconds) <= 0.01 * seconds, heard  # 1.5x (3 s) if the rate were ignored
    assert abs(pitch - freq) <= 0.01 * freq, pitch


def test_interrupted_utterance_is_finished_as_interrupted(make_session, serve):  # noqa: F811
    s = make_session()
    srv = serve(s)
    pcm = pcm16(0.3 * np.sin(2 * np.pi * 300 * np.arange(24000 * 8) / 24000))

    async def go():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{srv.url}/v1/stream?rate=24000") as ws:
                for i in range(0, len(pcm), 9600):
                    await ws.send_bytes(pcm[i : i + 9600])
                await ws.send_str(json.dumps({"type": "end"}))
                events = [await ws.receive_json(timeout=30)]  # it starts playing...
                await ws.send_str(json.dumps({"type": "interrupt"}))  # ...and is cut off
                while len(events) < 3:
                    events.append(await ws.receive_json(timeout=30))
                # the next utterance gets the next id and plays whole
                await ws.send_bytes(pcm[:4800])
                await ws.send_str(json.dumps({"type": "end"}))
                while len(events) < 5:
                    events.append(await ws.receive_json(timeout=30))
                return events

    ev = run(go())
    assert ev[0] == {"type": "utterance_started", "id": "1"}
    kinds = {e["type"]: e for e in ev[1:3]}
    assert kinds["interrupted"]["dropped_s"] > 1.0
    assert kinds["utterance_finished"]["id"] == "1" and kinds["utterance_finished"]["interrupted"] is True
    assert ev[3] == {"type": "utterance_started", "id": "2"}
    assert ev[4]["type"] == "utterance_finished" and ev[4]["id"] == "2" and "interrupted" not in ev[4]


@pytest.mark.parametrize("query", ["rate=abc", "rate=1000", "rate=400000", "channels=0", "channels=9", "rate=-16000",
                                   "rate=0", "rate=192001", "rate=4e9", "rate=", "rate=%EF%BC%91%EF%BC%96000",
                                   # twice: parsers differ on which one counts (aiohttp the first, many the last)
                                   "rate=16000&rate=8000", "channels=1&channels=2"])
def test_bad_rate_or_channels_refused_before_the_upgrade(make_session, serve, query):  # noqa: F811
    s = make_session()
    srv = serve(s)

    async def go():
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.url}/v1/stream?{query}", headers={
                    "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
                return r.status, await r.json()

    code, body = run(go())
    assert code == 400 and query.split("=")[0] in body["error"], body


def test_end_without_audio_and_a_bad_id_are_errors_not_closes(make_session, serve):  # noqa: F811
    s = make_session()
    srv = serve(s)

    async def go():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{srv.url}/v1/stream") as ws:
                out = []
                for m in ({"type": "end"}, {"type": "start", "id": ""}, {"type": "start", "id": 7}):
                    await ws.send_str(json.dumps(m))
                    out.append(await ws.receive_json(timeout=10))
                await ws.send_bytes(pcm16(np.zeros(320, np.float32)))
                await ws.send_str(json.dumps({"type": "end"}))
                out.append(await ws.receive_json(timeout=10))
                return out

    out = run(asyncio.wait_for(go(), 60))
    assert [o["type"] for o in out[:3]] == ["error"] * 3
    assert out[3] == {"type": "utterance_started", "id": "1"}
