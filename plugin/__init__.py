"""acapella: split a song into vocals and accompaniment.

    >>> from acapella import Separator
    >>> stems = Separator().separate(audio, sample_rate)  # doctest: +SKIP
"""
from importlib.metadata import PackageNotFoundError, version

from acapella.separator import Separator
from acapella.stems import STEMS
from acapella.effects import StemChains, StemMixer, VocalIsolator, VocalRemover
from acapella.board import Pedalboard

try:
    __version__ = version("acapella")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["Separator", "STEMS", "__version__", "VocalIsolator", "VocalRemover", "StemMixer", "StemChains",
           "Pedalboard"]
