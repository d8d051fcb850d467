# SPDX-License-Identifier: MIT
"""Render a gnuplot script next to its data: the plotting step the bench summaries share."""
import subprocess
import sys
from pathlib import Path


def render(script: list, folder: Path, stem: str, who: str) -> None:
    """Write folder/stem.gp and run gnuplot on it (the script sets its output to stem.png).
    A missing or failing gnuplot is reported on stderr and is not an error: the table and
    JSON the caller wrote are complete without the plot."""
    gp = folder / f"{stem}.gp"
    gp.write_text("\n".join(script) + "\n")
    try:
        subprocess.run(["gnuplot", str(gp)], check=True)
        print(f"plot: {folder / (stem + '.png')}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"{who}: gnuplot failed ({e}); the table and JSON are complete", file=sys.stderr)
