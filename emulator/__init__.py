"""Local AWS emulator: moto in server mode with the SAM application deployed from template.yaml.

Not shipped to Lambda. The product code under ``functions/`` runs unchanged: the emulator
deploys what AWS's SAM transform makes of the template (see :mod:`emulator.sam`) into moto,
runs every Lambda invocation in-process (see :mod:`emulator.lambda_runtime`) and delivers
EventBridge events to Lambda and Step Functions targets (see :mod:`emulator.event_delivery`).

Start it with ``python -m emulator --port 4566`` (``make local``), or from tests with
:func:`emulator.testing.running_emulator`.
"""
