"""A simulated NodeODX node, for tests and demos.

It answers the NodeODX REST API the way a real NodeODX 2.3.1 does in its test mode
(same endpoints, fields, status codes and error texts) without processing anything.
It is a test and demo tool; the real processing node is NodeODX.
"""

from odx_agent.simnode.node import SimulatedNode, run_simulated_node

__all__ = ["SimulatedNode", "run_simulated_node"]
