"""Local reference implementations of the upstream services (Problem Bank, Eval, Tutor).

They speak exactly the contracts in :mod:`domain.upstream`. ``python -m devservices`` serves
them all (see :mod:`devservices.registry`); tests can serve one app in-process with
:func:`devservices.testing.serve`.
"""
