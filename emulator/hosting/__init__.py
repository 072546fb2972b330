"""Real-time endpoints (spec §3): fleets of serving containers per production variant.

`engine` owns endpoint lifecycles (create, blue/green update, weights and capacities, delete,
restart); `live` holds what is running; `invoke` routes invocations; `capture`, `metrics` and
`async_inference` are the side channels SageMaker offers around an invocation.
"""

from .engine import HostingEngine

__all__ = ["HostingEngine"]
