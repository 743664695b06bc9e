"""The policy evaluator on facts in memory: rules, applicability and the values named."""

from __future__ import annotations

from metricflow.entities import ModelVersion
from metricflow.governance import PolicyEvaluator, RunFacts, parse_policy
from metricflow.governance._policy import evaluate
from metricflow.query import parse_filter
from metricflow.store.metadata import DatasetInput, GateSubject, Policy

DAY = 86_400_000


class Facts:
    def __init__(self, run: RunFacts | None, files: dict[str, bytes]) -> None:
        self._run, self.files = run, files

    def run(self, run_id: str) -> RunFacts | None:
        return self._run if self._run and self._run.run_id == run_id else None

    def model_file_exists(self, source: str, path: str) -> bool | None:
        return path in self.files if source.startswith("runs:/") else None

    def read_model_file(self, source: str, path: str) -> bytes | None:
        return self.files.get(path) if source.startswith("runs:/") else None


def _run(acc: float, **params: str) -> RunFacts:
    return RunFacts("r1", {"val_accuracy": acc}, dict(params), {"team": "fraud"},
                    {"status": "FINISHED", "start_time": 5})


def _mv(name: str, source: str, run_id: str, description: str = "",
        created: int = 0) -> ModelVersion:
    return ModelVersion(name=name, version="1", source=source, run_id=run_id,
                        description=description, status="READY", status_message="",
                        current_stage="None", creation_timestamp=created,
                        last_updated_timestamp=created, tags={}, aliases=())


def _subject(kind: str = "stage", target: str = "Production", *, description: str = "d",
             created: int = 0, now: int = DAY, name: str = "fraud-x",
             datasets: tuple[DatasetInput, ...] = ()) -> GateSubject:
    mv = _mv(name, "runs:/r1/model", "r1", description, created)
    return GateSubject(mv, kind, target, datasets, now)


def _policy(src: str) -> list[Policy]:
    return [Policy("p", 1, "toml", src, False, "admin", 0)]


def test_run_conditions_use_the_search_grammar() -> None:
    run = _run(0.93, lr="0.01")
    for text, want in [("metrics.val_accuracy >= 0.9", True),
                       ("metrics.val_accuracy > 0.95", False),
                       ("metrics.missing > 0", False),
                       ("params.lr = '0.01' AND tags.team LIKE 'fr%'", True),
                       ("params.lr = '0.1' OR attributes.status = 'FINISHED'", True),
                       ("params.lr IN ('0.1', '0.2')", False),
                       ("params.other IS NULL", True),
                       ("tags.team ILIKE 'FRAUD'", True)]:
        assert evaluate(parse_filter(text), run) is want, text


def test_violations_name_rule_and_value() -> None:
    gate = PolicyEvaluator(Facts(_run(0.85), {"MLmodel": b"flavors: {}\n"}))
    src = """
[[rules]]
name = "acc"
run = "metrics.val_accuracy >= 0.9"
[[rules]]
name = "docs"
require = ["description", "signature", "artifact:model_card.md", "training_dataset"]
[[rules]]
name = "fresh"
max_age_days = 30
"""
    found = gate(_subject(description="", now=45 * DAY), _policy(src))
    by = {(v.rule, v.message.split(";")[0]) for v in found}
    assert ("acc", "source run r1 must match 'metrics.val_accuracy >= 0.9'") in by
    acc = next(v for v in found if v.rule == "acc")
    assert "found: metrics.val_accuracy = 0.85" in acc.message
    msgs = " | ".join(v.message for v in found)
    assert "needs a description; found: none" in msgs
    assert "an MLmodel without a signature" in msgs
    assert "'model_card.md' is required" in msgs
    assert "found: 0 input(s)" in msgs
    assert "found: 45.0 days old" in msgs
    assert all(v.policy == "p" for v in found) and len(found) == 6


def test_a_version_meeting_every_rule_passes() -> None:
    gate = PolicyEvaluator(Facts(_run(0.95), {"MLmodel": b"signature:\n  inputs: x\n",
                                              "model_card.md": b"# card"}))
    src = ('[[rules]]\nname = "all"\nrequire = ["description", "signature", '
           '"artifact:model_card.md", "training_dataset"]\nrun = "metrics.val_accuracy > 0.9"'
           '\nmax_age_days = 30\n')
    ds = (DatasetInput("tx", "abc", context="training"),)
    assert gate(_subject(datasets=ds), _policy(src)) == []


def test_applies_to_and_models_select_transitions() -> None:
    gate = PolicyEvaluator(Facts(None, {}))
    src = ('applies_to = ["stage:Production", "alias:prod-*"]\nmodels = ["fraud-*"]\n'
           '[[rules]]\nname = "d"\nrequire = ["description"]\n')
    pol = _policy(src)
    assert gate(_subject("stage", "production", description=""), pol)  # case-insensitive
    assert gate(_subject("alias", "prod-eu", description=""), pol)
    assert gate(_subject("stage", "Staging", description=""), pol) == []
    assert gate(_subject("alias", "champion", description=""), pol) == []
    assert gate(_subject(description="", name="churn"), pol) == []


def test_an_unreadable_stored_policy_fails_closed() -> None:
    gate = PolicyEvaluator(Facts(None, {}))
    (v,) = gate(_subject(), _policy("rules = 'not a list'"))
    assert v.policy == "p" and "cannot be read" in v.message


def test_sources_this_server_cannot_read_fail_closed() -> None:
    gate = PolicyEvaluator(Facts(None, {}))
    mv = _mv("m", "s3://bucket/m", "")
    found = gate(GateSubject(mv, "stage", "Production", (), DAY), _policy(
        '[[rules]]\nname = "c"\nrequire = ["signature", "artifact:card.md"]\n'
        'run = "metrics.a > 1"\n'))
    msgs = " | ".join(v.message for v in found)
    assert "not a runs:/ URI" in msgs and "found: no source run" in msgs and len(found) == 3


def test_parse_keeps_order_and_defaults() -> None:
    doc = parse_policy("p", '[[rules]]\nname = "a"\nmax_age_days = 1\n'
                       '[[rules]]\nname = "b"\nrequire = "description"\n')
    assert [r.name for r in doc.rules] == ["a", "b"] and doc.rules[1].require == ("description",)
    assert ("alias", "*") in doc.applies_to and doc.models == ("*",)
