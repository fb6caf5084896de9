"""checks.py - the ok / not ok lines and the "N passed, N failed" total
that tests/layout's scripts print (tests/run.sh counts the total)."""


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=()):
        """One line: ok or not ok WHAT, then the detail lines of a failure."""
        if ok:
            self.passed += 1
            print('ok     %s' % what)
        else:
            self.failed += 1
            print('not ok %s' % what)
            for d in detail:
                print('       %s' % d)

    def done(self, prefix=''):
        """Print the total; the exit status: 1 if any check failed."""
        print('%s%d passed, %d failed' % (prefix, self.passed, self.failed))
        return 1 if self.failed else 0
