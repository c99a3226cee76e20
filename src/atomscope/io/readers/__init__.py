"""Format readers. Each module has ``read(path) -> list[RawSignal]``; see ``io/_signal.py``."""
