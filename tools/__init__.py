"""Product tools on the local emulator: ``python -m tools.demo`` (``make demo``), the AWS CLI
tutorial's scenario done by the create and cleanup machines, and ``python -m tools.bench``
(``make bench``), what one peering costs against budgets.

The emulator itself (:mod:`emulator`) knows nothing of this product; what is product-specific
(the state machines' logical ids, the tutorial's request, the budgets) lives here.
"""

#: The template's state machines, by logical id (``EmulatorHandle.state_machine_arn``).
CREATE_MACHINE = "CreateStateMachine"
CLEANUP_MACHINE = "CleanupStateMachine"
RECONCILE_MACHINE = "ReconcileStateMachine"
