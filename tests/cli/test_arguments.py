"""The command line and the execution inputs it builds (no AWS call, no emulator)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vpc_peering_cli.__main__ import build_parser, main
from vpc_peering_cli.aws import UsageError
from vpc_peering_cli.inputs import (
    SideOptions,
    cleanup_input,
    create_input,
    read_input_file,
    reconcile_input,
)


def parse(*argv: str) -> argparse.Namespace:
    parser, _ = build_parser()
    return parser.parse_args(list(argv))


def test_global_options_come_before_the_command_with_aws_defaults() -> None:
    # Given global options before the command, as with aws
    # When parsed
    args = parse("--endpoint-url", "http://127.0.0.1:4566", "--output", "json", "list")

    # Then they are read, and the others keep their defaults
    assert args.endpoint_url == "http://127.0.0.1:4566"
    assert args.output == "json"
    assert args.stack_name == "vpc-peering"
    assert args.no_wait is False
    assert args.region is None


def test_reconcile_region_is_the_vpcs_and_leaves_the_global_region_alone() -> None:
    # Given a global --region and the reconcile command's own --region
    # When parsed
    args = parse("--region", "eu-west-1", "reconcile", "--vpc", "vpc-1", "--region", "us-west-2")

    # Then each keeps its own meaning
    assert args.region == "eu-west-1"
    assert args.vpc_region == "us-west-2"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["--output", "yaml", "list"],
        ["list", "--endpoint-url", "http://x"],  # global options go before the command
        ["watch"],
        ["create", "--dns=yes"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given a command line argparse refuses
    # When run
    with pytest.raises(SystemExit) as exited:
        main(argv)

    # Then it exits 2 with the usage
    assert exited.value.code == 2
    assert "usage: vpc-peering" in capsys.readouterr().err


def test_create_without_a_requester_vpc_is_a_usage_error_before_any_aws_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a create without --requester-vpc (and no credentials or endpoint at all)
    # When run
    code = main(["--endpoint-url", "http://127.0.0.1:9", "create", "--accepter-vpc", "vpc-1"])

    # Then it exits 2 naming the flag, under the command's usage
    err = capsys.readouterr().err
    assert code == 2
    assert "usage: vpc-peering create" in err
    assert "--requester-vpc is required" in err


def test_create_input_from_flags_only_names_what_was_given() -> None:
    # Given the two VPC ids only
    # When the input is built
    request = create_input(SideOptions("vpc-1"), SideOptions("vpc-2"))

    # Then it is the minimal request: account, region, DNS and the rest are the machine's defaults
    assert request == {"Requester": {"VpcId": "vpc-1"}, "Accepter": {"VpcId": "vpc-2"}}


def test_create_flags_set_dns_dry_run_adopt_and_locations() -> None:
    # Given every create flag
    # When the input is built
    request = create_input(
        SideOptions("vpc-1", "111111111111", "eu-west-1"),
        SideOptions("vpc-2", "222222222222", "us-west-2"),
        dns=True,
        dry_run=True,
        adopt=True,
    )

    # Then each lands in its documented field
    assert request == {
        "Requester": {"VpcId": "vpc-1", "AccountId": "111111111111", "Region": "eu-west-1"},
        "Accepter": {"VpcId": "vpc-2", "AccountId": "222222222222", "Region": "us-west-2"},
        "DnsResolution": True,
        "DryRun": True,
        "Adopt": True,
    }


def test_flags_override_the_input_file_and_keep_its_other_fields(tmp_path: Path) -> None:
    # Given an input file with route options, tags and DNS off
    path = tmp_path / "request.json"
    path.write_text(
        json.dumps(
            {
                "Requester": {"VpcId": "vpc-old", "RouteTables": "main"},
                "Accepter": {"VpcId": "vpc-2", "Region": "eu-west-1"},
                "Tags": {"Name": "A-B"},
                "DnsResolution": False,
            }
        )
    )

    # When flags name another requester VPC and turn DNS on
    request = create_input(
        SideOptions("vpc-new"), SideOptions(), dns=True, base=read_input_file(str(path))
    )

    # Then the flags win, and everything else in the file is kept
    assert request == {
        "Requester": {"VpcId": "vpc-new", "RouteTables": "main"},
        "Accepter": {"VpcId": "vpc-2", "Region": "eu-west-1"},
        "Tags": {"Name": "A-B"},
        "DnsResolution": True,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [("[1, 2]", "must hold a JSON object"), ("{not json", "not JSON")],
)
def test_an_input_file_that_is_not_a_json_object_is_a_usage_error(
    tmp_path: Path, content: str, message: str
) -> None:
    # Given a file that is not a JSON object
    path = tmp_path / "bad.json"
    path.write_text(content)

    # When read / Then a usage error names the file and what is wrong
    with pytest.raises(UsageError, match=message):
        read_input_file(str(path))


def test_a_missing_input_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read it"):
        read_input_file(str(tmp_path / "absent.json"))


def test_cleanup_input_is_the_id_or_the_file_as_it_is() -> None:
    # Given a peering id, a create output, or both
    create_output = {"VpcPeeringConnectionId": "pcx-1", "Requester": {"VpcId": "vpc-1"}}

    # When the cleanup inputs are built / Then: the id alone; the file as it is; the id over it
    assert cleanup_input("pcx-9", None) == {"VpcPeeringConnectionId": "pcx-9"}
    assert cleanup_input(None, create_output) == create_output
    assert cleanup_input("pcx-9", create_output)["VpcPeeringConnectionId"] == "pcx-9"
    with pytest.raises(UsageError, match="peering id"):
        cleanup_input(None, None)


def test_reconcile_input_for_everything_a_group_or_a_vpc() -> None:
    # Given each scope the reconcile command takes
    # When built / Then each is the reconcile machine's documented input
    assert reconcile_input(None, None) == {}
    assert reconcile_input("blue", None) == {"Group": "blue"}
    assert reconcile_input(None, SideOptions("vpc-1")) == {"Vpc": {"VpcId": "vpc-1"}}


def test_reconcile_dry_run_and_confirm_removals_flags() -> None:
    # Given the flags on the command line
    args = parse("reconcile", "--group", "blue", "--dry-run", "--confirm-removals")
    # When built / Then they are the reconcile input's DryRun and ConfirmRemovals
    request = reconcile_input(args.group, None, args.dry_run, args.confirm_removals)
    assert request == {"Group": "blue", "DryRun": True, "ConfirmRemovals": True}
    assert reconcile_input(None, None, dry_run=True) == {"DryRun": True}
    assert reconcile_input(None, SideOptions("vpc-1", "123456789012", "eu-west-1")) == {
        "Vpc": {"VpcId": "vpc-1", "AccountId": "123456789012", "Region": "eu-west-1"}
    }


@pytest.mark.parametrize(
    ("group", "vpc", "message"),
    [
        ("blue", SideOptions("vpc-1"), "not both"),
        (None, SideOptions(None, "123456789012"), "give --vpc too"),
    ],
)
def test_reconcile_scopes_that_contradict_are_usage_errors(
    group: str | None, vpc: SideOptions, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        reconcile_input(group, vpc)


def test_allow_flags_become_security_group_rules() -> None:
    # Given --allow flags: a port from the peer VPC, a range from a peer group, every protocol
    args = parse(
        "create",
        "--requester-vpc",
        "vpc-0a1b2c3d",
        "--accepter-vpc",
        "vpc-4e5f6a7b",
        "--allow",
        "Accepter:sg-0123456789abcdef0:tcp:5432",
        "--allow",
        "requester:sg-00000001:tcp:8000-8080:sg-00000002",
        "--allow",
        "Accepter:sg-00000003:-1:PeerVpc",
    )
    # When the input is built
    request = create_input(
        SideOptions(args.requester_vpc), SideOptions(args.accepter_vpc), allow=args.allow
    )
    # Then each is a SecurityGroupRules item, the source PeerVpc unless a group is named
    assert request["SecurityGroupRules"] == [
        {
            "Side": "Accepter",
            "GroupId": "sg-0123456789abcdef0",
            "Protocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "Source": "PeerVpc",
        },
        {
            "Side": "Requester",
            "GroupId": "sg-00000001",
            "Protocol": "tcp",
            "FromPort": 8000,
            "ToPort": 8080,
            "Source": "sg-00000002",
        },
        {"Side": "Accepter", "GroupId": "sg-00000003", "Protocol": "-1", "Source": "PeerVpc"},
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Accepter:sg-00000001", "expected Side:sg-"),
        ("Both:sg-00000001:tcp:22", "Requester or Accepter"),
        ("Accepter:sg-00000001:tcp", "give a port or range"),
        ("Accepter:sg-00000001:tcp:ssh", "'ssh' is not a port or a range"),
    ],
)
def test_a_malformed_allow_is_a_usage_error_naming_it(text: str, says: str) -> None:
    with pytest.raises(UsageError) as raised:
        create_input(SideOptions("vpc-0a1b2c3d"), SideOptions("vpc-4e5f6a7b"), allow=[text])
    assert says in str(raised.value)
    assert text in str(raised.value)


def test_allow_icmp_takes_a_type_and_code() -> None:
    request = create_input(
        SideOptions("vpc-0a1b2c3d"),
        SideOptions("vpc-4e5f6a7b"),
        allow=["Accepter:sg-00000001:icmp:8", "Accepter:sg-00000001:icmp:3/4:sg-00000002"],
    )
    assert [(r["FromPort"], r["ToPort"], r["Source"]) for r in request["SecurityGroupRules"]] == [
        (8, -1, "PeerVpc"),
        (3, 4, "sg-00000002"),
    ]


VPC1, VPC2 = "vpc-0a1b2c3d4e5f60718", "vpc-0f1e2d3c4b5a69788"
RTB1, RTB2 = "rtb-0a1b2c3d4e5f60718", "rtb-0f1e2d3c4b5a69788"
SUBNET1, SUBNET2 = "subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"


def _create_request(*argv: str) -> dict[str, object]:
    """The create input the command line builds (as dispatch builds it)."""
    from vpc_peering_cli.inputs import CREATE_FLAGS, apply_field_flags, tags_input

    args = parse("create", "--requester-vpc", VPC1, "--accepter-vpc", VPC2, *argv)
    request = create_input(
        SideOptions(args.requester_vpc, args.requester_account, args.requester_region),
        SideOptions(args.accepter_vpc, args.accepter_account, args.accepter_region),
        dns=args.dns,
        dry_run=args.dry_run,
        adopt=args.adopt,
    )
    return tags_input(apply_field_flags(request, args, CREATE_FLAGS), args.tag)


def test_every_create_input_field_has_a_flag() -> None:
    # Given every flag of a create
    request = _create_request(
        "--no-dns", "--force", "--name", "web-db", "--tag", "team=net",
        "--requester-role-arn", "arn:aws:iam::111111111111:role/r",
        "--requester-route-table-ids", f"{RTB1},{RTB2}",
        "--requester-destination-cidrs", "10.0.1.0/24",
        "--requester-ipv6", "--requester-allow-more-specific-routes", "--requester-no-dns",
        "--accepter-route-tables", "main",
        "--accepter-dedicated-route-table", f"{SUBNET1},{SUBNET2}",
        "--accepter-dns",
    )  # fmt: skip
    # Then each lands in its field of the input the create machine validates
    from vpc_peering.models.requests import CreateRequest

    parsed = CreateRequest.model_validate(request)
    assert parsed.dns_resolution is False
    assert parsed.force is True
    assert parsed.tags == {"Name": "web-db", "team": "net"}
    assert parsed.requester.route_table_ids == [RTB1, RTB2]
    assert parsed.requester.destination_cidrs == ["10.0.1.0/24"]
    assert parsed.requester.ipv6 is True
    assert parsed.requester.allow_more_specific_routes is True
    assert parsed.requester.dns_resolution is False
    assert parsed.requester.role_arn == "arn:aws:iam::111111111111:role/r"
    assert parsed.accepter.route_tables == "main"
    assert parsed.accepter.dedicated_route_table is not None
    assert parsed.accepter.dedicated_route_table.subnet_ids == [SUBNET1, SUBNET2]
    assert parsed.accepter.dns_resolution is True


def test_no_dns_turns_dns_off_and_no_flag_leaves_the_input_files_value() -> None:
    assert _create_request("--no-dns")["DnsResolution"] is False
    assert _create_request("--dns")["DnsResolution"] is True
    assert "DnsResolution" not in _create_request()


def test_every_cleanup_input_field_has_a_flag() -> None:
    from vpc_peering.models.requests import CleanupRequest
    from vpc_peering_cli.inputs import CLEANUP_FLAGS, apply_field_flags

    args = parse(
        "cleanup", "pcx-0123456789abcdef0", "--account", "111111111111",
        "--peering-region", "us-west-2", "--role-arn", "arn:aws:iam::111111111111:role/r",
        "--force",
    )  # fmt: skip
    request = apply_field_flags(cleanup_input(args.peering_id, None), args, CLEANUP_FLAGS)
    parsed = CleanupRequest.model_validate(request)
    assert (parsed.account_id, parsed.region) == ("111111111111", "us-west-2")
    assert parsed.role_arn == "arn:aws:iam::111111111111:role/r"
    assert parsed.force is True


def test_errors_name_the_flag_beside_the_field() -> None:
    from vpc_peering_cli.inputs import CREATE_FLAGS, OTHER_FLAGS, name_flags

    flags = [*CREATE_FLAGS, *OTHER_FLAGS]
    said = name_flags(
        "InvalidInput: Requester.DestinationCidrs[0]: '10.0.0.1/8' is not a valid CIDR block",
        flags,
    )
    assert said.startswith(
        "InvalidInput: --requester-destination-cidrs (Requester.DestinationCidrs)[0]"
    )
    said = name_flags("Accepter.DedicatedRouteTable.SubnetIds: must not repeat", flags)
    assert said.startswith("--accepter-dedicated-route-table (Accepter.DedicatedRouteTable")
    assert name_flags("VpcNotFound: Requester.VpcId: vpc-1 not found", flags) == (
        "VpcNotFound: --requester-vpc (Requester.VpcId): vpc-1 not found"
    )
