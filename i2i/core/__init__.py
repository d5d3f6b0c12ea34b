"""Helpers every stage shares: atomic files, opening and checking images, result paths,
render checks and retry timing. Core imports nothing from the stages or the run machinery."""
