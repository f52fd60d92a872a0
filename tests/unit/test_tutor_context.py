"""What the tutor is told about a learner's last result: public tests only."""

from __future__ import annotations

from domain.tutor import MAX_FAILING_TESTS_IN_CONTEXT, public_last_result


def test_hidden_entries_are_dropped_even_if_a_stored_result_carried_their_data() -> None:
    tests = [
        {"index": 0, "hidden": False, "passed": True, "label": "test 1: passed"},
        {
            "index": 1,
            "hidden": False,
            "passed": False,
            "label": "test 2: failed",
            "args": [[1, 2]],
            "expected": 3,
            "actual": 0,
            "stdout": "debug output",
        },
        # A hidden entry that (wrongly) kept its data: it must not pass anyway.
        {
            "index": 2,
            "hidden": True,
            "passed": False,
            "label": "hidden test 3: failed",
            "args": ["SECRET-ARG"],
            "expected": "SECRET-EXPECTED",
        },
        {"index": 3, "passed": False, "label": "no hidden flag: not trusted", "args": ["X"]},
    ]
    result = public_last_result("wrong_answer", "The answer is not correct.", tests)

    assert [t.label for t in result.failing_public_tests] == ["test 2: failed"]
    dumped = result.model_dump_json()
    assert "SECRET" not in dumped
    assert "debug output" not in dumped
    assert (result.passed, result.total) == (1, 4)


def test_the_context_is_bounded() -> None:
    tests = [
        {"index": i, "hidden": False, "passed": False, "label": f"test {i}", "actual": "x" * 5000}
        for i in range(20)
    ]
    result = public_last_result("wrong_answer", "m" * 5000, tests)
    assert len(result.failing_public_tests) == MAX_FAILING_TESTS_IN_CONTEXT
    assert len(result.message) < 400
    assert all(len(str(t.actual)) < 400 for t in result.failing_public_tests)
