"""The progression rules: mastery, module completion and unlocking, advancing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import progression as p
from domain.curriculum import CurriculumSpec, validate_curriculum
from domain.progression import ItemPlan, ModulePlan, ModuleStatus, SessionPlan, SessionStatus
from domain.upstream import Verdict

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def plan() -> SessionPlan:
    """basics (a, b optional, c skippable) -> loops (d needs 2 accepted); extra needs basics."""
    return SessionPlan(
        modules=[
            ModulePlan(
                slug="basics",
                items=[
                    ItemPlan(problem_id="a", skills=["arith"]),
                    ItemPlan(problem_id="b", required=False, skills=["arith"]),
                    ItemPlan(problem_id="c", skippable=True, skills=["logic"]),
                ],
            ),
            ModulePlan(
                slug="loops",
                prerequisites=["basics"],
                items=[ItemPlan(problem_id="d", mastery_threshold=2, skills=["loops", "arith"])],
            ),
        ]
    )


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def submit(pl: SessionPlan, pr: p.Progress, pid: str, verdict: Verdict, t: int = 1) -> p.Progress:
    return p.record_submission(pl, pr, pid, verdict, at(t))


def test_a_new_session_starts_on_the_first_item_of_the_first_unlocked_module() -> None:
    pl = plan()
    pl.modules.reverse()  # 'loops' first in the list, but locked behind 'basics'
    pr = p.start(pl, T0)
    assert pr.position == p.Position(module_slug="basics", problem_id="a")
    assert pr.status == SessionStatus.active
    assert pr.seq == 0


def test_an_item_is_mastered_after_threshold_accepted_submissions() -> None:
    pl = plan()
    pr = p.start(pl, T0)
    d = pl.item("d")
    assert d is not None
    pr = submit(pl, pr, "d", Verdict.accepted)
    assert not p.is_mastered(d, pr)
    pr = submit(pl, pr, "d", Verdict.wrong_answer)
    pr = submit(pl, pr, "d", Verdict.accepted)
    assert p.is_mastered(d, pr)
    assert pr.item("d").attempts == 3
    assert pr.item("d").accepted == 2


def test_internal_errors_are_not_attempts_but_count_as_activity() -> None:
    pl = plan()
    pr = submit(pl, p.start(pl, T0), "a", Verdict.internal_error, t=5)
    assert pr.item("a").attempts == 0
    assert pr.last_activity_at == at(5)
    assert pr.seq == 1


def test_unknown_problems_and_closed_sessions_change_nothing() -> None:
    pl = plan()
    pr = p.start(pl, T0)
    assert submit(pl, pr, "zzz", Verdict.accepted) == pr
    ended = p.close(pr, SessionStatus.ended, at(1))
    assert submit(pl, ended, "a", Verdict.accepted) == ended
    assert p.record_hint(pl, ended, "a", 2, at(2)) == ended


def test_advance_is_refused_until_the_mastery_rule_is_met() -> None:
    pl = plan()
    pr = submit(pl, p.start(pl, T0), "a", Verdict.wrong_answer)
    refusal = p.advance_refusal(pl, pr)
    assert refusal is not None
    assert refusal.code == "not_mastered"
    assert "needs 1 accepted submission(s) and has 0" in refusal.message
    assert p.advance(pl, pr, at(2)) == pr  # a refused advance changes nothing
    pr = submit(pl, pr, "a", Verdict.accepted)
    assert p.advance_refusal(pl, pr) is None
    moved = p.advance(pl, pr, at(3))
    assert moved.position == p.Position(module_slug="basics", problem_id="b")
    assert not moved.item("a").skipped


def test_optional_and_skippable_items_may_be_left_unmastered_and_are_marked_skipped() -> None:
    pl = plan()
    pr = submit(pl, p.start(pl, T0), "a", Verdict.accepted)
    pr = p.advance(pl, pr, at(2))  # a -> b (optional)
    assert p.advance_refusal(pl, pr) is None
    pr = p.advance(pl, pr, at(3))  # b left unmastered -> c (skippable)
    assert pr.item("b").skipped
    assert p.next_actions(pl, pr) == ["submit", "skip", "end"]
    pr = p.advance(pl, pr, at(4))  # c skipped: basics complete, loops unlocked
    assert pr.item("c").skipped
    assert pr.position == p.Position(module_slug="loops", problem_id="d")
    basics = pl.module("basics")
    assert basics is not None
    assert p.module_complete(basics, pr)


def test_a_module_unlocks_when_its_prerequisites_are_complete() -> None:
    pl = plan()
    loops = pl.module("loops")
    assert loops is not None
    pr = p.start(pl, T0)
    assert not p.module_unlocked(loops, pl, pr)
    assert [m.status for m in p.view(pl, pr).modules] == [
        ModuleStatus.available,
        ModuleStatus.locked,
    ]
    pr = submit(pl, pr, "a", Verdict.accepted)
    pr = submit(pl, pr, "c", Verdict.accepted)  # b is optional
    assert p.module_unlocked(loops, pl, pr)


def test_the_session_completes_when_every_module_is_complete() -> None:
    pl = plan()
    pr = p.start(pl, T0)
    for pid in ("a", "c", "d", "d"):
        pr = submit(pl, pr, pid, Verdict.accepted, t=7)
    assert pr.status == SessionStatus.completed
    assert pr.position is None
    assert pr.ended_at == at(7)
    view = p.view(pl, pr)
    assert view.progress.percent == 100
    assert view.progress.modules_completed == 2
    assert view.progress.items_done == 3
    assert view.next_actions == ["start_new_session"]


def test_advance_past_the_last_item_completes_the_session() -> None:
    pl = SessionPlan(
        modules=[ModulePlan(slug="m", items=[ItemPlan(problem_id="x", skippable=True)])]
    )
    pr = p.advance(pl, p.start(pl, T0), at(1))
    assert pr.status == SessionStatus.completed
    assert pr.item("x").skipped


def test_a_stale_advance_is_refused() -> None:
    pl = plan()
    pr = submit(pl, p.start(pl, T0), "a", Verdict.accepted)
    assert p.advance_refusal(pl, pr, "a") is None
    pr = p.advance(pl, pr, at(2))
    refusal = p.advance_refusal(pl, pr, "a")
    assert refusal is not None
    assert refusal.code == "stale"


def test_advance_skips_items_already_mastered_out_of_order() -> None:
    pl = plan()
    pr = p.start(pl, T0)
    pr = submit(pl, pr, "b", Verdict.accepted)
    pr = submit(pl, pr, "a", Verdict.accepted)
    pr = p.advance(pl, pr, at(3))
    assert pr.position is not None
    assert pr.position.problem_id == "c"


def test_hint_levels_only_go_up_and_are_bounded() -> None:
    pl = plan()
    pr = p.record_hint(pl, p.start(pl, T0), "a", 2, at(1))
    pr = p.record_hint(pl, pr, "a", 1, at(2))
    assert pr.item("a").hint_level == 2
    pr = p.record_hint(pl, pr, "a", 9, at(3))
    assert pr.item("a").hint_level == p.MAX_HINT_LEVEL
    assert pr.last_activity_at == at(3)


def test_mastery_per_skill_comes_from_the_attempts_at_items_training_it() -> None:
    pl = plan()
    pr = p.start(pl, T0)
    pr = submit(pl, pr, "a", Verdict.wrong_answer)
    pr = submit(pl, pr, "a", Verdict.accepted)
    pr = submit(pl, pr, "d", Verdict.accepted)
    mastery = p.mastery_by_skill(pl, pr)
    assert mastery == {"arith": 0.5, "loops": 0.5}  # arith: 2 of 3 attempts, smoothed


def test_closing_keeps_the_position_and_ignores_closed_sessions() -> None:
    pl = plan()
    pr = p.close(p.start(pl, T0), SessionStatus.abandoned, at(9))
    assert pr.status == SessionStatus.abandoned
    assert pr.ended_at == at(9)
    assert pr.position is not None
    assert pr.position.problem_id == "a"
    assert p.close(pr, SessionStatus.ended, at(10)) == pr


def test_every_change_bumps_seq_so_projections_can_be_ordered() -> None:
    pl = plan()
    pr = p.start(pl, T0)
    seqs = [pr.seq]
    pr = submit(pl, pr, "a", Verdict.accepted)
    seqs.append(pr.seq)
    pr = p.record_hint(pl, pr, "c", 1, at(2))
    seqs.append(pr.seq)
    pr = p.advance(pl, pr, at(3))
    seqs.append(pr.seq)
    pr = p.close(pr, SessionStatus.ended, at(4))
    seqs.append(pr.seq)
    assert seqs == sorted(set(seqs))


@pytest.mark.parametrize(
    ("modules", "kind"),
    [
        ([], "empty_curriculum"),
        ([{"slug": "m", "title": "M", "items": []}], "empty_module"),
        (
            [
                {"slug": "m", "title": "M", "prerequisites": ["n"], "items": [{"problem_id": "a"}]},
                {"slug": "n", "title": "N", "prerequisites": ["m"], "items": [{"problem_id": "b"}]},
            ],
            "cycle",
        ),
        (
            [
                {"slug": "m", "title": "M", "items": [{"problem_id": "a"}]},
                {"slug": "n", "title": "N", "items": [{"problem_id": "a"}]},
            ],
            "duplicate_item",
        ),
        (
            [
                {
                    "slug": "m",
                    "title": "M",
                    "prerequisites": ["x", "x"],
                    "items": [{"problem_id": "a"}],
                }
            ],
            "duplicate_prerequisite",
        ),
    ],
)
def test_structural_validation_needs_no_problem_bank(modules: list[object], kind: str) -> None:
    issues = validate_curriculum(CurriculumSpec.model_validate({"modules": modules}), None)
    assert kind in {i.type for i in issues}


def test_unknown_problems_are_reported_with_their_location() -> None:
    spec = CurriculumSpec.model_validate(
        {
            "modules": [
                {"slug": "m", "title": "M", "items": [{"problem_id": "a"}, {"problem_id": "zz"}]}
            ]
        }
    )
    issues = validate_curriculum(spec, {"a"})
    assert [(i.type, i.loc) for i in issues] == [
        ("unknown_problem", ["modules", "0", "items", "1", "problem_id"])
    ]
