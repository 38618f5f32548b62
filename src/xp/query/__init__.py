"""Reading runs: resolution, the SQLite index, the filter language, search, diff."""
