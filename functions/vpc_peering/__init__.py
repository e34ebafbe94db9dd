"""VPC peering automation: the domain code shared by every Lambda function of the stack."""
