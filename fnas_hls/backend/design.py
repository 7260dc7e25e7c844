"""A generated project as a Python object: ``Design(project).predict(x)`` runs the C++ top on any inputs.

hls4ml's ``compile()`` and ``predict()`` for fnas-hls: the project's sources and ``tb/predict.cpp``
(the testbench's own calls of the top, ``templates/host_call.j2``, on any number of inputs) are
compiled by g++ into a shared library under ``<project>/csim_build/`` (once per content: its name
carries a digest of the sources), loaded with ``ctypes``, and fed the inputs as the design stores
them:

* float inputs ``(n, C, H, W)`` (or one ``(C, H, W)``) are quantized to the design's input format
  (``DataType.quantize``: round half up, saturate; float32 as is) and laid out as the manifest's
  ``layout`` says: channels last for the ``dataflow`` style's AXI stream, CHW otherwise;
* the outputs come back in the same layout, are put in CHW order and dequantized.

``predict_stored`` takes and returns the stored words themselves (integers, or float32).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np

from fnas_hls.backend.csim import BUILD_DIR, CXXFLAGS, _compiler, _first_error
from fnas_hls.backend.fixed_point import FLOAT32, DataType
from fnas_hls.backend.project_folder import MANIFEST, is_project
from fnas_hls.errors import FnasError
from fnas_hls.precision import get_precision

#: The layout the dataflow style's ports carry (``hls_writer._manifest``'s ``layout``).
CHANNELS_LAST = "HWC"


_LONG, _PTR = ctypes.c_long, ctypes.c_void_p
#: The predict library's functions (``templates/predict.cpp.j2``): argument types, result type.
_SIGNATURES = {
    "fnas_predict": ((_PTR, _PTR, _LONG), ctypes.c_int),
    "fnas_in_words": ((), _LONG),
    "fnas_out_words": ((), _LONG),
    "fnas_word_bytes": ((), _LONG),
    "fnas_buffers": ((), _LONG),
    "fnas_buffer_name": ((_LONG,), ctypes.c_char_p),
    "fnas_buffer_words": ((_LONG,), _LONG),
    "fnas_ports": ((), _LONG),
    "fnas_port_arg": ((_LONG,), ctypes.c_char_p),
    "fnas_port_buffer": ((_LONG,), _LONG),
    "fnas_weight_words": ((), _LONG),
    "fnas_weights": ((_PTR,), None),
    "fnas_call": ((_PTR,), ctypes.c_int),
}


class Design:
    """The project in ``project`` (a folder ``fnas-hls emit`` wrote), compiled on first use."""

    def __init__(self, project: str | Path, cxx: str | None = None, opt: str = "-O2") -> None:
        self.project = Path(project).absolute()
        if not self.project.is_dir():
            raise FnasError(f"{project}: not a folder; give the folder `fnas-hls emit` wrote")
        if not is_project(self.project):
            raise FnasError(f"{project}: not an fnas-hls project (no {MANIFEST} written by `fnas-hls emit`)")
        m = json.loads((self.project / MANIFEST).read_text(encoding="utf-8"))
        try:
            self.manifest = m
            self.top = m["top"]
            self.board = m["board"]
            self.input_shape = tuple(int(v) for v in m["input_shape"])
            self.output_size = int(m["output_size"])
            prec = get_precision(m["precision"])
            self.channels_last = str(m["layout"]).startswith(CHANNELS_LAST)
            self.sources = [self.project / s for s in m["files"]["sources"]]
            self.sources.append(self.project / m["files"]["predict"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FnasError(
                f"{project}/{MANIFEST}: field {exc} missing or wrong; emit the project again"
            ) from None
        self.input_type = FLOAT32 if prec.is_float else DataType.fixed(prec.bits, int(m["input_frac"]))
        self.output_type = FLOAT32 if prec.is_float else DataType.fixed(prec.bits, int(m["output_frac"]))
        missing = [str(s.relative_to(self.project)) for s in self.sources if not s.is_file()]
        if missing:
            raise FnasError(f"{project}: source file {missing[0]} is missing; emit the project again")
        self._cxx, self._opt = cxx, opt
        self._lib: ctypes.CDLL | None = None
        self._lib_path = Path()

    # --- the library ---------------------------------------------------------------------------
    def compile(self) -> Path:
        """Build the shared library (if this content has none yet) and load it; its path. Once loaded,
        the same library serves every later call (the sources are not read again)."""
        if self._lib is not None:
            return self._lib_path
        digest = hashlib.sha256()
        for src in self.sources:
            digest.update(src.read_bytes())
        build = self.project / BUILD_DIR
        build.mkdir(exist_ok=True)
        lib = build / f"predict-{digest.hexdigest()[:12]}.so"
        if not lib.is_file():
            compiler = _compiler(self._cxx)
            tmp = lib.with_suffix(".so.tmp")
            flags = [*CXXFLAGS, self._opt, "-shared", "-fPIC", f"-I{self.project / 'src'}"]
            cmd = [compiler, *flags, *[str(s) for s in self.sources], "-o", str(tmp)]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                log = build / "predict.log"
                log.write_text("$ " + " ".join(cmd) + "\n" + run.stdout + run.stderr, encoding="utf-8")
                raise FnasError(
                    f"predict: {Path(compiler).name} failed: {_first_error(run.stderr or run.stdout)} "
                    f"(full log: {log})"
                )
            tmp.replace(lib)
        if self._lib is None:
            self._lib, self._lib_path = ctypes.CDLL(str(lib)), lib
            for name, (args, result) in _SIGNATURES.items():
                fn = getattr(self._lib, name)
                fn.argtypes, fn.restype = args, result
            words = (self._lib.fnas_in_words(), self._lib.fnas_out_words(), self._lib.fnas_word_bytes())
            want = (
                int(np.prod(self.input_shape)),
                self.output_size,
                np.dtype(self.input_type.np_dtype).itemsize,
            )
            if words != want:
                raise FnasError(
                    f"{self.project}: the compiled top takes {words} (words in, out, bytes a word), "
                    f"the manifest says {want}; emit the project again"
                )
        return lib

    # --- the host's buffers and the top's ports (the deploy driver's view) --------------------
    def host_buffers(self) -> dict[str, int]:
        """The buffers a host allocates for the top, by name, in words (``templates/host_call.j2``)."""
        lib = self._loaded()
        return {
            lib.fnas_buffer_name(i).decode(): int(lib.fnas_buffer_words(i)) for i in range(lib.fnas_buffers())
        }

    def host_ports(self) -> list[tuple[str, str]]:
        """The top's pointer arguments in order, each with the buffer it takes."""
        lib = self._loaded()
        names = list(self.host_buffers())
        return [
            (lib.fnas_port_arg(i).decode(), names[lib.fnas_port_buffer(i)]) for i in range(lib.fnas_ports())
        ]

    def weights(self) -> np.ndarray:
        """The words the host puts in its weights buffer (empty for the dataflow style: ROMs)."""
        lib = self._loaded()
        out = np.zeros(lib.fnas_weight_words(), dtype=self.input_type.np_dtype)
        if out.size:
            lib.fnas_weights(out.ctypes.data)
        return out

    def call(self, buffers: dict[str, np.ndarray]) -> None:
        """One run of the top on the host's ``buffers`` (each a C-contiguous array of the design's words
        at least as long as ``host_buffers`` says), bound to its ports as the IP's are: what the
        FPGA does between the driver's start and done."""
        lib = self._loaded()
        sizes = self.host_buffers()
        ptrs = (ctypes.c_void_p * len(sizes))()
        for i, (name, words) in enumerate(sizes.items()):
            b = buffers[name]
            if b.dtype != np.dtype(self.input_type.np_dtype) or b.size < words or not b.flags.c_contiguous:
                raise FnasError(f"buffer '{name}': {b.size} words of {b.dtype}; the top takes {words} of "
                                f"{np.dtype(self.input_type.np_dtype)}")  # fmt: skip
            ptrs[i] = b.ctypes.data
        lib.fnas_call(ptrs)

    def _loaded(self) -> ctypes.CDLL:
        self.compile()
        return self._lib

    # --- inputs and outputs --------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """The design's outputs, dequantized, (n, outputs) in CHW order, for float inputs ``x``
        (n, C, H, W) or one (C, H, W)."""
        x = self._images(x)
        return self.output_type.dequantize(self.predict_stored(self.input_type.quantize(x)))

    def predict_stored(self, xq: np.ndarray) -> np.ndarray:
        """The stored outputs (int64 integers or float32), (n, outputs) in CHW order, for stored
        inputs ``xq`` (n, C, H, W)."""
        xq = np.asarray(xq)
        if xq.ndim != 4 or tuple(xq.shape[1:]) != self.input_shape:
            raise FnasError(
                f"stored inputs of shape {list(xq.shape)}; the design takes (n, {self.input_shape})"
            )
        t = self.input_type
        if not t.is_float and xq.size:
            if xq.dtype.kind not in "iu":
                raise FnasError(
                    f"stored inputs of type {xq.dtype}; this {self.manifest['precision']} design stores "
                    "integers"
                )
            if int(xq.min()) < t.min_int or int(xq.max()) > t.max_int:
                raise FnasError(
                    f"stored inputs outside [{t.min_int}, {t.max_int}], the design's {t.bits}-bit words"
                )
        self.compile()
        n = len(xq)
        words = xq.transpose(0, 2, 3, 1) if self.channels_last else xq
        words = np.ascontiguousarray(words.reshape(n, -1), dtype=self.input_type.np_dtype)
        out = np.zeros((n, self.output_size), dtype=self.output_type.np_dtype)
        if n:
            rc = self._lib.fnas_predict(words.ctypes.data, out.ctypes.data, n)
            if rc != 0:
                raise FnasError(f"predict: the compiled top returned {rc}")
        if self.channels_last and self.output_size > 0:
            out = _chw_outputs(out, self.manifest)
        return out if self.output_type.is_float else out.astype(np.int64)

    def _images(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x)
        if a.dtype.kind not in "fiu":
            raise FnasError(f"images of type {a.dtype}; the design takes numbers (float images)")
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or tuple(a.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise FnasError(
                f"images of shape {list(np.asarray(x).shape)}; the design takes (n, {c}, {h}, {w}) or "
                f"({c}, {h}, {w})"
            )
        bad = int(np.sum(~np.isfinite(a))) if a.dtype.kind == "f" else 0
        if bad:
            raise FnasError(f"images: {bad} values are not finite (NaN or infinity)")
        return a.astype(np.float32, copy=False)


def _chw_outputs(out: np.ndarray, manifest: dict) -> np.ndarray:
    """Outputs of the dataflow style, channels last, in CHW order (the network output's shape)."""
    c, h, w = (int(v) for v in manifest.get("output_shape") or (out.shape[1], 1, 1))
    return out.reshape(len(out), h, w, c).transpose(0, 3, 1, 2).reshape(len(out), -1)
