"""Face detection: MediaPipe's short-range BlazeFace model, run on onnxruntime.

Pre- and post-processing follow MediaPipe's face_detection_short_range graph, because the
keypoints the mesh crop is built from move by pixels otherwise:

- the whole image is letterboxed (aspect kept, black padding, centred) to 128x128 with a
  bilinear warp whose corners map to the tensor's corners (MediaPipe's ImageToTensor on CPU),
  RGB, values scaled to [-1, 1];
- 896 SSD anchors (strides 8, 16, 16, 16; 2 anchors per cell at stride 8, 6 per cell at 16;
  centre offset 0.5; fixed unit size), boxes and keypoints decoded with scale 128, scores are
  sigmoid(clip(logit, ±100));
- weighted non-maximum suppression (IoU > 0.3 merges, coordinates averaged by score), then the
  letterbox is undone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from dhlive_cli.errors import InputError
from dhlive_cli.face._runtime import DETECTOR_FILE, model_path, open_session

INPUT_SIZE = 128
NUM_KEYPOINTS = 6
NMS_IOU_THRESHOLD = 0.3
SCORE_CLIP = 100.0


@dataclass(slots=True)
class FaceDetection:
    """One face in image pixels."""

    box: np.ndarray  # (4,) float32 x0, y0, x1, y1
    score: float
    # (6, 2) float32: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear
    # tragion ("right" is the subject's right, i.e. image left in an unmirrored photo)
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


def ssd_anchor_centres() -> np.ndarray:
    """(896, 2) anchor centres (x, y) in [0, 1], in the order the model emits its boxes.

    Layers with the same stride share one feature map, so strides (8, 16, 16, 16) become a
    16x16 map with 2 anchors per cell and an 8x8 map with 6; fixed_anchor_size makes every
    anchor 1x1, so only the centres matter.
    """
    centres = []
    for feature_size, per_cell in ((INPUT_SIZE // 8, 2), (INPUT_SIZE // 16, 6)):
        ys, xs = np.meshgrid(np.arange(feature_size), np.arange(feature_size), indexing="ij")
        cell = np.stack([(xs + 0.5) / feature_size, (ys + 0.5) / feature_size], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(cell, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float):
    """MediaPipe's WEIGHTED non-maximum suppression.

    Take the best remaining box; every remaining box overlapping it by IoU > threshold (itself
    included) is merged into it, coordinates averaged with the scores as weights; the merged
    detection keeps the best score. Averaging instead of dropping steadies the box and keypoints
    from frame to frame. Returns lists sorted by score, best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    remaining = np.arange(len(scores))
    out = []
    while remaining.size:
        top = boxes[remaining[0]]
        rest = boxes[remaining]
        iw = np.clip(np.minimum(rest[:, 2], top[2]) - np.maximum(rest[:, 0], top[0]), 0, None)
        ih = np.clip(np.minimum(rest[:, 3], top[3]) - np.maximum(rest[:, 1], top[1]), 0, None)
        inter = iw * ih
        union = areas[remaining] + areas[remaining[0]] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        merged = remaining[iou > iou_threshold]
        if merged.size == 0:  # degenerate (zero-area) top box: keep it alone
            merged = remaining[:1]
        w = scores[merged] / scores[merged].sum()
        out.append(
            (
                (boxes[merged] * w[:, None]).sum(axis=0),
                (keypoints[merged] * w[:, None, None]).sum(axis=0),
                float(scores[remaining[0]]),
            )
        )
        remaining = remaining[~np.isin(remaining, merged)]
    return out


def check_bgr(bgr: np.ndarray) -> None:
    """InputError unless `bgr` is an H x W x 3 uint8 image (views and slices are fine)."""
    if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        got = getattr(bgr, "shape", type(bgr).__name__), getattr(bgr, "dtype", "")
        raise InputError(f"expected a BGR uint8 image of shape (H, W, 3), got {got[0]} {got[1]}")
    if bgr.shape[0] < 2 or bgr.shape[1] < 2:
        raise InputError(f"image too small to search for a face: {bgr.shape[1]}x{bgr.shape[0]} px")


class FaceDetector:
    """Finds faces in a BGR image. One onnxruntime session; not thread-safe (one per thread)."""

    def __init__(self, models_dir: str | os.PathLike | None = None, *, min_score: float = 0.5, threads: int = 1):
        self.min_score = float(min_score)
        self._session = open_session(model_path(models_dir, DETECTOR_FILE), threads=threads)
        self._input_name = self._session.get_inputs()[0].name
        # The two outputs are told apart by shape: 16 regression values vs 1 score per anchor.
        outs = {o.shape[-1]: o.name for o in self._session.get_outputs()}
        self._boxes_name, self._scores_name = outs[4 + 2 * NUM_KEYPOINTS], outs[1]
        self._anchors = ssd_anchor_centres()
        # One input buffer reused by every call: no per-frame allocation (hence not thread-safe).
        self._tensor = np.empty((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)

    def letterbox(self, bgr: np.ndarray, region: tuple[float, float, float] | None = None) -> np.ndarray:
        """Fills and returns the input tensor for a square region (x0, y0, side) of the image.

        The default region is the whole image letterboxed: a square of the long side, centred,
        so the short side gets equal black bars. Tensor coordinate u in [0, 1] is image
        x = x0 + u * side (the warp maps the region's corners onto the tensor's corners).
        """
        x0, y0, side = region if region is not None else self.whole_image_region(bgr.shape)
        s = INPUT_SIZE / side
        warp = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]])
        small = cv2.warpAffine(
            bgr, warp, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
        )
        # BGR -> RGB and [0, 255] -> [-1, 1]; the black padding becomes -1, as in MediaPipe.
        np.multiply(small[:, :, ::-1], 2.0 / 255.0, out=self._tensor[0], casting="unsafe")
        self._tensor -= 1.0
        return self._tensor

    @staticmethod
    def whole_image_region(shape) -> tuple[float, float, float]:
        h, w = shape[:2]
        side = float(max(h, w))
        return (w - side) / 2.0, (h - side) / 2.0, side

    def _raw_detections(self, bgr: np.ndarray, region: tuple[float, float, float]):
        """Decoded boxes (n, 4), keypoints (n, 6, 2) in image px and scores (n,) above min_score."""
        tensor = self.letterbox(bgr, region)
        raw_boxes, raw_scores = self._session.run([self._boxes_name, self._scores_name], {self._input_name: tensor})
        raw_boxes, logits = raw_boxes.reshape(-1, 4 + 2 * NUM_KEYPOINTS), raw_scores.reshape(-1).astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -SCORE_CLIP, SCORE_CLIP)))
        keep = np.flatnonzero(scores >= self.min_score)
        raw, anchors = raw_boxes[keep].astype(np.float64), self._anchors[keep].astype(np.float64)
        # Offsets are in tensor pixels relative to the anchor centre; anchors are 1x1.
        centre = raw[:, 0:2] / INPUT_SIZE + anchors
        half = raw[:, 2:4] / INPUT_SIZE / 2.0
        x0, y0, side = region
        origin = np.array([x0, y0])
        # Back to image pixels (a uniform scale, so IoU in the NMS is unaffected).
        boxes = np.concatenate([centre - half, centre + half], axis=1) * side + np.tile(origin, 2)
        kps = (raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) / INPUT_SIZE + anchors[:, None, :]) * side + origin
        return boxes, kps, scores[keep]

    @staticmethod
    def _to_detections(merged) -> list[FaceDetection]:
        return [FaceDetection(box=b.astype(np.float32), score=s, keypoints=k.astype(np.float32)) for b, k, s in merged]

    def detect(self, bgr: np.ndarray) -> list[FaceDetection]:
        """Faces in a BGR uint8 image, best score first (MediaPipe's single full-image pass).

        The short-range model finds faces from roughly 15 % to 80 % of the image's long side;
        use detect_multiscale to find smaller ones.
        """
        check_bgr(bgr)
        boxes, kps, scores = self._raw_detections(bgr, self.whole_image_region(bgr.shape))
        return self._to_detections(weighted_nms(boxes, kps, scores, NMS_IOU_THRESHOLD))

    def detect_multiscale(self, bgr: np.ndarray, *, min_face_px: int = 64, max_levels: int = 3,
                          tile_factor: float = 5.0) -> list[FaceDetection]:
        """Faces of any size down to about `min_face_px`: the full-image pass plus square tiles.

        Tiles of the short side, then half of it, and so on (at most `max_levels` tile sizes,
        none smaller than tile_factor x min_face_px: at 5, such a face spans ~25 px of the
        model's 128; at 3, ~43 px, which finds the 45-64 px faces the default misses in a 1080p
        photo, at about six times the model calls), overlapping by half. A face is kept from a
        tile only if its box lies inside that tile (or meets the image edge), so a face cut by a
        tile border is not counted twice; with half-tile overlap every face up to half a tile
        fits wholly inside some tile, and larger ones are found at the level above. Detections
        of one face at several scales are merged by the same weighted NMS. Costs one model call per tile (~2.5 ms each).
        """
        check_bgr(bgr)
        h, w = bgr.shape[:2]
        found = [self._raw_detections(bgr, self.whole_image_region(bgr.shape))]
        side = float(min(h, w))
        if max(h, w) < 1.2 * side:  # square-ish: the first tile level would repeat the full pass
            side /= 2.0
        for _ in range(max_levels):
            if side < tile_factor * min_face_px:
                break
            for x0 in _tile_starts(w, side):
                for y0 in _tile_starts(h, side):
                    boxes, kps, scores = self._raw_detections(bgr, (x0, y0, side))
                    tol = 0.02 * side
                    inside = (
                        ((boxes[:, 0] >= x0 - tol) | (x0 <= 0)) & ((boxes[:, 1] >= y0 - tol) | (y0 <= 0))
                        & ((boxes[:, 2] <= x0 + side + tol) | (x0 + side >= w))
                        & ((boxes[:, 3] <= y0 + side + tol) | (y0 + side >= h))
                    )
                    found.append((boxes[inside], kps[inside], scores[inside]))
            side /= 2.0
        boxes, kps, scores = (np.concatenate(parts) for parts in zip(*found))
        return self._to_detections(weighted_nms(boxes, kps, scores, NMS_IOU_THRESHOLD))


def _tile_starts(length: int, side: float) -> list[float]:
    """Starts of square tiles covering [0, length) with about half a tile of overlap."""
    if length <= side:
        return [0.0]
    count = int(np.ceil((length - side) / (side / 2.0))) + 1
    return [float(v) for v in np.linspace(0.0, length - side, count)]
