"""Create machine, step 2: create the peering (or reuse the pair's live one), tagged."""

from ..models.documents import PeeringDocument
from ..peering import create_peering
from ..runtime import document_step

lambda_handler = document_step("CreatePeering", PeeringDocument, create_peering)
