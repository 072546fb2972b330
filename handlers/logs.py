"""CloudWatch Logs (awsJson, `Logs_20140328.*`): operations are added here."""
