from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Condition(_message.Message):
    __slots__ = ("type", "metric", "op", "value", "window_steps", "seconds")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_STEPS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    type: str
    metric: str
    op: str
    value: float
    window_steps: int
    seconds: float
    def __init__(self, type: _Optional[str] = ..., metric: _Optional[str] = ..., op: _Optional[str] = ..., value: _Optional[float] = ..., window_steps: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("rule_id", "name", "experiment_ids", "run_filter", "condition", "for_s", "severity", "channels", "muted_until", "created_by", "creation_time")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    RUN_FILTER_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    FOR_S_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    MUTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    name: str
    experiment_ids: _containers.RepeatedScalarFieldContainer[str]
    run_filter: str
    condition: Condition
    for_s: float
    severity: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    muted_until: int
    created_by: str
    creation_time: int
    def __init__(self, rule_id: _Optional[str] = ..., name: _Optional[str] = ..., experiment_ids: _Optional[_Iterable[str]] = ..., run_filter: _Optional[str] = ..., condition: _Optional[_Union[Condition, _Mapping]] = ..., for_s: _Optional[float] = ..., severity: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., muted_until: _Optional[int] = ..., created_by: _Optional[str] = ..., creation_time: _Optional[int] = ...) -> None: ...

class CreateRuleRequest(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class RuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class ListRulesRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class ListRulesResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class MuteRuleRequest(_message.Message):
    __slots__ = ("rule_id", "duration_s", "unmute")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    UNMUTE_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    duration_s: float
    unmute: bool
    def __init__(self, rule_id: _Optional[str] = ..., duration_s: _Optional[float] = ..., unmute: _Optional[bool] = ...) -> None: ...

class RuleRef(_message.Message):
    __slots__ = ("rule_id",)
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    def __init__(self, rule_id: _Optional[str] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NotifyRequest(_message.Message):
    __slots__ = ("run_id", "title", "text", "level")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    title: str
    text: str
    level: str
    def __init__(self, run_id: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., level: _Optional[str] = ...) -> None: ...

class NotifyResponse(_message.Message):
    __slots__ = ("sent", "reason", "deliveries")
    SENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    sent: bool
    reason: str
    deliveries: int
    def __init__(self, sent: _Optional[bool] = ..., reason: _Optional[str] = ..., deliveries: _Optional[int] = ...) -> None: ...
