"""``python -m bench`` (``make bench``): run every benchmark in turn."""

from __future__ import annotations

import sys

from bench import fast_paths, reviews_sleeping, tutor_stream


def main() -> int:
    failed = int(fast_paths.main([]) or 0)
    failed = failed or int(tutor_stream.main([]) or 0)
    return failed or int(reviews_sleeping.main([]) or 0)


if __name__ == "__main__":
    sys.exit(main())
