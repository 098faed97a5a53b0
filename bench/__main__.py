"""Command line: ``python -m bench upload|detect|e2e|idle|scale|agent-rss|all [flags]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench.bigdrop import agent_rss_section, scale_section
from bench.daemon import detect_section, e2e_section
from bench.idle import idle_section
from bench.machine import describe_machine
from bench.report import BENCHMARKS_FILE, Section, table, write_section
from bench.upload import run_upload, upload_section


def parse_arguments(arguments: list[str]) -> argparse.Namespace:
    """Given the command line, return the parsed benchmark name and flags."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmark", choices=["upload", "detect", "e2e", "idle", "scale", "agent-rss", "all"]
    )
    parser.add_argument("--images", type=int, default=100, help="upload: images per task")
    parser.add_argument(
        "--size-mb", type=float, nargs="+", default=[8.0, 2.0], help="upload: image sizes"
    )
    parser.add_argument("--parallel", type=int, default=10, help="upload: parallel uploads")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--drops", type=int, default=50, help="detect and e2e: drops")
    parser.add_argument(
        "--idle-seconds", type=float, default=120.0, help="idle: seconds per CPU window"
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; leave {BENCHMARKS_FILE.name} alone"
    )
    return parser.parse_args(arguments)


def main(arguments: list[str]) -> int:
    """Given the command line, run the chosen benchmarks, print their tables and (unless
    --no-write) update BENCHMARKS.md. Return the exit code."""
    options = parse_arguments(arguments)
    machine = describe_machine()
    print(*table(["machine", ""], [[label, value] for label, value in machine]), sep="\n")
    builders: dict[str, Callable[[], Section]] = {
        "upload": lambda: upload_section(
            run_upload(options.images, options.size_mb, options.parallel, options.repeat),
            options.parallel,
        ),
        "detect": lambda: detect_section(options.drops, options.repeat),
        "e2e": lambda: e2e_section(options.drops),
        "idle": lambda: idle_section(window=options.idle_seconds),
        "scale": lambda: scale_section(),
        "agent-rss": lambda: agent_rss_section(),
    }
    names = list(builders) if options.benchmark == "all" else [options.benchmark]
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        section = builders[name]()
        section.machine = machine
        print()
        print(section.markdown())
        if not options.no_write:
            write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
