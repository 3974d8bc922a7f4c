"""How far the product's mouth track can move the real-speech dev figures without a new model.

    python -m training.track_sweep --model models/lipsync-v2.onnx --real build/lipsync/real \
        [--cache build/speech] [--json out.json]

Each dev prompt (training.real_speech.DEV_SPEAKERS, decoded and padded as `training.evaluate
--track` does) goes once through the engine's analysis path (dhlive_cli.analysis.whole_track:
streamed log-mel, windows, the model), and what reaches dhlive_cli.mouth.MouthTrack -- the raw
model output (frames, 4) and the frame RMS -- is kept. MouthTrack is then replayed on it with
other settings (attack, release, the closing speed-up's range), each scored by
training.evaluate.real_metrics: opening r at lag 0, p/b/m closure, pause closure. The shipped
settings' row equals `training.evaluate --track`'s `<model> track` row; the `raw` row is the
model output itself. Nothing here changes the product: it says what the smoothing costs and buys.
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np


def capture(model: str, audio: list[np.ndarray], block: int = 50) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(raw, rms) per utterance: what MouthTrack.apply was given on the product's path, raw
    (frames, 4) float32 model output in [0, 1] and rms (frames,) float32 frame RMS (full scale
    1.0), frames at 25 fps. The track itself is made as usual meanwhile."""
    from dhlive_cli import mouth
    from dhlive_cli.analysis import whole_track
    from dhlive_cli.inference import InferenceOptions, InferencePool

    pool = InferencePool(model, InferenceOptions(device="cpu", intra_threads=1))
    seen: list[tuple[list, list]] = []
    apply = mouth.MouthTrack.apply

    def keep(self, raw, rms, out):
        seen[-1][0].append(raw.copy())
        seen[-1][1].append(rms[: raw.shape[0]].copy())
        return apply(self, raw, rms, out)

    mouth.MouthTrack.apply = keep
    try:
        for x in audio:
            seen.append(([], []))
            whole_track(pool, x, block)
    finally:
        mouth.MouthTrack.apply = apply
    return [np.concatenate(r) for r, _ in seen], [np.concatenate(s) for _, s in seen]


def replay(raw: list[np.ndarray], rms: list[np.ndarray], **options) -> np.ndarray:
    """(frames, 4): MouthTrack with MouthTrackOptions(**options), a fresh one per utterance."""
    from dhlive_cli.mouth import MouthTrack, MouthTrackOptions

    out = []
    for r, s in zip(raw, rms):
        t = MouthTrack(MouthTrackOptions(**options))
        o = np.zeros_like(r)
        t.apply(r, s, o)
        out.append(o)
    return np.concatenate(out)


def main() -> None:
    from training.evaluate import dev_audio, real_labels, real_metrics
    from training.real_speech import DEV_SPEAKERS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/lipsync-v2.onnx")
    ap.add_argument("--real", default="build/lipsync/real", help="labelled real speech (training.label_real)")
    ap.add_argument("--cache", default="build/speech", help="training.real_speech package cache")
    ap.add_argument("--json", help="write every row here")
    a = ap.parse_args()

    sets, n_frames, tgt, silent, bil = real_labels(a.real, DEV_SPEAKERS)
    raw, rms = capture(a.model, dev_audio(a.cache, sets, DEV_SPEAKERS))

    rows = {"raw": real_metrics(np.concatenate(raw), tgt, silent, bil, n_frames)}
    grid = itertools.product([0.85, 1.0], [0.6, 0.7, 0.8, 1.0], [(0.5, 0.8), (0.3, 0.6), (0.2, 0.5), (0.1, 0.3)])
    for attack, release, (c0, c1) in grid:
        name = f"attack {attack} release {release} closing {c0}-{c1}"
        rows[name] = real_metrics(replay(raw, rms, attack=attack, release=release, closing_from=c0, closing_full=c1),
                                  tgt, silent, bil, n_frames)
    print(f"{'track settings':42s} open r  p/b/m  pause  (shipped: attack 0.85 release 0.6 closing 0.5-0.8)")
    for name, m in rows.items():
        print(f"{name:42s} {m['r_open']:.3f}  {m['pbm_closure']:.3f}  {m['pause_closure']:.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
