"""Scripts run inside the benchmark-only anchor environment (see setup_venv.sh)."""
