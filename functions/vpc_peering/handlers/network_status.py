"""The network as the hub reads it (vpc-peering status, list, graph): read only."""

from ..reconcile import read_status
from ..runtime import request_step

lambda_handler = request_step("NetworkStatus", read_status)
