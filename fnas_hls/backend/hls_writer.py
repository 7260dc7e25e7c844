"""The HLS back end: a network with weights becomes a Vivado-HLS / Vitis-HLS project.

Three steps, each a function:

1. ``project_context.check_renderable``: the network (a chain, or a DAG with residual adds and
   concats) has only conv, pool, gap, flatten, fully connected, add and concat layers, with
   weights, and its C names are usable (one FnasError line otherwise). Maps live in DDR at places
   ``feature_map_places`` reuses once no later layer reads them (the dataflow style streams them,
   forks included).
2. ``project_context.build_context``: a pure function of the IR, the analysis (the DSE's tilings
   and the performance model's breakdown) and the quantization plan, giving everything the
   templates in ``templates/`` need; ``render_project`` renders them into a {relative path: text}
   mapping.
3. ``project_folder.write_project``: writes that mapping into a temporary folder next to the
   destination and renames it into place, so that nothing is ever half-written. The manifest
   records the digest of every file written, so a folder is replaced without ``force`` only when
   it holds nothing but an earlier emit's files, unchanged: synthesis output, hand edits and a
   user's files are never lost unasked.

``emit_project`` runs the three with the quantizer (``quantize``) and the bit-exact reference
model (``reference``), which also gives the testbench's golden vectors.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from fnas_hls import __version__
from fnas_hls.analysis import Analysis
from fnas_hls.backend.batching import Progress
from fnas_hls.backend.float_model import run_float
from fnas_hls.backend.project_context import build_context, check_renderable, design_names, ip_vlnv
from fnas_hls.backend.project_folder import MANIFEST, FolderState, check_out_dir, digest, write_project
from fnas_hls.backend.quantize import QuantPlan, quantize_network
from fnas_hls.backend.reference import Agreement, compare_outputs, run_reference
from fnas_hls.boards import Board, load_board
from fnas_hls.errors import FnasError
from fnas_hls.model.tiling import Tiling, TilingPin
from fnas_hls.network.ir import (
    Network,
    Shape,
)
from fnas_hls.paths import data_dir
from fnas_hls.precision import get_precision
from fnas_hls.styles import analyze, get_style

#: Default number of test vectors in the testbench (taken from the calibration inputs).
DEFAULT_TEST_VECTORS = 32
#: Random calibration inputs used when none are given.
RANDOM_CALIBRATION = 32


# --- rendering ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def template_env() -> jinja2.Environment:
    """The Jinja2 environment of ``templates/`` (every generated file renders through it)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_project(ctx: Mapping[str, Any], progress: Progress | None = None) -> dict[str, str]:
    """Render every template: {path relative to the project: text}."""
    top = ctx["top"]
    style = ctx["style"]
    jobs: list[tuple[str, str, dict[str, Any]]] = [  # (file, template, extra context)
        ("src/fnas_types.h", "fnas_types.h.j2", {}),
        (f"src/{top}.h", f"{style}/top.h.j2", {}),
        (f"src/{top}.cpp", f"{style}/top.cpp.j2", {}),
        (f"tb/tb_{top}.cpp", "tb.cpp.j2", {}),
        ("tb/tb_data.h", "tb_data.h.j2", {}),
        ("tb/predict.cpp", "predict.cpp.j2", {}),
        ("run_hls.tcl", "run_hls.tcl.j2", {}),
        ("run_vitis.tcl", "run_vitis.tcl.j2", {}),
        ("README.md", "README.md.j2", {}),
    ]
    style_of = get_style(style)
    jobs += [(file, template, {}) for file, template in style_of.project_files(ctx)]
    units = style_of.unit_templates  # the templates of the layers that render a function of their own
    for layer in ctx["rendered"]:
        name = layer["c_name"]
        if layer.get("on_unit"):  # the shared style's engine and units render no function per layer
            continue
        if layer["kind"] == "conv":
            header, body = f"{units}/conv_layer.h.j2", f"{units}/conv_layer.cpp.j2"
        elif layer["kind"] in ("add", "concat", "scale"):
            header, body = f"{units}/merge_layer.h.j2", f"{units}/{layer['kind']}_layer.cpp.j2"
        elif layer.get("beat_pool"):  # the shared style's pooling and GAP that read beats
            header, body = f"{units}/pool_layer.h.j2", "shared/pool_layer.cpp.j2"
        elif layer["kind"] == "gap":
            header, body = f"{units}/pool_layer.h.j2", f"{units}/gap_layer.cpp.j2"
        else:
            header, body = f"{units}/pool_layer.h.j2", f"{units}/pool_layer.cpp.j2"
        jobs += [(f"src/{name}.h", header, {"l": layer}), (f"src/{name}.cpp", body, {"l": layer})]
    env = template_env()
    files = {}
    for i, (path, template, extra) in enumerate(jobs):
        if progress is not None:
            progress("rendering", i, len(jobs))
        files[path] = env.get_template(template).render(**ctx, **extra)
    if progress is not None:
        progress("rendering", len(jobs), len(jobs))
    return files


# --- the whole back end ------------------------------------------------------------------------


@dataclass(frozen=True)
class EmitResult:
    """What ``emit_project`` wrote and what it measured."""

    project_dir: Path
    top: str
    analysis: Analysis
    plan: QuantPlan
    agreement: Agreement  # reference model against the float model, on calibration + test inputs
    tilings: dict[str, Tiling]
    manifest: dict[str, Any]
    files: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = field(default=())
    replaced: FolderState = field(default=FolderState())  # what --force replaced in the folder


def _inputs(net: Network, x: np.ndarray | None, what: str) -> np.ndarray | None:
    if x is None:
        return None
    a = np.asarray(x, dtype=np.float32)
    shape = tuple(net.input.as_list())
    if a.shape == shape:
        a = a[None]
    elif a.ndim == 3 and shape[0] == 1 and a.shape[1:] == shape[1:]:
        a = a[:, None]
    elif a.ndim == 3 and shape[1] == 1 and a.shape[1:] == (shape[0], shape[2]):
        a = a[:, :, None, :]  # 1-D signals (n, C, L): the IR's one-row maps
    if a.ndim != 4 or a.shape[1:] != shape or len(a) == 0:
        raise FnasError(
            f"{what}: inputs have shape {list(a.shape)}; expected (n, {', '.join(map(str, shape))}) "
            f"for network '{net.name}'"
        )
    if not np.all(np.isfinite(a)):
        raise FnasError(f"{what}: inputs hold inf or NaN")
    return a


def _manifest(
    net: Network,
    ctx: Mapping[str, Any],
    analysis: Analysis,
    plan: QuantPlan,
    agreement: Agreement,
    notes: Iterable[str],
) -> dict[str, Any]:
    quant = {lq.name: lq for lq in plan.layers}
    a_layers = {entry["name"]: entry for entry in analysis.to_json()["layers"]}
    layers = []
    for d in ctx["layers"]:
        lq = quant[d["name"]]
        entry = {
            "name": d["name"],
            "c_name": d["c_name"],
            "op": d["op"],
            "in_shape": d["in_shape"],
            "out_shape": d["out_shape"],
            "tiling": d["tiling"],
            "frac_bits": None if plan.precision == "float32" else lq.to_json(),
            "functions": [f["name"] for f in a_layers[d["name"]]["functions"]],
            "cycles": a_layers[d["name"]]["cycles"],
        }
        if d["kind"] == "conv":
            entry.update(weight_offset=d["w_offset"], weight_words=d["w_words"], accumulator=lq.acc_c_type)
        layers.append(entry)
    return {
        "fnas_hls_version": __version__,
        "network": net.name,
        "top": ctx["top"],
        "board": analysis.board.name,
        "part": analysis.board.part,
        "clock_mhz": analysis.clock_mhz,
        "precision": plan.precision,
        "input_shape": net.input.as_list(),
        "output_size": net.output.size,
        "output_shape": net.output.as_list(),
        "input_frac": plan.input_type.frac,
        "output_frac": plan.output_type.frac,
        "layers": layers,
        "style": analysis.style,
        "layout": get_style(analysis.style).layout,
        "streams": [
            {"name": s["name"], "from": s["src"], "to": s["dst"], "depth": s["depth"], "width": s["width"]}
            for s in ctx.get("streams", [])
        ],
        "predicted": {
            "style": analysis.style,
            "interval_cycles": analysis.interval_cycles,
            "csynth_latency_cycles": analysis.csynth_latency_cycles,
            "csynth_interval_cycles": analysis.csynth_interval_cycles,
            "latency_cycles": analysis.latency_cycles,
            "latency_ms": analysis.latency_ms,
            "resources": analysis.to_json()["resources"],
            "fits": analysis.fits,
        },
        "testbench": {"vectors": ctx["vectors"], "file": "tb/vectors.npz"},
        "reference_vs_float": agreement.to_json(),
        "calibration_inputs": plan.calibration_size,
        "notes": list(notes),
        "files": {
            "sources": ctx["src_files"],
            "testbench": f"tb/tb_{ctx['top']}.cpp",
            "predict": "tb/predict.cpp",
            "vivado_hls": "run_hls.tcl",
            "vitis_hls": "run_vitis.tcl",
        },
        "analysis": analysis.to_json(),
    }


_MAXI = re.compile(r"#pragma HLS INTERFACE m_axi port=(\w+)\b.*\bbundle=(\w+)")


def m_axi_ports(top_cpp: str) -> list[dict[str, str]]:
    """The top's m_axi ports and the bundle each is in, read off its INTERFACE pragmas (in order)."""
    return [{"port": p, "bundle": b} for p, b in _MAXI.findall(top_cpp)]


def _to_hwc(x: np.ndarray, shape: Shape) -> np.ndarray:
    """(n, C*H*W) or (n, C, H, W) values in CHW order, as (n, H*W*C) channels last."""
    a = np.asarray(x)
    return a.reshape(len(a), shape.c, shape.h, shape.w).transpose(0, 2, 3, 1).reshape(len(a), -1)


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def emit_project(
    net: Network,
    board: Board | str,
    out_dir: Path,
    precision: str = "fixed16",
    calibration: np.ndarray | None = None,
    pins: Iterable[TilingPin] = (),
    clock_mhz: float | None = None,
    force: bool = False,
    test_inputs: np.ndarray | None = None,
    style: str = "sequential",
    progress: Progress | None = None,
) -> EmitResult:
    """Write the HLS project of ``net`` (with weights) for ``board`` into ``out_dir``.

    ``calibration``: float inputs (n, C, H, W) that choose the fractional bits; the testbench's
    vectors are ``test_inputs``, or the first ``DEFAULT_TEST_VECTORS`` calibration inputs. Without
    calibration, ``RANDOM_CALIBRATION`` standard-normal inputs are used (and a note says so).
    ``progress(step, done, total)`` hears of each step: the analysis, the calibration, the
    reference and float models (inputs), the C text of weights and vectors, the rendering and the
    writing (files).
    """
    report = progress or (lambda step, done, total: None)
    start = time.perf_counter()
    out_dir = Path(out_dir)
    check_renderable(net)
    design_names(net)
    check_out_dir(out_dir, force)
    get_precision(precision)  # an unknown name is one line naming the accepted ones
    board = load_board(board) if isinstance(board, str) else board
    notes: list[str] = []
    calib = _inputs(net, calibration, "calibration")
    tests = _inputs(net, test_inputs, "test inputs")
    if calib is None:
        rng = np.random.default_rng(0)
        calib = rng.standard_normal((RANDOM_CALIBRATION, *net.input.as_list())).astype(np.float32)
        notes.append(
            f"no calibration data: fractional bits chosen from {RANDOM_CALIBRATION} random standard-normal "
            "inputs; give real inputs for a design that fits your data"
        )
    if tests is None:
        tests = calib[:DEFAULT_TEST_VECTORS]
    report("analysis", 0, 1)
    analysis = analyze(net, board, precision, clock_mhz, pins, style)
    report("analysis", 1, 1)
    notes.extend(analysis.notes)
    style_of = get_style(analysis.style)
    if not analysis.fits:
        if style_of.must_fit:
            raise FnasError(
                f"--style {style_of.name}: network '{net.name}' does not fit on chip on {board.name}: "
                f"{analysis.over_detail}"
            )
        notes.append(f"the design does not fit {board.name}: over budget in {', '.join(analysis.over)}")
    tilings = {lc.name: lc.tiling for lc in analysis.layers if lc.tiling is not None}
    if (
        style_of.stream_order
    ):  # the reference model runs the same arithmetic on whole rows (the order of a sum is Pn's)
        shapes = {li.name: li.out_shape for li in net.info}
        tilings = {n: Tiling(t.Pm, t.Pn, shapes[n].h, shapes[n].w) for n, t in tilings.items()}
    plan = quantize_network(net, precision, calib, progress)
    test_stored = plan.input_type.quantize(tests)

    def reference(xq: np.ndarray) -> np.ndarray:
        return run_reference(net, plan, tilings, xq, stream_order=style_of.stream_order, progress=progress)

    ref_all = reference(plan.input_type.quantize(calib))
    float_all = run_float(net, calib, progress)
    if test_inputs is None:  # the test vectors are the first calibration inputs
        golden, float_out = ref_all[: len(tests)], float_all[: len(tests)]
    else:
        golden, float_out = reference(test_stored), run_float(net, tests, progress)
        ref_all, float_all = np.concatenate([ref_all, golden]), np.concatenate([float_all, float_out])
    agreement = compare_outputs(plan.output_type.dequantize(ref_all), float_all, plan.output_type.lsb)
    if style_of.stream_order:  # the testbench's vectors as the AXI ports carry them: channels last
        test_stored = _to_hwc(test_stored, net.input)
        golden, float_out = _to_hwc(golden, net.output), _to_hwc(float_out, net.output)
    report("weights and vectors as C", 0, 1)
    ctx = build_context(net, analysis, plan, test_stored, golden)
    report("weights and vectors as C", 1, 1)
    files: dict[str, str | bytes] = dict(render_project(ctx, progress))
    manifest = _manifest(net, ctx, analysis, plan, agreement, notes)
    manifest["ip_vlnv"] = ip_vlnv(ctx["top"])
    manifest["m_axi"] = m_axi_ports(files[f"src/{ctx['top']}.cpp"])
    files["tb/vectors.npz"] = _npz_bytes(
        inputs=tests,
        inputs_stored=test_stored,
        golden=golden,
        float_outputs=float_out,
        output_frac=np.array(plan.output_type.frac if plan.output_type.frac is not None else 0),
        is_float=np.array(plan.precision == "float32"),
    )
    manifest["written"] = {rel: digest(content) for rel, content in sorted(files.items())}
    files[MANIFEST] = json.dumps(manifest, indent=2) + "\n"
    replaced = write_project(out_dir, files, force, progress)
    return EmitResult(
        project_dir=out_dir,
        top=ctx["top"],
        analysis=analysis,
        plan=plan,
        agreement=agreement,
        tilings=tilings,
        manifest=manifest,
        files=tuple(sorted(files)),
        seconds=time.perf_counter() - start,
        notes=tuple(notes),
        replaced=replaced,
    )
