#!/usr/bin/python3
"""Run the fault-injection tests: run.py [NAME-SUBSTRING ...]

The tests stand on tests/integration/harness.py (a fresh test homeserver,
temp dir and the real daemon per test).  Tests marked @faultlib.parallel
(the ones that mostly wait out a fault: the 2-minute outage, a hung
homeserver, clock jumps) each start at once in a thread of their own; the
others run BB_TEST_JOBS at a time (default 1) beside them.  Ends with
"fault: N passed, N failed".
"""
import concurrent.futures
import glob
import importlib
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
sys.path.insert(0, HERE)
import harness  # noqa: E402

ours = []
for path in sorted(glob.glob(os.path.join(HERE, 'test_*.py'))):
    ours.append(importlib.import_module(os.path.basename(path)[:-3]).__name__)

# Helpers imported from the integration tests register their tests too:
# run only ours.
TESTS = [fn for fn in harness.TESTS if fn.__module__ in ours]


def main(argv):
    only = argv[1:]
    chosen = [fn for fn in TESTS if not only or
              any(o in fn.__module__ + '.' + fn.__name__ for o in only)]
    if os.environ.get('BB_SKIP_SLOW') == '1':
        # the tests that only wait out a fault check timing, not memory
        skipped = [fn for fn in chosen if getattr(fn, 'parallel', False)]
        chosen = [fn for fn in chosen if not getattr(fn, 'parallel', False)]
        for fn in skipped:
            print('skip %s.%s (BB_SKIP_SLOW=1)' % (fn.__module__, fn.__name__), flush=True)
    jobs = max(1, int(os.environ.get('BB_TEST_JOBS', '1')))
    lock = threading.Lock()
    counts = {True: 0, False: 0}
    t0 = time.time()

    def run(fn):
        ok, line = harness.run_one(fn)
        with lock:
            counts[ok] += 1
            print(line, flush=True)

    waiting = [threading.Thread(target=run, args=(fn,))
               for fn in chosen if getattr(fn, 'parallel', False)]
    for th in waiting:
        th.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        list(ex.map(run, [fn for fn in chosen if not getattr(fn, 'parallel', False)]))
    for th in waiting:
        th.join()
    print('fault: %d passed, %d failed (%.0fs)' % (counts[True], counts[False], time.time() - t0))
    return 1 if counts[False] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
