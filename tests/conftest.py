"""Test configuration shared by every directory of the suite.

pytest puts the directory of each ``conftest.py`` on ``sys.path``, so this file makes the
shared ``helpers`` module importable from the subdirectories (``tests/models``...).
"""
