"""atomscope benchmarks: ``python -m benchmarks [name ...]`` (or ``make bench``).

Each module ``benchmarks/<name>.py`` has ``run(quick: bool = False) -> dict`` and writes
``benchmarks/results/<name>.json`` through :func:`benchmarks._common.write_result`.
"""
