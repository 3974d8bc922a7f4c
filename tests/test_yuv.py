"""Frames reach the encoder as I420: the same pictures as the old BGR path, converted once.

The old path piped BGR to ffmpeg, whose swscale made yuv420p; the new one converts with OpenCV in
the drawing thread, only inside the regions the avatar may change. Both are checked against a
real ffmpeg here.
"""

import subprocess

import cv2
import numpy as np
import pytest

from dhlive_cli.avatar.drawn import MouthShape
from dhlive_cli.compositor import Composer, FrameRing, i420_planes, i420_shape, load_avatar


def _mouth(k: int) -> MouthShape:
    t = k / 7.0
    return MouthShape(0.5 + 0.5 * np.sin(t), 0.3 + 0.3 * np.cos(t), 0.2, 0.3)


def _swscale_i420(bgr: np.ndarray) -> np.ndarray:
    """What the old path gave x264: ffmpeg's own bgr24 -> yuv420p conversion."""
    h, w = bgr.shape[:2]
    out = subprocess.run(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-i", "-",
                          "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"], input=bgr.tobytes(), capture_output=True,
                         check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(i420_shape(h, w))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


class _BgrOnly:
    """The avatar without its I420 drawing (i420_boxes): every dynamic box comes from the canvas."""

    def __init__(self, av):
        self._av = av
        self.width, self.height, self.dynamic_boxes = av.width, av.height, av.dynamic_boxes

    def render(self, out, k, mouth, fresh=True):
        self._av.render(out, k, mouth, fresh=fresh)




def _outside(mask_shape, boxes, scale: int) -> np.ndarray:
    keep = np.ones(mask_shape, bool)
    for x0, y0, x1, y1 in boxes:
        keep[y0 // scale : -(-y1 // scale), x0 // scale : -(-x1 // scale)] = False
    return keep


@pytest.mark.parametrize("size", [(640, 360), (1280, 720)])
def test_region_conversion_gives_the_bytes_of_a_whole_frame_conversion(size):
    """Slots are reused like the engine reuses them; converting only the avatar's dynamic boxes
    from the canvas must leave each slot byte-identical to converting the whole picture (so
    nothing outside the boxes ever changes, and the boxes are aligned to the chroma grid)."""
    w, h = size
    av = load_avatar(None, w, h, 25)
    assert av.dynamic_boxes, "the drawn avatar declares what it redraws"
    comp = Composer(_BgrOnly(av))
    ring = FrameRing(3, h, w)
    boxes_area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in comp.boxes)
    assert boxes_area < 0.6 * w * h  # the point: most of the frame is converted once only
    for k in range(40):
        slot = k % 3
        comp.draw(ring.frames[slot], k * 9, _mouth(k), fresh=not ring.drawn[slot])
        ring.drawn[slot] = True
        whole = cv2.cvtColor(comp.canvas, cv2.COLOR_BGR2YUV_I420)
        assert np.array_equal(ring.frames[slot], whole), f"frame {k}"


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (854, 480)])
def test_the_body_drawn_in_i420_matches_the_whole_frame_conversion(size):
    """The drawn avatar writes its breathing body straight into the slot (render_i420) and the
    canvas then holds the body only under the head: each slot, reused as the engine reuses it,
    still equals the whole picture converted: outside the dynamic boxes byte for byte, luma
    within 2 levels everywhere (two rounding steps instead of one), and the frame above 60 dB;
    chroma rows are shifted at half resolution, which may differ by a few levels at the
    clothes' horizontal edges."""
    w, h = size
    av = load_avatar(None, w, h, 25)
    assert av.i420_boxes, "the drawn avatar writes its body in I420"
    comp = Composer(av)
    assert all(b not in comp.boxes for b in av.i420_boxes)  # not converted from the canvas too
    ring = FrameRing(3, h, w)
    canvas = np.zeros((h, w, 3), np.uint8)
    boxes = [b for b in av.dynamic_boxes]
    boxes = [(x0 - x0 % 2, y0 - y0 % 2, x1 + x1 % 2, y1 + y1 % 2) for x0, y0, x1, y1 in boxes]
    for k in range(60):
        slot = k % 3
        comp.draw(ring.frames[slot], k * 7, _mouth(k), fresh=not ring.drawn[slot])
        ring.drawn[slot] = True
        av.render(canvas, k * 7, _mouth(k), fresh=True)
        whole = cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420)
        got, ref = i420_planes(ring.frames[slot]), i420_planes(whole)
        for plane, (a, b) in enumerate(zip(got, ref)):
            keep = _outside(a.shape, boxes, 1 if plane == 0 else 2)
            assert np.array_equal(a[keep], b[keep]), f"frame {k} plane {plane}: changed outside the boxes"
        assert np.abs(got[0].astype(int) - ref[0]).max() <= 2, f"frame {k}"
        assert _psnr(ring.frames[slot], whole) >= 60.0, f"frame {k}"


def test_new_path_matches_the_old_swscale_path_above_45_db():
    w, h = 640, 360
    av = load_avatar(None, w, h, 25)
    comp = Composer(av)
    out = np.zeros(i420_shape(h, w), np.uint8)
    worst = 99.0
    for k in range(0, 250, 50):  # idle motion, blinks and mouth shapes across 10 s
        comp.draw(out, k, _mouth(k), fresh=True)
        worst = min(worst, _psnr(out, _swscale_i420(comp.canvas)))
    print(f"PSNR new (OpenCV I420) vs old (ffmpeg swscale) path: worst frame {worst:.1f} dB")
    assert worst >= 45.0


def test_odd_sizes_are_refused_for_yuv420p():
    from dhlive_cli.errors import InputError

    with pytest.raises(InputError, match="even"):
        i420_shape(361, 640)


def test_drawing_and_converting_allocate_nothing_frame_sized():
    """After warm-up, drawing + region conversion into ring slots allocates no frame buffers:
    memory cannot grow with input length (tracemalloc sees numpy's allocations)."""
    import tracemalloc

    w, h = 640, 360
    comp = Composer(load_avatar(None, w, h, 25))
    ring = FrameRing(4, h, w)
    for k in range(8):  # warm-up: every slot converted whole once, per-thread scratch made
        comp.draw(ring.frames[k % 4], k, _mouth(k), fresh=not ring.drawn[k % 4])
        ring.drawn[k % 4] = True
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for k in range(8, 208):
        comp.draw(ring.frames[k % 4], k, _mouth(k), fresh=False)
    now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frame_bytes = w * h * 3 // 2
    assert now - base < 64 * 1024, now - base
    assert peak - base < frame_bytes, peak - base  # transient polygon arrays only
