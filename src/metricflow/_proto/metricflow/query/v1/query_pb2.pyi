from metricflow._proto.metricflow.ingest.v1 import ingest_pb2 as _ingest_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CountPointsRequest(_message.Message):
    __slots__ = ("run_ids",)
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CountPointsResponse(_message.Message):
    __slots__ = ("count", "sum_finite_values")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FINITE_VALUES_FIELD_NUMBER: _ClassVar[int]
    count: int
    sum_finite_values: float
    def __init__(self, count: _Optional[int] = ..., sum_finite_values: _Optional[float] = ...) -> None: ...

class MetricSummary(_message.Message):
    __slots__ = ("key", "last_value", "last_step", "last_timestamp", "min_value", "max_value", "count")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_VALUE_FIELD_NUMBER: _ClassVar[int]
    LAST_STEP_FIELD_NUMBER: _ClassVar[int]
    LAST_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MIN_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    key: str
    last_value: float
    last_step: int
    last_timestamp: int
    min_value: float
    max_value: float
    count: int
    def __init__(self, key: _Optional[str] = ..., last_value: _Optional[float] = ..., last_step: _Optional[int] = ..., last_timestamp: _Optional[int] = ..., min_value: _Optional[float] = ..., max_value: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("info", "params", "tags", "metrics")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INFO_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    info: _ingest_pb2.RunInfo
    params: _containers.ScalarMap[str, str]
    tags: _containers.ScalarMap[str, str]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricSummary]
    def __init__(self, info: _Optional[_Union[_ingest_pb2.RunInfo, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., metrics: _Optional[_Iterable[_Union[MetricSummary, _Mapping]]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class SearchRunsRequest(_message.Message):
    __slots__ = ("experiment_ids", "filter", "order_by", "max_results", "page_token", "view_type")
    EXPERIMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_TYPE_FIELD_NUMBER: _ClassVar[int]
    experiment_ids: _containers.RepeatedScalarFieldContainer[str]
    filter: str
    order_by: _containers.RepeatedScalarFieldContainer[str]
    max_results: int
    page_token: str
    view_type: str
    def __init__(self, experiment_ids: _Optional[_Iterable[str]] = ..., filter: _Optional[str] = ..., order_by: _Optional[_Iterable[str]] = ..., max_results: _Optional[int] = ..., page_token: _Optional[str] = ..., view_type: _Optional[str] = ...) -> None: ...

class SearchRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMetricHistoryRequest(_message.Message):
    __slots__ = ("run_id", "key", "max_results", "page_token")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    key: str
    max_results: int
    page_token: str
    def __init__(self, run_id: _Optional[str] = ..., key: _Optional[str] = ..., max_results: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class MetricHistory(_message.Message):
    __slots__ = ("key", "steps", "timestamps", "values", "next_page_token")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    key: str
    steps: bytes
    timestamps: bytes
    values: bytes
    next_page_token: str
    def __init__(self, key: _Optional[str] = ..., steps: _Optional[bytes] = ..., timestamps: _Optional[bytes] = ..., values: _Optional[bytes] = ..., next_page_token: _Optional[str] = ...) -> None: ...
