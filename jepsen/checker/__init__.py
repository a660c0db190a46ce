"""Checkers for Cairn's Jepsen-style tests: linearizability of the register
workload (linear.py), the uploads workload (uploads.py) and the journal
workload (journal.py). Standard library only."""
from . import journal, linear, uploads  # noqa: F401
from .history import HistoryError, Recorder, dump, load, pair  # noqa: F401

CHECKERS = {"register": linear.check, "uploads": uploads.check, "journal": journal.check}
