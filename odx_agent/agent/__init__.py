"""The daemon: detection, the drop state machine, and the work that moves drops along."""

from odx_agent.agent.loop import Agent

__all__ = ["Agent"]
