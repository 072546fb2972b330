"""SageMaker Pipelines: the definition JSON (definition.py), its expressions (expressions.py), the
step types (steps.py) and the scheduler that runs an execution as a DAG of real steps (executor.py)."""
