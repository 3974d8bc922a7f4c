"""A tiny NumPy interpreter for the TensorFlow Lite operators of the face models (tests only).

It runs the .tflite graph directly in TensorFlow Lite's own layout (NHWC activations, OHWI and
1HWC weights) with plain padding + shifted-slice loops in float64, so it shares nothing with
the ONNX converter except the flatbuffer reader; every intermediate result is checked against
the shape the .tflite file declares, which also catches a misread stride or padding option.
"""

from __future__ import annotations

import numpy as np

from dhlive_cli.face import tflite as tfl


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, kh: int, kw: int, stride_h: int, stride_w: int, padding: int, fill: float):
    """Yields (ky, kx, slice) over the kernel taps of a padded NHWC input."""
    _, h, w, _ = x.shape
    if padding == tfl.PADDING_SAME:
        (pt, pb), (pl, pr) = _same_pads(h, kh, stride_h), _same_pads(w, kw, stride_w)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    oh = (xp.shape[1] - kh) // stride_h + 1
    ow = (xp.shape[2] - kw) // stride_w + 1
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, xp[:, ky : ky + stride_h * (oh - 1) + 1 : stride_h, kx : kx + stride_w * (ow - 1) + 1 : stride_w, :]


def _activation(x: np.ndarray, fused: int) -> np.ndarray:
    if fused == tfl.ACT_NONE:
        return x
    if fused == tfl.ACT_RELU:
        return np.maximum(x, 0)
    if fused == tfl.ACT_RELU6:
        return np.clip(x, 0, 6)
    if fused == tfl.ACT_RELU_N1_TO_1:
        return np.clip(x, -1, 1)
    raise NotImplementedError(f"fused activation {fused}")


def run_reference(data: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Runs the model's single subgraph on `inputs` (NHWC); returns the outputs in float64."""
    model = tfl.Model.from_bytes(data)
    graph = model.subgraphs[0]
    tensors, buffers = graph.tensors, model.buffers
    codes = [c.builtin_code for c in model.operator_codes]
    values: dict[int, np.ndarray] = {}

    def get(idx: int) -> np.ndarray:
        if idx not in values:
            t = tensors[idx]
            raw = buffers[t.buffer].data
            values[idx] = np.frombuffer(raw.tobytes(), dtype=tfl.TENSOR_DTYPES[t.type]).reshape(t.shape)
        return values[idx]

    for idx, x in zip(graph.inputs, inputs):
        values[idx] = np.asarray(x, np.float64)
    for op in graph.operators:
        code = codes[op.opcode_index]
        opts = op.options()
        x = get(op.inputs[0])
        if code == tfl.DEQUANTIZE:
            y = x.astype(np.float32).astype(np.float64)
        elif code in (tfl.CONV_2D, tfl.DEPTHWISE_CONV_2D):
            depthwise = code == tfl.DEPTHWISE_CONV_2D
            o = tfl.depthwise_conv2d_options(opts) if depthwise else tfl.conv2d_options(opts)
            assert (o.dilation_h, o.dilation_w) == (1, 1)
            w = get(op.inputs[1]).astype(np.float64)
            bias = get(op.inputs[2]).astype(np.float64) if len(op.inputs) > 2 and op.inputs[2] >= 0 else 0.0
            y = 0.0
            for ky, kx, patch in _windows(x, w.shape[1], w.shape[2], o.stride_h, o.stride_w, o.padding, 0.0):
                if depthwise:
                    y = y + np.repeat(patch, o.depth_multiplier, axis=-1) * w[0, ky, kx]
                else:
                    y = y + patch @ w[:, ky, kx, :].T
            y = _activation(y + bias, o.activation)
        elif code == tfl.MAX_POOL_2D:
            o = tfl.pool2d_options(opts)
            y = None
            for _, _, patch in _windows(x, o.filter_h, o.filter_w, o.stride_h, o.stride_w, o.padding, -np.inf):
                y = patch if y is None else np.maximum(y, patch)
            y = _activation(y, o.activation)
        elif code == tfl.ADD:
            y = _activation(x + get(op.inputs[1]), tfl.add_options(opts))
        elif code == tfl.RELU:
            y = np.maximum(x, 0)
        elif code == tfl.PRELU:
            slope = get(op.inputs[1]).astype(np.float64)
            y = np.where(x >= 0, x, x * slope)
        elif code == tfl.PAD:
            y = np.pad(x, get(op.inputs[1]).reshape(-1, 2).tolist())
        elif code == tfl.RESHAPE:
            new_shape = tfl.reshape_new_shape(opts)
            if new_shape is None:
                new_shape = tuple(get(op.inputs[1]).tolist())
            y = x.reshape(new_shape)
        elif code == tfl.CONCATENATION:
            axis, fused = tfl.concatenation_options(opts)
            y = _activation(np.concatenate([get(i) for i in op.inputs], axis=axis), fused)
        else:
            raise NotImplementedError(f"operator code {code}")
        out_idx = op.outputs[0]
        assert y.shape == tensors[out_idx].shape, (tensors[out_idx].name, y.shape, tensors[out_idx].shape)
        values[out_idx] = y
    return [values[i] for i in graph.outputs]
