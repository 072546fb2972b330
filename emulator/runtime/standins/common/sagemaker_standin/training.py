"""SAGEMAKER_TRAINING_MODULE of the stand-ins: what AWS's framework containers do under `train`.

Script mode (a `sagemaker_program` hyperparameter): the training toolkit fetches the submit directory
(S3 or the `code` channel), installs its requirements.txt and runs the entry point, as AWS's
scikit-learn and XGBoost containers do. XGBoost without an entry point is the built-in algorithm.
"""
import os

from sagemaker_training import entry_point, environment, errors, runner


def main() -> None:
    env = environment.Environment()
    if env.user_entry_point:
        entry_point.run(env.module_dir, env.user_entry_point, env.to_cmd_args(), env.to_env_vars(),
                        runner_type=runner.ProcessRunnerType)
        return
    if os.environ.get("SAGEMAKER_STANDIN_FRAMEWORK") == "xgboost":
        from . import xgboost_algorithm

        xgboost_algorithm.train(env)
        return
    raise errors.ClientError("No entry point: set the sagemaker_program hyperparameter (the SDK's entry_point) "
                             "to the script to run.")
