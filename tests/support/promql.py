"""Enough of PromQL to say which metrics and labels an expression (a dashboard's query) uses.

A small recursive-descent parser of the PromQL that dashboards are made of: selectors with
label matchers, range vectors, functions, aggregations with ``by``/``without`` (before or after
their argument), binary operators with ``on``/``ignoring``/``group_left``, numbers and strings.
Anything else (an unknown function, a stray token) is a :class:`PromQLError`, so a query this
parser does not understand fails the test instead of being skipped.

:func:`check` compares an expression with the samples a real ``/metrics`` page exposed:

- every selector names a sample that exists (``foo_bucket``, ``foo_count`` and ``foo_total``
  are the names on the page, so they are matched exactly, suffix included);
- every label a selector matches on exists on that sample;
- every label of an aggregation's ``by (...)`` exists on every selector it aggregates;
- every ``{{label}}`` of a legend is a label of the expression's result.

Labels Prometheus adds when it scrapes (``instance``, ``job``) count as present on every sample.
Grafana's variables are replaced first: ``$__rate_interval`` and the like by a duration; a
``$var`` inside a matcher's string is left as it is (it is a value, not a name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TARGET_LABELS = frozenset({"instance", "job"})
AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "count", "stddev", "stdvar", "group"})
PARAM_AGGREGATIONS = frozenset({"topk", "bottomk", "quantile", "count_values"})
# Functions whose result keeps the labels of their (first vector) argument.
FUNCTIONS = frozenset(
    {
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "abs",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "max_over_time",
        "min_over_time",
        "avg_over_time",
        "sum_over_time",
        "last_over_time",
        "resets",
        "changes",
        "histogram_quantile",
        "scalar",
        "vector",
        "time",
    }
)
GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h", "${__rate_interval}": "5m"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)
  | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[=<>{}()\[\],+\-*/%^])
    """,
    re.VERBOSE,
)


class PromQLError(ValueError):
    pass


@dataclass
class Selector:
    name: str
    labels: list[str]


@dataclass
class Node:
    """A function call, an aggregation or a binary operation: its children and how it maps labels."""

    kind: str  # "call", "agg", "binary", "number", "string", "selector"
    name: str = ""
    children: list[Node] = field(default_factory=list)
    grouping: list[str] | None = None
    without: bool = False
    selector: Selector | None = None


def substitute_grafana(expr: str) -> str:
    for var, value in GRAFANA_DURATIONS.items():
        expr = expr.replace(var, value)
    return expr


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLError(f"cannot read {expr[pos : pos + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok_kind, tok_value = self.peek()
        if (value is not None and tok_value != value) or (kind is not None and tok_kind != kind):
            raise PromQLError(f"expected {value or kind}, got {tok_value or 'the end'!r} in {self.expr!r}")
        self.pos += 1
        return tok_value

    def parse(self) -> Node:
        node = self.expression()
        if self.peek()[0] != "eof":
            raise PromQLError(f"unexpected {self.peek()[1]!r} in {self.expr!r}")
        return node

    def expression(self) -> Node:
        node = self.unary()
        while self.peek()[1] in {"+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<="} or self.peek()[1] in {
            "and",
            "or",
            "unless",
        }:
            op = self.take()
            if self.peek()[1] == "bool":
                self.take()
            matching: list[str] | None = None
            if self.peek()[1] in {"on", "ignoring"}:
                self.take()
                matching = self.label_list()
            if self.peek()[1] in {"group_left", "group_right"}:
                self.take()
                if self.peek()[1] == "(":
                    self.label_list()
            rhs = self.unary()
            node = Node("binary", op, [node, rhs], grouping=matching)
        return node

    def unary(self) -> Node:
        if self.peek()[1] in {"-", "+"}:
            self.take()
        node = self.postfix()
        return node

    def postfix(self) -> Node:
        node = self.primary()
        if self.peek()[1] == "[":
            if node.kind != "selector":
                raise PromQLError(f"a range on something other than a selector in {self.expr!r}")
            self.take("[")
            self.take(kind="duration")
            self.take("]")
        if self.peek()[1] == "offset":
            self.take()
            self.take(kind="duration")
        return node

    def label_list(self) -> list[str]:
        self.take("(")
        labels: list[str] = []
        while self.peek()[1] != ")":
            labels.append(self.take(kind="ident"))
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return labels

    def matchers(self) -> list[str]:
        self.take("{")
        labels: list[str] = []
        while self.peek()[1] != "}":
            labels.append(self.take(kind="ident"))
            if self.peek()[1] not in {"=", "!=", "=~", "!~"}:
                raise PromQLError(f"expected a matcher after {labels[-1]!r} in {self.expr!r}")
            self.take()
            self.take(kind="string")
            if self.peek()[1] == ",":
                self.take()
        self.take("}")
        return labels

    def primary(self) -> Node:
        kind, value = self.peek()
        if kind == "number":
            self.take()
            return Node("number", value)
        if kind == "string":
            self.take()
            return Node("string", value)
        if value == "(":
            self.take("(")
            node = self.expression()
            self.take(")")
            return node
        if value == "{":
            raise PromQLError(f"a selector without a metric name in {self.expr!r}")
        if kind != "ident":
            raise PromQLError(f"unexpected {value or 'end'!r} in {self.expr!r}")
        if value in AGGREGATIONS or value in PARAM_AGGREGATIONS:
            return self.aggregation()
        if self.peek(1)[1] == "(":
            if value not in FUNCTIONS:
                raise PromQLError(f"unknown function {value!r} in {self.expr!r}")
            self.take()
            return Node("call", value, self.arguments())
        self.take()
        labels = self.matchers() if self.peek()[1] == "{" else []
        return Node("selector", value, selector=Selector(value, labels))

    def arguments(self) -> list[Node]:
        self.take("(")
        args: list[Node] = []
        while self.peek()[1] != ")":
            args.append(self.expression())
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != ")":
                raise PromQLError(f"expected ',' or ')' in {self.expr!r}")
        self.take(")")
        return args

    def aggregation(self) -> Node:
        op = self.take()
        grouping: list[str] | None = None
        without = False
        if self.peek()[1] in {"by", "without"}:
            without = self.take() == "without"
            grouping = self.label_list()
        args = self.arguments()
        if self.peek()[1] in {"by", "without"}:
            if grouping is not None:
                raise PromQLError(f"two grouping clauses in {self.expr!r}")
            without = self.take() == "without"
            grouping = self.label_list()
        return Node("agg", op, args, grouping=grouping, without=without)


def parse(expr: str) -> Node:
    return _Parser(substitute_grafana(expr)).parse()


def selectors(node: Node) -> Iterable[Selector]:
    if node.selector is not None:
        yield node.selector
    for child in node.children:
        yield from selectors(child)


Exposed = Mapping[str, set[str]]  # sample name -> label names seen on it


def _labels_of(name: str, exposed: Exposed) -> set[str]:
    return set(exposed.get(name, set())) | TARGET_LABELS


def result_labels(node: Node, exposed: Exposed) -> set[str]:
    """The label names the expression's result series carry (as far as they can be known)."""
    if node.kind == "selector" and node.selector is not None:
        return _labels_of(node.selector.name, exposed)
    if node.kind in {"number", "string"}:
        return set()
    if node.kind == "agg":
        inner = result_labels(node.children[-1], exposed)
        if node.grouping is None:
            return set()
        return inner - set(node.grouping) if node.without else set(node.grouping)
    if node.kind == "call":
        if node.name in {"time", "vector", "scalar"}:
            return set()
        vectors = [c for c in node.children if c.kind not in {"number", "string"}]
        labels = result_labels(vectors[0], exposed) if vectors else set()
        return labels - {"le"} if node.name == "histogram_quantile" else labels
    if node.kind == "binary":
        sides = [result_labels(c, exposed) for c in node.children if c.kind not in {"number", "string"}]
        return sides[0] if sides else set()
    raise PromQLError(f"unknown node {node.kind}")


def check(expr: str, exposed: Exposed, legend: str = "") -> list[str]:
    """What in ``expr`` (and its ``legend``) the exposed samples do not have; empty when all is there."""
    problems: list[str] = []
    tree = parse(expr)
    found = list(selectors(tree))
    if not found:
        problems.append(f"{expr!r} selects no metric")
    for sel in found:
        if sel.name not in exposed:
            problems.append(f"metric {sel.name} is not exposed")
            continue
        for label in sel.labels:
            if label not in _labels_of(sel.name, exposed):
                problems.append(f"label {label!r} is not on {sel.name}")
    _check_grouping(tree, exposed, problems)
    have = result_labels(tree, exposed)
    for label in re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend):
        if label not in have:
            problems.append(f"legend label {label!r} is not on the result of {expr!r} ({sorted(have)})")
    return problems


def _check_grouping(node: Node, exposed: Exposed, problems: list[str]) -> None:
    if node.kind == "agg" and node.grouping:
        for sel in selectors(node):
            if sel.name not in exposed:
                continue  # reported once, as a missing metric
            for label in node.grouping:
                if label not in _labels_of(sel.name, exposed):
                    problems.append(f"{node.name} by {label!r}: {sel.name} has no such label")
    for child in node.children:
        _check_grouping(child, exposed, problems)


def label_values_query(query: str) -> tuple[str, str]:
    """``label_values(metric{...}, label)`` -> (the selector expression, the label)."""
    match = re.fullmatch(r"\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query)
    if match is None:
        raise PromQLError(f"not a label_values(metric, label) query: {query!r}")
    return match.group(1), match.group(2)


def exposed_samples(text: str) -> dict[str, set[str]]:
    """Sample name -> label names, from a Prometheus text exposition (``/metrics``)."""
    from prometheus_client.parser import text_string_to_metric_families

    exposed: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exposed.setdefault(sample.name, set()).update(sample.labels)
    return exposed
