"""The PYNQ driver of a design deployed by ``fnas-hls deploy``: ``Driver(folder).predict(images)``.

Standalone: numpy, and ``pynq`` imported only where the design runs on the board. ``design.json``
says everything about the design's ports that a host needs, as ``fnas-hls deploy`` read it off the
project's compiled C++ (``templates/host_call.j2``, the one place the testbench, the predict
library and this driver take the layout from):

* the buffers the host allocates in DDR, in words of the design's type (``buffers``), and which
  buffer each pointer argument of the top takes (``ports``; several arguments may share one);
* the input: float images (n, C, H, W) quantized to the input format (round half up, saturate;
  float32 as is), one image's words at the start of the ``input`` buffer, channels last (HWC)
  where ``channels_last`` (the dataflow style's stream), CHW otherwise, the rest of the buffer zero;
* the output: the first ``output_words`` words of the ``output`` buffer, in the same layout,
  dequantized and returned in CHW order;
* the weights (``weights.npy``) go once into the ``weights`` buffer, where the design has one.

A backend holds the buffers and runs the IP once per image: ``PynqBackend`` on the board (AXI-Lite
control: each port's address register, then ap_start, polling ap_done); ``fnas_hls.deploy.local``
runs the compiled C++ top on the same buffers instead, so that this file is tested on any machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPEC = "design.json"
WEIGHTS = "weights.npy"
#: ap_start and ap_done in the control register of an HLS block (UG1399, "S_AXILITE Control Register Map").
AP_CTRL, AP_START, AP_DONE = 0x00, 0x1, 0x2


class Driver:
    """The design whose ``design.json`` is in ``folder`` (default: this file's, the ``driver/`` package
    ``fnas-hls deploy`` wrote), on ``backend`` (default: the board)."""

    def __init__(self, folder: str | Path | None = None, backend=None) -> None:  # noqa: ANN001
        self.folder = Path(folder) if folder is not None else Path(__file__).resolve().parent
        self.spec = json.loads((self.folder / SPEC).read_text(encoding="utf-8"))
        s = self.spec
        self.dtype = np.dtype(s["dtype"])
        self.input_shape = tuple(s["input_shape"])
        self.output_shape = tuple(s["output_shape"])
        self.backend = backend if backend is not None else PynqBackend(self.folder, s)
        weights = self.folder / WEIGHTS
        if "weights" in self.backend.buffers and weights.is_file():
            w = np.load(weights)
            self.backend.buffers["weights"][: len(w)] = w
            self.backend.sync("weights")

    # --- the format ----------------------------------------------------------------------------
    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float to the input format: ``floor(x * 2**frac + 1/2)``, saturated (float32 as is)."""
        if self.spec["is_float"]:
            return np.asarray(x, dtype=np.float32)
        q = np.floor(np.asarray(x, dtype=np.float64) * 2.0 ** self.spec["input_frac"] + 0.5)
        top = 2 ** (self.spec["bits"] - 1)
        return np.clip(q, -top, top - 1).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        if self.spec["is_float"]:
            return np.asarray(q, dtype=np.float64)
        return np.asarray(q, dtype=np.float64) * 2.0 ** -self.spec["output_frac"]

    # --- running -------------------------------------------------------------------------------
    def predict(self, images: np.ndarray) -> np.ndarray:
        """The design's outputs (n, outputs), dequantized, in CHW order, for float images (n, C, H, W)
        or one (C, H, W)."""
        return self.dequantize(self.predict_stored(self.quantize(self._images(images))))

    def predict_stored(self, xq: np.ndarray) -> np.ndarray:
        """Stored outputs for stored inputs (n, C, H, W), one image a run of the IP."""
        xq = np.asarray(xq)
        n = len(xq)
        words = xq.transpose(0, 2, 3, 1) if self.spec["channels_last"] else xq
        words = np.ascontiguousarray(words.reshape(n, -1), dtype=self.dtype)
        out_words = int(np.prod(self.output_shape))
        out = np.zeros((n, out_words), dtype=self.dtype)
        buf_in, buf_out = self.backend.buffers["input"], self.backend.buffers["output"]
        for i in range(n):
            buf_in[:] = 0
            buf_in[: words.shape[1]] = words[i]
            self.backend.sync("input")
            self.backend.run()
            out[i] = buf_out[:out_words]
        if self.spec["channels_last"]:
            c, h, w = self.output_shape
            out = out.reshape(n, h, w, c).transpose(0, 3, 1, 2).reshape(n, -1)
        return out

    def _images(self, images: np.ndarray) -> np.ndarray:
        a = np.asarray(images)
        if a.ndim == 3:
            a = a[None]
        if a.dtype.kind not in "fiu" or a.ndim != 4 or tuple(a.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise ValueError(
                f"images of shape {list(np.shape(images))} and type {a.dtype}; the design takes numbers "
                f"(n, {c}, {h}, {w}) or ({c}, {h}, {w})"
            )
        return a


class PynqBackend:
    """The IP on the board: the overlay (``fnas.bit`` and its ``fnas.hwh``), the buffers in contiguous
    memory (``pynq.allocate``), each port's address written once into its AXI-Lite register."""

    def __init__(self, folder: Path, spec: dict) -> None:
        from pynq import Overlay, allocate  # on the board only

        self.overlay = Overlay(str(Path(folder) / spec["bitstream"]))
        self.ip = getattr(self.overlay, spec["instance"])
        dtype = np.dtype(spec["dtype"])
        self.buffers = {
            name: allocate(shape=(words,), dtype=dtype) for name, words in spec["buffers"].items()
        }
        for arg, buffer in spec["ports"]:
            self._address(arg, self.buffers[buffer].physical_address)

    def _address(self, arg: str, address: int) -> None:
        """Write ``address`` into argument ``arg``'s register: HLS names it after the argument (``_r``
        added to a Verilog keyword such as ``input``), split in ``_1`` (low) and ``_2`` (high) words
        where its register map has 32-bit fields; a 64-bit field is written as two 32-bit words (its
        offset need not be 8-byte aligned)."""
        regs = self.ip.register_map
        for name in (arg, f"{arg}_r"):
            if hasattr(regs, name):
                reg = getattr(regs, name)
                if getattr(reg, "width", 32) > 32:
                    self.ip.write(reg.address, address & 0xFFFFFFFF)
                    self.ip.write(reg.address + 4, address >> 32)
                else:
                    setattr(regs, name, address)
                return
            if hasattr(regs, f"{name}_1"):
                setattr(regs, f"{name}_1", address & 0xFFFFFFFF)
                if hasattr(regs, f"{name}_2"):
                    setattr(regs, f"{name}_2", address >> 32)
                return
        raise KeyError(f"the IP's register map has no register for argument '{arg}'")

    def sync(self, name: str) -> None:
        self.buffers[name].flush()

    def run(self) -> None:
        self.ip.write(AP_CTRL, AP_START)
        while not self.ip.read(AP_CTRL) & AP_DONE:
            pass
        self.buffers["output"].invalidate()
