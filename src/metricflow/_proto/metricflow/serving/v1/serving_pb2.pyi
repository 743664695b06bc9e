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
    __slots__ = ("name", "variant", "state", "version", "reason", "reporter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    variant: str
    state: str
    version: str
    reason: str
    reporter: str
    def __init__(self, name: _Optional[str] = ..., variant: _Optional[str] = ..., state: _Optional[str] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ..., reporter: _Optional[str] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("name", "confidence", "baseline")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    name: str
    confidence: float
    baseline: str
    def __init__(self, name: _Optional[str] = ..., confidence: _Optional[float] = ..., baseline: _Optional[str] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...

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
