"""`metricflow admin`: users, API tokens and permissions, straight on the control plane.

Works on the database itself (`--metadata URI` or `--data-dir`), so it needs
the operator's access to the store, not a running server; that is also how
the first admin is created. Changes are audited with actor `cli:<os user>`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from metricflow import _env


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from metricflow._uris import CONTROL, backend_key
    from metricflow.auth._store import AuthStore
    from metricflow.store.metadata import open_metadata_store

    uri = args.metadata or f"sqlite:///{os.path.abspath(args.data_dir)}/metadata.db"
    if backend_key(CONTROL, uri) == "sqlite":
        import sqlalchemy as sa  # server extra

        path = sa.make_url(uri).database
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    md = open_metadata_store(uri)
    return md, AuthStore(md.engine)  # type: ignore[attr-defined]


def _out(obj: Any) -> None:
    import dataclasses

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.asdict(v)
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    print(json.dumps(conv(obj), indent=2, default=str))


def _password(args: argparse.Namespace) -> str | None:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if getattr(args, "password", False):
        return getpass.getpass("password: ")
    return None


def _run(args: argparse.Namespace) -> int:
    from metricflow.errors import MetricflowError

    md, store = _open(args)
    a = _actor()
    try:
        cmd = (args.area, args.action)
        if cmd == ("user", "create"):
            _out(store.create_user(args.username, password=_password(args),
                                   is_admin=args.admin, actor=a))
        elif cmd == ("user", "update"):
            _out(store.update_user(args.username, password=_password(args),
                                   is_admin=args.admin, actor=a))
        elif cmd == ("user", "delete"):
            store.delete_user(args.username, actor=a)
        elif cmd == ("user", "list"):
            _out(store.list_users())
        elif cmd == ("token", "create"):
            scopes = tuple(args.scopes.split(",")) if args.scopes else None
            ttl = args.ttl_days * 86400 if args.ttl_days else None
            info, plaintext = store.create_token(args.username, name=args.name, scopes=scopes,
                                                 ttl_s=ttl, actor=a)
            # The plaintext is printed once, to stdout only; it is never stored or logged.
            _out({"token": plaintext, "info": info})
        elif cmd == ("token", "revoke"):
            _out(store.revoke_token(args.token_id, actor=a))
        elif cmd == ("token", "list"):
            _out(store.list_tokens(args.username))
        elif cmd == ("permission", "set-experiment"):
            store.set_experiment_permission(args.experiment_id, args.username, args.permission,
                                            actor=a)
        elif cmd == ("permission", "set-model"):
            store.set_model_permission(args.name, args.username, args.permission, actor=a)
        elif cmd == ("permission", "delete-experiment"):
            store.delete_experiment_permission(args.experiment_id, args.username, actor=a)
        elif cmd == ("permission", "delete-model"):
            store.delete_model_permission(args.name, args.username, actor=a)
        elif cmd == ("permission", "list"):
            _out(store.list_permissions(args.username))
    except MetricflowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        md.close()
    return 0


def add_admin_parsers(sub: Any) -> None:
    """Register `metricflow admin ...` on the top-level CLI."""
    p = sub.add_parser("admin", help="users, API tokens and permissions")
    p.add_argument("--data-dir", default=_env.DATA_DIR.get())
    p.add_argument("--metadata", default=_env.METADATA_URI.get() or None,
                   help=_env.METADATA_URI.help)
    areas = p.add_subparsers(dest="area", required=True)

    u = areas.add_parser("user").add_subparsers(dest="action", required=True)
    for name in ("create", "update"):
        c = u.add_parser(name)
        c.add_argument("username")
        c.add_argument("--admin", action="store_true", default=None if name == "update" else False)
        c.add_argument("--password", action="store_true", help="prompt for a password")
        c.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    u.add_parser("delete").add_argument("username")
    u.add_parser("list")

    t = areas.add_parser("token").add_subparsers(dest="action", required=True)
    c = t.add_parser("create")
    c.add_argument("username")
    c.add_argument("--name", default="")
    c.add_argument("--scopes", help="comma list of read,edit,manage,admin (default: all the "
                                    "user may have)")
    c.add_argument("--ttl-days", type=float, help="expire after this many days")
    t.add_parser("revoke").add_argument("token_id")
    t.add_parser("list").add_argument("username", nargs="?")

    pm = areas.add_parser("permission").add_subparsers(dest="action", required=True)
    for name, target in (("set-experiment", "experiment_id"), ("set-model", "name"),
                         ("delete-experiment", "experiment_id"), ("delete-model", "name")):
        c = pm.add_parser(name)
        c.add_argument(target)
        c.add_argument("username")
        if name.startswith("set"):
            c.add_argument("permission", help="NO_PERMISSIONS, READ, EDIT or MANAGE")
    pm.add_parser("list").add_argument("username")
    p.set_defaults(func=_run)
