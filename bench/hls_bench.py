"""``make bench`` section ``hls``: emit and C-simulate the MNIST-size CNN of ``examples/mnist-cnn.yaml``.

The network (conv 1->9 k5, conv 9->18 k5, pool, conv 18->18 k3, pool, fc 882->10; 16k
parameters) gets He-initialised random weights (the YAML has none) and 64 random MNIST-like
inputs in [0, 1] as calibration (32 of them are the testbench's vectors). Measured: the time of
``emit_project`` (first call in the process, with its imports, and a second, warm call), the g++
compile and run times of ``run_csim`` at -O2, the bit-exact verdict, and the agreement of the
design with the float model.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "mnist-cnn.yaml"


def bench_hls(board_name: str = "pynq", precision: str = "fixed16") -> dict:
    t0 = time.perf_counter()
    from fnas_hls.backend.csim import run_csim
    from fnas_hls.backend.float_model import with_random_weights
    from fnas_hls.backend.hls_writer import emit_project
    from fnas_hls.backend.reference import run_reference
    from fnas_hls.boards import load_board
    from fnas_hls.network.arch import load_network_yaml

    import_s = time.perf_counter() - t0
    net = with_random_weights(load_network_yaml(EXAMPLE), seed=0)
    board = load_board(board_name)
    calib = np.random.default_rng(0).random((64, *net.input.as_list()), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="fnas-hls-bench-") as tmp:
        out = Path(tmp) / "prj"
        t0 = time.perf_counter()
        emit_project(net, board, out, precision, calib)
        emit_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = emit_project(net, board, out, precision, calib)
        emit_warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim = run_csim(out)
        csim_s = time.perf_counter() - t0
        # The other way to check the design: the numpy reference model on the same vectors.
        vectors = calib[: sim.vectors]
        t0 = time.perf_counter()
        run_reference(net, res.plan, res.tilings, res.plan.input_type.quantize(vectors))
        reference_s = time.perf_counter() - t0
        files = sum(1 for p in out.rglob("*") if p.is_file())
    return {
        "network": net.name,
        "params": net.params,
        "macs": net.macs,
        "board": board.name,
        "precision": precision,
        "tilings": {k: str(v) for k, v in res.tilings.items()},
        "predicted_cycles": res.analysis.latency_cycles,
        "import_seconds": import_s,
        "emit_seconds_first": emit_first,
        "emit_seconds": emit_warm,
        "csim_seconds": csim_s,
        "csim_compile_seconds": sim.compile_seconds,
        "csim_run_seconds": sim.run_seconds,
        "csim_vectors": sim.vectors,
        "reference_seconds": reference_s,
        "bit_exact": sim.bit_exact,
        "reference_top1_agreement": res.agreement.top1_agreement,
        "reference_max_abs_error": res.agreement.max_abs_error,
        "csim_top1_agreement": sim.top1_agreement,
        "csim_max_abs_error": sim.max_abs_error,
        "project_files": files,
    }


def hls_rows(d: dict) -> list[tuple[str, str]]:
    """(figure, value) rows of the section."""
    return [
        (
            f"network ({d['params']:,} parameters, {d['macs']:,} MACs), {d['board']}, {d['precision']}",
            d["network"],
        ),
        (
            "emit: first call in the process / warm",
            f"{d['emit_seconds_first']:.2f} s / {d['emit_seconds']:.2f} s",
        ),
        (
            f"csim: g++ -O2 compile + run ({d['csim_vectors']} vectors)",
            f"{d['csim_seconds']:.2f} s ({d['csim_compile_seconds']:.2f} s + {d['csim_run_seconds']:.2f} s)",
        ),
        (
            f"reference model (numpy) on the same {d['csim_vectors']} vectors",
            f"{d['reference_seconds']:.2f} s "
            f"(csim / reference: {d['csim_seconds'] / d['reference_seconds']:.1f}x)",
        ),
        ("C++ bit-exact with the reference model", "yes" if d["bit_exact"] else "NO"),
        (
            "reference vs float: top-1 agreement, max abs error",
            f"{100 * d['reference_top1_agreement']:.1f}%, {d['reference_max_abs_error']:.3g}",
        ),
        ("predicted latency", f"{d['predicted_cycles']:,} cycles"),
    ]


def hls_table(d: dict) -> str:
    rows = hls_rows(d)
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{a.ljust(w)}  {b}" for a, b in rows)


if __name__ == "__main__":
    print(hls_table(bench_hls()))
