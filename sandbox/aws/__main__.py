"""``python -m sandbox.aws``: serve the sandbox AWS and seed the landing zone's organization."""

from __future__ import annotations

import os

# AWS accounts come with AWS managed policies (AdministratorAccess, SecurityAudit, ...); moto
# loads them only when asked, and must be asked before it is imported.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

import argparse
import logging
import secrets
import signal
import threading
from pathlib import Path

from werkzeug.serving import make_server

from common.landing_zone import load_landing_zone
from common.settings import DEFAULT_LANDING_ZONE
from sandbox.aws import persistence
from sandbox.aws.faults import FaultPlan
from sandbox.aws.seed import (
    seed_budget_action_role,
    seed_control_tower,
    seed_identity_center,
    seed_organization,
    seed_service_control_policies,
    seed_stack_sets,
    seed_workload_security_secrets,
)
from sandbox.aws.server import SandboxAws, serve
from sandbox.workload_security import WorkloadSecurityEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--landing-zone", type=Path, default=DEFAULT_LANDING_ZONE)
    parser.add_argument("--create-account-seconds", type=float, default=2.0)
    parser.add_argument("--state-file", type=Path, help="keep the sandbox's state across restarts")
    parser.add_argument("--control-tower-seconds", type=float, default=3.0)
    parser.add_argument("--stack-set-seconds", type=float, default=1.0)
    parser.add_argument(
        "--unregistered-ou", action="append", default=[], help="leave this OU path unregistered"
    )
    parser.add_argument("--ws-port", type=int, default=5001, help="Workload Security emulator")
    parser.add_argument("--ws-sync-seconds", type=float, default=2.0)
    parser.add_argument("--ssm-run-seconds", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s sandbox %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    app = SandboxAws(
        create_account_seconds=args.create_account_seconds,
        control_tower_seconds=args.control_tower_seconds,
        stack_set_seconds=args.stack_set_seconds,
    )
    restored = None
    if args.state_file is not None:
        restored = persistence.load(args.state_file)
        if restored is not None:
            app.ssm.associations.update(restored.get("ssm_associations", {}))
            app.organizations.creations.update(restored.get("creations", {}))
            app.account_settings.opted.update(restored.get("regions_opted", {}))
            for name, value in restored.get("controltower", {}).items():
                getattr(app.controltower, name).update(value)
            print(f"sandbox-aws restored its state from {args.state_file}", flush=True)
        org_file = args.state_file.with_name(args.state_file.stem + ".organizations.pickle")
        # Newer than the full save, or as new: written after every Organizations change.
        accounts = persistence.load_organizations(org_file)
        if accounts is not None:
            app.organizations.creations = accounts["creations"]
            app.organizations.closures = accounts["closures"]
            print(f"sandbox-aws restored its organization from {org_file}", flush=True)
        app.org_state_file = org_file
        persistence.give_stack_set_roles()
    server = serve(app, args.host, args.port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://{args.host}:{args.port}"
    # Tenant secrets come from the environment (never argv, which `ps` shows).
    ws_secrets = {
        k: os.environ.get(f"WS_SANDBOX_{k.upper()}") or secrets.token_urlsafe(24)
        for k in ("api_key", "external_id", "tenant_id", "activation_token")
    }
    app.ssm.run_seconds = args.ssm_run_seconds
    ws = WorkloadSecurityEmulator(
        FaultPlan(),
        app.ssm,
        api_key=ws_secrets["api_key"],
        external_id=ws_secrets["external_id"],
        tenant_id=ws_secrets["tenant_id"],
        activation_token=ws_secrets["activation_token"],
        sync_seconds=args.ws_sync_seconds,
    )
    if restored:
        for name, value in restored.get("workload_security", {}).items():
            getattr(ws, name).update(value)
        ws.next_id = max(ws.connectors, default=0) + 1
    ws_server = make_server(args.host, args.ws_port, ws, threaded=True)
    threading.Thread(target=ws_server.serve_forever, daemon=True).start()
    lz = load_landing_zone(args.landing_zone)
    ids = seed_organization(endpoint, lz)
    seed_control_tower(app.controltower, lz, ids, set(args.unregistered_ou))
    seed_service_control_policies(endpoint, lz, ids)
    seed_stack_sets(endpoint, lz, args.landing_zone)
    seed_identity_center(endpoint, lz)
    seed_budget_action_role(endpoint)
    seed_workload_security_secrets(
        endpoint, ws_secrets["tenant_id"], ws_secrets["activation_token"]
    )
    app.seeded = True
    print(f"sandbox-aws ready on {endpoint} with {len(ids) - 1} OUs", flush=True)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    server.shutdown()
    ws_server.shutdown()
    if args.state_file is not None:
        app.save_organizations()
        ct = app.controltower
        ct.tick()
        for op in ct.operations.values():
            op.on_done = None  # callbacks do not pickle; finished operations no longer need them
        persistence.save(
            args.state_file,
            {
                "creations": app.organizations.creations,
                "controltower": {
                    "baselines": ct.baselines,
                    "records": ct.records,
                    "operations": ct.operations,
                    "auto_enroll_ous": ct.auto_enroll_ous,
                    "remediation_types": ct.remediation_types,
                    "enabled_controls": ct.enabled_controls,
                },
                "ssm_associations": app.ssm.associations,
                "regions_opted": app.account_settings.opted,
                "workload_security": {"connectors": ws.connectors, "policy_of": ws.policy_of},
            },
        )


if __name__ == "__main__":
    main()
