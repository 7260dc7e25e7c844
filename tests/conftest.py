"""Shared test helpers: paths to the shared fixtures and small boards made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "hls_reports"


def board_yaml(
    name: str = "tiny",
    dsp: int = 40,
    bram18k: int = 30,
    lut: int = 200_000,
    ff: int = 400_000,
    clock: int = 100,
) -> str:
    """A board file with the given resources (usable fraction 1) for DSE tests."""
    return f"""name: {name}
description: test board
part: xc7z020clg400-1
clock_mhz: {clock}
dsp: {dsp}
bram18k: {bram18k}
lut: {lut}
ff: {ff}
uram: 0
ddr_gbps: 4.2
axi_width_bits: 64
usable: {{dsp: 1.0, bram18k: 1.0, lut: 1.0, ff: 1.0, uram: 1.0}}
"""


@pytest.fixture
def make_board(tmp_path):
    """Write a test board YAML and load it: ``make_board(dsp=.., bram18k=..)``."""
    from fnas_hls.boards import load_board

    def make(**kw):
        path = tmp_path / f"{kw.get('name', 'tiny')}.yaml"
        path.write_text(board_yaml(**kw))
        return load_board(path)

    return make


@pytest.fixture
def shared_csim(tmp_path):
    """Emits a network as a ``shared`` design in ``tmp_path / "p"`` (``pins``: ``--tiling`` specs),
    calibrated on 16 random inputs of its input shape with 4 more as its test vectors, and
    C-simulates it: ``(emit result, csim outcome)``."""
    import numpy as np

    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.hls_writer import emit_project
    from fnas_hls.boards import load_board

    def build(net, board: str, precision: str, seed: int = 3, pins: tuple[str, ...] = ()):
        from fnas_hls.model.tiling import parse_tiling_specs

        shape = (net.input.c, net.input.h, net.input.w)
        rng = np.random.default_rng(seed)
        calib = rng.standard_normal((16, *shape)).astype(np.float32)
        tests = rng.standard_normal((4, *shape)).astype(np.float32)
        res = emit_project(
            net, load_board(board), tmp_path / "p", precision, calib, parse_tiling_specs(pins),
            test_inputs=tests, style="shared",
        )  # fmt: skip
        return res, run_csim(tmp_path / "p", opt="-O1")

    return build
