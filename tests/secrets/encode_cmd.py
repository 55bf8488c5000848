"""A command for ``exec`` tasks: prints $S in every encoding, on stdout and on stderr."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from canary_funcs import encoded

for key, form in encoded(os.environ["S"]).items():
    print(f"{key}: {form}")
    print(f"{key}: {form}", file=sys.stderr)
