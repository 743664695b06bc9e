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

class DownsampleRequest(_message.Message):
    __slots__ = ("run_ids", "key", "buckets", "step_min", "step_max")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    STEP_MIN_FIELD_NUMBER: _ClassVar[int]
    STEP_MAX_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    key: str
    buckets: int
    step_min: int
    step_max: int
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., key: _Optional[str] = ..., buckets: _Optional[int] = ..., step_min: _Optional[int] = ..., step_max: _Optional[int] = ...) -> None: ...

class MetricPoint(_message.Message):
    __slots__ = ("step", "timestamp", "value")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    step: int
    timestamp: int
    value: float
    def __init__(self, step: _Optional[int] = ..., timestamp: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class DownsampledSeries(_message.Message):
    __slots__ = ("run_id", "key", "step_lo", "step_hi", "bucket", "count", "step_first", "step_last", "min", "max", "avg", "last", "nan_count", "inf_count", "first_point", "last_point")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    STEP_LO_FIELD_NUMBER: _ClassVar[int]
    STEP_HI_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIRST_FIELD_NUMBER: _ClassVar[int]
    STEP_LAST_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    AVG_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    NAN_COUNT_FIELD_NUMBER: _ClassVar[int]
    INF_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_POINT_FIELD_NUMBER: _ClassVar[int]
    LAST_POINT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    key: str
    step_lo: int
    step_hi: int
    bucket: bytes
    count: bytes
    step_first: bytes
    step_last: bytes
    min: bytes
    max: bytes
    avg: bytes
    last: bytes
    nan_count: bytes
    inf_count: bytes
    first_point: MetricPoint
    last_point: MetricPoint
    def __init__(self, run_id: _Optional[str] = ..., key: _Optional[str] = ..., step_lo: _Optional[int] = ..., step_hi: _Optional[int] = ..., bucket: _Optional[bytes] = ..., count: _Optional[bytes] = ..., step_first: _Optional[bytes] = ..., step_last: _Optional[bytes] = ..., min: _Optional[bytes] = ..., max: _Optional[bytes] = ..., avg: _Optional[bytes] = ..., last: _Optional[bytes] = ..., nan_count: _Optional[bytes] = ..., inf_count: _Optional[bytes] = ..., first_point: _Optional[_Union[MetricPoint, _Mapping]] = ..., last_point: _Optional[_Union[MetricPoint, _Mapping]] = ...) -> None: ...

class DownsampleResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[DownsampledSeries]
    def __init__(self, series: _Optional[_Iterable[_Union[DownsampledSeries, _Mapping]]] = ...) -> None: ...

class CompareRunsRequest(_message.Message):
    __slots__ = ("run_ids", "metric_keys", "param_keys")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    METRIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    PARAM_KEYS_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    metric_keys: _containers.RepeatedScalarFieldContainer[str]
    param_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., metric_keys: _Optional[_Iterable[str]] = ..., param_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class MetricColumn(_message.Message):
    __slots__ = ("key", "last", "present", "min", "max")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    key: str
    last: bytes
    present: bytes
    min: bytes
    max: bytes
    def __init__(self, key: _Optional[str] = ..., last: _Optional[bytes] = ..., present: _Optional[bytes] = ..., min: _Optional[bytes] = ..., max: _Optional[bytes] = ...) -> None: ...

class ParamColumn(_message.Message):
    __slots__ = ("key", "values", "present")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    key: str
    values: _containers.RepeatedScalarFieldContainer[str]
    present: bytes
    def __init__(self, key: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., present: _Optional[bytes] = ...) -> None: ...

class CompareRunsResponse(_message.Message):
    __slots__ = ("run_ids", "metrics", "params")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricColumn]
    params: _containers.RepeatedCompositeFieldContainer[ParamColumn]
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Iterable[_Union[MetricColumn, _Mapping]]] = ..., params: _Optional[_Iterable[_Union[ParamColumn, _Mapping]]] = ...) -> None: ...

class GroupByParamRequest(_message.Message):
    __slots__ = ("experiment_ids", "filter", "view_type", "param_key", "metric_key")
    EXPERIMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    VIEW_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAM_KEY_FIELD_NUMBER: _ClassVar[int]
    METRIC_KEY_FIELD_NUMBER: _ClassVar[int]
    experiment_ids: _containers.RepeatedScalarFieldContainer[str]
    filter: str
    view_type: str
    param_key: str
    metric_key: str
    def __init__(self, experiment_ids: _Optional[_Iterable[str]] = ..., filter: _Optional[str] = ..., view_type: _Optional[str] = ..., param_key: _Optional[str] = ..., metric_key: _Optional[str] = ...) -> None: ...

class ParamGroup(_message.Message):
    __slots__ = ("param_value", "run_count", "finite_count", "mean", "std", "min", "max")
    PARAM_VALUE_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNT_FIELD_NUMBER: _ClassVar[int]
    FINITE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    param_value: str
    run_count: int
    finite_count: int
    mean: float
    std: float
    min: float
    max: float
    def __init__(self, param_value: _Optional[str] = ..., run_count: _Optional[int] = ..., finite_count: _Optional[int] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class GroupByParamResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[ParamGroup]
    def __init__(self, groups: _Optional[_Iterable[_Union[ParamGroup, _Mapping]]] = ...) -> None: ...

class TailMetricsRequest(_message.Message):
    __slots__ = ("run_ids", "keys", "from_start", "poll_interval_ms")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    FROM_START_FIELD_NUMBER: _ClassVar[int]
    POLL_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    keys: _containers.RepeatedScalarFieldContainer[str]
    from_start: bool
    poll_interval_ms: int
    def __init__(self, run_ids: _Optional[_Iterable[str]] = ..., keys: _Optional[_Iterable[str]] = ..., from_start: _Optional[bool] = ..., poll_interval_ms: _Optional[int] = ...) -> None: ...

class TailMetricsResponse(_message.Message):
    __slots__ = ("run_id", "key", "steps", "timestamps", "values")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    key: str
    steps: bytes
    timestamps: bytes
    values: bytes
    def __init__(self, run_id: _Optional[str] = ..., key: _Optional[str] = ..., steps: _Optional[bytes] = ..., timestamps: _Optional[bytes] = ..., values: _Optional[bytes] = ...) -> None: ...
