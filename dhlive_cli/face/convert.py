"""Set-up step: MediaPipe's face .tflite models to ONNX, with a converter of our own.

    python -m dhlive_cli.face.convert --out models/face [--cache build/face] [--wheel FILE]

Downloads the mediapipe 0.10.21 wheel once (`pip download --no-deps`, kept in the cache
folder), takes the two models out of it, checks their sha256, converts them and writes
`face_detection_short_range.onnx`, `face_landmark.onnx`, their .tflite sources and
`LICENSE-mediapipe` (the wheel's Apache-2.0 text) to the output folder. MediaPipe itself is never installed or imported.

Why our own converter: tflite2onnx fails on PRELU with a 3-D slope and tf2onnx needs
TensorFlow. The two models use only a handful of operators, all with direct ONNX equivalents.

Layout: TensorFlow Lite is NHWC with OHWI convolution weights (depthwise: 1 x H x W x C*M);
ONNX convolutions are NCHW. The graph keeps the tflite interface (NHWC input and outputs, same
tensor names) and transposes once after the input; every 4-D activation inside runs NCHW with
weights converted at conversion time. A tensor is transposed back to the tflite layout only
where an operator needs it (RESHAPE of the detector heads, graph outputs), so the result is
exactly the tflite computation. fp16 weights behind DEQUANTIZE are folded to float32 constants.

The output is deterministic: the same wheel gives byte-identical .onnx files.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from dhlive_cli.face import _runtime
from dhlive_cli.face import tflite as tfl

log = logging.getLogger(__name__)

MEDIAPIPE_VERSION = "0.10.21"
# The wheel for CPython 3.11 on x86-64 Linux; the .tflite files are the same in every wheel of
# a release, and pinning one platform makes the download reproducible anywhere.
WHEEL_NAME = f"mediapipe-{MEDIAPIPE_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
PIP_DOWNLOAD_ARGS = (
    "download", "--no-deps", f"mediapipe=={MEDIAPIPE_VERSION}", "--python-version", "3.11",
    "--only-binary", ":all:", "--platform", "manylinux_2_28_x86_64",
)
LICENSE_MEMBER = f"mediapipe-{MEDIAPIPE_VERSION}.dist-info/LICENSE"

# onnx file -> (member of the wheel, sha256 of the .tflite). A different hash means a different
# model, whose pre-processing constants in detection.py / mesh.py might no longer hold.
MODELS = {
    "face_detection_short_range.onnx": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    ),
    "face_landmark.onnx": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
}

# Opset 17 with IR version 8 loads in every onnxruntime our `cpu`/`gpu` extras allow (>= 1.18).
OPSET = 17
IR_VERSION = 8

# NHWC axis -> NCHW axis for 4-D tensors.
NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)


class ConversionError(RuntimeError):
    """The .tflite file uses something this converter does not handle."""


def same_padding(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding for one spatial axis as (begin, end).

    The output has ceil(in / stride) samples; when the total padding is odd the extra sample
    goes at the end, which ONNX's auto_pad would also do but only explicit pads make certain.
    """
    out = -(-in_size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2, total - total // 2


class TfliteToOnnx:
    """Converts the single subgraph of a float .tflite model to an ONNX ModelProto."""

    def __init__(self, data: bytes, graph_name: str):
        self.model = tfl.Model.from_bytes(data)
        if len(self.model.subgraphs) != 1:
            raise ConversionError(f"{graph_name}: expected one subgraph, found {len(self.model.subgraphs)}")
        self.graph_name = graph_name
        self.subgraph = self.model.subgraphs[0]
        self.tensors = self.subgraph.tensors
        self.buffers = self.model.buffers
        self.op_codes = [c.builtin_code for c in self.model.operator_codes]
        self.names = self._unique_names()
        self.constants: dict[int, np.ndarray] = {}  # tensor index -> value (tflite layout)
        self.values: dict[tuple[int, str], str] = {}  # (tensor index, "nchw" | "tflite") -> onnx name
        self.nodes: list = []
        self.initializers: list = []

    # ---- helpers -----------------------------------------------------------------------------

    def _unique_names(self) -> list[str]:
        seen: dict[str, int] = {}
        names = []
        for i, t in enumerate(self.tensors):
            name = t.name or f"tensor_{i}"
            if name in seen:
                name = f"{name}_{i}"
            seen[name] = i
            names.append(name)
        return names

    def shape(self, idx: int) -> tuple[int, ...]:
        return self.tensors[idx].shape

    def constant(self, idx: int) -> np.ndarray | None:
        """The value of a constant tensor (weights folded through DEQUANTIZE, or a buffer)."""
        if idx in self.constants:
            return self.constants[idx]
        t = self.tensors[idx]
        raw = self.buffers[t.buffer].data if t.buffer < len(self.buffers) else np.zeros(0, np.uint8)
        if raw.size == 0:
            return None
        if t.type not in tfl.TENSOR_DTYPES:
            raise ConversionError(f"{self.graph_name}: tensor {t.name!r} has unsupported type {t.type}")
        if t.is_quantized:
            raise ConversionError(f"{self.graph_name}: tensor {t.name!r} is integer-quantized; only float models convert")
        value = np.frombuffer(raw.tobytes(), dtype=tfl.TENSOR_DTYPES[t.type]).reshape(t.shape)
        self.constants[idx] = value
        return value

    def initializer(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def value(self, idx: int, layout: str) -> str:
        """The ONNX name of tensor `idx` in `layout`, transposing on demand (4-D only)."""
        if (idx, layout) in self.values:
            return self.values[(idx, layout)]
        if len(self.shape(idx)) != 4:
            other = "tflite" if layout == "nchw" else "nchw"
            if (idx, other) in self.values:  # below 4-D both layouts are the same tensor
                return self.values[(idx, other)]
        elif layout == "nchw" and (idx, "tflite") in self.values:
            name = self.node("Transpose", [self.values[(idx, "tflite")]], self.names[idx] + "/nchw", perm=[0, 3, 1, 2])
            self.values[(idx, layout)] = name
            return name
        elif layout == "tflite" and (idx, "nchw") in self.values:
            name = self.node("Transpose", [self.values[(idx, "nchw")]], self.names[idx], perm=[0, 2, 3, 1])
            self.values[(idx, layout)] = name
            return name
        raise ConversionError(f"{self.graph_name}: tensor {self.names[idx]!r} used before it is computed")

    def produce(self, idx: int, layout: str) -> str:
        """Name for an operator's output `idx` computed in `layout`."""
        if len(self.shape(idx)) != 4:
            layout = "tflite"
        name = self.names[idx] + ("/nchw" if layout == "nchw" else "")
        self.values[(idx, layout)] = name
        return name

    def activation(self, name: str, fused: int, final: str) -> str:
        """Applies a fused activation to `name`, the result named `final`."""
        if fused == tfl.ACT_NONE:
            return self.node("Identity", [name], final) if name != final else name
        if fused == tfl.ACT_RELU:
            return self.node("Relu", [name], final)
        if fused in (tfl.ACT_RELU6, tfl.ACT_RELU_N1_TO_1):
            lo, hi = (0.0, 6.0) if fused == tfl.ACT_RELU6 else (-1.0, 1.0)
            bounds = [
                self.initializer(final + "/min", np.array(lo, np.float32)),
                self.initializer(final + "/max", np.array(hi, np.float32)),
            ]
            return self.node("Clip", [name, *bounds], final)
        if fused == 4:  # TANH
            return self.node("Tanh", [name], final)
        raise ConversionError(f"{self.graph_name}: fused activation {tfl.ACTIVATION_NAMES.get(fused, fused)} not supported")

    def fused(self, op_type: str, inputs: list[str], out_idx: int, fused: int, layout: str = "nchw", **attrs) -> None:
        final = self.produce(out_idx, layout)
        if fused == tfl.ACT_NONE:
            self.node(op_type, inputs, final, **attrs)
        else:
            self.activation(self.node(op_type, inputs, final + "/pre_activation", **attrs), fused, final)

    def _conv_pads(self, in_idx: int, kernel_hw, opts) -> list[int]:
        if opts.padding == tfl.PADDING_VALID:
            return [0, 0, 0, 0]
        _, h, w, _ = self.shape(in_idx)
        top, bottom = same_padding(h, kernel_hw[0], opts.stride_h, opts.dilation_h)
        left, right = same_padding(w, kernel_hw[1], opts.stride_w, opts.dilation_w)
        return [top, left, bottom, right]

    def _check_shape(self, out_idx: int, expected: tuple[int, ...]) -> None:
        if tuple(self.shape(out_idx)) != tuple(expected):
            raise ConversionError(
                f"{self.graph_name}: {self.names[out_idx]!r} should be {self.shape(out_idx)}, conversion gives {expected}"
            )

    # ---- operators ---------------------------------------------------------------------------

    def op_dequantize(self, op) -> None:
        (src,), (dst,) = op.inputs, op.outputs
        value = self.constant(src)
        if value is None:
            raise ConversionError(f"{self.graph_name}: DEQUANTIZE of a non-constant tensor is not supported")
        if self.tensors[src].is_quantized or value.dtype != np.float16:
            raise ConversionError(f"{self.graph_name}: only DEQUANTIZE of float16 weights is supported")
        self.constants[dst] = value.astype(np.float32)

    def _weights_and_bias(self, op):
        weights = self.constant(op.inputs[1])
        bias = self.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if weights is None:
            raise ConversionError(f"{self.graph_name}: convolution weights must be constant")
        return weights.astype(np.float32), None if bias is None else bias.astype(np.float32)

    def op_conv_2d(self, op) -> None:
        opts = tfl.conv2d_options(op.options())
        weights, bias = self._weights_and_bias(op)  # OHWI
        out_idx = op.outputs[0]
        base = self.names[out_idx]
        inputs = [self.value(op.inputs[0], "nchw"), self.initializer(base + "/weight", weights.transpose(0, 3, 1, 2))]
        if bias is not None:
            inputs.append(self.initializer(base + "/bias", bias))
        pads = self._conv_pads(op.inputs[0], weights.shape[1:3], opts)
        self.fused(
            "Conv", inputs, out_idx, opts.activation, kernel_shape=list(weights.shape[1:3]),
            strides=[opts.stride_h, opts.stride_w], dilations=[opts.dilation_h, opts.dilation_w], pads=pads,
        )

    def op_depthwise_conv_2d(self, op) -> None:
        opts = tfl.depthwise_conv2d_options(op.options())
        weights, bias = self._weights_and_bias(op)  # 1 x H x W x (C * M)
        in_channels = self.shape(op.inputs[0])[3]
        out_idx = op.outputs[0]
        base = self.names[out_idx]
        # tflite output channel c*M + m reads input channel c; ONNX group=C gives output channel
        # o the input channel o // M: the same order, so the weights only need (C*M, 1, H, W).
        onnx_weights = weights[0].transpose(2, 0, 1)[:, None, :, :]
        if onnx_weights.shape[0] != in_channels * max(opts.depth_multiplier, 1):
            raise ConversionError(f"{self.graph_name}: depthwise weights {weights.shape} do not match {in_channels} channels")
        inputs = [self.value(op.inputs[0], "nchw"), self.initializer(base + "/weight", onnx_weights)]
        if bias is not None:
            inputs.append(self.initializer(base + "/bias", bias))
        pads = self._conv_pads(op.inputs[0], weights.shape[1:3], opts)
        self.fused(
            "Conv", inputs, out_idx, opts.activation, kernel_shape=list(weights.shape[1:3]), group=in_channels,
            strides=[opts.stride_h, opts.stride_w], dilations=[opts.dilation_h, opts.dilation_w], pads=pads,
        )

    def op_max_pool_2d(self, op) -> None:
        opts = tfl.pool2d_options(op.options())
        pads = self._conv_pads(op.inputs[0], (opts.filter_h, opts.filter_w), _PoolAsConv(opts))
        # ONNX MaxPool ignores padded cells, as TensorFlow's SAME max pooling does.
        self.fused(
            "MaxPool", [self.value(op.inputs[0], "nchw")], op.outputs[0], opts.activation,
            kernel_shape=[opts.filter_h, opts.filter_w], strides=[opts.stride_h, opts.stride_w], pads=pads,
        )

    def op_relu(self, op) -> None:
        x = op.inputs[0]
        layout = "nchw" if len(self.shape(x)) == 4 else "tflite"
        self.node("Relu", [self.value(x, layout)], self.produce(op.outputs[0], layout))

    def op_prelu(self, op) -> None:
        x, slope_idx = op.inputs
        slope = self.constant(slope_idx)
        if slope is None:
            raise ConversionError(f"{self.graph_name}: PRELU slope must be constant")
        slope = slope.astype(np.float32)
        out_idx = op.outputs[0]
        if len(self.shape(x)) == 4:
            # The slope broadcasts against NHWC from the right: (1, 1, C) or (C,) per channel,
            # which for NCHW is (C, 1, 1); a full (H, W, C) slope is transposed as a whole.
            full = np.broadcast_to(slope, self.shape(x)[1:]) if slope.ndim < 3 or slope.shape[:2] != (1, 1) else None
            nchw_slope = full.transpose(2, 0, 1) if full is not None else slope.reshape(-1)[:, None, None]
            inputs = [self.value(x, "nchw"), self.initializer(self.names[out_idx] + "/slope", np.ascontiguousarray(nchw_slope))]
            self.node("PRelu", inputs, self.produce(out_idx, "nchw"))
        else:
            inputs = [self.value(x, "tflite"), self.initializer(self.names[out_idx] + "/slope", slope)]
            self.node("PRelu", inputs, self.produce(out_idx, "tflite"))

    def op_add(self, op) -> None:
        a, b = op.inputs
        fused = tfl.add_options(op.options())
        out_idx = op.outputs[0]
        rank4 = len(self.shape(out_idx)) == 4
        layout = "nchw" if rank4 else "tflite"
        inputs = []
        for idx in (a, b):
            value = self.constant(idx)
            if value is None:
                if len(self.shape(idx)) != len(self.shape(out_idx)):
                    raise ConversionError(f"{self.graph_name}: ADD with broadcasting between ranks is not supported")
                inputs.append(self.value(idx, layout))
                continue
            value = value.astype(np.float32)
            if rank4 and value.size > 1:
                if value.shape[-1] != value.size:
                    raise ConversionError(f"{self.graph_name}: ADD of a constant other than per-channel is not supported")
                value = value.reshape(-1, 1, 1)
            inputs.append(self.initializer(self.names[out_idx] + f"/addend_{len(inputs)}", value))
        self.fused("Add", inputs, out_idx, fused, layout)

    def op_pad(self, op) -> None:
        x, pads_idx = op.inputs[:2]
        paddings = self.constant(pads_idx)
        if paddings is None:
            raise ConversionError(f"{self.graph_name}: PAD paddings must be constant")
        paddings = paddings.astype(np.int64).reshape(-1, 2)
        out_idx = op.outputs[0]
        if len(self.shape(x)) == 4:
            order, layout = [0, 3, 1, 2], "nchw"
        else:
            order, layout = list(range(len(self.shape(x)))), "tflite"
        begins, ends = paddings[order, 0], paddings[order, 1]
        pads = self.initializer(self.names[out_idx] + "/pads", np.concatenate([begins, ends]))
        self.node("Pad", [self.value(x, layout), pads], self.produce(out_idx, layout), mode="constant")

    def op_reshape(self, op) -> None:
        # Reshape is defined on the NHWC element order, so it reads the tflite layout. The
        # output's static shape in the file is the resolved target shape (no -1 left).
        out_idx = op.outputs[0]
        target = self.initializer(self.names[out_idx] + "/shape", np.array(self.shape(out_idx), np.int64))
        self.node("Reshape", [self.value(op.inputs[0], "tflite"), target], self.produce(out_idx, "tflite"))

    def op_concatenation(self, op) -> None:
        axis, fused = tfl.concatenation_options(op.options())
        out_idx = op.outputs[0]
        rank = len(self.shape(out_idx))
        axis = axis % rank
        layout = "tflite"
        if rank == 4:
            layout, axis = "nchw", NHWC_TO_NCHW_AXIS[axis]
        inputs = [self.value(i, layout) for i in op.inputs]
        self.fused("Concat", inputs, out_idx, fused, layout, axis=axis)

    HANDLERS = {
        tfl.DEQUANTIZE: op_dequantize,
        tfl.CONV_2D: op_conv_2d,
        tfl.DEPTHWISE_CONV_2D: op_depthwise_conv_2d,
        tfl.MAX_POOL_2D: op_max_pool_2d,
        tfl.RELU: op_relu,
        tfl.PRELU: op_prelu,
        tfl.ADD: op_add,
        tfl.PAD: op_pad,
        tfl.RESHAPE: op_reshape,
        tfl.CONCATENATION: op_concatenation,
    }

    # ---- whole graph -------------------------------------------------------------------------

    def convert(self, metadata: dict[str, str] | None = None):
        import onnx
        from onnx import TensorProto, helper

        operators = self.subgraph.operators
        unknown = sorted(
            {self.op_codes[op.opcode_index] for op in operators} - set(self.HANDLERS)
        )
        if unknown:
            names = ", ".join(f"{tfl.OPERATOR_NAMES.get(c, 'builtin')} (code {c})" for c in unknown)
            raise ConversionError(f"{self.graph_name}: unsupported TensorFlow Lite operators: {names}")
        for idx in self.subgraph.inputs:
            if self.tensors[idx].type != 0:
                raise ConversionError(f"{self.graph_name}: only float32 inputs are supported")
            self.values[(idx, "tflite")] = self.names[idx]
        for op in operators:
            self.HANDLERS[self.op_codes[op.opcode_index]](self, op)
        outputs = []
        for idx in self.subgraph.outputs:
            name = self.value(idx, "tflite")
            if name != self.names[idx]:
                self.node("Identity", [name], self.names[idx])
            outputs.append(helper.make_tensor_value_info(self.names[idx], TensorProto.FLOAT, list(self.shape(idx))))
        inputs = [
            helper.make_tensor_value_info(self.names[i], TensorProto.FLOAT, list(self.shape(i))) for i in self.subgraph.inputs
        ]
        graph = helper.make_graph(self.nodes, self.graph_name, inputs, outputs, self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dhlive_cli.face.convert",
            producer_version="1",
        )
        model.ir_version = IR_VERSION
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model, full_check=True)
        return model


class _PoolAsConv:
    """Pool options seen through the fields _conv_pads reads (pools have no dilation)."""

    def __init__(self, opts: tfl.PoolOptions):
        self.padding, self.stride_h, self.stride_w = opts.padding, opts.stride_h, opts.stride_w
        self.dilation_h = self.dilation_w = 1


def convert_tflite(data: bytes, graph_name: str, metadata: dict[str, str] | None = None) -> bytes:
    """A .tflite model's bytes to a serialized ONNX model."""
    return TfliteToOnnx(data, graph_name).convert(metadata).SerializeToString(deterministic=True)


# ---- the set-up step ---------------------------------------------------------------------------


def fetch_wheel(cache: Path) -> Path:
    """The mediapipe wheel in `cache`, downloaded with pip if it is not there yet."""
    wheel = cache / WHEEL_NAME
    if wheel.is_file():
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s (about 36 MB) into %s", WHEEL_NAME, cache)
    cmd = [sys.executable, "-m", "pip", *PIP_DOWNLOAD_ARGS, "-d", str(cache)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not wheel.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"could not download mediapipe {MEDIAPIPE_VERSION}: {' / '.join(tail)}")
    return wheel


def read_member(wheel: zipfile.ZipFile, member: str, sha256: str | None) -> bytes:
    data = wheel.read(member)
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise RuntimeError(f"{member}: sha256 {digest} is not the expected {sha256}")
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` in one step, so an interrupted run never leaves a half file for make."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def convert_all(out: Path, wheel_path: Path) -> dict[str, str]:
    """Writes the ONNX models and the licence into `out`; returns {file: sha256 of the .tflite}."""
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel_path) as wheel:
        write_atomic(out / "LICENSE-mediapipe", read_member(wheel, LICENSE_MEMBER, None))
        for onnx_name, (member, sha256) in MODELS.items():
            data = read_member(wheel, member, sha256)
            metadata = {
                "dhlive.source": f"mediapipe {MEDIAPIPE_VERSION} wheel: {member}",
                "dhlive.source_sha256": sha256,
                "dhlive.license": "Apache-2.0 (Google MediaPipe), see LICENSE-mediapipe",
                "dhlive.layout": "NHWC input and outputs as in the .tflite; NCHW inside",
            }
            onnx_bytes = convert_tflite(data, Path(member).stem, metadata)
            digest = hashlib.sha256(onnx_bytes).hexdigest()
            if digest != _runtime.SHA256[onnx_name]:  # the run time would refuse it as damaged
                raise RuntimeError(f"{onnx_name}: the conversion has sha256 {digest}, dhlive_cli/face/_runtime.py "
                                   f"expects {_runtime.SHA256[onnx_name]} (update SHA256 there if the converter "
                                   "changed on purpose)")
            write_atomic(out / onnx_name, onnx_bytes)
            # The source stays next to its conversion (1.4 MB for both) so tests/test_face.py
            # can check the ONNX graph against the .tflite without the wheel.
            write_atomic(out / Path(member).name, data)
            log.info("wrote %s", out / onnx_name)
    return {name: sha for name, (_, sha) in MODELS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dhlive_cli.face.convert", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the .onnx files (models/face)")
    parser.add_argument("--cache", type=Path, default=Path("build/face"), help="where the wheel is kept between runs")
    parser.add_argument("--wheel", type=Path, help="use this mediapipe wheel instead of downloading one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        wheel = args.wheel if args.wheel else fetch_wheel(args.cache)
        convert_all(args.out, wheel)
    except (RuntimeError, OSError, zipfile.BadZipFile, ValueError) as e:
        print(f"error: face model conversion failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
