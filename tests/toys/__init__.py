"""Toy extensions, written the way a user writes theirs: outside the package, each registering through its registry
alone (tests/test_extension_points.py runs them with ``extensions=[toys.<module>]``)."""
