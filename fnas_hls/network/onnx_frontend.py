"""Read an ONNX model into the network IR: the importer is the package ``fnas_hls.network.onnx_import``
(its docstring explains the steps and which module holds what); this module keeps its public names
importable from here."""

from __future__ import annotations

from fnas_hls.network.onnx_import import SUPPORTED_OPS, ImportResult, load_onnx, network_from_model

__all__ = ["ImportResult", "SUPPORTED_OPS", "load_onnx", "network_from_model"]
