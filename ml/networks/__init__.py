"""The networks facebank runs: the table (`table.py`) and one module per network."""
