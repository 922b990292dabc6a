"""The memory a new allocation can take, as the multiblock CPU path reads it before a whole-image pass."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.hardware import host_memory_available


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="no /proc/meminfo here")
def test_the_memory_available_is_read_and_no_more_than_the_total():
    total = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                 if line.startswith("MemTotal:"))
    available = host_memory_available()
    assert available is not None and 0 < available <= total
