"""Cleanup machine, step 2: remove the routes to the peering and this stack's route tables."""

from ..models.documents import CleanupDocument
from ..runtime import document_step
from ..teardown import remove_routes

lambda_handler = document_step("RemoveRoutes", CleanupDocument, remove_routes)
