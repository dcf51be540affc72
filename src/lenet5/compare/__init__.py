"""Controlled experiments that check the lab handout's claims: ``lenet5 compare``.

- :mod:`.studies`: the built-in studies (one per claim) and custom ``--grid`` studies;
- :mod:`.store`: the Optuna study store (SQLite by default, any database URL to share);
- :mod:`.runner`: trial processes, each one a normal training run with its own run folder;
- :mod:`.extras`: measurements beyond fit's summary (train()-mode accuracy, last-epoch accuracy);
- :mod:`.metrics`, :mod:`.verdict`, :mod:`.report`: the numbers, the verdicts and report.md/html.
"""
