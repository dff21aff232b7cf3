"""First contact with the API from a program: ``/`` and ``/v1`` answer with what to do next."""

from __future__ import annotations

from tests.conftest import Api


def _check_index(doc: dict[str, object]) -> None:
    assert doc["openapi"] == "/openapi.json" and doc["docs"] == "/docs" and doc["page"] == "/"
    routes = {(r["method"], r["path"]) for r in doc["routes"]}  # type: ignore[attr-defined]
    assert ("POST", "/v1/account-requests") in routes
    assert ("POST", "/v1/account-requests/{request_id}/approve") in routes
    assert doc["auth_mode"] == "dev"
    assert "vend token" in str(doc["how_to_get_a_token"])


def test_v1_lists_the_routes_and_how_to_get_a_token(api: Api) -> None:
    got = api.call("GET", "/v1", None)
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    _check_index(got.json())


def test_root_answers_json_to_a_program_and_the_page_to_a_browser(api: Api) -> None:
    program = api.call("GET", "/", None, headers={"Accept": "application/json"})
    assert program.status_code == 200
    assert program.headers["content-type"] == "application/json"
    _check_index(program.json())

    browser = api.call(
        "GET", "/", None, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert browser.headers["content-type"].startswith("text/html")
    assert "<html" in browser.text.lower()
