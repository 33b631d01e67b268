"""search-my-data's agents: the searcher (selected rows, sorted and paged) and the aggregator (groups and metrics)."""
