#!/usr/bin/python3
"""Run the security tests: run.py [NAME-SUBSTRING ...]

What someone who can write to a remote, a stranger in the room, a removed
admin or a hostile homeserver tries, against the real ./backupbot.  The
integration harness (tests/integration/harness.py) runs them.
"""
import glob
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
sys.path.insert(0, HERE)
import harness  # noqa: E402

mine = set()
for path in sorted(glob.glob(os.path.join(HERE, 'test_*.py'))):
    mine.add(os.path.basename(path)[:-3])
    importlib.import_module(os.path.basename(path)[:-3])
# seclib borrows helpers from integration test modules: their tests are
# not this suite's
harness.TESTS[:] = [fn for fn in harness.TESTS if fn.__module__ in mine]

sys.exit(harness.main(sys.argv))
