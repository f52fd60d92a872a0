"""Eval reference implementation: sandboxed Python, symbolic math, numbers, choices."""

from __future__ import annotations

from devservices.eval.app import create_app
from devservices.eval.math_worker import MathWorkerPool
from devservices.eval.sandbox import SandboxSettings
from devservices.eval.service import EvalSettings, Evaluator

__all__ = ["EvalSettings", "Evaluator", "MathWorkerPool", "SandboxSettings", "create_app"]
