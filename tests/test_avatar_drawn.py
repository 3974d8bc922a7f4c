"""The built-in drawn avatar: sizes, mouth response, blinks, determinism, thread safety."""

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dhlive_cli.avatar.drawn import DrawnAvatar, MouthShape
from dhlive_cli.errors import InputError

PRESET = Path(__file__).resolve().parents[1] / "presets" / "avatars" / "default"
FPS = 25


@pytest.fixture(scope="module")
def av360():
    return DrawnAvatar.load(PRESET, 640, 360, FPS)


def _frame(av, idx, mouth=MouthShape(), fresh=True):
    out = np.empty((av.height, av.width, 3), np.uint8)
    av.render(out, idx, mouth, fresh=fresh)
    return out


def _dark(img, av):
    """Pixels in the mouth box as dark as the mouth interior (average level below 50)."""
    x0, y0, x1, y1 = av.mouth_box()
    return int((img[y0:y1, x0:x1].astype(int).sum(axis=2) < 150).sum())


def _inside(box, w, h):
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (500, 700), (333, 211), (360, 1280)])
def test_renders_any_size(size):
    w, h = size
    av = DrawnAvatar.load(PRESET, w, h, FPS)
    assert (av.width, av.height) == size and av.kind == "drawn"
    out = np.empty((h, w, 3), np.uint8)
    for i, m in enumerate([MouthShape(), MouthShape(1.0, 0.2, 0.0, 0.0), MouthShape(0.3, 0.0, 1.0, 0.0)]):
        av.render(out, i * 7, m, fresh=(i == 0))
    assert out.std() > 10  # a picture, not a flat fill
    # redrawing only the moving parts over an older frame gives the full redraw, at any size
    m = MouthShape(0.6, 0.1, 0.2, 0.0)
    av.render(out, 999, m, fresh=False)
    assert np.array_equal(out, _frame(av, 999, m))
    assert _inside(av.mouth_box(), w, h) and _inside(av.eye_box(), w, h)


@pytest.mark.parametrize("style", [{"hair_style": "short", "clothing": "crew"}, {"hair_style": "long", "skin": "#8d5a3b"}])
def test_other_styles_from_toml(style):
    spec = {"kind": "drawn", "name": "t", "drawn": {"seed": 3, **style}}
    av = DrawnAvatar(spec, 640, 360, FPS)
    a, b = _frame(av, 5), _frame(av, 5, MouthShape(open=1.0))
    assert not np.array_equal(a, b)
    base = _frame(DrawnAvatar.load(PRESET, 640, 360, FPS), 5)
    assert np.abs(a.astype(int) - base).mean() > 1.0  # the TOML changed the look


def test_bad_spec_is_input_error():
    with pytest.raises(InputError):
        DrawnAvatar({"drawn": {"hair_style": "mohawk"}}, 320, 240)
    with pytest.raises(InputError):
        DrawnAvatar({"drawn": {"skin": "pink"}}, 320, 240)
    with pytest.raises(InputError):
        DrawnAvatar({"drawn": {"blink_interval_s": [1, 8]}}, 320, 240)
    # out of the painter's range: a head of twice the size used to fail with a Python error
    for key, value in (("head_scale", 2.0), ("head_scale", -1.0), ("eye_spacing", 5.0), ("face_length", 5.0),
                       ("breath_amount", -1.0), ("sway_amount", float("nan")), ("breath_hz", float("inf")),
                       ("blush", 2.0)):
        with pytest.raises(InputError, match=key):
            DrawnAvatar({"drawn": {key: value}}, 640, 360)
    # values of the wrong type: each raised a Python error deep in the painter
    for key, value in (("seed", -1), ("seed", 1.5), ("seed", 10**23), ("sway_amount", "big"), ("head_scale", "1"),
                       ("blink_ms", "fast"), ("blink_interval_s", "x"), ("blink_interval_s", [3]),
                       ("eye_size", True)):
        with pytest.raises(InputError, match=key):
            DrawnAvatar({"drawn": {key: value}}, 640, 360)


@pytest.mark.parametrize("size", [(32, 32), (64, 36), (640, 360), (360, 640)])
def test_every_style_value_at_the_ends_of_its_range_paints(size):
    from dhlive_cli.avatar.drawn_style import _RANGES

    out = np.empty((size[1], size[0], 3), np.uint8)
    for key, ends in _RANGES.items():
        for v in ends:
            av = DrawnAvatar({"drawn": {key: v}}, *size, FPS)
            av.render(out, 40, MouthShape(open=1.0, spread=1.0))
            assert out.std() > 5  # something was drawn


def test_open_mouth_changes_only_the_mouth_box(av360):
    x0, y0, x1, y1 = av360.mouth_box()
    for idx in (0, 40, 137):
        closed = _frame(av360, idx, MouthShape(open=0.0))
        opened = _frame(av360, idx, MouthShape(open=1.0))
        diff = np.any(closed != opened, axis=2)
        assert diff[y0:y1, x0:x1].sum() > 50
        diff[y0:y1, x0:x1] = False
        assert not diff.any()
        # an open mouth shows a dark interior; a closed one only a (less dark) lip line
        assert _dark(opened, av360) > 60 and _dark(closed, av360) < 10


def test_mouth_box_bounds_random_shapes(av360):
    x0, y0, x1, y1 = av360.mouth_box()
    rng = np.random.default_rng(3)
    for idx in rng.integers(0, 100_000, 8):
        ref = _frame(av360, int(idx))
        for _ in range(4):
            diff = np.any(_frame(av360, int(idx), MouthShape(*rng.uniform(0, 1, 4))) != ref, axis=2)
            diff[y0:y1, x0:x1] = False
            assert not diff.any()


def test_a_head_cut_off_by_the_top_edge_shows_no_background_gap_when_it_moves_down():
    """A large head (head_scale 1.4 at 640x360) runs off the top of the frame. When the idle
    motion moves it down, the frame's top rows show more of the same hair, never the background
    through a gap (the sprite ends at the frame edge; its edge repeats, it is not see-through)."""
    av = DrawnAvatar({"drawn": {"head_scale": 1.4}}, 640, 360, FPS)
    out = np.empty((360, 640, 3), np.uint8)
    dark = []  # hair-dark pixels (B+G+R < 350; the background is ~730) in the top row
    for k in range(0, 750, 5):
        av.render(out, k, MouthShape())
        dark.append(int((out[0].astype(int).sum(axis=1) < 350).sum()))
    assert max(dark) > 40  # the hair does reach the top edge
    assert min(dark) > 0.8 * max(dark), dark


def test_mouth_parameters_each_matter(av360):
    ref = _frame(av360, 10, MouthShape(open=0.5))
    for m in (MouthShape(0.5, 1, 0, 0), MouthShape(0.5, 0, 1, 0), MouthShape(0.5, 0, 0, 1)):
        assert np.any(_frame(av360, 10, m) != ref)
    # close overrides open: pressed lips look like a closed mouth
    assert _dark(_frame(av360, 10, MouthShape(open=1.0, close=1.0)), av360) < 10


def test_blinks_every_two_to_six_seconds(av360):
    x0, y0, x1, y1 = av360.eye_box()
    out = np.empty((360, 640, 3), np.uint8)
    whites = []
    for i in range(10 * FPS):
        av360.render(out, i, MouthShape(), fresh=(i == 0))
        eyes = out[y0:y1, x0:x1]
        whites.append(int(np.all(eyes >= 215, axis=2).sum()))
    whites = np.array(whites)
    shut = whites < 0.5 * whites.max()
    starts = [i for i in range(1, len(shut)) if shut[i] and not shut[i - 1]]
    assert len(starts) >= 2, whites
    gaps = np.diff(starts) / FPS
    assert np.all((gaps >= 2.0) & (gaps <= 6.0)), gaps
    # each blink lasts a few frames, not a held close
    runs = [np.argmin(shut[s:]) for s in starts]
    assert all(1 <= r <= 6 for r in runs), runs


def test_blink_schedule_long_run(av360):
    closed = np.array([av360.blink_closure(i) > 0.5 for i in range(0, 600 * FPS)])
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    gaps = np.diff(starts) / FPS
    assert gaps.min() >= 2.0 and gaps.max() <= 6.0
    # idle motion stays subtle: tilt within 2 degrees, a few pixels of travel
    poses = np.array([av360.pose(i) for i in range(0, 120 * FPS, 3)])
    assert np.abs(np.degrees(poses[:, 0])).max() <= 2.0
    assert np.abs(poses[:, 1:]).max() < 0.02 * 360
    assert np.ptp(poses[:, 3]) > 0.5  # it breathes


def test_deterministic_and_fresh_false_matches_fresh(av360):
    m = MouthShape(0.7, 0.3, 0.1, 0.0)
    a = _frame(av360, 321, m)
    assert np.array_equal(a, _frame(av360, 321, m))
    buf = _frame(av360, 77, MouthShape(1.0, 0.0, 1.0, 0.0))  # some earlier, different frame
    av360.render(buf, 321, m, fresh=False)
    assert np.array_equal(buf, a)
    # and the motion really moves things between frames
    assert not np.array_equal(a, _frame(av360, 340, m))


def test_threads_match_sequential():
    av = DrawnAvatar.load(PRESET, 480, 270, FPS)
    rng = np.random.default_rng(1)
    jobs = [[(i, MouthShape(*rng.uniform(0, 1, 4))) for i in range(k, k + 60)] for k in (0, 500)]
    expect = [[_frame(av, i, m).copy() for i, m in job] for job in jobs]
    got = [[], []]

    def work(n):
        out = np.empty((270, 480, 3), np.uint8)
        for j, (i, m) in enumerate(jobs[n]):
            av.render(out, i, m, fresh=(j == 0))
            got[n].append(out.copy())

    ts = [threading.Thread(target=work, args=(n,)) for n in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    for n in (0, 1):
        assert len(got[n]) == len(expect[n])
        assert all(np.array_equal(g, e) for g, e in zip(got[n], expect[n]))


def test_render_allocates_no_frame_sized_memory():
    av = DrawnAvatar.load(PRESET, 1280, 720, FPS)
    out = np.empty((720, 1280, 3), np.uint8)
    av.render(out, 0, MouthShape())  # warm-up: per-thread scratch
    tracemalloc.start()
    try:
        for i in range(1, 20):
            av.render(out, i, MouthShape(open=i / 20), fresh=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < out.nbytes // 8, peak


def test_bad_buffer_rejected(av360):
    with pytest.raises(ValueError):
        av360.render(np.empty((360, 640, 4), np.uint8), 0, MouthShape())


def test_layers_from_the_disk_cache_draw_the_same_pixels(tmp_path, monkeypatch):
    """The second load of a size reads the painted layers back (no repaint) and renders byte for
    byte what the painting gave; a damaged cache entry is painted again, never an error."""
    from dhlive_cli.avatar import drawn as drawn_mod
    from dhlive_cli.avatar import layer_cache
    from dhlive_cli.compositor import load_avatar

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    painted = load_avatar(None, 320, 180, 25)
    entries = list(layer_cache.cache_dir().glob("*.npz"))
    assert len(entries) == 1
    calls = []
    monkeypatch.setattr(drawn_mod.DrawnAvatar, "_prerender", lambda self: calls.append(1))
    cached = load_avatar(None, 320, 180, 25)
    assert calls == []
    a, b = np.zeros((180, 320, 3), np.uint8), np.zeros((180, 320, 3), np.uint8)
    for k in (0, 40, 77, 130):
        m = MouthShape(0.8, 0.3, 0.1, 0.0)
        painted.render(a, k, m)
        cached.render(b, k, m)
        assert np.array_equal(a, b)
    assert cached.dynamic_boxes == painted.dynamic_boxes
    entries[0].write_bytes(entries[0].read_bytes()[:1000])  # truncated: a miss, painted again
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    again = load_avatar(None, 320, 180, 25)
    again.render(b, 40, MouthShape(0.8, 0.3, 0.1, 0.0))
    painted.render(a, 40, MouthShape(0.8, 0.3, 0.1, 0.0))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("size", [(640, 360), (1280, 720)])
def test_warping_only_where_the_head_lands_changes_nothing(size):
    """render warps and blends the head only inside the box its visible pixels reach in that
    frame; the same frames warped over the whole head box differ by at most 1 (OpenCV's
    fixed-point warp from another origin), blinks and a moving mouth included."""
    w, h = size
    part = DrawnAvatar({}, w, h)
    whole = DrawnAvatar({}, w, h)
    assert part._sprite_corners is not None
    whole._sprite_corners = None  # the whole head box, as before the box was narrowed
    x0, y0, x1, y1 = part._warp_box(part._head_matrix(0))
    hx0, hy0, hx1, hy1 = part._hrect
    assert (x1 - x0) * (y1 - y0) < 0.95 * (hx1 - hx0) * (hy1 - hy0)  # the point: less to warp
    blink = next(k for k in range(400) if part.blink_closure(k) > 0.9)
    a, b = np.zeros((h, w, 3), np.uint8), np.zeros((h, w, 3), np.uint8)
    for k in (*range(0, 300, 23), blink - 1, blink, blink + 1):
        m = MouthShape(0.5 + 0.5 * np.sin(k / 5), 0.3, 0.2, 0.1)
        part.render(a, k, m)
        whole.render(b, k, m)
        assert np.abs(a.astype(int) - b).max() <= 1, k


def test_a_cache_entry_with_layers_of_another_shape_is_painted_again(tmp_path, monkeypatch):
    """An entry under the right name whose body or eye layers have other shapes (hand-made, or
    from another layout) is not drawn from: it was an OpenCV error in render, or blinks that
    silently stopped."""
    from dhlive_cli.avatar import layer_cache
    from dhlive_cli.compositor import load_avatar

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    painted = load_avatar(None, 320, 180, 25)
    (entry,) = layer_cache.cache_dir().glob("*.npz")
    good = dict(np.load(entry))
    blink = next(k for k in range(400) if painted.blink_closure(k) > 0.9)
    level = int(round(painted.blink_closure(blink) * (len(painted._eyes4) - 1)))  # the layer that frame draws
    eye = f"eye4_{level}"
    for key, bad in (("base", good["base"][:5]), (eye, good[eye][..., :3].copy())):
        with open(entry, "wb") as f:
            np.savez(f, **{**good, key: bad})
        again = load_avatar(None, 320, 180, 25)
        a, b = np.zeros((180, 320, 3), np.uint8), np.zeros((180, 320, 3), np.uint8)
        for k in (3, blink):
            painted.render(a, k, MouthShape(0.4, 0.2, 0.1, 0.0))
            again.render(b, k, MouthShape(0.4, 0.2, 0.1, 0.0))
            assert np.array_equal(a, b), (key, k)
