"""Will this node's cluster come back after a reboot? Patroni's unit enabled at boot, and the
distribution's ``postgresql`` unit not enabled (it would race Patroni for the data dir and port).

Facts only, read with ``systemctl is-enabled``/``is-active`` (``service_state``, shared with
preflight); where the host runs no systemd the facts say so and the check skips with that reason.
"""

from __future__ import annotations

import os
from typing import Any

from doctor.collect import CollectContext, collector

PATRONI_UNIT = "patroni"
DISTRO_UNIT = "postgresql"


@collector("autostart", profiles=("verify",), share="command")
def collect_autostart(ctx: CollectContext) -> dict[str, Any]:
    # imported here: preflight's package (etcd, requests) loads only for the profiles that run this
    from doctor.collect.preflight.install import service_state

    return {"systemd": os.path.isdir("/run/systemd/system"),
            "patroni": service_state(PATRONI_UNIT, ctx.deadline),
            "postgresql": service_state(DISTRO_UNIT, ctx.deadline)}
