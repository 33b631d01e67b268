"""master-my-data: keys, contracts, semantic mapping, entity resolution, survivorship and golden records."""
