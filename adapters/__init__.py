"""Platform adapters: they translate between a platform and the engine, and decide nothing."""
