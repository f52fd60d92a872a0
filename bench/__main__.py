"""``python -m bench`` (``make bench``): run every benchmark in turn."""

from __future__ import annotations

import sys

from bench import tutor_stream


def main() -> int:
    return int(tutor_stream.main([]) or 0)


if __name__ == "__main__":
    sys.exit(main())
