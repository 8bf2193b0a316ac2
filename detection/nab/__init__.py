"""The Numenta Anomaly Benchmark: corpus loader, scorer, and reference detectors.

``corpus`` reads the NAB v1.1 data, windows and profiles; ``scoring`` implements NAB's scoring
(windows, scaled sigmoid, probationary period, profiles, corpus-wide threshold, normalisation);
``detectors`` runs our streaming detector and the windowed-Gaussian baseline over a series.
"""
