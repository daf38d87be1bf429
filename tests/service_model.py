"""The request checker of the fakes: `chalicelib.emulator.model`, shared with the emulator."""

from chalicelib.emulator.model import check, service_model

__all__ = ["check", "service_model"]
