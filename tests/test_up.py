"""`satiot up` end to end: a real process serving on IPv4 and IPv6 loopback, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.factories import PASSWORD


def _free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
        s6.bind(("::1", 0))
        port = int(s6.getsockname()[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
        s4.bind(("127.0.0.1", port))  # fails if the v4 side is taken: the test then retries
    return port


def _wait_up(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"satiot up exited early:\n{output}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def test_up_serves_console_openapi_and_metrics_on_ipv4_and_ipv6(tmp_path: Path, db_url: str):
    port = _free_port()
    env = os.environ | {
        "SATIOT_DATA_DIR": str(tmp_path),
        "SATIOT_DATABASE_URL": db_url,
        "SATIOT_ADMIN_PASSWORD": PASSWORD,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from satiot.cli import main; main()", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_up(f"http://127.0.0.1:{port}/healthz", proc)
        for host in ("127.0.0.1", "[::1]"):
            base = f"http://{host}:{port}"
            login = httpx.get(f"{base}/login")
            assert login.status_code == 200 and "<form" in login.text
            assert 'name="password"' in login.text
            spec = httpx.get(f"{base}/openapi.json")
            assert spec.status_code == 200 and "/api/v1/users" in spec.json()["paths"]
            metrics = httpx.get(f"{base}/metrics")
            assert metrics.status_code == 200
            assert "satiot_http_requests_total" in metrics.text
            token = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
            )
            assert token.status_code == 200, token.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise AssertionError(f"satiot up did not stop on Ctrl-C:\n{output}") from None
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output and f"http://[::1]:{port}/" in output
    assert "satiot stopped" in output


def _uplinks_in(db_url: str) -> list[str]:
    """DevEUIs of stored uplinks, read straight from the database the process writes."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT dev_eui FROM uplinks LIMIT 5")).scalars())
    finally:
        engine.dispose()


def _active_subscriptions(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            sql = "SELECT count(*) FROM subscriptions WHERE status = 'active'"
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_up_runs_the_twin_and_its_messages_arrive_through_the_api(tmp_path: Path, db_url: str):
    port = _free_port()
    env = os.environ | {
        "SATIOT_DATA_DIR": str(tmp_path),
        "SATIOT_DATABASE_URL": db_url,
        "SATIOT_ADMIN_PASSWORD": PASSWORD,
        "SATIOT_TWIN_SPEED": "600",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from satiot.cli import main; main()", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(f"{base}/healthz", proc)
        # Provisioning 10,000 devices, then the first satellite passes over a ground station.
        deadline = time.monotonic() + 180
        found: list[str] = []
        while not found and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1.0)
            found = _uplinks_in(db_url)
        assert found, "no uplink arrived from the twin's ground stations"
        # Speed is measured elsewhere (benchmarks); here the server only has to answer while
        # the twin, rating and the demo customer's activations all write.
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": "admin", "password": PASSWORD},
            timeout=30,
        ).json()["access_token"]
        pulled = httpx.get(
            f"{base}/api/v1/devices/{found[0]}/uplinks",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["items"], "the pull API shows no message of a device with uplinks"
        # The demo customer is onboarded and its terminals are being activated meanwhile.
        while not _active_subscriptions(db_url) and time.monotonic() < deadline:
            time.sleep(1.0)
        assert _active_subscriptions(db_url), "no terminal of the demo customer was activated"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise AssertionError(f"satiot up did not stop on Ctrl-C:\n{output}") from None
    assert proc.returncode == 0, output
    assert "digital twin: scenario tianqi-like at 600× real time" in output
    assert "satiot stopped" in output
    assert "Traceback" not in output, output
    assert "sk_" not in output  # the stations' keys are never printed


def test_up_no_twin_runs_no_simulated_traffic(tmp_path: Path, db_url: str):
    port = _free_port()
    env = os.environ | {
        "SATIOT_DATA_DIR": str(tmp_path),
        "SATIOT_DATABASE_URL": db_url,
        "SATIOT_ADMIN_PASSWORD": PASSWORD,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from satiot.cli import main; main()", "up", "--port", str(port),
         "--no-twin", "--host6", ""],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        _wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "digital twin: off" in output and "live twin" not in output
    assert "platform services: audit-verifier, db-statistics" in output
