"""Plain helpers and constants the unit tests share (fixtures live in ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from emulator.testing import is_mutating
from vpc_peering import acceptance, peering
from vpc_peering.aws import Access
from vpc_peering.models.documents import PeeringDocument
from vpc_peering.models.messages import parse
from vpc_peering.models.requests import AcceptanceRequest
from vpc_peering.settings import Settings

from .environment import ENV, HUB_ACCOUNT, REGION

Step = Callable[[PeeringDocument, Access, Settings], PeeringDocument]

MEMBER_ACCOUNT = "111111111111"
MEMBER_ROLE_NAME = ENV["MEMBER_ROLE_NAME"]
STACK_NAME = ENV["STACK_NAME"]

#: Environment variables the template does not set and a test may; cleared so the host's
#: values never leak in.
OPTIONAL_ENV = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_STS",
    "AWS_LAMBDA_FUNCTION_NAME",
    "LAMBDA_TASK_ROOT",
)


@dataclass(frozen=True)
class TutorialVpcs:
    """The tutorial's two VPCs, a subnet each, in the hub account."""

    vpc1: str
    subnet1: str
    vpc2: str
    subnet2: str


def routes_of(client: Any, route_table_id: str) -> dict[str, str]:
    """Destination -> target of every route in a table, as EC2 reports it now."""
    table = client.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"][0]
    routes: dict[str, str] = {}
    for route in table["Routes"]:
        destination = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
        routes[destination] = (
            route.get("VpcPeeringConnectionId")
            or route.get("GatewayId")
            or route.get("TransitGatewayId")
            or "?"
        )
    return routes


def snapshot(*clients: Any) -> dict[str, Any]:
    """Everything a step could change, per client: route tables (routes, associations, tags)
    and peering statuses. Two equal snapshots mean nothing changed in between."""
    state: dict[str, Any] = {}
    for index, client in enumerate(clients):
        tables = {}
        for table in client.describe_route_tables()["RouteTables"]:
            tables[table["RouteTableId"]] = {
                "routes": routes_of(client, table["RouteTableId"]),
                "associations": sorted(
                    (a.get("SubnetId") or "main", a["RouteTableAssociationId"])
                    for a in table.get("Associations", [])
                ),
                "tags": sorted((t["Key"], t["Value"]) for t in table.get("Tags", [])),
            }
        peerings = {
            p["VpcPeeringConnectionId"]: p["Status"]["Code"]
            for p in client.describe_vpc_peering_connections()["VpcPeeringConnections"]
        }
        state[str(index)] = {"tables": tables, "peerings": peerings}
    return state


def peering_status(client: Any, peering_id: str) -> str:
    items = client.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])
    return str(items["VpcPeeringConnections"][0]["Status"]["Code"])


def mutating(calls: list[str]) -> list[str]:
    """The EC2 operations that change something; a rerun must make none of them."""
    return [c for c in calls if is_mutating(c)]


def tutorial_request(t: TutorialVpcs, **extra: Any) -> dict[str, Any]:
    """Peer the tutorial's two VPCs, with only their ids (and ``extra`` top-level fields)."""
    return {"Requester": {"VpcId": t.vpc1}, "Accepter": {"VpcId": t.vpc2}, **extra}


@dataclass
class FakeLambdaContext:
    """What Powertools reads from a Lambda context."""

    function_name: str = "vpc-peering-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{HUB_ACCOUNT}:function:vpc-peering-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/vpc-peering-test"
    log_stream_name: str = "2024/01/01/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class FakeStepFunctions:
    """Records what the accept function reports; with ``heartbeat_error`` set, its heartbeat
    fails with that code (the token is no longer live), else every token is live."""

    heartbeat_error: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send_task_heartbeat(self, **kwargs: Any) -> None:
        self.calls.append(("heartbeat", kwargs))
        if self.heartbeat_error:
            error = {"Error": {"Code": self.heartbeat_error, "Message": "stale"}}
            raise ClientError(error, "SendTaskHeartbeat")  # type: ignore[arg-type]

    def send_task_success(self, **kwargs: Any) -> None:
        self.calls.append(("success", kwargs))

    def send_task_failure(self, **kwargs: Any) -> None:
        self.calls.append(("failure", kwargs))


#: The task token the create machine's RequestAcceptance state would hand out.
TASK_TOKEN = "task-token-1"


def accept_detail(document: dict[str, Any], token: str = TASK_TOKEN) -> dict[str, Any]:
    """The "VPC Peering Acceptance Requested" detail the create machine puts on the bus."""
    return {
        "TaskToken": token,
        "VpcPeeringConnectionId": document["VpcPeeringConnectionId"],
        "Requester": document["Requester"],
        "Accepter": document["Accepter"],
        "ExecutionName": document["ExecutionName"],
    }


def run_step(step: Step, document: dict[str, Any], access: Access, settings: Settings) -> dict:
    """One create-machine step, with the document as JSON in and out, like Step Functions."""
    return step(PeeringDocument.model_validate(document), access, settings).dump()


def accept_into(document: dict[str, Any], access: Access, settings: Settings) -> dict[str, Any]:
    """The RequestAcceptance state: the accept function's output lands in ``Acceptance``."""
    request = parse(AcceptanceRequest, accept_detail(document), root="detail")
    outcome = acceptance.accept(request, access, settings)
    return {**document, "Acceptance": outcome.dump()}


def create_chain(
    request: dict[str, Any], execution: str, access: Access, settings: Settings
) -> dict[str, Any]:
    """The create machine's happy path: plan, create, accept if needed, routes, DNS, verify."""
    document = peering.plan(request, execution, access, settings).dump()
    document = run_step(peering.create_peering, document, access, settings)
    if document["Status"] != "active":
        document = accept_into(document, access, settings)
    for step in (peering.add_routes, peering.configure_dns, peering.verify):
        document = run_step(step, document, access, settings)
    return document
