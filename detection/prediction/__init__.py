"""Failure prediction: remaining-useful-life regression and failure-within-horizon
classification (scikit-learn estimators over :mod:`detection.features`), training from the
platform's history, and the versioned model store the online service loads from."""
