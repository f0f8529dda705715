"""The Jinja2 sandbox campaign templates render in.

`ImmutableSandboxedEnvironment` already keeps templates away from underscored attributes and
from mutating data. On top of that a marketer's template is held to a budget:

- every loop iteration and every call costs one step of a per-render budget (and the render's
  deadline is checked as steps are spent), so nested loops cannot spin without bound;
- `range` is capped; `*`, `**`, `+` and `~` refuse results bigger than the output cap, and `%`
  on strings is refused (a printf width would allocate before any check could run);
- only a short list of filters, globals and methods exists at all, none of which can grow a
  value beyond the cap or reach a Python internal (`str.format` is not among them).

Loops and concatenations are routed through the budget by rewriting the parsed template
(public `parse` → transform → `compile`), not by patching Jinja.
"""
from __future__ import annotations

import contextvars
import math
import operator
import time
from typing import Any, Iterable, Iterator

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

MAX_STEPS = 20_000          # loop iterations + calls per render
MAX_RANGE = 1_000           # items one range() may produce
MAX_OUTPUT = 100_000        # characters of one rendered template (and of any value in it)
MAX_SECONDS = 0.5           # wall time of one render
MAX_INT_BITS = 256          # integers a template may build

_budget: contextvars.ContextVar["Budget"] = contextvars.ContextVar("likely_template_budget")


class TemplateBudgetExceeded(SecurityError):
    """A render used more steps, time or output than a template may."""


class Budget:
    """Steps and time left for one render."""

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS):
        self.steps = steps
        self.deadline = time.monotonic() + seconds

    def spend(self, n: int = 1) -> None:
        self.steps -= n
        if self.steps < 0:
            raise TemplateBudgetExceeded(f"the template ran more than {MAX_STEPS} loop steps or calls")
        if self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise TemplateBudgetExceeded(f"the template took longer than {MAX_SECONDS} s to render")


def spend(n: int = 1) -> None:
    budget = _budget.get(None)
    if budget is None:  # only ever rendered inside `budgeted`; refuse rather than run unbounded
        raise TemplateBudgetExceeded("templates render only within a budget")
    budget.spend(n)


class budgeted:
    """Context manager: a fresh budget for the renders inside it."""

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS):
        self.budget = Budget(steps, seconds)

    def __enter__(self) -> Budget:
        self.token = _budget.set(self.budget)
        return self.budget

    def __exit__(self, *exc: Any) -> None:
        _budget.reset(self.token)


def bounded(value: Any) -> Any:
    """Refuse a value (string or list) larger than the output cap."""
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_OUTPUT:
        raise TemplateBudgetExceeded(f"a value grew beyond {MAX_OUTPUT} characters")
    return value


def _iterate(iterable: Iterable) -> Iterator:
    for item in iterable:
        spend()
        yield item


def _range(*args: int) -> range:
    if not all(isinstance(a, int) for a in args):
        raise SecurityError("range() takes whole numbers")
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise TemplateBudgetExceeded(f"range() is limited to {MAX_RANGE} items")
    return result


class _Guard(NodeTransformer):
    """Route every for-loop's iterable and every `~` concatenation through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "likely_steps", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return nodes.Filter(node, "likely_bounded", [], [], None, None, lineno=node.lineno)


# Methods a template may call; none grows a value beyond what it was given.
SAFE_METHODS = {
    str: {"lower", "upper", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith",
          "endswith", "split", "count", "find", "isdigit", "isalpha", "isalnum", "islower",
          "isupper"},
    dict: {"get", "keys", "values", "items"},
}


def _join(value: Iterable, separator: str = "") -> str:
    items = [str(v) for v in value]
    if sum(map(len, items)) + len(separator) * max(len(items) - 1, 0) > MAX_OUTPUT:
        raise TemplateBudgetExceeded(f"a value grew beyond {MAX_OUTPUT} characters")
    return separator.join(items)


def _replace(value: str, old: str, new: str, count: int = -1) -> str:
    value, old, new = str(value), str(old), str(new)
    hits = value.count(old) if old else len(value) + 1
    if count >= 0:
        hits = min(hits, count)
    if len(value) + hits * (len(new) - len(old)) > MAX_OUTPUT:
        raise TemplateBudgetExceeded(f"a value grew beyond {MAX_OUTPUT} characters")
    return value.replace(old, new, count)


class CampaignSandbox(ImmutableSandboxedEnvironment):
    """The sandbox: immutable, budgeted, with a whitelist of filters, globals and methods."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, autoescape: bool):
        super().__init__(autoescape=autoescape, loader=None, auto_reload=False, cache_size=0)
        allowed = {"default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate",
                   "round", "int", "float", "abs", "length", "count", "first", "last", "escape",
                   "e", "string", "striptags", "wordcount"}
        self.filters = {name: f for name, f in self.filters.items() if name in allowed}
        self.filters.update({"join": _join, "replace": _replace, "likely_steps": _iterate,
                             "likely_bounded": bounded})
        self.globals = {"range": _range}

    # -- what a template may touch ----------------------------------------------------------
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if callable(value):
            return any(isinstance(obj, kind) and attr in names for kind, names in SAFE_METHODS.items())
        return True

    def wrap_str_format(self, value: Any) -> None:
        # The base class hands out a sandboxed str.format before the attribute check;
        # format specs can still allocate without bound ("{:>999999999}"), so never.
        return None

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        spend()
        return bounded(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context, operator_: str, left: Any, right: Any) -> Any:
        spend()
        if operator_ == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not available in templates; use ~ and filters")
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * max(times, 0) > MAX_OUTPUT:
                        raise TemplateBudgetExceeded(f"a value grew beyond {MAX_OUTPUT} characters")
            if _bits(left) + _bits(right) > MAX_INT_BITS:
                raise TemplateBudgetExceeded("a number grew too large")
        if operator_ == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and _bits(left) * right > MAX_INT_BITS:
                raise TemplateBudgetExceeded("a number grew too large")
        try:
            result = _OPERATORS[operator_](left, right)
        except OverflowError:
            raise TemplateBudgetExceeded("a number grew too large") from None
        return bounded(result)

    # -- compiling ----------------------------------------------------------------------------
    def compile_guarded(self, tree: nodes.Template):
        """Route a parsed template's loops and concatenations through the budget, and compile it
        (public API only: parse → transform → compile)."""
        tree = _Guard().visit(tree)
        return self.template_class.from_code(self, self.compile(tree), self.make_globals(None), None)


def _bits(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0 if not isinstance(value, float) or math.isfinite(value) else MAX_INT_BITS + 1
    return value.bit_length()


_OPERATORS = {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod}
