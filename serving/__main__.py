"""`python -m serving --model-repository DIR`: runs the gRPC serving daemon."""
import sys

from serving.cli import main

sys.exit(main())
