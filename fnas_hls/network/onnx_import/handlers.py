"""The operator registry: one handler per supported ONNX operator, and the list of supported operators
(its order is the order the unsupported-operator error names them in)."""

from __future__ import annotations

from collections.abc import Callable

import onnx

from fnas_hls.network.onnx_import.ops_activation import (
    _clip,
    _hard_sigmoid,
    _hard_swish,
    _leaky_relu,
    _relu,
    _sigmoid,
    _tanh,
)
from fnas_hls.network.onnx_import.ops_conv import _batchnorm, _conv, _gemm, _matmul
from fnas_hls.network.onnx_import.ops_merge import _add, _concat, _mul, _sum
from fnas_hls.network.onnx_import.ops_pool import _avgpool, _gap, _gmp, _maxpool, _reduce_mean
from fnas_hls.network.onnx_import.ops_shape import (
    _flatten,
    _pad,
    _reshape,
    _shape,
    _softmax,
    _squeeze,
    _unsqueeze,
)
from fnas_hls.network.onnx_import.walk import _Importer

_Handler = Callable[[_Importer, onnx.NodeProto, str], None]


#: One handler per supported ONNX operator (Identity and Dropout are dropped before the walk).
_HANDLERS: dict[str, _Handler] = {
    "Conv": _conv,
    "Relu": _relu,
    "Clip": _clip,
    "LeakyRelu": _leaky_relu,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "Sigmoid": _sigmoid,
    "Tanh": _tanh,
    "BatchNormalization": _batchnorm,
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": _gap,
    "GlobalMaxPool": _gmp,
    "ReduceMean": _reduce_mean,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "Sum": _sum,
    "Concat": _concat,
    "Mul": _mul,
    "Pad": _pad,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Shape": _shape,
}


#: The operators named in the unsupported-operator error.
SUPPORTED_OPS: tuple[str, ...] = (*_HANDLERS, "Dropout", "Identity", "Constant")
