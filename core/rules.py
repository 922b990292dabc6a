"""What each setting may be, checked before any work: a range for a number, choices for a word.

A script's pipeline keeps one table, ``{NAME: Rule}``, beside its presets; ``check_settings`` runs it on the
effective settings before anything is read at length or written. A failure is one line naming the setting,
the value and what is allowed: ``BATCH_SIZE=0: expected an integer >= 1 (--set BATCH_SIZE=...)``. A list
setting's rule applies to each of its items. A setting with a grammar of its own (``LOSS = "l1 + 0.1*grad"``)
has a rule whose ``parse`` says what is wrong with a value. Type errors never reach here: ``--set`` parses a
value by the type of its default (``core.settings``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import UserError
from core.settings import shown


@dataclass(frozen=True)
class Rule:
    """Numbers within [low, high] (an end left out when ``*_open``; None = unbounded), or one of ``choices``
    (compared without case), or what ``parse`` accepts (it raises ValueError saying what is wrong and what is
    expected); ``nonempty`` for a list that needs an item; ``hint`` what the value means."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    nonempty: bool = False
    hint: str = ""  # said after the range, e.g. "a decay per step, e.g. 0.9999; 0 = off"
    parse: Callable[[Any], object] | None = None

    def fault(self, value: Any, example: Any) -> str:
        """What is wrong with ``value``, '' when nothing; ``example`` (the default) as for ``describe``."""
        if self.parse is not None:
            try:
                self.parse(value)
            except ValueError as err:
                return str(err)
            return ""
        hint = f": {self.hint}" if self.hint else ""
        return "" if self.allows(value) else f"expected {self.describe(example)}{hint}"

    def allows(self, value: Any) -> bool:
        if isinstance(value, (list, tuple)):
            return (bool(value) or not self.nonempty) and all(self.allows(item) for item in value)
        if self.choices:
            return str(value).lower() in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return low_ok and high_ok

    def describe(self, example: Any) -> str:
        """What is allowed, in words; ``example`` (the default) says whether integers are meant."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        item = example[0] if isinstance(example, (list, tuple)) and example else example
        bounds = "an integer" if isinstance(item, int) and not isinstance(item, bool) else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            bounds += f" in {left}{_number(self.low)}, {_number(self.high)}{right}"
        elif self.low is not None:
            bounds += f" {'>' if self.low_open else '>='} {_number(self.low)}"
        elif self.high is not None:
            bounds += f" {'<' if self.high_open else '<='} {_number(self.high)}"
        if isinstance(example, (list, tuple)):
            return f"a comma-separated list{' of at least one' if self.nonempty else ''}, each {bounds}"
        return bounds


def _number(value: float) -> str:
    """An end of a range as written ('1', '0.5')."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def at_least(low: float) -> Rule:
    return Rule(low=low)


def positive() -> Rule:
    """> 0 (learning rates, gains, sigmas)."""
    return Rule(low=0, low_open=True)


def fraction() -> Rule:
    """In [0, 1): a share held out, a decay per step."""
    return Rule(low=0, high=1, high_open=True)


# The EMA setting of every training script (engine.weight_average): 0 = off
EMA_RULE = Rule(low=0, high=1, high_open=True, hint="a decay per step, e.g. 0.9999; 0 = off")


def between(low: float, high: float) -> Rule:
    return Rule(low=low, high=high)


def one_of(*choices: str) -> Rule:
    return Rule(choices=tuple(choices))


def check_settings(settings: Mapping[str, Any], rules: Mapping[str, Rule], defaults: Mapping[str, Any]) -> None:
    """Every setting of ``settings`` that ``rules`` names, checked (``defaults`` tells integers from numbers)."""
    for name, rule in rules.items():
        fault = rule.fault(settings[name], defaults.get(name)) if name in settings else ""
        if fault:
            value = settings[name]
            raise UserError(f"{name}={repr(value) if isinstance(value, str) else shown(value) or '(empty)'}: {fault} "
                            f"(--set {name}=...)")
