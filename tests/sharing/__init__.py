"""Tests of src/xp/sharing/."""
