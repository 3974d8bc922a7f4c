"""Browser preview latency: speech pushed through /v1/speak -> the mouth seen opening in the
browser's WebRTC video.

    python benchmarks/bench_webrtc.py [--trials 10] [--size 360p]

A real headless Chromium (tests/browser.py) opens the preview page of an in-process 25 fps
session. In the page, a canvas reads every video frame the browser presents
(requestVideoFrameCallback) and measures the mouth region: how many of its pixels are darker
than lips and skin
(pixels of the mouth's dark inside). Each trial the page itself POSTs an utterance to /v1/speak and records,
on the browser's clock, the time from just before the request to the first presented frame
with more dark mouth pixels than the idle mouth ever showed plus those a 0.3 opening adds.
The mouth region and the dark-pixel counts per opening come from the avatar drawn closed and
open. Between trials the session is interrupted and returns to idle.

Two kinds of push: raw PCM (audio/L16, queued as it arrives) and a WAV file (decoded by the
API's ffmpeg child first). Then the page's Talk button: the fake microphone plays an utterance
and 3 s of silence, looped; the page times each onset it hears on its own captured track to the
first frame with an open mouth (the audio goes up the same WebRTC connection). Prints the median, min and max per kind, when the POST was answered
(the speech is queued by then), and the session-side figure (queued -> first frame drawn,
/v1/status latency_ms_median) to show where the time goes.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_live import utterances  # noqa: E402
from dhlive_cli.compositor import Composer, i420_shape, load_avatar  # noqa: E402
from dhlive_cli.inference import InferencePool  # noqa: E402
from dhlive_cli.live import LiveOptions, LiveSession  # noqa: E402
from dhlive_cli.presets import parse_size  # noqa: E402
from dhlive_cli.sinks import EncoderOptions  # noqa: E402
from dhlive_cli.timebase import Timebase  # noqa: E402

# In the page: grab the idle mouth, then per trial push speech and time the first open mouth.
JS_SETUP = """
const [x0, y0, x1, y1] = arguments[0];
const done = arguments[arguments.length - 1];
const v = document.getElementById('avatar');
const c = document.createElement('canvas');
c.width = v.videoWidth; c.height = v.videoHeight;
const g = c.getContext('2d', {willReadFrequently: true});
const w = x1 - x0, h = y1 - y0;
// the mouth's opening shows as its dark inside: the mean luma of the region's DARKEST pixels
const DARKEST = 8;
const ys = new Float32Array(w * h);
function score() {
  g.drawImage(v, 0, 0);
  const d = g.getImageData(x0, y0, w, h).data;
  for (let i = 0, j = 0; j < ys.length; i += 4, j++) ys[j] = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
  ys.sort();
  let m = 0;
  for (let k = 0; k < DARKEST; k++) m += ys[k] / DARKEST;
  return m;
}
const bench = {listeners: []};
window.dhliveBench = bench;
function onFrame(now, meta) {
  const s = score();
  for (const f of bench.listeners) f(now, s);
  v.requestVideoFrameCallback(onFrame);
}
v.requestVideoFrameCallback(onFrame);
const noise = [];
bench.listeners.push(function collect(now, s) {
  noise.push(s);
  if (noise.length === 75) { bench.listeners = []; done({idle_min: Math.min(...noise), idle_max: Math.max(...noise), w: c.width, h: c.height}); }
});
"""

JS_TRIAL = """
const [b64, threshold, session, ctype] = [arguments[0], arguments[1], arguments[2], arguments[3]];
const done = arguments[arguments.length - 1];
const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
const bench = window.dhliveBench;
const token = window.dhlivePreview.token;
const headers = {'Content-Type': ctype};
if (token) headers['Authorization'] = 'Bearer ' + token;
let t0 = null, best = 1e9, answered = null;
const timer = setTimeout(() => { bench.listeners = []; done({error: 'no open mouth within 5 s', best}); }, 5000);
bench.listeners = [(now, s) => {
  if (t0 === null) return;
  best = Math.min(best, s);
  if (s < threshold) { bench.listeners = []; clearTimeout(timer); done({ms: now - t0, score: s, answered_ms: answered}); }
}];
t0 = performance.now();
fetch('/v1/sessions/' + session + '/speak', {method: 'POST', headers, body: bytes}).then((r) => { answered = performance.now() - t0; bench.status = r.status; });
"""

JS_IDLE = """
const [threshold, quiet_frames] = [arguments[0], arguments[1]];
const done = arguments[arguments.length - 1];
const bench = window.dhliveBench;
let calm = 0;
const timer = setTimeout(() => { bench.listeners = []; done(false); }, 15000);
bench.listeners = [(now, s) => {
  calm = s > threshold ? calm + 1 : 0;
  if (calm >= quiet_frames) { bench.listeners = []; clearTimeout(timer); done(true); }
}];
"""


# Microphone trials: the fake microphone plays a file of speech then silence, looped; the page
# hears each onset itself (an AnalyserNode on the captured track, 10 ms windows polled every
# 5 ms) and times it to the first presented frame with an open mouth.
JS_MIC = """
const [threshold, trials, level] = [arguments[0], arguments[1], arguments[2]];
const done = arguments[arguments.length - 1];
const bench = window.dhliveBench;
const ctx = new AudioContext();
const an = ctx.createAnalyser();
an.fftSize = 512;
ctx.createMediaStreamSource(window.dhlivePreview.mic).connect(an);
const buf = new Float32Array(an.fftSize);
const out = [];
let quietSince = performance.now(), onset = null, waitingQuiet = false;
const poll = setInterval(() => {
  an.getFloatTimeDomainData(buf);
  let e = 0; for (let i = 0; i < buf.length; i++) e += buf[i] * buf[i];
  const loud = Math.sqrt(e / buf.length) > level, now = performance.now();
  if (loud) { if (onset === null && !waitingQuiet && now - quietSince > 1000) onset = now; quietSince = now; }
  else if (waitingQuiet && now - quietSince > 1000) waitingQuiet = false;
}, 5);
const timer = setTimeout(() => { clearInterval(poll); bench.listeners = []; done({ms: out, error: 'timeout'}); }, 60000 + trials * 8000);
bench.listeners = [(now, s) => {
  if (onset !== null && s < threshold) {
    out.push(now - onset); onset = null; waitingQuiet = true;
    if (out.length >= trials) { clearInterval(poll); clearTimeout(timer); bench.listeners = []; ctx.close(); done({ms: out}); }
  }
}];
"""

PAD = 12  # pixels around the mouth box: the head's idle sway stays inside
DARKEST = 8  # pixels averaged for the score (as JS_SETUP)


def mouth_box(avatar) -> tuple[tuple[int, int, int, int], float]:
    """Where the mouth is (x0, y0, x1, y1 in frame pixels, padded for the head's idle motion),
    from the avatar drawn closed and open, and how far the score (mean luma of the DARKEST
    darkest pixels there) drops from the resting mouth to an opening of 0.3."""
    from dhlive_cli.avatar.drawn_style import MouthShape
    from dhlive_cli.mouth import REST_CLOSE

    h, w = avatar.height, avatar.width

    def drawn(shape) -> np.ndarray:
        f = np.zeros(i420_shape(h, w), np.uint8)
        Composer(avatar).draw(f, 0, shape, fresh=True)
        return f[:h]

    rest, opened = drawn(MouthShape(close=REST_CLOSE)), drawn(MouthShape(open=1.0))
    ys, xs = np.nonzero(np.abs(rest.astype(np.int16) - opened.astype(np.int16)) > 24)
    box = (max(0, int(xs.min()) - PAD), max(0, int(ys.min()) - PAD), min(w, int(xs.max()) + 1 + PAD),
           min(h, int(ys.max()) + 1 + PAD))
    x0, y0, x1, y1 = box

    def score(img: np.ndarray) -> float:
        return float(np.sort(img[y0:y1, x0:x1].reshape(-1))[:DARKEST].mean())

    return box, score(rest) - score(drawn(MouthShape(open=0.3)))


def pcm_b64(x: np.ndarray) -> str:
    """Samples as audio/L16: 16-bit signed, big-endian (RFC 2586), base64 for the page to POST."""
    return base64.b64encode((np.clip(x, -1, 1) * 32767).astype(">i2").tobytes()).decode()


def wav_b64(x: np.ndarray) -> str:
    import soundfile as sf

    b = io.BytesIO()
    sf.write(b, x, 16000, format="WAV", subtype="PCM_16")
    return base64.b64encode(b.getvalue()).decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--size", default="360p")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    from dhlive_cli.api import ApiServer
    from tests import browser

    why = browser.available()
    if why:
        sys.exit(f"error: {why}")
    w, h = parse_size(a.size)
    pool, avatar = InferencePool(), load_avatar(None, w, h, 25)
    box, drop = mouth_box(avatar)
    speech = []
    for u in utterances():
        loud = np.nonzero(np.abs(u) > 0.02)[0]
        speech.append(u[max(0, loud[0] - 160):] if len(loud) else u)  # from 10 ms before the voice starts
    tmp = Path(__import__("tempfile").mkdtemp(prefix="dhlive-bench-webrtc-"))
    s = LiveSession(avatar=avatar, pool=pool, tb=Timebase(25), enc=EncoderOptions(preset="ultrafast"),
                    outputs=[(str(tmp / "out.mp4"), "mp4")], opts=LiveOptions(), name="main")
    s.start()
    srv = ApiServer(s).start()
    # raw PCM is pushed as it comes; a WAV file goes through the API's decoder (an ffmpeg child) first
    kinds = {"audio/L16; rate=16000": pcm_b64, "audio/wav": wav_b64}
    results: dict[str, list[float]] = {k: [] for k in kinds}
    answered: dict[str, list[float]] = {k: [] for k in [*kinds, "microphone"]}  # POST -> its 202, when it came first
    drawn = None
    try:
        mic = tmp / "mic.wav"
        import soundfile as sf

        # what the fake microphone says, looped: an utterance, then 3 s of silence
        sf.write(mic, np.concatenate([speech[0], np.zeros(48000, np.float32)]), 16000, subtype="PCM_16")
        with browser.chromium(fake_mic_wav=str(mic)) as d:
            d.set_script_timeout(60)
            d.get(srv.url + "/?session=main")
            t0 = time.monotonic()
            while (d.execute_script("return (window.dhlivePreview.received || {}).framesDecoded || 0") or 0) < 50:
                if time.monotonic() - t0 > 60:
                    sys.exit("error: the page did not play within 60 s")
                time.sleep(0.2)
            idle = d.execute_async_script(JS_SETUP, list(box))
            # "open": darker than the idle mouth ever was, by half of what a 0.3 opening darkens it
            threshold = idle["idle_min"] - max(4.0, 0.5 * drop)
            print(f"mouth box {box} in {idle['w']}x{idle['h']}: idle score {idle['idle_min']:.1f}-{idle['idle_max']:.1f}, "
                  f"an opening of 0.3 lowers it by {drop:.1f}: open below {threshold:.1f}", flush=True)
            for kind, encode in kinds.items():
                for i in range(a.trials):
                    u = speech[i % len(speech)]
                    r = d.execute_async_script(JS_TRIAL, encode(u), threshold, "main", kind)
                    if "ms" not in r:
                        sys.exit(f"error: {kind} trial {i}: {r}")
                    results[kind].append(r["ms"])
                    if r.get("answered_ms") is not None:
                        answered[kind].append(r["answered_ms"])
                    print(f"{kind} trial {i + 1}: {r['ms']:.0f} ms (score {r['score']:.1f}; 202 after "
                          f"{r['answered_ms'] or float('nan'):.0f} ms)", flush=True)
                    s.interrupt()
                    if not d.execute_async_script(JS_IDLE, threshold + 2.0, 25):
                        sys.exit("error: the mouth did not return to idle within 15 s")
            drawn = s.snapshot()["latency_ms_median"]
            # the browser's microphone: Talk, then every onset of the looped file is one trial
            d.find_element("id", "mic").click()
            t0 = time.monotonic()
            while not d.execute_script("const p = window.dhlivePreview; return !!(p.mic && p.pc && "
                                       "p.pc.connectionState === 'connected' && (p.received.framesDecoded || 0) > 25)"):
                if time.monotonic() - t0 > 60:
                    sys.exit("error: the page did not reconnect with its microphone within 60 s")
                time.sleep(0.2)
            d.set_script_timeout(120 + 8 * a.trials)
            r = d.execute_async_script(JS_MIC, threshold, a.trials, 0.01)
            if r.get("error"):
                sys.exit(f"error: microphone trials: {r}")
            results["microphone"] = r["ms"]
            for i, ms in enumerate(r["ms"]):
                print(f"microphone trial {i + 1}: {ms:.0f} ms", flush=True)
    finally:
        srv.stop()
        s.stop()
    out = {"size": f"{w}x{h}", "threshold": threshold, "session_push_to_drawn_ms_median": drawn}
    print()
    for kind, ms in results.items():
        med = statistics.median(ms)
        key = "pcm" if "L16" in kind else "wav" if "wav" in kind else "microphone"
        ans = statistics.median(answered[kind]) if answered[kind] else None
        out[key] = {"trials": len(ms), "median_ms": med, "min_ms": min(ms), "max_ms": max(ms), "answered_ms_median": ans}
        what = "speech into the browser's microphone" if kind == "microphone" else f"/v1/speak ({kind})"
        tail = "" if kind == "microphone" else "; the POST's 202 (speech queued): " + (
            "-" if ans is None else f"median {ans:.0f} ms")
        print(f"{what} -> mouth opening in the browser: median {med:.0f} ms over {len(ms)} "
              f"(min {min(ms):.0f}, max {max(ms):.0f}){tail}")
    print(f"push -> first frame drawn in the session (all trials): median {drawn:.0f} ms")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
