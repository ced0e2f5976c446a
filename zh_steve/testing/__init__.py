"""Test and offline-smoke builders (not used by the runtime with real weights).

- :mod:`.sizes`: the tiny sizes, defined once.
- :mod:`.tiny_text`: tiny random Chinese-CLIP / MineCLIP text towers with the real tokenizers
  (``configs/agent_tiny.yaml``, ``configs/alignment_tiny.yaml``, ``eval --env fake``).
- :mod:`.tiny_weights`: tiny random STEVE-1 weights written in both real layouts (official files, MineStudio file).
- :mod:`.publish`: official files → MineStudio single-file layout.
"""
