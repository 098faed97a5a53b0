"""A plain pyodx loop over drop folders, the way a short script would do it.

Run as ``python -m bench.seedloop URL INGEST RESULTS INTERVAL``: for each sub-folder of
INGEST in name order, create a task of its images, wait for it (polling every INTERVAL
seconds) and download its results into RESULTS/<folder>.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyodx import Node  # type: ignore[import-untyped]


def main(arguments: list[str]) -> int:
    """Given the node URL, the ingest and results folders and the poll interval, process
    every drop in turn; return the exit code."""
    url, ingest, results, interval = arguments
    node = Node.from_url(url)
    for folder in sorted(Path(ingest).iterdir()):
        images = sorted(str(path) for path in folder.glob("*.JPG"))
        task = node.create_task(images)
        task.wait_for_completion(interval=float(interval))
        task.download_assets(str(Path(results) / folder.name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
