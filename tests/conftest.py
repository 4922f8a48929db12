import os
import sys

# Shared test helpers (tests/oracle.py) are importable from every test directory.
sys.path.insert(0, os.path.dirname(__file__))
