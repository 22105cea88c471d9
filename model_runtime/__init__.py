"""EMOTE runtime: audio to FLAME-format expression and jaw animation.

This package never imports bpy. Importing it imports nothing heavy (no torch), so Blender's own
Python can use its numpy-only parts (head-model files, condition tracks, errors).
"""

__version__ = "0.1.0"
