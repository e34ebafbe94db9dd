"""Create machine, step 7: read everything back, report, and warn."""

from ..models.documents import PeeringDocument
from ..peering import verify
from ..runtime import document_step

lambda_handler = document_step("Verify", PeeringDocument, verify)
