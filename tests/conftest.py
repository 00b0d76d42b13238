import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# The suite keeps its compiled kernels in the checkout (.cache/, git-ignored), never in the
# developer's own cache; CLI and worker subprocesses inherit it. FASTPROP_CACHE_DIR set by
# the caller wins (e.g. "off").
os.environ.setdefault(
    "FASTPROP_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache")
)
