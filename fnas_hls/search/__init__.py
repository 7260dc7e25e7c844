"""The FNAS search: controller, rewards, child trainer, search loop, run folder, report and winner.

``run_search`` (``loop.py``) is the entry point; ``fnas-hls search`` wraps it.
"""
