// Rollouts on the web page (operators and approvers): each rollout's progress, its waves and
// the StackSet operations they run, and the decisions it waits for. The API decides who may
// approve, pause, resume or cancel; the page only offers what the rollout's state allows.
import { api, badge, h, has, state, toast, when } from "/static/ui.js";

const LIVE = new Set(["planning", "pending_approval", "running", "paused", "halted"]);

// What a rollout changes: a baseline StackSet, or the Workload Security policy.
function target(r) {
  return r.policy ? `Workload Security policy ${r.policy}` : (r.stack_set || "");
}

function eta(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  return seconds < 120 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

export async function rolloutsView() {
  const page = await api("GET", "/v1/rollouts?limit=50");
  const live = page.items.some((r) => LIVE.has(r.status));
  return h("div", { "data-poll": live ? "1" : null },
    h("h2", {}, "Rollouts"),
    h("p", { class: "muted" }, "Baseline changes carried to the accounts already vended. Start one with ",
      h("code", {}, "vend rollouts start"), " or POST /v1/rollouts."),
    page.items.length ? h("table", { class: "responsive", id: "rollouts" },
      h("thead", {}, h("tr", {}, ["Rollout", "Change", "Progress", "Status"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, page.items.map((r) => h("tr", { "data-rollout": r.rollout_id },
        h("td", { "data-label": "Rollout" }, h("a", { href: `#/rollouts/${r.rollout_id}` }, r.rollout_id.slice(0, 8))),
        h("td", { "data-label": "Change" }, target(r)),
        h("td", { "data-label": "Progress" }, `${r.accounts_done ?? 0} / ${r.accounts_total ?? 0}`),
        h("td", { "data-label": "Status" }, badge(r.status))))))
      : h("p", { class: "muted" }, "No rollout yet."));
}

function decisions(r) {
  const act = async (action, done) => {
    try {
      await api("POST", `/v1/rollouts/${r.rollout_id}/${action}`);
      toast(done);
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (err) { toast(err.message); }
  };
  const buttons = [];
  if (r.status === "pending_approval" && has("approver") && r.requested_by !== state.me.sub
      && !r.approvals.includes(state.me.sub)) {
    buttons.push(h("button", { type: "button", onclick: () => act("approve", "Approved") }, "Approve"));
  }
  if (has("operator")) {
    if (r.status === "running") {
      buttons.push(h("button", { type: "button", class: "secondary", onclick: () => act("pause", "Pausing after this wave") }, "Pause"));
    }
    if (r.status === "paused" || r.status === "halted") {
      buttons.push(h("button", { type: "button", onclick: () => act("resume", "Resumed") }, "Resume"));
    }
    if (LIVE.has(r.status)) {
      buttons.push(h("button", { type: "button", class: "danger", onclick: () => act("cancel", "Cancelled") }, "Cancel"));
    }
  }
  return buttons.length ? h("div", { class: "actions", id: "rollout-actions" }, buttons) : null;
}

export async function rolloutView(id) {
  const r = await api("GET", `/v1/rollouts/${id}`);
  return h("div", { "data-rollout": r.rollout_id, "data-poll": LIVE.has(r.status) ? "1" : null },
    h("h2", {}, `Rollout of ${target(r)} `, h("span", { id: "rollout-status", role: "status" }, badge(r.status))),
    h("div", { class: "panel" }, h("dl", { class: "kv", id: "rollout-progress" },
      h("dt", {}, "Reason"), h("dd", {}, r.reason),
      h("dt", {}, "Asked by"), h("dd", {}, `${r.requested_by}, ${when(r.created_at)}`),
      h("dt", {}, "Change"), h("dd", {}, [r.template_changes ? "new template" : null,
        Object.keys(r.parameters).length ? `parameters ${Object.entries(r.parameters).map(([k, v]) => `${k}=${v}`).join(", ")}` : null]
        .filter(Boolean).join(", ") || "none"),
      h("dt", {}, "Approvals"), h("dd", {}, `${r.approvals.length} of ${r.approvals_required}`),
      r.template_changes ? [
        h("dt", {}, "Template"), h("dd", { id: "rollout-template" },
          h("div", {}, "new ", h("code", {}, r.template_sha256 || "")),
          h("div", {}, "replaces ", h("code", {}, r.current_template_sha256 || "none")),
          h("div", {}, `reaches every account of ${r.template_reach.join(", ")}`))] : null,
      h("dt", {}, "Accounts"), h("dd", { id: "rollout-counts" },
        `${r.accounts_done} done${r.accounts_created ? ` (${r.accounts_created} given the baseline)` : ""}, ` +
        `${r.accounts_failed.length} failed, ${r.accounts_skipped} already current, ` +
        `${r.accounts_left} left of ${r.accounts_total}` +
        (r.accounts_left_out.length ? `; ${r.accounts_left_out.length} in a change left out` : "")),
      h("dt", {}, "ETA"), h("dd", {}, LIVE.has(r.status) ? eta(r.eta_seconds) : "—"))),
    r.problem ? h("p", { class: "error-box" }, r.problem) : null,
    r.template_diff ? h("details", { open: r.status === "pending_approval" ? "" : null },
      h("summary", {}, "Template diff (what approvers approve)"),
      h("pre", { id: "rollout-diff", class: "diff" }, r.template_diff)) : null,
    decisions(r),
    h("h3", {}, "Waves"),
    h("table", { class: "responsive", id: "waves" },
      h("thead", {}, h("tr", {}, ["Wave", "Accounts", "Operations", "Status"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, r.waves.map((w) => h("tr", { "data-wave": w.number },
        h("td", { "data-label": "Wave" }, String(w.number)),
        h("td", { "data-label": "Accounts" }, `${w.accounts.length}` +
          (w.skipped_accounts.length ? ` (${w.skipped_accounts.length} already current)` : "")),
        h("td", { "data-label": "Operations" }, h("ul", { class: "plain" }, w.operations.map((op) =>
          h("li", {}, `${op.action} · ${op.accounts.length} account(s) × ${op.regions.length} region(s) · ${op.status}`)))),
        h("td", { "data-label": "Status" }, badge(w.status)))))),
    h("h3", {}, "History"),
    h("ul", { id: "rollout-history" }, r.events.map((e) => h("li", {},
      `${when(e.at)} · ${e.by} · ${e.action}`, e.detail ? ` · ${e.detail}` : ""))));
}
