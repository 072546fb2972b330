"""Job machinery shared by training, processing and batch transform."""
