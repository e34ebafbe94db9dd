"""Create machine, step 4: dedicated route tables and the planned routes on both sides."""

from ..models.documents import PeeringDocument
from ..peering import add_routes
from ..runtime import document_step

lambda_handler = document_step("AddRoutes", PeeringDocument, add_routes)
