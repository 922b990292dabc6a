"""Phased training of the Multiblock Channel Attention Network (called by the phase scripts).

One run folder holds everything: ``N<i>_latest.pt`` (resume state), ``N<i>.pt`` (the trained block),
``LR_<i>/{train,test}/<name>.png`` (N_i^+ applied to the previous inputs, 16-bit PNG) with
``LR_<i>/manifest.json`` (which checkpoint made them), ``N_latest.pt`` / ``N.pt`` for the combined net,
``log_N<i>.csv`` curves and plots, ``results.json`` with one entry per phase, ``run.json`` (the run-wide
settings every phase checks, see ``run_folder``) and ``run.lock`` (one writer at a time, ``core.runs.run_lock``).
The six scripts share one command line (``phase_settings``): every phase setting, the presets, ``--config``;
``resolve`` turns it into one checked ``Run`` before anything is written; ``chain`` is the table of phases.

Block i trains on (LR_{i-1}, HR), LR_0 being the dataset's LR. What differs between phases is settings
and the chain's row, not code.
"""
