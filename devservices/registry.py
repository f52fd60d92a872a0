"""The list of dev services: name, app factory and port.

``python -m devservices`` serves every entry; tests build the same apps with
:func:`build_apps` and serve them on free ports. To add a service, append a
:class:`ServiceSpec` in :func:`service_specs`. The Tutor is picked up automatically when
``devservices.tutor`` defines ``build_dev_app(settings: DevServicesSettings) -> ASGI app``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devservices.settings import DevServicesSettings

AppFactory = Callable[[DevServicesSettings], Any]  # returns an ASGI application


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    factory: AppFactory
    port: Callable[[DevServicesSettings], int]


def _problem_bank(settings: DevServicesSettings) -> Any:
    from devservices.problem_bank import ProblemBankSettings, create_app

    return create_app(ProblemBankSettings(internal_token=settings.problem_bank_token))


def _eval(settings: DevServicesSettings) -> Any:
    from devservices.eval import EvalSettings, create_app

    return create_app(EvalSettings(internal_token=settings.eval_token))


def _main_api(settings: DevServicesSettings) -> Any:
    from devservices.main_api import create_app

    return create_app(settings.api_token)


def _tutor_spec() -> ServiceSpec | None:
    try:
        module = importlib.import_module("devservices.tutor")
    except ModuleNotFoundError as exc:
        if exc.name in ("devservices.tutor",):
            return None
        raise
    factory = getattr(module, "build_dev_app", None)
    if factory is None:
        return None
    return ServiceSpec("tutor", factory, lambda s: s.dev_tutor_port)


def service_specs() -> list[ServiceSpec]:
    specs = [
        ServiceSpec("problem_bank", _problem_bank, lambda s: s.dev_problem_bank_port),
        ServiceSpec("eval", _eval, lambda s: s.dev_eval_port),
        ServiceSpec("main_api", _main_api, lambda s: s.dev_main_api_port),
    ]
    tutor = _tutor_spec()
    if tutor is not None:
        specs.append(tutor)
    return specs


def build_apps(
    internal_token: str | None = None, settings: DevServicesSettings | None = None
) -> dict[str, Any]:
    """Every dev service as an ASGI app, keyed by name (``problem_bank``, ``eval``, ...)."""
    settings = settings or DevServicesSettings()
    if internal_token is not None:  # one token for all three (tests)
        settings = DevServicesSettings(
            problem_bank_token=internal_token,
            eval_token=internal_token,
            tutor_token=internal_token,
            api_token=internal_token,
            **settings.model_dump(
                exclude={"problem_bank_token", "eval_token", "tutor_token", "api_token"}
            ),
        )
    return {spec.name: spec.factory(settings) for spec in service_specs()}
