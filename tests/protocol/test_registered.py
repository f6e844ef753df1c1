"""
Every test file here is run by `meson test` (and so by scripts/test and
CI) only if tests/protocol/meson.build lists it: a file left out passes
locally under pytest and is never run by CI. This checks the list.
"""

import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def test_every_test_file_is_registered_with_meson():
    with open(os.path.join(HERE, "meson.build")) as f:
        listed = set(re.findall(r"'(test_[a-z0-9_]+\.py)'", f.read()))
    present = {n for n in os.listdir(HERE) if re.fullmatch(r"test_[a-z0-9_]+\.py", n)}
    assert present - listed == set(), "not in tests/protocol/meson.build"
    assert listed - present == set(), "listed but missing"
