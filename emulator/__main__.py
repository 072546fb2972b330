import sys

from sagemaker_emulator.cli import main  # absolute: `python -m emulator` from a checkout must not load a second copy

sys.exit(main())
