"""``python -m odx_agent`` runs the command line, as the ``odx-agent`` script does."""

from odx_agent.cli import main

if __name__ == "__main__":
    main()
