"""One module per ``fnas-hls`` sub-command; each exposes ``register(subparsers)``.

A command's handler takes the parsed ``argparse.Namespace`` and returns the exit status; it raises
``FnasError`` for anything wrong in the user's input, which ``cli.main`` prints as one line.
"""
