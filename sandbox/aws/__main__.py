"""``python -m sandbox.aws``: serve the sandbox AWS and seed the landing zone's organization."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from sandbox.aws.seed import seed_organization
from sandbox.aws.server import SandboxAws, serve
from vending.landing_zone import load_landing_zone
from vending.settings import DEFAULT_LANDING_ZONE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--landing-zone", type=Path, default=DEFAULT_LANDING_ZONE)
    parser.add_argument("--create-account-seconds", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s sandbox %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    app = SandboxAws(create_account_seconds=args.create_account_seconds)
    server = serve(app, args.host, args.port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://{args.host}:{args.port}"
    ids = seed_organization(endpoint, load_landing_zone(args.landing_zone))
    app.seeded = True
    print(f"sandbox-aws ready on {endpoint} with {len(ids) - 1} OUs", flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
