"""Benchmarks for odx-agent, run as ``python -m bench upload|detect|e2e|idle|all``.

Each benchmark measures every contender in the same run on the same machine and reports
ratios, so figures from different machines are never compared directly. Results go to a
table on stdout and to BENCHMARKS.md, together with the machine they were measured on.
"""
