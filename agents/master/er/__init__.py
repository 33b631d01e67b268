"""Entity resolution, one step per module: ``normalise`` (match keys per role), ``blocking`` (candidate
pairs), ``compare`` (comparison levels per pair), ``scoring`` (Fellegi–Sunter with EM and term-frequency
adjustment) and ``cluster`` (connected components with a chain guard). ``agents.master.matching.resolve``
runs them in that order."""
