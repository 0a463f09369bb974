"""Calibration: targets (the article's figures and the public series), the penalised least-squares
fit, the posterior ensemble and the fit report."""
