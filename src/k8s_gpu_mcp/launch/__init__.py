"""Getting the agent onto a node: the kubectl-debug syringe (``connect node/NAME``)."""
