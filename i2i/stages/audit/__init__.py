"""Audits of a publish target: ``i2i publish --dry-run`` and ``--verify``; and its pruning.

``keys`` (the published images and the key shapes of images and gallery files), ``store`` (the
target's listing and checks), ``prune`` (what the target holds that nothing maps to, its
deletion, and the dry-run plan), ``verify`` (upload markers whose copy at the target is gone or
differs) and ``lines`` (plans and checks as text).
"""
