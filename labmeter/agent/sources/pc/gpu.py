"""GPU utilisation through NVIDIA's NVML, only when nvidia-ml-py is installed and a GPU is there."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class Gpu:
    """Mean utilisation (%) of the NVIDIA GPUs; ``open()`` returns None without any."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> Gpu | None:
        try:
            import pynvml  # from nvidia-ml-py, an optional extra: most lab PCs have no NVIDIA GPU
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except pynvml.NVMLError as exc:  # no driver, no device
            log.info("no NVIDIA GPU readable: %s", exc)
            return None
        return cls(pynvml, handles) if handles else None

    def utilisation(self) -> float | None:
        try:
            rates = [self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self._handles]
        except self._nvml.NVMLError:
            return None
        return float(sum(rates)) / len(rates)

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            log.debug("nvmlShutdown failed", exc_info=True)
