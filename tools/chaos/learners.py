"""The load: learners who submit, follow a session, ask the tutor and grade reviews, over
both API processes, as a careful client would while the platform is failing.

Every answer any learner gets is recorded (route, status) and checked on the spot: a
``500``, a request slower than its bound, a ``503`` without ``Retry-After`` or without a
problem+json body, or a hidden-test marker in a body is a violation that fails the run.
Writes carry an ``Idempotency-Key`` and are retried with it on ``5xx``, ``429`` and
broken connections (honouring ``Retry-After``, capped), switching API process each time.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from devservices.problem_bank import SECRET_MARKERS
from devservices.problem_bank.loader import load_problems

MATH_TRACK = "calculus-and-algebra"
SECRET_PROBLEM = "py-secret-sum"
# Prints and raises with whatever it gets, hidden arguments included: if anything of the
# hidden tests could reach a learner, a log or a history, this submission would carry it.
LEAKY_CODE = (
    "def secret_sum(label, numbers):\n"
    "    print('ARGS', label, numbers)\n"
    "    raise ValueError(f'leak {label} {numbers}')\n"
)
WRONG_ANSWER = "x**7 + 42"
# One request may take this long while a dependency is down (connect and pool timeouts
# are 5-10 s); longer is a hang.
REQUEST_BOUND_SECONDS = 30.0
RETRY_AFTER_CAP_SECONDS = 5.0
GIVE_UP_SECONDS = 600.0
SSE_READ_BOUND_SECONDS = 40.0  # the relay pings every 10 s: silence this long is a hang


def leaked(text: str) -> list[str]:
    return [m for m in SECRET_MARKERS if m in text]


@dataclass
class Turn:
    """One tutor turn as its learner saw it."""

    message_id: str | None = None
    text: str = ""
    connections: int = 0
    resumed: int = 0
    resets: int = 0  # told to read the answer again from the start (stream lost)
    ended: str = ""  # done, error:<code>, gone, gave-up
    token_ids: list[str] = field(default_factory=list)


@dataclass
class Seen:
    """What the learners saw, for the figures."""

    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> submission id
    rejected: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    advances: int = 0
    sessions_completed: int = 0
    due_grades: int = 0
    forced_grades: int = 0
    cards_seen: int = 0
    started: float = field(default_factory=time.monotonic)
    last_write: float = 0.0

    def record(self, route: str, status: int | str) -> None:
        self.statuses[(route, str(status))] += 1

    def violation(self, text: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(text)
        else:
            self.violations[-1] = f"... and more; last: {text}"

    def check_body(self, route: str, text: str) -> None:
        if found := leaked(text):
            self.leaks.append(f"{route}: {found}")


class Api:
    """Both API processes, as one careful client."""

    def __init__(self, bases: list[str], seen: Seen, rng: random.Random) -> None:
        self.bases = bases
        self.seen = seen
        self.rng = rng
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(REQUEST_BOUND_SECONDS + 5, connect=5),
            limits=httpx.Limits(max_connections=400, max_keepalive_connections=100),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def _check_answer(self, route: str, r: httpx.Response, elapsed: float, bound: float) -> None:
        self.seen.record(route, r.status_code)
        if r.status_code == 500:
            self.seen.violation(f"{route}: 500 {r.text[:200]}")
        elif r.status_code >= 500:
            if "retry-after" not in r.headers:
                self.seen.violation(f"{route}: {r.status_code} without Retry-After")
            if not r.headers.get("content-type", "").startswith("application/problem+json"):
                self.seen.violation(f"{route}: {r.status_code} not problem+json")
        if elapsed > bound:
            self.seen.violation(f"{route}: answered {r.status_code} after {elapsed:.1f}s")

    def _pause(self, r: httpx.Response | None) -> float:
        if r is None:
            return 0.3 + self.rng.random() * 0.5
        try:
            after = float(r.headers.get("retry-after", "1"))
        except ValueError:
            after = 1.0
        return min(after, RETRY_AFTER_CAP_SECONDS) * (0.5 + self.rng.random())

    async def call(
        self,
        method: str,
        path: str,
        *,
        route: str,
        token: str,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        wait: float = 0.0,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The first answer that is not a 5xx, a 429 or a broken connection."""
        base = self.rng.randrange(len(self.bases))
        bound = REQUEST_BOUND_SECONDS + wait
        give_up = time.monotonic() + GIVE_UP_SECONDS
        attempt = 0
        while True:
            url = self.bases[(base + attempt) % len(self.bases)] + path
            attempt += 1
            start = time.monotonic()
            answer: httpx.Response | None = None
            try:
                answer = await self.http.request(
                    method,
                    url,
                    json=json_body,
                    params=params,
                    headers={"Authorization": f"Bearer {token}", **(headers or {})},
                    timeout=httpx.Timeout(bound + 5, connect=5),
                )
            except httpx.TimeoutException:
                self.seen.record(route, "timeout")
                self.seen.violation(f"{route}: no answer within {bound + 5:.0f}s")
            except httpx.TransportError:
                self.seen.record(route, "connection-error")  # an API process is down
            else:
                self._check_answer(route, answer, time.monotonic() - start, bound)
                self.seen.check_body(route, answer.text)
                if answer.status_code < 500 and answer.status_code != 429:
                    return answer
            if time.monotonic() > give_up:
                raise RuntimeError(f"{route}: no usable answer in {GIVE_UP_SECONDS:.0f}s")
            await asyncio.sleep(self._pause(answer))

    @asynccontextmanager
    async def stream(
        self, method: str, path: str, *, route: str, token: str, **kw: Any
    ) -> AsyncIterator[httpx.Response | None]:
        """One SSE connection (``None`` when it could not be opened)."""
        base = self.bases[self.rng.randrange(len(self.bases))]
        start = time.monotonic()
        try:
            async with self.http.stream(
                method,
                base + path,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "text/event-stream",
                    **kw.pop("headers", {}),
                },
                timeout=httpx.Timeout(SSE_READ_BOUND_SECONDS, connect=5),
                **kw,
            ) as r:
                if r.status_code != 200:
                    await r.aread()
                    self.seen.check_body(route, r.text)
                self._check_answer(route, r, time.monotonic() - start, REQUEST_BOUND_SECONDS)
                yield r
        except httpx.TimeoutException:
            self.seen.record(route, "timeout")
            self.seen.violation(f"{route}: stream silent for {SSE_READ_BOUND_SECONDS:.0f}s")
            yield None
        except httpx.TransportError:
            self.seen.record(route, "connection-error")
            yield None


async def sse_events(r: httpx.Response, seen: Seen) -> AsyncIterator[tuple[str, str, str]]:
    """(event, id, data) of each event; comments are skipped."""
    event, event_id = "message", ""
    data: list[str] = []
    async for line in r.aiter_lines():
        seen.check_body("SSE", line)
        if not line:
            if data:
                yield event, event_id, "\n".join(data)
            event, event_id, data = "message", "", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)


@dataclass
class Plan:
    submissions: int
    tutor_turns: int
    span_seconds: float  # the learner spreads its writes over this long


class Learner:
    def __init__(self, api: Api, user_id: str, token: str, plan: Plan, rng: random.Random) -> None:
        self.api, self.user_id, self.token, self.plan, self.rng = api, user_id, token, plan, rng
        self.seen = api.seen
        self.problems = PROBLEMS
        self.session: dict[str, Any] | None = None
        self.turns: list[Turn] = []

    async def run(self) -> None:
        r = await self.api.call(
            "POST",
            "/v1/sessions",
            route="POST /v1/sessions",
            token=self.token,
            json_body={"track_slug": MATH_TRACK},
        )
        if r.status_code not in (200, 201):
            self.seen.violation(f"POST /v1/sessions: {r.status_code} {r.text[:200]}")
            return
        self.session = r.json()
        kinds = ["session"] * (self.plan.submissions // 3)
        kinds += ["practice"] * (self.plan.submissions - len(kinds))
        self.rng.shuffle(kinds)
        turns_at = set(self.rng.sample(range(len(kinds)), min(self.plan.tutor_turns, len(kinds))))
        gap = self.plan.span_seconds / max(1, len(kinds))
        in_flight: list[asyncio.Task[None]] = []
        for n, kind in enumerate(kinds):
            await asyncio.sleep(self.rng.uniform(0, 2 * gap))
            if n in turns_at:
                in_flight.append(asyncio.create_task(self.tutor_turn()))
            if kind == "session" and self.session.get("status") == "active":
                await self.session_step()
            else:
                in_flight.append(asyncio.create_task(self.practice()))
        await asyncio.gather(*in_flight)
        await self.reviews()

    # ------------------------------------------------------------------ submissions

    async def submit(self, body: dict[str, Any], wait: int = 0) -> dict[str, Any] | None:
        key = f"chaos-{uuid.uuid4().hex}"
        headers = {"Idempotency-Key": key}
        if wait:
            headers["Prefer"] = f"wait={wait}"
        r = await self.api.call(
            "POST",
            "/v1/submissions",
            route="POST /v1/submissions",
            token=self.token,
            json_body=body,
            headers=headers,
            wait=wait,
        )
        self.seen.last_write = time.monotonic()
        if r.status_code not in (200, 202):
            self.seen.rejected.append(f"{r.status_code} {r.text[:200]}")
            return None
        got: dict[str, Any] = r.json()
        self.seen.acked[key] = got["id"]
        return got

    async def practice(self) -> None:
        roll = self.rng.random()
        if roll < 0.15:
            body = {"problem_id": SECRET_PROBLEM, "code": LEAKY_CODE}
        elif roll < 0.3:
            body = {"problem_id": SECRET_PROBLEM, "code": PROBLEMS[SECRET_PROBLEM]}
        else:
            pid = self.rng.choice(MATH_PROBLEMS)
            answer = PROBLEMS[pid] if roll < 0.8 else WRONG_ANSWER
            body = {"problem_id": pid, "answer": answer}
        await self.submit(body)

    async def result(self, submission: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while submission["status"] not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"submission {submission['id']} never finished")
            await asyncio.sleep(1.0)
            r = await self.api.call(
                "GET",
                f"/v1/submissions/{submission['id']}",
                route="GET /v1/submissions/{id}",
                token=self.token,
            )
            submission = r.json()
        return submission

    async def session_step(self) -> None:
        assert self.session is not None
        sid, pid = self.session["id"], self.session["current"]["problem_id"]
        body = {"problem_id": pid, "session_id": sid, "answer": PROBLEMS[pid]}
        got = await self.submit(body, wait=10)
        if got is None:
            return
        done = await self.result(got)
        if done.get("verdict") != "accepted":
            return
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while True:  # the submission signals the session; the projection follows
            r = await self.api.call(
                "GET", f"/v1/sessions/{sid}", route="GET /v1/sessions/{id}", token=self.token
            )
            state = r.json()
            items = {i["problem_id"]: i for m in state["modules"] for i in m["items"]}
            if items[pid]["mastered"] or state["status"] != "active":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"session {sid}: {pid} never mastered")
            await asyncio.sleep(1.0)
        if state["status"] != "active":
            self.session = state
            self.seen.sessions_completed += 1
            return
        r = await self.api.call(
            "POST",
            f"/v1/sessions/{sid}/advance",
            route="POST /v1/sessions/{id}/advance",
            token=self.token,
            json_body={"from_problem_id": pid},
        )
        if r.status_code != 200:
            self.seen.violation(f"advance: {r.status_code} {r.text[:200]}")
            return
        self.seen.advances += 1
        self.session = r.json()
        if self.session["status"] != "active":
            self.seen.sessions_completed += 1

    # ------------------------------------------------------------------ tutor

    async def tutor_turn(self) -> None:
        assert self.session is not None
        turn = Turn()
        self.turns.append(turn)
        self.seen.turns.append(turn)
        pid = (self.session.get("current") or {}).get("problem_id") or MATH_PROBLEMS[0]
        body = {"session_id": self.session["id"], "problem_id": pid, "message": "A hint?"}
        key = {"Idempotency-Key": f"chaos-turn-{uuid.uuid4().hex}"}
        # Half the learners hang up on purpose after a few tokens and come back.
        hang_up_after = self.rng.randint(1, 15) if self.rng.random() < 0.5 else None
        deadline = time.monotonic() + GIVE_UP_SECONDS
        pause: float = 0.0
        while not turn.ended:
            if time.monotonic() > deadline:
                turn.ended = "gave-up"
                self.seen.violation(f"tutor turn {turn.message_id} never ended")
                return
            await asyncio.sleep(pause)
            pause = 0.5 + self.rng.random()
            if turn.message_id is None:
                opened = self.api.stream(
                    "POST",
                    "/v1/tutor/messages",
                    route="POST /v1/tutor/messages",
                    token=self.token,
                    json=body,
                    headers=key,
                )
            else:
                last = {"Last-Event-ID": turn.token_ids[-1]} if turn.token_ids else {}
                opened = self.api.stream(
                    "GET",
                    f"/v1/tutor/messages/{turn.message_id}/stream",
                    route="GET /v1/tutor/messages/{id}/stream",
                    token=self.token,
                    headers=last,
                )
            async with opened as r:
                if r is None:
                    continue
                if r.status_code in (429, 503) or r.status_code >= 500:
                    pause = self.api._pause(r)
                    continue
                if r.status_code == 410:
                    # The stream is gone (expired, or lost with a Redis restart) after the
                    # turn ended: as the 410 says, the answer is the stored transcript.
                    await self.read_transcript(turn)
                    break
                if r.status_code != 200:
                    self.seen.violation(f"tutor stream: {r.status_code} {r.text[:200]}")
                    turn.ended = f"status:{r.status_code}"
                    break
                turn.connections += 1
                if turn.message_id is not None:
                    turn.resumed += 1
                tokens_here = 0
                try:
                    async for event, event_id, data in sse_events(r, self.seen):
                        payload = json.loads(data)
                        if event == "meta":
                            turn.message_id = payload["message_id"]
                        elif event == "token":
                            turn.text += payload["text"]
                            turn.token_ids.append(event_id)
                            tokens_here += 1
                            if hang_up_after is not None and tokens_here >= hang_up_after:
                                hang_up_after = None  # once per turn
                                pause = 0.2
                                break
                        elif event == "done":
                            turn.ended = "done"
                            break
                        elif event == "error":
                            if payload.get("code") == "stream_reset":
                                # The stream was lost and written again: start over.
                                turn.resets += 1
                                turn.text, turn.token_ids = "", []
                                break
                            if payload.get("code") in ("relay_interrupted", "timeout"):
                                break  # the relay lost Redis or waited too long: resume
                            turn.ended = f"error:{payload.get('code')}"
                            break
                except httpx.TimeoutException:
                    self.seen.record("SSE", "silent")
                    self.seen.violation(f"tutor stream {turn.message_id}: silent")
                except httpx.TransportError:
                    self.seen.record("SSE", "broken")  # the API process died: resume

    async def read_transcript(self, turn: Turn) -> None:
        r = await self.api.call(
            "GET",
            f"/v1/tutor/messages/{turn.message_id}",
            route="GET /v1/tutor/messages/{id}",
            token=self.token,
        )
        if r.status_code != 200:
            self.seen.violation(f"transcript of {turn.message_id}: {r.status_code}")
            turn.ended = "gone"
            return
        turn.text = r.json()["response"]
        turn.ended = "gone: read the transcript"

    # ------------------------------------------------------------------ reviews

    async def reviews(self) -> None:
        due = await self._cards("due")
        for card in due:
            await self.grade(card["problem_id"], force=False)
        cards = due or await self._cards("all")
        self.seen.cards_seen += len(cards)
        if not due and cards:
            # Nothing fell due within the run (the first interval is minutes to days): the
            # learner reviews one card early, which the route allows with ``force``.
            await self.grade(cards[0]["problem_id"], force=True)

    async def _cards(self, status: str) -> list[dict[str, Any]]:
        r = await self.api.call(
            "GET",
            "/v1/reviews",
            route="GET /v1/reviews",
            token=self.token,
            params={"status": status, "limit": "50"},
        )
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def grade(self, problem_id: str, *, force: bool) -> None:
        r = await self.api.call(
            "POST",
            f"/v1/reviews/{problem_id}/grade",
            route="POST /v1/reviews/{id}/grade",
            token=self.token,
            json_body={"rating": "good", "force": force},
            headers={"Idempotency-Key": f"chaos-grade-{uuid.uuid4().hex}"},
        )
        if r.status_code == 409 and not force:
            return  # it was graded meanwhile by a submission: not due any more
        if r.status_code != 200:
            self.seen.violation(f"grade {problem_id}: {r.status_code} {r.text[:200]}")
            return
        if force:
            self.seen.forced_grades += 1
        else:
            self.seen.due_grades += 1


def _answers() -> tuple[dict[str, str], list[str]]:
    files = load_problems()
    answers = {
        pid: (p.expected_answer if p.expected_answer is not None else p.reference_solution)
        for pid, p in files.items()
    }
    maths = sorted(pid for pid, p in files.items() if pid.startswith("math-"))
    return answers, maths


# The answers a learner who knows them would give (the driver reads the problem files).
PROBLEMS, MATH_PROBLEMS = _answers()
