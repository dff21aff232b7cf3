// Sandbox leases on the web page: "My sandboxes" (ask for one, see time and budget left, end
// it) and, for operators, the pools (accounts by state, quarantined ones with what cleaning
// left behind, retry and retire). The API decides who may do what; the page offers what the
// lease's state allows.
import { api, badge, field, h, has, landingZone, showFieldErrors, state, toast, when } from "/static/ui.js";

const LIVE = new Set(["pending_approval", "waiting_for_account", "granting", "active", "frozen", "ending"]);

function left(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const hours = seconds / 3600;
  return hours >= 48 ? `${(hours / 24).toFixed(1)} days` : `${hours.toFixed(1)} h`;
}

function budget(l) {
  if (l.spent_usd === null || l.spent_usd === undefined) return `${l.budget_usd} USD`;
  return `${l.spent_usd.toFixed(2)} of ${l.budget_usd} USD (${Math.max(0, l.budget_usd - l.spent_usd).toFixed(2)} left)`;
}

function rerender() {
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

async function act(path, body, done) {
  try {
    await api("POST", path, body);
    toast(done);
    rerender();
  } catch (err) { toast(err.message); }
}

function newLeaseForm(templates) {
  const select = h("select", {}, templates.map((t) => h("option", { value: t.name },
    `${t.name} — ${t.description || t.organizational_unit} (up to ${t.max_budget_usd} USD` +
    `${t.approvals_required ? ", needs approval" : ""})`)));
  const why = h("textarea", { rows: "2", required: true });
  const form = h("form", { id: "lease-form", class: "panel" },
    h("h3", {}, "Ask for a sandbox"),
    field("l-template", "Template", select),
    field("l-why", "What is it for?", why),
    h("p", { class: "form-error", id: "lease-form-error", role: "alert", hidden: true }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Lease a sandbox")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const lease = await api("POST", "/v1/leases", { template: select.value, justification: why.value });
      toast("Asked: your sandbox is being granted");
      location.hash = `#/leases/${lease.lease_id}`;
    } catch (err) {
      const rest = err.problem ? showFieldErrors(form, err.problem, { template: "l-template", justification: "l-why" }) : [];
      const box = document.getElementById("lease-form-error");
      box.textContent = rest.length ? rest.join("; ") : err.message;
      box.hidden = false;
    }
  });
  return form;
}

export async function leasesView() {
  const [page, lz] = await Promise.all([api("GET", "/v1/leases?limit=50"), landingZone()]);
  const mine = page.items.filter((l) => l.holder === state.me.sub);
  const live = mine.some((l) => LIVE.has(l.status));
  return h("div", { "data-poll": live ? "1" : null },
    h("h2", {}, "My sandboxes"),
    h("p", { class: "muted" }, "Clean accounts lent out from a pool: usable within seconds, cleaned (never closed) when the lease ends."),
    mine.length ? h("table", { class: "responsive", id: "leases" },
      h("thead", {}, h("tr", {}, ["Lease", "Account", "Time left", "Budget", "Status", ""]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, mine.map((l) => h("tr", { "data-lease": l.lease_id },
        h("td", { "data-label": "Lease" }, h("a", { href: `#/leases/${l.lease_id}` }, l.template)),
        h("td", { "data-label": "Account" }, l.account_id || "—"),
        h("td", { "data-label": "Time left" }, left(l.time_left_seconds)),
        h("td", { "data-label": "Budget" }, budget(l)),
        h("td", { "data-label": "Status" }, badge(l.status)),
        h("td", {}, ["active", "frozen"].includes(l.status)
          ? h("button", { type: "button", class: "danger", onclick: () => act(`/v1/leases/${l.lease_id}/end`, { reason: "ended from the page" }, "Ending: access goes at once") }, "End")
          : null)))))
      : h("p", { class: "muted" }, "No sandbox yet."),
    (lz.lease_templates || []).length ? newLeaseForm(lz.lease_templates) : null);
}

export async function leaseView(id) {
  const l = await api("GET", `/v1/leases/${id}`);
  const buttons = [];
  if (["active", "frozen"].includes(l.status)) {
    buttons.push(h("button", { type: "button", class: "danger", onclick: () => act(`/v1/leases/${id}/end`, { reason: "ended from the page" }, "Ending") }, "End"));
  }
  if (l.status === "pending_approval" && has("approver") && l.holder !== state.me.sub && !l.approvals.includes(state.me.sub)) {
    buttons.push(h("button", { type: "button", onclick: () => act(`/v1/leases/${id}/approve`, { reason: "" }, "Approved") }, "Approve"));
    buttons.push(h("button", { type: "button", class: "secondary", onclick: () => act(`/v1/leases/${id}/reject`, { reason: "" }, "Rejected") }, "Reject"));
  }
  return h("div", { "data-lease": l.lease_id, "data-poll": LIVE.has(l.status) ? "1" : null },
    h("h2", {}, `Sandbox lease ${l.template} `, h("span", { id: "lease-status", role: "status" }, badge(l.status))),
    h("div", { class: "panel" }, h("dl", { class: "kv", id: "lease-facts" },
      h("dt", {}, "Account"), h("dd", {}, l.account_id || "waiting for one from the pool"),
      l.sign_in_url ? [h("dt", {}, "Sign in"), h("dd", {}, h("a", { href: l.sign_in_url, rel: "noopener" }, "IAM Identity Center"))] : null,
      h("dt", {}, "Holder"), h("dd", {}, l.for_group ? `${l.holder} for ${l.for_group}` : l.holder),
      h("dt", {}, "Time left"), h("dd", { id: "lease-left" }, left(l.time_left_seconds)),
      h("dt", {}, "Ends"), h("dd", {}, when(l.ends_at) || "—"),
      h("dt", {}, "Budget"), h("dd", { id: "lease-budget" }, budget(l)),
      h("dt", {}, "Cost Explorer"), h("dd", {}, l.cost_explorer_usd === null ? "—" : `${l.cost_explorer_usd.toFixed(2)} USD (a day behind)`),
      h("dt", {}, "Thresholds reached"), h("dd", {}, l.thresholds_reached.join(", ") || "none"))),
    buttons.length ? h("div", { class: "actions", id: "lease-actions" }, buttons) : null,
    h("h3", {}, "History"),
    h("ul", { id: "lease-history" }, l.events.map((e) => h("li", {},
      `${when(e.at)} · ${e.by} · ${e.action}`, e.detail ? ` · ${e.detail}` : ""))));
}

export async function poolsView() {
  const page = await api("GET", "/v1/pools");
  return h("div", { "data-poll": "1" },
    h("h2", {}, "Lease pools"),
    page.items.map((p) => h("section", { class: "panel", "data-pool": p.organizational_unit },
      h("h3", {}, `${p.organizational_unit} `, h("span", { class: "muted" }, `keeps ${p.min_available} available, at most ${p.max_accounts}`)),
      h("p", { class: "pool-counts" }, Object.entries(p.counts).map(([k, v]) => `${k} ${v}`).join(" · ")),
      p.recent_failures.length ? h("p", { class: "error-box" }, `Recent vend failures: ${p.recent_failures.join("; ")}`) : null,
      h("table", { class: "responsive" },
        h("thead", {}, h("tr", {}, ["Account", "State", "Since", "Cleanings", "Left behind", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, p.accounts.map((a) => h("tr", { "data-account": a.account_id },
          h("td", { "data-label": "Account" }, a.account_id),
          h("td", { "data-label": "State" }, badge(a.state)),
          h("td", { "data-label": "Since" }, when(a.since)),
          h("td", { "data-label": "Cleanings" }, String(a.cleanings)),
          h("td", { "data-label": "Left behind" }, a.left_behind.length
            ? h("ul", { class: "plain" }, a.left_behind.map((x) => h("li", {}, x))) : (a.reason || "")),
          h("td", {}, a.state === "quarantined" ? [
            h("button", { type: "button", onclick: () => act(`/v1/pools/${p.organizational_unit}/accounts/${a.account_id}/retry`, { reason: "retried from the page" }, "Cleaning again") }, "Retry"),
            h("button", { type: "button", class: "danger", onclick: () => act(`/v1/pools/${p.organizational_unit}/accounts/${a.account_id}/retire`, { reason: "retired from the page" }, "Retired") }, "Retire")] : null))))))));
}
