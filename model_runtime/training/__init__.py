"""Training side of the runtime: speech corpus, teacher animation, alignment, metrics, stages.

Nothing here is imported by inference; modules import their heavy dependencies themselves.
"""
