"""Parameter models of every agent, one module per agent, importable without Polars (the API's catalog
publishes them as JSON Schema). Names, defaults and meanings follow Agensium (reference/agents.md §1.4–1.6)
so that an existing ``parameters.json`` keyed by agent id works unchanged; additions are documented per
field."""
