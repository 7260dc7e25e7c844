"""fnas-hls: FPGA-implementation-aware neural architecture search with an analytic HLS latency model."""

__version__ = "0.1.0"
