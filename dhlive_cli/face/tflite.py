"""Read-only access to the parts of a .tflite file (a TensorFlow Lite flatbuffer) we convert.

Hand-written accessors over the `flatbuffers` runtime for the few tables of TensorFlow Lite's
schema.fbs the face models use; field numbers below are the schema's field ids (a union field
takes two ids: its type, then its value). Everything is read lazily from the file's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flatbuffers import encode, packer, table
from flatbuffers import number_types as nt

FILE_IDENTIFIER = b"TFL3"

# BuiltinOperator codes (schema.fbs): those the face models use, and a few common others so an
# error can name them.
ADD = 0
AVERAGE_POOL_2D = 1
CONCATENATION = 2
CONV_2D = 3
DEPTHWISE_CONV_2D = 4
DEQUANTIZE = 6
LOGISTIC = 14
MAX_POOL_2D = 17
MUL = 18
RELU = 19
RELU6 = 21
RESHAPE = 22
PAD = 34
PRELU = 54
OPERATOR_NAMES = {
    ADD: "ADD", AVERAGE_POOL_2D: "AVERAGE_POOL_2D", CONCATENATION: "CONCATENATION", CONV_2D: "CONV_2D",
    DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D", DEQUANTIZE: "DEQUANTIZE", LOGISTIC: "LOGISTIC",
    MAX_POOL_2D: "MAX_POOL_2D", MUL: "MUL", RELU: "RELU", RELU6: "RELU6", RESHAPE: "RESHAPE", PAD: "PAD",
    PRELU: "PRELU",
}

# TensorType -> numpy dtype (only the types a float model carries).
TENSOR_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}

# Padding and ActivationFunctionType enums.
PADDING_SAME, PADDING_VALID = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
ACTIVATION_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


class _Table:
    """A flatbuffer table with typed getters by schema field id."""

    __slots__ = ("_tab",)

    def __init__(self, buf: bytes, pos: int):
        self._tab = table.Table(buf, pos)

    def _offset(self, field_id: int) -> int:
        return self._tab.Offset(4 + 2 * field_id)

    def _scalar(self, field_id: int, flags, default=0):
        o = self._offset(field_id)
        return self._tab.Get(flags, o + self._tab.Pos) if o else default

    def _string(self, field_id: int) -> str:
        o = self._offset(field_id)
        return self._tab.String(o + self._tab.Pos).decode("utf-8") if o else ""

    def _vector_numpy(self, field_id: int, flags) -> np.ndarray:
        o = self._offset(field_id)
        if not o:
            return np.zeros(0, nt.to_numpy_type(flags))
        return self._tab.GetVectorAsNumpy(flags, o)

    def _tables(self, field_id: int, cls) -> list:
        o = self._offset(field_id)
        if not o:
            return []
        start = self._tab.Vector(o)
        return [cls(self._tab.Bytes, self._tab.Indirect(start + 4 * i)) for i in range(self._tab.VectorLen(o))]

    def _table(self, field_id: int, cls):
        o = self._offset(field_id)
        return cls(self._tab.Bytes, self._tab.Indirect(o + self._tab.Pos)) if o else None


class OperatorCode(_Table):
    @property
    def builtin_code(self) -> int:
        # Codes above 127 live only in the int32 field 3; older files only fill the int8 field 0.
        return max(self._scalar(0, nt.Int8Flags), self._scalar(3, nt.Int32Flags))

    @property
    def custom_code(self) -> str:
        return self._string(1)

    @property
    def version(self) -> int:
        return self._scalar(2, nt.Int32Flags, 1)


class Buffer(_Table):
    @property
    def data(self) -> np.ndarray:
        return self._vector_numpy(0, nt.Uint8Flags)


class Tensor(_Table):
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._vector_numpy(0, nt.Int32Flags))

    @property
    def type(self) -> int:
        return self._scalar(1, nt.Int8Flags)

    @property
    def buffer(self) -> int:
        return self._scalar(2, nt.Uint32Flags)

    @property
    def name(self) -> str:
        return self._string(3)

    @property
    def is_quantized(self) -> bool:
        q = self._table(4, _Table)
        # QuantizationParameters: min 0, max 1, scale 2, zero_point 3.
        return q is not None and q._offset(2) != 0


class _WithInputsOutputs(_Table):
    """Operator and SubGraph both keep their tensor-index lists in fields 1 and 2."""

    @property
    def inputs(self) -> list[int]:
        return [int(v) for v in self._vector_numpy(1, nt.Int32Flags)]

    @property
    def outputs(self) -> list[int]:
        return [int(v) for v in self._vector_numpy(2, nt.Int32Flags)]


class Operator(_WithInputsOutputs):
    @property
    def opcode_index(self) -> int:
        return self._scalar(0, nt.Uint32Flags)

    def options(self) -> _Table | None:
        """The builtin options table (field 4; field 3 is the union's type tag)."""
        return self._table(4, _Table)


class SubGraph(_WithInputsOutputs):
    @property
    def tensors(self) -> list[Tensor]:
        return self._tables(0, Tensor)

    @property
    def operators(self) -> list[Operator]:
        return self._tables(3, Operator)

    @property
    def name(self) -> str:
        return self._string(4)


class Model(_Table):
    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
            raise ValueError("not a TensorFlow Lite model (file identifier TFL3 missing)")
        root = encode.Get(packer.uoffset, data, 0)
        return cls(data, root)

    @property
    def version(self) -> int:
        return self._scalar(0, nt.Uint32Flags)

    @property
    def operator_codes(self) -> list[OperatorCode]:
        return self._tables(1, OperatorCode)

    @property
    def subgraphs(self) -> list[SubGraph]:
        return self._tables(2, SubGraph)

    @property
    def description(self) -> str:
        return self._string(3)

    @property
    def buffers(self) -> list[Buffer]:
        return self._tables(4, Buffer)


# Builtin options tables, by schema field id. Each returns plain Python values.

@dataclass(frozen=True, slots=True)
class ConvOptions:
    padding: int
    stride_w: int
    stride_h: int
    activation: int
    dilation_w: int = 1
    dilation_h: int = 1
    depth_multiplier: int = 1


def conv2d_options(t: _Table) -> ConvOptions:
    # Conv2DOptions: padding 0, stride_w 1, stride_h 2, fused_activation_function 3,
    # dilation_w_factor 4 (default 1), dilation_h_factor 5 (default 1).
    return ConvOptions(
        padding=t._scalar(0, nt.Int8Flags), stride_w=t._scalar(1, nt.Int32Flags), stride_h=t._scalar(2, nt.Int32Flags),
        activation=t._scalar(3, nt.Int8Flags), dilation_w=t._scalar(4, nt.Int32Flags, 1),
        dilation_h=t._scalar(5, nt.Int32Flags, 1),
    )


def depthwise_conv2d_options(t: _Table) -> ConvOptions:
    # DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2, depth_multiplier 3,
    # fused_activation_function 4, dilation_w_factor 5, dilation_h_factor 6.
    return ConvOptions(
        padding=t._scalar(0, nt.Int8Flags), stride_w=t._scalar(1, nt.Int32Flags), stride_h=t._scalar(2, nt.Int32Flags),
        depth_multiplier=t._scalar(3, nt.Int32Flags), activation=t._scalar(4, nt.Int8Flags),
        dilation_w=t._scalar(5, nt.Int32Flags, 1), dilation_h=t._scalar(6, nt.Int32Flags, 1),
    )


@dataclass(frozen=True, slots=True)
class PoolOptions:
    padding: int
    stride_w: int
    stride_h: int
    filter_w: int
    filter_h: int
    activation: int


def pool2d_options(t: _Table) -> PoolOptions:
    # Pool2DOptions: padding 0, stride_w 1, stride_h 2, filter_width 3, filter_height 4,
    # fused_activation_function 5.
    return PoolOptions(
        padding=t._scalar(0, nt.Int8Flags), stride_w=t._scalar(1, nt.Int32Flags), stride_h=t._scalar(2, nt.Int32Flags),
        filter_w=t._scalar(3, nt.Int32Flags), filter_h=t._scalar(4, nt.Int32Flags), activation=t._scalar(5, nt.Int8Flags),
    )


def concatenation_options(t: _Table) -> tuple[int, int]:
    """(axis, fused activation) of ConcatenationOptions (axis 0, fused_activation_function 1)."""
    return t._scalar(0, nt.Int32Flags), t._scalar(1, nt.Int8Flags)


def add_options(t: _Table | None) -> int:
    """Fused activation of AddOptions / MulOptions (fused_activation_function 0)."""
    return t._scalar(0, nt.Int8Flags) if t is not None else ACT_NONE


def reshape_new_shape(t: _Table | None) -> tuple[int, ...] | None:
    """ReshapeOptions.new_shape (field 0), if the file carries it as an option."""
    if t is None or not t._offset(0):
        return None
    return tuple(int(v) for v in t._vector_numpy(0, nt.Int32Flags))
