"""Run Firewall calls from inside the client namespace and print their outcomes as JSON.

    python -m tests.lab.fw_client CONFIG_DIR < requests.json

requests.json: a list of {"method": "Set"|"Confirm"|"Get"|"Reset", "request": {...proto JSON...}}.
Each outcome: {"code": "OK"|status name, "details": str, "state": {...}}. A fresh connection per
call, like satctl's confirm.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import grpc
from google.protobuf import json_format

from satbridge.api.v1 import firewall_pb2, firewall_pb2_grpc
from satbridge.client.inventory import Inventory
from satbridge.client.session import management_channel

REQUESTS = {
    "Set": firewall_pb2.SetFirewallRequest,
    "Confirm": firewall_pb2.ConfirmFirewallRequest,
    "Get": firewall_pb2.GetFirewallRequest,
    "Reset": firewall_pb2.ResetFirewallRequest,
}


async def main(config_dir: Path, calls: list[dict[str, object]]) -> list[dict[str, object]]:
    inv = Inventory.load(config_dir)
    sat = inv.get(None)
    out: list[dict[str, object]] = []
    for call in calls:
        name = str(call["method"])
        request = json_format.ParseDict(call.get("request", {}), REQUESTS[name]())
        async with management_channel(sat, inv.client_key()) as channel:
            stub = firewall_pb2_grpc.FirewallStub(channel)
            try:
                state = await getattr(stub, name)(request, timeout=30)
            except grpc.aio.AioRpcError as exc:
                out.append({"code": exc.code().name, "details": exc.details() or ""})
                continue
        out.append({"code": "OK", "details": "", "state": json_format.MessageToDict(state)})
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), json.load(sys.stdin)))))
