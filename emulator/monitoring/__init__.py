"""Model Monitor: monitoring schedules whose runs are processing jobs (engine.py)."""

from .engine import MonitoringEngine

__all__ = ["MonitoringEngine"]
