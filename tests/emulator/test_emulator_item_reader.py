"""A bucket from the template, and a distributed Map reading its items from it (ItemReader).

moto's Step Functions interpreter reads the object through its own S3 client at
``localhost:$MOTO_PORT`` with the access key ``ak``: the emulator exports its own port, and
that key lands in moto's default account, the stack's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.testing import EmulatorHandle, running_emulator

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Plans:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}
      PublicAccessBlockConfiguration:
        BlockPublicAcls: true
        BlockPublicPolicy: true
        IgnorePublicAcls: true
        RestrictPublicBuckets: true
      LifecycleConfiguration:
        Rules:
          - Id: expire
            Status: Enabled
            ExpirationInDays: 3
  PlansPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Plans
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Sid: TlsOnly
            Effect: Deny
            Principal: "*"
            Action: "s3:*"
            Resource: [!GetAtt Plans.Arn, !Sub "${Plans.Arn}/*"]
            Condition: {Bool: {"aws:SecureTransport": "false"}}
  Reader:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub ${AWS::StackName}-reader
      Type: STANDARD
      DefinitionUri: reader.asl.json
      DefinitionSubstitutions:
        Bucket: !Ref Plans
  Writer:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: !Sub ${AWS::StackName}-writer
      Type: STANDARD
      DefinitionUri: writer.asl.json
      DefinitionSubstitutions:
        Bucket: !Ref Plans
Outputs:
  BucketName:
    Value: !Ref Plans
  BucketArn:
    Value: !GetAtt Plans.Arn
"""

ASL = {
    "StartAt": "Rounds",
    "States": {
        "Rounds": {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": "${Bucket}", "Key.$": "$.Key"},
            },
            "ItemSelector": {"Round.$": "$$.Map.Item.Value", "Tag.$": "$.Tag"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Echo",
                "States": {"Echo": {"Type": "Pass", "End": True}},
            },
            "MaxConcurrency": 1,
            "ToleratedFailurePercentage": 100,
            "Label": "Rounds",
            "ResultPath": "$.Rounds",
            "End": True,
        }
    },
}


#: A Map writing its children's results to the bucket (ResultWriter); an item with "Fail"
#: fails its child.
WRITER_ASL = {
    "StartAt": "Rounds",
    "States": {
        "Rounds": {
            "Type": "Map",
            "ItemReader": ASL["States"]["Rounds"]["ItemReader"],
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Check",
                "States": {
                    "Check": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.Fail", "IsPresent": True, "Next": "Broken"}],
                        "Default": "Done",
                    },
                    "Broken": {"Type": "Fail", "Error": "RoundBroke", "Cause": "as asked"},
                    "Done": {
                        "Type": "Pass",
                        "Result": {"Ok": True},
                        "ResultPath": "$.Seen",
                        "End": True,
                    },
                },
            },
            "MaxConcurrency": 1,
            "ToleratedFailurePercentage": 100,
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "${Bucket}", "Prefix": "results"},
            },
            "ResultPath": "$.Rounds",
            "End": True,
        }
    },
}


@pytest.fixture(scope="module")
def reader_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    root = tmp_path_factory.mktemp("reader-stack")
    (root / "template.yaml").write_text(TEMPLATE)
    (root / "reader.asl.json").write_text(json.dumps(ASL))
    (root / "writer.asl.json").write_text(json.dumps(WRITER_ASL))
    with running_emulator(template=root / "template.yaml", stack_name="reader") as handle:
        yield handle


def _finished(handle: EmulatorHandle, arn: str, timeout: float = 30.0) -> dict[str, Any]:
    sfn = handle.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.1)


def test_the_bucket_is_deployed_private_encrypted_and_expiring(
    reader_emulator: EmulatorHandle,
) -> None:
    # Given the template's bucket
    s3 = reader_emulator.client("s3")
    bucket = reader_emulator.outputs["BucketName"]
    # Then it is named for the stack, lowercase, and carries what the template declares
    assert bucket == "reader-plans-123456789012-us-east-1"
    assert reader_emulator.outputs["BucketArn"] == f"arn:aws:s3:::{bucket}"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert len(block) == 4
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle[0]["Expiration"]["Days"] == 3
    assert lifecycle[0]["Status"] == "Enabled"
    # And its TLS-only policy is not given to moto, which would deny every plain-HTTP call
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=bucket)


def test_a_distributed_map_reads_its_items_from_the_bucket(
    reader_emulator: EmulatorHandle,
) -> None:
    # Given a JSON array of rounds in the bucket
    bucket = reader_emulator.outputs["BucketName"]
    rounds = [{"Pairs": [{"Name": "a"}, {"Name": "b"}]}, {"Pairs": [{"Name": "c"}]}]
    reader_emulator.client("s3").put_object(
        Bucket=bucket, Key="plans/run-1.json", Body=json.dumps(rounds).encode()
    )
    # When the machine's Map reads them with ItemReader (s3:getObject, InputType JSON)
    started = reader_emulator.client("stepfunctions").start_execution(
        stateMachineArn=reader_emulator.state_machine_arn("Reader"),
        input=json.dumps({"Key": "plans/run-1.json", "Tag": "t"}),
    )
    execution = _finished(reader_emulator, started["executionArn"])
    # Then each item is one iteration, in order, with the ItemSelector applied
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["Rounds"] == [{"Round": r, "Tag": "t"} for r in rounds]
    # And the interpreter's S3 read was served by the emulator, in the stack's account
    reads = [c for c in reader_emulator.calls() if c["operation"] == "GetObject"]
    assert reads
    assert all(c["account"] == reader_emulator.account_id for c in reads)


def test_a_missing_object_fails_the_map(reader_emulator: EmulatorHandle) -> None:
    # Given no object at the key
    started = reader_emulator.client("stepfunctions").start_execution(
        stateMachineArn=reader_emulator.state_machine_arn("Reader"),
        input=json.dumps({"Key": "plans/none.json", "Tag": "t"}),
    )
    # Then the execution fails (S3's NoSuchKey), it does not run an empty Map
    assert _finished(reader_emulator, started["executionArn"])["status"] == "FAILED"


def test_a_result_writer_exports_each_childs_result_by_status(
    reader_emulator: EmulatorHandle,
) -> None:
    # Given three items, the second of which fails its child
    s3 = reader_emulator.client("s3")
    bucket = reader_emulator.outputs["BucketName"]
    items = [{"N": 1}, {"N": 2, "Fail": True}, {"N": 3}]
    s3.put_object(Bucket=bucket, Key="plans/run-2.json", Body=json.dumps(items).encode())
    # When the Map runs them with a ResultWriter
    started = reader_emulator.client("stepfunctions").start_execution(
        stateMachineArn=reader_emulator.state_machine_arn("Writer"),
        input=json.dumps({"Key": "plans/run-2.json"}),
    )
    execution = _finished(reader_emulator, started["executionArn"])
    # Then the Map's result is only the Map Run and where its manifest is
    assert execution["status"] == "SUCCEEDED", execution
    result = json.loads(execution["output"])["Rounds"]
    assert set(result) == {"MapRunArn", "ResultWriterDetails"}
    details = result["ResultWriterDetails"]
    assert details["Bucket"] == bucket
    assert details["Key"].startswith("results/")
    assert details["Key"].endswith("/manifest.json")
    # And the manifest lists one file per status, of the children's results (Transformation
    # NONE: each with its input and, when it succeeded, its output as JSON text)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=details["Key"])["Body"].read())
    assert manifest["MapRunArn"] == result["MapRunArn"]
    assert manifest["DestinationBucket"] == bucket
    assert manifest["ResultFiles"]["PENDING"] == []

    def read(status: str) -> list[dict[str, Any]]:
        (file,) = manifest["ResultFiles"][status]
        assert file["Key"].endswith(f"/{status}_0.json")
        body = s3.get_object(Bucket=bucket, Key=file["Key"])["Body"].read()
        assert file["Size"] == len(body)
        return list(json.loads(body))

    succeeded = read("SUCCEEDED")
    assert [json.loads(e["Input"]) for e in succeeded] == [items[0], items[2]]
    assert [json.loads(e["Output"]) for e in succeeded] == [
        {**items[0], "Seen": {"Ok": True}},
        {**items[2], "Seen": {"Ok": True}},
    ]
    assert {e["Status"] for e in succeeded} == {"SUCCEEDED"}
    (failed,) = read("FAILED")
    assert failed["Status"] == "FAILED"
    assert (failed["Error"], failed["Cause"]) == ("RoundBroke", "as asked")
    assert json.loads(failed["Input"]) == items[1]
