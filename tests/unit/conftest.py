"""Unit-test fixtures: fake AWS credentials and the stack's environment, moto, and factories.

Everything runs in-process against moto's ``mock_aws``; nothing reaches the network. The
environment is template.yaml's (``environment.py``), and moto has the stack's lock table, so
the functions take and give back pair leases as deployed. Factories build VPCs, subnets and
route tables in moto (in the hub account, or in a member account reached through STS like the
functions do) and return plain ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

# Powertools reads its settings when ``vpc_peering.observability`` is imported: tests/conftest.py
# sets them before any test module is collected.
from emulator import ec2_fixes, stale_security_groups
from vpc_peering import callbacks, runtime, teardown
from vpc_peering.aws import Access, Location
from vpc_peering.settings import Settings

from .environment import ENV, LOCK_TABLE
from .helpers import (
    HUB_ACCOUNT,
    MEMBER_ROLE_NAME,
    OPTIONAL_ENV,
    REGION,
    FakeLambdaContext,
    FakeStepFunctions,
    TutorialVpcs,
)


@pytest.fixture(scope="session", autouse=True)
def moto_as_aws() -> None:
    """moto's EC2 where it differs from AWS in what the functions read (filters with several
    values, peering filters, blackhole routes): the emulator's own fixes, so that a unit test
    sees what AWS (and the emulator) would answer."""
    ec2_fixes.install()
    stale_security_groups.install()


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_loader() -> Iterator[None]:
    """Speed only: every boto3 session (the functions make one per ``Access``) shares one
    loader, so the EC2 service model is parsed once per run instead of once per test."""
    loaders: dict[str | None, botocore.loaders.Loader] = {}

    def create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loaders[search_path_string] = botocore.loaders.create_loader(search_path_string)
        return loaders[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", create_loader)
        yield


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and the stack's environment; settings re-read for every test."""
    for key in OPTIONAL_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    # moto is consistent at once: no need to wait out EC2's eventual consistency here.
    monkeypatch.setattr(teardown, "NOT_FOUND_WAIT_SECONDS", 0.0)
    monkeypatch.setattr(teardown, "TAG_SEARCH_INTERVAL_SECONDS", 0.0)
    runtime.load_settings.cache_clear()
    yield
    runtime.load_settings.cache_clear()


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    """moto's in-process AWS; every test using it starts from an empty account that has only
    the stack's lock table (so the functions take and give back pair leases, as deployed) and
    its plan bucket."""
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(**LOCK_TABLE)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=ENV["PLAN_BUCKET_NAME"])
        yield


@pytest.fixture
def settings() -> Settings:
    """The stack settings as the functions read them (after any env a test set first)."""
    return Settings.from_env()


@pytest.fixture
def access(aws: None, settings: Settings) -> Access:
    return Access(settings)


@pytest.fixture
def ec2(aws: None) -> Any:
    """The hub account's EC2 client (moto's default account)."""
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def ec2_in(aws: None, ec2: Any) -> Callable[[str], Any]:
    """EC2 client in an account: the hub's own, or through STS AssumeRole of the member role."""
    clients: dict[str, Any] = {HUB_ACCOUNT: ec2}

    def client(account: str) -> Any:
        if account not in clients:
            creds = boto3.client("sts", region_name=REGION).assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE_NAME}",
                RoleSessionName="unit-tests",
            )["Credentials"]
            clients[account] = boto3.client(
                "ec2",
                region_name=REGION,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        return clients[account]

    return client


@pytest.fixture
def make_vpc(ec2_in: Callable[[str], Any]) -> Callable[..., str]:
    """A VPC with a primary CIDR, optional secondary CIDRs, Amazon IPv6 block and tags."""

    def make(
        cidr: str,
        *,
        account: str = HUB_ACCOUNT,
        secondary: tuple[str, ...] = (),
        ipv6: bool = False,
        tags: dict[str, str] | None = None,
    ) -> str:
        client = ec2_in(account)
        kwargs: dict[str, Any] = {"CidrBlock": cidr, "AmazonProvidedIpv6CidrBlock": ipv6}
        if tags:
            kwargs["TagSpecifications"] = [
                {"ResourceType": "vpc", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        vpc_id: str = client.create_vpc(**kwargs)["Vpc"]["VpcId"]
        for block in secondary:
            client.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=block)
        return vpc_id

    return make


@pytest.fixture
def make_subnet(ec2_in: Callable[[str], Any]) -> Callable[..., str]:
    def make(vpc_id: str, cidr: str, *, account: str = HUB_ACCOUNT) -> str:
        subnet = ec2_in(account).create_subnet(VpcId=vpc_id, CidrBlock=cidr)["Subnet"]
        return str(subnet["SubnetId"])

    return make


@pytest.fixture
def make_route_table(ec2_in: Callable[[str], Any]) -> Callable[..., str]:
    """A new (non-main) route table, explicitly associated with the given subnets."""

    def make(
        vpc_id: str,
        *,
        subnet_ids: tuple[str, ...] = (),
        account: str = HUB_ACCOUNT,
        tags: dict[str, str] | None = None,
    ) -> str:
        client = ec2_in(account)
        kwargs: dict[str, Any] = {"VpcId": vpc_id}
        if tags:
            kwargs["TagSpecifications"] = [
                {
                    "ResourceType": "route-table",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ]
        rtb_id: str = client.create_route_table(**kwargs)["RouteTable"]["RouteTableId"]
        for subnet in subnet_ids:
            client.associate_route_table(RouteTableId=rtb_id, SubnetId=subnet)
        return rtb_id

    return make


@pytest.fixture
def main_table(ec2_in: Callable[[str], Any]) -> Callable[..., str]:
    """The id of a VPC's main route table."""

    def find(vpc_id: str, *, account: str = HUB_ACCOUNT) -> str:
        tables = ec2_in(account).describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
        )["RouteTables"]
        mains = [
            t["RouteTableId"]
            for t in tables
            if t["VpcId"] == vpc_id and any(a.get("Main") for a in t.get("Associations", []))
        ]
        assert len(mains) == 1, tables
        return str(mains[0])

    return find


@pytest.fixture
def make_igw(ec2_in: Callable[[str], Any]) -> Callable[..., str]:
    """An internet gateway attached to the VPC."""

    def make(vpc_id: str, *, account: str = HUB_ACCOUNT) -> str:
        client = ec2_in(account)
        igw_id: str = client.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        client.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
        return igw_id

    return make


@pytest.fixture
def tutorial(make_vpc: Callable[..., str], make_subnet: Callable[..., str]) -> TutorialVpcs:
    vpc1 = make_vpc("10.0.0.0/16", tags={"Name": "vpc1"})
    vpc2 = make_vpc("172.16.0.0/16", tags={"Name": "vpc2"})
    return TutorialVpcs(
        vpc1=vpc1,
        subnet1=make_subnet(vpc1, "10.0.0.0/24"),
        vpc2=vpc2,
        subnet2=make_subnet(vpc2, "172.16.0.0/24"),
    )


@pytest.fixture
def ec2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the EC2 operations the functions call (through ``Access``), in order; their
    other calls (STS, the lease in DynamoDB, Step Functions) are not recorded."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    original = Access.client

    def client(self: Access, service: str, loc: Location) -> Any:
        made = original(self, service, loc)
        if service == "ec2":
            made.meta.events.register("before-call", record, unique_id="unit-tests-ec2-calls")
        return made

    monkeypatch.setattr(Access, "client", client)
    return calls


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def fake_sfn(monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:
    """The accept function's Step Functions client (heartbeat, success, failure), recorded."""
    fake = FakeStepFunctions()
    monkeypatch.setattr(callbacks, "_client", lambda access, hub: fake)
    return fake
