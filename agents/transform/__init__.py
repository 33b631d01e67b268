"""The transformer agent (tool ``transform-my-data``): whitelisted operations as data, English commands parsed by
a grammar into exactly those operations, resolution against the data's columns, and a lazy Polars executor.
Nothing here executes text: commands and expressions are parsed, never evaluated."""
