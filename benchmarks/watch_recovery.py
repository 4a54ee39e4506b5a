"""How long the watch cache takes to be right again after each of several dropped watches.

The Kubernetes API double (tests/kubeapi) drops every open watch; at once a LoadBalancer
Service is created; the time until the cache counts it is the time to correct decisions.
Default informer settings (backoff 0.5 s doubling to 30 s). Run from the repository root::

    .venv/bin/python benchmarks/watch_recovery.py [--drops 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kubeapi import KubeApi  # noqa: E402
from tests.support import api_client, eventually, service, write_kubeconfig  # noqa: E402
from webhook.cluster.kube import KubeCluster  # noqa: E402


class LoadBalancers:
    key, kind = "bench/lb", "Service"

    def counts(self, obj: dict[str, object]) -> bool:
        return (obj.get("spec") or {}).get("type") == "LoadBalancer"  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drops", type=int, default=8)
    args = parser.parse_args()
    counter = LoadBalancers()
    with KubeApi() as api, tempfile.TemporaryDirectory() as folder:
        kubeconfig = write_kubeconfig(Path(folder) / "kubeconfig", server=api.url,
                                      ca_pem=api.ca_pem)
        cluster = KubeCluster(api_client(kubeconfig))
        cluster.register_counters([counter])
        cluster.start()
        try:
            assert cluster.wait_synced(timeout=30)
            times = []
            for drop in range(args.drops):
                watches = len(api.watches("services"))
                eventually(lambda: api.watches("services"), timeout=120)
                started = time.monotonic()
                api.drop_watches()
                api.create(service(name=f"lb-{drop}", namespace="shop", type="LoadBalancer"))
                eventually(lambda: f"lb-{drop}" in cluster.counted_names("shop", counter),  # noqa: B023
                           timeout=120, interval=0.005)
                times.append(time.monotonic() - started)
                eventually(lambda: len(api.watches("services")) > watches, timeout=120)  # noqa: B023
                print(f"drop {drop + 1}: correct again after {times[-1]:.2f} s", flush=True)
        finally:
            cluster.stop()
    print(f"first {times[0]:.2f} s, last {times[-1]:.2f} s, worst {max(times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
