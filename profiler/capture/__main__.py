"""`python -m profiler.capture run ...`: the capture CLI on its own (the same as `python -m profiler run ...`)."""

import sys

from profiler.capture.cli import main

sys.exit(main())
