"""Sweeps and comparisons: combining a sweep's jobs, chunked ensembles, deaths averted against a
baseline, resume, rerun from provenance, figures and the sweep report."""
