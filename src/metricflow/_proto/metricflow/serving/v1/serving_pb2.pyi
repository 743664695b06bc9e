from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Variant(_message.Message):
    __slots__ = ("name", "alias", "version", "endpoint", "weight", "shadow", "resolved_version", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    version: str
    endpoint: str
    weight: float
    shadow: bool
    resolved_version: str
    source: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ..., endpoint: _Optional[str] = ..., weight: _Optional[float] = ..., shadow: _Optional[bool] = ..., resolved_version: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class StickyKey(_message.Message):
    __slots__ = ("source", "name")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    source: str
    name: str
    def __init__(self, source: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Guardrails(_message.Message):
    __slots__ = ("max_error_rate", "max_latency_p99_ms", "window_s", "min_requests", "fallback")
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    max_error_rate: float
    max_latency_p99_ms: float
    window_s: float
    min_requests: int
    fallback: str
    def __init__(self, max_error_rate: _Optional[float] = ..., max_latency_p99_ms: _Optional[float] = ..., window_s: _Optional[float] = ..., min_requests: _Optional[int] = ..., fallback: _Optional[str] = ...) -> None: ...

class VariantStatus(_message.Message):
    __slots__ = ("variant", "state", "version", "reason", "reporter", "timestamp")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    variant: str
    state: str
    version: str
    reason: str
    reporter: str
    timestamp: int
    def __init__(self, variant: _Optional[str] = ..., state: _Optional[str] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ..., reporter: _Optional[str] = ..., timestamp: _Optional[int] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("name", "model_name", "variants", "sticky_key", "guardrails", "description", "creation_timestamp", "last_updated_timestamp", "row_version", "statuses", "fallback")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    STICKY_KEY_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATED_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ROW_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_name: str
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    sticky_key: StickyKey
    guardrails: Guardrails
    description: str
    creation_timestamp: int
    last_updated_timestamp: int
    row_version: int
    statuses: _containers.RepeatedCompositeFieldContainer[VariantStatus]
    fallback: str
    def __init__(self, name: _Optional[str] = ..., model_name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., sticky_key: _Optional[_Union[StickyKey, _Mapping]] = ..., guardrails: _Optional[_Union[Guardrails, _Mapping]] = ..., description: _Optional[str] = ..., creation_timestamp: _Optional[int] = ..., last_updated_timestamp: _Optional[int] = ..., row_version: _Optional[int] = ..., statuses: _Optional[_Iterable[_Union[VariantStatus, _Mapping]]] = ..., fallback: _Optional[str] = ...) -> None: ...

class CreateDeploymentRequest(_message.Message):
    __slots__ = ("name", "model_name", "variants", "sticky_key", "guardrails", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    STICKY_KEY_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_name: str
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    sticky_key: StickyKey
    guardrails: Guardrails
    description: str
    def __init__(self, name: _Optional[str] = ..., model_name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., sticky_key: _Optional[_Union[StickyKey, _Mapping]] = ..., guardrails: _Optional[_Union[Guardrails, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class UpdateDeploymentRequest(_message.Message):
    __slots__ = ("name", "variants", "set_variants", "sticky_key", "set_sticky_key", "guardrails", "description", "expected_version", "comment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SET_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    STICKY_KEY_FIELD_NUMBER: _ClassVar[int]
    SET_STICKY_KEY_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    set_variants: bool
    sticky_key: StickyKey
    set_sticky_key: bool
    guardrails: Guardrails
    description: str
    expected_version: int
    comment: str
    def __init__(self, name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., set_variants: _Optional[bool] = ..., sticky_key: _Optional[_Union[StickyKey, _Mapping]] = ..., set_sticky_key: _Optional[bool] = ..., guardrails: _Optional[_Union[Guardrails, _Mapping]] = ..., description: _Optional[str] = ..., expected_version: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class DeploymentRef(_message.Message):
    __slots__ = ("name", "expected_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    expected_version: int
    def __init__(self, name: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("model_name",)
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    def __init__(self, model_name: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ...) -> None: ...

class ReportVariantStatusRequest(_message.Message):
    __slots__ = ("name", "variant", "state", "version", "reason", "reporter", "restore")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    RESTORE_FIELD_NUMBER: _ClassVar[int]
    name: str
    variant: str
    state: str
    version: str
    reason: str
    reporter: str
    restore: bool
    def __init__(self, name: _Optional[str] = ..., variant: _Optional[str] = ..., state: _Optional[str] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ..., reporter: _Optional[str] = ..., restore: _Optional[bool] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("name", "confidence", "baseline")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    name: str
    confidence: float
    baseline: str
    def __init__(self, name: _Optional[str] = ..., confidence: _Optional[float] = ..., baseline: _Optional[str] = ...) -> None: ...

class Estimate(_message.Message):
    __slots__ = ("kind", "count", "mean", "ci_low", "ci_high")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    kind: str
    count: int
    mean: float
    ci_low: float
    ci_high: float
    def __init__(self, kind: _Optional[str] = ..., count: _Optional[int] = ..., mean: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ...) -> None: ...

class Latency(_message.Message):
    __slots__ = ("p50", "p95", "p99", "mean", "ci_low", "ci_high")
    P50_FIELD_NUMBER: _ClassVar[int]
    P95_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    p50: float
    p95: float
    p99: float
    mean: float
    ci_low: float
    ci_high: float
    def __init__(self, p50: _Optional[float] = ..., p95: _Optional[float] = ..., p99: _Optional[float] = ..., mean: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ...) -> None: ...

class VariantReport(_message.Message):
    __slots__ = ("variant", "shadow", "versions", "runs", "count", "errors", "error_rate", "latency_ms", "outcomes")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class OutcomesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Estimate
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Estimate, _Mapping]] = ...) -> None: ...
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    variant: str
    shadow: bool
    versions: _containers.ScalarMap[str, int]
    runs: int
    count: int
    errors: int
    error_rate: Estimate
    latency_ms: Latency
    outcomes: _containers.MessageMap[str, Estimate]
    def __init__(self, variant: _Optional[str] = ..., shadow: _Optional[bool] = ..., versions: _Optional[_Mapping[str, int]] = ..., runs: _Optional[int] = ..., count: _Optional[int] = ..., errors: _Optional[int] = ..., error_rate: _Optional[_Union[Estimate, _Mapping]] = ..., latency_ms: _Optional[_Union[Latency, _Mapping]] = ..., outcomes: _Optional[_Mapping[str, Estimate]] = ...) -> None: ...

class TestResult(_message.Message):
    __slots__ = ("test", "difference", "statistic", "p_value", "df", "ci_low", "ci_high")
    TEST_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DF_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    test: str
    difference: float
    statistic: float
    p_value: float
    df: float
    ci_low: float
    ci_high: float
    def __init__(self, test: _Optional[str] = ..., difference: _Optional[float] = ..., statistic: _Optional[float] = ..., p_value: _Optional[float] = ..., df: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ...) -> None: ...

class Tests(_message.Message):
    __slots__ = ("kind", "fixed_horizon", "sequential")
    KIND_FIELD_NUMBER: _ClassVar[int]
    FIXED_HORIZON_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_FIELD_NUMBER: _ClassVar[int]
    kind: str
    fixed_horizon: TestResult
    sequential: TestResult
    def __init__(self, kind: _Optional[str] = ..., fixed_horizon: _Optional[_Union[TestResult, _Mapping]] = ..., sequential: _Optional[_Union[TestResult, _Mapping]] = ...) -> None: ...

class ComparisonReport(_message.Message):
    __slots__ = ("variant", "baseline", "error_rate", "latency_ms", "outcomes")
    class OutcomesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Tests
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Tests, _Mapping]] = ...) -> None: ...
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    variant: str
    baseline: str
    error_rate: Tests
    latency_ms: Tests
    outcomes: _containers.MessageMap[str, Tests]
    def __init__(self, variant: _Optional[str] = ..., baseline: _Optional[str] = ..., error_rate: _Optional[_Union[Tests, _Mapping]] = ..., latency_ms: _Optional[_Union[Tests, _Mapping]] = ..., outcomes: _Optional[_Mapping[str, Tests]] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ("deployment", "model_name", "baseline", "confidence", "tests", "variants", "comparisons")
    class TestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    model_name: str
    baseline: str
    confidence: float
    tests: _containers.ScalarMap[str, str]
    variants: _containers.RepeatedCompositeFieldContainer[VariantReport]
    comparisons: _containers.RepeatedCompositeFieldContainer[ComparisonReport]
    def __init__(self, deployment: _Optional[str] = ..., model_name: _Optional[str] = ..., baseline: _Optional[str] = ..., confidence: _Optional[float] = ..., tests: _Optional[_Mapping[str, str]] = ..., variants: _Optional[_Iterable[_Union[VariantReport, _Mapping]]] = ..., comparisons: _Optional[_Iterable[_Union[ComparisonReport, _Mapping]]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("name", "max_results")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    max_results: int
    def __init__(self, name: _Optional[str] = ..., max_results: _Optional[int] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
