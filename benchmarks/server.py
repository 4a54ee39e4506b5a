"""Benchmark `edgewarden serve` against a raw-ASGI ceiling and Cloud Custodian's c7n-kube.

Run from the repository root (needs the Debian packages ``wrk`` and ``hey``)::

    .venv/bin/python benchmarks/server.py            # full run, ~2 minutes
    .venv/bin/python benchmarks/server.py --duration 5 --skip-c7n

Every server runs as its own process with one uvicorn worker (uvloop + httptools) over
TLS with the same certificate; load comes from ``wrk -t2 -c64`` (maximum throughput) and
``hey`` at a fixed 1,000 req/s total (latency). Bodies are realistic ~2.5 KB reviews
(benchmarks/fixtures). c7n-kube is installed into its own venv ``.venv-c7n`` (it pins
other versions than ours). Results: a table on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
FIXTURES = HERE / "fixtures"
RESULTS = HERE / "results"
VENV = ROOT / ".venv" / "bin"
C7N_VENV = ROOT / ".venv-c7n"
VALIDATE_BODY = FIXTURES / "validate-review.json"
MUTATE_BODY = FIXTURES / "mutate-review.json"
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log",
                 "--log-level", "warning", "--host", "127.0.0.1"]


@dataclass
class Target:
    name: str
    url_path: str
    body: Path
    command: list[str]
    expect: str  # a substring the answer must contain (checked before the load)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0


@dataclass
class Measurement:
    target: str
    tool: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    # The server process's CPU time (user + system) per answered request: unlike req/s it
    # hardly moves when other work shares the machine, so overheads compare across runs.
    cpu_us_per_request: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def certificates(folder: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from webhook.certs.files import generate_certificates

    generated = generate_certificates(folder, service="edgewarden", namespace="edgewarden",
                                      hosts_extra=("127.0.0.1", "localhost"))
    return generated.cert_file, generated.key_file


def ensure_c7n() -> Path:
    """c7n-kube in its own venv (never in .venv: it pins other versions)."""
    executable = C7N_VENV / "bin" / "c7n-kube"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", str(C7N_VENV)], check=True)
        subprocess.run([str(C7N_VENV / "bin" / "pip"), "install", "-q", "c7n-kube"], check=True)
    return executable


def post_once(port: int, path: str, body: bytes) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def start(target: Target, log_dir: Path) -> subprocess.Popen[bytes]:
    target.port = free_port()
    command = [part.replace("{port}", str(target.port)) for part in target.command]
    log_file = log_dir / (re.sub(r"[^A-Za-z0-9-]+", "_", target.name) + ".log")
    log = open(log_file, "wb")  # noqa: SIM115 (lives with the process)
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **target.env})
    body = target.body.read_bytes()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{target.name} exited: {log_file.read_text()[-2000:]}")
        try:
            answer = post_once(target.port, target.url_path, body)
        except OSError:
            time.sleep(0.2)
            continue
        if target.expect not in answer:
            raise RuntimeError(f"{target.name} answered unexpectedly: {answer[:300]}")
        return process
    raise RuntimeError(f"{target.name} did not start within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(target: Target, duration: int) -> Measurement:
    url = f"https://127.0.0.1:{target.port}{target.url_path}"
    output = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{duration}s", "--latency", "-s", str(HERE / "post.lua"), url],
        env={**os.environ, "BODY_FILE": str(target.body)}, capture_output=True, text=True,
        check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")

    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Measurement(target.name, "wrk -t2 -c64", rps, percentile("50"), percentile("99"),
                       errors, total)


def run_hey(target: Target, duration: int, rate: int | None, workers: int) -> Measurement:
    """``rate`` None: as fast as ``workers`` connections go (hey reads close-delimited
    HTTP/1.0 answers, which wrk counts as errors: c7n-kube's server sends those)."""
    url = f"https://127.0.0.1:{target.port}{target.url_path}"
    limit = ["-q", str(rate // workers)] if rate else []
    output = subprocess.run(
        ["hey", "-z", f"{duration}s", "-c", str(workers), *limit,
         "-m", "POST", "-T", "application/json", "-D", str(target.body), url],
        capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        match = re.search(rf"{p}%+ in ([\d.]+) secs", output)
        return float(match.group(1)) * 1000 if match else float("nan")

    codes = dict((int(c), int(n)) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", output))
    errors = sum(n for code, n in codes.items() if code != 200)
    errors += sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s+Post", output, re.M))
    tool = f"hey {rate} req/s" if rate else f"hey -c{workers} max"
    return Measurement(target.name, tool, rps, percentile("50"), percentile("99"),
                       errors, sum(codes.values()))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(process: subprocess.Popen[bytes], run: Callable[[], Measurement]) -> Measurement:
    """``run()``, with the server's CPU time per request it answered."""
    before = cpu_seconds(process.pid)
    measurement = run()
    after = cpu_seconds(process.pid)
    if before is not None and after is not None and measurement.requests:
        measurement.cpu_us_per_request = (after - before) / measurement.requests * 1e6
    return measurement


def targets(cert: Path, key: Path, tmp: Path, with_c7n: bool, with_fastapi: bool) -> list[Target]:
    ssl_flags = ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    edgewarden = [str(VENV / "edgewarden"), "serve", "--policies", str(ROOT / "policies"),
                  "--cluster-state", str(FIXTURES / "cluster.yaml"), "--tls-cert", str(cert),
                  "--tls-key", str(key), "--host", "127.0.0.1", "--port", "{port}",
                  "--log-level", "warning", "--audit-log", str(tmp / "audit.jsonl")]
    chosen = [
        Target("raw-asgi (ceiling)", "/validate", VALIDATE_BODY,
               [str(VENV / "python"), "-m", "uvicorn", "benchmarks.raw_asgi:app",
                "--port", "{port}", *UVICORN_FLAGS, *ssl_flags], '"allowed":true'),
        Target("edgewarden /validate", "/validate", VALIDATE_BODY, edgewarden,
               '"allowed":false'),
        Target("edgewarden /mutate", "/mutate", MUTATE_BODY, edgewarden, '"patchType"'),
    ]
    if with_fastapi:
        chosen.append(Target(
            "fastapi-route /validate", "/validate", VALIDATE_BODY,
            [str(VENV / "python"), "-m", "uvicorn", "benchmarks.fastapi_route:app",
             "--port", "{port}", *UVICORN_FLAGS, *ssl_flags], '"allowed":false',
            env={"BENCH_POLICIES": str(ROOT / "policies"),
                 "BENCH_CLUSTER": str(FIXTURES / "cluster.yaml"),
                 "BENCH_CERT": str(cert), "BENCH_KEY": str(key)}))
    if with_c7n:
        chosen.append(Target(
            "c7n-kube", "/", VALIDATE_BODY,
            [str(ensure_c7n()), "--host", "127.0.0.1", "--port", "{port}", "--policy-dir",
             str(FIXTURES / "c7n-policies"), "--endpoint", "x", "--cert", str(cert),
             "--cert-key", str(key)], '"allowed": false'))
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rate", type=int, default=1000, help="hey: total req/s")
    parser.add_argument("--hey-workers", type=int, default=10)
    parser.add_argument("--skip-c7n", action="store_true")
    parser.add_argument("--skip-fastapi", action="store_true",
                        help="skip the FastAPI-route variant (kept to justify raw endpoints)")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian package {tool})", file=sys.stderr)
            return 2
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="edgewarden-bench-") as folder:
        tmp = Path(folder)
        cert, key = certificates(tmp / "certs")
        for target in targets(cert, key, tmp, not args.skip_c7n, not args.skip_fastapi):
            process = start(target, tmp)
            try:
                print(f"measuring {target.name} ...", file=sys.stderr, flush=True)
                if target.name != "c7n-kube":  # see run_hey
                    measurements.append(measured(process, lambda t=target: run_wrk(
                        t, args.duration)))
                measurements.append(measured(process, lambda t=target: run_hey(
                    t, args.duration, None, 64)))
                measurements.append(measured(process, lambda t=target: run_hey(
                    t, args.duration, args.rate, args.hey_workers)))
            finally:
                stop(process)
    report(measurements, args)
    return 0


def report(measurements: list[Measurement], args: argparse.Namespace) -> None:
    """Ratios: each tool's figure against the same tool's ceiling (raw ASGI), and every
    maximum-throughput figure against c7n-kube's best one."""
    def rps(target_prefix: str, tool_prefix: str) -> float | None:
        return next((m.requests_per_second for m in measurements
                     if m.target.startswith(target_prefix) and m.tool.startswith(tool_prefix)),
                    None)

    def cpu(target_prefix: str, tool_prefix: str) -> float | None:
        return next((m.cpu_us_per_request for m in measurements
                     if m.target.startswith(target_prefix) and m.tool.startswith(tool_prefix)),
                    None)

    c7n_best = max((m.requests_per_second for m in measurements if m.target == "c7n-kube"),
                   default=None)
    print(f"\n{'target':26} {'tool':16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'vs raw':>7} {'vs c7n':>7} {'CPU us/req':>10} {'vs raw CPU':>10}")
    rows = []
    for m in measurements:
        fixed_rate = "req/s" in m.tool
        tool_prefix = m.tool.split(" ")[0] + (" -c" if m.tool.startswith("hey -c") else "")
        raw = None if fixed_rate else rps("raw", tool_prefix)
        # c7n-kube's best figure whatever the tool (its single-threaded server can do better
        # with fewer connections): the conservative ratio for us.
        c7n = c7n_best if not fixed_rate else None
        vs_raw = m.requests_per_second / raw if raw else None
        vs_c7n = m.requests_per_second / c7n if c7n else None
        # The ratio the server's own CPU time per request gives (the ceiling's over ours):
        # what the req/s ratio would be were each server alone on a core. It hardly moves
        # with load from other processes, which on a shared machine swings req/s by half.
        raw_cpu = None if fixed_rate else cpu("raw", tool_prefix)
        vs_raw_cpu = (raw_cpu / m.cpu_us_per_request
                      if raw_cpu and m.cpu_us_per_request else None)
        rows.append({**asdict(m), "vs_raw": vs_raw, "vs_c7n": vs_c7n,
                     "vs_raw_cpu": vs_raw_cpu})
        print(f"{m.target:26} {m.tool:16} {m.requests_per_second:9.0f} {m.p50_ms:8.2f} "
              f"{m.p99_ms:8.2f} {m.errors:7d} "
              f"{'' if vs_raw is None else f'{vs_raw:.0%}':>7} "
              f"{'' if vs_c7n is None else f'{vs_c7n:.1f}x':>7} "
              f"{'' if m.cpu_us_per_request is None else f'{m.cpu_us_per_request:.0f}':>10} "
              f"{'' if vs_raw_cpu is None else f'{vs_raw_cpu:.0%}':>10}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"server-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load": os.getloadavg()},
        "settings": vars(args), "results": rows,
        "body_bytes": {"validate": VALIDATE_BODY.stat().st_size,
                       "mutate": MUTATE_BODY.stat().st_size},
    }, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
