"""The plugin (pagedbench.plugin) is registered by its pytest11 entry point; naming it here as well keeps a
checkout whose editable install predates the entry point working. Registering it twice is harmless: pytest
skips a plugin already known by this name."""

pytest_plugins = ["pagedbench.plugin"]
