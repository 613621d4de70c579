"""Injected faults: make the daemon misbehave on purpose, deterministically (SPEC section 10).

A rule names an operation (``associate``, ``echo``, ``find``, ``store``, ``move``), optionally
what it must match (calling AE, SOP class, patient ID, level), an action and how often it
fires: always, the first ``times`` matches, or with ``probability`` from a ``seed`` - the same
seed fires on the same matches in every run. So far the actions are a delay (``delay_ms``),
an answer (``status`` with ``comment``), for ``associate`` a transient refusal (``refuse``),
and for ``move`` dropping a fraction of the sub-operations (``drop_fraction``), silently - the
move reports fewer, as the real daemon "sometimes only sends a partial list" - or counted
failed (``drop_as="failed"``). Every firing is an audit event (operation ``fault``), so a
test can tell an injected failure from a real one.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

__all__ = ["OPERATIONS", "Fault", "FaultError", "Faults", "Firing"]


OPERATIONS = ("associate", "echo", "find", "store", "move")


class FaultError(ValueError):
    """A fault rule that cannot work; the message says which field and why."""


@dataclass
class Fault:
    """One rule; see the module docstring."""

    operation: str
    delay_ms: float = 0.0
    status: int | None = None
    comment: str = ""
    refuse: bool = False
    drop_fraction: float = 0.0
    drop_as: str = "silent"
    times: int | None = None
    probability: float = 1.0
    seed: int = 0
    calling_ae: str | None = None
    sop_class_uid: str | None = None
    patient_id: str | None = None
    level: str | None = None
    fired: int = 0
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise FaultError(f"operation {self.operation!r}: expected one of {OPERATIONS}")
        if self.refuse and self.operation != "associate":
            raise FaultError("refuse=True applies to operation 'associate' only")
        if self.status is not None and self.operation == "associate":
            raise FaultError("an association has no status; use refuse=True")
        if not 0.0 <= self.drop_fraction <= 1.0:
            raise FaultError(f"drop_fraction = {self.drop_fraction}: expected 0 to 1")
        if self.drop_fraction and self.operation != "move":
            raise FaultError("drop_fraction applies to operation 'move' only")
        if self.drop_as not in ("silent", "failed"):
            raise FaultError(f"drop_as = {self.drop_as!r}: expected 'silent' or 'failed'")
        if not (self.refuse or self.status is not None or self.delay_ms > 0 or self.drop_fraction):
            raise FaultError("a fault needs an action: delay_ms, status, refuse or drop_fraction")
        if not 0.0 <= self.probability <= 1.0:
            raise FaultError(f"probability = {self.probability}: expected 0 to 1")
        if self.times is not None and self.times < 1:
            raise FaultError(f"times = {self.times}: expected 1 or more")
        self._random = random.Random(self.seed)

    def matches(self, what: dict[str, str]) -> bool:
        """Whether a request with these values is one this rule is about."""
        wanted = {
            "calling_ae": self.calling_ae,
            "sop_class_uid": self.sop_class_uid,
            "patient_id": self.patient_id,
            "level": self.level,
        }
        return all(v is None or what.get(k) == v for k, v in wanted.items())

    def draw(self) -> bool:
        """Decide whether this match fires (and count it when it does)."""
        if self.times is not None and self.fired >= self.times:
            return False
        if self.probability < 1.0 and self._random.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def drops(self, count: int) -> list[bool]:
        """For each of ``count`` sub-operations, whether this rule drops it (seeded)."""
        with self._lock:
            return [self._random.random() < self.drop_fraction for _ in range(count)]

    def describe(self) -> str:
        """The rule in words."""
        actions = []
        if self.delay_ms:
            actions.append(f"delay {self.delay_ms:g} ms")
        if self.status is not None:
            actions.append(
                f"answer 0x{self.status:04X}" + (f" '{self.comment}'" if self.comment else "")
            )
        if self.refuse:
            actions.append("refuse transiently")
        if self.drop_fraction:
            reported = "silently" if self.drop_as == "silent" else "as failed"
            actions.append(f"drop {self.drop_fraction:g} of the sub-operations {reported}")
        how = f"the first {self.times} time(s)" if self.times else "every time"
        if self.probability < 1.0:
            how += f" with probability {self.probability:g} (seed {self.seed})"
        return f"{self.operation}: {' and '.join(actions)}, {how}"


@dataclass(frozen=True)
class Firing:
    """What an operation must do because a fault fired."""

    fault: Fault
    delay_s: float
    status: int | None
    comment: str
    refuse: bool


class Faults:
    """The faults in force on one daemon; thread-safe."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, operation: str, **options: object) -> Fault:
        """Add a rule (keywords as :class:`Fault`'s fields) and return it."""
        rule = Fault(operation, **options)  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)

    def fire(self, operation: str, **what: str) -> Firing | None:
        """The first rule for ``operation`` that matches ``what`` and fires, as an order."""
        with self._lock:
            for rule in self._rules:
                if rule.operation == operation and rule.matches(what) and rule.draw():
                    return Firing(
                        rule, rule.delay_ms / 1000.0, rule.status, rule.comment, rule.refuse
                    )
        return None
