"""The phase chain, written once: one row per phase script, in the order they run.

A row says which network the script trains (its files ``<network>.pt``, ``<network>_latest.pt``,
``log_<network>.csv``, ...), the LR level it reads (it trains on, or regenerates from, ``(LR_<reads>, HR)``;
0 = the dataset's LR) and the one it writes (``LR_<writes>/``), its ``results.json`` key, its ``settings.json``
section (what ``--config`` replays; a regeneration reads its network's section) and the networks it needs
first. Rerun, archive, branch, the LR checks, ``--config``, compare, publish and the experiments read this
table; nothing else spells the chain.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    script: str
    network: str | None = None  # the network it trains: N1, N2, N3, N; None for a regeneration
    reads: int = 0  # it trains on (or regenerates from) LR_<reads>; 0 = the dataset's LR
    writes: int | None = None  # the LR_<writes>/ folder it writes
    result: str | None = None  # its results.json key
    section: str = ""  # its settings.json section: what --config replays
    needs: tuple[str, ...] = ()  # networks that must exist first (LR_<reads>/ too, when reads > 0)

    @property
    def lr_maker(self) -> str | None:
        """The network whose output LR_<writes>/ holds: the one this script trains, else the one it runs."""
        return self.network or (self.needs[-1] if self.writes else None)


PHASES = (
    Phase("phase1_1.py", network="N1", reads=0, result="phase1", section="N1"),
    Phase("phase1_2.py", reads=0, writes=1, section="N1", needs=("N1",)),
    Phase("phase2_1.py", network="N2", reads=1, result="phase2", section="N2", needs=("N1",)),
    Phase("phase2_2.py", reads=1, writes=2, section="N2", needs=("N2",)),
    Phase("phase3.py", network="N3", reads=2, writes=3, result="phase3", section="N3", needs=("N2",)),
    Phase("phase4.py", network="N", reads=0, result="phase4", section="N", needs=("N1", "N2", "N3")),
)
SCRIPTS = tuple(phase.script for phase in PHASES)
FIRST, LAST = PHASES[0], PHASES[-1]
NETWORKS = tuple(phase.network for phase in PHASES if phase.network)  # in training order
RESULTS = tuple(phase.result for phase in PHASES if phase.result)
BLOCKS = tuple(phase.lr_maker for phase in PHASES if phase.writes)  # the blocks N_1..N_3, in order: N chains them


def phase(script: str) -> Phase:
    return PHASES[SCRIPTS.index(script)]


def trainer(network: str) -> Phase:
    """The row that trains ``network``."""
    return next(row for row in PHASES if row.network == network)


def writer(level: int) -> Phase:
    """The row that writes LR_<level>/."""
    return next(row for row in PHASES if row.writes == level)


def from_here(script: str) -> tuple[Phase, ...]:
    """``script``'s row and every later one: what a redo of it archives."""
    return PHASES[SCRIPTS.index(script):]


def before(script: str) -> tuple[Phase, ...]:
    """The rows before ``script``: what a branch of a run up to it reuses."""
    return PHASES[:SCRIPTS.index(script)]


def makers(level: int) -> list[str]:
    """The scripts to run for LR_<level>/: its network's trainer, then its writer (one script for phase 3)."""
    return list(dict.fromkeys([trainer(writer(level).lr_maker).script, writer(level).script]))
