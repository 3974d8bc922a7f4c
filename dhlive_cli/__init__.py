"""dhlive: speech to a lip-synced talking-avatar video, batch or live."""

__version__ = "0.1.0"
