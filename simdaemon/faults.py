"""Injected faults: make the daemon misbehave on purpose, deterministically (SPEC section 10).

A rule (:class:`Fault`) names an operation (``associate``, ``echo``, ``find``, ``store``,
``move``, or ``suboperation``: each C-STORE of a move to its destination), optionally what a
request must match (``calling_ae``, ``sop_class_uid``, ``patient_id``, ``level``), one
action, and how often it fires: always, the first ``times`` matches, or with ``probability``
from a ``seed`` - the same seed fires on the same matches in every run. The actions:

``delay_ms``
    wait before serving (alone, or before any other action): the slow daemon;
``status`` (with ``comment``)
    answer that status instead of serving the request (not ``associate``); for a
    ``suboperation``, count it as if the destination had answered it: a failure is not sent
    and is counted failed and listed, a warning is sent and counted as a warning;
``refuse``
    answer an A-ASSOCIATE-RQ with a transient A-ASSOCIATE-RJ (``associate`` only): the busy
    daemon;
``abort_after``
    end the association with an A-ABORT after N units of the operation's work - or, with
    ``abort_as="close"``, close the TCP connection without one. The unit: for ``associate``
    the P-DATA-TF PDUs the peer sends after the A-ASSOCIATE-RQ (0: the request itself is
    answered by the abort; N: the daemon aborts on receipt of P-DATA-TF PDU number N, before
    acting on it, so a large C-STORE is cut off mid-object; the rule fires - and ``times``
    counts - when the association is accepted, and is recorded when the abort happens); for
    ``find`` the matches sent; for ``move`` the sub-operations done; for ``store`` 0 (aborted
    before the object is imported) or 1 (imported, then aborted instead of answered); for
    ``echo`` 0. When the operation has fewer units than N, the abort replaces its final
    response;
``drop_fraction`` (with ``drop_as``)
    leave out a seeded fraction of a move's sub-operations (``move`` only): silently, so the
    move reports fewer and succeeds - the real daemon "sometimes only sends a partial list" -
    or counted failed and listed (``drop_as="failed"``).

The same vocabulary serves Python (``daemon.faults.add(operation="echo", status=0x0211)``),
the ``[[faults]]`` tables of the configuration and the pytest marker
(``@pytest.mark.simdaemon(faults=[{...}])``). Every firing is an audit event (operation
``fault``), so a test can tell an injected failure from a real one.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simdaemon.status import outcome

__all__ = [
    "NO_FAULTS",
    "OPERATIONS",
    "Fault",
    "FaultError",
    "FaultPlan",
    "Faults",
    "Firing",
    "Stopped",
]


class Stopped(Exception):
    """An injected delay was cut short by ``stop()``; the request was aborted, not served.

    Here, beside the rules, so the services that end a request this way need not import the
    injector that raises it.
    """


def _nothing() -> None:
    """What :attr:`FaultPlan.abort` and :attr:`FaultPlan.record` do when no fault fired."""


def _no_status(sop_instance_uid: str, sop_class_uid: str) -> int | None:
    """What :attr:`FaultPlan.suboperation` says when no sub-operation fault is in force."""
    return None


@dataclass(frozen=True)
class FaultPlan:
    """What injected faults do to one request; every service reads it at its own unit points.

    The injector builds one per request (association, C-ECHO, C-STORE, C-FIND, C-MOVE) after
    any injected delay has been waited, and hands it to the service beside the request: the
    service answers :attr:`status` instead of serving, counts its units of work (matches
    sent, sub-operations done, the object imported) against :attr:`abort_after`, and asks
    :attr:`suboperation` before each object a move sends. Services see only this plan, never
    the injector, so a new fault needs no new wiring. :data:`NO_FAULTS` is the plan of a
    request no fault touched.
    """

    #: The daemon stopped during an injected delay: the association is already aborted, so
    #: the request is neither served nor answered.
    stopped: bool = False
    #: Answer this status (with :attr:`comment`) instead of serving the request.
    status: int | None = None
    comment: str = ""
    #: Refuse the association transiently (``associate`` only).
    refuse: bool = False
    #: End the association after this many units of the operation's work, or in place of
    #: its final response when it has fewer; by calling :attr:`abort`.
    abort_after: int | None = None
    #: Whether :attr:`abort` closes the connection without an A-ABORT.
    close: bool = False
    #: Ends the association as the fault says. A service records its own audit event first,
    #: so a client that sees the abort can already read it.
    abort: Callable[[], None] = _nothing
    #: Records the firing, for a fault recorded when it springs rather than when it fires
    #: (an association's PDU trap); every other firing is recorded before the plan is made.
    record: Callable[[], None] = _nothing
    #: For n sub-operations of a move, which to drop (seeded); None: drop none.
    drops: Callable[[int], list[bool]] | None = None
    #: Whether dropped sub-operations are counted failed (else the move silently reports fewer).
    drops_counted_failed: bool = False
    #: Asked before each object a move sends, with its SOP Instance and Class UID: waits any
    #: injected delay (raising :class:`Stopped` when ``stop()`` cuts it short) and returns a
    #: status to count the object by instead of the destination's, or None.
    suboperation: Callable[[str, str], int | None] = _no_status
    #: The rule that fired, in words, for explanations; empty when none did.
    described: str = ""

    def aborts(self, done: int) -> bool:
        """Whether the association ends now, after ``done`` units of work."""
        return self.abort_after is not None and done >= self.abort_after


#: The plan of a request no fault touched.
NO_FAULTS = FaultPlan()


OPERATIONS = ("associate", "echo", "find", "store", "move", "suboperation")
#: The largest ``abort_after`` each operation has a meaning for (None: no limit).
_ABORT_LIMITS: dict[str, int | None] = {
    "associate": None,
    "echo": 0,
    "find": None,
    "store": 1,
    "move": None,
}
_MATCH_KEYS = ("calling_ae", "sop_class_uid", "patient_id", "level")
#: What each operation's requests can be matched on (a rule on anything else never fires).
_MATCHABLE: dict[str, tuple[str, ...]] = {
    "associate": ("calling_ae",),
    "echo": ("calling_ae", "sop_class_uid"),
    "find": _MATCH_KEYS,
    "store": ("calling_ae", "sop_class_uid", "patient_id"),
    "move": _MATCH_KEYS,
    "suboperation": _MATCH_KEYS,
}
_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")


class FaultError(ValueError):
    """A fault rule that cannot work; names the key, the value given and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key} = {value!r} is not allowed: {allowed}")


def _number(key: str, value: object, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultError(key, value, "expected a number")
    if value < low or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"of {low:g} or more"
        raise FaultError(key, value, f"expected a number {span}")
    return float(value)


def _integer(key: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(key, value, "expected an integer")
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of {low} or more"
        raise FaultError(key, value, f"expected an integer {span}")
    return value


def _text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise FaultError(key, value, "expected a string")
    return value


def _choice(key: str, value: object, *choices: str) -> str:
    if value not in choices:
        raise FaultError(key, value, f"expected one of {', '.join(map(repr, choices))}")
    return str(value)


@dataclass(frozen=True)
class Fault:
    """One rule, checked when made; see the module docstring for the vocabulary."""

    operation: str
    delay_ms: float = 0.0
    status: int | None = None
    comment: str = ""
    refuse: bool = False
    abort_after: int | None = None
    abort_as: str = "abort"
    drop_fraction: float = 0.0
    drop_as: str = "silent"
    times: int | None = None
    probability: float = 1.0
    seed: int = 0
    calling_ae: str | None = None
    sop_class_uid: str | None = None
    patient_id: str | None = None
    level: str | None = None

    def __post_init__(self) -> None:
        operation = _choice("operation", self.operation, *OPERATIONS)
        set_ = object.__setattr__
        set_(self, "delay_ms", _number("delay_ms", self.delay_ms, 0))
        if self.status is not None:
            _integer("status", self.status, 0, 0xFFFF)
            if operation == "associate":
                raise FaultError("status", self.status, "an association has no status; "
                                 "use refuse = true or abort_after")  # fmt: skip
            if operation == "suboperation" and outcome(self.status) not in ("failure", "warning"):
                raise FaultError("status", self.status, "a sub-operation fault needs a failure "
                                 "or warning status, such as 0xA700 or 0xB000")  # fmt: skip
        _text("comment", self.comment)
        if not isinstance(self.refuse, bool):
            raise FaultError("refuse", self.refuse, "expected true or false")
        if self.refuse and operation != "associate":
            raise FaultError("refuse", self.refuse, "applies to operation 'associate' only")
        if self.abort_after is not None:
            if operation not in _ABORT_LIMITS:
                raise FaultError("abort_after", self.abort_after, "a sub-operation cannot abort; "
                                 "use operation 'move' with abort_after")  # fmt: skip
            _integer("abort_after", self.abort_after, 0, _ABORT_LIMITS[operation])
        _choice("abort_as", self.abort_as, "abort", "close")
        if self.abort_as != "abort" and self.abort_after is None:
            raise FaultError("abort_as", self.abort_as, "needs abort_after (0: at once)")
        set_(self, "drop_fraction", _number("drop_fraction", self.drop_fraction, 0, 1))
        if self.drop_fraction and operation != "move":
            raise FaultError("drop_fraction", self.drop_fraction,
                             "applies to operation 'move' only")  # fmt: skip
        _choice("drop_as", self.drop_as, "silent", "failed")
        if self.times is not None:
            _integer("times", self.times, 1)
        set_(self, "probability", _number("probability", self.probability, 0, 1))
        _integer("seed", self.seed, 0)
        for key in _MATCH_KEYS:
            value = getattr(self, key)
            if value is not None:
                _text(key, value)
                if key not in _MATCHABLE[operation]:
                    can = ", ".join(_MATCHABLE[operation])
                    raise FaultError(key, value, f"{operation} requests cannot be matched on "
                                     f"{key}, so the rule would never fire; {operation} "
                                     f"matches on {can}")  # fmt: skip
        if self.level is not None:
            _choice("level", self.level, *_LEVELS)
        actions = [
            name
            for name, on in (
                ("status", self.status is not None),
                ("refuse", self.refuse),
                ("abort_after", self.abort_after is not None),
                ("drop_fraction", self.drop_fraction > 0),
            )
            if on
        ]
        if len(actions) > 1:
            raise FaultError(actions[1], getattr(self, actions[1]),
                             f"a rule has one action besides delay_ms; this one has "
                             f"{' and '.join(actions)}: make two rules")  # fmt: skip
        if not actions and not self.delay_ms:
            raise FaultError("operation", operation, "a fault needs an action: delay_ms, "
                             "status, refuse, abort_after or drop_fraction")  # fmt: skip

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any]) -> Fault:
        """Make a rule from keywords, TOML or a marker's dict, checking every key."""
        if not isinstance(entry, Mapping):
            raise FaultError("(rule)", entry, "expected a table of keys such as operation")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in entry:
            if key not in known:
                raise FaultError(key, entry[key], f"unknown key; a fault takes {', '.join(known)}")
        if "operation" not in entry:
            raise FaultError("operation", None, f"missing; expected one of {OPERATIONS}")
        return cls(**entry)

    def as_mapping(self) -> dict[str, Any]:
        """The keys that differ from the defaults (what ``[[faults]]`` would say)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name == "operation" or getattr(self, f.name) != f.default
        }

    def matches(self, what: Mapping[str, str]) -> bool:
        """Whether a request with these values is one this rule is about."""
        return all(
            getattr(self, key) is None or what.get(key) == getattr(self, key) for key in _MATCH_KEYS
        )

    def _abort_when(self) -> str:
        """When ``abort_after`` ends the association, in words."""
        n = self.abort_after
        if self.operation == "associate":
            return "instead of accepting" if n == 0 else f"on the peer's P-DATA-TF PDU {n}"
        if self.operation == "store":
            return "before the import" if n == 0 else "after the import, instead of the answer"
        if self.operation == "echo":
            return "instead of the answer"
        unit = "match(es)" if self.operation == "find" else "sub-operation(s)"
        return f"after {n} {unit}"

    def describe(self) -> str:
        """The rule in words."""
        actions = []
        if self.delay_ms:
            actions.append(f"delay {self.delay_ms:g} ms")
        if self.status is not None:
            who = "the destination answers" if self.operation == "suboperation" else "answer"
            said = f" '{self.comment}'" if self.comment else ""
            actions.append(f"{who} 0x{self.status:04X}{said}")
        if self.refuse:
            actions.append("refuse transiently")
        if self.abort_after is not None:
            how = "A-ABORT" if self.abort_as == "abort" else "close the connection (no A-ABORT)"
            actions.append(f"{how} {self._abort_when()}")
        if self.drop_fraction:
            reported = "silently" if self.drop_as == "silent" else "as failed"
            actions.append(f"drop {self.drop_fraction:g} of the sub-operations {reported}")
        matching = [f"{key} {getattr(self, key)!r}" for key in _MATCH_KEYS if getattr(self, key)]
        when = f" when {', '.join(matching)}" if matching else ""
        how_often = "every time"
        if self.times is not None:
            how_often = (
                "the first time only" if self.times == 1 else f"the first {self.times} times"
            )
        if self.probability < 1.0:
            how_often += f" with probability {self.probability:g} (seed {self.seed})"
        return f"{self.operation}{when}: {' and '.join(actions)}, {how_often}"


@dataclass(frozen=True)
class Firing:
    """What an operation must do because a fault fired."""

    fault: Fault
    #: For n sub-operations of a move, which to drop (seeded); None unless drop_fraction.
    drops: Callable[[int], list[bool]] | None = None

    @property
    def delay_s(self) -> float:
        return self.fault.delay_ms / 1000.0

    @property
    def status(self) -> int | None:
        return self.fault.status

    @property
    def comment(self) -> str:
        return self.fault.comment

    @property
    def refuse(self) -> bool:
        return self.fault.refuse

    @property
    def abort_after(self) -> int | None:
        return self.fault.abort_after

    @property
    def close(self) -> bool:
        """Whether the abort closes the connection without an A-ABORT."""
        return self.fault.abort_as == "close"


class _Live:
    """A rule in force: how often it has fired, and its own seeded random stream."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.fired = 0
        self.random = random.Random(fault.seed)

    def draw(self) -> bool:
        """Decide whether a match fires (and count it when it does); the caller locks."""
        if self.fault.times is not None and self.fired >= self.fault.times:
            return False
        if self.fault.probability < 1.0 and self.random.random() >= self.fault.probability:
            return False
        self.fired += 1
        return True


class Faults:
    """The faults in force on one daemon; thread-safe."""

    def __init__(self, rules: tuple[Fault, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._live = [_Live(rule) for rule in rules]

    def add(self, operation: str, **options: Any) -> Fault:
        """Add a rule (the keys of :class:`Fault`) and return it; raises :class:`FaultError`."""
        rule = Fault.from_mapping({"operation": operation, **options})
        with self._lock:
            self._live.append(_Live(rule))
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        self.reset(())

    def reset(self, rules: tuple[Fault, ...]) -> None:
        """Put exactly ``rules`` in force, each as new: not yet fired, its seed restarted."""
        with self._lock:
            self._live = [_Live(rule) for rule in rules]

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)

    @property
    def rules(self) -> tuple[Fault, ...]:
        """The rules in force now, in the order they are tried (for the console's list)."""
        with self._lock:
            return tuple(live.fault for live in self._live)

    def covers(self, operation: str, key: str | None = None) -> bool:
        """Whether any rule is about ``operation`` (and matches on ``key``, if given)."""
        with self._lock:
            return any(
                live.fault.operation == operation
                and (key is None or getattr(live.fault, key) is not None)
                for live in self._live
            )

    def fire(self, operation: str, what: Mapping[str, str]) -> Firing | None:
        """The first rule for ``operation`` that matches ``what`` and fires, as an order."""
        with self._lock:
            for live in self._live:
                rule = live.fault
                if rule.operation == operation and rule.matches(what) and live.draw():
                    return Firing(rule, self._dropper(live) if rule.drop_fraction else None)
        return None

    def _dropper(self, live: _Live) -> Callable[[int], list[bool]]:
        def drops(count: int) -> list[bool]:
            with self._lock:
                return [live.random.random() < live.fault.drop_fraction for _ in range(count)]

        return drops
