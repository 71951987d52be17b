"""The validation sets: the songs held out of training, on which the bundled models are measured."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class ValidationSet:
    """Clips held out from training: named folders and/or singer name prefixes."""

    folder: str  # sub-folder of the shared data root holding the clips
    songs: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    # How many clips the whole set holds. A set given by prefixes has no list to check a
    # folder against, and figures recorded on part of it must not pass for the set's.
    size: int | None = None

    @property
    def full_size(self) -> int | None:
        """How many clips the whole set holds (None if unknown)."""
        return len(self.songs) if self.songs and not self.prefixes else self.size

    def contains(self, name: str) -> bool:
        """True if the clip folder called ``name`` belongs to this set."""
        return name in self.songs or name.startswith(self.prefixes)

    def select(self, names: Iterable[str]) -> list[str]:
        """The members of ``names`` that belong to this set, sorted."""
        return sorted(n for n in names if self.contains(n))


# The standard MUSDB18 validation split, and two whole MIR-1K singers (holding
# out singers, not clips, keeps a memorised voice from inflating the figure).
VALIDATION_SETS: dict[str, ValidationSet] = {
    "musdb-valid": ValidationSet(
        folder="musdb7-train",
        songs=(
            "Actions - One Minute Smile",
            "Clara Berry And Wooldog - Waltz For My Victims",
            "Johnny Lokke - Promises & Lies",
            "Patrick Talbot - A Reason To Leave",
            "Triviul - Angelsaint",
            "Alexander Ross - Goodbye Bolero",
            "Fergessen - Nos Palpitants",
            "Leaf - Summerghost",
            "Skelpolu - Human Mistakes",
            "Young Griffo - Pennies",
            "ANiMAL - Rockshow",
            "James May - On The Line",
            "Meaxic - Take A Step",
            "Traffic Experiment - Sirens",
        ),
    ),
    "mir1k-valid": ValidationSet(folder="mir1k-train", prefixes=("abjones_", "bobon_"), size=93),
}


def is_validation_clip(name: str) -> bool:
    """True if a clip folder name is in any validation set (for training to skip it).

    Example::

        >>> is_validation_clip("ANiMAL - Rockshow"), is_validation_clip("abjones_1_01")
        (True, True)
        >>> is_validation_clip("Ani_1_01")
        False
    """
    return any(s.contains(name) for s in VALIDATION_SETS.values())
