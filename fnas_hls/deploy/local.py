"""The deploy driver's backend on this machine: the project's C++ top compiled by g++
(``backend.design.Design``) runs on the driver's buffers where the IP would, so that the driver's
packing is tested end to end without a board."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fnas_hls.backend.design import Design


class CompiledBackend:
    """The buffers the design's host allocates (numpy, zeros) and one run of the compiled top on them."""

    def __init__(self, project: str | Path) -> None:
        self.design = Design(project)
        dtype = self.design.input_type.np_dtype
        self.buffers = {
            name: np.zeros(words, dtype=dtype) for name, words in self.design.host_buffers().items()
        }

    def sync(self, name: str) -> None:
        pass  # one memory: nothing to flush

    def run(self) -> None:
        self.design.call(self.buffers)
