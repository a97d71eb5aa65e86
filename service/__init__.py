"""CallTrail: event logging for Tencent Cloud Contact Center inbound-call pop-up pages."""

__version__ = "0.1.0"
