"""Results and files: the self-describing xarray dataset built from a trajectory, NetCDF I/O,
provenance, the summary table and `simulate` (parameters + levers -> dataset)."""
