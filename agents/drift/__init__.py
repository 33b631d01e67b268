"""The drift-detector agent: distribution and schema drift of the primary input against a baseline."""
