// The web page: requesters file and follow requests, approvers decide, operators recover,
// owners change and decommission their accounts. It is a thin client of the /v1 API (same
// tokens, same rules; the API decides everything). No framework and no build step: ES modules
// (ui.js shared helpers, accounts.js the inventory views, this file the rest).
import {
  TERMINAL, api, badge, costView, duration, field, h, has, landingZone, showProblem, state, toast,
  when,
} from "/static/ui.js";
import { accountView, accountsView, planView } from "/static/accounts.js";
import { leaseView, leasesView, poolsView } from "/static/leases.js";
import { rolloutView, rolloutsView } from "/static/rollouts.js";

const TOKEN_KEY = "vend.token";
const PKCE_KEY = "vend.pkce";
const POLL_MS = 2000;

// ------------------------------------------------------------------ sign-in
async function signInDemo(user) {
  const data = await api("POST", "/ui/demo-login", { user });
  await setToken(data.access_token);
}

async function setToken(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/v1/me");  // roles as this deployment maps them
  } catch (err) {
    state.token = null;
    toast(`That token was not accepted: ${err.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  location.hash = has("requester") ? "#/mine" : has("approver") ? "#/approvals" : "#/operations";
  render();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  location.hash = "#/";
  render();
  if (message) toast(message);
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

async function signInOidc() {
  // Authorization code flow with PKCE: the verifier stays in this tab's session storage.
  const oidc = state.config.oidc;
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const nonce = b64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state: nonce }));
  const url = new URL(oidc.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code", client_id: oidc.client_id, redirect_uri: redirectUri(),
    scope: oidc.scope, state: nonce, code_challenge: challenge, code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

function redirectUri() {
  return `${location.origin}/`;
}

async function finishOidc() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (!code || !state.config.oidc) return false;
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "{}");
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, "", "/");
  if (params.get("state") !== saved.state) {
    toast("Sign-in failed: the answer did not match this browser's request.");
    return false;
  }
  const resp = await fetch(state.config.oidc.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code, redirect_uri: redirectUri(),
      client_id: state.config.oidc.client_id, code_verifier: saved.verifier,
    }),
  });
  const data = await resp.json();
  if (!resp.ok || !data.access_token) {
    toast("Sign-in failed at the identity provider.");
    return false;
  }
  await setToken(data.access_token);
  return true;
}

function signInView() {
  const main = h("div", {}, h("h2", {}, "Sign in"));
  const cfg = state.config;
  if (cfg.demo_users.length) {
    main.append(
      h("p", {}, "This is the embedded demo stack. Pick a demo user:"),
      h("div", { class: "users" }, cfg.demo_users.map((u) =>
        h("button", {
          type: "button", class: "secondary", "data-user": u.name,
          onclick: () => signInDemo(u.name).catch((e) => toast(e.message)),
        }, `${u.name} (${u.roles.join(", ")})`))),
    );
  }
  if (cfg.oidc) {
    main.append(h("p", {}, h("button", { type: "button", onclick: () => signInOidc() },
      "Sign in with your organization")));
  }
  const area = h("textarea", { id: "paste-token", "aria-describedby": "paste-hint" });
  main.append(
    h("h3", {}, "Or use a bearer token"),
    h("label", { for: "paste-token" }, "Token"),
    h("p", { id: "paste-hint", class: "hint" }, "From `vend token` or your identity provider."),
    area,
    h("div", { class: "actions" }, h("button", {
      type: "button", onclick: () => area.value.trim() && setToken(area.value.trim()),
    }, "Use token")),
  );
  return main;
}

// ------------------------------------------------------------------ navigation
const ROUTES = [
  { hash: "#/new", label: "New request", role: "requester", view: newRequestView },
  { hash: "#/mine", label: "My requests", role: "requester", view: myRequestsView },
  { hash: "#/approvals", label: "Approvals", role: "approver", view: approvalsView },
  { hash: "#/operations", label: "Operations", role: "operator", view: operationsView },
  { hash: "#/accounts", label: "Accounts", role: "any", view: accountsView },
  { hash: "#/rollouts", label: "Rollouts", role: "staff", view: rolloutsView },
  { hash: "#/leases", label: "My sandboxes", role: "any", view: leasesView },
  { hash: "#/pools", label: "Pools", role: "operator", view: poolsView },
];

function renderNav() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  nav.replaceChildren();
  nav.hidden = !state.me;
  who.hidden = !state.me;
  if (!state.me) return;
  document.getElementById("who-name").textContent =
    `${state.me.sub} · ${state.me.roles.join(", ")}`;
  for (const route of ROUTES) {
    if (!has(route.role)) continue;
    const current = location.hash.startsWith(route.hash) ? "page" : null;
    nav.append(h("a", { href: route.hash, "aria-current": current }, route.label));
  }
}

async function currentView() {
  if (!state.me) return signInView();
  const hash = location.hash || "#/";
  const detail = hash.match(/^#\/requests\/([\w-]+)$/);
  const account = hash.match(/^#\/accounts\/(\d{12})$/);
  const rollout = hash.match(/^#\/rollouts\/([0-9a-f-]{36})$/);
  const lease = hash.match(/^#\/leases\/([0-9a-f-]{36})$/);
  const route = ROUTES.find((r) => hash.startsWith(r.hash) && has(r.role));
  try {
    if (detail) return await requestView(detail[1]);
    if (account) return await accountView(account[1]);
    if (rollout && has("staff")) return await rolloutView(rollout[1]);
    if (lease) return await leaseView(lease[1]);
    if (route) return await route.view();
    return await (ROUTES.find((r) => has(r.role))?.view || noRoleView)();
  } catch (err) {
    return h("p", { class: "form-error", role: "alert" }, err.message);
  }
}

// One timer at most: a view that wants live data marks its root with data-poll, and render()
// refreshes it until the view changes (a newer render bumps state.seq).
async function render() {
  const seq = ++state.seq;
  clearInterval(state.timer);
  renderNav();
  const view = await currentView();
  if (seq !== state.seq) return;
  document.getElementById("main").replaceChildren(view);
  if (view.dataset.poll) state.timer = setInterval(() => refresh(seq), POLL_MS);
}

async function refresh(seq) {
  const active = document.activeElement;
  if (active && active.matches("input, textarea, select")) return;  // never under the typist
  const view = await currentView();
  if (seq !== state.seq) return;
  document.getElementById("main").replaceChildren(view);
  if (!view.dataset.poll) clearInterval(state.timer);
}

function noRoleView() {
  return h("p", {}, "Your account has no role in account vending. Ask an administrator.");
}

// ------------------------------------------------------------------ requester: the form
const FIELD_IDS = {
  account_name: "f-name", account_email: "f-email", organizational_unit: "f-ou",
  environment: "f-env", owner_email: "f-owner", cost_center: "f-cost", justification: "f-why",
  tags: "f-tags", "workload_security.enabled": "f-ws", "workload_security.policy": "f-ws-policy",
  "billing.customer_id": "f-customer", "billing.plan": "f-plan", billing: "f-customer",
  expected_instances: "f-small", "access.group": "f-group", access: "f-group",
  "budget.monthly_usd": "f-budget", budget: "f-budget",
};

// What the OU's account settings mean for this request, one line each (common/account_settings).
function settingsLines(st) {
  const lines = [];
  if (st.access) {
    lines.push(["Identity Center", `${st.access.permission_sets.join(", ")} to the owner group` +
      (st.access.group_required ? " (required)" : " (optional)")]);
  }
  if (st.budget) {
    const b = st.budget;
    lines.push(["Budget", `${b.min_usd}-${b.max_usd} USD a month` +
      (b.default_usd ? `, ${b.default_usd} if left empty` : b.required ? ", required" : "") +
      `; alerts at ${b.alert_thresholds.map((t) => `${t}%`).join(", ")}`]);
  }
  const contacts = Object.entries(st.alternate_contacts || {}).filter(([, c]) => c);
  if (contacts.length) {
    lines.push(["Alternate contacts", contacts.map(([k, c]) => `${k}: ${c.email}`).join(", ")]);
  }
  if (st.account_alias) lines.push(["Account alias", `${st.alias_prefix}<account name>`]);
  if (st.opt_in_regions.length) lines.push(["Opt-in regions", st.opt_in_regions.join(", ")]);
  if (st.delete_default_vpcs) lines.push(["Default VPCs", "deleted in every enabled region, where empty"]);
  return lines;
}

async function newRequestView() {
  const lz = await landingZone();
  const ous = lz.organizational_units;
  const ouSelect = h("select", { required: true },
    h("option", { value: "" }, "Choose an OU"),
    ous.map((ou) => h("option", { value: ou.path }, ou.path)));
  const envSelect = h("select", { required: true });
  const implies = h("div", { class: "panel", id: "ou-implies", "aria-live": "polite" },
    "Choose an OU to see what it implies.");
  const wsBox = h("input", { type: "checkbox", checked: true });
  const groupField = h("div", { hidden: true });
  const budgetField = h("div", { hidden: true });
  const onOu = () => {
    const ou = ous.find((o) => o.path === ouSelect.value);
    envSelect.replaceChildren(...(ou ? ou.environments : []).map((e) => h("option", { value: e }, e)));
    const st = ou ? ou.settings : {};
    groupField.hidden = !st.access;
    budgetField.hidden = !st.budget;
    if (st.budget) {
      inputs.budget.min = st.budget.min_usd;
      inputs.budget.max = st.budget.max_usd;
      inputs.budget.placeholder = st.budget.default_usd ? String(st.budget.default_usd) : "";
    }
    if (!ou) { implies.replaceChildren("Choose an OU to see what it implies."); return; }
    if (ou.workload_security === "required") { wsBox.checked = true; wsBox.disabled = true; }
    else if (ou.workload_security === "off") { wsBox.checked = false; wsBox.disabled = true; }
    else wsBox.disabled = false;
    implies.replaceChildren(h("dl", { class: "kv" },
      h("dt", {}, "Approvals"), h("dd", {}, ou.approvals_required === 0
        ? "none: provisioning starts at once"
        : `${ou.approvals_required}, within ${Math.round(ou.approval_window_seconds / 86400 * 10) / 10} days`),
      h("dt", {}, "Baselines"), h("dd", {}, ou.baselines.join(", ") || "none"),
      h("dt", {}, "Workload Security"), h("dd", {}, ou.workload_security),
      h("dt", {}, "Control Tower"), h("dd", {}, ou.control_tower_enrollment.replaceAll("_", " ")),
      h("dt", {}, "Guardrails"), h("dd", { id: "ou-guardrails" },
        [...ou.guardrails.controls, ...ou.guardrails.service_control_policies.map((p) => `SCP ${p}`)]
          .join(", ") || "none declared"),
      settingsLines(ou.settings).flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-setting": k }, v)])));
  };
  ouSelect.addEventListener("change", onOu);
  const num = () => h("input", { type: "number", min: 0, max: 10000, value: 0, inputmode: "numeric" });
  const inputs = {
    name: h("input", { required: true, autocomplete: "off", pattern: "[a-z0-9-]{3,50}" }),
    email: h("input", { type: "email", required: !lz.email_template, autocomplete: "off" }),
    group: h("input", { autocomplete: "off" }),
    budget: h("input", { type: "number", inputmode: "numeric" }),
    owner: h("input", { type: "email", required: true, value: state.me.email || "" }),
    cost: h("input", { required: true }),
    why: h("textarea", { required: true }),
    tags: h("textarea", { placeholder: "team=platform" }),
    wsPolicy: h("input", {}),
    customer: h("input", { required: true }),
    plan: h("input", {}),
    small: num(), large: num(), xlarge: num(),
  };
  const formError = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit" }, "Request the account");
  const form = h("form", { novalidate: true, "aria-labelledby": "new-title" },
    h("h2", { id: "new-title" }, "Request an AWS account"),
    h("div", { class: "grid" },
      field("f-name", "Account name", inputs.name, "3-50 lower-case letters, digits and '-'"),
      field("f-email", "Account root email", inputs.email, lz.email_template
        ? `Leave empty for ${lz.email_template.replace("{name}", "<account name>")}`
        : `A new address, on ${lz.allowed_email_domains.join(" or ")}`),
      field("f-ou", "Organizational unit", ouSelect),
      field("f-env", "Environment", envSelect),
    ),
    implies,
    h("div", { class: "grid" },
      field("f-owner", "Owner email", inputs.owner),
      field("f-cost", "Cost center", inputs.cost),
      field("f-customer", "Billing customer id", inputs.customer, "Sunny Pay customer"),
      field("f-plan", "Billing plan", inputs.plan, "Optional"),
      groupField, budgetField,
    ),
    field("f-why", "Justification", inputs.why),
    field("f-tags", "Tags", inputs.tags, "One key=value per line"),
    h("fieldset", { class: "panel" }, h("legend", {}, "Workload Security"),
      h("div", { class: "grid" },
        h("div", {}, h("label", { for: "f-ws" }, wsBox, " Protect this account"),
          h("p", { class: "field-error", id: "f-ws-error", hidden: true })),
        field("f-ws-policy", "Policy", inputs.wsPolicy, "Optional; the default policy otherwise"))),
    h("fieldset", { class: "panel" }, h("legend", {}, "Expected EC2 instances (for the cost estimate)"),
      h("div", { class: "grid" },
        field("f-small", "micro to medium", inputs.small),
        field("f-large", "large", inputs.large),
        field("f-xlarge", "xlarge and up", inputs.xlarge))),
    formError,
    h("div", { class: "actions" }, submit),
  );
  wsBox.id = "f-ws";
  groupField.append(field("f-group", "Owner group", inputs.group, "IAM Identity Center group"));
  budgetField.append(field("f-budget", "Monthly budget (USD)", inputs.budget, "Within the OU's bounds"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const tags = {};
    for (const line of inputs.tags.value.split("\n")) {
      const [k, ...rest] = line.split("=");
      if (k.trim()) tags[k.trim()] = rest.join("=").trim();
    }
    const counts = [inputs.small, inputs.large, inputs.xlarge].map((i) => Number(i.value || 0));
    const body = {
      account_name: inputs.name.value.trim(),
      account_email: inputs.email.value.trim() || null,
      organizational_unit: ouSelect.value,
      environment: envSelect.value,
      owner_email: inputs.owner.value.trim(),
      cost_center: inputs.cost.value,
      justification: inputs.why.value,
      tags,
      workload_security: { enabled: wsBox.checked, policy: inputs.wsPolicy.value.trim() || null },
      billing: { customer_id: inputs.customer.value, plan: inputs.plan.value.trim() || null },
    };
    if (!groupField.hidden && inputs.group.value.trim()) body.access = { group: inputs.group.value.trim() };
    if (!budgetField.hidden && inputs.budget.value) body.budget = { monthly_usd: Number(inputs.budget.value) };
    if (counts.some((c) => c > 0)) {
      body.expected_instances = { micro_to_medium: counts[0], large: counts[1], xlarge_and_up: counts[2] };
    }
    submit.disabled = true;
    formError.hidden = true;
    try {
      const created = await api("POST", "/v1/account-requests", body);
      toast(`Request ${created.request.account_name} filed`);
      location.hash = `#/requests/${created.id}`;
    } catch (err) {
      showProblem(form, err, FIELD_IDS, formError);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ------------------------------------------------------------------ lists
function requestsTable(items, caption) {
  if (!items.length) return h("p", { class: "muted" }, "Nothing here.");
  return h("table", { class: "responsive" },
    h("caption", { class: "muted" }, caption),
    h("thead", {}, h("tr", {}, ["Account", "Kind", "OU", "Status", "Step", "Requested by", "Created"]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((r) => h("tr", { "data-request": r.id },
      h("td", { "data-label": "Account" }, h("a", { href: `#/requests/${r.id}` }, r.account_name || r.id)),
      h("td", { "data-label": "Kind" }, r.kind || "vend"),
      h("td", { "data-label": "OU" }, r.organizational_unit || ""),
      h("td", { "data-label": "Status" }, badge(r.status)),
      h("td", { "data-label": "Step" }, r.current_step || ""),
      h("td", { "data-label": "Requested by" }, r.requested_by || ""),
      h("td", { "data-label": "Created" }, when(r.created_at))))));
}

async function myRequestsView() {
  const page = await api("GET", "/v1/account-requests?limit=50");
  const mine = page.items.filter((r) => r.requested_by === state.me.sub);
  return h("div", { "data-poll": "1" },
    h("div", { class: "actions" }, h("h2", {}, "My requests"),
      h("a", { href: "#/new" }, "Request an account")),
    requestsTable(mine, "Your requests, open ones first"));
}

// The queue is one list call a page (/v1/approvals answers from what each request recorded, no
// query per request, and 304 while nothing changed): cheap to poll with many approvers looking.
async function approvalsView() {
  const pages = state.approvalPages || 1;  // how many pages this approver asked to see
  let page = await api("GET", "/v1/approvals?limit=50");
  const waiting = [...page.items];
  for (let n = 1; n < pages && page.next_cursor; n++) {
    page = await api("GET", `/v1/approvals?limit=50&cursor=${encodeURIComponent(page.next_cursor)}`);
    waiting.push(...page.items);
  }
  const more = () => { state.approvalPages = pages + 1; render(); };
  return h("div", { "data-poll": "1" }, h("h2", {}, "Waiting for your approval"),
    waiting.length ? h("div", { class: "cards" }, waiting.map((d) => approvalCard(d)))
      : h("p", { class: "muted" }, "Nothing waits for you."),
    page.next_cursor ? h("button", { type: "button", onclick: more }, "Show more") : null);
}

function preview(d) {
  const r = d.request;
  const cost = d.cost_estimate;
  return h("dl", { class: "kv" },
    h("dt", {}, "Account"), h("dd", {}, `${r.account_name} <${r.account_email}>`),
    h("dt", {}, "OU"), h("dd", {}, `${r.organizational_unit} (${r.environment})`),
    h("dt", {}, "Requested by"), h("dd", {}, d.requested_by),
    h("dt", {}, "Owner"), h("dd", {}, r.owner_email),
    h("dt", {}, "Justification"), h("dd", {}, r.justification),
    h("dt", {}, "Workload Security"), h("dd", {}, r.workload_security.enabled
      ? `on${r.workload_security.policy ? ` (${r.workload_security.policy})` : ""}` : "off"),
    h("dt", {}, "Billing customer"), h("dd", {}, r.billing.customer_id),
    h("dt", {}, "Approvals"), h("dd", {}, `${d.approvals.length} of ${d.approvals_required}`),
    h("dt", {}, "Cost estimate"), h("dd", {}, costView(cost)));
}

function approvalCard(d, withPlan = true) {
  const comment = h("input", {});
  const id = `c-${d.id}`;
  const decide = async (action) => {
    const body = action === "approve" ? { comment: comment.value || null } : { reason: comment.value };
    try {
      await api("POST", `/v1/account-requests/${d.id}/${action}`, body);
      toast(`${action === "approve" ? "Approved" : "Rejected"} ${d.request.account_name}`);
      render();
    } catch (err) { toast(err.message); }
  };
  return h("section", { class: "panel", "aria-labelledby": `t-${d.id}`, "data-request": d.id },
    h("h3", { id: `t-${d.id}` }, h("a", { href: `#/requests/${d.id}` }, d.request.account_name),
      d.kind && d.kind !== "vend" ? ` · ${d.kind}` : ""),
    preview(d),
    withPlan ? planView(d.plan) : null,
    h("div", { class: "actions" },
      h("div", {}, h("label", { for: id }, "Comment", h("span", { class: "hint" }, " (a reason is required to reject)")),
        Object.assign(comment, { id })),
      h("button", { type: "button", onclick: () => decide("approve") }, "Approve"),
      h("button", { type: "button", class: "danger", onclick: () => decide("reject") }, "Reject")));
}

async function operationsView() {
  const page = await api("GET", "/v1/account-requests?status=waiting_for_operator&limit=50");
  const details = await Promise.all(page.items.map((r) => api("GET", `/v1/account-requests/${r.id}`)));
  return h("div", { "data-poll": "1" }, h("h2", {}, "Waiting for an operator"),
    details.length ? h("div", { class: "cards" }, details.map((d) => {
      const failed = d.steps.find((s) => s.status === "failed");
      return h("section", { class: "panel", "data-request": d.id },
        h("h3", {}, h("a", { href: `#/requests/${d.id}` }, d.request.account_name)),
        failed ? h("p", { class: "error-box" }, `${failed.name}: ${failed.error.type}: ${failed.error.message}`) : null);
    })) : h("p", { class: "muted" }, "No request waits for an operator."));
}

// ------------------------------------------------------------------ one request
async function requestView(id) {
  const d = await api("GET", `/v1/account-requests/${id}`);
  let events = [];
  try { events = (await api("GET", `/v1/account-requests/${id}/events`)).items; } catch { /* optional */ }
  const view = h("div", { "data-request": d.id, "data-poll": TERMINAL.has(d.status) ? null : "1" },
    h("h2", {}, d.request.account_name, d.kind && d.kind !== "vend" ? ` · ${d.kind}` : "", " ",
      h("span", { id: "status", role: "status" }, badge(d.status))),
    h("div", { class: "panel" }, preview(d),
      d.account_id ? h("p", {}, "AWS account ",
        h("a", { href: `#/accounts/${d.account_id}` }, h("strong", {}, d.account_id))) : null,
      d.workflow_url && has("operator") ? h("p", {}, h("a", { href: d.workflow_url, target: "_blank", rel: "noopener" }, "Open in the Temporal UI")) : null),
    h("h3", {}, "Steps"),
    h("table", { class: "responsive", id: "steps" },
      h("thead", {}, h("tr", {}, ["Step", "Status", "Attempts", "Started", "Took", "Details"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, d.steps.map((s) => h("tr", { "data-step": s.name },
        h("td", { "data-label": "Step" }, s.name.replaceAll("_", " ")),
        h("td", { "data-label": "Status" }, badge(s.status)),
        h("td", { "data-label": "Attempts" }, String(s.attempts)),
        h("td", { "data-label": "Started" }, when(s.started_at)),
        h("td", { "data-label": "Took" }, duration(s)),
        h("td", { "data-label": "Details" },
          s.error ? h("div", { class: "error-box" }, `${s.error.type}: ${s.error.message}`) : null,
          s.queue_position ? `queue position ${s.queue_position} ` : null,
          s.detail || ""))))),
    actionsFor(d),
    planView(d.plan, TERMINAL.has(d.status) ? "What it said it would do" : "What it will do"),
    h("h3", {}, "History"),
    h("ul", {}, events.map((e) => h("li", {}, `${when(e.at)} · ${e.actor} · ${e.action} · ${e.outcome}`,
      e.detail ? ` · ${e.detail}` : ""))),
  );
  return view;
}

function actionsFor(d) {
  const boxes = [];
  const mine = d.requested_by === state.me.sub;
  const act = async (action, body, done) => {
    try {
      await api("POST", `/v1/account-requests/${d.id}/${action}`, body);
      toast(done);
      render();
    } catch (err) { toast(err.message); }
  };
  if (d.status === "pending_approval" && has("approver") && !mine &&
      !d.approvals.some((a) => a.by === state.me.sub)) {
    boxes.push(approvalCard(d, false));
  }
  if (d.status === "waiting_for_operator" && has("operator")) {
    const failed = d.steps.find((s) => s.status === "failed");
    const reason = h("input", { id: "op-reason" });
    const email = h("input", { id: "op-email", type: "email" });
    const ou = h("input", { id: "op-ou" });
    const corrections = [];
    if (failed && failed.corrections.includes("account_email")) {
      corrections.push(h("div", {}, h("label", { for: "op-email" }, "Another account email (optional)"), email));
    }
    if (failed && failed.corrections.includes("organizational_unit")) {
      corrections.push(h("div", {}, h("label", { for: "op-ou" }, "Another OU (optional)"), ou));
    }
    const retryBody = () => {
      const body = { step: failed.name, reason: reason.value || null };
      if (email.value.trim()) body.account_email = email.value.trim();
      if (ou.value.trim()) body.organizational_unit = ou.value.trim();
      return body;
    };
    boxes.push(h("section", { class: "panel", "aria-labelledby": "op-title" },
      h("h3", { id: "op-title" }, "Operator"),
      failed ? h("p", { class: "error-box" }, `${failed.name} failed: ${failed.error.type}: ${failed.error.message}`) : null,
      h("div", { class: "actions" },
        h("div", {}, h("label", { for: "op-reason" }, "Reason"), reason),
        ...corrections,
        h("button", { type: "button", onclick: () => act("retry", retryBody(), `Retrying ${failed.name}`) }, "Retry step"),
        h("button", { type: "button", class: "secondary", onclick: () => act("skip", { step: failed.name, reason: reason.value }, `Skipped ${failed.name}`) }, "Skip step"),
        h("button", { type: "button", class: "danger", onclick: () => act("cancel", { reason: reason.value }, "Cancelled") }, "Cancel request"))));
  } else if (!TERMINAL.has(d.status) && (mine || has("operator"))) {
    const reason = h("input", { id: "cancel-reason" });
    boxes.push(h("div", { class: "actions" },
      h("div", {}, h("label", { for: "cancel-reason" }, "Reason to cancel"), reason),
      h("button", { type: "button", class: "danger", onclick: () => act("cancel", { reason: reason.value }, "Cancelled") }, "Cancel request")));
  }
  return h("div", {}, boxes);
}

// ------------------------------------------------------------------ start
async function start() {
  state.config = await (await fetch("/ui/config")).json();
  state.onExpired = signOut;
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", render);
  if (!(await finishOidc())) {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      state.token = saved;
      try { state.me = await api("GET", "/v1/me"); } catch { state.token = null; }
    } else {
      // Behind a trusted reverse proxy that adds the Authorization header itself, the page
      // is signed in without holding a token.
      try { state.me = await api("GET", "/v1/me"); } catch { state.me = null; }
    }
    render();
  }
}

start();
