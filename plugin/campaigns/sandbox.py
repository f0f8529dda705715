"""The Jinja2 sandbox campaign templates render in.

`ImmutableSandboxedEnvironment` already keeps templates away from underscored attributes and
from mutating data. On top of that a marketer's template is held to a budget, so that no
render can hold a worker for long or make it allocate much, whatever the template:

- every loop iteration and every call costs one step of a per-render budget, and the render's
  deadline is checked as steps are spent, so nested loops cannot spin without bound;
- every value a template builds or hands on is *weighed* — the characters it would take as
  text, counting nested lists and dicts, so `[s] * n` weighs n × len(s), not n — and refused
  before it is built when it would weigh more than the output cap: the operands of `*`, `**`,
  `+` and `~`, every filter's arguments and result, every call's result, and every value a
  template outputs, also into `{% set %}` blocks and macros (whose output is counted against
  a total for the render);
- `range` is capped, `round` takes a small precision, `%` on strings is refused (a printf
  width would allocate before any check could run);
- only a short list of filters, globals and methods exists at all, none of which can reach a
  Python internal (`str.format` is not among them).

Loops, outputs and concatenations are routed through the budget by rewriting the parsed
template (public `parse` → transform → `compile`), not by patching Jinja.
"""
from __future__ import annotations

import contextvars
import functools
import math
import operator
import time
from typing import Any, Callable, Iterable, Iterator

from jinja2 import nodes, pass_context, pass_eval_context
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

MAX_STEPS = 20_000          # loop iterations + calls per render
MAX_RANGE = 1_000           # items one range() may produce
MAX_OUTPUT = 100_000        # characters of one rendered template (and weight of any value in it)
MAX_EMITTED = 10 * MAX_OUTPUT  # characters output per render, counting {% set %} blocks and macros
MAX_SECONDS = 2.0           # wall time of one render: a backstop (steps and sizes bound the work),
                            # loose enough that a busy machine never skips a message it could render
MAX_INT_BITS = 256          # integers a template may build
MAX_ROUND_DIGITS = 30       # precision `round` takes (10 ** precision is computed)

_budget: contextvars.ContextVar["Budget"] = contextvars.ContextVar("likely_template_budget")


class TemplateBudgetExceeded(SecurityError):
    """A render used more steps, time, memory or output than a template may."""


class Budget:
    """Steps, output and time left for one render."""

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS):
        self.steps = steps
        self.emitted = 0
        self.deadline = time.monotonic() + seconds

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateBudgetExceeded(f"the template took longer than {MAX_SECONDS} s to render")

    def spend(self, n: int = 1) -> None:
        self.steps -= n
        if self.steps < 0:
            raise TemplateBudgetExceeded(f"the template ran more than {MAX_STEPS} loop steps or calls")
        self.check_time()

    def emit(self, characters: int) -> None:
        self.emitted += characters
        if self.emitted > MAX_EMITTED:
            raise TemplateBudgetExceeded(f"the template output more than {MAX_EMITTED} characters "
                                         "in all (counting {% set %} blocks and macros)")


def _current() -> Budget:
    budget = _budget.get(None)
    if budget is None:  # only ever rendered inside `budgeted`; refuse rather than run unbounded
        raise TemplateBudgetExceeded("templates render only within a budget")
    return budget


def spend(n: int = 1) -> None:
    _current().spend(n)


class budgeted:
    """Context manager: a fresh budget for the renders inside it."""

    def __init__(self, steps: int = MAX_STEPS, seconds: float = MAX_SECONDS):
        self.budget = Budget(steps, seconds)

    def __enter__(self) -> Budget:
        self.token = _budget.set(self.budget)
        return self.budget

    def __exit__(self, *exc: Any) -> None:
        _budget.reset(self.token)


# -- weighing values ------------------------------------------------------------------------------
_CONTAINER_ITEM = 2   # quotes or ", " around an item printed inside a list or dict
_OTHER = 16           # Undefined, a loop, a macro, a range: short reprs


def weight(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About the characters `value` takes as text (nested items included), counted only until
    it passes `limit`: the result is exact enough to compare with the limit, and weighing
    never costs more than `limit` items, however many times a big value is referenced."""
    total, stack, seen = 0, [(value, False)], 0
    budget = _budget.get(None)
    while stack:
        item, nested = stack.pop()
        seen += 1
        if budget is not None and seen % 4096 == 0:
            budget.check_time()
        if isinstance(item, str):
            total += len(item) + (_CONTAINER_ITEM if nested else 0)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() * 30103 // 100000 + 2  # decimal digits and a sign
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, dict):
            total += 2
            stack.extend((part, True) for pair in item.items() for part in pair)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2
            stack.extend((part, True) for part in item)
        else:
            total += _OTHER
        if total > limit:
            return total
    return total


def _too_big(what: str = "a value") -> TemplateBudgetExceeded:
    return TemplateBudgetExceeded(f"{what} grew beyond {MAX_OUTPUT} characters")


def bounded(value: Any) -> Any:
    """Refuse a value that would take more than the output cap as text."""
    if weight(value) > MAX_OUTPUT:
        raise _too_big()
    return value


@pass_context
def _emit(_context: Any, value: Any) -> Any:
    """Every output (top level, `{% set %}` block, macro body) passes here before it is turned
    into text: weighed first, so a huge list is refused before `str()` builds it."""
    size = weight(value)
    if size > MAX_OUTPUT:
        raise _too_big("an output")
    _current().emit(size)
    return value


@pass_eval_context
def _concat(eval_ctx: Any, items: list) -> str:
    """`a ~ b ~ …`, weighed before the operands are turned into text."""
    if sum(weight(item) for item in items) > MAX_OUTPUT:
        raise _too_big()
    return (markup_join if eval_ctx.autoescape else str_join)(items)


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
    """Route every loop, every output and every `~` concatenation through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "likely_steps", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, "likely_concat", [], [], None, None, lineno=node.lineno)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        node = self.generic_visit(node)
        children = []
        for child in node.nodes:
            emitted = nodes.Filter(child, "likely_emit", [], [], None, None, lineno=child.lineno)
            # Template text is markup as written, never escaped: keep it so.
            if isinstance(child, nodes.TemplateData):
                emitted = nodes.MarkSafeIfAutoescape(emitted, lineno=child.lineno)
            children.append(emitted)
        node.nodes = children
        return node


# Methods a template may call; none grows a value beyond what it was given.
SAFE_METHODS = {
    str: {"lower", "upper", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith",
          "endswith", "split", "count", "find", "isdigit", "isalpha", "isalnum", "islower",
          "isupper"},
    dict: {"get", "keys", "values", "items"},
}


def _join(value: Iterable, separator: str = "") -> str:
    items = list(value)  # already weighed as the filter's argument (a range is capped)
    if weight(items) + weight(separator) * max(len(items) - 1, 0) > MAX_OUTPUT:
        raise _too_big()
    return str(separator).join(str(v) for v in items)


def _replace(value: str, old: str, new: str, count: int = -1) -> str:
    value, old, new = str(value), str(old), str(new)
    hits = value.count(old) if old else len(value) + 1
    if count >= 0:
        hits = min(hits, count)
    if len(value) + hits * (len(new) - len(old)) > MAX_OUTPUT:
        raise _too_big()
    return value.replace(old, new, count)


def _weighed(name: str, f: Callable) -> Callable:
    """A filter whose arguments and result are weighed (its context argument, if any, is not)."""
    skip = 0 if _PassArg.from_obj(f) is None else 1

    @functools.wraps(f)  # keeps Jinja's pass_context/pass_environment mark
    def weighed(*args: Any, **kwargs: Any) -> Any:
        spend()
        for value in (*args[skip:], *kwargs.values()):
            if weight(value) > MAX_OUTPUT:
                raise _too_big(f"the value given to |{name}")
        return bounded(f(*args, **kwargs))
    return weighed


def _round_guard(f: Callable) -> Callable:
    @functools.wraps(f)
    def rounded(value: Any, precision: int = 0, method: str = "common") -> Any:
        # Jinja computes 10 ** precision: a huge precision would hold the worker for hours.
        if isinstance(precision, bool) or not isinstance(precision, int) \
                or abs(precision) > MAX_ROUND_DIGITS:
            raise TemplateBudgetExceeded(f"round() takes a precision of at most {MAX_ROUND_DIGITS} digits")
        return f(value, precision, method)
    return rounded


class CampaignSandbox(ImmutableSandboxedEnvironment):
    """The sandbox: immutable, budgeted, with a whitelist of filters, globals and methods."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, autoescape: bool):
        super().__init__(autoescape=autoescape, loader=None, auto_reload=False, cache_size=0)
        allowed = {"default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate",
                   "round", "int", "float", "abs", "length", "count", "first", "last", "escape",
                   "e", "string", "striptags", "wordcount"}
        kept = {name: f for name, f in self.filters.items() if name in allowed}
        kept["round"] = _round_guard(kept["round"])
        kept.update({"join": _join, "replace": _replace})
        self.filters = {name: _weighed(name, f) for name, f in kept.items()}
        self.filters.update({"likely_steps": _iterate, "likely_emit": _emit, "likely_concat": _concat})
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
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and times > 0:
                    # Weighed before it is built: [s] * n holds n references but prints n × s.
                    if weight(seq, MAX_OUTPUT // times + 1) * times > MAX_OUTPUT:
                        raise _too_big()
            if _bits(left) + _bits(right) > MAX_INT_BITS:
                raise TemplateBudgetExceeded("a number grew too large")
        if operator_ == "+" and not _is_number(left) and not _is_number(right):
            if weight(left) + weight(right) > MAX_OUTPUT:
                raise _too_big()
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
        """Route a parsed template's loops, outputs and concatenations through the budget, and
        compile it (public API only: parse → transform → compile)."""
        tree = _Guard().visit(tree)
        return self.template_class.from_code(self, self.compile(tree), self.make_globals(None), None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


def _bits(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0 if not isinstance(value, float) or math.isfinite(value) else MAX_INT_BITS + 1
    return value.bit_length()


_OPERATORS = {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod}
