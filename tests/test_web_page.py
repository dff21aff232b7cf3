"""The web page, driven in headless Chromium (Debian's package; Playwright without a browser
download): a requester files and follows a request, two approvers approve it, an approver cannot
approve their own, an operator retries a failed step. Screenshots of each role's main view go to
test-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.stack import EmbeddedStack
from tests.conftest import ARTIFACTS, Api, Sandbox, parked_request
from tests.waiting import eventually, wait_until

Body = Callable[..., dict[str, Any]]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ARTIFACTS / "screenshots"

if CHROMIUM is None:
    pytest.skip(
        "\n\n*** Chromium is not installed: the web page tests are SKIPPED. ***\n"
        "*** `make test` installs it with apt (package chromium); install it to run them. ***\n",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def open_as(browser: Browser, stack: EmbeddedStack) -> Iterator[Callable[..., Page]]:
    contexts = []

    def open_page(user: str, width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(stack.config.api_url + "/")
        page.get_by_role("button", name=f"{user} (").click()
        expect(page.locator("#who-name")).to_contain_text(user)
        page.errors = errors  # type: ignore[attr-defined]
        return page

    yield open_page
    for context in contexts:
        context.close()


def _status(page: Page) -> Any:
    return page.locator("#status")


def test_request_from_form_to_completed_with_two_approvals(
    open_as: Callable[..., Page], api: Api
) -> None:
    alice = open_as("alice")
    alice.get_by_role("link", name="New request").click()
    name = f"web-{uuid.uuid4().hex[:8]}"
    alice.get_by_label("Account name").fill(name)
    alice.get_by_label("Account root email").fill(f"aws+{name}@gmail.com")  # not allowed
    alice.get_by_label("Organizational unit").select_option("Sandbox")
    # The guardrails the landing zone declares for the OU (vend doctor checks them in force).
    expect(alice.locator("#ou-guardrails")).to_contain_text("AWS-GR_RESTRICT_ROOT_USER_ACCESS_KEYS")
    expect(alice.locator("#ou-guardrails")).to_contain_text("SCP vend-deny-leave-organization")
    alice.get_by_label("Organizational unit").select_option("Workloads/Prod")
    # What the OU implies shows before anyone submits.
    expect(alice.locator("#ou-implies")).to_contain_text("2, within")
    expect(alice.locator("#ou-implies")).to_contain_text("audit-role")
    alice.get_by_label("Environment").select_option("prod")
    alice.get_by_label("Cost center").fill("CC-42")
    alice.get_by_label("Billing customer id").fill("cust-001")
    alice.get_by_label("Justification").fill("payments service, production")
    alice.get_by_label("micro to medium").fill("3")
    alice.get_by_label("Protect this account").check()
    alice.get_by_role("button", name="Request the account").click()
    # The API's RFC 9457 error lands next to the field it is about.
    email_error = alice.locator("#f-email-error")
    expect(email_error).to_be_visible()
    expect(email_error).to_contain_text("domain")
    expect(alice.get_by_label("Account root email")).to_have_attribute("aria-invalid", "true")
    alice.screenshot(path=str(SHOTS / "requester-form-error.png"), full_page=True)
    alice.get_by_label("Account root email").fill(f"aws+{name}@example.com")
    alice.get_by_role("button", name="Request the account").click()
    expect(_status(alice)).to_contain_text("pending approval")
    request_id = alice.url.rsplit("/", 1)[-1]
    expect(alice.get_by_role("button", name="Approve")).to_have_count(0)  # not for a requester

    for approver in ("bob", "dave"):
        page = open_as(approver)
        card = page.locator(f"section[data-request='{request_id}']")
        expect(card).to_be_visible()
        expect(card).to_contain_text("cust-001")  # the preview: billing customer, cost
        # The sheet's figures: Workload Security 5 % off through Sunny Pay, the managed
        # service's monthly and initial fees as they are.
        cost = card.locator("[data-cost]").first
        expect(cost).to_contain_text("3 instances: Workload Security $22.89/month")
        expect(cost).to_contain_text("Managed operations ¥35,000/month, ¥100,000 initial fee")
        if approver == "bob":
            page.screenshot(path=str(SHOTS / "approver-queue.png"), full_page=True)
        card.get_by_label("Comment").fill(f"fine by {approver}")
        card.get_by_role("button", name="Approve").click()
        expect(page.locator("#toast")).to_contain_text("Approved")

    # Alice's page follows the request without a reload.
    expect(_status(alice)).to_contain_text("completed", timeout=90_000)
    expect(alice.locator("tr[data-step='apply_baselines']")).to_contain_text("succeeded")
    alice.screenshot(path=str(SHOTS / "requester-completed.png"), full_page=True)
    state = api.get("alice", request_id).json()
    assert [a["by"] for a in state["approvals"]] == ["bob", "dave"]
    assert alice.errors == []  # type: ignore[attr-defined]


def test_an_approver_cannot_approve_their_own_request(
    open_as: Callable[..., Page], api: Api, new_body: Body
) -> None:
    req = api.create("erin", new_body(organizational_unit="Workloads/SDLC")).json()
    erin = open_as("erin")  # requester and approver
    erin.get_by_role("link", name="Approvals").click()
    expect(erin.get_by_role("heading", name="Waiting for your approval")).to_be_visible()
    expect(erin.locator(f"section[data-request='{req['id']}']")).to_have_count(0)
    erin.goto(erin.url.split("#")[0] + f"#/requests/{req['id']}")
    expect(_status(erin)).to_contain_text("pending approval")
    expect(erin.get_by_role("button", name="Approve")).to_have_count(0)
    # And the API says no, whatever a page shows.
    assert api.act("erin", req["id"], "approve", {}).status_code == 403
    api.act("erin", req["id"], "cancel", {"reason": "test done"})


def test_an_operator_retries_a_failed_step_from_the_page(
    open_as: Callable[..., Page], api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = parked_request(api, sandbox, body)

    carol = open_as("carol")
    card = carol.locator(f"section[data-request='{req['id']}']")
    expect(card).to_contain_text("ACCOUNT_LIMIT_EXCEEDED")
    carol.screenshot(path=str(SHOTS / "operator-queue.png"), full_page=True)
    card.get_by_role("link", name=body["account_name"]).click()
    expect(carol.get_by_role("link", name="Open in the Temporal UI")).to_be_visible()
    carol.get_by_label("Reason").fill("quota raised")
    carol.get_by_role("button", name="Retry step").click()
    expect(_status(carol)).to_contain_text("completed", timeout=90_000)
    events = api.call("GET", f"/v1/account-requests/{req['id']}/events", "carol").json()
    assert ("carol", "retry") in [(e["actor"], e["action"]) for e in events["items"]]


def _listed(api: Api, account_id: str) -> None:
    """Visibility is eventually consistent: wait until the inventory lists the account."""
    eventually(
        lambda: api.call("GET", "/v1/accounts", "alice", params={"limit": 100}).json()["items"],
        lambda items: account_id in {a["account_id"] for a in items},
        f"account {account_id} listed",
        timeout=20,
    )


def test_an_owner_previews_and_decommissions_an_account_from_the_page(
    open_as: Callable[..., Page], api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    vend = api.wait_for(api.create("alice", body).json()["id"], {"completed"}, timeout=120)
    account_id, name = vend["account_id"], body["account_name"]
    _listed(api, account_id)

    alice = open_as("alice")
    alice.get_by_role("link", name="Accounts").click()
    alice.locator(f"tr[data-account='{account_id}']").get_by_role("link", name=name).click()
    expect(alice.locator("#account-status")).to_contain_text("active")
    expect(alice.locator("#account-requests")).to_contain_text(vend["id"])

    # An update's preview: only the steps a rename needs.
    update = alice.locator("#update-form")
    update.get_by_label("Account name").fill(f"{name}-x")
    update.get_by_label("Why").fill("clearer name")
    update.get_by_role("button", name="Preview the change").click()
    expect(update.locator("[data-plan-step='rename_account']")).to_contain_text("runs")
    expect(update.locator("[data-plan-step='move_to_ou']")).to_contain_text("skipped")

    # The decommission: the typed name is the confirmation.
    form = alice.locator("#decommission-form")
    submit = form.get_by_role("button", name="Decommission the account")
    form.get_by_label("Why").fill("project ended")
    confirm = form.get_by_label(f"Type {name} to confirm")
    confirm.fill(name[:-1])
    expect(submit).to_be_disabled()
    form.get_by_role("button", name="Preview the decommission").click()
    expect(form.locator("#d-confirm-error")).to_contain_text("type the account's name")
    confirm.fill(name)
    expect(submit).to_be_enabled()
    form.get_by_role("button", name="Preview the decommission").click()
    expect(form.locator("[data-plan-step='close_account']")).to_contain_text("runs")
    expect(form.locator("[data-plan-step='close_account']")).to_contain_text("aws account")
    expect(form.locator("[data-plan-step='remove_workload_security']")).to_contain_text("skipped")
    alice.screenshot(path=str(SHOTS / "owner-decommission-preview.png"), full_page=True)
    submit.click()
    expect(_status(alice)).to_contain_text("pending approval")
    change_id = alice.url.rsplit("/", 1)[-1]
    assert api.get("alice", change_id).json()["kind"] == "decommission"

    # The approver sees what it will do on the card, and approves.
    bob = open_as("bob")
    card = bob.locator(f"section[data-request='{change_id}']")
    expect(card).to_contain_text("decommission")
    expect(card.locator("[data-plan-step='quarantine']")).to_contain_text("runs")
    bob.screenshot(path=str(SHOTS / "approver-decommission.png"), full_page=True)
    card.get_by_role("button", name="Approve").click()
    expect(bob.locator("#toast")).to_contain_text("Approved")

    expect(_status(alice)).to_contain_text("completed", timeout=120_000)
    expect(alice.locator("tr[data-step='close_account']")).to_contain_text("succeeded")
    alice.get_by_role("link", name=account_id).click()
    expect(alice.locator("#account-status")).to_contain_text("closed", timeout=30_000)
    expect(alice.locator("#account-ou")).to_contain_text("Suspended")
    expect(alice.locator("#decommission-form")).to_have_count(0)  # nothing more to ask
    alice.screenshot(path=str(SHOTS / "owner-account-closed.png"), full_page=True)
    assert sandbox.org.describe_account(AccountId=account_id)["Account"]["State"] == "SUSPENDED"
    assert alice.errors == [] and bob.errors == []  # type: ignore[attr-defined]


def test_the_form_shows_the_ous_settings_and_places_a_budget_refusal(
    open_as: Callable[..., Page], api: Api
) -> None:
    alice = open_as("alice")
    alice.get_by_role("link", name="New request").click()
    name = f"web-{uuid.uuid4().hex[:8]}"
    alice.get_by_label("Account name").fill(name)
    expect(alice.get_by_label("Owner group")).to_be_hidden()
    alice.get_by_label("Organizational unit").select_option("Experiments/Settings")
    implies = alice.locator("#ou-implies")
    expect(implies.locator("[data-setting='Budget']")).to_contain_text("1000-50000 USD a month")
    expect(implies.locator("[data-setting='Identity Center']")).to_contain_text("required")
    expect(implies.locator("[data-setting='Opt-in regions']")).to_contain_text("eu-south-1")
    alice.get_by_label("Environment").select_option("dev")
    alice.get_by_label("Owner group").fill("team-payments")
    alice.get_by_label("Monthly budget (USD)").fill("60000")
    alice.get_by_label("Cost center").fill("CC-42")
    alice.get_by_label("Billing customer id").fill("cust-001")
    alice.get_by_label("Justification").fill("settings on the page")
    alice.get_by_role("button", name="Request the account").click()  # no email: the template's
    expect(alice.locator("#f-budget-error")).to_contain_text("1000-50000")
    alice.screenshot(path=str(SHOTS / "requester-settings.png"), full_page=True)
    alice.get_by_label("Monthly budget (USD)").fill("5000")
    alice.get_by_role("button", name="Request the account").click()
    expect(_status(alice)).to_contain_text("completed", timeout=120_000)
    state = api.get("alice", alice.url.rsplit("/", 1)[-1]).json()
    assert state["request"]["account_email"] == f"aws+{name}@example.com"
    assert state["request"]["budget"] == {"monthly_usd": 5000}
    assert alice.errors == []  # type: ignore[attr-defined]


def test_the_page_works_at_phone_width_and_labels_every_field(
    open_as: Callable[..., Page],
) -> None:
    alice = open_as("alice", width=375, height=812)
    alice.get_by_role("link", name="New request").click()
    expect(alice.get_by_label("Account name")).to_be_visible()
    unlabelled = alice.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
              .filter((el) => el.labels === null || el.labels.length === 0)
              .map((el) => el.id || el.name || el.outerHTML.slice(0, 60))"""
    )
    assert unlabelled == []
    overflow = alice.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px of horizontal scrolling at phone width"
    alice.get_by_role("link", name="My requests").click()
    alice.screenshot(path=str(SHOTS / "requester-phone.png"), full_page=True)
    # Keyboard: from a fresh load, Tab reaches the skip link first, then the navigation.
    alice.reload()
    expect(alice.locator("#who-name")).to_contain_text("alice")  # still signed in (session)
    alice.keyboard.press("Tab")
    assert alice.evaluate("() => document.activeElement.textContent") == "Skip to content"
    alice.keyboard.press("Enter")
    assert alice.evaluate("() => document.activeElement.id") == "main"


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_the_api_documentation_works_without_internet(
    browser: Browser, stack: EmbeddedStack, page_path: str
) -> None:
    """Every asset comes from the API itself (no CDN), under a CSP; the operations are listed.
    Each page is screenshotted to test-artifacts/screenshots/."""
    context = browser.new_context()
    page = context.new_page()
    elsewhere: list[str] = []
    violations: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(stack.config.api_url) else elsewhere.append(r.url),
    )
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    response = page.goto(stack.config.api_url + page_path)
    assert (
        response is not None and "default-src 'self'" in response.headers["content-security-policy"]
    )
    expect(page.get_by_text("/v1/account-requests/{request_id}/approve").first).to_be_visible(
        timeout=20_000
    )
    page.screenshot(path=str(SHOTS / f"api{page_path.replace('/', '-')}.png"))
    context.close()
    # ReDoc's footer asks for Redocly's logo from their CDN: the CSP blocks it, so nothing
    # leaves the machine and the page does not depend on it. Anything else elsewhere fails.
    outside = [u for u in elsewhere if not u.startswith(f"blob:{stack.config.api_url}/")]
    assert all(any(u in v and "blocked" in v for v in violations) for u in outside), outside
    assert outside == [] or page_path == "/redoc"


def test_an_operator_sees_drift_repairs_it_and_follows_a_rollout_on_the_page(
    open_as: Callable[..., Page], api: Api, sandbox: Sandbox, new_body: Body
) -> None:
    body = new_body(organizational_unit="Experiments/Full", environment="dev")
    vend = api.wait_for(api.create("alice", body).json()["id"], {"completed"}, timeout=180)
    account_id = vend["account_id"]
    _listed(api, account_id)
    sandbox.client("cloudformation").delete_stack_instances(
        StackSetName="vend-audit-role",
        Accounts=[account_id],
        Regions=["us-east-1"],
        RetainStacks=False,
    )
    wait_until(
        lambda: not sandbox.stack_instances("vend-audit-role", account_id),
        "the stack instance deleted",
    )
    check = api.call("POST", "/v1/drift-checks", "carol", json={"account_ids": [account_id]})
    assert check.status_code == 201, check.text
    wait_until(
        lambda: bool(api.call("GET", f"/v1/accounts/{account_id}", "carol").json()["drift"]),
        "the drift reported on the account",
    )

    carol = open_as("carol")
    carol.goto(carol.url.split("#")[0] + "#/accounts?drifted=true")
    row = carol.locator(f"tr[data-account='{account_id}']")
    expect(row).to_contain_text("drifted")
    row.get_by_role("link").first.click()
    drifted = carol.locator("[data-drift='stack_instance:vend-audit-role/us-east-1']")
    expect(drifted).to_contain_text("missing")
    carol.screenshot(path=str(SHOTS / "operator-drift.png"))
    carol.get_by_role("button", name="Repair").click()
    expect(carol.locator("#status")).to_contain_text("completed", timeout=60_000)
    assert [i["Status"] for i in sandbox.stack_instances("vend-audit-role", account_id)] == [
        "CURRENT"
    ]

    # A rollout's page: progress in accounts, and its waves.
    made = api.call(
        "POST",
        "/v1/rollouts",
        "carol",
        json={
            "baseline": "rollout-probe",
            "reason": "page test",
            "organizational_units": ["Experiments/Rollout"],  # no approval needed there
            # The StackSet's template as it is (another test may have changed it): a new one
            # would reach RolloutProd's accounts too and wait for its approval.
            "template_body": sandbox.client("cloudformation").describe_stack_set(
                StackSetName="vend-rollout-probe"
            )["StackSet"]["TemplateBody"],
        },
    )
    assert made.status_code == 201, made.text
    carol.get_by_role("link", name="Rollouts").click()
    carol.locator(f"tr[data-rollout='{made.json()['rollout_id']}'] a").click()
    expect(carol.locator("#rollout-counts")).to_contain_text("left of")
    expect(carol.locator("#rollout-status")).to_contain_text("completed", timeout=120_000)
    carol.screenshot(path=str(SHOTS / "operator-rollout.png"))
    assert carol.errors == []  # type: ignore[attr-defined]


def test_a_sandbox_leased_and_ended_from_the_page_and_the_pool_seen_by_an_operator(
    open_as: Callable[..., Page], api: Api
) -> None:
    eventually(
        lambda: api.call("GET", "/v1/pools", "carol").json()["items"],
        lambda pools: any(p["counts"].get("available", 0) >= 1 for p in pools),
        "a pool account ready",
        timeout=300,
    )
    alice = open_as("alice")
    alice.get_by_role("link", name="My sandboxes").click()
    form = alice.locator("#lease-form")
    form.get_by_label("What is it for?").fill("trying the page")
    form.get_by_role("button", name="Lease a sandbox").click()
    expect(alice.locator("#lease-status")).to_contain_text("active", timeout=60_000)
    account = alice.locator("#lease-facts dd").first.inner_text()
    assert account.isdigit() and len(account) == 12, account
    alice.screenshot(path=str(SHOTS / "lease.png"))
    alice.get_by_role("button", name="End").click()
    expect(alice.locator("#lease-status")).to_contain_text("ended", timeout=60_000)
    assert alice.errors == []  # type: ignore[attr-defined]

    carol = open_as("carol")
    carol.get_by_role("link", name="Pools").click()
    expect(carol.locator(f"tr[data-account='{account}']")).to_be_visible()
    carol.screenshot(path=str(SHOTS / "pools.png"))
