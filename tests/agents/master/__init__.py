"""master-my-data: entity resolution, survivorship, golden records and the master agents."""
