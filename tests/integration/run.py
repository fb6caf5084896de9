#!/usr/bin/python3
"""Run the integration tests: run.py [NAME-SUBSTRING ...]"""
import glob
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test_*.py'))):
    importlib.import_module(os.path.basename(path)[:-3])

sys.exit(harness.main(sys.argv))
