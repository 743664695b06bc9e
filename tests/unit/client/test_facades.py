"""The client's registry and artifact calls are explicit, typed methods with the
signatures of the RegistryClient / ArtifactClient calls they forward to."""

from __future__ import annotations

import inspect

import pytest

from metricflow.artifacts import ArtifactClient
from metricflow.client import Client
from metricflow.client._facades import ArtifactCalls, RegistryCalls
from metricflow.registry import RegistryClient

CALLS = [(RegistryCalls, RegistryClient, "registry"), (ArtifactCalls, ArtifactClient, "artifacts")]


def _methods(cls: type) -> list[str]:
    return sorted(n for n, v in vars(cls).items() if callable(v) and not n.startswith("_"))


@pytest.mark.parametrize(("facade", "target", "attr"), CALLS)
def test_each_call_has_the_signature_of_the_call_it_forwards_to(facade, target, attr) -> None:
    names = _methods(facade)
    assert len(names) >= 10
    for name in names:
        assert inspect.signature(getattr(facade, name)) == inspect.signature(
            getattr(target, name)), name


def test_the_client_has_no_catch_all_attribute() -> None:
    assert "__getattr__" not in vars(Client)
    assert not hasattr(Client, "no_such_call")


@pytest.mark.parametrize(("facade", "target", "attr"), CALLS)
def test_a_call_reaches_the_underlying_client_with_its_arguments(facade, target, attr) -> None:
    seen: list[tuple[str, tuple, dict]] = []

    class Recorder:
        def __getattr__(self, name: str):
            return lambda *a, **k: seen.append((name, a, k)) or name

    class Probe(facade):  # type: ignore[misc, valid-type]
        pass

    setattr(Probe, attr, property(lambda self: Recorder()))
    probe = Probe()
    name = _methods(facade)[0]
    params = list(inspect.signature(getattr(facade, name)).parameters.values())[1:]
    args = {p.name: f"v-{p.name}" for p in params}
    assert getattr(probe, name)(**args) == name
    (called, a, k), = seen
    assert called == name and set(a) | set(k.values()) == set(args.values())
