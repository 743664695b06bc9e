from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vote(_message.Message):
    __slots__ = ("approver", "decision", "comment", "timestamp")
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    approver: str
    decision: str
    comment: str
    timestamp: int
    def __init__(self, approver: _Optional[str] = ..., decision: _Optional[str] = ..., comment: _Optional[str] = ..., timestamp: _Optional[int] = ...) -> None: ...

class ApprovalRequest(_message.Message):
    __slots__ = ("request_id", "model_name", "version", "kind", "target", "archive_existing", "state", "requester", "comment", "approvals_required", "created_at", "expires_at", "resolved_at", "resolution", "votes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    model_name: str
    version: str
    kind: str
    target: str
    archive_existing: bool
    state: str
    requester: str
    comment: str
    approvals_required: int
    created_at: int
    expires_at: int
    resolved_at: int
    resolution: str
    votes: _containers.RepeatedCompositeFieldContainer[Vote]
    def __init__(self, request_id: _Optional[int] = ..., model_name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., target: _Optional[str] = ..., archive_existing: _Optional[bool] = ..., state: _Optional[str] = ..., requester: _Optional[str] = ..., comment: _Optional[str] = ..., approvals_required: _Optional[int] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., resolved_at: _Optional[int] = ..., resolution: _Optional[str] = ..., votes: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ...) -> None: ...

class ProtectedTarget(_message.Message):
    __slots__ = ("target_id", "model_name", "kind", "pattern", "approvals_required", "expiry_s", "created_by", "created_at")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_S_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    model_name: str
    kind: str
    pattern: str
    approvals_required: int
    expiry_s: int
    created_by: str
    created_at: int
    def __init__(self, target_id: _Optional[int] = ..., model_name: _Optional[str] = ..., kind: _Optional[str] = ..., pattern: _Optional[str] = ..., approvals_required: _Optional[int] = ..., expiry_s: _Optional[int] = ..., created_by: _Optional[str] = ..., created_at: _Optional[int] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("name", "version", "format", "source", "deleted", "created_by", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    format: str
    source: str
    deleted: bool
    created_by: str
    created_at: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., format: _Optional[str] = ..., source: _Optional[str] = ..., deleted: _Optional[bool] = ..., created_by: _Optional[str] = ..., created_at: _Optional[int] = ...) -> None: ...

class Violation(_message.Message):
    __slots__ = ("policy", "rule", "message")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    policy: str
    rule: str
    message: str
    def __init__(self, policy: _Optional[str] = ..., rule: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("name", "digest", "source_type", "source", "schema", "profile", "context", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    source_type: str
    source: str
    schema: str
    profile: str
    context: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., source_type: _Optional[str] = ..., source: _Optional[str] = ..., schema: _Optional[str] = ..., profile: _Optional[str] = ..., context: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LineageNode(_message.Message):
    __slots__ = ("kind", "id", "attrs_json")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    attrs_json: str
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., attrs_json: _Optional[str] = ...) -> None: ...

class LineageEdge(_message.Message):
    __slots__ = ("source", "target", "relation")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RELATION_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    relation: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., relation: _Optional[str] = ...) -> None: ...

class TrainedVersion(_message.Message):
    __slots__ = ("model_name", "version", "run_id")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: str
    run_id: str
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RequestTransitionRequest(_message.Message):
    __slots__ = ("name", "version", "kind", "target", "archive_existing", "comment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    kind: str
    target: str
    archive_existing: bool
    comment: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., target: _Optional[str] = ..., archive_existing: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class ApprovalRequestReply(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: ApprovalRequest
    def __init__(self, request: _Optional[_Union[ApprovalRequest, _Mapping]] = ...) -> None: ...

class ListApprovalRequestsRequest(_message.Message):
    __slots__ = ("state", "name", "max_results")
    STATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    state: str
    name: str
    max_results: int
    def __init__(self, state: _Optional[str] = ..., name: _Optional[str] = ..., max_results: _Optional[int] = ...) -> None: ...

class ListApprovalRequestsReply(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ApprovalRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[ApprovalRequest, _Mapping]]] = ...) -> None: ...

class GetApprovalRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    def __init__(self, request_id: _Optional[int] = ...) -> None: ...

class VoteRequest(_message.Message):
    __slots__ = ("request_id", "comment")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    comment: str
    def __init__(self, request_id: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class ProtectTargetRequest(_message.Message):
    __slots__ = ("kind", "pattern", "name", "approvals_required", "expiry_s")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_S_FIELD_NUMBER: _ClassVar[int]
    kind: str
    pattern: str
    name: str
    approvals_required: int
    expiry_s: int
    def __init__(self, kind: _Optional[str] = ..., pattern: _Optional[str] = ..., name: _Optional[str] = ..., approvals_required: _Optional[int] = ..., expiry_s: _Optional[int] = ...) -> None: ...

class UnprotectTargetRequest(_message.Message):
    __slots__ = ("target_id",)
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    def __init__(self, target_id: _Optional[int] = ...) -> None: ...

class ListProtectedTargetsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListProtectedTargetsReply(_message.Message):
    __slots__ = ("targets",)
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[ProtectedTarget]
    def __init__(self, targets: _Optional[_Iterable[_Union[ProtectedTarget, _Mapping]]] = ...) -> None: ...

class ApproverRequest(_message.Message):
    __slots__ = ("username", "name")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    name: str
    def __init__(self, username: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Approver(_message.Message):
    __slots__ = ("username", "model_name")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    model_name: str
    def __init__(self, username: _Optional[str] = ..., model_name: _Optional[str] = ...) -> None: ...

class ListApproversRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListApproversReply(_message.Message):
    __slots__ = ("approvers",)
    APPROVERS_FIELD_NUMBER: _ClassVar[int]
    approvers: _containers.RepeatedCompositeFieldContainer[Approver]
    def __init__(self, approvers: _Optional[_Iterable[_Union[Approver, _Mapping]]] = ...) -> None: ...

class PutPolicyRequest(_message.Message):
    __slots__ = ("name", "source", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    format: str
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class DeletePolicyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListPoliciesRequest(_message.Message):
    __slots__ = ("history",)
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    history: bool
    def __init__(self, history: _Optional[bool] = ...) -> None: ...

class ListPoliciesReply(_message.Message):
    __slots__ = ("policies",)
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    def __init__(self, policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ...) -> None: ...

class CheckPoliciesRequest(_message.Message):
    __slots__ = ("name", "version", "kind", "target")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    kind: str
    target: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class CheckPoliciesReply(_message.Message):
    __slots__ = ("violations",)
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    def __init__(self, violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ...) -> None: ...

class GetLineageRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class LineageGraph(_message.Message):
    __slots__ = ("root", "nodes", "edges")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    root: str
    nodes: _containers.RepeatedCompositeFieldContainer[LineageNode]
    edges: _containers.RepeatedCompositeFieldContainer[LineageEdge]
    def __init__(self, root: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[LineageNode, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[LineageEdge, _Mapping]]] = ...) -> None: ...

class VersionsTrainedOnRequest(_message.Message):
    __slots__ = ("digest", "dataset_name")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DATASET_NAME_FIELD_NUMBER: _ClassVar[int]
    digest: str
    dataset_name: str
    def __init__(self, digest: _Optional[str] = ..., dataset_name: _Optional[str] = ...) -> None: ...

class VersionsTrainedOnReply(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[TrainedVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[TrainedVersion, _Mapping]]] = ...) -> None: ...

class LogRunInputsRequest(_message.Message):
    __slots__ = ("run_id", "datasets")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    def __init__(self, run_id: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ...) -> None: ...
