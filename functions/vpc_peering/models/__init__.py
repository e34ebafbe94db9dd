"""The pydantic models, by role: ``vocabulary`` (patterns, tag keys, base models),
``requests`` (the machines' inputs), ``documents`` (the create and cleanup machines' state
and outputs), ``network`` (the reconcile machine's), ``messages`` (bad input, told). A
handler imports only the modules it uses: nothing is re-exported here."""
