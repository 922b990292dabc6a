"""ESPCN end to end (called by ``espcn.py``): one module per subcommand, the command line in ``cli``."""
