"""``deploy_project``: the folder that takes an emitted HLS project to a board.

It compiles the project's C++ (``backend.design.Design``, g++) to read, from the same code the
testbench runs, the buffers a host allocates, the port each top argument takes and the weights'
words; reads the m_axi bundles off the top's INTERFACE pragmas; and writes into ``out``:

* ``build_bitstream.tcl``: the Vivado block design (the board's processing system from its YAML
  ``ps:``, the control and memory connections, validation, bitstream, ``.hwh``);
* ``driver/``: the PYNQ driver package (``fnas_driver.py``: ``deploy/driver.py`` verbatim), and
  what it reads, ``design.json`` and ``weights.npy``;
* ``README.md``.

A new folder is written next to ``out`` and renamed into place, so nothing is half-written; an
existing one (``--force``) gets these files replaced and keeps everything else (a built bitstream).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fnas_hls import __version__
from fnas_hls.backend.design import Design
from fnas_hls.backend.hls_writer import m_axi_ports, template_env
from fnas_hls.backend.project_context import ip_vlnv
from fnas_hls.boards import Board, load_board
from fnas_hls.deploy import driver as driver_module
from fnas_hls.errors import FnasError

#: The IP's instance in the block design (the driver's ``spec["instance"]``).
INSTANCE = "fnas_0"
BITSTREAM = "fnas.bit"
#: The driver package's folder in the deploy folder; the bitstream is beside it.
DRIVER = "driver"


@dataclass(frozen=True)
class DeployResult:
    folder: Path
    files: tuple[str, ...]
    bundles: tuple[str, ...]


def m_axi_bundles(design: Design) -> list[str]:
    """The m_axi bundles of the top, in the order its pragmas name them (the manifest's ``m_axi``; a
    project emitted before it recorded them: read off the top's source)."""
    ports = design.manifest.get("m_axi")
    if ports is None:
        ports = m_axi_ports((design.project / "src" / f"{design.top}.cpp").read_text(encoding="utf-8"))
    return list(dict.fromkeys(p["bundle"] for p in ports))


def deploy_project(
    project: str | Path, board: str | Board, out: str | Path, force: bool = False, driver: bool = True
) -> DeployResult:
    """Write the deploy folder of ``project`` for ``board`` into ``out`` (see the module docstring)."""
    b = load_board(board) if isinstance(board, str) else board
    design = Design(project)
    m = design.manifest
    if m["board"] != b.name:
        raise FnasError(
            f"{project}: emitted for board {m['board']}, not {b.name}; emit it for {b.name} "
            f"(fnas-hls emit ... --board {b.name}) or deploy it with --board {m['board']}"
        )
    if b.ps is None:
        raise FnasError(
            f"board {b.name} has no processing system ('ps' in its YAML); deploy builds Zynq designs"
        )
    if driver and not b.ps.pynq:
        raise FnasError(
            f"board {b.name} has no PYNQ image (ps.pynq false in its YAML), so no driver; pass --no-driver "
            "for the block design alone"
        )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FnasError(f"-o {out}: exists and is not empty; choose another folder or pass --force")
    bundles = m_axi_bundles(design)
    hp = b.ps.hp_ports
    used = [{"index": i, "port": p} for i, p in enumerate(hp[: len(bundles)])]
    ctx = {
        "version": __version__,
        "top": design.top,
        "style": m["style"],
        "precision": m["precision"],
        "board": b.name,
        "part": b.part,
        "clock_mhz": m["clock_mhz"],
        "ps": b.ps,
        "instance": INSTANCE,
        "ip_vlnv": design.manifest.get("ip_vlnv") or ip_vlnv(design.top),
        "hls_project": _relative(design.project, out),
        "bundles": [
            {"bundle": x, "port": hp[i % len(hp)], "first": i < len(hp)} for i, x in enumerate(bundles)
        ],
        "hp_used": used,
        "driver": driver,
        "input_shape": list(design.input_shape),
        "output_words": design.output_size,
    }
    files: dict[str, bytes] = {
        "build_bitstream.tcl": _render("deploy/build_bitstream.tcl.j2", ctx),
        "README.md": _render("deploy/README.md.j2", ctx),
    }
    if driver:
        files[f"{DRIVER}/fnas_driver.py"] = Path(driver_module.__file__).read_bytes()
        files[f"{DRIVER}/__init__.py"] = (
            b'"""The PYNQ driver of this design (fnas-hls deploy)."""\n\nfrom .fnas_driver import Driver\n'
        )
        files[f"{DRIVER}/design.json"] = (json.dumps(_spec(design, b), indent=2) + "\n").encode()
        weights = design.weights()
        if weights.size:
            files[f"{DRIVER}/weights.npy"] = _npy(weights)
    _write_folder(out, files, force)
    return DeployResult(out, tuple(sorted(files)), tuple(bundles))


def _spec(design: Design, board: Board) -> dict:
    m = design.manifest
    t = design.input_type
    return {
        "fnas_hls_version": __version__,
        "top": design.top,
        "board": board.name,
        "style": m["style"],
        "precision": m["precision"],
        "dtype": np.dtype(t.np_dtype).name,
        "bits": t.bits,
        "is_float": t.is_float,
        "input_frac": t.frac,
        "output_frac": design.output_type.frac,
        "input_shape": list(design.input_shape),
        "output_shape": list(m["output_shape"]),
        "channels_last": design.channels_last,
        "buffers": design.host_buffers(),
        "ports": [list(p) for p in design.host_ports()],
        "bitstream": f"../{BITSTREAM}",  # from the driver package's folder
        "instance": INSTANCE,
        "clock_mhz": m["clock_mhz"],
    }


def _relative(target: Path, out: Path) -> str:
    try:
        return os.path.relpath(target.resolve(), out.resolve())
    except ValueError:  # another drive
        return str(target.resolve())


def _render(template: str, ctx: dict) -> bytes:
    return template_env().get_template(template).render(**ctx).encode()


def _npy(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _write_folder(out: Path, files: dict[str, bytes], force: bool) -> None:
    """A new folder: written beside ``out`` and renamed into place. An existing one (``force``): each
    file replaced through a temporary file; whatever else it holds (a built ``vivado/`` project, a
    bitstream) is left alone."""
    parent = out.absolute().parent
    if not parent.is_dir():
        raise FnasError(f"-o {out}: folder '{parent}' does not exist")
    if out.is_dir():
        for name, data in files.items():
            target = out / name
            target.parent.mkdir(exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return
    if out.exists():
        raise FnasError(f"-o {out}: is a file, not a folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        for name, data in files.items():
            (tmp / name).parent.mkdir(exist_ok=True)
            (tmp / name).write_bytes(data)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
