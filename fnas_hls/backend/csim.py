"""C simulation without Xilinx tools: build a generated project with the machine's g++, run its testbench.

The kernels use plain integer types (or float) and ``#pragma HLS`` lines, which g++ ignores, so the
project compiles as ordinary C++14. The testbench prints every output; ``run_csim`` checks them
against the reference model's golden vectors (bit for bit) and against the float model
(``tb/vectors.npz``), and returns a ``CsimResult``. Build products and the log go to
``<project>/csim_build/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fnas_hls.backend.project_folder import MANIFEST, is_project
from fnas_hls.backend.reference import compare_outputs
from fnas_hls.errors import FnasError

#: The C++ compiler (a name on PATH or a path); tests point it elsewhere.
CXX = "g++"
#: Flags every build uses: C++14, no fused multiply-add (float32 must round as the reference does).
CXXFLAGS = ("-std=c++14", "-ffp-contract=off")
#: Longest a testbench may run.
RUN_TIMEOUT_S = 600
BUILD_DIR = "csim_build"


@dataclass(frozen=True)
class CsimResult:
    bit_exact: bool  # every C++ output equals the reference model's golden output
    max_abs_error: float  # C++ outputs (in real units) against the float model
    top1_agreement: float  # argmax of the C++ outputs against the float model's
    compile_seconds: float
    run_seconds: float
    log: Path
    vectors: int
    differing_outputs: int
    worst_difference: float  # against the golden outputs, in real units
    verdict: str  # the testbench's own last line

    def to_json(self) -> dict[str, Any]:
        return {
            "bit_exact": self.bit_exact,
            "max_abs_error": self.max_abs_error,
            "top1_agreement": self.top1_agreement,
            "compile_seconds": self.compile_seconds,
            "run_seconds": self.run_seconds,
            "log": str(self.log),
            "vectors": self.vectors,
            "differing_outputs": self.differing_outputs,
            "worst_difference": self.worst_difference,
            "verdict": self.verdict,
        }

    def summary(self) -> str:
        state = (
            "PASS: bit-exact with the reference model"
            if self.bit_exact
            else "FAIL: differs from the reference"
        )
        return (
            f"csim {state} ({self.differing_outputs} differing outputs, {self.vectors} vectors); "
            f"vs float model: max abs error {self.max_abs_error:.4g}, top-1 agreement "
            f"{100 * self.top1_agreement:.1f}%; compile {self.compile_seconds:.2f} s, "
            f"run {self.run_seconds:.2f} s"
        )


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error" in line:
            return line.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "(no message)"


def _compiler(cxx: str | None) -> str:
    name = cxx or CXX
    path = shutil.which(name)
    if path is None:
        raise FnasError(
            f"csim: C++ compiler '{name}' not found; install g++ (e.g. `apt install g++`) "
            "to run the C simulation"
        )
    return path


def run_csim(project_dir: str | Path, opt: str = "-O2", cxx: str | None = None) -> CsimResult:
    """Compile the project at ``project_dir`` with g++, run its testbench and check its outputs."""
    project = Path(project_dir).absolute()
    if not project.is_dir():
        raise FnasError(f"csim: {project} is not a folder; give the folder `fnas-hls emit` wrote")
    if not is_project(project):
        raise FnasError(
            f"csim: {project} is not an fnas-hls project (no {MANIFEST} written by `fnas-hls emit`)"
        )
    manifest = json.loads((project / MANIFEST).read_text(encoding="utf-8"))
    try:
        sources = [project / s for s in manifest["files"]["sources"]] + [
            project / manifest["files"]["testbench"]
        ]
        vectors = np.load(project / "tb" / "vectors.npz")
        golden = vectors["golden"]
        float_out = vectors["float_outputs"]
        is_float = bool(vectors["is_float"])
        frac = int(vectors["output_frac"])
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise FnasError(f"csim: {project} is an incomplete fnas-hls project ({exc}); emit it again") from None
    missing = [str(s.relative_to(project)) for s in sources if not s.is_file()]
    if missing:
        raise FnasError(f"csim: {project}: source file {missing[0]} is missing; emit the project again")
    compiler = _compiler(cxx)
    build = project / BUILD_DIR
    build.mkdir(exist_ok=True)
    log_path = build / "csim.log"
    log: list[str] = []
    flags = [*CXXFLAGS, opt, f"-I{project / 'src'}", f"-I{project / 'tb'}"]

    # Compile every translation unit side by side, then link.
    start = time.perf_counter()
    objects, procs = [], []
    for src in sources:
        obj = build / (src.stem + ".o")
        cmd = [compiler, *flags, "-c", str(src), "-o", str(obj)]
        log.append("$ " + " ".join(cmd))
        try:
            procs.append(
                (src, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            )
        except OSError as exc:
            for _, p in procs:
                p.kill()
            raise FnasError(f"csim: cannot run the compiler '{compiler}': {exc.strerror or exc}") from None
        objects.append(obj)
    failed = None
    for src, p in procs:
        out, _ = p.communicate()
        if out:
            log.append(out)
        if p.returncode != 0 and failed is None:
            failed = (src, out)
    exe = build / "csim"
    if failed is None:
        cmd = [compiler, *[str(o) for o in objects], "-o", str(exe)]
        log.append("$ " + " ".join(cmd))
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.stdout:
            log.append(p.stdout)
        if p.returncode != 0:
            failed = (exe, p.stdout)
    compile_s = time.perf_counter() - start
    if failed is not None:
        log_path.write_text("\n".join(log) + "\n", encoding="utf-8")
        where = failed[0].relative_to(project) if failed[0].is_relative_to(project) else failed[0]
        raise FnasError(
            f"csim: {Path(compiler).name} failed on {where}: {_first_error(failed[1] or '')} "
            f"(full log: {log_path})"
        )

    start = time.perf_counter()
    try:
        run = subprocess.run([str(exe)], cwd=build, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FnasError(f"csim: the testbench ran longer than {RUN_TIMEOUT_S} s (log: {log_path})") from None
    except OSError as exc:
        raise FnasError(f"csim: cannot run the testbench {exe}: {exc.strerror or exc}") from None
    run_s = time.perf_counter() - start
    log.append(run.stdout)
    log.append(run.stderr)
    log_path.write_text("\n".join(log) + "\n", encoding="utf-8")
    lines = run.stdout.splitlines()
    verdicts = [ln for ln in lines if ln.startswith("FNAS-CSIM")]
    if run.returncode not in (0, 1) or not verdicts:
        raise FnasError(
            f"csim: the testbench crashed (exit status {run.returncode}) before its verdict (log: {log_path})"
        )
    rows = [ln.split()[2:] for ln in lines if ln.startswith("OUT ")]
    try:
        got = np.array([[float(v) for v in row] for row in rows], dtype=np.float64)
    except ValueError:
        raise FnasError(f"csim: unreadable testbench output (log: {log_path})") from None
    if got.shape != golden.reshape(len(golden), -1).shape:
        raise FnasError(
            f"csim: the testbench printed {got.shape} outputs, the project holds {golden.shape} golden ones"
        )
    gold = golden.reshape(len(golden), -1).astype(np.float64)
    if is_float:
        got = got.astype(np.float32).astype(np.float64)
    differ = int(np.sum(got != gold))
    lsb = 1.0 if is_float else 2.0**-frac
    real = got * lsb
    agree = compare_outputs(real, float_out, 0.0 if is_float else lsb)
    worst = float(np.max(np.abs(got - gold))) * lsb if got.size else 0.0
    return CsimResult(
        bit_exact=differ == 0 and run.returncode == 0,
        max_abs_error=agree.max_abs_error,
        top1_agreement=agree.top1_agreement,
        compile_seconds=compile_s,
        run_seconds=run_s,
        log=log_path,
        vectors=len(gold),
        differing_outputs=differ,
        worst_difference=worst,
        verdict=verdicts[-1],
    )
