"""The policy language and its evaluator (the `PolicyGate` the control plane calls).

A policy is a TOML (or YAML) document:

    description = "What a production model needs"
    applies_to = ["stage:Production", "alias:champion", "alias:prod-*"]
    models = ["fraud-*"]                 # optional, default every model

    [[rules]]
    name = "documented"
    require = ["description", "signature", "artifact:model_card.md"]

    [[rules]]
    name = "accurate"
    run = "metrics.val_accuracy >= 0.9"  # the run search grammar, on the source run

    [[rules]]
    name = "trained-on-data"
    require = ["training_dataset"]

    [[rules]]
    name = "fresh"
    max_age_days = 30

`applies_to` entries are `stage:<name>` or `alias:<glob>` (default: stages
Staging and Production and every alias). Each unmet requirement is one
`Violation` naming the policy, the rule and the value found.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from metricflow.errors import InvalidArgument
from metricflow.governance._access import caller_reads_run
from metricflow.store.metadata import GateSubject, Policy, Violation

DEFAULT_APPLIES_TO = ("stage:Staging", "stage:Production", "alias:*")
REQUIREMENTS = ("description", "signature", "training_dataset")
TRAINING_CONTEXTS = ("training", "train")
_DAY_MS = 86_400_000
MAX_AGE_DAYS = 36_500
"""The largest max_age_days a rule may give (100 years); NaN and infinities are refused."""
_RULE_KEYS = {"name", "require", "run", "max_age_days", "description"}
_DOC_KEYS = {"description", "applies_to", "models", "rules"}


@dataclass(frozen=True)
class RunFacts:
    """What a rule may read of the source run."""

    run_id: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    attributes: dict[str, Any]


class Facts(Protocol):
    """The data plane and artifact store, seen from a policy."""

    def run(self, run_id: str) -> RunFacts | None: ...
    def read_model_file(self, source: str, path: str) -> bytes | None: ...
    def model_file_exists(self, source: str, path: str) -> bool | None:
        """None: the source's files cannot be read from here (not runs:/)."""


@dataclass(frozen=True)
class Rule:
    name: str
    require: tuple[str, ...] = ()
    run: Any = None
    """The parsed filter (query grammar tree) or None."""
    run_text: str = ""
    max_age_days: float | None = None


@dataclass(frozen=True)
class PolicyDoc:
    name: str
    applies_to: tuple[tuple[str, str], ...]
    models: tuple[str, ...]
    rules: tuple[Rule, ...]


def parse_policy(name: str, source: str, format: str = "toml") -> PolicyDoc:
    """Parse and validate a policy document; InvalidArgument names the bad field."""
    from metricflow.query import parse_filter

    try:
        if format == "yaml":
            import yaml

            raw = yaml.safe_load(source) or {}
        elif format == "toml":
            raw = tomllib.loads(source)
        else:
            raise InvalidArgument(f"format must be toml or yaml, got {format!r}",
                                  field="format")
    except (tomllib.TOMLDecodeError, ValueError) as e:
        raise InvalidArgument(f"policy {name!r} is not valid {format}: {e}",
                              field="source") from None
    except Exception as e:  # yaml.YAMLError and friends
        raise InvalidArgument(f"policy {name!r} is not valid {format}: {e}",
                              field="source") from None
    if not isinstance(raw, dict):
        raise InvalidArgument(f"policy {name!r} must be a table/mapping at the top level",
                              field="source")
    unknown = set(raw) - _DOC_KEYS
    if unknown:
        raise InvalidArgument(f"policy {name!r}: unknown key(s) {sorted(unknown)}; allowed: "
                              f"{sorted(_DOC_KEYS)}", field="source")
    applies = []
    for t in raw.get("applies_to", DEFAULT_APPLIES_TO):
        kind, _, pattern = str(t).partition(":")
        if kind not in ("stage", "alias") or not pattern:
            raise InvalidArgument(f"policy {name!r}: applies_to entry {t!r} must be "
                                  "'stage:<name>' or 'alias:<glob>'", field="applies_to")
        applies.append((kind, pattern))
    models = tuple(str(m) for m in raw.get("models", ["*"]))
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list) or not rules_raw:
        raise InvalidArgument(f"policy {name!r} needs at least one [[rules]] entry (a list "
                              f"of tables); found: {rules_raw!r:.80}", field="rules",
                              received=repr(rules_raw)[:80])
    rules = []
    for i, r in enumerate(rules_raw):
        where = f"rules[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or not r["name"]:
            raise InvalidArgument(f"policy {name!r}: {where} needs a name", field=where)
        bad = set(r) - _RULE_KEYS
        if bad:
            raise InvalidArgument(f"policy {name!r}: {where} ({r['name']}) has unknown "
                                  f"key(s) {sorted(bad)}", field=where)
        req = r.get("require", [])
        req = [req] if isinstance(req, str) else list(req)
        for q in req:
            if q not in REQUIREMENTS and not (isinstance(q, str) and q.startswith("artifact:")
                                              and len(q) > len("artifact:")):
                raise InvalidArgument(
                    f"policy {name!r}: {where} ({r['name']}) requires {q!r}; known: "
                    f"{', '.join(REQUIREMENTS)}, artifact:<path>", field=f"{where}.require")
        run_text = r.get("run", "")
        tree = None
        if run_text:
            try:
                tree = parse_filter(str(run_text))
            except InvalidArgument as e:
                raise InvalidArgument(f"policy {name!r}: {where} ({r['name']}) run "
                                      f"condition: {e.message}",
                                      field=f"{where}.run") from None
        age = r.get("max_age_days")
        if age is not None and (isinstance(age, bool) or not isinstance(age, int | float)
                                or not 0 < age <= MAX_AGE_DAYS):  # also NaN, inf, 1e400
            raise InvalidArgument(f"policy {name!r}: {where} max_age_days must be a number of "
                                  f"days greater than 0 and at most {MAX_AGE_DAYS}, got "
                                  f"{str(age)[:40]}", field=f"{where}.max_age_days",
                                  limit=MAX_AGE_DAYS, received=str(age)[:80])
        if not req and tree is None and age is None:
            raise InvalidArgument(f"policy {name!r}: {where} ({r['name']}) checks nothing: "
                                  "give require, run or max_age_days", field=where)
        rules.append(Rule(r["name"], tuple(req), tree, str(run_text),
                          None if age is None else float(age)))
    return PolicyDoc(name, tuple(applies), models, tuple(rules))


def _applies(doc: PolicyDoc, s: GateSubject) -> bool:
    if not any(fnmatch.fnmatchcase(s.version.name, m) for m in doc.models):
        return False
    return any(kind == s.kind and (pattern.lower() == s.target.lower() if kind == "stage"
                                   else fnmatch.fnmatchcase(s.target, pattern))
               for kind, pattern in doc.applies_to)


class PolicyEvaluator:
    """Evaluates policy documents against a subject, reading `facts` (a `PolicyGate`)."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    def __call__(self, subject: GateSubject, policies: Sequence[Policy]) -> list[Violation]:
        out: list[Violation] = []
        run_cache: dict[str, RunFacts | None] = {}
        for p in policies:
            try:
                doc = parse_policy(p.name, p.source, p.format)
            except InvalidArgument as e:  # stored around the API: fail closed, say why
                out.append(Violation(p.name, "-", f"policy cannot be read: {e.message}"))
                continue
            if not _applies(doc, subject):
                continue
            for rule in doc.rules:
                out.extend(self._rule(p.name, rule, subject, run_cache))
        return out

    def _rule(self, policy: str, rule: Rule, s: GateSubject,
              cache: dict[str, RunFacts | None]) -> list[Violation]:
        mv = s.version
        v: list[Violation] = []

        def bad(msg: str) -> None:
            v.append(Violation(policy, rule.name, msg))

        for req in rule.require:
            if req == "description":
                if not mv.description.strip():
                    bad("the version needs a description; found: none")
            elif req == "training_dataset":
                ctx = [d.context or "(no context)" for d in s.datasets]
                if not any(d.context.lower() in TRAINING_CONTEXTS for d in s.datasets):
                    inputs = (f"{len(ctx)} input(s){' ' + str(ctx) if ctx else ''}"
                              if caller_reads_run(mv.run_id) else
                              "none (the run's inputs are not shown: you may not read it)")
                    bad(f"the source run {mv.run_id or '(none)'} must have logged its training "
                        f"dataset (an input with mlflow.data.context=training); found: "
                        f"{inputs}")
            elif req == "signature":
                bad_sig = self._signature(mv.source)
                if bad_sig:
                    bad(bad_sig)
            else:
                path = req.removeprefix("artifact:")
                found = self.facts.model_file_exists(mv.source, path)
                if found is None:
                    bad(f"artifact {path!r} cannot be checked: the source {mv.source!r} is "
                        "not a runs:/ URI of this server; found: unreadable source")
                elif not found:
                    bad(f"artifact {path!r} is required; found: no such file under "
                        f"{mv.source!r} (nor at its run's root)")
        if rule.max_age_days is not None:
            age_days = (s.now_ms - mv.creation_timestamp) / _DAY_MS
            if age_days > rule.max_age_days:
                bad(f"the version must be younger than {rule.max_age_days:g} days; found: "
                    f"{age_days:.1f} days old")
        if rule.run is not None:
            rid = mv.run_id
            if rid not in cache:
                cache[rid] = self.facts.run(rid) if rid else None
            run = cache[rid]
            if run is None:
                why = ("no source run" if not rid
                       else f"run {rid} does not exist" if getattr(self.facts, "reads_runs", True)
                       else f"run {rid} cannot be read here (this process has no data plane)")
                bad(f"source run must match {rule.run_text!r}; found: {why}")
            elif not evaluate(rule.run, run):
                if caller_reads_run(rid):
                    shown = ", ".join(f"{f} = {value_of(run, f.kind, f.key)!r}"
                                      for f in _fields(rule.run))
                    bad(f"source run {rid} must match {rule.run_text!r}; found: {shown}")
                else:  # the run's values are not the caller's to see
                    bad(f"source run {rid} must match {rule.run_text!r}; found: it does not "
                        "(its values are not shown: you may not read the run)")
        return v

    def _signature(self, source: str) -> str:
        raw = self.facts.read_model_file(source, "MLmodel")
        if raw is None:
            readable = self.facts.model_file_exists(source, "MLmodel")
            where = ("not a runs:/ URI of this server" if readable is None
                     else "has no MLmodel file")
            return f"the version needs a signature; found: the source {source!r} {where}"
        if not re.search(rb"(?m)^signature:", raw):
            return "the version needs a signature; found: an MLmodel without a signature"
        return ""


def _fields(node: Any) -> list[Any]:
    if hasattr(node, "args"):
        return [f for a in node.args for f in _fields(a)]
    return [node.field]


def value_of(run: RunFacts, kind: str, key: str) -> Any:
    if kind == "metrics":
        return run.metrics.get(key)
    if kind == "params":
        return run.params.get(key)
    if kind == "tags":
        return run.tags.get(key)
    return run.attributes.get(key)


def _like(pattern: str, value: str, ci: bool) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S | (re.I if ci else 0)) is not None


_NUM: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def evaluate(node: Any, run: RunFacts) -> bool:
    """Evaluate a parsed search filter on one run, with the search's meaning: a
    comparison on a key the run lacks is false."""
    if hasattr(node, "args"):
        results = (evaluate(a, run) for a in node.args)
        return all(results) if node.op == "AND" else any(results)
    f, op, want = node.field, node.op, node.value
    have = value_of(run, f.kind, f.key)
    if op == "IS NULL":
        return have is None
    if op == "IS NOT NULL":
        return have is not None
    if have is None:
        return False
    if op in ("IN", "NOT IN"):
        return (str(have) in want) == (op == "IN")
    if op.endswith("LIKE"):
        hit = _like(str(want), str(have), "ILIKE" in op)
        return hit != op.startswith("NOT")
    if f.numeric:
        try:
            return _NUM[op](float(have), float(want))
        except (TypeError, ValueError):
            return False
    return _NUM[op](str(have), str(want)) if op in ("=", "!=") else False
