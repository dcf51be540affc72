"""Verdicts and grid parsing: pure functions, checked on hand-made numbers."""

from __future__ import annotations

import pytest

from lenet5.compare.store import TrialRecord
from lenet5.compare.studies import (
    BUILTIN,
    Claim,
    Study,
    Variant,
    build_config,
    grid_study,
)
from lenet5.compare.verdict import (
    HELD,
    NOT_HELD,
    UNCLEAR,
    compare_pair,
    divergence_verdict,
    early_stopping_verdict,
    pair_verdict,
    separated,
    verdicts,
)
from lenet5.errors import Lenet5Error


def records(label: str, accuracies: list[float]) -> list[TrialRecord]:
    return [TrialRecord(label, seed, "finished", {"test_accuracy": acc}, [{"val_loss": 0.1, "val_acc": acc,
                                                                             "seconds": 1.0}])
            for seed, acc in enumerate(accuracies)]


def test_overlapping_seeds_give_no_clear_difference():
    # Means differ by 0.1 points, but each seed's spread is larger than that.
    winner, loser = [0.981, 0.985, 0.978], [0.980, 0.983, 0.978]
    assert not separated(winner, loser)
    line = compare_pair("test_accuracy", winner, loser)
    assert line.startswith(UNCLEAR) and "over 3 seeds" in line


def test_separated_seeds_give_a_verdict_in_the_right_direction():
    high, low = [0.990, 0.991, 0.989], [0.970, 0.972, 0.969]
    assert compare_pair("test_accuracy", high, low) == HELD
    assert compare_pair("test_accuracy", low, high).startswith(NOT_HELD)
    # Lower is better for losses: the same numbers read the other way round.
    assert compare_pair("best_val_loss", low, high) == HELD


def test_one_seed_cannot_tell_signal_from_noise():
    assert "cannot tell signal from noise" in compare_pair("test_accuracy", [0.99], [0.5])


def test_pair_verdict_names_both_variants_with_mean_and_std():
    claim = Claim("max beats avg", winner="max", loser="avg")
    line = pair_verdict(claim, records("max", [0.99, 0.991, 0.989]) + records("avg", [0.98, 0.981, 0.979]))
    assert line.startswith("max beats avg: HELD")
    assert "max 99.00% ± 0.10%" in line and "avg 98.00% ± 0.10%" in line


def test_divergence_counts_nan_and_above_chance_losses():
    claim = Claim("too large diverges", kind="diverges", winner="big")
    nan = TrialRecord("big", 0, "diverged")
    exploded = TrialRecord("big", 1, "finished", {}, [{"val_loss": 130.0, "val_acc": 0.1, "seconds": 1.0}])
    fine = TrialRecord("big", 2, "finished", {}, [{"val_loss": 0.05, "val_acc": 0.98, "seconds": 1.0}])
    assert ": HELD: big diverged in 2/2 seeds" in divergence_verdict(claim, [nan, exploded])
    assert "(mixed)" in divergence_verdict(claim, [nan, exploded, fine])


def test_early_stopping_verdict_needs_val_loss_to_turn_up():
    claim = Claim("stops", kind="early_stopping", winner="patience", loser="full")
    rising = [{"val_loss": v, "val_acc": 0.9, "seconds": 1.0} for v in (0.5, 0.3, 0.35, 0.4, 0.45)]
    flat = [{"val_loss": v, "val_acc": 0.9, "seconds": 1.0} for v in (0.5, 0.4, 0.35, 0.33, 0.32)]

    def full(history):
        return TrialRecord("full", 0, "finished", {"best_epoch": 2, "epochs_run": 5, "test_accuracy": 0.9},
                           history, {"last_epoch_accuracy": 0.89})

    patient = TrialRecord("patience", 0, "finished",
                          {"best_epoch": 2, "epochs_run": 4, "stopped_early": True, "test_accuracy": 0.9})
    assert ": HELD: val loss turned up in 1/1" in early_stopping_verdict(claim, [full(rising), patient])
    assert ": DID NOT HOLD: val loss turned up in 0/1" in early_stopping_verdict(claim, [full(flat), patient])


def test_custom_grid_verdict_compares_best_with_runner_up():
    study = Study("g", "q", {}, (Variant("a", {}), Variant("b", {})))
    (line,) = verdicts(study, records("a", [0.97, 0.99, 0.95]) + records("b", [0.96, 0.98, 0.94]))
    assert line.startswith("best variant 'a' beats runner-up 'b'") and UNCLEAR in line


def test_grid_parses_values_by_field_type():
    study = grid_study(["batch-size=32,512", "scale_lr=yes,off", "normalization=[-1,1],[0,1]"], "g")
    assert len(study.variants) == 8
    options = study.variants[0].options
    assert options == {"batch_size": 32, "scale_lr": True, "normalization": "[-1,1]"}
    config = study.config(study.variants[0].label, seed=4)
    assert (config.batch_size, config.scale_lr, config.seed) == (32, True, 4)
    assert grid_study(["dropout=0.5", "train-subset=none"], "g").variants[0].options == \
        {"dropout": 0.5, "train_subset": None}


@pytest.mark.parametrize("items, message", [
    (["lr"], "expected KEY=V1,V2"),
    (["learning_rate=0.1"], "not a training option"),
    (["seed=1,2"], "use --seeds"),
    (["epochs=two"], "'two' is not a valid int"),
    (["batchnorm=maybe"], "'maybe' is not a valid bool"),
    (["lr=0.1", "lr=0.2"], "given twice"),
])
def test_bad_grid_items_get_one_line_errors(items, message):
    with pytest.raises(Lenet5Error, match=message):
        grid_study(items, "g")


def test_every_builtin_variant_builds_a_valid_config():
    for study in BUILTIN.values():
        for variant in study.variants:
            build_config({**study.base, **variant.options})
        for claim in study.claims:
            for label in filter(None, (claim.winner, claim.loser)):
                study.variant(label)  # raises if a claim names a variant that does not exist
