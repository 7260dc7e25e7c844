"""``fnas-hls deploy DIR --board B -o OUT``: the block design script and the PYNQ driver of a project."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deploy",
        help="write the Vivado block design / bitstream script and the PYNQ driver of a generated project",
        description="From a project `fnas-hls emit` wrote: build_bitstream.tcl (the board's processing "
        "system, the IP's control and memory ports, validation, bitstream and .hwh; run it with Vivado "
        "after the HLS export) and a PYNQ driver (fnas_driver.py, design.json, weights.npy) whose "
        "Driver(folder).predict(images) runs the design on the board.",
    )
    p.add_argument("project", metavar="DIR", help="folder written by `fnas-hls emit`")
    p.add_argument("--board", required=True, help="the board the project was emitted for (a name or YAML)")
    p.add_argument("-o", "--out", metavar="OUT", required=True, help="folder to write")
    p.add_argument(
        "--no-driver", action="store_true", help="the block design script alone (boards without PYNQ)"
    )
    p.add_argument("--force", action="store_true", help="write into an existing folder (other files kept)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from fnas_hls.deploy.package import deploy_project

    res = deploy_project(args.project, args.board, args.out, force=args.force, driver=not args.no_driver)
    print(
        f"wrote {res.folder}: {', '.join(res.files)} (m_axi bundles: {', '.join(res.bundles)}); "
        f"then `vivado -mode batch -source {res.folder}/build_bitstream.tcl` after the HLS export"
    )
    return 0
