"""Reading the native tier's coverage report (`sxpool eval --jit-report=PATH`,
format in jit/README.md), for the tests that assert on it.

    import jit_report
    r = jit_report.read(path)   # None when missing or incomplete
    r.counts["calls-native"], r.refused, r.compiled, r.native_share()
"""

import collections

COUNTS = ("functions-compiled", "functions-cached", "functions-refused", "functions-failed",
          "functions-assuming", "functions-redefined", "calls-native", "calls-direct", "calls-vm",
          "toplevel-forms")

Refused = collections.namedtuple("Refused", "name hash reason")
Compiled = collections.namedtuple("Compiled", "name hash ms")


class Report:
    def __init__(self, counts, refused, compiled):
        self.counts = counts      # key -> int, every key of COUNTS
        self.refused = refused    # [Refused]
        self.compiled = compiled  # [Compiled], functions this process compiled

    def native_share(self):
        """calls-native / (calls-native + calls-vm), or None without calls."""
        n, v = self.counts["calls-native"], self.counts["calls-vm"]
        return n / (n + v) if n + v else None

    def __repr__(self):
        return "Report(%r, refused=%r, compiled=%d)" % (self.counts, self.refused,
                                                         len(self.compiled))


def parse(text):
    """The report in text, or None if a line is malformed or a count is
    missing (a process that died before exit() leaves no or part of one)."""
    counts, refused, compiled = {}, [], []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in COUNTS and words[1].isdigit():
            counts[words[0]] = int(words[1])
        elif len(words) == 4 and words[0] == "refused":
            refused.append(Refused(*words[1:]))
        elif len(words) == 4 and words[0] == "compile-ms":
            try:
                compiled.append(Compiled(words[1], words[2], float(words[3])))
            except ValueError:
                return None
        else:
            return None
    if set(counts) != set(COUNTS) or counts["functions-refused"] != len(refused):
        return None
    return Report(counts, refused, compiled)


def read(path):
    try:
        with open(path) as f:
            return parse(f.read())
    except OSError:
        return None
