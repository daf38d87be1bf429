"""The emulator's fixtures (`tests.emulator_support`)."""

from tests.emulator_support import emulated, start_emulator

__all__ = ["emulated", "start_emulator"]
