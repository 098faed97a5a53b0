"""Upload one set of images with a NodeODX client library, in a process of its own.

Run as ``python -m bench.clients odx-agent|pyodx URL FILE_LIST PARALLEL``; prints the
created task's UUID. The interpreter's start-up and imports are part of what is measured,
equally for every library.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(arguments: list[str]) -> int:
    """Given library, node URL, a file holding one image path per line and the number of
    parallel uploads, create the task and print its UUID. Return the exit code."""
    library, url, file_list, parallel = arguments
    files = Path(file_list).read_text().splitlines()
    if library == "odx-agent":
        from odx_agent.nodeodx import Node

        with Node.from_url(url) as node:
            task = node.create_task(files, parallel_uploads=int(parallel))
            print(task.uuid)
        return 0
    if library == "pyodx":
        from pyodx import Node as SeedNode  # type: ignore[import-untyped]

        seed_task = SeedNode.from_url(url).create_task(files, parallel_uploads=int(parallel))
        print(seed_task.uuid)
        return 0
    print(f"unknown library {library!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
