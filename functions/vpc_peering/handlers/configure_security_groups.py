"""Create machine, step 6: the security-group rules asked, converged (added, or revoked)."""

from ..models.documents import PeeringDocument
from ..peering import configure_security_groups
from ..runtime import document_step

lambda_handler = document_step(
    "ConfigureSecurityGroups", PeeringDocument, configure_security_groups
)
