"""Genesis artifacts: the world's services (ledger, world control; later oracle, market...)."""
