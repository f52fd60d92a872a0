"""Problem Bank reference implementation: problems from YAML files in this folder."""

from __future__ import annotations

from typing import Final

from devservices.problem_bank.app import ProblemBankSettings, create_app
from devservices.problem_bank.loader import (
    PROBLEMS_DIR,
    ProblemFile,
    ProblemFileError,
    load_problems,
)

#: Values that appear only in the hidden tests of ``py-secret-sum`` (inputs and expected
#: outputs). No response that a learner can see may ever contain any of them.
SECRET_MARKERS: Final[tuple[str, ...]] = (
    "ZQX-HIDDEN-MARKER",
    "7771337",
    "7771338",
    "8675309123",
    "QQJX-SECRET",
)

__all__ = [
    "PROBLEMS_DIR",
    "SECRET_MARKERS",
    "ProblemBankSettings",
    "ProblemFile",
    "ProblemFileError",
    "create_app",
    "load_problems",
]
