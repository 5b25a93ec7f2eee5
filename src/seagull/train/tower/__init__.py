"""Stage 0: a quality-aware vision tower, fine-tuned before SEAGULL's two stages.

The ImageNet tower sees content, not quality (docs/default_model.md). Stage 0 fine-tunes it on
native-resolution crops of a synthetic corpus to tell, from the mask-pooled multi-level features of
each region, the distortion types present, their strength, the full-reference quality, and which of
two regions of one photo is worse (DB-CNN's distortion classification, RankIQA's ranking). The frozen
result then replaces the tower of stages 1 and 2 (``tower:`` in their configs); :mod:`.probe` checks
with a linear probe that the new features see quality.

Modules: :mod:`.config` (the YAML), :mod:`.data` (crops and their region targets), :mod:`.heads`
(tower + linear region heads), :mod:`.trainer` (the resumable loop), :mod:`.probe` (before/after).
"""
