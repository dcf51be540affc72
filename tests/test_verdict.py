"""The curve verdict reads train/val curves the way the handout does."""

from lenet5.verdict import curve_verdict


def test_still_improving_when_val_loss_falls_to_the_end():
    assert curve_verdict([1.0, 0.6, 0.4, 0.3], [0.9, 0.6, 0.45, 0.35]).startswith("still improving")


def test_overfitting_names_the_best_epoch():
    verdict = curve_verdict([1.0, 0.5, 0.3, 0.2, 0.1], [0.8, 0.4, 0.5, 0.6, 0.7])
    assert verdict.startswith("overfitting")
    assert "best epoch 2" in verdict


def test_stalled_when_nothing_moves():
    assert curve_verdict([0.3, 0.3, 0.3, 0.3], [0.40, 0.401, 0.399, 0.40]).startswith("stalled")


def test_rising_val_loss_without_falling_train_loss_is_getting_worse_not_stalled():
    verdict = curve_verdict([1.0, 1.5, 2.0, 3.0], [1.0, 2.0, 4.0, 6.8])
    assert verdict.startswith("getting worse")
    assert "1.0000" in verdict and "6.8000" in verdict


def test_one_epoch_is_too_short_to_judge():
    assert curve_verdict([0.5], [0.4]).startswith("one epoch only")


def test_nan_validation_loss_is_no_validation_split():
    assert curve_verdict([0.5, 0.4], [float("nan"), float("nan")]).startswith("no validation split")
