"""Method-specific orchestration (ESPCN, multiblock phases) over the shared data, models and engine."""
