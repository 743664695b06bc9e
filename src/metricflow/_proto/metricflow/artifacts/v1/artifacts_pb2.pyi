from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MissingChunksRequest(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MissingChunksResponse(_message.Message):
    __slots__ = ("missing", "direct_upload")
    MISSING_FIELD_NUMBER: _ClassVar[int]
    DIRECT_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    missing: _containers.RepeatedScalarFieldContainer[bytes]
    direct_upload: bool
    def __init__(self, missing: _Optional[_Iterable[bytes]] = ..., direct_upload: _Optional[bool] = ...) -> None: ...

class ChunkPart(_message.Message):
    __slots__ = ("hash", "raw_size", "data", "last")
    HASH_FIELD_NUMBER: _ClassVar[int]
    RAW_SIZE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    raw_size: int
    data: bytes
    last: bool
    def __init__(self, hash: _Optional[bytes] = ..., raw_size: _Optional[int] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class UploadChunksResponse(_message.Message):
    __slots__ = ("accepted", "stored_bytes")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    accepted: _containers.RepeatedScalarFieldContainer[bytes]
    stored_bytes: int
    def __init__(self, accepted: _Optional[_Iterable[bytes]] = ..., stored_bytes: _Optional[int] = ...) -> None: ...

class PresignUploadsRequest(_message.Message):
    __slots__ = ("hashes", "upload_id")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    upload_id: str
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ..., upload_id: _Optional[str] = ...) -> None: ...

class PresignUploadsResponse(_message.Message):
    __slots__ = ("urls", "expires_in_s")
    URLS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    urls: _containers.RepeatedScalarFieldContainer[str]
    expires_in_s: int
    def __init__(self, urls: _Optional[_Iterable[str]] = ..., expires_in_s: _Optional[int] = ...) -> None: ...

class FinalizeUploadsRequest(_message.Message):
    __slots__ = ("hashes", "upload_id")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    upload_id: str
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ..., upload_id: _Optional[str] = ...) -> None: ...

class FinalizeUploadsResponse(_message.Message):
    __slots__ = ("accepted", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: _containers.RepeatedScalarFieldContainer[bytes]
    rejected: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, accepted: _Optional[_Iterable[bytes]] = ..., rejected: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ChunkRef(_message.Message):
    __slots__ = ("hash", "size", "stored_size")
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    STORED_SIZE_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    size: int
    stored_size: int
    def __init__(self, hash: _Optional[bytes] = ..., size: _Optional[int] = ..., stored_size: _Optional[int] = ...) -> None: ...

class Manifest(_message.Message):
    __slots__ = ("run_id", "path", "version", "size", "file_hash", "media_type", "created_at_ms", "chunks")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_HASH_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    path: str
    version: int
    size: int
    file_hash: bytes
    media_type: str
    created_at_ms: int
    chunks: _containers.RepeatedCompositeFieldContainer[ChunkRef]
    def __init__(self, run_id: _Optional[str] = ..., path: _Optional[str] = ..., version: _Optional[int] = ..., size: _Optional[int] = ..., file_hash: _Optional[bytes] = ..., media_type: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., chunks: _Optional[_Iterable[_Union[ChunkRef, _Mapping]]] = ...) -> None: ...

class CommitManifestRequest(_message.Message):
    __slots__ = ("run_id", "path", "size", "file_hash", "media_type", "chunks")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FILE_HASH_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    path: str
    size: int
    file_hash: bytes
    media_type: str
    chunks: _containers.RepeatedCompositeFieldContainer[ChunkRef]
    def __init__(self, run_id: _Optional[str] = ..., path: _Optional[str] = ..., size: _Optional[int] = ..., file_hash: _Optional[bytes] = ..., media_type: _Optional[str] = ..., chunks: _Optional[_Iterable[_Union[ChunkRef, _Mapping]]] = ...) -> None: ...

class CommitManifestResponse(_message.Message):
    __slots__ = ("manifest", "missing")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    manifest: Manifest
    missing: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, manifest: _Optional[_Union[Manifest, _Mapping]] = ..., missing: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ("run_id", "path", "recursive")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    path: str
    recursive: bool
    def __init__(self, run_id: _Optional[str] = ..., path: _Optional[str] = ..., recursive: _Optional[bool] = ...) -> None: ...

class ArtifactInfo(_message.Message):
    __slots__ = ("path", "is_dir", "size", "version", "file_hash")
    PATH_FIELD_NUMBER: _ClassVar[int]
    IS_DIR_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FILE_HASH_FIELD_NUMBER: _ClassVar[int]
    path: str
    is_dir: bool
    size: int
    version: int
    file_hash: bytes
    def __init__(self, path: _Optional[str] = ..., is_dir: _Optional[bool] = ..., size: _Optional[int] = ..., version: _Optional[int] = ..., file_hash: _Optional[bytes] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[ArtifactInfo]
    def __init__(self, files: _Optional[_Iterable[_Union[ArtifactInfo, _Mapping]]] = ...) -> None: ...

class GetManifestRequest(_message.Message):
    __slots__ = ("run_id", "path", "version")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    path: str
    version: int
    def __init__(self, run_id: _Optional[str] = ..., path: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DownloadChunksRequest(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PresignDownloadsRequest(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PresignDownloadsResponse(_message.Message):
    __slots__ = ("urls", "expires_in_s")
    URLS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    urls: _containers.RepeatedScalarFieldContainer[str]
    expires_in_s: int
    def __init__(self, urls: _Optional[_Iterable[str]] = ..., expires_in_s: _Optional[int] = ...) -> None: ...

class DedupStatsRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class DedupStatsResponse(_message.Message):
    __slots__ = ("logical_bytes", "stored_bytes", "chunks", "manifests", "ratio")
    LOGICAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    MANIFESTS_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    logical_bytes: int
    stored_bytes: int
    chunks: int
    manifests: int
    ratio: float
    def __init__(self, logical_bytes: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., chunks: _Optional[int] = ..., manifests: _Optional[int] = ..., ratio: _Optional[float] = ...) -> None: ...
