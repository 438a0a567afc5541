"""The design of a headline, fixed in code before its run: :class:`Plan` (smallest effect of interest,
margin, pilot SD, the seeds the power function asks for). Re-exported by :mod:`reprozoo.runtime.verdict`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reprozoo.runtime import power as _power

ALPHA = _power.DEFAULT_ALPHA  # the one-sided bounds of reprozoo.runtime.verdict are 95% bounds


@dataclass(frozen=True)
class Plan:
    """The design of a headline, fixed in code before the run: the smallest effect of interest and
    where it comes from, the margin, a pilot SD of the paired differences and which run gave it.
    ``seeds`` is what the power function asks for; an experiment's preset that carries the power
    uses at least that many.

    With ``null_power`` (superiority only) the seeds must also give ``target_power`` to the opposite
    decision: "not held" (the upper bound below the margin) when the true gain is zero. A plan made
    only for the SESOI leaves a null effect near the margin "inconclusive" about as often as not, so two
    runs on disjoint seeds can disagree; this plan decides both ends.

    With ``mde_assurance`` (a probability, e.g. 0.8) the seeds must also make the run's own reported MDE
    <= SESOI that likely, allowing for its sample SD coming out above ``pilot_sd``
    (:func:`reprozoo.runtime.power.seeds_for_mde`)."""

    sesoi: float
    sesoi_source: str
    margin: float
    pilot_sd: float
    pilot_source: str
    kind: str = "superiority"
    target_power: float = _power.DEFAULT_POWER
    null_power: bool = False
    mde_assurance: float | None = None

    def __post_init__(self) -> None:
        if self.mde_assurance is not None and not 0 < self.mde_assurance < 1:
            raise ValueError(f"mde_assurance must be a probability in (0, 1), got {self.mde_assurance}")
        if self.null_power and (self.kind != "superiority" or not self.margin > 0):
            raise ValueError("null_power plans a 'not held' at no true gain: it needs a superiority plan with a "
                             f"margin > 0 (got kind={self.kind!r}, margin={self.margin:g})")

    @property
    def bound(self) -> float:
        return -self.margin if self.kind == "noninferiority" else self.margin

    @property
    def seeds(self) -> int:
        n = _power.seeds_for_power(self.sesoi, self.pilot_sd, bound=self.bound, target=self.target_power,
                                   alpha=ALPHA)
        if self.null_power:  # P(U < margin | true gain 0) = P(L > 0 | true gain margin), by symmetry
            n = max(n, _power.seeds_for_power(self.margin, self.pilot_sd, bound=0.0, target=self.target_power,
                                              alpha=ALPHA))
        if self.mde_assurance is not None:
            n = max(n, _power.seeds_for_mde(self.sesoi, self.pilot_sd, bound=self.bound, assurance=self.mde_assurance,
                                            target=self.target_power, alpha=ALPHA))
        return n

    @property
    def planned_n(self) -> int | None:
        """:attr:`seeds`, or None when no number of seeds reaches the target power (the SESOI does
        not exceed the rule's bound, or more than ``power.MAX_SEEDS`` would be needed)."""
        try:
            return self.seeds
        except ValueError:
            return None

    def power_at(self, n: int) -> float:
        return _power.power(self.sesoi, self.pilot_sd, n, bound=self.bound, alpha=ALPHA) if n >= 2 else 0.0

    def null_power_at(self, n: int) -> float:
        """Probability of "not held" at ``n`` seeds when the true gain is zero (pilot SD)."""
        return _power.power(self.margin, self.pilot_sd, n, bound=0.0, alpha=ALPHA) if n >= 2 else 0.0

    def record(self, n_run: int | None = None) -> dict[str, Any]:
        out = {"sesoi": self.sesoi, "sesoi_source": self.sesoi_source, "margin": self.margin,
               "pilot_sd": self.pilot_sd, "pilot_source": self.pilot_source, "planned_n": self.planned_n,
               "planned_power": self.target_power}
        if self.null_power:
            out["null_power"] = True
        if self.mde_assurance is not None:
            out["mde_assurance"] = self.mde_assurance
        if n_run is not None:
            out["power_at_run_n"] = self.power_at(n_run)
            if self.null_power:
                out["null_power_at_run_n"] = self.null_power_at(n_run)
        return out
