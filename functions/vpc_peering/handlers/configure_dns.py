"""Create machine, step 5: DNS resolution across the peering, when asked."""

from ..models.documents import PeeringDocument
from ..peering import configure_dns
from ..runtime import document_step

lambda_handler = document_step("ConfigureDns", PeeringDocument, configure_dns)
