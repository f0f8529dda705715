"""Message templates: validated when a campaign is saved, rendered in the sandbox per message.

A template is a set of fields — `subject`, `text`, `html` — each a Jinja2 template. `html` is
autoescaped (user data cannot inject markup into an email); the others are plain text.
Variables: `user` (the user's attributes, plus `id`, the host's user id), `score`, `category`,
`prediction` (its name), `offer` (the tier's offer), `tier` and `campaign` (their names), and
`unsubscribe_url` (the user's signed one-click unsubscribe link for the message's channel).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from jinja2 import Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SecurityError

from plugin.campaigns.sandbox import MAX_OUTPUT, CampaignSandbox, TemplateBudgetExceeded, budgeted

FIELDS = ("subject", "text", "html")
VARIABLES = frozenset({"user", "score", "category", "prediction", "offer", "tier", "campaign", "range",
                       "unsubscribe_url"})
MAX_SOURCE = 50_000  # characters of one template's source

_PLAIN = CampaignSandbox(autoescape=False)
_HTML = CampaignSandbox(autoescape=True)


class TemplateProblem(Exception):
    """A template that does not compile or does not render; `field` and `line` say where.

    `kind` is "syntax" (or an unknown variable), "security" (an attribute the sandbox
    refuses), "budget" (a loop, value or output over its limit) — faults of the template
    itself — or "data" (this user's data did not fit it, e.g. a missing attribute in a sum).
    """

    def __init__(self, field: str, message: str, line: int | None = None, kind: str = "data"):
        super().__init__(message)
        self.field, self.message, self.line, self.kind = field, message, line, kind

    @property
    def code(self) -> str:
        """The API's error code (and, for a budget, the delivery's skip reason)."""
        return "template_too_expensive" if self.kind == "budget" else "invalid_template"

    def describe(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    env = _HTML if html else _PLAIN
    tree = env.parse(source)
    unknown = meta.find_undeclared_variables(tree) - VARIABLES
    if unknown:
        # `request`, `config`, `cycler`… do not exist here: say so now rather than render nothing.
        first = min((n for n in tree.find_all(nodes.Name) if n.name in unknown), key=lambda n: n.lineno)
        raise TemplateSyntaxError(f"unknown variable {first.name!r}; templates know "
                                  f"{', '.join(sorted(VARIABLES - {'range'}))} and range()", first.lineno)
    return env.compile_guarded(tree)


def compile_field(field: str, source: str) -> Template:
    """The compiled template, or TemplateProblem naming the line of a syntax error."""
    if len(source) > MAX_SOURCE:
        raise TemplateProblem(field, f"a template is at most {MAX_SOURCE} characters", kind="syntax")
    try:
        return _compiled(source, field == "html")
    except TemplateSyntaxError as error:
        raise TemplateProblem(field, error.message or "syntax error", error.lineno, kind="syntax") from None


def render_field(field: str, template: Template, context: Mapping[str, Any]) -> str:
    """Render within the current budget; the output is capped as it is produced."""
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateBudgetExceeded(f"the output is longer than {MAX_OUTPUT} characters")
            parts.append(chunk)
    except TemplateProblem:
        raise
    except TemplateBudgetExceeded as error:
        raise TemplateProblem(field, str(error), kind="budget") from None
    except (RecursionError, MemoryError):
        raise TemplateProblem(field, "the template recursed too deeply or used too much memory",
                              kind="budget") from None
    except Exception as error:  # noqa: BLE001 — the template is the marketer's code: any failure is theirs
        kind = "security" if isinstance(error, SecurityError) else "data"
        line = _template_line(error)
        raise TemplateProblem(field, f"{type(error).__name__}: {error}"[:300], line, kind) from None
    return "".join(parts)


def _template_line(error: BaseException) -> int | None:
    """The template line an exception was raised from, read off the traceback Jinja rewrites."""
    tb = error.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def compile_templates(templates: Mapping[str, str]) -> dict[str, Template]:
    """Compile every field; the first problem is raised."""
    return {field: compile_field(field, source) for field, source in templates.items() if source}


def render(templates: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, str]:
    """Render all fields of one message under one budget."""
    compiled = compile_templates(templates)
    with budgeted():
        return {field: render_field(field, template, context) for field, template in compiled.items()}


def sample_context(offer: Mapping[str, Any] | None = None, tier: str = "High",
                   prediction: str = "prediction", campaign: str = "campaign") -> dict[str, Any]:
    """A context with every variable present, used to try a template when it is saved."""
    return {"user": {"id": "sample-user", "email": "sample@example.com", "first_name": "Sam",
                     "country": "FR", "language": "fr", "push_tokens": ["sample-token"]},
            "score": 80.0, "category": tier, "prediction": prediction, "offer": dict(offer or {}),
            "tier": tier, "campaign": campaign, "unsubscribe_url": "https://example.com/unsubscribe/sample"}


def message_context(attributes: Mapping[str, Any], external_id: str, score: float, category: str,
                    prediction: str, offer: Mapping[str, Any], tier: str, campaign: str,
                    unsubscribe_url: str | None = None) -> dict[str, Any]:
    return {"user": {**attributes, "id": external_id}, "score": round(float(score), 1),
            "category": category, "prediction": prediction, "offer": dict(offer), "tier": tier,
            "campaign": campaign, "unsubscribe_url": unsubscribe_url or ""}
