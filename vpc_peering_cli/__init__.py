"""``vpc-peering``: start this application's state machines and follow them, state by state.

Ships without the emulator and the functions: it talks to Step Functions, CloudFormation, STS
and EC2 through boto3 only, on AWS or on any endpoint that answers like it (``--endpoint-url``).
"""

#: The stack name `sam deploy` and the emulator use unless told otherwise.
DEFAULT_STACK_NAME = "vpc-peering"
