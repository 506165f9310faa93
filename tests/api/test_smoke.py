def test_me(client, world):
    r = client.get("/api/v1/me", headers=world.admin_headers())
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "operator-admin"
