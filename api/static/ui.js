// What every view of the web page shares: the session, DOM building, the API client.
// DOM nodes are built with textContent, never innerHTML, so request data cannot inject markup.

export const TERMINAL = new Set(["completed", "rejected", "cancelled", "expired"]);

// onExpired: what to do when the API says the session ended (app.js signs out).
export const state = {
  config: null, token: null, me: null, lz: null, timer: null, seq: 0, onExpired: null,
};

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function badge(status) {
  return h("span", { class: `badge s-${status}` }, status.replaceAll("_", " "));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function duration(step) {
  if (!step.started_at) return "";
  const end = step.finished_at ? new Date(step.finished_at) : new Date();
  const s = Math.max(0, Math.round((end - new Date(step.started_at)) / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

// "any": some role at all (the inventory is for everyone the deployment knows); "staff":
// approvers and operators.
export function has(role) {
  if (!state.me) return false;
  if (role === "any") return state.me.roles.length > 0;
  if (role === "staff") return has("approver") || has("operator");  // fleet operations
  return state.me.roles.includes(role) || state.me.roles.includes("admin");
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (resp.status === 401 && state.token) {
    state.onExpired?.("Your session ended; sign in again.");
  }
  if (!resp.ok) throw new ApiError(resp.status, data || {});
  return data;
}

export async function landingZone() {
  if (!state.lz) state.lz = await api("GET", "/v1/landing-zone");
  return state.lz;
}

export function field(id, label, input, hint) {
  const hintId = hint ? `${id}-hint` : null;
  input.id = id;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field", "data-field": id },
    h("label", { for: id }, label),
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
    input,
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }));
}

// Puts each RFC 9457 validation error next to its field (ids: error loc -> input id); returns
// the messages no field on this form shows.
export function showFieldErrors(form, problem, ids) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
  const unplaced = [];
  for (const err of problem.errors || []) {
    const loc = (err.loc || []).filter((p) => p !== "body");
    const id = ids[loc.join(".")] || ids[loc[0]];
    const input = id && form.querySelector(`#${id}`);
    if (!input) { unplaced.push(err.msg); continue; }
    input.setAttribute("aria-invalid", "true");
    const box = form.querySelector(`#${id}-error`);
    box.textContent = err.msg;
    box.hidden = false;
    const described = new Set((input.getAttribute("aria-describedby") || "").split(" "));
    described.add(`${id}-error`);
    input.setAttribute("aria-describedby", [...described].filter(Boolean).join(" "));
  }
  return unplaced;
}

// An API refusal on a form: field errors next to their fields, the rest in the form's own
// error line; focus goes to the first field in error (or that line), so a screen reader says it.
export function showProblem(form, err, ids, formError) {
  const unplaced = err.problem ? showFieldErrors(form, err.problem, ids) : [];
  if (err.status !== 422 || unplaced.length) {
    formError.textContent = unplaced.length ? unplaced.join("; ") : err.message;
    formError.hidden = false;
  }
  const first = form.querySelector("[aria-invalid=true]");
  (first || formError).focus?.();
}

// The cost estimate as the price sheet reads: only Workload Security usage is discounted (5 %
// through Sunny Pay); the managed-operations fees are shown as they are, the initial fee beside
// the monthly one; a stated budget is at list prices, and Sunny Pay bills AWS usage below them.
export function costLines(cost) {
  if (!cost) return [];
  const yen = (n) => `¥${Number(n).toLocaleString("en-US")}`;
  const lines = [];
  if (!cost.instances_stated) {
    lines.push("No instances stated: no Workload Security or managed fees estimated");
  } else if (Number(cost.workload_security_monthly_usd) === 0 && cost.managed_monthly_fee_jpy === 0) {
    lines.push(`${cost.instances} instances; Workload Security is off: no agent or managed fees`);
  } else {
    lines.push(`${cost.instances} instances: Workload Security $${cost.workload_security_monthly_usd_discounted}/month ` +
      `(list $${cost.workload_security_monthly_usd}, ${cost.workload_security_discount_percent}% off through Sunny Pay)`);
    lines.push(`Managed operations ${yen(cost.managed_monthly_fee_jpy)}/month, ` +
      `${yen(cost.managed_initial_fee_jpy)} initial fee (once)`);
  }
  if (cost.budget) {
    lines.push(`Budget $${cost.budget.monthly_usd}/month at list prices; AWS usage through Sunny Pay is ` +
      `billed ${cost.budget.discount_percent}% below list ($${cost.budget.billed_monthly_usd})`);
  }
  return lines;
}

export function costView(cost) {
  const lines = costLines(cost);
  return lines.length
    ? h("ul", { class: "plain", "data-cost": "1" }, lines.map((l) => h("li", {}, l)))
    : "no instances or budget stated";
}
