"""App requests during live rotations of the app's PostgreSQL login (secret ``db/app``), against a
running stage, and whose connections PgBouncer holds after each:

    .venv/bin/summit up --stage 1+ --data-dir /tmp/rot --detach            # or --stage 10k
    .venv/bin/python bench/db_rotation.py --data-dir /tmp/rot --url http://127.0.0.1:8000
    .venv/bin/python bench/db_rotation.py --data-dir /tmp/rot10k --url https://localhost:8443 --cacert ca.pem

Signs up one account (its code read from the stage's outbox), signs in ``--clients`` times, then
each client loops: refresh its session (a write as the app's login) and read its profile, at most
3,000 rounds, until the rotations are done. ``summit secrets rotate db/app`` runs ``--rotations``
times, 2 s apart; 3 s after each, PgBouncer's ``SHOW CLIENTS`` tells which user the app's
connections log in as. Prints the HTTP statuses (every one should be 2xx) and any error. Loopback
only; sign-up is rate limited (20 an hour per address).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import ssl
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg

PASSWORD = "correct horse battery 9"


def app_clients(data_dir: Path) -> dict[str, int]:
    """The app's client connections to the primary's PgBouncer, by user."""
    password = (data_dir / "secrets" / "postgres-postgres").read_text().strip()
    port = json.loads((data_dir / "engines" / "ports.json").read_text())["pgbouncer-primary"]
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="pgbouncer", autocommit=True) as conn:
        result = conn.pgconn.exec_(b"SHOW CLIENTS")  # the admin console: simple protocol only
        columns = [result.fname(i).decode() for i in range(result.nfields)]
        user, database = columns.index("user"), columns.index("database")
        return dict(Counter(result.get_value(r, user).decode() for r in range(result.ntuples) if result.get_value(r, database) == b"summit"))


async def sessions(base: str, verify: ssl.SSLContext | bool, data_dir: Path, count: int) -> list[dict]:
    async with httpx.AsyncClient(base_url=base, timeout=10, verify=verify) as client:
        name = f"rot{int(time.time())}"
        response = await client.post("/api/v1/accounts", json={"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        response.raise_for_status()
        await asyncio.sleep(0.5)
        mails = [p.read_text(errors="replace") for p in (data_dir / "outbox").glob("*.json")]
        code = re.findall(r"code is (\d+)", "\n".join(m for m in mails if f"{name}@example.com" in m))[-1]
        (await client.post("/api/v1/accounts/confirm", json={"login": name, "code": code})).raise_for_status()
        found = []
        for _ in range(count):
            response = await client.post("/api/v1/sessions", json={"login": name, "password": PASSWORD})
            response.raise_for_status()
            found.append(response.json())
        return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--url", required=True, help="the stage's public URL")
    parser.add_argument("--cacert", help="the stage's CA (summit certs export-ca), behind TLS")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rotations", type=int, default=2)
    args = parser.parse_args()
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=args.cacert) if args.cacert else True
    statuses: Counter = Counter()
    errors: list[str] = []
    stop = asyncio.Event()

    async def client(session: dict) -> None:
        refresh = session["refresh_token"]
        async with httpx.AsyncClient(base_url=args.url, timeout=10, verify=verify) as http:
            for _ in range(3000):
                if stop.is_set():
                    return
                try:
                    response = await http.post("/api/v1/sessions/refresh", json={"refresh_token": refresh})
                    statuses[response.status_code] += 1
                    if response.status_code != 201:
                        errors.append(response.text[:200])
                        continue
                    refresh, token = response.json()["refresh_token"], response.json()["access_token"]
                    response = await http.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
                    statuses[response.status_code] += 1
                    if response.status_code != 200:
                        errors.append(response.text[:200])
                except httpx.HTTPError as error:
                    statuses["error"] += 1
                    errors.append(repr(error))

    tasks = [asyncio.create_task(client(s)) for s in await sessions(args.url, verify, args.data_dir, args.clients)]
    print("the app's connections before:", app_clients(args.data_dir))
    summit = str(Path(sys.executable).with_name("summit"))
    for n in range(1, args.rotations + 1):
        await asyncio.sleep(2)
        done = await asyncio.to_thread(subprocess.run, [summit, "secrets", "rotate", "db/app", "--data-dir", str(args.data_dir)],
                                       capture_output=True, text=True)  # fmt: skip
        print(done.stdout.strip() or done.stderr.strip())
        await asyncio.sleep(3)
        print(f"the app's connections 3 s after rotation {n}:", app_clients(args.data_dir))
    stop.set()
    await asyncio.gather(*tasks)
    print("HTTP statuses:", dict(statuses), "errors:", errors[:5])


if __name__ == "__main__":
    asyncio.run(main())
