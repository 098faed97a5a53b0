"""Make the repository root importable, so tests share helpers as `tests.support.*`.

pytest puts the directory of a root-level conftest.py on sys.path; nothing else lives here.
"""
