"""Campaign templates: variables, autoescape, syntax errors with lines, and the sandbox's limits."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.campaigns import sandbox, templates
from plugin.campaigns.templates import TemplateProblem, render, sample_context

CONTEXT = templates.message_context({"first_name": "Ada", "email": "ada@example.com", "country": "FR",
                                     "tags": ["vip", "fr"]}, "user-1", 81.26, "High", "purchase in 7 days",
                                    {"discount_percent": 10, "code": "SPRING10"}, "High", "Spring")


def test_variables_are_the_users_attributes_score_category_prediction_and_offer():
    out = render({"subject": "{{ user.first_name }}, {{ offer.discount_percent }}% off",
                  "text": "{{ user.id }} {{ score }} {{ category }} {{ prediction }} {{ offer.code }} "
                          "{{ tier }} {{ campaign }} {{ user.tags | join(',') }}"}, CONTEXT)
    assert out == {"subject": "Ada, 10% off",
                   "text": "user-1 81.3 High purchase in 7 days SPRING10 High Spring vip,fr"}


def test_html_is_autoescaped_and_text_is_not():
    context = {**CONTEXT, "user": {"first_name": "<script>alert(1)</script>"}}
    out = render({"html": "<p>{{ user.first_name }}</p>", "text": "{{ user.first_name }}"}, context)
    assert out["html"] == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert out["text"] == "<script>alert(1)</script>"


def test_a_missing_attribute_renders_empty_and_default_fills_it():
    assert render({"text": "[{{ user.nickname }}] {{ user.nickname | default('friend') }}"}, CONTEXT) == \
        {"text": "[] friend"}


@pytest.mark.parametrize("source, line", [
    ("Hello {{ user.first_name ", 1),
    ("line one\nline two\n{% for x in %}{% endfor %}", 3),
    ("ok\n{% endif %}", 2),
    ("{{ user.first_name | no_such_filter }}", 1),
])
def test_syntax_errors_name_the_line(source, line):
    with pytest.raises(TemplateProblem) as caught:
        templates.compile_field("text", source)
    assert caught.value.line == line
    assert caught.value.describe().startswith(f"line {line}: ")


def test_a_variable_templates_do_not_have_is_refused_with_its_line():
    with pytest.raises(TemplateProblem) as caught:
        templates.compile_field("html", "<p>\n{{ request.args }}</p>")
    assert (caught.value.line, caught.value.kind) == (2, "syntax")
    assert "unknown variable 'request'" in caught.value.message


def test_problems_say_whether_the_template_or_the_users_data_is_at_fault():
    kinds = {}
    for source in ("{{ ''.__class__.__mro__ }}", "{% for i in range(5000) %}{% endfor %}",
                   "{{ 100 / user.missing }}"):
        with pytest.raises(TemplateProblem) as caught:
            render({"text": source}, CONTEXT)
        kinds[source] = caught.value.kind
    assert list(kinds.values()) == ["security", "budget", "data"]


# Known server-side template injection payloads (Jinja2). None may reveal anything of Python.
SSTI = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{{ config.__class__.__init__.__globals__['os'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ user|attr('__class__')|attr('__mro__') }}",
    "{{ user.__class__ }}",
    "{{ user.items.__self__.__class__ }}",
    "{{ range.__globals__ }}",
    "{{ '{0.__class__}'.format(user) }}",
    "{{ '%s' % user.__class__ }}",
    "{{ user['__class__'] }}",
    "{{ offer.__init__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{% set x = ''.__class__ %}{{ x }}",
    "{{ get_flashed_messages.__globals__ }}",
    "{{ url_for.__globals__ }}",
    "{% import 'os' as os %}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{{ user.keys.__func__ }}",
    "{{ (1).__class__.__subclasses__() }}",
]
LEAKS = ("class", "module", "function", "built-in", "object at", "globals", "subclasses", "os.", "root:")


@pytest.mark.parametrize("payload", SSTI)
def test_known_injection_payloads_render_nothing_or_fail_cleanly(payload):
    try:
        out = render({"text": payload}, CONTEXT)["text"]
    except TemplateProblem as problem:
        assert problem.field == "text"  # refused, as a template problem (the API turns it into a 400)
        return
    assert not any(word in out.lower() for word in LEAKS), out


@pytest.mark.parametrize("source", [
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}"
    "{% endfor %}{% endfor %}",
    "{% for c in 'x' * 90000 %}{% for d in 'x' * 90000 %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ 'a' * 10**9 }}",
    "{{ 10 ** 10 ** 10 }}",
    "{{ (2 ** 200) * (2 ** 200) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{% set a = 'xxxxxxxxxx' %}{% set b = a~a~a~a~a~a~a~a~a~a %}{% set c = b~b~b~b~b~b~b~b~b~b %}"
    "{% set d = c~c~c~c~c~c~c~c~c~c %}{% set e = d~d~d~d~d~d~d~d~d~d %}{% set f = e~e~e~e~e~e~e~e~e~e %}{{ f }}",
    "{{ range(1000) | join('x' * 99999) }}",
    "{{ 'ab' | replace('', 'x' * 99999) }}",
    "{% for i in range(1000) %}" + "y" * 200 + "{% endfor %}",
])
def test_runaway_templates_stop_within_their_budget(source):
    with pytest.raises(TemplateProblem):
        render({"text": source}, CONTEXT)


def test_a_reasonable_loop_renders():
    out = render({"text": "{% for tag in user.tags %}#{{ tag }} {% endfor %}{% for i in range(3) %}{{ i }}{% endfor %}"},
                 CONTEXT)
    assert out["text"] == "#vip #fr 012"


def test_templates_cannot_change_the_data_they_are_given():
    attributes = {"tags": ["a"]}
    context = {**CONTEXT, "user": attributes}
    with pytest.raises(TemplateProblem):
        render({"text": "{{ user.tags.append('b') }}"}, context)
    assert attributes == {"tags": ["a"]}


def test_the_budget_is_per_render_not_per_process():
    source = {"text": "{% for i in range(900) %}{% for j in range(10) %}{% endfor %}{% endfor %}"}
    for _ in range(5):  # 9,900 steps each: under the budget every time
        assert render(source, CONTEXT) == {"text": ""}


def test_rendering_outside_a_budget_is_refused():
    template = templates.compile_field("text", "{% for i in range(3) %}{{ i }}{% endfor %}")
    with pytest.raises(sandbox.TemplateBudgetExceeded):
        template.render()


TOKENS = st.sampled_from(list("{}%#()[]'\".|_~*+ abcx019\n") + [
    "{{", "}}", "{%", "%}", "for ", " in ", "range(", "endfor", "__class__", "user.", "* 9999", "** 99",
    "set ", "macro", "|join", "|replace(", "10**9", "self", "cycler", "__globals__"])


@settings(max_examples=200, deadline=None)
@given(st.lists(TOKENS, max_size=40).map("".join))
def test_any_source_renders_or_fails_as_a_template_problem(source):
    try:
        out = render({"text": source}, sample_context())
    except TemplateProblem:
        return
    text = out.get("text", "")  # an empty source is no field at all
    assert len(text) <= sandbox.MAX_OUTPUT
    assert "<class" not in text
