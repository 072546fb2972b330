"""Application Auto Scaling for SageMaker variants: schedules.py (scheduled actions), scaler.py (the scaling)."""
