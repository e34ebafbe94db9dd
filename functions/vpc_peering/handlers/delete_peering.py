"""Cleanup machine, step 3: delete the peering and confirm it is gone."""

from ..models.documents import CleanupDocument
from ..runtime import document_step
from ..teardown import delete_peering

lambda_handler = document_step("DeletePeering", CleanupDocument, delete_peering)
