"""Read train and validation curves the way the lab handout teaches.

- still improving: validation loss is still falling at the end -> more epochs would help;
- overfitting: validation loss rose after its best epoch while training loss kept falling;
- getting worse: validation loss rose after its best epoch and training loss did not fall
  either (a learning rate too high, or a diverging run);
- stalled: neither curve is moving much any more;
- too short: one epoch is not a curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# A change in validation loss smaller than this fraction of its value is treated as noise.
RELATIVE_TOLERANCE = 0.02
# How many final epochs to look at when deciding whether validation loss is still falling.
RECENT_EPOCHS = 3


def curve_verdict(train_loss: Sequence[float], val_loss: Sequence[float]) -> str:
    """One line saying whether the run was still improving, overfitting or stalled.

    Args:
        train_loss: mean training loss per epoch.
        val_loss: validation loss per epoch, same length.
    """
    if not val_loss or not all(math.isfinite(v) for v in val_loss):
        return "no validation split: cannot judge the curves"
    if len(val_loss) < 2:
        return "one epoch only: too short to judge the curves"
    best = min(range(len(val_loss)), key=val_loss.__getitem__)
    best_epoch, last = best + 1, len(val_loss) - 1
    tolerance = RELATIVE_TOLERANCE * val_loss[best]
    rose = val_loss[last] - val_loss[best] > tolerance
    if rose and train_loss[last] < train_loss[best]:
        return (f"overfitting: val loss rose from {val_loss[best]:.4f} at epoch {best_epoch} to "
                f"{val_loss[last]:.4f} while train loss kept falling; best epoch {best_epoch}")
    if rose:  # val loss went up and train loss did not come down: not "levelled off"
        return (f"getting worse: val loss rose from {val_loss[best]:.4f} at epoch {best_epoch} to "
                f"{val_loss[last]:.4f} and train loss did not fall; try a smaller --lr")
    window_start = max(0, len(val_loss) - 1 - RECENT_EPOCHS)
    recent_drop = val_loss[window_start] - val_loss[last]
    if best == last and recent_drop > tolerance:
        return (f"still improving: val loss fell {recent_drop:.4f} over the last "
                f"{last - window_start} epochs; more epochs would help")
    return f"stalled: val loss has levelled off (best {val_loss[best]:.4f} at epoch {best_epoch})"
