"""pgdoctor: diagnose PostgreSQL clusters run by Patroni with etcd."""

__version__ = "0.1.0"
