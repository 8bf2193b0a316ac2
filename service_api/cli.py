"""``prognos api``: run the service API, or manage its tokens.

    prognos api [--host H] [--port P]                 serve (uvicorn) until interrupted
    prognos api tokens create --name N --role R [--customer C] [--expires-days D | --never-expires]
                                                      prints the token once (default expiry:
                                                      PROGNOS_API_TOKEN_DAYS, 90 days)
    prognos api tokens list [--all]
    prognos api tokens revoke TOKEN_ID
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

import psycopg

from prognos.config import get_settings
from prognos.logs import setup_logging
from service_api.auth import ROLES, create_token, list_tokens, revoke_token


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prognos api", description=__doc__.split("\n")[0])
    p.add_argument("--host", help="bind address (default: settings.api_host)")
    p.add_argument("--port", type=int, help="port (default: settings.api_port)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    sub = p.add_subparsers(dest="cmd")
    tok = sub.add_parser("tokens", help="manage API tokens")
    tsub = tok.add_subparsers(dest="action", required=True)
    c = tsub.add_parser("create", help="create a token and print it (shown only once)")
    c.add_argument("--name", required=True)
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--customer", help="the customer a 'customer' token is bound to")
    exp = c.add_mutually_exclusive_group()
    exp.add_argument("--expires-days", type=float,
                     help="expire after this many days (default: settings.api_token_days)")
    exp.add_argument("--never-expires", action="store_true", help="a token that never expires")
    ls = tsub.add_parser("list", help="list tokens (never the tokens themselves)")
    ls.add_argument("--all", action="store_true", help="include revoked tokens")
    r = tsub.add_parser("revoke", help="revoke a token by id")
    r.add_argument("token_id", type=int)
    return p


def _tokens(args, settings) -> int:
    try:
        conn = psycopg.connect(settings.dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        print(f"cannot reach the database: {exc}".strip(), file=sys.stderr)
        return 2
    with conn:
        if args.action == "create":
            if args.expires_days is not None and args.expires_days <= 0:
                print("--expires-days must be positive", file=sys.stderr)
                return 2
            expires = timedelta(days=args.expires_days) if args.expires_days else None
            try:
                token = create_token(conn, args.name, args.role, expires_in=expires,
                                     customer_id=args.customer,
                                     default_days=0 if args.never_expires
                                     else settings.api_token_days)
            except ValueError as exc:
                print(exc, file=sys.stderr)
                return 2
            print(token)
            print(f"token for {args.name!r} ({args.role}); store it now: it is not shown again",
                  file=sys.stderr)
        elif args.action == "list":
            print(f"{'id':>5}  {'role':<10}  {'active':<6}  {'expires':<25}  "
                  f"{'last used':<25}  name")
            for t in list_tokens(conn, include_revoked=args.all):
                scope = f" (customer {t['customer_id']})" if t["customer_id"] else ""
                print(f"{t['token_id']:>5}  {t['role']:<10}  {str(t['active']):<6}  "
                      f"{str(t['expires_at'] or '-'):<25}  {str(t['last_used_at'] or '-'):<25}  "
                      f"{t['name']}{scope}")
        else:
            if not revoke_token(conn, args.token_id):
                print(f"no live token {args.token_id}", file=sys.stderr)
                return 1
            print(f"revoked token {args.token_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    if args.cmd == "tokens":
        return _tokens(args, settings)
    import uvicorn

    setup_logging()
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    if not 1 <= port <= 65535:
        print("--port must be 1-65535", file=sys.stderr)
        return 2
    if args.workers > 1:
        uvicorn.run("service_api.app:create_app", factory=True, host=host, port=port,
                    workers=args.workers, log_config=None)
    else:
        from service_api.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
