"""A stand-in SessionWorkflow that only records ``hint_given`` signals.

In a module of its own: the sandbox re-imports the module that defines a workflow, and
this one imports nothing but what it passes through.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.sessions import HINT_GIVEN_SIGNAL, HintGiven


@workflow.defn(name="SessionWorkflow")
class StandInSession:
    def __init__(self) -> None:
        self.hints: list[HintGiven] = []

    @workflow.signal(name=HINT_GIVEN_SIGNAL)
    def hint_given(self, data: HintGiven) -> None:
        self.hints.append(data)

    @workflow.run
    async def run(self) -> list[HintGiven]:
        await workflow.wait_condition(lambda: bool(self.hints))
        return self.hints
