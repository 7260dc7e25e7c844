"""Load a model given on the command line: an architecture YAML or an ONNX file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fnas_hls.errors import FnasError
from fnas_hls.network.arch import load_network_yaml
from fnas_hls.network.ir import Network


@dataclass(frozen=True)
class LoadedModel:
    network: Network
    notes: tuple[str, ...] = ()


def load_model(
    path: str | Path, allow_host_ops: bool = False, advice: str = "", need_weights: bool = False
) -> LoadedModel:
    """Read ``path`` (``.yaml``/``.yml`` architecture or ``.onnx``) into the IR; ``advice`` and
    ``need_weights`` as ``load_onnx`` takes them."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return LoadedModel(load_network_yaml(p))
    if suffix == ".onnx":
        from fnas_hls.network.onnx_frontend import load_onnx  # onnx is imported only when needed

        result = load_onnx(p, allow_host_ops=allow_host_ops, advice=advice, need_weights=need_weights)
        return LoadedModel(result.network, tuple(result.notes))
    raise FnasError(
        f"{p}: unknown model format '{p.suffix or '(none)'}'; give an architecture .yaml or an .onnx file"
    )
