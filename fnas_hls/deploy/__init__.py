"""From an HLS project to a running board: the block design script, the PYNQ driver (``driver.py``,
standalone), and the driver's backend on this machine (``local.py``)."""
