"""Can the replication user log in to the leader the way a replica's pg_basebackup does.

Both checks read the same real login (``postgres.replication_login``): the server's own
refusal tells a pg_hba gap from a credential problem, and the role's attributes read
as the superuser tell a wrong password from a missing role or a missing REPLICATION.
"""

from __future__ import annotations

import re
from typing import Any

from doctor.engine import CheckContext, Verdict, check, fail, ok, skip

HBA_RE = re.compile(r'replication connection from host "(?P<host>[^"]+)", user "(?P<user>[^"]+)"(?:, (?P<enc>[^"]+))?')


def _login(ctx: CheckContext) -> dict[str, Any]:
    v = ctx.facts.get("postgres.replication_login")
    return v if isinstance(v, dict) else {}


def _where(login: dict[str, Any]) -> str:
    return f"{login.get('member') or '?'} ({login.get('host')}:{login.get('port')})"


def _unreachable(login: dict[str, Any]) -> Verdict | None:
    kind = (login.get("error") or {}).get("kind")
    if kind in ("refused", "timeout", "dns", "starting", "not-configured"):
        return skip(f"the replication login to {_where(login)} could not reach the server ({kind}); "
                    "nothing to judge about credentials")
    return None


@check("auth.replication-login", "the replication user can log in to the leader", playbook="replication-auth-failed",
       profiles=("run", "replication"), needs=("postgres.replication_login",), errors_ok=True)
def replication_login(ctx: CheckContext) -> Verdict:
    login = _login(ctx)
    user = login.get("user") or ctx.node.replication_user
    if login.get("ok"):
        ids = login.get("identify_system") or {}
        return ok(f"{user} logged in to {_where(login)} with replication=true (IDENTIFY_SYSTEM: timeline "
                  f"{ids.get('timeline')}, system {ids.get('system_identifier')})")
    gate = _unreachable(login)
    if gate:
        return gate
    err = login.get("error") or {}
    kind = err.get("kind")
    if kind == "hba":
        return ok(f"{user}'s credentials were not tried: pg_hba on {_where(login)} refused first (see pg-hba-replication-missing)")
    if kind not in ("auth", "no-role", "no-replication-privilege"):
        return skip(f"replication login to {_where(login)} failed for another reason: {err.get('message')}")
    server = err.get("server_message") or err.get("message")
    role = login.get("role") or {}
    path = ctx.facts.get("config.path")
    evidence = [f"replication login as {user} to {_where(login)} (target from {login.get('source')}): {server}"]
    values: dict[str, Any] = {"leader": login.get("member"), "leader_host": login.get("host"),
                              "leader_port": login.get("port"), "replication_user": user}
    if role.get("error"):
        evidence.append(f"the role could not be inspected as {role.get('as')}: {role['error'].get('message')}")
    if kind == "no-replication-privilege" or (role.get("exists") and role.get("rolreplication") is False):
        values["reason"] = "no-replication"
        return fail(f"role {user} on the leader {_where(login)} lacks the REPLICATION attribute: \"{server}\"",
                    evidence=[*evidence, f'pg_authid: {user} rolreplication={role.get("rolreplication")}'], values=values)
    if role.get("exists") is False or kind == "no-role":
        values["reason"] = "missing-role"
        return fail(f"role {user} does not exist on the leader {_where(login)}; the server answers \"{server}\". "
                    f"{path} names {user} in postgresql.authentication.replication",
                    evidence=[*evidence, f'pg_authid has no row for {user} (checked as {role.get("as")})'], values=values)
    if role.get("exists") and role.get("rolcanlogin") is False:
        values["reason"] = "nologin"
        return fail(f"role {user} on the leader {_where(login)} has NOLOGIN: \"{server}\"", evidence=evidence, values=values)
    values["reason"] = "wrong-password" if role.get("exists") else "unknown"
    if role.get("exists"):
        extra = "" if role.get("has_password") else f" (and role {user} has no password set)"
        return fail(f"wrong replication password: the password for {user} in {path} "
                    f"(postgresql.authentication.replication) is not the one of role {user} on the leader "
                    f"{_where(login)}{extra}; the server answers \"{server}\"",
                    evidence=[*evidence, f'pg_authid: {user} exists, LOGIN, REPLICATION, has password ' f'{role.get("has_password")}'], values=values)
    return fail(f"{user} cannot log in to the leader {_where(login)}: \"{server}\" (wrong password or missing role; "
                "the superuser could not check which)", evidence=evidence, values=values)


@check("auth.hba-replication", "pg_hba on the leader admits the replication connection",
       playbook="pg-hba-replication-missing",
       profiles=("run", "replication"), needs=("postgres.replication_login",), errors_ok=True)
def hba_replication(ctx: CheckContext) -> Verdict:
    login = _login(ctx)
    user = login.get("user") or ctx.node.replication_user
    if login.get("ok"):
        return ok(f"pg_hba on {_where(login)} admits {user}'s replication connection")
    gate = _unreachable(login)
    if gate:
        return gate
    err = login.get("error") or {}
    if err.get("kind") != "hba":
        return ok(f"pg_hba on {_where(login)} did not refuse {user} (the login failed later: {err.get('kind')})")
    server = err.get("server_message") or err.get("message")
    m = HBA_RE.search(server or "")
    client = m.group("host") if m else "<client address>"
    enc = (m.group("enc") if m else None) or "no encryption"
    role = login.get("role") or {}
    rules = role.get("hba_rules") or []
    hba_file = role.get("hba_file") or "pg_hba.conf"
    repl_rules = [r for r in rules if "replication" in (r.get("database") or [])]
    evidence = [f"replication login as {user} to {_where(login)}: {server}",
                f"rule needed: host replication {user} {client}/32 scram-sha-256 (type host, database replication, "
                f"user {user}, address {client})"]
    if rules:
        evidence.append(f"{hba_file} on {login.get('member')} has {len(rules)} rules, "
                        f"{len(repl_rules)} for the replication database:")
        evidence += [f"  line {r.get('line_number')}: {r.get('type')} {','.join(r.get('database') or [])} "
                     f"{','.join(r.get('user_name') or [])} {r.get('address') or ''} {r.get('auth_method')}" for r in rules[:12]]
    local_hba = ctx.node.get("postgresql", "pg_hba")
    dyn_hba = ctx.facts.get("dcs.config.postgresql.pg_hba")
    managed = "the leader's patroni.yml postgresql.pg_hba" if local_hba is not None else (
        "the DCS config postgresql.pg_hba" if dyn_hba is not None else None)
    return fail(f"pg_hba.conf on the leader {_where(login)} has no rule for a replication connection from host "
                f"\"{client}\", user \"{user}\" ({enc}): a rule `host replication {user} {client}/32 <method>` must match"
                + (f"; Patroni rewrites {hba_file} from {managed}, so add it there" if managed else ""),
                evidence=evidence,
                values={"leader": login.get("member"), "leader_host": login.get("host"), "leader_port": login.get("port"), "client_host": client, "replication_user": user,
                        "hba_file": hba_file, "hba_managed_by": managed or "", "local_pg_hba": local_hba is not None})
