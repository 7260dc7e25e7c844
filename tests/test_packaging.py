"""The wheel ships templates/, boards/ and search/, and an installed package finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_the_data_folders_and_an_install_finds_them(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "whl"), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "whl").glob("fnas_hls-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("templates", "boards", "search"):  # every file, in its subfolder (templates/shared/...)
        prefix = f"fnas_hls/_data/{folder}/"
        shipped = {n[len(prefix) :] for n in names if n.startswith(prefix) and not n.endswith("/")}
        on_disk = {str(p.relative_to(REPO / folder)) for p in (REPO / folder).rglob("*") if p.is_file()}
        assert shipped == on_disk, folder
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fnas_hls.paths as p, fnas_hls; print(fnas_hls.__file__); "
            "print(p.data_dir('templates')); print(p.data_dir('search'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
    )
    lines = probe.stdout.splitlines()
    assert all(line.startswith(str(target)) for line in lines), lines
