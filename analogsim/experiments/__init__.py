"""Experiments a researcher runs on simulated chips: demo, train, sweep, mortality, drift.

- :mod:`~analogsim.experiments.config`: TOML configs, validated against a schema up front;
- :mod:`~analogsim.experiments.plans`: the trials of each command;
- :mod:`~analogsim.experiments.trials` and :mod:`~analogsim.experiments.timeline`: what one
  trial does;
- :mod:`~analogsim.experiments.runner`: trials in local worker processes or on Ray;
- :mod:`~analogsim.experiments.results`: HDF5 results, each finished trial kept atomically;
- :mod:`~analogsim.experiments.plots`, :mod:`~analogsim.experiments.tables` and
  :mod:`~analogsim.experiments.demo`: figures and tables.

Submodules are imported where they are used, so importing this package is cheap.
"""
