"""Hardware cost sources (measured, table, predicted latency), registered by device name."""
from zsdist.registry import Registry

DEVICES: Registry[object] = Registry("latency device")
