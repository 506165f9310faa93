"""The identification-node client against a real local HTTP node: codes, retries, batches."""

from __future__ import annotations

import socket

import pytest

from satiot.core.config import Settings
from satiot.oss.handle_client import (
    MAX_BATCH,
    HandleNodeClient,
    IdentifierNodeAuthFailed,
    IdentifierNodeUnavailable,
    InvalidHandleValue,
    NodeConfig,
    register_at_node,
    register_pending,
)
from satiot.oss.identifiers import (
    HandleExists,
    HandleNotFound,
    InvalidHandle,
    create_handle,
    update_handle,
)
from satiot.oss.models import Handle
from tests.oss.fake_node import FakeNode
from tests.oss.helpers import PREFIX, record

H = "88.608.8899/META_zj02"
VALUES = [{"index": 1, "type": "URL", "data": {"format": "string", "value": "https://x.cn"}}]


@pytest.fixture
def node():
    with FakeNode() as n:
        yield n


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(node, sleeps):
    config = NodeConfig(base_url=node.url, token=node.token, max_attempts=3, backoff_s=0.5)
    with HandleNodeClient(config, sleep=sleeps.append) as c:
        yield c


def test_put_get_replace_delete(client, node):
    assert client.put(H, VALUES) is True
    assert client.put(H, VALUES) is False  # replaced
    assert client.get(H) == VALUES
    client.delete(H)
    assert H not in node.records
    assert ("PUT", "/api/handles/88.608.8899/META_zj02") in node.requests


@pytest.mark.parametrize(
    ("call", "error", "code"),
    [
        (lambda c: c.get("88.608.8899/none"), HandleNotFound, 100),
        (lambda c: c.delete("88.608.8899/none"), HandleNotFound, 100),
        (lambda c: c.put("99.1/x", VALUES), InvalidHandle, 102),
        (lambda c: c.put(H, [{"index": 1}]), InvalidHandleValue, 202),
    ],
)
def test_response_codes_map_to_domain_errors(client, call, error, code):
    with pytest.raises(error) as info:
        call(client)
    assert info.value.extensions["node_code"] == code


def test_create_only_refuses_an_existing_handle(client):
    client.put(H, VALUES, overwrite=False)
    with pytest.raises(HandleExists) as info:
        client.put(H, VALUES, overwrite=False)
    assert info.value.extensions["node_code"] == 101


def test_a_wrong_token_is_an_authentication_error(node):
    with (
        HandleNodeClient(NodeConfig(base_url=node.url, token="wrong")) as c,
        pytest.raises(IdentifierNodeAuthFailed) as info,
    ):
        c.put(H, VALUES)
    assert info.value.extensions["node_code"] == 402


def test_server_errors_are_retried_with_backoff(client, node, sleeps):
    node.fail_next = 2
    assert client.put(H, VALUES) is True
    assert sleeps == [0.5, 1.0]


def test_dropped_connections_are_retried(client, node, sleeps):
    node.drop_next = 1
    client.put(H, VALUES)
    assert sleeps == [0.5] and H in node.records


def test_a_node_that_keeps_failing_is_unavailable(client, node, sleeps):
    node.fail_next = 10
    with pytest.raises(IdentifierNodeUnavailable, match="failed 3 times"):
        client.put(H, VALUES)
    assert len(sleeps) == 2 and H not in node.records


def test_an_unreachable_node_is_unavailable(sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = NodeConfig(base_url=f"http://127.0.0.1:{port}", max_attempts=2, backoff_s=0.01)
    with (
        HandleNodeClient(config, sleep=sleeps.append) as c,
        pytest.raises(IdentifierNodeUnavailable),
    ):
        c.get(H)


def test_register_many_one_by_one_reports_failures_by_index(client, node):
    records = [(f"88.608.8899/d{i}", VALUES) for i in range(3)] + [("bad", VALUES)]
    result = client.register_many(records)
    assert result.registered == ["88.608.8899/d0", "88.608.8899/d1", "88.608.8899/d2"]
    assert [(f.index, f.handle, f.code) for f in result.failed] == [(3, "bad", 102)]


def test_register_many_batches_at_most_2000(node):
    config = NodeConfig(base_url=node.url, token=node.token, batch_path="/api/batch")
    records = [(f"88.608.8899/d{i}", VALUES) for i in range(MAX_BATCH * 2 + 500)]
    records[2100] = ("88.608.8899/bad", [{"index": 1}])
    with HandleNodeClient(config) as c:
        result = c.register_many(records)
    assert node.batch_sizes == [2000, 2000, 500]
    assert len(result.registered) == len(records) - 1
    assert [(f.index, f.code) for f in result.failed] == [(2100, 202)]


def test_config_from_settings():
    assert NodeConfig.from_settings(Settings()) is None
    config = NodeConfig.from_settings(
        Settings(handle_node_url="https://n.cn", handle_node_token="t")
    )
    assert config == NodeConfig(base_url="https://n.cn", token="t")


def test_stored_handles_are_registered_and_kept_in_step(db, world, clock, client, node):
    with db.write() as s:
        for i in range(3):
            create_handle(
                s,
                world.system,
                prefix=PREFIX,
                record=record(
                    f"141012340000{i}",
                    terminal_id=["354178036859789", "490154203237518", "356938035643809"][i],
                ),
                tenant_id=None,
                at=clock.now(),
            )
    with db.write() as s:
        result = register_pending(s, client, at=clock.now())
    assert len(result.registered) == 3 and len(node.records) == 3
    some = result.registered[0]
    values = {v["type"]: v for v in node.records[some]}
    assert (
        values["MODEL"]["permissions"] == "1110" and values["CREDIT_CODE"]["permissions"] == "1100"
    )
    with db.write() as s:
        assert register_pending(s, client, at=clock.now()).registered == []
    clock.advance(60)
    with db.write() as s:
        update_handle(s, world.system, some, at=clock.now(), status="suspended")
    with db.write() as s:
        assert register_pending(s, client, at=clock.now()).registered == [some]
    assert {v["type"]: v for v in node.records[some]}["STATUS"]["data"]["value"] == "suspended"

    node.fail_next = 10
    clock.advance(60)
    with db.write() as s:
        row = s.query(Handle).filter_by(handle=some).one()
        row.updated_at = clock.now()
        with pytest.raises(IdentifierNodeUnavailable):
            register_at_node(s, client, row, at=clock.now())
        assert row.node_error and "failed 3 times" in row.node_error
