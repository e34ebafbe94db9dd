"""The plan object: the rounds Discover plans, in the stack's plan bucket, read by RunRounds'
distributed Map (``ItemReader``) and by the report, deleted when the reconcile ends."""

from __future__ import annotations

import json
from typing import Any

from .aws import Access, Location, aws_call, safe_name
from .errors import ConfigurationError
from .models.network import NetworkPlanDocument, RoundRun
from .observability import logger
from .settings import Settings

#: Where the plan objects are, in the plan bucket (the only prefix Discover may write).
PLAN_PREFIX = "plans/"


def plan_key(execution_name: str) -> str:
    return f"{PLAN_PREFIX}{safe_name(execution_name)}.json"


def write_plan(doc: NetworkPlanDocument, access: Access, settings: Settings) -> None:
    """The rounds, as the distributed Map reads them: a JSON array, one item per round."""
    if not doc.rounds:
        return
    if not settings.plan_bucket_name:
        raise ConfigurationError("PLAN_BUCKET_NAME is not configured")
    body = json.dumps([round_.dump() for round_ in doc.rounds]).encode()
    hub = Location(settings.hub_account_id, settings.hub_region)
    with aws_call(f"s3:PutObject {doc.plan_key}", hub):
        access.client("s3", hub).put_object(
            Bucket=settings.plan_bucket_name,
            Key=doc.plan_key,
            Body=body,
            ContentType="application/json",
        )


def read_plan(key: str, access: Access, settings: Settings) -> list[RoundRun]:
    """The plan object's rounds; [] (logged) when it cannot be read: the report still counts
    everything, it only cannot name the pairs done."""
    if not key or not settings.plan_bucket_name:
        return []
    hub = Location(settings.hub_account_id, settings.hub_region)
    try:
        with aws_call(f"s3:GetObject {key}", hub):
            body = access.client("s3", hub).get_object(Bucket=settings.plan_bucket_name, Key=key)
            rounds = json.loads(body["Body"].read())
        return [RoundRun.model_validate(r) for r in rounds]
    except Exception as exc:  # the report goes on without the names
        logger.warning("plan not read", key=key, error=type(exc).__name__)
        return []


def delete_plan(key: str, access: Access, settings: Settings) -> None:
    """The plan object is done with (the bucket's lifecycle rule expires any left behind)."""
    if key and settings.plan_bucket_name:
        delete_object(key, access, settings)


def delete_object(key: str, access: Access, settings: Settings) -> None:
    """An object of the plan bucket done with; logged when it cannot be (it expires)."""
    hub = Location(settings.hub_account_id, settings.hub_region)
    try:
        with aws_call(f"s3:DeleteObject {key}", hub):
            access.client("s3", hub).delete_object(Bucket=settings.plan_bucket_name, Key=key)
    except Exception as exc:  # expired by the lifecycle rule instead
        logger.warning("plan object not deleted", key=key, error=type(exc).__name__)


def round_results(rounds: Any, access: Access, settings: Settings) -> list[dict[str, Any]]:
    """Each round's entry in RunRounds' results, read from where its ResultWriter put them
    (``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``: the manifest, which lists a
    file of child results per status) and deleted. A succeeded round's entry is its output
    (RecordRound's outcome); a failed one's, its execution result (Status FAILED, Error, Cause,
    Input); a round never started, a failed one. Raises TransientAwsError (named) when the
    results cannot be read."""
    details = rounds.get("ResultWriterDetails") if isinstance(rounds, dict) else None
    if not isinstance(details, dict):
        return []
    hub = Location(settings.hub_account_id, settings.hub_region)
    s3 = access.client("s3", hub)
    bucket, key = str(details.get("Bucket")), str(details.get("Key"))

    def read(object_key: str) -> Any:
        with aws_call(f"s3:GetObject {object_key}", hub):
            return json.loads(s3.get_object(Bucket=bucket, Key=object_key)["Body"].read())

    manifest = read(key)
    files = manifest.get("ResultFiles") or {}
    entries: list[dict[str, Any]] = []
    keys = [key]
    for status in ("SUCCEEDED", "FAILED", "PENDING"):
        for file in files.get(status) or []:
            keys.append(str(file["Key"]))
            for entry in read(str(file["Key"])):
                if status == "SUCCEEDED":
                    output = json.loads(entry.get("Output") or "{}")
                    entries.append(output if isinstance(output, dict) else {})
                elif status == "FAILED":
                    entries.append(entry)
                else:
                    entries.append(
                        {**entry, "Status": "FAILED", "Error": "RoundNotRun", "Cause": "not run"}
                    )
    for done in keys:
        delete_object(done, access, settings)
    return entries
