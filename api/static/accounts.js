// The inventory on the web page: the accounts a person may see, one account with its whole
// trail, and the two changes an owner asks for (update, decommission), each previewed before
// it is filed. The API decides who may do what; the page only hides what would be refused.
import {
  api, badge, costView, field, h, has, landingZone, showFieldErrors, showProblem, state, toast,
  when,
} from "/static/ui.js";

const UPDATE_FIELD_IDS = {
  organizational_unit: "u-ou", environment: "u-env", account_name: "u-name",
  owner_email: "u-owner", cost_center: "u-cost", "billing.customer_id": "u-customer",
  billing: "u-customer", "workload_security.enabled": "u-ws", justification: "u-why",
};
const DECOMMISSION_FIELD_IDS = { justification: "d-why", confirm_account_name: "d-confirm" };

function label(step) {
  return step.replaceAll("_", " ");
}

function roughly(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  return seconds < 120 ? `about ${Math.round(seconds)} s` : `about ${Math.round(seconds / 60)} min`;
}

// What a request will do (or, kept on a request, what it said it would): shown to whoever asks
// for a change before filing it, and to approvers on the request.
export function planView(plan, title = "What this request will do") {
  if (!plan) return null;
  const cost = plan.cost_estimate;
  return h("section", { class: "panel plan", "data-plan": plan.kind, "aria-label": title },
    h("h4", {}, title),
    h("dl", { class: "kv" },
      h("dt", {}, "Kind"), h("dd", {}, plan.kind),
      h("dt", {}, "Approvals"), h("dd", {}, plan.approvals_required === 0
        ? "none: it starts at once" : String(plan.approvals_required)),
      h("dt", {}, "Takes"), h("dd", {}, `${roughly(plan.eta_seconds)} once approved`),
      cost ? [h("dt", {}, "Cost estimate"), h("dd", {}, costView(cost))] : null),
    h("table", { class: "responsive" },
      h("thead", {}, h("tr", {}, ["Step", "Runs", "Touches"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, plan.steps.map((s) => h("tr", { "data-plan-step": s.name, class: s.runs ? null : "muted" },
        h("td", { "data-label": "Step" }, label(s.name)),
        h("td", { "data-label": "Runs" }, s.runs ? "runs" : `skipped: ${s.reason || ""}`),
        h("td", { "data-label": "Touches" }, s.resources.length
          ? h("ul", { class: "plain" }, s.resources.map((r) => h("li", {}, `${r.action} ${r.kind} ${r.name}`)))
          : ""))))));
}

// ------------------------------------------------------------------ the list
export async function accountsView() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const query = new URLSearchParams({ limit: "100" });
  for (const key of ["status", "organizational_unit", "drifted"]) if (params.get(key)) query.set(key, params.get(key));
  const page = await api("GET", `/v1/accounts?${query}`);
  const status = h("select", { id: "a-status" },
    ["", "active", "changing", "decommissioning", "closed"].map((s) =>
      h("option", { value: s, selected: s === (params.get("status") || "") }, s || "any status")));
  const drifted = h("input", { id: "a-drifted", type: "checkbox", checked: params.get("drifted") === "true" });
  const go = () => {
    const q = new URLSearchParams();
    if (status.value) q.set("status", status.value);
    if (drifted.checked) q.set("drifted", "true");
    location.hash = q.toString() ? `#/accounts?${q}` : "#/accounts";
  };
  status.addEventListener("change", go);
  drifted.addEventListener("change", go);
  return h("div", {},
    h("div", { class: "actions" }, h("h2", {}, "Accounts"),
      h("div", {}, h("label", { for: "a-status" }, "Show"), status,
        h("label", { for: "a-drifted" }, drifted, " drifted only"))),
    page.items.length ? h("table", { class: "responsive", id: "accounts" },
      h("caption", { class: "muted" }, has("approver") || has("operator")
        ? "Every managed account" : "The accounts you requested or own"),
      h("thead", {}, h("tr", {}, ["Account", "Id", "OU", "Environment", "Status", "Drift"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, page.items.map((a) => h("tr", { "data-account": a.account_id },
        h("td", { "data-label": "Account" }, h("a", { href: `#/accounts/${a.account_id}` }, a.account_name || a.account_id)),
        h("td", { "data-label": "Id" }, a.account_id),
        h("td", { "data-label": "OU" }, a.organizational_unit || ""),
        h("td", { "data-label": "Environment" }, a.environment || ""),
        h("td", { "data-label": "Status" }, badge(a.status)),
        h("td", { "data-label": "Drift" }, a.drifted ? badge("drifted") : a.drifted === false ? "in sync" : "not checked")))))
      : h("p", { class: "muted" }, "No managed account here yet."));
}

// ------------------------------------------------------------------ one account
function mayChange(a) {
  const me = state.me;
  // The current owner (a verified email), as the API decides: not whoever asked for it once.
  return (!!me.email && me.email.toLowerCase() === a.owner_email.toLowerCase()) || has("admin");
}

export async function accountView(id) {
  const a = await api("GET", `/v1/accounts/${id}`);
  let events = [];
  try { events = (await api("GET", `/v1/accounts/${id}/events`)).items; } catch { /* optional */ }
  const busy = Boolean(a.current_change) || a.queued_changes.length > 0;
  const ws = a.workload_security;
  const billing = a.billing;
  const forms = [];
  if (a.status === "active" && !busy && mayChange(a)) {
    forms.push(await updateForm(a), decommissionForm(a));
  } else if (busy) {
    forms.push(h("p", { class: "panel" }, "A change is under way: ",
      h("a", { href: `#/requests/${a.current_change || a.queued_changes[0]}` }, "follow it"),
      ". New changes can be asked for once it ends."));
  }
  return h("div", { "data-account": a.account_id, "data-poll": busy ? "1" : null },
    h("h2", {}, a.account_name, " ", h("span", { id: "account-status", role: "status" }, badge(a.status))),
    a.stale ? h("p", { class: "muted" }, "No worker answered: this is the last recorded state.") : null,
    h("div", { class: "panel" }, h("dl", { class: "kv" },
      h("dt", {}, "AWS account"), h("dd", {}, a.account_id),
      h("dt", {}, "Root email"), h("dd", {}, a.account_email),
      h("dt", {}, "OU"), h("dd", { id: "account-ou" }, `${a.organizational_unit} (${a.environment})`),
      h("dt", {}, "Owner"), h("dd", {}, a.owner_email),
      h("dt", {}, "Cost center"), h("dd", {}, a.cost_center),
      h("dt", {}, "Tags"), h("dd", {}, Object.entries(a.tags).map(([k, v]) => `${k}=${v}`).join(", ") || "none"),
      h("dt", {}, "Control Tower"), h("dd", {}, a.control_tower),
      h("dt", {}, "Baselines"), h("dd", {}, a.baselines.map((b) => b.stack_set).join(", ") || "none"),
      h("dt", {}, "Workload Security"), h("dd", {}, ws ? `connector ${ws.connector_id}${ws.policy ? ` (${ws.policy})` : ""}` : "off"),
      h("dt", {}, "Billing"), h("dd", {}, billing ? `${billing.customer_id}, ${billing.status}` : "none"),
      h("dt", {}, "Managed since"), h("dd", {}, when(a.managed_since)))),
    h("h3", {}, "Requests"),
    h("ul", { id: "account-requests" }, a.requests.map((r) => h("li", {}, h("a", { href: `#/requests/${r}` }, r)))),
    driftView(a),
    forms,
    h("h3", {}, "History"),
    h("ul", { id: "account-history" }, events.map((e) => h("li", {},
      `${when(e.at)} · ${e.actor} · ${e.action} · ${e.outcome}`, e.detail ? ` · ${e.detail}` : ""))));
}

// What the last drift check found, and the repair that puts it back.
function driftView(a) {
  const checked = a.last_checked_at ? `last checked ${when(a.last_checked_at)}` : "not checked yet";
  if (!a.drift.length) return h("p", { class: "muted", id: "account-drift" }, `No drift (${checked}).`);
  const canRepair = a.status === "active" && !a.current_change && (mayChange(a) || has("operator"));
  const why = h("input", { id: "r-why", value: "put back what drifted" });
  const repair = async () => {
    try {
      const created = await api("POST", `/v1/accounts/${a.account_id}/repair`, { justification: why.value });
      toast("Repair requested");
      location.hash = `#/requests/${created.id}`;
    } catch (err) { toast(err.message); }
  };
  return h("section", { class: "panel", id: "account-drift", "aria-labelledby": "drift-title" },
    h("h3", { id: "drift-title" }, "Drift ", badge("drifted")),
    h("p", { class: "muted" }, `What differs from this record (${checked}).`),
    h("table", { class: "responsive" },
      h("thead", {}, h("tr", {}, ["What", "Expected", "Found", "Since"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, a.drift.map((d) => h("tr", { "data-drift": d.what },
        h("td", { "data-label": "What" }, d.what),
        h("td", { "data-label": "Expected" }, d.expected),
        h("td", { "data-label": "Found" }, d.found),
        h("td", { "data-label": "Since" }, when(d.since)))))),
    canRepair ? h("div", { class: "actions" },
      h("div", {}, h("label", { for: "r-why" }, "Justification"), why),
      h("button", { type: "button", id: "repair", onclick: repair }, "Repair")) : null);
}

// Files a change, or previews it into `into`; field errors land next to their fields.
async function send(a, form, body, ids, into, previewOnly) {
  const error = form.querySelector(".form-error");
  error.hidden = true;
  try {
    if (previewOnly) {
      const plan = await api("POST", `/v1/accounts/${a.account_id}/changes/preview`, body);
      showFieldErrors(form, {}, ids);
      into.replaceChildren(planView(plan));
      return;
    }
    const created = await api("POST", `/v1/accounts/${a.account_id}/changes`, body);
    toast(`${body.kind === "decommission" ? "Decommission" : "Update"} of ${a.account_name} filed`);
    location.hash = `#/requests/${created.id}`;
  } catch (err) {
    showProblem(form, err, ids, error);
  }
}

async function updateForm(a) {
  const lz = await landingZone();
  const ous = lz.organizational_units;
  const ou = h("select", {}, ous.map((o) => h("option", { value: o.path, selected: o.path === a.organizational_unit }, o.path)));
  const env = h("select", {});
  const fillEnv = () => {
    const chosen = ous.find((o) => o.path === ou.value);
    env.replaceChildren(...(chosen ? chosen.environments : [a.environment]).map((e) =>
      h("option", { value: e, selected: e === a.environment }, e)));
  };
  ou.addEventListener("change", fillEnv);
  fillEnv();
  const inputs = {
    name: h("input", { value: a.account_name, autocomplete: "off" }),
    owner: h("input", { type: "email", value: a.owner_email }),
    cost: h("input", { value: a.cost_center }),
    customer: h("input", { value: a.billing ? a.billing.customer_id : "" }),
    why: h("textarea", { required: true }),
  };
  const ws = h("input", { type: "checkbox", checked: Boolean(a.workload_security) });
  ws.id = "u-ws";
  const planBox = h("div", { "aria-live": "polite" });
  const body = () => {
    const b = { kind: "update", justification: inputs.why.value };
    if (ou.value !== a.organizational_unit) b.organizational_unit = ou.value;
    if (env.value !== a.environment) b.environment = env.value;
    if (inputs.name.value.trim() !== a.account_name) b.account_name = inputs.name.value.trim();
    if (inputs.owner.value.trim().toLowerCase() !== a.owner_email.toLowerCase()) b.owner_email = inputs.owner.value.trim();
    if (inputs.cost.value.trim() !== a.cost_center) b.cost_center = inputs.cost.value.trim();
    if (a.billing && inputs.customer.value.trim() !== a.billing.customer_id) b.billing = { customer_id: inputs.customer.value.trim() };
    if (ws.checked !== Boolean(a.workload_security)) b.workload_security = { enabled: ws.checked };
    return b;
  };
  const form = h("form", { novalidate: true, class: "panel", id: "update-form", "aria-labelledby": "update-title" },
    h("h3", { id: "update-title" }, "Change this account"),
    h("p", { class: "hint" }, "Only what you change is sent; only the steps the difference needs run."),
    h("div", { class: "grid" },
      field("u-ou", "Move to OU", ou),
      field("u-env", "Environment", env),
      field("u-name", "Account name", inputs.name),
      field("u-owner", "Owner email", inputs.owner),
      field("u-cost", "Cost center", inputs.cost),
      field("u-customer", "Billing customer id", inputs.customer)),
    h("div", {}, h("label", { for: "u-ws" }, ws, " Protected by Workload Security"),
      h("p", { class: "field-error", id: "u-ws-error", hidden: true })),
    field("u-why", "Why", inputs.why),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => send(a, form, body(), UPDATE_FIELD_IDS, planBox, true) }, "Preview the change"),
      h("button", { type: "submit" }, "Request the change")),
    planBox);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(a, form, body(), UPDATE_FIELD_IDS, planBox, false);
  });
  return form;
}

function decommissionForm(a) {
  const why = h("textarea", { required: true });
  const confirm = h("input", { autocomplete: "off", spellcheck: "false" });
  const submit = h("button", { type: "submit", class: "danger", disabled: true }, "Decommission the account");
  const planBox = h("div", { "aria-live": "polite" });
  // The typed name is the confirmation: the button stays disabled until it matches exactly
  // (the API checks it again).
  confirm.addEventListener("input", () => { submit.disabled = confirm.value.trim() !== a.account_name; });
  const body = () => ({ kind: "decommission", justification: why.value, confirm_account_name: confirm.value.trim() });
  const form = h("form", { novalidate: true, class: "panel danger-zone", id: "decommission-form", "aria-labelledby": "decommission-title" },
    h("h3", { id: "decommission-title" }, "Decommission"),
    h("p", {}, "Quarantines the account, ends its billing, removes its protection and baselines, ",
      "and closes it. Closing cannot be undone here (AWS keeps a closed account 90 days)."),
    field("d-why", "Why", why),
    field("d-confirm", `Type ${a.account_name} to confirm`, confirm),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => send(a, form, body(), DECOMMISSION_FIELD_IDS, planBox, true) }, "Preview the decommission"),
      submit),
    planBox);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!submit.disabled) send(a, form, body(), DECOMMISSION_FIELD_IDS, planBox, false);
  });
  return form;
}
