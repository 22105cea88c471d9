"""Everything that reads or writes Blender data for EMOTE: strips, emotion curves, heads, takes.

Import-light on purpose: the pure modules (timing, emotion weights, channel matching, the runtime
client) work without bpy; only the modules that touch Blender data import it.
"""
