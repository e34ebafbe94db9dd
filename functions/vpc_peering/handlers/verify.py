"""Create machine, step 6: read everything back and report."""

from ..models import PeeringDocument
from ..peering import verify
from ..runtime import document_step

lambda_handler = document_step("Verify", PeeringDocument, verify)
